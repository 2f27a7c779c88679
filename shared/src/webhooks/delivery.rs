//! Delivering events to endpoints: Standard Webhooks signing, the retry policy of SPEC §4, and
//! the [`WebhookSender`] trait that does one HTTP POST (the real one, [`HttpSender`], refuses
//! non-public targets at connect time and never follows redirects).

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;

use super::target::{PublicOnlyResolver, is_public_ip};
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
/// How much of an answer is read (enough for `{"session_id": …}`).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// What one POST came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Answered {
        status: u16,
        body: Bytes,
    },
    /// No HTTP answer: timeout, refused connection, refused target…
    Failed(String),
}

#[async_trait]
pub trait WebhookSender: Send + Sync {
    async fn post(
        &self,
        url: &str,
        headers: Vec<(&'static str, String)>,
        body: Bytes,
        timeout: Duration,
    ) -> Attempt;
}

pub struct HttpSender {
    /// Built on the first delivery: most functions never deliver, and loading TLS roots is
    /// start-up time they should not pay.
    client: std::sync::OnceLock<reqwest::Client>,
    allow_private: bool,
}

impl HttpSender {
    pub fn new(allow_private: bool) -> Self {
        Self {
            client: std::sync::OnceLock::new(),
            allow_private,
        }
    }

    fn client(&self) -> &reqwest::Client {
        self.client.get_or_init(|| {
            let mut builder = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .user_agent(concat!("Flowline-Webhooks/", env!("CARGO_PKG_VERSION")));
            if !self.allow_private {
                builder = builder.dns_resolver(std::sync::Arc::new(PublicOnlyResolver));
            }
            builder.build().expect("the webhook HTTP client builds")
        })
    }
}

#[async_trait]
impl WebhookSender for HttpSender {
    async fn post(
        &self,
        url: &str,
        headers: Vec<(&'static str, String)>,
        body: Bytes,
        timeout: Duration,
    ) -> Attempt {
        let parsed = match super::target::check_url_form(url, self.allow_private) {
            Ok(parsed) => parsed,
            Err(message) => return Attempt::Failed(format!("refused target: {message}")),
        };
        // The resolver guards names; literal addresses never reach it.
        if !self.allow_private
            && let Some(host) = parsed.host_str()
            && let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse()
            && !is_public_ip(ip)
        {
            return Attempt::Failed("refused target: non-public address".to_owned());
        }
        let mut request = self
            .client()
            .post(parsed)
            .timeout(timeout)
            .header("content-type", "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) if err.is_timeout() => return Attempt::Failed("timeout".to_owned()),
            Err(err) if err.is_connect() => return Attempt::Failed("connection failed".to_owned()),
            Err(_) => return Attempt::Failed("request failed".to_owned()),
        };
        let status = response.status().as_u16();
        let mut body = Vec::new();
        let mut response = response;
        loop {
            match tokio::time::timeout(timeout, response.chunk()).await {
                Ok(Ok(Some(chunk))) if body.len() + chunk.len() <= MAX_ANSWER_BYTES => {
                    body.extend_from_slice(&chunk)
                }
                // An answer too long, too slow or broken still counts by its status.
                _ => break,
            }
        }
        Attempt::Answered {
            status,
            body: body.into(),
        }
    }
}

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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A loopback listener that counts the connections it accepts and answers every request
    /// with `reply` (a raw HTTP/1.1 response).
    struct Listener {
        port: u16,
        connections: Arc<AtomicUsize>,
    }

    impl Listener {
        async fn start(reply: String) -> Self {
            let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = socket.local_addr().unwrap().port();
            let connections = Arc::new(AtomicUsize::new(0));
            let counted = connections.clone();
            tokio::spawn(async move {
                while let Ok((mut stream, _)) = socket.accept().await {
                    counted.fetch_add(1, Ordering::SeqCst);
                    let reply = reply.clone();
                    tokio::spawn(async move {
                        read_request(&mut stream).await;
                        let _ = stream.write_all(reply.as_bytes()).await;
                        let _ = stream.shutdown().await;
                    });
                }
            });
            Self { port, connections }
        }

        fn connections(&self) -> usize {
            self.connections.load(Ordering::SeqCst)
        }
    }

    /// Reads one request (head and `Content-Length` body), or until the peer stops sending.
    async fn read_request(stream: &mut tokio::net::TcpStream) {
        let mut seen = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let read = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut chunk)).await;
            let Ok(Ok(n)) = read else { return };
            if n == 0 {
                return;
            }
            seen.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&seen);
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|line| {
                        let (name, value) = line.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if seen.len() >= end + 4 + length {
                    return;
                }
            }
        }
    }

    fn ok_reply() -> String {
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}".to_owned()
    }

    async fn post(sender: &HttpSender, url: &str) -> Attempt {
        sender
            .post(
                url,
                vec![("webhook-id", "evt_test".to_owned())],
                Bytes::from_static(b"{}"),
                Duration::from_secs(5),
            )
            .await
    }

    /// Gives a connection that should not happen the time to happen anyway.
    async fn settle() {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    #[tokio::test]
    async fn a_guarded_sender_refuses_loopback_without_connecting() {
        let listener = Listener::start(ok_reply()).await;
        let sender = HttpSender::new(false);
        for url in [
            format!("http://127.0.0.1:{}/hook", listener.port),
            format!("https://127.0.0.1:{}/hook", listener.port),
            format!("https://localhost:{}/hook", listener.port),
            format!("https://[::ffff:127.0.0.1]:{}/hook", listener.port),
            format!("https://2130706433:{}/hook", listener.port),
        ] {
            let outcome = post(&sender, &url).await;
            assert!(matches!(outcome, Attempt::Failed(_)), "{url}: {outcome:?}");
        }
        settle().await;
        assert_eq!(listener.connections(), 0, "no connection was even opened");
    }

    #[tokio::test]
    async fn an_allowing_sender_reaches_loopback() {
        let listener = Listener::start(ok_reply()).await;
        let sender = HttpSender::new(true);
        let outcome = post(&sender, &format!("http://127.0.0.1:{}/hook", listener.port)).await;
        assert_eq!(
            outcome,
            Attempt::Answered {
                status: 200,
                body: Bytes::from_static(b"{}")
            }
        );
        assert_eq!(listener.connections(), 1);

        // Over https the plain listener cannot complete a handshake, but it was reached.
        let outcome = post(
            &sender,
            &format!("https://127.0.0.1:{}/hook", listener.port),
        )
        .await;
        assert!(matches!(outcome, Attempt::Failed(_)), "{outcome:?}");
        settle().await;
        assert_eq!(listener.connections(), 2);
    }

    #[tokio::test]
    async fn redirects_are_answers_not_followed() {
        let elsewhere = Listener::start(ok_reply()).await;
        let redirecting = Listener::start(format!(
            "HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:{}/inside\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            elsewhere.port
        ))
        .await;
        let sender = HttpSender::new(true);
        let outcome = post(
            &sender,
            &format!("http://127.0.0.1:{}/hook", redirecting.port),
        )
        .await;
        assert!(
            matches!(outcome, Attempt::Answered { status: 302, .. }),
            "{outcome:?}"
        );
        settle().await;
        assert_eq!(redirecting.connections(), 1);
        assert_eq!(elsewhere.connections(), 0, "the redirect was not followed");
    }
}
