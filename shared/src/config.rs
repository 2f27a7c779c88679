//! Flowline's settings: the environment variables its composition roots read (the Lambda
//! functions' `flowline_lambda::Cloud`, the local server), parsed in one place, and why a
//! process refuses to start.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The signing key must carry at least this many bytes (SPEC §6).
pub const MIN_SIGNING_KEY_BYTES: usize = 32;

pub const DEFAULT_TABLE: &str = "flowline";
pub const DEFAULT_KEYS_TABLE: &str = "flowline-keys";
pub const DEFAULT_SCHEDULE_GROUP: &str = "flowline-callbacks";

/// Names of the environment variables Flowline reads.
pub mod env {
    pub const TABLE: &str = "FLOWLINE_TABLE";
    pub const KEYS_TABLE: &str = "FLOWLINE_KEYS_TABLE";
    pub const SIGNING_KEY: &str = "FLOWLINE_SIGNING_KEY";
    pub const PUBLIC_BASE_URL: &str = "FLOWLINE_PUBLIC_BASE_URL";
    pub const ALLOW_PRIVATE_TARGETS: &str = "FLOWLINE_ALLOW_PRIVATE_TARGETS";
    pub const STORE: &str = "FLOWLINE_STORE";
    /// The local server's data directory (its persistent store).
    pub const DATA_DIR: &str = "FLOWLINE_DATA_DIR";
    pub const ADDR: &str = "FLOWLINE_ADDR";
    pub const SCHEDULER: &str = "FLOWLINE_SCHEDULER";
    pub const API_KEYS: &str = "FLOWLINE_API_KEYS";
    pub const SCHEDULE_GROUP: &str = "FLOWLINE_SCHEDULE_GROUP";
    pub const DISPATCH_FUNCTION_ARN: &str = "FLOWLINE_DISPATCH_FUNCTION_ARN";
    pub const SCHEDULER_ROLE_ARN: &str = "FLOWLINE_SCHEDULER_ROLE_ARN";
    pub const DISPATCH_DLQ_ARN: &str = "FLOWLINE_DISPATCH_DLQ_ARN";
    pub const RATE_LIMIT: &str = "FLOWLINE_RATE_LIMIT";
    pub const TRIGGER_RATE_LIMIT: &str = "FLOWLINE_TRIGGER_RATE_LIMIT";
}

/// What the application needs to know about where it runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The base of URLs Flowline hands out (trigger URLs, code snippets), without a trailing `/`.
    pub public_base_url: String,
    /// `FLOWLINE_ALLOW_PRIVATE_TARGETS=1`: webhooks may target loopback/private hosts (local only).
    pub allow_private_targets: bool,
    /// How long the local server gives a request (in Lambda: API Gateway's time and the
    /// invocation's own decide).
    pub request_budget: std::time::Duration,
    /// The request budgets of organizations and trigger URLs (SPEC §1).
    pub limits: crate::ratelimit::Limits,
}

/// Why a process could not start: reported once, at start-up, never silently defaulted.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("cannot prepare the store: {0}")]
    Store(#[from] crate::store::StoreError),
    /// The local server's data directory cannot be used: another process holds it, or the
    /// disk refuses.
    #[error("{0}")]
    DataDirectory(String),
}

/// A variable's value; unset and blank are the same.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
}

/// A variable that must be set.
pub fn required(name: &'static str) -> Result<String, StartupError> {
    var(name).ok_or(StartupError::Missing(name))
}

/// `FLOWLINE_SIGNING_KEY`: base64 of at least 32 bytes.
pub fn signing_key_from_env() -> Result<Option<Vec<u8>>, StartupError> {
    var(env::SIGNING_KEY)
        .map(|text| signing_key(&text))
        .transpose()
}

/// Reads a signing key from its base64 text.
pub fn signing_key(text: &str) -> Result<Vec<u8>, StartupError> {
    let key = STANDARD
        .decode(text.trim())
        // Not the decoder's message: it would quote a character of the key.
        .map_err(|_| StartupError::Invalid {
            name: env::SIGNING_KEY,
            reason: "not base64".to_owned(),
        })?;
    if key.len() < MIN_SIGNING_KEY_BYTES {
        return Err(StartupError::Invalid {
            name: env::SIGNING_KEY,
            reason: format!(
                "{} bytes; at least {MIN_SIGNING_KEY_BYTES} are required",
                key.len()
            ),
        });
    }
    Ok(key)
}

pub fn allow_private_targets_from_env() -> bool {
    var(env::ALLOW_PRIVATE_TARGETS)
        .is_some_and(|value| value == "1" || value.eq_ignore_ascii_case("true"))
}

/// `FLOWLINE_PUBLIC_BASE_URL` without its trailing `/`, or `fallback`.
pub fn public_base_url_from_env() -> Option<String> {
    var(env::PUBLIC_BASE_URL).map(|url| url.trim_end_matches('/').to_owned())
}

/// The request budgets: `FLOWLINE_RATE_LIMIT` (each organization, default `100/200`: requests a
/// second / burst) and `FLOWLINE_TRIGGER_RATE_LIMIT` (each trigger URL, default `10/20`).
pub fn limits_from_env() -> Result<crate::ratelimit::Limits, StartupError> {
    use crate::ratelimit::{Limit, Limits};
    let mut limits = Limits::default();
    for (name, limit) in [
        (env::RATE_LIMIT, &mut limits.organization),
        (env::TRIGGER_RATE_LIMIT, &mut limits.trigger),
    ] {
        if let Some(text) = var(name) {
            *limit = Limit::parse(&text).ok_or_else(|| StartupError::Invalid {
                name,
                reason: format!("{text}: write requests a second / burst, e.g. 100/200"),
            })?;
        }
    }
    Ok(limits)
}
