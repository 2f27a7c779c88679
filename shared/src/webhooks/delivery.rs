//! Sending events to endpoints: the event as sent, Standard Webhooks signing, one try, and the
//! three quick tries of a dispatch (SPEC §4), over the [`WebhookSender`] port that does one
//! HTTP POST. What is remembered of the tries, and the retries over hours, are in
//! `deliveries.rs` and `worker.rs`.

use std::time::Duration;

use bytes::Bytes;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::Instant;

use super::sender::Attempt;
use super::{Endpoint, EventType};
use crate::app::App;
use crate::ids;
use crate::time::format_timestamp;

/// Tries per endpoint, the timeout of each, and the pauses between them (SPEC §4).
pub const ATTEMPTS_PER_ENDPOINT: usize = 3;
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
pub const BACKOFF: [Duration; 2] = [Duration::from_millis(500), Duration::from_secs(1)];
/// A whole dispatch fits in API Gateway's 29 s limit for the synchronous route.
pub const DISPATCH_DEADLINE: Duration = Duration::from_secs(25);

/// `{"id", "type", "created_at", "data"}`: what an endpoint receives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub created_at: String,
    pub data: Value,
}

impl Event {
    pub fn new(event_type: EventType, id: Option<String>, now: Timestamp, data: Value) -> Self {
        Self {
            id: id.unwrap_or_else(|| ids::new_id("evt_", now.as_millisecond())),
            event_type,
            created_at: format_timestamp(now),
            data,
        }
    }
}

/// Standard Webhooks headers for one delivery of `body`, signed with each of `secrets` (during
/// a rotation, the new secret and the old: `v1,<new> v1,<old>`, SPEC §8). `None` when a secret
/// cannot sign.
pub fn signed_headers(
    secrets: &[&str],
    event_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Option<Vec<(&'static str, String)>> {
    let signatures = secrets
        .iter()
        .map(|secret| {
            standardwebhooks::Webhook::new(secret)
                .and_then(|webhook| webhook.sign(event_id, timestamp, body))
                .ok()
        })
        .collect::<Option<Vec<String>>>()?;
    if signatures.is_empty() {
        return None;
    }
    Some(vec![
        (standardwebhooks::HEADER_WEBHOOK_ID, event_id.to_owned()),
        (
            standardwebhooks::HEADER_WEBHOOK_TIMESTAMP,
            timestamp.to_string(),
        ),
        (
            standardwebhooks::HEADER_WEBHOOK_SIGNATURE,
            signatures.join(" "),
        ),
    ])
}

/// One try, as the delivery log shows it: when, the answer's status (if any), the error (if
/// no 2xx), and how long it took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRecord {
    #[serde(with = "crate::time::rfc3339")]
    pub at: Timestamp,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: u64,
}

impl AttemptRecord {
    pub fn succeeded(&self) -> bool {
        self.status_code
            .is_some_and(|status| (200..300).contains(&status))
    }

    /// What a failure cause names: the status (`503`) or the error (`timeout`).
    pub fn failure(&self) -> String {
        match (&self.error, self.status_code) {
            (Some(error), None) => error.clone(),
            (_, Some(status)) => status.to_string(),
            (None, None) => "no answer".to_owned(),
        }
    }
}

/// What one try came to: its record, and the answer's body when it was a 2xx.
pub struct Tried {
    pub record: AttemptRecord,
    pub accepted: Option<Bytes>,
}

/// One POST of `body` (event `event_id`) to `endpoint`, within `timeout` and `deadline`, in
/// one of the endpoint's places (at most 10 tries in flight: the rest wait their turn, until
/// the deadline). `None`: no place came in time, nothing was sent.
pub async fn try_once(
    app: &App,
    endpoint: &Endpoint,
    event_id: &str,
    body: &Bytes,
    timeout: Duration,
    deadline: Instant,
) -> Option<Tried> {
    let _place = app.endpoint_gate.enter(&endpoint.id, deadline).await?;
    let (store, clock) = (app.store.as_ref(), app.clock.as_ref());
    let lease = super::gate::Lease::take(store, clock, &endpoint.id, deadline).await?;
    let tried = try_in_slot(app, endpoint, event_id, body, timeout, deadline).await;
    lease.release(store).await;
    tried
}

