//! The application: the adapters every route uses, built once per process (per Lambda sandbox,
//! or once by the local server) and borrowed by handlers.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::auth::KeyStore;
use crate::page::PageTokens;
use crate::scheduler::Scheduler;
use crate::scheduler::eventbridge::{self, EventBridgeScheduler, EventBridgeSettings, Immediate};
use crate::scheduler::in_process::InProcessScheduler;
use crate::store::Table;
use crate::store::dynamodb::DynamoTable;
use crate::store::memory::MemoryTable;
use crate::time::{Clock, SystemClock};
use crate::webhooks::delivery::{HttpSender, WebhookSender};

/// The signing key must carry at least this many bytes (SPEC §6).
pub const MIN_SIGNING_KEY_BYTES: usize = 32;

#[derive(Debug, Clone)]
pub struct Config {
    /// The base of URLs Flowline hands out (trigger URLs, code snippets), without a trailing `/`.
    pub public_base_url: String,
    /// `FLOWLINE_ALLOW_PRIVATE_TARGETS=1`: webhooks may target loopback/private hosts (local only).
    pub allow_private_targets: bool,
}

pub struct App {
    /// The main table: flows, callbacks, webhooks, idempotency records, counters.
    pub store: Arc<dyn Table>,
    pub keys: KeyStore,
    pub scheduler: Arc<dyn Scheduler>,
    pub sender: Arc<dyn WebhookSender>,
    pub clock: Arc<dyn Clock>,
    pub page_tokens: PageTokens,
    pub config: Config,
    /// The in-process scheduler, when this process runs the timers itself.
    in_process: Option<Arc<InProcessScheduler>>,
}

/// The adapters an [`App`] is made of.
pub struct Adapters {
    pub store: Arc<dyn Table>,
    pub keys: Arc<dyn Table>,
    pub scheduler: Arc<dyn Scheduler>,
    pub sender: Arc<dyn WebhookSender>,
    pub clock: Arc<dyn Clock>,
    /// Set when `scheduler` (or its "dispatch now") runs in this process.
    pub in_process: Option<Arc<InProcessScheduler>>,
}

/// Why a process could not start: reported once, at start-up, never silently defaulted.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("cannot prepare the store: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// Names of the environment variables Flowline reads.
pub mod env {
    pub const TABLE: &str = "FLOWLINE_TABLE";
    pub const KEYS_TABLE: &str = "FLOWLINE_KEYS_TABLE";
    pub const SIGNING_KEY: &str = "FLOWLINE_SIGNING_KEY";
    pub const PUBLIC_BASE_URL: &str = "FLOWLINE_PUBLIC_BASE_URL";
    pub const ALLOW_PRIVATE_TARGETS: &str = "FLOWLINE_ALLOW_PRIVATE_TARGETS";
    pub const STORE: &str = "FLOWLINE_STORE";
    pub const ADDR: &str = "FLOWLINE_ADDR";
    pub const SCHEDULER: &str = "FLOWLINE_SCHEDULER";
    pub const API_KEYS: &str = "FLOWLINE_API_KEYS";
}

pub const DEFAULT_TABLE: &str = "flowline";
pub const DEFAULT_KEYS_TABLE: &str = "flowline-keys";

fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
}

/// `FLOWLINE_SIGNING_KEY`: base64 of at least 32 bytes.
pub fn signing_key_from_env() -> Result<Option<Vec<u8>>, StartupError> {
    let Some(text) = var(env::SIGNING_KEY) else {
        return Ok(None);
    };
    let key = STANDARD
        .decode(text.trim())
        // Not the decoder's message: it would quote a character of the key.
        .map_err(|_| StartupError::Invalid {
            name: env::SIGNING_KEY,
            reason: "not base64".to_owned(),
        })?;
    if key.len() < MIN_SIGNING_KEY_BYTES {
        return Err(StartupError::Invalid {
            name: env::SIGNING_KEY,
            reason: format!(
                "{} bytes; at least {MIN_SIGNING_KEY_BYTES} are required",
                key.len()
            ),
        });
    }
    Ok(Some(key))
}

pub fn allow_private_targets_from_env() -> bool {
    var(env::ALLOW_PRIVATE_TARGETS)
        .is_some_and(|value| value == "1" || value.eq_ignore_ascii_case("true"))
}

/// Which tables to use.
pub enum Storage {
    Memory,
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
            table: var(env::TABLE).unwrap_or_else(|| DEFAULT_TABLE.to_owned()),
            keys_table: var(env::KEYS_TABLE).unwrap_or_else(|| DEFAULT_KEYS_TABLE.to_owned()),
        }
    }
}

/// Which scheduler to use.
pub enum Scheduling {
    InProcess,
    EventBridge {
        client: aws_sdk_scheduler::Client,
        settings: EventBridgeSettings,
        lambda: Option<aws_sdk_lambda::Client>,
    },
}

