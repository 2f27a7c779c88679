//! A webhook receiver on loopback for the tests: records every delivery and answers with
//! scripted replies (then a default one).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            body: "{}".to_owned(),
            delay: Duration::ZERO,
        }
    }

    pub fn session(session_id: &str) -> Self {
        Self {
            status: 200,
            body: serde_json::json!({ "session_id": session_id }).to_string(),
            delay: Duration::ZERO,
        }
    }

    pub fn slow(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

#[derive(Debug, Clone)]
pub struct Delivery {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub json: Value,
    pub at: std::time::Instant,
    /// The status the receiver answered it with.
    pub answered: u16,
}

impl Delivery {
    pub fn event_type(&self) -> &str {
        self.json["type"].as_str().unwrap_or_default()
    }

    /// Its `webhook-id` header.
    pub fn webhook_id(&self) -> &str {
        self.headers
            .get("webhook-id")
            .and_then(|id| id.to_str().ok())
            .unwrap_or_default()
    }

    pub fn accepted(&self) -> bool {
        (200..300).contains(&self.answered)
    }

    /// Whether `webhook-signature` lists the signature `secret` makes of this delivery (signed
    /// by the reference implementation). Unlike [`signed_by`](Self::signed_by) it ignores the
    /// timestamp's age, so it also checks deliveries made on a clock moved days ahead.
    pub fn carries_signature_of(&self, secret: &str) -> bool {
        let header = |name: &str| {
            self.headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
        };
        let Ok(timestamp) = header("webhook-timestamp").parse::<i64>() else {
            return false;
        };
        let Ok(expected) = standardwebhooks::Webhook::new(secret)
            .and_then(|w| w.sign(self.webhook_id(), timestamp, &self.body))
        else {
            return false;
        };
        header("webhook-signature")
            .split(' ')
            .any(|s| s == expected)
    }

    /// Checks the Standard Webhooks signature with the reference implementation.
    pub fn signed_by(&self, secret: &str) -> bool {
        standardwebhooks::Webhook::new(secret)
            .and_then(|w| w.verify(&self.body, &self.headers))
            .is_ok()
    }
}

#[derive(Default)]
struct Inner {
    deliveries: Vec<Delivery>,
    script: VecDeque<Reply>,
    default: Option<Reply>,
    /// Requests being answered now, and the most there ever were at once.
    in_flight: usize,
    max_in_flight: usize,
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
    /// While `true`, requests are held unanswered (see [`Receiver::hold`]).
    held: Arc<tokio::sync::watch::Sender<bool>>,
}

#[derive(Clone)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    held: Arc<tokio::sync::watch::Sender<bool>>,
}

async fn receive(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let inner = &shared.inner;
    let reply = {
        let mut inner = inner.lock().unwrap();
        let reply = inner
            .script
            .pop_front()
            .or_else(|| inner.default.clone())
            .unwrap_or_else(|| Reply::status(200));
        let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
        inner.deliveries.push(Delivery {
            headers,
            body,
            json,
            at: std::time::Instant::now(),
            answered: reply.status,
        });
        inner.in_flight += 1;
        inner.max_in_flight = inner.max_in_flight.max(inner.in_flight);
        reply
    };
    // Held until released (a receiver that hangs, on purpose).
    let mut held = shared.held.subscribe();
    let _ = held.wait_for(|held| !*held).await;
    // A slow receiver, on purpose (the test set the delay).
    tokio::time::sleep(reply.delay).await;
    inner.lock().unwrap().in_flight -= 1;
    (StatusCode::from_u16(reply.status).unwrap(), reply.body)
}

impl Receiver {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        let inner = Arc::new(Mutex::new(Inner::default()));
        let held = Arc::new(tokio::sync::watch::Sender::new(false));
        let shared = Shared {
            inner: inner.clone(),
            held: held.clone(),
        };
        let router = axum::Router::new().fallback(receive).with_state(shared);
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self { url, inner, held }
    }

    /// From now on, requests are received (and recorded) but not answered until
    /// [`release`](Self::release): a receiver that hangs.
    pub fn hold(&self) {
        self.held.send_replace(true);
    }

    /// Answers the held requests, and every later one at once.
    pub fn release(&self) {
        self.held.send_replace(false);
    }

    /// Requests being answered (or held) now.
    pub fn in_flight(&self) -> usize {
        self.inner.lock().unwrap().in_flight
    }

    /// Replies to the next deliveries, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.inner.lock().unwrap().script.extend(replies);
    }

    /// The reply once the script is used up (200 `{}` unless set).
    pub fn default_reply(&self, reply: Reply) {
        self.inner.lock().unwrap().default = Some(reply);
    }

    /// The most requests it was ever answering at once.
    pub fn max_in_flight(&self) -> usize {
        self.inner.lock().unwrap().max_in_flight
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.inner.lock().unwrap().deliveries.clone()
    }

    pub fn of_type(&self, event_type: &str) -> Vec<Delivery> {
        self.deliveries()
            .into_iter()
            .filter(|d| d.event_type() == event_type)
            .collect()
    }

    /// Waits until `count` deliveries of `event_type` arrived (or `within` passed).
    pub async fn wait_for(
        &self,
        event_type: &str,
        count: usize,
        within: Duration,
    ) -> Vec<Delivery> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let found = self.of_type(event_type);
            if found.len() >= count || tokio::time::Instant::now() >= deadline {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
