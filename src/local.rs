//! Start-up of the local server from its environment (SPEC §6).

use std::net::SocketAddr;
use std::sync::Arc;

use flowline_core::auth::{KeyKind, hash_key};
use flowline_core::config::{self, Config, StartupError, env};
use flowline_core::time::format_timestamp;
use flowline_core::{App, ids};

use crate::compose::{self, Scheduling, Storage};

pub const DEFAULT_ADDR: &str = "127.0.0.1:3000";

/// `FLOWLINE_API_KEYS="<key>=<organization_id>[,…]"`.
pub fn parse_api_keys(text: &str) -> Result<Vec<(String, String)>, StartupError> {
    let invalid = |reason: String| StartupError::Invalid {
        name: env::API_KEYS,
        reason,
    };
    text.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let (key, organization) = entry
                .split_once('=')
                .ok_or_else(|| invalid("each entry is <key>=<organization_id>".into()))?;
            let (key, organization) = (key.trim(), organization.trim());
            if KeyKind::of_key(key).is_none() || key.len() < 8 {
                return Err(invalid(
                    "keys start with pk_ or sk_ and have at least 8 characters".into(),
                ));
            }
            if organization.is_empty() {
                return Err(invalid("an entry has no organization".into()));
            }
            Ok((key.to_owned(), organization.to_owned()))
        })
        .collect()
}

pub async fn run() -> Result<(), StartupError> {
    let addr: SocketAddr = config::var(env::ADDR)
        .unwrap_or_else(|| DEFAULT_ADDR.to_owned())
        .parse()
        .map_err(|err| StartupError::Invalid {
            name: env::ADDR,
            reason: format!("{err}"),
        })?;
    let listener =
        tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|err| StartupError::Invalid {
                name: env::ADDR,
                reason: format!("cannot listen on {addr}: {err}"),
            })?;
    let addr = listener.local_addr().map_err(|err| StartupError::Invalid {
        name: env::ADDR,
        reason: err.to_string(),
    })?;

    // Without a configured key, tokens are signed with a key of this process only.
    let signing_key =
        config::signing_key_from_env()?.unwrap_or_else(|| ids::random_bytes::<32>().to_vec());
    let config = Config {
        public_base_url: config::public_base_url_from_env()
            .unwrap_or_else(|| format!("http://{addr}")),
        allow_private_targets: config::allow_private_targets_from_env(),
        request_budget: flowline_core::deadline::HTTP_BUDGET,
        limits: config::limits_from_env()?,
    };
    let sdk_config = flowline_adapters::sdk::load().await;
    let storage = match config::var(env::STORE).as_deref() {
        None | Some("memory") => Storage::Memory,
        Some("dynamodb") => Storage::dynamodb(&sdk_config),
        Some(other) => {
            return Err(StartupError::Invalid {
                name: env::STORE,
                reason: format!("{other}: use memory or dynamodb"),
            });
        }
    };
    let scheduling = match config::var(env::SCHEDULER).as_deref() {
        None | Some("in-process") => Scheduling::InProcess,
        Some("eventbridge") => Scheduling::eventbridge(&sdk_config),
        Some(other) => {
            return Err(StartupError::Invalid {
                name: env::SCHEDULER,
                reason: format!("{other}: use in-process or eventbridge"),
            });
        }
    };
    let app = compose::build(storage, scheduling, &signing_key, config, true)
        .await?
        .app;
    register_keys(&app).await?;
    tokio::spawn(sweep_periodically(Arc::downgrade(&app)));

    tracing::info!(%addr, "Flowline is listening");
    println!("Flowline is listening on http://{addr}");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    crate::server::serve(listener, app, shutdown)
        .await
        .map_err(|err| StartupError::Invalid {
            name: env::ADDR,
            reason: err.to_string(),
        })
}

/// How often the local server sweeps: it stands in for the cloud's 5-minute sweeper, and is the
/// only thing that dispatches when schedules live in an emulator that never fires them.
pub const SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);

async fn sweep_periodically(app: std::sync::Weak<App>) {
    let mut ticks = tokio::time::interval(SWEEP_INTERVAL);
    loop {
        ticks.tick().await;
        let Some(app) = app.upgrade() else { return };
        if let Err(err) = flowline_core::sweeper::sweep(&app, SWEEP_INTERVAL).await {
            tracing::warn!(error = %err.message, "sweep failed");
        }
    }
}

/// Registers `FLOWLINE_API_KEYS`, or makes one organization with a public and a private key
/// and prints them: the one place a key is ever printed.
async fn register_keys(app: &App) -> Result<(), StartupError> {
    let now = format_timestamp(app.clock.now());
    if let Some(text) = config::var(env::API_KEYS) {
        for (key, organization_id) in parse_api_keys(&text)? {
            let name = format!("env-{}", &hash_key(&key)[..8]);
            app.keys
                .register(&key, &organization_id, &name, &now)
                .await?;
        }
        return Ok(());
    }
    let organization_id = ids::new_id("org_", app.clock.now().as_millisecond());
    let (public, _) = app
        .keys
        .create(&organization_id, KeyKind::Public, "local-public", &now)
        .await?;
    let (private, _) = app
        .keys
        .create(&organization_id, KeyKind::Private, "local-private", &now)
        .await?;
    println!("Organization {organization_id}");
    println!("  public key (reads):   {public}");
    println!("  private key (writes): {private}");
    Ok(())
}
