//! Reading callback bodies (create, and reschedule by `PATCH`), every problem with its field.

use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult, FieldProblem};
use crate::fields::{Field, FieldReader};
use crate::flows::policies::canonical_time_zone;
use crate::validate::is_e164;

/// SPEC §4 limits.
pub const MAX_REASON: usize = 500;
pub const MAX_TEXT: usize = 4000;
pub const MAX_OBJECT_BYTES: usize = 16 * 1024;
pub const MAX_METADATA_KEYS: usize = 50;
pub const MAX_REFERENCE: usize = 255;
pub const MAX_SCHEDULE_AHEAD: SignedDuration = SignedDuration::from_hours(365 * 24);

/// A create body.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCallback {
    pub flow: String,
    pub to_number: String,
    pub from_number: Option<String>,
    pub scheduled_at: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
    pub source_session_id: Option<String>,
    pub agent_id: Option<String>,
    pub phone_number_id: Option<String>,
    pub reason: Option<String>,
    pub instructions: Option<String>,
    pub summary: Option<String>,
    pub pipeline_config: Option<Map<String, Value>>,
    pub metadata: Option<Map<String, Value>>,
    /// The recipient's IANA zone, for the calling window (SPEC §7).
    pub time_zone: Option<String>,
}

/// A `PATCH` body: only what a scheduled callback may change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallbackPatch {
    pub scheduled_at: Option<Timestamp>,
    pub expires_at: Field<Timestamp>,
    pub to_number: Option<String>,
    pub from_number: Field<String>,
    pub reason: Field<String>,
    pub instructions: Field<String>,
    pub summary: Field<String>,
    pub metadata: Field<Map<String, Value>>,
    pub pipeline_config: Field<Map<String, Value>>,
    pub time_zone: Field<String>,
}

const READ_ONLY: &[&str] = &[
    "id",
    "organization_id",
    "flow_version",
    "created_session_id",
    "status",
    "failure_cause",
    "attempted_at",
    "dispatched_at",
    "cancelled_at",
    "created_at",
    "updated_at",
    "cancel_reason",
    "attempt",
    "max_attempts",
    "requested_at",
    "outcome",
    "outcome_at",
    "attempts",
];

fn time_zone(fields: &mut FieldReader) -> Field<String> {
    fields.read("time_zone", |value| match value {
        // Kept in the database's spelling, as a window's zone is.
        Value::String(name) => canonical_time_zone(&name)
            .ok_or_else(|| "must be an IANA time zone name like America/New_York".to_owned()),
        _ => Err("must be an IANA time zone name like America/New_York".to_owned()),
    })
}

fn phone(fields: &mut FieldReader, name: &str) -> Field<String> {
    fields.read(name, |value| match value {
        Value::String(number) if is_e164(&number) => Ok(number),
        _ => Err("must be an E.164 phone number like +15551234567".to_owned()),
    })
}

fn metadata(fields: &mut FieldReader) -> Field<Map<String, Value>> {
    match fields.object("metadata", MAX_OBJECT_BYTES) {
        Field::Set(map) if map.len() > MAX_METADATA_KEYS => {
            fields.problem(
                "metadata",
                format!("must have at most {MAX_METADATA_KEYS} keys"),
            );
            Field::Absent
        }
        other => other,
    }
}

/// Checks `scheduled_at` (future, within 365 days) and `expires_at` (after it).
fn check_times(
    now: Timestamp,
    scheduled_at: Option<Timestamp>,
    expires_at: Option<Timestamp>,
    problems: &mut Vec<FieldProblem>,
) {
    if let Some(at) = scheduled_at {
        if at <= now {
            problems.push(FieldProblem::new(
                "scheduled_at",
                "must be in the future (leave it out to dispatch now)",
            ));
        } else if at.duration_since(now) > MAX_SCHEDULE_AHEAD {
            problems.push(FieldProblem::new("scheduled_at", "must be within 365 days"));
        }
    }
    if let Some(expires) = expires_at
        && expires <= scheduled_at.unwrap_or(now)
    {
        problems.push(FieldProblem::new(
            "expires_at",
            "must be after scheduled_at",
        ));
    }
}

