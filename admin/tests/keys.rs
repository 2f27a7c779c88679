//! `flowline-admin keys …` as an operator uses it, on the memory table, on a local server's data
//! directory (`--data-dir`) and on DynamoDB (the emulator at `AWS_ENDPOINT_URL`, as
//! `scripts/test` starts it): every command line is parsed by the real `Cli` and run by the real
//! `run`.

use std::sync::{Arc, OnceLock};

use clap::Parser;
use flowline_adapters::redb::RedbStore;
use flowline_admin::{AdminError, Cli, open_data_dir_keys, open_keys, run};
use flowline_core::auth::{KeyKind, KeyStore};
use flowline_core::ids;
use flowline_core::store::memory::MemoryTable;

const NOW: &str = "2026-11-21T14:15:22.000Z";
const LATER: &str = "2026-11-22T09:00:00.000Z";

/// Runs each named `async fn(KeyStore)` test once per store.
macro_rules! on_every_store {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::memory_keys()).await
                }
            )*
        }
        mod persistent {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::data_dir_keys()).await
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::dynamo_keys().await).await
                }
            )*
        }
    };
}

on_every_store!(
    create_prints_only_a_key_that_authenticates,
    created_public_keys_are_public,
    list_shows_each_key_without_its_secret,
    revoked_keys_stop_authenticating,
    revoking_an_unknown_or_foreign_key_id_fails,
    bad_arguments_are_refused_before_anything_is_stored,
    an_organization_gets_its_own_budget_and_loses_it,
);

fn memory_keys() -> KeyStore {
    KeyStore::new(Arc::new(MemoryTable::new()))
}

/// A data directory a server made (and stopped), opened as the binary opens it with
/// `--data-dir`. The directory is removed at once: the open store keeps its (unlinked) file.
fn data_dir_keys() -> KeyStore {
    let directory = tempfile::tempdir().unwrap();
    drop(RedbStore::open(directory.path()).unwrap());
    let path = directory.path().to_str().unwrap();
    let cli = parse(&["--data-dir", path, "keys", "list", "--org", "x"]);
    open_data_dir_keys(cli.data_dir.as_deref().unwrap()).expect("the data directory opens")
}

fn table_name() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| format!("flowline-admin-test-{}", ids::random_token(8)))
}

async fn emulator_config() -> aws_config::SdkConfig {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "DynamoDB tests need the emulator: run ./scripts/test (it installs and starts it)"
    );
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// The keys store exactly as the binary opens it, `--create-table` included.
async fn dynamo_keys() -> KeyStore {
    let cli = parse(&[
        "--table",
        table_name(),
        "--create-table",
        "keys",
        "list",
        "--org",
        "x",
    ]);
    open_keys(&cli, &emulator_config().await)
        .await
        .expect("keys table")
}

fn parse(args: &[&str]) -> Cli {
    Cli::try_parse_from(std::iter::once("flowline-admin").chain(args.iter().copied()))
        .unwrap_or_else(|err| panic!("{args:?}: {err}"))
}

struct Output {
    out: String,
    notes: String,
}

/// `flowline-admin <args>` at `now`.
async fn admin(keys: &KeyStore, now: &str, args: &[&str]) -> Result<Output, AdminError> {
    let cli = parse(args);
    let (mut out, mut notes) = (Vec::new(), Vec::new());
    run(&cli.command, keys, now, &mut out, &mut notes).await?;
    Ok(Output {
        out: String::from_utf8(out).unwrap(),
        notes: String::from_utf8(notes).unwrap(),
    })
}

fn organization() -> String {
    ids::new_id("org_", 0)
}

