//! A scheduled callback (SPEC §4) and its state machine.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::flows::policies::CallOutcome;
use crate::time::rfc3339;

pub const ID_PREFIX: &str = "cb_";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallbackStatus {
    Scheduled,
    Dispatching,
    Dispatched,
    Cancelled,
    Failed,
}

pub const STATUSES: &[&str] = &[
    "scheduled",
    "dispatching",
    "dispatched",
    "cancelled",
    "failed",
];

impl CallbackStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Dispatching => "dispatching",
            Self::Dispatched => "dispatched",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
        }
    }
}

/// A callback's fields in the SPEC's order (the order of the XML and text answers).
pub const FIELDS: &[&str] = &[
    "id",
    "organization_id",
    "flow",
    "flow_version",
    "source_session_id",
    "created_session_id",
    "agent_id",
    "phone_number_id",
    "to_number",
    "from_number",
    "scheduled_at",
    "expires_at",
    "status",
    "reason",
    "instructions",
    "summary",
    "pipeline_config",
    "metadata",
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
    "time_zone",
    "outcome",
    "outcome_at",
    "attempts",
];

/// The callback exactly as the API shows it: every field, `null` when absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Callback {
    pub id: String,
    pub organization_id: String,
    pub flow: String,
    pub flow_version: u32,
    pub source_session_id: Option<String>,
    pub created_session_id: Option<String>,
    pub agent_id: Option<String>,
    pub phone_number_id: Option<String>,
    pub to_number: String,
    pub from_number: Option<String>,
    #[serde(with = "rfc3339")]
    pub scheduled_at: Timestamp,
    #[serde(with = "rfc3339::option")]
    pub expires_at: Option<Timestamp>,
    pub status: CallbackStatus,
    pub reason: Option<String>,
    pub instructions: Option<String>,
    pub summary: Option<String>,
    pub pipeline_config: Option<Map<String, Value>>,
    pub metadata: Option<Map<String, Value>>,
    pub failure_cause: Option<String>,
    #[serde(with = "rfc3339::option")]
    pub attempted_at: Option<Timestamp>,
    #[serde(with = "rfc3339::option")]
    pub dispatched_at: Option<Timestamp>,
    #[serde(with = "rfc3339::option")]
    pub cancelled_at: Option<Timestamp>,
    #[serde(with = "rfc3339")]
    pub created_at: Timestamp,
    #[serde(with = "rfc3339")]
    pub updated_at: Timestamp,
    pub cancel_reason: Option<String>,
    /// Which attempt the callback is on: 1 at creation, one more for each retry (SPEC §7).
    #[serde(default = "first_attempt")]
    pub attempt: u32,
    /// Attempts allowed in all, from the flow's `retry_policy` when the callback was created.
    #[serde(default = "first_attempt")]
    pub max_attempts: u32,
    /// The time asked for, when a calling window moved `scheduled_at` (else the same).
    #[serde(default, with = "rfc3339::option")]
    pub requested_at: Option<Timestamp>,
    /// The recipient's IANA time zone: replaces the calling window's zone for this callback.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// The last outcome reported (`POST …/outcome`).
    #[serde(default)]
    pub outcome: Option<CallOutcome>,
    #[serde(default, with = "rfc3339::option")]
    pub outcome_at: Option<Timestamp>,
    /// Every attempt that has an outcome, oldest first.
    #[serde(default)]
    pub attempts: Vec<Attempt>,
}

fn first_attempt() -> u32 {
    1
}

/// One attempt of a callback and how it went (SPEC §7 `attempts`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub attempt: u32,
    #[serde(with = "rfc3339::option")]
    pub dispatched_at: Option<Timestamp>,
    pub created_session_id: Option<String>,
    pub outcome: CallOutcome,
    #[serde(with = "rfc3339")]
    pub outcome_at: Timestamp,
    /// The session the agent runtime reported with the outcome, if any.
    pub session_id: Option<String>,
    pub detail: Option<String>,
}

impl Callback {
    /// `{"callback": …}`, the data of `callback.*` events.
    pub fn event_data(&self) -> serde_json::Value {
        serde_json::json!({ "callback": self })
    }
}

/// The stored record: the callback and the dispatch bookkeeping the API never shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredCallback {
    #[serde(flatten)]
    pub callback: Callback,
    /// While `dispatching`: until when the dispatcher that took it owns it.
    pub lease_until_ms: Option<i64>,
    /// The `callback.dispatch` event id of the current dispatch, kept when an expired lease is
    /// taken over, so receivers can tell a repeat delivery (`webhook-id`) from a new dispatch.
    pub dispatch_event_id: Option<String>,
    /// A callback dispatched "now" is written before its dispatch is handed off, and removed
    /// again if that fails: its `callback.scheduled` event waits for its first change (the
    /// dispatch taking it, at the latest), so a create that is rolled back announces nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unannounced: bool,
    /// Created under `dedupe: one_active_per_number`: while `scheduled` or `dispatching` the
    /// callback holds its organization's uniqueness item for `to_number` (SPEC §7).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub holds_number: bool,
}

impl StoredCallback {
    /// Whether the callback holds its number's uniqueness item now.
    pub fn holds_number_now(&self) -> bool {
        self.holds_number
            && matches!(
                self.callback.status,
                CallbackStatus::Scheduled | CallbackStatus::Dispatching
            )
    }
}
