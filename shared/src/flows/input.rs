//! Reading flow request bodies: every problem is reported with its field.

use serde_json::{Map, Value};

use super::data::data_to_yaml;
use super::model::{CHANNEL_TYPES, ChannelType, EntryPoint, FLOW_TYPES, FlowType};
use super::policies::{CallingWindow, DEDUPE_VALUES, Dedupe, RetryPolicy};
use crate::error::{ApiResult, FieldProblem};
use crate::fields::{Field, FieldReader};
use crate::validate::{is_e164, is_language_tag};

pub const MAX_ENTRY_POINTS: usize = 50;

/// The fields a flow body may carry; on create every one is optional but `name`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct FlowFields {
    pub name: Option<String>,
    pub description: Field<String>,
    pub flow_type: Field<FlowType>,
    pub channel_type: Field<ChannelType>,
    pub active: Field<bool>,
    pub data_yaml: Field<String>,
    pub targeting_logic: Field<String>,
    pub entry_points: Field<Vec<EntryPoint>>,
    pub calling_window: Field<CallingWindow>,
    pub retry_policy: Field<RetryPolicy>,
    pub dedupe: Field<Dedupe>,
}

/// Which fields a body touches, for the rule that an `ACTIVE` version takes only some.
impl FlowFields {
    pub fn touched(&self) -> Vec<&'static str> {
        let mut touched = Vec::new();
        if self.name.is_some() {
            touched.push("name");
        }
        let fields: [(&'static str, bool); 10] = [
            ("description", !self.description.is_absent()),
            ("type", !self.flow_type.is_absent()),
            ("channel_type", !self.channel_type.is_absent()),
            ("active", !self.active.is_absent()),
            ("data", !self.data_yaml.is_absent()),
            ("targeting_logic", !self.targeting_logic.is_absent()),
            ("entry_points", !self.entry_points.is_absent()),
            ("calling_window", !self.calling_window.is_absent()),
            ("retry_policy", !self.retry_policy.is_absent()),
            ("dedupe", !self.dedupe.is_absent()),
        ];
        touched.extend(
            fields
                .into_iter()
                .filter(|(_, touched)| *touched)
                .map(|(name, _)| name),
        );
        touched
    }
}

/// Fields the server owns; a body that sends them is told so.
const READ_ONLY: &[&str] = &[
    "id",
    "slug",
    "version",
    "status",
    "code_snippet",
    "created_at",
    "modified_at",
    "modified_by",
    "flow_versions",
    "data_yaml",
];

/// Reads a create (`require_name`) or update body, collecting every problem.
pub fn read_flow_fields(
    body: Map<String, Value>,
    require_name: bool,
) -> (FlowFields, Vec<FieldProblem>) {
    let mut fields = FieldReader::new(body);
    for name in READ_ONLY {
        let message = if *name == "status" {
            "is set by publishing and archiving, not directly"
        } else {
            "is read-only"
        };
        fields.refuse(name, message);
    }
    let name = if require_name {
        fields.required_string("name", 1, 200)
    } else {
        match fields.string("name", 200) {
            Field::Set(name) if name.trim().is_empty() => {
                fields.problem("name", "must be at least 1 character(s)");
                None
            }
            Field::Set(name) => Some(name),
            Field::Null => {
                fields.problem("name", "must not be null");
                None
            }
            Field::Absent => None,
        }
    };
    let description = fields.string("description", 2000);
    let flow_type = fields.choice("type", FLOW_TYPES);
    let channel_type = fields.choice("channel_type", CHANNEL_TYPES);
    let active = fields.boolean("active");
    let data_yaml = fields.read("data", data_to_yaml);
    let targeting_logic = fields.string("targeting_logic", 4096);
    let calling_window = nested(&mut fields, "calling_window", CallingWindow::read);
    let retry_policy = nested(&mut fields, "retry_policy", RetryPolicy::read);
    let dedupe = fields.choice("dedupe", DEDUPE_VALUES);
    // These have defaults, not an absent state: null is a mistake, not a reset.
    for (name, is_null) in [
        ("type", flow_type == Field::Null),
        ("channel_type", channel_type == Field::Null),
        ("active", active == Field::Null),
        ("retry_policy", retry_policy == Field::Null),
        ("dedupe", dedupe == Field::Null),
    ] {
        if is_null {
            fields.problem(name, "must not be null");
        }
    }
    let entry_points = match fields.take("entry_points") {
        Field::Set(value) => match read_entry_points(value) {
            Ok(points) => Field::Set(points),
            Err(problems) => {
                fields.add_problems(problems);
                Field::Absent
            }
        },
        Field::Null => Field::Null,
        Field::Absent => Field::Absent,
    };
    let parsed = FlowFields {
        name,
        description,
        flow_type,
        channel_type,
        active,
        data_yaml,
        targeting_logic,
        entry_points,
        calling_window,
        retry_policy,
        dedupe,
    };
    (parsed, fields.into_problems())
}