/// Reads a create body; `flow` comes from the body, or from the trigger URL (`flow_from_url`).
pub fn read_new_callback(
    body: Map<String, Value>,
    flow_from_url: Option<&str>,
    now: Timestamp,
) -> ApiResult<NewCallback> {
    let mut fields = FieldReader::new(body);
    for name in READ_ONLY {
        fields.refuse(name, "is read-only");
    }
    let flow = match flow_from_url {
        Some(slug) => {
            fields.refuse("flow", "is set by the trigger URL");
            Some(slug.to_owned())
        }
        None => fields.required_string("flow", 1, 64),
    };
    let to_number = match phone(&mut fields, "to_number") {
        Field::Set(number) => Some(number),
        _ => {
            if !fields.has_problem("to_number") {
                fields.problem("to_number", "is required");
            }
            None
        }
    };
    let from_number = phone(&mut fields, "from_number").into_option();
    let scheduled_at = fields.timestamp("scheduled_at").into_option();
    let expires_at = fields.timestamp("expires_at").into_option();
    let source_session_id = fields
        .string("source_session_id", MAX_REFERENCE)
        .into_option();
    let agent_id = fields.string("agent_id", MAX_REFERENCE).into_option();
    let phone_number_id = fields
        .string("phone_number_id", MAX_REFERENCE)
        .into_option();
    let reason = fields.string("reason", MAX_REASON).into_option();
    let instructions = fields.string("instructions", MAX_TEXT).into_option();
    let summary = fields.string("summary", MAX_TEXT).into_option();
    let pipeline_config = fields
        .object("pipeline_config", MAX_OBJECT_BYTES)
        .into_option();
    let metadata = metadata(&mut fields).into_option();
    let time_zone = time_zone(&mut fields).into_option();
    let mut problems = fields.into_problems();
    check_times(now, scheduled_at, expires_at, &mut problems);
    if !problems.is_empty() {
        return Err(ApiError::validation(problems));
    }
    Ok(NewCallback {
        flow: flow.unwrap_or_default(),
        to_number: to_number.unwrap_or_default(),
        from_number,
        scheduled_at,
        expires_at,
        source_session_id,
        agent_id,
        phone_number_id,
        reason,
        instructions,
        summary,
        pipeline_config,
        metadata,
        time_zone,
    })
}

/// Reads a `PATCH` body. `scheduled_at` and `expires_at` are checked against `now` and the
/// callback's current times (`current_scheduled_at`) by [`check_patch_times`].
pub fn read_patch(body: Map<String, Value>) -> ApiResult<CallbackPatch> {
    let mut fields = FieldReader::new(body);
    let scheduled_at = match fields.timestamp("scheduled_at") {
        Field::Null => {
            fields.problem("scheduled_at", "must not be null");
            None
        }
        other => other.into_option(),
    };
    let expires_at = fields.timestamp("expires_at");
    let to_number = match phone(&mut fields, "to_number") {
        Field::Null => {
            fields.problem("to_number", "must not be null");
            None
        }
        other => other.into_option(),
    };
    let patch = CallbackPatch {
        scheduled_at,
        expires_at,
        to_number,
        from_number: phone(&mut fields, "from_number"),
        reason: fields.string("reason", MAX_REASON),
        instructions: fields.string("instructions", MAX_TEXT),
        summary: fields.string("summary", MAX_TEXT),
        metadata: metadata(&mut fields),
        pipeline_config: fields.object("pipeline_config", MAX_OBJECT_BYTES),
        time_zone: time_zone(&mut fields),
    };
    fields.finish()?;
    Ok(patch)
}

/// The times a patched callback would have, checked as on create.
pub fn check_patch_times(
    now: Timestamp,
    scheduled_at: Timestamp,
    expires_at: Option<Timestamp>,
    patch: &CallbackPatch,
) -> ApiResult<()> {
    let mut problems = Vec::new();
    // An unchanged scheduled_at that is already due is not the caller's mistake.
    let checked_at = patch
        .scheduled_at
        .or((scheduled_at > now).then_some(scheduled_at));
    check_times(now, checked_at, expires_at, &mut problems);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(problems))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        "2026-11-21T12:00:00Z".parse().unwrap()
    }

    fn fields_of(body: Value) -> Vec<String> {
        match read_new_callback(body.as_object().unwrap().clone(), None, now()) {
            Ok(_) => Vec::new(),
            Err(err) => err.details.into_iter().map(|d| d.field).collect(),
        }
    }

    #[test]
    fn a_minimal_callback_needs_flow_and_number() {
        assert_eq!(fields_of(json!({})), ["flow", "to_number"]);
        assert!(
            fields_of(json!({"flow": "flow_abcdefghijkl", "to_number": "+15551234567"})).is_empty()
        );
    }

    #[test]
    fn times_sizes_and_formats_are_checked() {
        let body = json!({
            "flow": "flow_abcdefghijkl", "to_number": "555", "from_number": "+1",
            "scheduled_at": "2026-11-21T11:00:00Z", "expires_at": "soon",
            "reason": "x".repeat(501), "metadata": (0..51).map(|i| (i.to_string(), json!(i))).collect::<Map<_, _>>(),
            "pipeline_config": [1], "status": "dispatched"
        });
        assert_eq!(
            fields_of(body),
            [
                "status",
                "to_number",
                "from_number",
                "expires_at",
                "reason",
                "pipeline_config",
                "metadata",
                "scheduled_at"
            ]
        );
        let far = json!({"flow": "flow_abcdefghijkl", "to_number": "+15551234567", "scheduled_at": "2027-12-01T00:00:00Z"});
        assert_eq!(fields_of(far), ["scheduled_at"]);
        let backwards = json!({"flow": "flow_abcdefghijkl", "to_number": "+15551234567",
            "scheduled_at": "2026-11-22T00:00:00Z", "expires_at": "2026-11-21T23:00:00Z"});
        assert_eq!(fields_of(backwards), ["expires_at"]);
    }
}
