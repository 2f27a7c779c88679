//! A [`WebhookSender`] for in-process tests on tokio's paused clock
//! (`#[tokio::test(start_paused = true)]`): it answers each POST from a script kept per URL (an
//! HTTP answer, or silence until the attempt's timeout runs out) and records every POST with
//! the moment it started — tokio time since the sender was made — and the timeout it was given.
//! On paused time the delivery policy's pauses and timeouts pass in virtual time, so a test
//! asserts them exactly and never waits for them.
//!
//! It lives in tests/common because it reads and sleeps on tokio's clock (virtual on a paused
//! runtime, never the wall clock); the test files themselves keep no clock of their own
//! (tests/layers.rs).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use flowline_core::webhooks::sender::{Attempt, WebhookSender};
use serde_json::Value;
use tokio::time::Instant;

/// How the fake endpoint answers one POST.
#[derive(Debug, Clone)]
pub enum SenderReply {
    Answer {
        status: u16,
        body: String,
    },
    /// No answer at all: the attempt runs for its whole timeout, then fails as `timeout`.
    Silence,
}

impl SenderReply {
    pub fn status(status: u16) -> Self {
        Self::Answer {
            status,
            body: "{}".to_owned(),
        }
    }

    /// 200 with this body.
    pub fn ok_with(body: impl Into<String>) -> Self {
        Self::Answer {
            status: 200,
            body: body.into(),
        }
    }
}

/// One POST the sender was asked to make.
#[derive(Debug, Clone)]
pub struct SentPost {
    pub url: String,
    /// The event as sent (`{"id", "type", "created_at", "data"}`).
    pub event: Value,
    /// When the attempt started: tokio time since the sender was made.
    pub at: Duration,
    /// The timeout the attempt was given.
    pub timeout: Duration,
}

impl SentPost {
    pub fn event_type(&self) -> &str {
        self.event["type"].as_str().unwrap_or_default()
    }
}

type Hook = Box<dyn Fn(&SentPost) + Send + Sync>;

pub struct RecordingSender {
    origin: Instant,
    posts: Mutex<Vec<SentPost>>,
    scripts: Mutex<HashMap<String, VecDeque<SenderReply>>>,
    defaults: Mutex<HashMap<String, SenderReply>>,
    on_post: Mutex<Option<Hook>>,
}

impl RecordingSender {
    /// A sender whose time starts now (make it inside the test's runtime).
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            origin: Instant::now(),
            posts: Mutex::default(),
            scripts: Mutex::default(),
            defaults: Mutex::default(),
            on_post: Mutex::default(),
        })
    }

    /// The next answers of `url`, in order.
    pub fn script(&self, url: &str, replies: impl IntoIterator<Item = SenderReply>) {
        self.scripts
            .lock()
            .unwrap()
            .entry(url.to_owned())
            .or_default()
            .extend(replies);
    }

    /// How `url` answers once its script is used up (200 `{}` unless set).
    pub fn default_reply(&self, url: &str, reply: SenderReply) {
        self.defaults.lock().unwrap().insert(url.to_owned(), reply);
    }

    /// Runs `hook` on every POST as it starts (e.g. to move the application's clock).
    pub fn on_post(&self, hook: impl Fn(&SentPost) + Send + Sync + 'static) {
        *self.on_post.lock().unwrap() = Some(Box::new(hook));
    }

    pub fn posts(&self) -> Vec<SentPost> {
        self.posts.lock().unwrap().clone()
    }

    pub fn posts_of(&self, event_type: &str) -> Vec<SentPost> {
        self.posts()
            .into_iter()
            .filter(|post| post.event_type() == event_type)
            .collect()
    }

    /// Tokio time since the sender was made.
    pub fn since_origin(&self) -> Duration {
        Instant::now() - self.origin
    }

    /// The tokio instant `after` from now (a delivery deadline).
    pub fn deadline_in(&self, after: Duration) -> Instant {
        Instant::now() + after
    }
}

#[async_trait]
impl WebhookSender for RecordingSender {
    async fn post(
        &self,
        url: &str,
        _headers: Vec<(&'static str, String)>,
        body: Bytes,
        timeout: Duration,
    ) -> Attempt {
        let post = SentPost {
            url: url.to_owned(),
            event: serde_json::from_slice(&body).unwrap_or(Value::Null),
            at: self.since_origin(),
            timeout,
        };
        if let Some(hook) = self.on_post.lock().unwrap().as_ref() {
            hook(&post);
        }
        self.posts.lock().unwrap().push(post);
        let reply = self
            .scripts
            .lock()
            .unwrap()
            .get_mut(url)
            .and_then(VecDeque::pop_front)
            .or_else(|| self.defaults.lock().unwrap().get(url).cloned())
            .unwrap_or_else(|| SenderReply::status(200));
        match reply {
            SenderReply::Answer { status, body } => Attempt::Answered {
                status,
                body: body.into(),
            },
            SenderReply::Silence => {
                tokio::time::sleep(timeout).await;
                Attempt::Failed("timeout".to_owned())
            }
        }
    }
}
