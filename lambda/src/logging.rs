//! Logs in Lambda: JSON lines (CloudWatch), filtered by `RUST_LOG` (default `info`). Nothing
//! Flowline logs carries a key, a secret or a signature.

use tracing_subscriber::EnvFilter;

/// `RUST_LOG` (default `info`), with the libraries' wire logging capped (see
/// `flowline_core::logging`).
pub fn filter() -> EnvFilter {
    let requested = std::env::var("RUST_LOG").ok();
    EnvFilter::new(flowline_core::logging::log_filter(requested.as_deref()))
}

pub fn init() {
    let filter = filter();
    // A second initialisation (tests) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .try_init();
}