impl Scheduling {
    /// EventBridge Scheduler with the settings of the environment. `lambda` invokes the
    /// dispatch function for "now"; without it (a local server) that happens in-process.
    pub fn eventbridge(
        sdk_config: &aws_config::SdkConfig,
        with_lambda: bool,
    ) -> Result<Self, StartupError> {
        let required = |name: &'static str, local_default: &str| match var(name) {
            Some(value) => Ok(value),
            None if !with_lambda => Ok(local_default.to_owned()),
            None => Err(StartupError::Missing(name)),
        };
        let settings = EventBridgeSettings {
            group: var(eventbridge::env::GROUP)
                .unwrap_or_else(|| eventbridge::DEFAULT_GROUP.to_owned()),
            dispatch_function_arn: required(
                eventbridge::env::DISPATCH_FUNCTION_ARN,
                "arn:aws:lambda:us-east-1:000000000000:function:flowline-dispatch",
            )?,
            role_arn: required(
                eventbridge::env::ROLE_ARN,
                "arn:aws:iam::000000000000:role/flowline-scheduler",
            )?,
            dead_letter_arn: var(eventbridge::env::DEAD_LETTER_ARN),
        };
        Ok(Self::EventBridge {
            client: aws_sdk_scheduler::Client::new(sdk_config),
            settings,
            lambda: with_lambda.then(|| aws_sdk_lambda::Client::new(sdk_config)),
        })
    }
}

impl App {
    pub fn new(adapters: Adapters, signing_key: &[u8], config: Config) -> Arc<Self> {
        let app = Arc::new(Self {
            store: adapters.store,
            keys: KeyStore::new(adapters.keys),
            scheduler: adapters.scheduler,
            sender: adapters.sender,
            clock: adapters.clock,
            page_tokens: PageTokens::new(signing_key),
            config,
            in_process: adapters.in_process,
        });
        if let Some(scheduler) = &app.in_process {
            scheduler.attach(&app);
        }
        app
    }

    /// The in-process scheduler, if this process runs timers.
    pub fn in_process_scheduler(&self) -> Option<&Arc<InProcessScheduler>> {
        self.in_process.as_ref()
    }

    /// An app on fresh in-memory tables with the in-process scheduler and the system clock.
    pub fn in_memory(signing_key: &[u8], config: Config) -> Arc<Self> {
        let in_process = Arc::new(InProcessScheduler::new());
        let adapters = Adapters {
            store: Arc::new(MemoryTable::new()),
            keys: Arc::new(MemoryTable::new()),
            scheduler: in_process.clone(),
            sender: Arc::new(HttpSender::new(config.allow_private_targets)),
            clock: Arc::new(SystemClock),
            in_process: Some(in_process),
        };
        Self::new(adapters, signing_key, config)
    }

    /// Builds the app; `create_resources` makes missing tables and the schedule group (local
    /// use: in the cloud the SAM template owns them).
    pub async fn build(
        storage: Storage,
        scheduling: Scheduling,
        signing_key: &[u8],
        config: Config,
        create_resources: bool,
    ) -> Result<Arc<Self>, StartupError> {
        let (store, keys): (Arc<dyn Table>, Arc<dyn Table>) = match storage {
            Storage::Memory => (Arc::new(MemoryTable::new()), Arc::new(MemoryTable::new())),
            Storage::DynamoDb {
                client,
                table,
                keys_table,
            } => {
                let store = DynamoTable::new(client.clone(), table);
                let keys = DynamoTable::new(client, keys_table);
                if create_resources {
                    store.ensure_exists().await?;
                    keys.ensure_exists().await?;
                }
                (Arc::new(store), Arc::new(keys))
            }
        };
        let in_process = Arc::new(InProcessScheduler::new());
        let (scheduler, in_process): (Arc<dyn Scheduler>, Option<Arc<InProcessScheduler>>) =
            match scheduling {
                Scheduling::InProcess => (in_process.clone(), Some(in_process)),
                Scheduling::EventBridge {
                    client,
                    settings,
                    lambda,
                } => {
                    let (immediate, local) = match lambda {
                        Some(lambda) => (Immediate::Lambda(lambda), None),
                        None => (Immediate::InProcess(in_process.clone()), Some(in_process)),
                    };
                    let scheduler = EventBridgeScheduler::new(client, settings, immediate);
                    if create_resources {
                        scheduler
                            .ensure_group()
                            .await
                            .map_err(|err| StartupError::Invalid {
                                name: eventbridge::env::GROUP,
                                reason: err.to_string(),
                            })?;
                    }
                    (Arc::new(scheduler), local)
                }
            };
        let adapters = Adapters {
            store,
            keys,
            scheduler,
            sender: Arc::new(HttpSender::new(config.allow_private_targets)),
            clock: Arc::new(SystemClock),
            in_process,
        };
        Ok(Self::new(adapters, signing_key, config))
    }

    /// The app of a Lambda function: DynamoDB, EventBridge Scheduler and a signing key from
    /// the environment, which the SAM template sets. Anything missing stops the start.
    pub async fn for_lambda() -> Result<Arc<Self>, StartupError> {
        let signing_key = signing_key_from_env()?.ok_or(StartupError::Missing(env::SIGNING_KEY))?;
        let public_base_url =
            var(env::PUBLIC_BASE_URL).ok_or(StartupError::Missing(env::PUBLIC_BASE_URL))?;
        let config = Config {
            public_base_url: public_base_url.trim_end_matches('/').to_owned(),
            allow_private_targets: false,
        };
        let sdk_config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let scheduling = Scheduling::eventbridge(&sdk_config, true)?;
        Self::build(
            Storage::dynamodb(&sdk_config),
            scheduling,
            &signing_key,
            config,
            false,
        )
        .await
    }
}
