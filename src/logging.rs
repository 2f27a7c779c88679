//! The local server's logs: human-readable lines on stderr, filtered by `RUST_LOG` (default
//! `info`). Nothing Flowline logs carries a key, a secret or a signature.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
}
