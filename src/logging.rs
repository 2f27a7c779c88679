//! The local server's logs: human-readable lines on stderr, filtered by `RUST_LOG` (default
//! `info`). Nothing Flowline logs carries a key, a secret or a signature. The core's metric
//! events (`flowline_core::metrics`) are the Lambda functions' EMF lines; here they are not
//! logged.

use tracing_subscriber::EnvFilter;

/// `RUST_LOG` (default `info`), with the libraries' wire logging capped (see
/// `flowline_core::logging`).
pub fn filter() -> EnvFilter {
    let requested = std::env::var("RUST_LOG").ok();
    EnvFilter::new(format!(
        "{},{}=off",
        flowline_core::logging::log_filter(requested.as_deref()),
        flowline_core::metrics::TARGET
    ))
}

pub fn init() {
    let filter = filter();
    let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
}
