//! A flow's `data`: sent as a YAML string, a JSON string, or a JSON object/array; kept as YAML.
//! YAML text is stored exactly as sent (comments and layout are the author's); JSON input is
//! converted to block-style YAML. Answers carry both the YAML and its JSON encoding.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use serde_yaml_ng::Value as Yaml;

/// SPEC §2: `data` is at most 200 KiB.
pub const MAX_DATA_BYTES: usize = 200 * 1024;

/// YAML aliases repeat what they name, so a small text can stand for a huge document (a wide
/// anchor named many times grows quadratically, which serde_yaml_ng's alias limit lets through).
/// Answers carry the document's JSON encoding, so that is bounded too: generously, since plain
/// YAML's JSON is at most about twice the size of its text.
pub const MAX_DATA_JSON_BYTES: usize = 1024 * 1024;

/// The YAML to store for a `data` field, or what is wrong with it.
pub fn data_to_yaml(value: Value) -> Result<String, String> {
    let yaml = match value {
        Value::String(text) => {
            if text.len() > MAX_DATA_BYTES {
                return Err(format!("must be at most {} KiB", MAX_DATA_BYTES / 1024));
            }
            match serde_json::from_str::<Value>(&text) {
                Ok(json) => json_to_yaml(&json)?,
                Err(_) => {
                    check_expanded_size(&text)?;
                    parse_yaml(&text)?;
                    if text.trim().is_empty() {
                        "{}\n".to_owned()
                    } else {
                        text
                    }
                }
            }
        }
        json @ (Value::Object(_) | Value::Array(_)) => json_to_yaml(&json)?,
        _ => return Err("must be a YAML or JSON string, an object or an array".to_owned()),
    };
    if yaml.len() > MAX_DATA_BYTES {
        return Err(format!(
            "must be at most {} KiB as YAML",
            MAX_DATA_BYTES / 1024
        ));
    }
    Ok(yaml)
}

fn json_to_yaml(json: &Value) -> Result<String, String> {
    let yaml = serde_yaml_ng::to_string(json)
        .map_err(|err| format!("cannot be written as YAML: {err}"))?;
    // YAML reads every `<<` key as a merge key, so such a JSON document would read back as
    // another one: refuse it rather than store something other than what was sent.
    if yaml_to_json(&yaml) != *json {
        return Err("cannot be kept as YAML unchanged: a `<<` key is a YAML merge key".to_owned());
    }
    Ok(yaml)
}

/// Walks a YAML document as the parser replays it, aliases included, without building it, and
/// stops as soon as its JSON encoding would be over [`MAX_DATA_JSON_BYTES`].
fn check_expanded_size(text: &str) -> Result<(), String> {
    let remaining = Cell::new(MAX_DATA_JSON_BYTES);
    let exceeded = Cell::new(false);
    let measure = Measure {
        remaining: &remaining,
        exceeded: &exceeded,
    };
    match measure.deserialize(serde_yaml_ng::Deserializer::from_str(text)) {
        Ok(()) => Ok(()),
        Err(_) if exceeded.get() => Err(format!(
            "expands to more than {} KiB as JSON (YAML aliases repeat what they name)",
            MAX_DATA_JSON_BYTES / 1024
        )),
        Err(err) => Err(format!("is not valid YAML or JSON: {err}")),
    }
}

/// The decimal digits of `n`.
fn digits(n: u128) -> usize {
    n.checked_ilog10().map_or(1, |log| log as usize + 1)
}

/// A visitor that only counts the JSON bytes of what it visits (from below: escapes are not
/// counted, so text within [`MAX_DATA_BYTES`] without aliases always fits).
#[derive(Clone, Copy)]
struct Measure<'a> {
    remaining: &'a Cell<usize>,
    exceeded: &'a Cell<bool>,
}

impl Measure<'_> {
    fn spend<E: de::Error>(self, bytes: usize) -> Result<(), E> {
        match self.remaining.get().checked_sub(bytes) {
            Some(left) => {
                self.remaining.set(left);
                Ok(())
            }
            None => {
                self.exceeded.set(true);
                Err(E::custom("the document is too large"))
            }
        }
    }
}