/// A field whose value is an object read by `read`, which names every problem by its path.
fn nested<T>(
    fields: &mut FieldReader,
    name: &str,
    read: impl FnOnce(&str, Value) -> Result<T, Vec<FieldProblem>>,
) -> Field<T> {
    match fields.take(name) {
        Field::Set(value) => match read(name, value) {
            Ok(parsed) => Field::Set(parsed),
            Err(problems) => {
                fields.add_problems(problems);
                Field::Absent
            }
        },
        Field::Null => Field::Null,
        Field::Absent => Field::Absent,
    }
}

pub fn read_flow_body(body: Map<String, Value>, require_name: bool) -> ApiResult<FlowFields> {
    let (fields, problems) = read_flow_fields(body, require_name);
    if problems.is_empty() {
        Ok(fields)
    } else {
        Err(crate::error::ApiError::validation(problems))
    }
}

fn read_entry_points(value: Value) -> Result<Vec<EntryPoint>, Vec<FieldProblem>> {
    let Value::Array(items) = value else {
        return Err(vec![FieldProblem::new("entry_points", "must be an array")]);
    };
    if items.len() > MAX_ENTRY_POINTS {
        return Err(vec![FieldProblem::new(
            "entry_points",
            format!("must have at most {MAX_ENTRY_POINTS} entries"),
        )]);
    }
    let mut problems = Vec::new();
    let mut points = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        let path = format!("entry_points[{index}]");
        let Value::Object(map) = item else {
            problems.push(FieldProblem::new(path, "must be an object"));
            continue;
        };
        let mut fields = FieldReader::nested(&path, map);
        let entry_id = fields.read("entry_id", |value| match value {
            Value::String(id)
                if (1..=100).contains(&id.len())
                    && id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
            {
                Ok(id)
            }
            _ => Err("must be 1 to 100 letters, digits, '_' or '-'".to_owned()),
        });
        let entry_name = fields.string("entry_name", 200);
        let entry_number = fields.read("entry_number", |value| match value {
            Value::String(number) if is_e164(&number) => Ok(number),
            _ => Err("must be an E.164 phone number like +15551234567".to_owned()),
        });
        let entry_language = fields.read("entry_language", |value| match value {
            Value::String(tag) if is_language_tag(&tag) => Ok(tag),
            _ => Err("must be a BCP 47 language tag like en-US".to_owned()),
        });
        problems.extend(fields.into_problems());
        points.push(EntryPoint {
            entry_id: entry_id.into_option().unwrap_or_default(),
            entry_name: entry_name.into_option(),
            entry_number: entry_number.into_option(),
            entry_language: entry_language.into_option(),
        });
    }
    let mut seen = std::collections::HashSet::new();
    for (index, point) in points.iter().enumerate() {
        if !point.entry_id.is_empty() && !seen.insert(point.entry_id.clone()) {
            problems.push(FieldProblem::new(
                format!("entry_points[{index}].entry_id"),
                "is used twice",
            ));
        }
    }
    if problems.is_empty() {
        Ok(points)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn problems(body: Value) -> Vec<String> {
        read_flow_fields(body.as_object().unwrap().clone(), true)
            .1
            .into_iter()
            .map(|p| p.field)
            .collect()
    }

    #[test]
    fn a_minimal_body_is_valid() {
        let (fields, problems) = read_flow_fields(
            json!({"name": "Renewals"}).as_object().unwrap().clone(),
            true,
        );
        assert!(problems.is_empty());
        assert_eq!(fields.name.as_deref(), Some("Renewals"));
        assert_eq!(fields.touched(), ["name"]);
    }

    #[test]
    fn every_bad_field_is_named() {
        let body = json!({
            "type": "POPUP", "channel_type": 3, "active": "no", "data": 7,
            "entry_points": [{"entry_number": "555", "entry_language": "english"}, "x"],
            "status": "ACTIVE", "surprise": true
        });
        assert_eq!(
            problems(body),
            [
                "status",
                "name",
                "type",
                "channel_type",
                "active",
                "data",
                "entry_points[0].entry_number",
                "entry_points[0].entry_language",
                "entry_points[1]",
                "surprise"
            ]
        );
    }

    #[test]
    fn entry_ids_must_be_unique() {
        let body = json!({"name": "x", "entry_points": [{"entry_id": "a"}, {"entry_id": "a"}]});
        assert_eq!(problems(body), ["entry_points[1].entry_id"]);
    }
}
