//! The port that does one webhook HTTP POST. The real one (`flowline_adapters::webhook_http`)
//! refuses non-public targets at connect time and never follows redirects; tests plug in their
//! own.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

/// How much of an answer a sender reads (enough for `{"session_id": …}`).
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

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

/// The sender of a process that did not wire one: a function whose route delivers nothing.
/// Reaching it is a wiring mistake, logged as such; the delivery fails like a refused target.
pub struct Unwired;

#[async_trait]
impl WebhookSender for Unwired {
    async fn post(
        &self,
        _url: &str,
        _headers: Vec<(&'static str, String)>,
        _body: Bytes,
        _timeout: Duration,
    ) -> Attempt {
        tracing::error!("no webhook sender is wired into this process");
        Attempt::Failed("no webhook sender is wired into this process".to_owned())
    }
}
