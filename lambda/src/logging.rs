//! Logs and metrics in Lambda, in the conventions of AWS Lambda Powertools: JSON lines on
//! stdout (the template's `LoggingConfig` says JSON, so Lambda's own lines are JSON too), at the
//! level of `AWS_LAMBDA_LOG_LEVEL` (the template's `ApplicationLogLevel`) unless `RUST_LOG`
//! says otherwise, each line inside an invocation carrying the Lambda request id (`span`),
//! and one line per request or invocation with what an operator filters on (see
//! [`crate::http`]). Metric events become Embedded Metric Format lines
//! ([`crate::metrics`]) whatever the log level. Nothing Flowline logs carries a key, a secret
//! or a signature.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

use crate::metrics::EmfLayer;

/// The log filter: `RUST_LOG`, else `AWS_LAMBDA_LOG_LEVEL`, else `info`, with the libraries'
/// wire logging capped (see `flowline_core::logging`) and the metric events left to the EMF
/// layer.
pub fn filter() -> EnvFilter {
    let rust_log = std::env::var("RUST_LOG").ok();
    let lambda_level = std::env::var("AWS_LAMBDA_LOG_LEVEL").ok();
    let requested =
        flowline_core::logging::lambda_requested(rust_log.as_deref(), lambda_level.as_deref());
    EnvFilter::new(format!(
        "{},{}=off",
        flowline_core::logging::log_filter(requested.as_deref()),
        flowline_core::metrics::TARGET
    ))
}

/// The function's subscriber, writing to `writer` (stdout in Lambda; a buffer in tests).
pub fn subscriber<W>(writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'writer> MakeWriter<'writer> + Clone + Send + Sync + 'static,
{
    let logs = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_writer(writer.clone())
        .with_filter(filter());
    let metrics = EmfLayer::from_env(writer).with_filter(
        Targets::new().with_target(flowline_core::metrics::TARGET, tracing::Level::TRACE),
    );
    tracing_subscriber::registry().with(logs).with(metrics)
}

pub fn init() {
    // A second initialisation (tests) keeps the first subscriber.
    let _ = tracing::subscriber::set_global_default(subscriber(std::io::stdout));
}
