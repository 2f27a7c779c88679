//! The application: the adapters every route uses, built once per process (per Lambda sandbox,
//! or once by the local server) and borrowed by handlers.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::auth::KeyStore;
use crate::page::PageTokens;
use crate::store::Table;
use crate::store::dynamodb::DynamoTable;
use crate::store::memory::MemoryTable;
use crate::time::{Clock, SystemClock};

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
    pub clock: Arc<dyn Clock>,
    pub page_tokens: PageTokens,
    pub config: Config,
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
        .map_err(|err| StartupError::Invalid {
            name: env::SIGNING_KEY,
            reason: format!("not base64 ({err})"),
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

impl App {
    pub fn new(
        store: Arc<dyn Table>,
        keys: Arc<dyn Table>,
        clock: Arc<dyn Clock>,
        signing_key: &[u8],
        config: Config,
    ) -> Self {
        Self {
            store,
            keys: KeyStore::new(keys),
            clock,
            page_tokens: PageTokens::new(signing_key),
            config,
        }
    }

    /// An app on fresh in-memory tables, with the system clock.
    pub fn in_memory(signing_key: &[u8], config: Config) -> Self {
        Self::new(
            Arc::new(MemoryTable::new()),
            Arc::new(MemoryTable::new()),
            Arc::new(SystemClock),
            signing_key,
            config,
        )
    }

    /// Builds the app on `storage`; `create_tables` makes missing DynamoDB tables (local use).
    pub async fn build(
        storage: Storage,
        signing_key: &[u8],
        config: Config,
        create_tables: bool,
    ) -> Result<Self, StartupError> {
        match storage {
            Storage::Memory => Ok(Self::in_memory(signing_key, config)),
            Storage::DynamoDb {
                client,
                table,
                keys_table,
            } => {
                let store = DynamoTable::new(client.clone(), table);
                let keys = DynamoTable::new(client, keys_table);
                if create_tables {
                    store.ensure_exists().await?;
                    keys.ensure_exists().await?;
                }
                Ok(Self::new(
                    Arc::new(store),
                    Arc::new(keys),
                    Arc::new(SystemClock),
                    signing_key,
                    config,
                ))
            }
        }
    }

    /// The app of a Lambda function: DynamoDB tables and a signing key from the environment,
    /// which the SAM template sets. Anything missing stops the start.
    pub async fn for_lambda() -> Result<Self, StartupError> {
        let signing_key = signing_key_from_env()?.ok_or(StartupError::Missing(env::SIGNING_KEY))?;
        let public_base_url =
            var(env::PUBLIC_BASE_URL).ok_or(StartupError::Missing(env::PUBLIC_BASE_URL))?;
        let config = Config {
            public_base_url: public_base_url.trim_end_matches('/').to_owned(),
            allow_private_targets: false,
        };
        let sdk_config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self::build(Storage::dynamodb(&sdk_config), &signing_key, config, false).await
    }
}
