//! `cargo run -p flowline-admin -- keys create --org ORG --kind private --name NAME` (see `lib.rs`).

use std::process::ExitCode;

use clap::Parser;
use flowline_admin::{AdminError, Cli, open_data_dir_keys, open_keys, run};
use flowline_core::store::StoreError;
use flowline_core::time::{Clock, SystemClock, format_timestamp};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let opened = match &cli.data_dir {
        Some(data_dir) => open_data_dir_keys(data_dir),
        None => {
            let sdk_config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            open_keys(&cli, &sdk_config).await
        }
    };
    // The keys (and with a data directory, its file) are closed when this match ends.
    let outcome = match opened {
        Ok(keys) => {
            let now = format_timestamp(SystemClock.now());
            run(
                &cli.command,
                &keys,
                &now,
                &mut std::io::stdout(),
                &mut std::io::stderr(),
            )
            .await
        }
        Err(err) => Err(err),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            if cli.data_dir.is_none()
                && matches!(err, AdminError::Store(StoreError::Unavailable(_)))
            {
                eprintln!(
                    "hint: does the keys table {:?} exist (--create-table makes it), and is AWS \
                     configured (AWS_REGION; AWS_ENDPOINT_URL for an emulator)?",
                    cli.table
                );
            }
            ExitCode::FAILURE
        }
    }
}
