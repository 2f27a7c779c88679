//! Start-up of the local server from its environment (SPEC §6).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use flowline_adapters::redb::RedbStore;
use flowline_core::auth::{KeyKind, hash_key};
use flowline_core::config::{self, Config, StartupError, env};
use flowline_core::store::{Expect, Key, Table, Write};
use flowline_core::time::format_timestamp;
use flowline_core::{App, ids};

use crate::compose::{self, Scheduling, Storage};

pub const DEFAULT_ADDR: &str = "127.0.0.1:3000";
/// Where the persistent store lives unless `FLOWLINE_DATA_DIR` says otherwise (relative to the
/// working directory).
pub const DEFAULT_DATA_DIR: &str = ".flowline";
/// The data directory's signing key (base64), beside the database.
pub const SIGNING_KEY_FILE: &str = "signing-key";

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
    // Everything the environment says is checked before anything is touched.
    let addr: SocketAddr = config::var(env::ADDR)
        .unwrap_or_else(|| DEFAULT_ADDR.to_owned())
        .parse()
        .map_err(|err| StartupError::Invalid {
            name: env::ADDR,
            reason: format!("{err}"),
        })?;
    let api_keys = config::var(env::API_KEYS)
        .map(|text| parse_api_keys(&text))
        .transpose()?;
    let configured_signing_key = config::signing_key_from_env()?;
    let limits = config::limits_from_env()?;
    let store = config::var(env::STORE);
    if let Some(other) = store
        .as_deref()
        .filter(|store| !["persistent", "memory", "dynamodb"].contains(store))
    {
        return Err(StartupError::Invalid {
            name: env::STORE,
            reason: format!("{other}: use persistent, memory or dynamodb"),
        });
    }
    let scheduler = config::var(env::SCHEDULER);
    if let Some(other) = scheduler
        .as_deref()
        .filter(|scheduler| !["in-process", "eventbridge"].contains(scheduler))
    {
        return Err(StartupError::Invalid {
            name: env::SCHEDULER,
            reason: format!("{other}: use in-process or eventbridge"),
        });
    }
    // The AWS configuration only when something uses AWS: finding a region can take seconds.
    let sdk_config =
        if store.as_deref() == Some("dynamodb") || scheduler.as_deref() == Some("eventbridge") {
            Some(flowline_adapters::sdk::load().await)
        } else {
            None
        };
    let aws = || sdk_config.as_ref().expect("loaded when AWS is used");

    // The data directory before the address: a second server on it stops here, whatever its
    // address.
    let storage = match store.as_deref() {
        Some("memory") => Storage::Memory,
        Some("dynamodb") => Storage::dynamodb(aws()),
        _ => Storage::persistent(&data_dir())?,
    };
    let persistent = match &storage {
        Storage::Persistent(store) => Some(store.clone()),
        _ => None,
    };
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

    // Without a configured key, tokens are signed with the data directory's own key (so they
    // outlive a restart, as the data does), or in memory with a key of this process only.
    let signing_key = match (configured_signing_key, &persistent) {
        (Some(key), _) => key,
        (None, Some(store)) => data_dir_signing_key(store.directory())?,
        (None, None) => ids::random_bytes::<32>().to_vec(),
    };
    let config = Config {
        public_base_url: config::public_base_url_from_env()
            .unwrap_or_else(|| format!("http://{addr}")),
        allow_private_targets: config::allow_private_targets_from_env(),
        request_budget: flowline_core::deadline::HTTP_BUDGET,
        limits,
    };
    let scheduling = match scheduler.as_deref() {
        Some("eventbridge") => Scheduling::eventbridge(aws()),
        _ => Scheduling::InProcess,
    };
    let in_process = matches!(scheduling, Scheduling::InProcess);
    let app = compose::build(storage, scheduling, &signing_key, config, true)
        .await?
        .app;
    if in_process {
        rearm_timers(&app).await?;
    }
    register_keys(&app, api_keys, persistent.as_deref()).await?;
    tokio::spawn(sweep_periodically(Arc::downgrade(&app)));

    tracing::info!(%addr, "Flowline is listening");
    println!("Flowline is listening on http://{addr}");
    let served = crate::server::serve(listener, app, stop_requested()).await;
    if let Some(store) = persistent {
        // Writes in flight finish; the file is closed cleanly, so the next start need not
        // check it whole.
        let closed = tokio::task::spawn_blocking(move || store.close()).await;
        if let Ok(Err(err)) = closed {
            tracing::warn!(%err, "could not close the data directory cleanly");
        }
    }
    served.map_err(|err| StartupError::Invalid {
        name: env::ADDR,
        reason: err.to_string(),
    })
}