/// The row of `name` in `keys list`, split into columns.
fn row_of(listing: &str, name: &str) -> Vec<String> {
    listing
        .lines()
        .find(|line| line.starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no row for {name} in\n{listing}"))
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

async fn create_prints_only_a_key_that_authenticates(keys: KeyStore) {
    let org = organization();
    let created = admin(
        &keys,
        NOW,
        &[
            "keys", "create", "--org", &org, "--kind", "private", "--name", "crm",
        ],
    )
    .await
    .unwrap();
    let key = created.out.trim_end_matches('\n');
    assert_eq!(created.out, format!("{key}\n"), "one line, the key alone");
    assert!(key.starts_with("sk_") && key.len() > 30);
    assert!(!created.notes.contains(&key[3..]), "the key is shown once");
    assert!(created.notes.contains("crm") && created.notes.contains(&org));

    let caller = keys
        .authenticate(Some(&format!("Bearer {key}")))
        .await
        .unwrap();
    assert_eq!(caller.organization_id, org);
    assert_eq!(caller.kind, KeyKind::Private);
    assert_eq!(caller.key_name, "crm");
}

async fn created_public_keys_are_public(keys: KeyStore) {
    let org = organization();
    let created = admin(
        &keys,
        NOW,
        &[
            "keys",
            "create",
            "--org",
            &org,
            "--kind",
            "public",
            "--name",
            "dashboard",
        ],
    )
    .await
    .unwrap();
    let key = created.out.trim();
    assert!(key.starts_with("pk_"));
    let caller = keys.authenticate(Some(key)).await.unwrap();
    assert_eq!(caller.kind, KeyKind::Public);
}

async fn list_shows_each_key_without_its_secret(keys: KeyStore) {
    let org = organization();
    let mut created = Vec::new();
    for (kind, name) in [("private", "backend"), ("public", "dashboard")] {
        let output = admin(
            &keys,
            NOW,
            &[
                "keys", "create", "--org", &org, "--kind", kind, "--name", name,
            ],
        )
        .await
        .unwrap();
        created.push(output.out.trim().to_owned());
    }
    admin(
        &keys,
        NOW,
        &[
            "keys",
            "create",
            "--org",
            &organization(),
            "--kind",
            "private",
            "--name",
            "someone-else",
        ],
    )
    .await
    .unwrap();

    let listing = admin(&keys, LATER, &["keys", "list", "--org", &org])
        .await
        .unwrap()
        .out;
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 3, "a header and two keys:\n{listing}");
    assert!(lines[0].starts_with("NAME") && lines[0].contains("KEY ID"));
    let backend = row_of(&listing, "backend");
    let backend_id = flowline_core::auth::hash_key(&created[0])[..8].to_owned();
    assert_eq!(backend, ["backend", "private", &backend_id, NOW, "-"]);
    assert_eq!(row_of(&listing, "dashboard")[1], "public");
    assert!(!listing.contains("someone-else"));
    for key in &created {
        assert!(!listing.contains(&key[3..]));
    }
}

async fn revoked_keys_stop_authenticating(keys: KeyStore) {
    let org = organization();
    let create = |name: &'static str| {
        let (keys, org) = (keys.clone(), org.clone());
        async move {
            admin(
                &keys,
                NOW,
                &[
                    "keys", "create", "--org", &org, "--kind", "private", "--name", name,
                ],
            )
            .await
            .unwrap()
            .out
            .trim()
            .to_owned()
        }
    };
    let (leaked, kept) = (create("leaked").await, create("kept").await);
    let listing = admin(&keys, NOW, &["keys", "list", "--org", &org])
        .await
        .unwrap()
        .out;
    let key_id = row_of(&listing, "leaked")[2].to_uppercase();

    let revoked = admin(
        &keys,
        LATER,
        &["keys", "revoke", "--org", &org, "--key-id", &key_id],
    )
    .await
    .unwrap();
    assert!(revoked.out.contains(&key_id.to_lowercase()));
    let err = keys.authenticate(Some(&leaked)).await.unwrap_err();
    assert_eq!(err.code, flowline_core::error::ErrorCode::Unauthorized);
    keys.authenticate(Some(&kept)).await.expect("still live");

    let listing = admin(&keys, LATER, &["keys", "list", "--org", &org])
        .await
        .unwrap()
        .out;
    assert_eq!(row_of(&listing, "leaked")[4], LATER);
    assert_eq!(row_of(&listing, "kept")[4], "-");
}

async fn revoking_an_unknown_or_foreign_key_id_fails(keys: KeyStore) {
    let (org, other) = (organization(), organization());
    let key = admin(
        &keys,
        NOW,
        &[
            "keys", "create", "--org", &org, "--kind", "private", "--name", "mine",
        ],
    )
    .await
    .unwrap()
    .out;
    let key_id = flowline_core::auth::hash_key(key.trim())[..8].to_owned();
    let foreign = admin(
        &keys,
        NOW,
        &["keys", "revoke", "--org", &other, "--key-id", &key_id],
    )
    .await;
    assert!(
        matches!(foreign, Err(AdminError::NoSuchKey { .. })),
        "{:?}",
        foreign.err()
    );
    let unknown = admin(
        &keys,
        NOW,
        &["keys", "revoke", "--org", &org, "--key-id", "00000000"],
    )
    .await;
    assert!(matches!(unknown, Err(AdminError::NoSuchKey { .. })));
    keys.authenticate(Some(key.trim()))
        .await
        .expect("still live");
}

async fn bad_arguments_are_refused_before_anything_is_stored(keys: KeyStore) {
    let org = organization();
    for args in [
        vec![
            "keys", "create", "--org", " ", "--kind", "private", "--name", "x",
        ],
        vec![
            "keys", "create", "--org", &org, "--kind", "private", "--name", " ",
        ],
        vec!["keys", "revoke", "--org", &org, "--key-id", "abc"],
        vec![
            "keys",
            "revoke",
            "--org",
            &org,
            "--key-id",
            "not-hex-at-all",
        ],
    ] {
        let result = admin(&keys, NOW, &args).await;
        assert!(
            matches!(result, Err(AdminError::Invalid(_))),
            "{args:?}: {:?}",
            result.err()
        );
    }
    assert!(keys.list(&org).await.unwrap().is_empty());
}

