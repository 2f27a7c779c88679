//! What a flow is: its enums, a stored version, the slug's head (summaries of every version),
//! and the answer the API gives.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::policies::{CallingWindow, Dedupe, RetryPolicy};
use crate::time::rfc3339;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FlowType {
    Announcement,
    Banner,
    Card,
    Checklist,
    Custom,
    Form,
    Survey,
    Tour,
}

pub const FLOW_TYPES: &[&str] = &[
    "ANNOUNCEMENT",
    "BANNER",
    "CARD",
    "CHECKLIST",
    "CUSTOM",
    "FORM",
    "SURVEY",
    "TOUR",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelType {
    Voice,
    Chat,
    Sms,
    Video,
    InAppChat,
}

pub const CHANNEL_TYPES: &[&str] = &["voice", "chat", "sms", "video", "in_app_chat"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum FlowStatus {
    Draft,
    Active,
    Archived,
}

impl FlowStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "DRAFT",
            Self::Active => "ACTIVE",
            Self::Archived => "ARCHIVED",
        }
    }

    /// The `status` list filter: case-insensitive, and `published` means `ACTIVE`.
    pub fn from_filter(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "draft" => Some(Self::Draft),
            "active" | "published" => Some(Self::Active),
            "archived" => Some(Self::Archived),
            _ => None,
        }
    }
}

/// Serde names of an enum value (for index keys and filters).
pub fn serde_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => String::new(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryPoint {
    pub entry_id: String,
    pub entry_name: Option<String>,
    pub entry_number: Option<String>,
    pub entry_language: Option<String>,
}

/// One stored version of a flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowVersion {
    pub id: u64,
    pub slug: String,
    pub version: u32,
    pub name: String,
    pub description: Option<String>,
    #[serde(rename = "type")]
    pub flow_type: FlowType,
    pub channel_type: ChannelType,
    pub status: FlowStatus,
    pub active: bool,
    /// The definition, as YAML (SPEC §2: stored as YAML, answered as YAML and JSON).
    pub data_yaml: String,
    pub targeting_logic: Option<String>,
    pub entry_points: Vec<EntryPoint>,
    pub code_snippet: String,
    #[serde(with = "rfc3339")]
    pub created_at: Timestamp,
    #[serde(with = "rfc3339")]
    pub modified_at: Timestamp,
    pub modified_by: String,
    /// Callback policies (SPEC §7); versions stored before them read as the defaults.
    #[serde(default)]
    pub calling_window: Option<CallingWindow>,
    #[serde(default)]
    pub retry_policy: RetryPolicy,
    #[serde(default)]
    pub dedupe: Dedupe,
}

impl FlowVersion {
    pub fn summary(&self) -> VersionSummary {
        VersionSummary {
            id: self.id,
            version: self.version,
            status: self.status,
            modified_at: self.modified_at,
            modified_by: self.modified_by.clone(),
        }
    }
}

/// `flow_versions[]` of a flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionSummary {
    pub id: u64,
    pub version: u32,
    pub status: FlowStatus,
    #[serde(with = "rfc3339")]
    pub modified_at: Timestamp,
    pub modified_by: String,
}

/// The facts a flow is listed and filtered by: those of its current version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listing {
    pub version: u32,
    pub status: FlowStatus,
    pub channel_type: ChannelType,
    #[serde(rename = "type")]
    pub flow_type: FlowType,
    pub modified_ms: i64,
}

/// One item per slug: every version's summary (highest first) and how the flow is listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowHead {
    pub slug: String,
    pub organization_id: String,
    pub versions: Vec<VersionSummary>,
    pub listing: Listing,
}

impl FlowHead {
    /// The current version: the `ACTIVE` one, else the newest.
    pub fn current_version(&self) -> u32 {
        self.versions
            .iter()
            .find(|v| v.status == FlowStatus::Active)
            .or_else(|| self.versions.iter().max_by_key(|v| v.version))
            .map_or(1, |v| v.version)
    }

    pub fn summary(&self, version: u32) -> Option<&VersionSummary> {
        self.versions.iter().find(|v| v.version == version)
    }

    pub fn draft(&self) -> Option<&VersionSummary> {
        self.versions.iter().find(|v| v.status == FlowStatus::Draft)
    }

    pub fn active(&self) -> Option<&VersionSummary> {
        self.versions
            .iter()
            .find(|v| v.status == FlowStatus::Active)
    }

    pub fn highest_version(&self) -> u32 {
        self.versions.iter().map(|v| v.version).max().unwrap_or(0)
    }

    /// Records a version's new summary, keeping the list highest version first.
    pub fn record(&mut self, version: &FlowVersion) {
        self.versions.retain(|v| v.version != version.version);
        self.versions.push(version.summary());
        self.versions
            .sort_by_key(|summary| std::cmp::Reverse(summary.version));
    }
}

/// A flow version as the API answers it.
#[derive(Debug, Clone, Serialize)]
pub struct FlowView {
    pub id: u64,
    pub slug: String,
    pub version: u32,
    pub name: String,
    pub description: Option<String>,
    #[serde(rename = "type")]
    pub flow_type: FlowType,
    pub channel_type: ChannelType,
    pub status: FlowStatus,
    pub active: bool,
    /// The JSON encoding of the definition, as a string.
    pub data: String,
    pub data_yaml: String,
    pub targeting_logic: Option<String>,
    pub entry_points: Vec<EntryPoint>,
    pub code_snippet: String,
    #[serde(with = "rfc3339")]
    pub created_at: Timestamp,
    #[serde(with = "rfc3339")]
    pub modified_at: Timestamp,
    pub modified_by: String,
    pub calling_window: Option<CallingWindow>,
    pub retry_policy: RetryPolicy,
    pub dedupe: Dedupe,
    pub flow_versions: Vec<VersionSummary>,
}

impl FlowView {
    pub fn new(head: &FlowHead, version: FlowVersion) -> Self {
        let data = super::data::yaml_to_json(&version.data_yaml).to_string();
        Self {
            id: version.id,
            slug: version.slug,
            version: version.version,
            name: version.name,
            description: version.description,
            flow_type: version.flow_type,
            channel_type: version.channel_type,
            status: version.status,
            active: version.active,
            data,
            data_yaml: version.data_yaml,
            targeting_logic: version.targeting_logic,
            entry_points: version.entry_points,
            code_snippet: version.code_snippet,
            created_at: version.created_at,
            modified_at: version.modified_at,
            modified_by: version.modified_by,
            calling_window: version.calling_window,
            retry_policy: version.retry_policy,
            dedupe: version.dedupe,
            flow_versions: head.versions.clone(),
        }
    }
}
