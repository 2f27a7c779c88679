//! Logs and metrics in Lambda, in the conventions of AWS Lambda Powertools: JSON lines on
//! stdout (the template's `LoggingConfig` says JSON, so Lambda's own lines are JSON too), at the
//! level of `AWS_LAMBDA_LOG_LEVEL` (the template's `ApplicationLogLevel`) unless `RUST_LOG`
//! says otherwise, each line inside an invocation carrying the Lambda request id (`span`),
//! and one line per request or invocation with what an operator filters on (see
//! [`crate::http`]). Metric events become Embedded Metric Format lines
//! ([`crate::metrics`]) whatever the log level. Nothing Flowline logs carries a key, a secret
//! or a signature.

use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

use crate::metrics::EmfLayer;

/// The log filter: `RUST_LOG`, else `AWS_LAMBDA_LOG_LEVEL`, else `info`, with the libraries'
/// wire logging capped (see `flowline_core::logging`) and the metric events left to the EMF
/// layer. Plain `target=level` directives only (`Targets`): `EnvFilter`'s span and field
/// directives would link a regular-expression engine into every function for something Lambda's
/// log levels never need. A `RUST_LOG` that is not such a list is ignored for `info`.
pub fn filter() -> Targets {
    filter_for(
        std::env::var("RUST_LOG").ok().as_deref(),
        std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().as_deref(),
    )
}

fn filter_for(rust_log: Option<&str>, lambda_level: Option<&str>) -> Targets {
    let requested = flowline_core::logging::lambda_requested(rust_log, lambda_level);
    // `Targets` would read `target[span]=level` as a target named `target[span]`: such a
    // (EnvFilter) directive is ignored, as is one that does not parse.
    let readable = requested.filter(|text| !text.contains(['[', '{']));
    directives(readable.as_deref())
        .parse()
        .or_else(|_| directives(None).parse())
        .expect("the default directives parse")
}

fn directives(requested: Option<&str>) -> String {
    format!(
        "{},{}=off",
        flowline_core::logging::log_filter(requested),
        flowline_core::metrics::TARGET
    )
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

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::*;

    #[test]
    fn the_filter_reads_plain_directives_and_falls_back_to_info() {
        let metrics = flowline_core::metrics::TARGET;
        let debug = filter_for(Some("debug"), Some("ERROR"));
        assert!(debug.would_enable("flowline_core::callbacks", &Level::DEBUG));
        assert!(!debug.would_enable(metrics, &Level::ERROR));
        let lambda = filter_for(None, Some("WARN"));
        assert!(lambda.would_enable("flowline_lambda", &Level::WARN));
        assert!(!lambda.would_enable("flowline_lambda", &Level::INFO));
        // Tracing everything still caps the SDK's wire logging (flowline_core::logging).
        let trace = filter_for(Some("trace"), None);
        assert!(trace.would_enable("flowline_core", &Level::TRACE));
        assert!(!trace.would_enable("aws_smithy_runtime::client::orchestrator", &Level::TRACE));
        // A span directive is EnvFilter syntax, not a target list: info.
        let fallback = filter_for(Some("flowline[dispatch]=trace"), None);
        assert!(fallback.would_enable("flowline_core", &Level::INFO));
        assert!(!fallback.would_enable("flowline_core", &Level::DEBUG));
        assert!(!fallback.would_enable(metrics, &Level::ERROR));
    }
}
