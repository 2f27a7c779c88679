//! `flowline-admin`: the operator's command for API keys, over the same [`KeyStore`] the
//! authorizer reads. Only the key's SHA-256 is stored; `keys create` prints the key itself once,
//! alone on stdout (so `KEY=$(flowline-admin keys create …)` captures exactly it), and nothing
//! secret goes anywhere else.
//!
//! ```text
//! flowline-admin keys create --org ORG --kind private|public --name NAME
//! flowline-admin keys list   --org ORG
//! flowline-admin keys revoke --org ORG --key-id HASHPREFIX
//! ```
//!
//! The keys table is `--table`, else `FLOWLINE_KEYS_TABLE`, else `flowline-keys`; AWS comes from
//! the standard environment, so `AWS_ENDPOINT_URL` points the command at an emulator.
//!
//! `--data-dir DIR` works on the local server's persistent store instead (the keys table in
//! `DIR/flowline.redb`). One process owns a data directory: with the server running, the command
//! says so and changes nothing; stop the server, run it, start the server again.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use flowline_adapters::dynamodb::DynamoTable;
use flowline_adapters::redb::{self, OpenError, RedbStore};
use flowline_core::auth::{KeyKind, KeyStore, StoredKey};
use flowline_core::config::{DEFAULT_KEYS_TABLE, env};
use flowline_core::ratelimit::Limit;
use flowline_core::store::StoreError;

/// A name longer than this is a mistake, not a label.
const MAX_NAME_CHARS: usize = 100;
/// `list` shows this many hex digits of a key's hash; `revoke` needs at least as many.
const KEY_ID_DIGITS: usize = 8;