/// `FLOWLINE_DATA_DIR`, else `.flowline` in the working directory.
pub fn data_dir() -> PathBuf {
    config::var(env::DATA_DIR).map_or_else(|| PathBuf::from(DEFAULT_DATA_DIR), PathBuf::from)
}

/// Ctrl-C, or a polite kill (SIGTERM).
async fn stop_requested() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// The data directory's signing key (page tokens): made on its first start, kept beside the
/// data, readable by its owner only.
fn data_dir_signing_key(directory: &Path) -> Result<Vec<u8>, StartupError> {
    let path = directory.join(SIGNING_KEY_FILE);
    let unusable = |err: std::io::Error| {
        StartupError::DataDirectory(format!("cannot use {}: {err}", path.display()))
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => return config::signing_key(text.trim()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(unusable(err)),
    }
    let key = ids::random_bytes::<32>();
    let text = base64::engine::general_purpose::STANDARD.encode(key);
    // Written aside and renamed: a crash never leaves half a key.
    let partial = directory.join(format!("{SIGNING_KEY_FILE}.partial"));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&partial).map_err(unusable)?;
    std::io::Write::write_all(&mut file, text.as_bytes()).map_err(unusable)?;
    file.sync_all().map_err(unusable)?;
    std::fs::rename(&partial, &path).map_err(unusable)?;
    Ok(key.to_vec())
}

/// Arms the in-process timers again for the callbacks and delivery retries waiting in the store
/// (none in memory on a first start): they died with the last process.
async fn rearm_timers(app: &App) -> Result<(), StartupError> {
    let report = flowline_core::jobs::rearm(app).await.map_err(|err| {
        StartupError::DataDirectory(format!(
            "cannot read the callbacks and retries waiting: {}",
            err.message
        ))
    })?;
    if report.scheduled + report.dispatching + report.retries > 0 {
        tracing::info!(
            scheduled = report.scheduled,
            dispatching = report.dispatching,
            retries = report.retries,
            "timers armed again for the callbacks and webhook retries waiting"
        );
        println!(
            "Waiting: {} callbacks scheduled, {} dispatching, {} webhook retries (timers armed again)",
            report.scheduled, report.dispatching, report.retries
        );
    }
    Ok(())
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

/// Registers `FLOWLINE_API_KEYS`; or, in a data directory that already has its organization,
/// says which it is and how to make another key; or else makes one organization with a public
/// and a private key and prints them: the one place a key is ever printed.
async fn register_keys(
    app: &App,
    api_keys: Option<Vec<(String, String)>>,
    persistent: Option<&RedbStore>,
) -> Result<(), StartupError> {
    let now = format_timestamp(app.clock.now());
    if let Some(api_keys) = api_keys {
        for (key, organization_id) in api_keys {
            let name = format!("env-{}", &hash_key(&key)[..8]);
            app.keys
                .register(&key, &organization_id, &name, &now)
                .await?;
        }
        return Ok(());
    }
    if let Some(store) = persistent
        && let Some(organization_id) = served_organization(&store.keys()).await?
    {
        let directory = store.directory().display();
        println!("Organization {organization_id}");
        println!(
            "  its keys were printed when {directory} was made (only their hashes are kept); for another, stop the server and run:"
        );
        println!(
            "  cargo run -p flowline-admin -- --data-dir {directory} keys create --org {organization_id} --kind private --name NAME"
        );
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
    // Remembered after its keys: a start that dies in between makes a new organization next
    // time rather than one without keys.
    if let Some(store) = persistent {
        remember_organization(&store.keys(), &organization_id).await?;
    }
    println!("Organization {organization_id}");
    println!("  public key (reads):   {public}");
    println!("  private key (writes): {private}");
    Ok(())
}

/// The keys table's note of the organization a data directory's server made on its first start.
fn served_organization_key() -> Key {
    Key::new("LOCAL", "ORGANIZATION")
}

async fn served_organization(keys: &dyn Table) -> Result<Option<String>, StartupError> {
    let Some(item) = keys.get(&served_organization_key()).await? else {
        return Ok(None);
    };
    Ok(item
        .doc
        .get("organization_id")
        .and_then(|id| id.as_str())
        .map(str::to_owned))
}

async fn remember_organization(
    keys: &dyn Table,
    organization_id: &str,
) -> Result<(), StartupError> {
    keys.write(vec![Write::put(
        served_organization_key(),
        &serde_json::json!({ "organization_id": organization_id }),
        Expect::Anything,
    )?])
    .await?;
    Ok(())
}
