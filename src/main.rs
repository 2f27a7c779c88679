//! `cargo run`: Flowline on 127.0.0.1:3000 (see README.md for the environment it reads).

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    flowline::logging::init();
    match flowline::local::run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("flowline: {err}");
            ExitCode::FAILURE
        }
    }
}