#[derive(Debug, Parser)]
#[command(name = "flowline-admin", version, about = "Operate Flowline: API keys")]
pub struct Cli {
    /// The keys table.
    #[arg(long, global = true, env = env::KEYS_TABLE, default_value = DEFAULT_KEYS_TABLE)]
    pub table: String,
    /// Create the keys table when it is missing (local development; in the cloud the template
    /// owns it).
    #[arg(long, global = true)]
    pub create_table: bool,
    /// The local server's data directory (e.g. `.flowline`): its keys, not DynamoDB's. Only
    /// while no server runs on it.
    #[arg(long, global = true, conflicts_with = "create_table")]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, PartialEq, Subcommand)]
pub enum Command {
    /// Create, list and revoke API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// An organization's own request budget (else the deployment's FLOWLINE_RATE_LIMIT applies).
    #[command(subcommand)]
    Limits(LimitsCommand),
}

#[derive(Debug, Clone, PartialEq, Subcommand)]
pub enum LimitsCommand {
    /// Give an organization its own budget: requests a second and a burst.
    Set {
        #[arg(long)]
        org: String,
        #[arg(long)]
        rate: f64,
        #[arg(long)]
        burst: f64,
    },
    /// Show an organization's own budget, if it has one.
    Show {
        #[arg(long)]
        org: String,
    },
    /// Remove an organization's own budget: the deployment's applies again.
    Clear {
        #[arg(long)]
        org: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum KeysCommand {
    /// Create a key; it is printed once, on stdout, and cannot be shown again.
    Create {
        #[arg(long)]
        org: String,
        #[arg(long, value_enum)]
        kind: Kind,
        /// A label for people (and `modified_by`), e.g. `crm-integration`.
        #[arg(long)]
        name: String,
    },
    /// List an organization's keys: name, kind, key id (hash prefix), created, revoked.
    List {
        #[arg(long)]
        org: String,
    },
    /// Revoke one of an organization's keys by the key id `list` shows.
    Revoke {
        #[arg(long)]
        org: String,
        #[arg(long)]
        key_id: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// `sk_…`: every route.
    Private,
    /// `pk_…`: GET routes only.
    Public,
}

impl From<Kind> for KeyKind {
    fn from(kind: Kind) -> Self {
        match kind {
            Kind::Private => Self::Private,
            Kind::Public => Self::Public,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Invalid(String),
    #[error("organization {org} has no key with id {key_id} (see `keys list --org {org}`)")]
    NoSuchKey { org: String, key_id: String },
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    DataDirectory(String),
    #[error("cannot write the answer: {0}")]
    Output(#[from] std::io::Error),
}

/// The key store of `cli.table` on DynamoDB, created first with `--create-table`.
pub async fn open_keys(
    cli: &Cli,
    sdk_config: &aws_config::SdkConfig,
) -> Result<KeyStore, AdminError> {
    let table = DynamoTable::new(aws_sdk_dynamodb::Client::new(sdk_config), &cli.table);
    if cli.create_table {
        table.ensure_exists().await?;
    }
    Ok(KeyStore::new(Arc::new(table)))
}

/// The key store of a local server's data directory. Refused while another process (the
/// server) holds it, and when it holds no Flowline data (a mistyped path is not a new store).
pub fn open_data_dir_keys(data_dir: &Path) -> Result<KeyStore, AdminError> {
    if !data_dir.join(redb::FILE_NAME).is_file() {
        return Err(AdminError::DataDirectory(format!(
            "{} holds no Flowline data (a server started with FLOWLINE_DATA_DIR={} makes it)",
            data_dir.display(),
            data_dir.display()
        )));
    }
    match RedbStore::open(data_dir) {
        Ok(store) => Ok(KeyStore::new(Arc::new(store.keys()))),
        Err(err @ OpenError::InUse(_)) => Err(AdminError::DataDirectory(format!(
            "{err}. Stop the server, run this again, then start the server: the key works from \
             its next start."
        ))),
        Err(err) => Err(AdminError::DataDirectory(err.to_string())),
    }
}

/// Runs one command at time `now`: its answer goes to `out`, remarks for the operator to `notes`.
pub async fn run(
    command: &Command,
    keys: &KeyStore,
    now: &str,
    out: &mut dyn Write,
    notes: &mut dyn Write,
) -> Result<(), AdminError> {
    let command = match command {
        Command::Keys(command) => command,
        Command::Limits(command) => return run_limits(command, keys, out).await,
    };
    match command {
        KeysCommand::Create { org, kind, name } => {
            let org = organization(org)?;
            let name = name.trim();
            if name.is_empty()
                || name.chars().count() > MAX_NAME_CHARS
                || name.chars().any(char::is_control)
            {
                return Err(AdminError::Invalid(format!(
                    "--name must be 1 to {MAX_NAME_CHARS} printable characters"
                )));
            }
            let (key, stored) = keys.create(org, (*kind).into(), name, now).await?;
            writeln!(out, "{key}")?;
            out.flush()?;
            writeln!(
                notes,
                "Created {} key \"{}\" (id {}) for {}. It is shown only this once.",
                stored.kind.as_str(),
                stored.name,
                stored.hash_prefix,
                stored.organization_id
            )?;
        }
        KeysCommand::List { org } => {
            let mut listed = keys.list(organization(org)?).await?;
            listed.sort_by(|a, b| (&a.created_at, &a.name).cmp(&(&b.created_at, &b.name)));
            write_table(out, &listed)?;
        }
        KeysCommand::Revoke { org, key_id } => {
            let org = organization(org)?;
            let key_id = key_id.trim().to_ascii_lowercase();
            if key_id.len() < KEY_ID_DIGITS || !key_id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(AdminError::Invalid(format!(
                    "--key-id is the key's id as `keys list` shows it ({KEY_ID_DIGITS} or more hex digits)"
                )));
            }
            if !keys.revoke(org, &key_id, now).await? {
                return Err(AdminError::NoSuchKey {
                    org: org.to_owned(),
                    key_id,
                });
            }
            writeln!(out, "Revoked key {key_id} of {org}.")?;
        }
    }
    Ok(())
}

/// Organizations' budgets take effect within a minute (each process reads them again then).
async fn run_limits(
    command: &LimitsCommand,
    keys: &KeyStore,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    match command {
        LimitsCommand::Set { org, rate, burst } => {
            let org = organization(org)?;
            let limit = Limit::parse(&format!("{rate}/{burst}")).ok_or_else(|| {
                AdminError::Invalid("--rate must be above 0 and --burst at least 1".to_owned())
            })?;
            keys.set_organization_limit(org, Some(limit)).await?;
            writeln!(
                out,
                "{org}: {rate} requests a second, bursts of {burst} (within a minute)."
            )?;
        }
        LimitsCommand::Show { org } => {
            let org = organization(org)?;
            match keys.organization_limit(org, jiff::Timestamp::now()).await? {
                Some(limit) => writeln!(
                    out,
                    "{org}: {} requests a second, bursts of {}",
                    limit.per_second, limit.burst
                )?,
                None => writeln!(out, "{org}: the deployment's budget")?,
            }
        }
        LimitsCommand::Clear { org } => {
            let org = organization(org)?;
            keys.set_organization_limit(org, None).await?;
            writeln!(out, "{org}: the deployment's budget (within a minute).")?;
        }
    }
    Ok(())
}

fn organization(org: &str) -> Result<&str, AdminError> {
    let org = org.trim();
    if org.is_empty() || org.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(AdminError::Invalid(
            "--org must be an organization id without spaces".to_owned(),
        ));
    }
    Ok(org)
}

/// One row per key under a header, columns aligned.
fn write_table(out: &mut dyn Write, keys: &[StoredKey]) -> std::io::Result<()> {
    let rows: Vec<[&str; 5]> = keys
        .iter()
        .map(|key| {
            [
                key.name.as_str(),
                key.kind.as_str(),
                key.hash_prefix.as_str(),
                key.created_at.as_str(),
                key.revoked_at.as_deref().unwrap_or("-"),
            ]
        })
        .collect();
    let header = ["NAME", "KIND", "KEY ID", "CREATED", "REVOKED"];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        writeln!(out, "{}", cells.join("  ").trim_end())?;
    }
    Ok(())
}
