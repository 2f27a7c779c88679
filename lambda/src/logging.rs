//! Logs in Lambda: JSON lines (CloudWatch), filtered by `RUST_LOG` (default `info`). Nothing
//! Flowline logs carries a key, a secret or a signature.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // A second initialisation (tests) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .try_init();
}
