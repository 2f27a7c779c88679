//! Delivering events to endpoints: Standard Webhooks signing and the retry policy of SPEC §4,
//! over the [`WebhookSender`] port that does one HTTP POST.

use std::time::Duration;

use bytes::Bytes;
use jiff::Timestamp;
use serde::Serialize;
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
/// Lifecycle events are notifications sent inline after the change they report: bounded so
/// they never hold a request long.
pub const LIFECYCLE_DEADLINE: Duration = Duration::from_secs(5);

/// `{"id", "type", "created_at", "data"}`.
#[derive(Debug, Serialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: &'static str,
    pub created_at: String,
    pub data: Value,
}

impl Event {
    pub fn new(event_type: EventType, id: Option<String>, now: Timestamp, data: Value) -> Self {
        Self {
            id: id.unwrap_or_else(|| ids::new_id("evt_", now.as_millisecond())),
            event_type: event_type.as_str(),
            created_at: format_timestamp(now),
            data,
        }
    }
}

/// Standard Webhooks headers for one delivery of `body`.
pub fn signed_headers(
    secret: &str,
    event_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Option<Vec<(&'static str, String)>> {
    let signature = standardwebhooks::Webhook::new(secret)
        .and_then(|webhook| webhook.sign(event_id, timestamp, body))
        .ok()?;
    Some(vec![
        (standardwebhooks::HEADER_WEBHOOK_ID, event_id.to_owned()),
        (
            standardwebhooks::HEADER_WEBHOOK_TIMESTAMP,
            timestamp.to_string(),
        ),
        (standardwebhooks::HEADER_WEBHOOK_SIGNATURE, signature),
    ])
}

/// How delivering to one endpoint ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// A 2xx answer, with its body.
    Accepted(Bytes),
    /// No 2xx: the last status (`503`) or error (`timeout`).
    Refused(String),
}

fn retryable(status: u16) -> bool {
    status == 408 || status == 429 || status >= 500
}

/// Delivers `event` to `endpoint`: up to 3 tries, 0.5 s then 1 s apart; a 4xx other than
/// 408/429 is final; nothing starts after `deadline`.
pub async fn deliver(
    app: &App,
    endpoint: &Endpoint,
    event: &Event,
    deadline: Instant,
) -> Delivered {
    let body: Bytes = serde_json::to_vec(event).expect("events serialize").into();
    let mut last = "not attempted: out of time".to_owned();
    for attempt in 0..ATTEMPTS_PER_ENDPOINT {
        if attempt > 0 {
            let pause = BACKOFF[(attempt - 1).min(BACKOFF.len() - 1)];
            if Instant::now() + pause >= deadline {
                break;
            }
            tokio::time::sleep(pause).await;
        }
        // A place among the endpoint's tries in flight, waited for within the deadline.
        let Some(_place) = app.endpoint_gate.enter(&endpoint.id, deadline).await else {
            if attempt == 0 {
                last = "not attempted: the endpoint had 10 tries in flight until the deadline"
                    .to_owned();
            }
            break;
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            break;
        }
        let timestamp = app.clock.now().as_second();
        // An unsigned delivery would be refused by the receiver anyway: never send one.
        let Some(headers) = signed_headers(&endpoint.secret, &event.id, timestamp, &body) else {
            last = "the endpoint's secret cannot sign".to_owned();
            break;
        };
        let outcome = app
            .sender
            .post(
                &endpoint.url,
                headers,
                body.clone(),
                ATTEMPT_TIMEOUT.min(remaining),
            )
            .await;
        match outcome {
            Attempt::Answered { status, body } if (200..300).contains(&status) => {
                return Delivered::Accepted(body);
            }
            Attempt::Answered { status, .. } => {
                last = status.to_string();
                if !retryable(status) {
                    break;
                }
            }
            Attempt::Failed(reason) => last = reason,
        }
        tracing::info!(endpoint = %endpoint.id, event = %event.id, attempt = attempt + 1, outcome = %last, "webhook attempt failed");
    }
    Delivered::Refused(last)
}

/// Sends a lifecycle event to every active endpoint subscribed to it, concurrently. Failures
/// are logged, never raised: the change the event reports has already happened.
pub async fn emit(app: &App, organization_id: &str, event_type: EventType, data: Value) {
    emit_until(
        app,
        organization_id,
        event_type,
        data,
        Instant::now() + LIFECYCLE_DEADLINE,
    )
    .await;
}

/// [`emit`], with nothing started after `deadline`.
pub async fn emit_until(
    app: &App,
    organization_id: &str,
    event_type: EventType,
    data: Value,
    deadline: Instant,
) {
    let endpoints = match super::subscribers(app, organization_id, event_type).await {
        Ok(endpoints) => endpoints,
        Err(err) => {
            tracing::warn!(%err, event = event_type.as_str(), "could not read subscribers");
            return;
        }
    };
    if endpoints.is_empty() {
        return;
    }
    let event = Event::new(event_type, None, app.clock.now(), data);
    let deliveries = endpoints
        .iter()
        .map(|endpoint| deliver(app, endpoint, &event, deadline));
    for (endpoint, outcome) in endpoints
        .iter()
        .zip(futures_util::future::join_all(deliveries).await)
    {
        if let Delivered::Refused(last) = outcome {
            tracing::warn!(endpoint = %endpoint.id, event = %event.id, %last, "lifecycle event not delivered");
        }
    }
}