#[test]
fn the_command_line_is_checked_by_clap() {
    let cli = parse(&[
        "--table",
        "keys-here",
        "keys",
        "create",
        "--org",
        "org_1",
        "--kind",
        "public",
        "--name",
        "n",
    ]);
    assert_eq!(cli.table, "keys-here");
    assert!(!cli.create_table);
    // Global flags may follow the subcommand too.
    let cli = parse(&[
        "keys",
        "list",
        "--org",
        "org_1",
        "--table",
        "t",
        "--create-table",
    ]);
    assert_eq!((cli.table.as_str(), cli.create_table), ("t", true));
    for bad in [
        &[
            "keys", "create", "--org", "o", "--kind", "admin", "--name", "n",
        ][..],
        &["keys", "create", "--org", "o", "--name", "n"],
        &["keys", "revoke", "--org", "o"],
        &["keys"],
    ] {
        assert!(
            Cli::try_parse_from(std::iter::once("flowline-admin").chain(bad.iter().copied()))
                .is_err(),
            "{bad:?}"
        );
    }
}

async fn an_organization_gets_its_own_budget_and_loses_it(keys: KeyStore) {
    let org = organization();
    let shown = admin(&keys, NOW, &["limits", "show", "--org", &org])
        .await
        .unwrap();
    assert_eq!(shown.out, format!("{org}: the deployment's budget\n"));
    admin(
        &keys,
        NOW,
        &[
            "limits", "set", "--org", &org, "--rate", "500", "--burst", "1000",
        ],
    )
    .await
    .unwrap();
    let now = jiff::Timestamp::now();
    let limit = keys.organization_limit(&org, now).await.unwrap();
    assert_eq!(
        limit,
        Some(flowline_core::ratelimit::Limit::new(500.0, 1000.0))
    );
    let shown = admin(&keys, NOW, &["limits", "show", "--org", &org])
        .await
        .unwrap();
    assert_eq!(
        shown.out,
        format!("{org}: 500 requests a second, bursts of 1000\n")
    );
    for bad in [
        ["--rate", "0", "--burst", "10"],
        ["--rate", "5", "--burst", "0"],
    ] {
        let mut args = vec!["limits", "set", "--org", org.as_str()];
        args.extend(bad);
        assert!(matches!(
            admin(&keys, NOW, &args).await,
            Err(AdminError::Invalid(_))
        ));
    }
    admin(&keys, NOW, &["limits", "clear", "--org", &org])
        .await
        .unwrap();
    assert_eq!(keys.organization_limit(&org, now).await.unwrap(), None);
}

#[tokio::test]
async fn a_key_created_in_a_data_directory_authenticates_when_it_is_opened_again() {
    let directory = tempfile::tempdir().unwrap();
    drop(RedbStore::open(directory.path()).unwrap());
    let path = directory.path().to_str().unwrap();
    let org = organization();
    let keys = open_data_dir_keys(directory.path()).unwrap();
    let created = admin(
        &keys,
        NOW,
        &[
            "--data-dir",
            path,
            "keys",
            "create",
            "--org",
            &org,
            "--kind",
            "private",
            "--name",
            "ops",
        ],
    )
    .await
    .unwrap();
    drop(keys);

    // As the server opens it on its next start.
    let store = RedbStore::open(directory.path()).unwrap();
    let caller = KeyStore::new(Arc::new(store.keys()))
        .authenticate(Some(created.out.trim()))
        .await
        .unwrap();
    assert_eq!(
        (caller.organization_id, caller.key_name),
        (org, "ops".to_owned())
    );
}

#[test]
fn a_data_directory_a_server_holds_is_refused_saying_to_stop_the_server() {
    let directory = tempfile::tempdir().unwrap();
    let _server = RedbStore::open(directory.path()).unwrap();
    let Err(err) = open_data_dir_keys(directory.path()) else {
        panic!("opened a data directory another process holds");
    };
    let message = err.to_string();
    assert!(
        message.contains("in use by another process") && message.contains("Stop the server"),
        "{message}"
    );
}

#[test]
fn a_directory_without_flowline_data_is_refused_not_made() {
    let directory = tempfile::tempdir().unwrap();
    let missing = directory.path().join("typo");
    let Err(err) = open_data_dir_keys(&missing) else {
        panic!("opened a directory with no data");
    };
    assert!(err.to_string().contains("holds no Flowline data"), "{err}");
    assert!(!missing.exists(), "nothing is created");
}

#[test]
fn a_data_directory_and_create_table_do_not_go_together() {
    let cli = parse(&["--data-dir", ".flowline", "keys", "list", "--org", "o"]);
    assert_eq!(
        cli.data_dir.as_deref(),
        Some(std::path::Path::new(".flowline"))
    );
    assert!(
        Cli::try_parse_from([
            "flowline-admin",
            "--data-dir",
            ".flowline",
            "--create-table",
            "keys",
            "list",
            "--org",
            "o"
        ])
        .is_err()
    );
}
