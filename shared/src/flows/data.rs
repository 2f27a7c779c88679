//! A flow's `data`: sent as a YAML string, a JSON string, or a JSON object/array; kept as YAML.
//! YAML text is stored exactly as sent (comments and layout are the author's); JSON input is
//! converted to block-style YAML. Answers carry both the YAML and its JSON encoding.

use serde_json::{Map, Number, Value};
use serde_yaml_ng::Value as Yaml;

/// SPEC §2: `data` is at most 200 KiB.
pub const MAX_DATA_BYTES: usize = 200 * 1024;

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
    serde_yaml_ng::to_string(json).map_err(|err| format!("cannot be written as YAML: {err}"))
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