impl<'de> DeserializeSeed<'de> for Measure<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Measure<'_> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a YAML document")
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<(), E> {
        self.spend(if value { 4 } else { 5 })
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<(), E> {
        self.visit_i128(value.into())
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<(), E> {
        self.visit_u128(value.into())
    }

    fn visit_i128<E: de::Error>(self, value: i128) -> Result<(), E> {
        self.spend(usize::from(value < 0) + digits(value.unsigned_abs()))
    }

    fn visit_u128<E: de::Error>(self, value: u128) -> Result<(), E> {
        self.spend(digits(value))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        // At least `1.0`; an estimate from below never refuses plain text.
        self.spend(3)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<(), E> {
        self.spend(text.len() + 2)
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.spend(4)
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.spend(4)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.spend(2)?;
        while seq.next_element_seed(self)?.is_some() {
            self.spend(1)?;
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.spend(2)?;
        while map.next_key_seed(self)?.is_some() {
            map.next_value_seed(self)?;
            self.spend(2)?;
        }
        Ok(())
    }

    /// A tagged node (`!tag value`): its value counts.
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        let (_tag, value) = data.variant::<String>()?;
        de::VariantAccess::newtype_variant_seed(value, self)
    }
}

fn parse_yaml(text: &str) -> Result<Yaml, String> {
    // serde_yaml_ng bounds recursion depth and alias expansion, so hostile YAML is an error,
    // not a hang or a crash.
    let mut yaml: Yaml =
        serde_yaml_ng::from_str(text).map_err(|err| format!("is not valid YAML or JSON: {err}"))?;
    yaml.apply_merge()
        .map_err(|err| format!("has an invalid merge key: {err}"))?;
    Ok(yaml)
}

/// The JSON document of stored YAML (which was checked when stored).
pub fn yaml_to_json(text: &str) -> Value {
    match parse_yaml(text) {
        Ok(yaml) => to_json(yaml),
        Err(_) => Value::Null,
    }
}

/// Is the stored YAML a mapping with at least one key? (Publishing requires it.)
pub fn is_non_empty_mapping(text: &str) -> bool {
    matches!(yaml_to_json(text), Value::Object(map) if !map.is_empty())
}

fn to_json(yaml: Yaml) -> Value {
    match yaml {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(b),
        Yaml::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                // JSON has no NaN or infinity: those stay readable as YAML spells them.
                n.as_f64()
                    .and_then(Number::from_f64)
                    .map_or_else(|| Value::String(n.to_string()), Value::Number)
            }
        }
        Yaml::String(s) => Value::String(s),
        Yaml::Sequence(items) => Value::Array(items.into_iter().map(to_json).collect()),
        Yaml::Mapping(mapping) => {
            let mut map = Map::new();
            for (key, value) in mapping {
                // JSON keys are strings: YAML keys like `200:` or `true:` become "200" and "true".
                let key = match to_json(key) {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                map.insert(key, to_json(value));
            }
            Value::Object(map)
        }
        Yaml::Tagged(tagged) => to_json(tagged.value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_text_is_kept_as_written() {
        let text = "# greeting flow\nsteps:\n  - say: hello\n";
        assert_eq!(data_to_yaml(json!(text)).unwrap(), text);
        assert_eq!(yaml_to_json(text), json!({"steps": [{"say": "hello"}]}));
    }

    #[test]
    fn json_becomes_block_yaml() {
        let yaml = data_to_yaml(json!({"steps": [{"say": "hi"}]})).unwrap();
        assert_eq!(yaml, "steps:\n- say: hi\n");
        let from_string = data_to_yaml(json!("{\"steps\": [{\"say\": \"hi\"}]}")).unwrap();
        assert_eq!(from_string, yaml);
    }

    #[test]
    fn bad_data_is_refused_with_a_reason() {
        assert!(
            data_to_yaml(json!("a: [unclosed"))
                .unwrap_err()
                .contains("not valid YAML")
        );
        assert!(data_to_yaml(json!(42)).is_err());
        assert!(data_to_yaml(json!("a: 1\n---\nb: 2\n")).is_err());
        let bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\nh: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n";
        assert!(data_to_yaml(json!(bomb)).is_err());
        assert!(data_to_yaml(json!("x".repeat(MAX_DATA_BYTES + 1))).is_err());
    }

    #[test]
    fn aliases_cannot_expand_past_the_limit() {
        let wide = |n: usize| {
            format!(
                "a: &a [{}]\nb: [{}]\n",
                vec!["x"; n].join(","),
                vec!["*a"; n].join(",")
            )
        };
        assert!(data_to_yaml(json!(wide(100))).is_ok());
        let refused = data_to_yaml(json!(wide(2_000))).unwrap_err();
        assert!(refused.contains("expands"), "{refused}");
        assert!(data_to_yaml(json!("a: !custom [1, 2]\nb: &b {c: 1}\nd: *b\n")).is_ok());
        // Plain text at the size limit always fits, however small its values.
        let numbers = format!("[{}]", vec!["1"; MAX_DATA_BYTES / 2 - 1].join(","));
        assert!(numbers.len() < MAX_DATA_BYTES);
        assert!(check_expanded_size(&numbers).is_ok());
        let pairs = format!(
            "{{{}}}",
            (0..MAX_DATA_BYTES / 12)
                .map(|n| format!("{n:05}: 1"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        assert!(pairs.len() < MAX_DATA_BYTES);
        assert!(check_expanded_size(&pairs).is_ok());
    }

    #[test]
    fn json_with_a_merge_key_is_refused_rather_than_changed() {
        assert!(data_to_yaml(json!({"<<": {"a": 1}, "b": 2})).is_err());
        assert!(data_to_yaml(json!("{\"<<\": 5}")).is_err());
        assert!(
            data_to_yaml(json!({"a": "<<", "n": [1.5, -0.0, 18446744073709551615u64]})).is_ok()
        );
    }

    #[test]
    fn non_string_keys_become_strings() {
        assert_eq!(
            yaml_to_json("200: ok\ntrue: yes\n"),
            json!({"200": "ok", "true": "yes"})
        );
    }

    #[test]
    fn publishing_needs_a_non_empty_mapping() {
        assert!(is_non_empty_mapping("a: 1\n"));
        assert!(!is_non_empty_mapping("{}\n"));
        assert!(!is_non_empty_mapping("- a\n"));
    }
}