async fn try_in_slot(
    app: &App,
    endpoint: &Endpoint,
    event_id: &str,
    body: &Bytes,
    timeout: Duration,
    deadline: Instant,
) -> Option<Tried> {
    let remaining = deadline.saturating_duration_since(Instant::now());
    if remaining.is_zero() {
        return None;
    }
    let now = app.clock.now();
    let started = Instant::now();
    let secrets = endpoint.signing_secrets(now);
    // An unsigned delivery would be refused by the receiver anyway: never send one.
    let Some(headers) = signed_headers(&secrets, event_id, now.as_second(), body) else {
        return Some(Tried {
            record: AttemptRecord {
                at: now,
                status_code: None,
                error: Some("the endpoint's secret cannot sign".to_owned()),
                duration_ms: 0,
            },
            accepted: None,
        });
    };
    let outcome = app
        .sender
        .post(&endpoint.url, headers, body.clone(), timeout.min(remaining))
        .await;
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let (status_code, error, accepted) = match outcome {
        Attempt::Answered { status, body } if (200..300).contains(&status) => {
            (Some(status), None, Some(body))
        }
        Attempt::Answered { status, .. } => (Some(status), Some(format!("HTTP {status}")), None),
        Attempt::Failed(reason) => (None, Some(reason), None),
    };
    let record = AttemptRecord {
        at: now,
        status_code,
        error,
        duration_ms,
    };
    crate::metrics::webhook_attempt(record.succeeded());
    Some(Tried { record, accepted })
}

/// How delivering `callback.dispatch` to one endpoint ended, with every try made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The 2xx answer's body, or `None` when no try got one.
    pub accepted: Option<Bytes>,
    /// No 2xx: the last status (`503`) or error (`timeout`).
    pub last_failure: String,
    pub attempts: Vec<AttemptRecord>,
}

fn retryable(status: u16) -> bool {
    status == 408 || status == 429 || status >= 500
}

/// Delivers `event` to `endpoint` as a dispatch does (SPEC §4): up to 3 tries, 0.5 s then 1 s
/// apart; a 4xx other than 408/429 is final; nothing starts after `deadline`.
pub async fn deliver(
    app: &App,
    endpoint: &Endpoint,
    event: &Event,
    deadline: Instant,
) -> Delivered {
    let body: Bytes = serde_json::to_vec(event).expect("events serialize").into();
    let mut delivered = Delivered {
        accepted: None,
        last_failure: "not attempted: out of time".to_owned(),
        attempts: Vec::new(),
    };
    for attempt in 0..ATTEMPTS_PER_ENDPOINT {
        if attempt > 0 {
            let pause = BACKOFF[(attempt - 1).min(BACKOFF.len() - 1)];
            if Instant::now() + pause >= deadline {
                break;
            }
            tokio::time::sleep(pause).await;
        }
        let Some(tried) =
            try_once(app, endpoint, &event.id, &body, ATTEMPT_TIMEOUT, deadline).await
        else {
            if attempt == 0 {
                delivered.last_failure =
                    "not attempted: the endpoint had 10 tries in flight until the deadline"
                        .to_owned();
            }
            break;
        };
        let record = tried.record;
        delivered.attempts.push(record.clone());
        if tried.accepted.is_some() {
            delivered.accepted = tried.accepted;
            return delivered;
        }
        delivered.last_failure = record.failure();
        let final_answer = record.status_code.is_some_and(|status| !retryable(status));
        if record.error.as_deref() == Some("the endpoint's secret cannot sign") || final_answer {
            break;
        }
        tracing::info!(endpoint = %endpoint.id, event = %event.id, attempt = attempt + 1, outcome = %delivered.last_failure, "webhook attempt failed");
    }
    delivered
}
