//! Reading a JSON object field by field, collecting every problem (so a validation error lists
//! them all in `details`) and refusing fields nobody asked for.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult, FieldProblem};

/// A field of a partial update: left out, set to `null`, or set.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Field<T> {
    #[default]
    Absent,
    Null,
    Set(T),
}

impl<T> Field<T> {
    /// For creates, where `null` and absent mean the same.
    pub fn into_option(self) -> Option<T> {
        match self {
            Self::Set(value) => Some(value),
            Self::Absent | Self::Null => None,
        }
    }

    pub fn is_absent(&self) -> bool {
        matches!(self, Self::Absent)
    }
}

/// DynamoDB nests maps and lists at most 32 levels: objects kept inside a record stay well within.
pub const MAX_OBJECT_DEPTH: usize = 16;

/// Does `value` fit DynamoDB's limits (depth, map keys — attribute names — of at least one
/// character, and numbers of magnitude 1e-129 to 1e125)?
fn storable(value: &Value, depth_left: usize) -> bool {
    match value {
        Value::Object(map) => {
            depth_left > 0
                && map
                    .iter()
                    .all(|(key, v)| !key.is_empty() && storable(v, depth_left - 1))
        }
        Value::Array(items) => depth_left > 0 && items.iter().all(|v| storable(v, depth_left - 1)),
        Value::Number(n) => n
            .as_f64()
            .is_some_and(|f| f == 0.0 || (f.abs() < 1e125 && f.abs() > 1e-129)),
        _ => true,
    }
}

/// A JSON number that is a whole number. JSON has one number type: 3.0 is the whole number 3.
pub fn whole_number(value: &Value) -> Option<i64> {
    value.as_i64().or_else(|| {
        value
            .as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
            .map(|f| f as i64)
    })
}

pub struct FieldReader {
    prefix: String,
    fields: Map<String, Value>,
    problems: Vec<FieldProblem>,
}

impl FieldReader {
    pub fn new(fields: Map<String, Value>) -> Self {
        Self {
            prefix: String::new(),
            fields,
            problems: Vec::new(),
        }
    }

    /// A reader for a nested object, whose problems name `prefix.field`.
    pub fn nested(prefix: impl Into<String>, fields: Map<String, Value>) -> Self {
        Self {
            prefix: format!("{}.", prefix.into()),
            fields,
            problems: Vec::new(),
        }
    }

