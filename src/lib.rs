//! The local server: every Flowline route on one address, served by the function crates' own
//! handlers, with the authorizer's logic in-process. `cargo run` starts it (see `main.rs`).

pub mod compose;
pub mod functions;
pub mod local;
pub mod logging;
pub mod server;
