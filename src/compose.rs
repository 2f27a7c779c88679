//! The local server's composition root: which store and scheduler it runs on, and the
//! application made of them. The embedded parts come from `flowline-core`, the AWS ones and the
//! HTTP webhook sender from `flowline-adapters` — the same adapters the Lambda functions use.

use std::path::Path;
use std::sync::Arc;

use flowline_adapters::dynamodb::DynamoTable;
use flowline_adapters::eventbridge::{EventBridgeScheduler, EventBridgeSettings};
use flowline_adapters::redb::{OpenError, RedbStore};
use flowline_adapters::webhook_http::HttpSender;
use flowline_core::App;
use flowline_core::config::{
    self, Config, DEFAULT_KEYS_TABLE, DEFAULT_SCHEDULE_GROUP, DEFAULT_TABLE, StartupError, env,
};
use flowline_core::scheduler::in_process::InProcessScheduler;
use flowline_core::store::Table;
use flowline_core::store::memory::MemoryTable;
use flowline_core::time::{Clock, SystemClock};
use flowline_core::webhooks::relay;

/// Which tables to use.
pub enum Storage {
    /// Fresh tables in memory, gone with the process (`FLOWLINE_STORE=memory`).
    Memory,
    /// The local default: both tables in one file of a data directory, opened (and so owned)
    /// by this process.
    Persistent(Arc<RedbStore>),
    DynamoDb {
        client: aws_sdk_dynamodb::Client,
        table: String,
        keys_table: String,
    },
}

impl Storage {
    /// DynamoDB with the table names of the environment (or the defaults).
    pub fn dynamodb(sdk_config: &aws_config::SdkConfig) -> Self {
        Self::DynamoDb {
            client: aws_sdk_dynamodb::Client::new(sdk_config),
            table: config::var(env::TABLE).unwrap_or_else(|| DEFAULT_TABLE.to_owned()),
            keys_table: config::var(env::KEYS_TABLE)
                .unwrap_or_else(|| DEFAULT_KEYS_TABLE.to_owned()),
        }
    }

    /// Opens the store in `data_dir` (creating it on first use). Fails when another process
    /// holds the directory: one process owns a data directory.
    pub fn persistent(data_dir: &Path) -> Result<Self, StartupError> {
        match RedbStore::open(data_dir) {
            Ok(store) => Ok(Self::Persistent(Arc::new(store))),
            Err(err @ OpenError::InUse(_)) => Err(StartupError::DataDirectory(format!(
                "{err}. Stop the other process first, or start this one with another {}.",
                env::DATA_DIR
            ))),
            Err(err) => Err(StartupError::DataDirectory(err.to_string())),
        }
    }

    /// The main and keys tables; `create` makes missing DynamoDB tables (local use: in the
    /// cloud the SAM template owns them).
    pub async fn open(
        self,
        create: bool,
    ) -> Result<(Arc<dyn Table>, Arc<dyn Table>), StartupError> {
        match self {
            Self::Memory => Ok((Arc::new(MemoryTable::new()), Arc::new(MemoryTable::new()))),
            Self::Persistent(store) => Ok((Arc::new(store.main()), Arc::new(store.keys()))),
            Self::DynamoDb {
                client,
                table,
                keys_table,
            } => {
                let store = DynamoTable::new(client.clone(), table);
                let keys = DynamoTable::new(client, keys_table);
                if create {
                    store.ensure_exists().await?;
                    keys.ensure_exists().await?;
                }
                Ok((Arc::new(store), Arc::new(keys)))
            }
        }
    }
}

/// Which scheduler to use. "Dispatch now" always runs in this process: a local server has no
/// dispatch function to invoke.
pub enum Scheduling {
    InProcess,
    EventBridge {
        client: aws_sdk_scheduler::Client,
        settings: EventBridgeSettings,
    },
}

impl Scheduling {
    /// EventBridge Scheduler with the settings of the environment, or placeholders (the
    /// emulator never fires schedules, so their target need not exist).
    pub fn eventbridge(sdk_config: &aws_config::SdkConfig) -> Self {
        let or = |name, local: &str| config::var(name).unwrap_or_else(|| local.to_owned());
        let settings = EventBridgeSettings {
            group: or(env::SCHEDULE_GROUP, DEFAULT_SCHEDULE_GROUP),
            dispatch_function_arn: or(
                env::DISPATCH_FUNCTION_ARN,
                "arn:aws:lambda:us-east-1:000000000000:function:flowline-dispatch",
            ),
            role_arn: or(
                env::SCHEDULER_ROLE_ARN,
                "arn:aws:iam::000000000000:role/flowline-scheduler",
            ),
            dead_letter_arn: config::var(env::DISPATCH_DLQ_ARN),
        };
        Self::EventBridge {
            client: aws_sdk_scheduler::Client::new(sdk_config),
            settings,
        }
    }
}

/// The local application, the in-process timers it runs (its scheduler, or with EventBridge
/// only its "now"), and the relay that hands out its outbox (what the cloud's `deliver`
/// function does from the table's stream).
pub struct Local {
    pub app: Arc<App>,
    pub timers: Arc<InProcessScheduler>,
    pub relay: tokio::task::AbortHandle,
}

/// The local application. `create_resources` makes missing tables and the schedule group.
pub async fn build(
    storage: Storage,
    scheduling: Scheduling,
    signing_key: &[u8],
    config: Config,
    create_resources: bool,
) -> Result<Local, StartupError> {
    build_with_clock(
        storage,
        scheduling,
        signing_key,
        config,
        create_resources,
        Arc::new(SystemClock),
    )
    .await
}

/// [`build`] on a clock of the caller's (tests move time with theirs).
pub async fn build_with_clock(
    storage: Storage,
    scheduling: Scheduling,
    signing_key: &[u8],
    config: Config,
    create_resources: bool,
    clock: Arc<dyn Clock>,
) -> Result<Local, StartupError> {
    let (store, keys) = storage.open(create_resources).await?;
    // Writes that queue outbox work wake the relay at once.
    let store = Arc::new(relay::Signaling::new(store));
    let signal = store.signal();
    let in_process = Arc::new(InProcessScheduler::new(clock.clone()));
    let sender = Arc::new(HttpSender::new(config.allow_private_targets));
    let builder = App::builder(store, keys, config)
        .clock(clock.clone())
        .sender(sender)
        .signing_key(signing_key);
    let builder = match scheduling {
        Scheduling::InProcess => builder.in_process(in_process.clone()),
        Scheduling::EventBridge { client, settings } => {
            let group = settings.group.clone();
            let scheduler = EventBridgeScheduler::new(client, settings, clock.clone());
            if create_resources {
                scheduler
                    .ensure_group()
                    .await
                    .map_err(|err| StartupError::Invalid {
                        name: env::SCHEDULE_GROUP,
                        reason: format!("{group}: {err}"),
                    })?;
            }
            builder
                .scheduler(Arc::new(scheduler))
                .in_process_invoker(in_process.clone())
        }
    };
    let app = builder.build();
    let relay = relay::spawn(Arc::downgrade(&app), signal).abort_handle();
    Ok(Local {
        app,
        timers: in_process,
        relay,
    })
}