    pub fn path(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    pub fn problem(&mut self, name: &str, message: impl Into<String>) {
        let field = self.path(name);
        self.problems.push(FieldProblem::new(field, message));
    }

    pub fn has_problem(&self, name: &str) -> bool {
        let field = self.path(name);
        self.problems.iter().any(|p| p.field == field)
    }

    pub fn add_problems(&mut self, problems: Vec<FieldProblem>) {
        self.problems.extend(problems);
    }

    /// The raw value of a field.
    pub fn take(&mut self, name: &str) -> Field<Value> {
        match self.fields.remove(name) {
            None => Field::Absent,
            Some(Value::Null) => Field::Null,
            Some(value) => Field::Set(value),
        }
    }

    /// A field read with `parse`; a failure becomes a problem and the field counts as absent.
    pub fn read<T>(
        &mut self,
        name: &str,
        parse: impl FnOnce(Value) -> Result<T, String>,
    ) -> Field<T> {
        match self.take(name) {
            Field::Set(value) => match parse(value) {
                Ok(parsed) => Field::Set(parsed),
                Err(message) => {
                    self.problem(name, message);
                    Field::Absent
                }
            },
            Field::Null => Field::Null,
            Field::Absent => Field::Absent,
        }
    }

    /// A string of at most `max_chars` characters.
    pub fn string(&mut self, name: &str, max_chars: usize) -> Field<String> {
        self.read(name, |value| match value {
            Value::String(text) if text.chars().count() <= max_chars => Ok(text),
            Value::String(_) => Err(format!("must be at most {max_chars} characters")),
            _ => Err("must be a string".to_owned()),
        })
    }

    /// A string that must be present and non-null, of `min..=max` characters.
    pub fn required_string(
        &mut self,
        name: &str,
        min_chars: usize,
        max_chars: usize,
    ) -> Option<String> {
        match self.string(name, max_chars) {
            Field::Set(text) if text.trim().chars().count() >= min_chars => Some(text),
            Field::Set(_) => {
                self.problem(name, format!("must be at least {min_chars} character(s)"));
                None
            }
            Field::Null => {
                self.problem(name, "must not be null");
                None
            }
            Field::Absent => {
                if !self.has_problem(name) {
                    self.problem(name, "is required");
                }
                None
            }
        }
    }

    /// An RFC 3339 timestamp (kept to the millisecond).
    pub fn timestamp(&mut self, name: &str) -> Field<jiff::Timestamp> {
        self.read(name, |value| {
            value
                .as_str()
                .and_then(crate::time::parse_timestamp)
                .ok_or_else(|| "must be an RFC 3339 timestamp like 2026-11-21T14:15:22Z".to_owned())
        })
    }

    /// A timestamp that must be present and non-null.
    pub fn required_timestamp(&mut self, name: &str) -> Option<jiff::Timestamp> {
        match self.timestamp(name) {
            Field::Set(at) => Some(at),
            Field::Null => {
                self.problem(name, "must not be null");
                None
            }
            Field::Absent => {
                if !self.has_problem(name) {
                    self.problem(name, "is required");
                }
                None
            }
        }
    }

    pub fn boolean(&mut self, name: &str) -> Field<bool> {
        self.read(name, |value| {
            value
                .as_bool()
                .ok_or_else(|| "must be true or false".to_owned())
        })
    }

    /// A whole number within `range`.
    pub fn integer(&mut self, name: &str, range: std::ops::RangeInclusive<i64>) -> Field<i64> {
        self.read(name, |value| {
            whole_number(&value)
                .filter(|n| range.contains(n))
                .ok_or_else(|| {
                    format!(
                        "must be a whole number from {} to {}",
                        range.start(),
                        range.end()
                    )
                })
        })
    }

    /// One of an enum's serde names; the message lists them.
    pub fn choice<T: DeserializeOwned>(&mut self, name: &str, allowed: &[&str]) -> Field<T> {
        self.read(name, |value| {
            serde_json::from_value(value)
                .map_err(|_| format!("must be one of: {}", allowed.join(", ")))
        })
    }

    /// A JSON object of at most `max_bytes` when encoded, storable as a DynamoDB map: at most
    /// [`MAX_OBJECT_DEPTH`] levels deep, no empty keys and numbers within DynamoDB's range.
    pub fn object(&mut self, name: &str, max_bytes: usize) -> Field<Map<String, Value>> {
        self.read(name, |value| match value {
            Value::Object(map) => {
                let size = serde_json::to_vec(&map)
                    .map(|v| v.len())
                    .unwrap_or(usize::MAX);
                if !storable(&Value::Object(map.clone()), MAX_OBJECT_DEPTH) {
                    Err(format!(
                        "must be at most {MAX_OBJECT_DEPTH} levels deep, with non-empty keys and numbers of magnitude 1e-129 to 1e125 (or 0)"
                    ))
                } else if size > max_bytes {
                    Err(format!(
                        "must be at most {} KiB when encoded as JSON",
                        max_bytes / 1024
                    ))
                } else {
                    Ok(map)
                }
            }
            _ => Err("must be an object".to_owned()),
        })
    }

    /// Refuses a field that may not be sent here, if it was.
    pub fn refuse(&mut self, name: &str, message: &str) {
        if self.fields.remove(name).is_some() {
            self.problem(name, message);
        }
    }

    /// Every problem, including one per unknown field.
    pub fn into_problems(mut self) -> Vec<FieldProblem> {
        let mut unknown: Vec<String> = self.fields.keys().cloned().collect();
        unknown.sort();
        for name in unknown {
            self.problem(&name, "unknown field");
        }
        self.problems
    }

    pub fn finish(self) -> ApiResult<()> {
        let problems = self.into_problems();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(problems))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reader(value: Value) -> FieldReader {
        FieldReader::new(value.as_object().unwrap().clone())
    }

    #[test]
    fn every_problem_is_listed_with_its_field() {
        let mut fields = reader(json!({"name": 5, "active": "yes", "extra": 1}));
        assert_eq!(fields.string("name", 10), Field::Absent);
        assert_eq!(fields.boolean("active"), Field::Absent);
        let problems = fields.into_problems();
        let named: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(named, ["name", "active", "extra"]);
        assert_eq!(problems[2].message, "unknown field");
    }

    #[test]
    fn required_fields_say_so_once() {
        let mut fields = reader(json!({"other": null}));
        fields.take("other");
        assert_eq!(fields.required_string("name", 1, 200), None);
        let problems = fields.into_problems();
        assert_eq!(problems, vec![FieldProblem::new("name", "is required")]);
    }

    #[test]
    fn nested_readers_prefix_their_fields() {
        let mut fields = FieldReader::nested(
            "entry_points[2]",
            json!({"x": 1}).as_object().unwrap().clone(),
        );
        fields.refuse("x", "not here");
        assert_eq!(fields.into_problems()[0].field, "entry_points[2].x");
    }
}
