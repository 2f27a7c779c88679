//! The [`Table`] contract, held against every implementation: each test is written once as
//! `async fn name(table: Arc<dyn Table>)` and runs as `memory::name` (on `MemoryTable`),
//! `persistent::name` (on `RedbTable`, the local server's default, in a fresh data directory)
//! and `dynamodb::name` (on `DynamoTable` over the emulator, through the real SDK client).
//!
//! The DynamoDB tests share one table per test process; each test works in partitions of its own
//! (see [`Scope`]), so they run concurrently without seeing each other's items.

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use flowline_adapters::dynamodb::DynamoTable;
use flowline_adapters::redb::RedbStore;
use flowline_core::auth::{KeyKind, KeyStore};
use flowline_core::error::ErrorCode;
use flowline_core::ids;
use flowline_core::store::memory::MemoryTable;
use flowline_core::store::{
    Expect, Item, Key, MAX_WRITES_PER_TRANSACTION, Query, SortRange, StoreError, Table, Write,
};
use serde_json::{Value, json};

/// Runs each named `async fn(Arc<dyn Table>)` test once per implementation.
macro_rules! on_every_table {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::memory_table()).await
                }
            )*
        }
        mod persistent {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::persistent_table()).await
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::dynamo_table().await).await
                }
            )*
        }
    };
}

on_every_table!(
    a_lease_is_taken_only_when_absent_or_run_out,
    get_of_a_missing_item_is_none,
    get_answers_the_item_as_put,
    put_if_absent_twice_fails_the_second_time,
    put_at_the_current_revision_increments_it,
    put_at_a_stale_revision_fails_and_changes_nothing,
    put_at_a_revision_of_a_missing_item_fails,
    unconditional_put_replaces_the_item_at_revision_one,
    delete_honours_its_condition,
    failing_check_aborts_every_write_of_the_transaction,
    passing_checks_let_the_transaction_apply,
    transaction_of_several_items_applies_all_of_them,
    two_writes_to_one_item_in_a_transaction_are_refused,
    more_than_the_transaction_limit_is_refused,
    transaction_at_the_limit_applies,
    add_creates_a_counter_and_sums_deltas,
    add_keeps_the_document_and_revision_of_an_item,
    counter_items_read_at_revision_zero_and_take_writes_at_it,
    increment_answers_the_new_value,
    concurrent_increments_answer_distinct_values,
    get_many_answers_in_the_order_asked_with_none_for_missing,
    get_many_reads_more_than_one_batch,
    get_many_of_nothing_is_nothing,
    query_reads_a_partition_in_either_direction,
    query_stops_at_the_limit,
    query_continues_after_a_key_exclusively_in_either_direction,
    query_reads_a_prefix_in_either_direction,
    query_reads_an_inclusive_range_in_either_direction,
    query_after_a_key_outside_the_range_never_widens_it,
    query_of_an_empty_partition_is_empty,
    paging_with_after_reads_every_item_exactly_once,
    expiry_round_trips,
    nested_documents_round_trip_exactly,
    whole_floats_come_back_as_the_same_number,
    concurrent_writes_at_one_revision_have_exactly_one_winner,
    concurrent_creations_of_one_item_have_exactly_one_winner,
    created_keys_authenticate_with_bearer_or_bare,
    unknown_or_malformed_keys_are_unauthorized,
    revoked_keys_are_unauthorized,
    revoking_needs_the_organization_and_eight_hex_digits,
    a_key_cannot_be_registered_for_a_second_organization,
    key_lists_show_names_and_never_plaintext,
);

fn memory_table() -> Arc<dyn Table> {
    Arc::new(MemoryTable::new())
}

/// The main table of a store in a fresh data directory. The directory is removed at once: the
/// open database keeps its (unlinked) file until the table is dropped, so nothing is left behind.
fn persistent_table() -> Arc<dyn Table> {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let store = RedbStore::open(directory.path()).expect("the store opens");
    Arc::new(store.main())
}

/// A client per test (each test has its own runtime) on the process's table.
async fn dynamo_table() -> Arc<dyn Table> {
    let sdk = common::emulator_config().await;
    let table = DynamoTable::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        format!("{}-conformance", common::table_names().0),
    );
    table.ensure_exists().await.expect("table exists");
    Arc::new(table)
}

/// Partition keys of one test run, unique on a shared table.
struct Scope(String);

impl Scope {
    fn new() -> Self {
        Self(ids::random_token(12))
    }

    fn pk(&self, name: &str) -> String {
        format!("T#{}#{name}", self.0)
    }

    fn key(&self, name: &str) -> Key {
        Key::new(self.pk(name), "ITEM")
    }
}

fn put(key: &Key, doc: Value, expect: Expect) -> Write {
    Write::Put {
        key: key.clone(),
        doc,
        expect,
        expires_at: None,
    }
}

fn lease(key: &Key, holder: &str, now: i64, until: Option<i64>) -> Write {
    Write::Put {
        key: key.clone(),
        doc: json!({ "holder": holder }),
        expect: Expect::AbsentOrExpired(now),
        expires_at: until,
    }
}

/// `AbsentOrExpired(now)`: a lease (an item whose `expires_at` is its end) is taken when nobody
/// holds it or its end is before `now`; while it runs, and for an item that never expires,
/// the condition fails and nothing changes.
async fn a_lease_is_taken_only_when_absent_or_run_out(table: Arc<dyn Table>) {
    let scope = Scope::new();
    let key = Key::new(scope.pk("lease"), "SLOT#0");
    write_one(&table, lease(&key, "a", 1_000, Some(1_060)))
        .await
        .expect("absent: taken");
    assert_eq!(
        write_one(&table, lease(&key, "b", 1_060, Some(1_120))).await,
        Err(StoreError::ConditionFailed),
        "still running at its last second"
    );
    assert_eq!(get(&table, &key).await.unwrap().doc["holder"], "a");
    write_one(&table, lease(&key, "b", 1_061, Some(1_121)))
        .await
        .expect("run out: taken over");
    let item = get(&table, &key).await.unwrap();
    assert_eq!(
        (item.doc["holder"].as_str(), item.expires_at),
        (Some("b"), Some(1_121))
    );
    // In a transaction with other writes, as a check too.
    let other = scope.key("other");
    let refused = table
        .write(vec![
            put(&other, json!({}), Expect::Absent),
            Write::Check {
                key: key.clone(),
                expect: Expect::AbsentOrExpired(1_100),
            },
        ])
        .await;
    assert_eq!(refused, Err(StoreError::ConditionFailed));
    assert!(get(&table, &other).await.is_none(), "nothing of it applied");
    // An item without an end never runs out.
    let forever = scope.key("forever");
    write_one(&table, put(&forever, json!({}), Expect::Anything))
        .await
        .unwrap();
    assert_eq!(
        write_one(&table, lease(&forever, "c", i64::MAX, Some(1))).await,
        Err(StoreError::ConditionFailed)
    );
}

async fn write_one(table: &Arc<dyn Table>, write: Write) -> Result<(), StoreError> {
    table.write(vec![write]).await
}

async fn get(table: &Arc<dyn Table>, key: &Key) -> Option<Item> {
    table.get(key).await.expect("get")
}

async fn rev_and_doc(table: &Arc<dyn Table>, key: &Key) -> Option<(u64, Value)> {
    get(table, key).await.map(|item| (item.rev, item.doc))
}

/// Puts `sks` (each with doc `{"sk": sk}`) into partition `pk`.
async fn fill(table: &Arc<dyn Table>, pk: &str, sks: &[&str]) {
    for chunk in sks.chunks(MAX_WRITES_PER_TRANSACTION) {
        let writes = chunk
            .iter()
            .map(|sk| put(&Key::new(pk, *sk), json!({ "sk": sk }), Expect::Absent))
            .collect();
        table.write(writes).await.expect("fill");
    }
}

async fn sort_keys(table: &Arc<dyn Table>, query: &Query) -> Vec<String> {
    table
        .query(query)
        .await
        .expect("query")
        .into_iter()
        .map(|item| item.key.sk)
        .collect()
}

// --- get and put -------------------------------------------------------------------------------

async fn get_of_a_missing_item_is_none(table: Arc<dyn Table>) {
    let scope = Scope::new();
    assert_eq!(get(&table, &scope.key("missing")).await, None);
}

async fn get_answers_the_item_as_put(table: Arc<dyn Table>) {
    let scope = Scope::new();
    let key = scope.key("a");
    write_one(&table, put(&key, json!({"name": "a"}), Expect::Absent))
        .await
        .unwrap();
    let item = get(&table, &key).await.expect("present");
    assert_eq!(
        item,
        Item {
            key,
            rev: 1,
            doc: json!({"name": "a"}),
            count: 0,
            expires_at: None,
        }
    );
}

async fn put_if_absent_twice_fails_the_second_time(table: Arc<dyn Table>) {
    let scope = Scope::new();
    let key = scope.key("a");
    write_one(&table, put(&key, json!({"n": 1}), Expect::Absent))
        .await
        .unwrap();
    assert_eq!(
        write_one(&table, put(&key, json!({"n": 2}), Expect::Absent)).await,
        Err(StoreError::ConditionFailed)
    );
    assert_eq!(rev_and_doc(&table, &key).await, Some((1, json!({"n": 1}))));
}

async fn put_at_the_current_revision_increments_it(table: Arc<dyn Table>) {
    let scope = Scope::new();
    let key = scope.key("a");
    write_one(&table, put(&key, json!({"n": 1}), Expect::Absent))
        .await
        .unwrap();
    write_one(&table, put(&key, json!({"n": 2}), Expect::Revision(1)))
        .await
        .unwrap();
    assert_eq!(rev_and_doc(&table, &key).await, Some((2, json!({"n": 2}))));
    write_one(&table, put(&key, json!({"n": 3}), Expect::Revision(2)))
        .await
        .unwrap();
    assert_eq!(rev_and_doc(&table, &key).await, Some((3, json!({"n": 3}))));
}

async fn put_at_a_stale_revision_fails_and_changes_nothing(table: Arc<dyn Table>) {
    let scope = Scope::new();
    let key = scope.key("a");
    write_one(&table, put(&key, json!({"n": 1}), Expect::Absent))
        .await
        .unwrap();
    write_one(&table, put(&key, json!({"n": 2}), Expect::Revision(1)))
        .await
        .unwrap();
    for stale in [0, 1, 3] {
        assert_eq!(
            write_one(&table, put(&key, json!({"n": 9}), Expect::Revision(stale))).await,
            Err(StoreError::ConditionFailed),
            "revision {stale}"
        );
    }
    assert_eq!(rev_and_doc(&table, &key).await, Some((2, json!({"n": 2}))));
}

async fn put_at_a_revision_of_a_missing_item_fails(table: Arc<dyn Table>) {
    let scope = Scope::new();
    let key = scope.key("missing");
    for rev in [0, 1] {
        assert_eq!(
            write_one(&table, put(&key, json!({}), Expect::Revision(rev))).await,
            Err(StoreError::ConditionFailed)
        );
    }
    assert_eq!(get(&table, &key).await, None);
}

async fn unconditional_put_replaces_the_item_at_revision_one(table: Arc<dyn Table>) {
    let scope = Scope::new();
    let key = scope.key("a");
    write_one(&table, put(&key, json!({"old": true}), Expect::Anything))
        .await
        .unwrap();
    write_one(&table, put(&key, json!({"n": 2}), Expect::Revision(1)))
        .await
        .unwrap();
    write_one(&table, put(&key, json!({"new": true}), Expect::Anything))
        .await
        .unwrap();
    assert_eq!(
        rev_and_doc(&table, &key).await,
        Some((1, json!({"new": true})))
    );
}

// --- delete and check --------------------------------------------------------------------------

async fn delete_honours_its_condition(table: Arc<dyn Table>) {
    let scope = Scope::new();
    let key = scope.key("a");
    let delete = |expect| Write::Delete {
        key: key.clone(),
        expect,
    };
    write_one(&table, put(&key, json!({"n": 1}), Expect::Absent))
        .await
        .unwrap();
    write_one(&table, put(&key, json!({"n": 2}), Expect::Revision(1)))
        .await
        .unwrap();

    assert_eq!(
        write_one(&table, delete(Expect::Revision(1))).await,
        Err(StoreError::ConditionFailed),
        "a stale revision"
    );
    assert_eq!(
        write_one(&table, delete(Expect::Absent)).await,
        Err(StoreError::ConditionFailed),
        "absent, but it exists"
    );
    assert_eq!(rev_and_doc(&table, &key).await, Some((2, json!({"n": 2}))));

    write_one(&table, delete(Expect::Revision(2)))
        .await
        .unwrap();
    assert_eq!(get(&table, &key).await, None);

    assert_eq!(
        write_one(&table, delete(Expect::Revision(2))).await,
        Err(StoreError::ConditionFailed),
        "a revision, but it is gone"
    );
    write_one(&table, delete(Expect::Anything))
        .await
        .expect("deleting a missing item unconditionally is a no-op");
    write_one(&table, delete(Expect::Absent))
        .await
        .expect("absent holds");
}

async fn failing_check_aborts_every_write_of_the_transaction(table: Arc<dyn Table>) {
    let scope = Scope::new();
    let (updated, created, counted, deleted, checked) = (
        scope.key("updated"),
        scope.key("created"),
        scope.key("counted"),
        scope.key("deleted"),
        scope.key("checked"),
    );
    table
        .write(vec![
            put(&updated, json!({"v": 1}), Expect::Absent),
            put(&deleted, json!({"v": 1}), Expect::Absent),
            put(&checked, json!({"v": 1}), Expect::Absent),
        ])
        .await
        .unwrap();

    for failing in [Expect::Revision(7), Expect::Absent] {
        let result = table
            .write(vec![
                put(&updated, json!({"v": 2}), Expect::Revision(1)),
                put(&created, json!({"v": 1}), Expect::Absent),
                Write::Add {
                    key: counted.clone(),
                    delta: 5,
                },
                Write::Delete {
                    key: deleted.clone(),
                    expect: Expect::Revision(1),
                },
                Write::Check {
                    key: checked.clone(),
                    expect: failing,
                },
            ])
            .await;
        assert_eq!(result, Err(StoreError::ConditionFailed), "{failing:?}");

        assert_eq!(
            rev_and_doc(&table, &updated).await,
            Some((1, json!({"v": 1})))
        );
        assert_eq!(get(&table, &created).await, None);
        assert_eq!(get(&table, &counted).await, None);
        assert_eq!(
            rev_and_doc(&table, &deleted).await,
            Some((1, json!({"v": 1})))
        );
        assert_eq!(
            rev_and_doc(&table, &checked).await,
            Some((1, json!({"v": 1})))
        );
    }
}

async fn passing_checks_let_the_transaction_apply(table: Arc<dyn Table>) {
    let scope = Scope::new();
    let (present, missing, target) = (
        scope.key("present"),
        scope.key("missing"),
        scope.key("target"),
    );
    write_one(&table, put(&present, json!({}), Expect::Absent))
        .await
        .unwrap();
    table
        .write(vec![
            Write::Check {
                key: present.clone(),
                expect: Expect::Revision(1),
            },
            Write::Check {
                key: missing.clone(),
                expect: Expect::Absent,
            },
            put(&target, json!({"ok": true}), Expect::Absent),
        ])
        .await
        .unwrap();
    assert_eq!(
        rev_and_doc(&table, &target).await,
        Some((1, json!({"ok": true})))
    );
    assert_eq!(rev_and_doc(&table, &present).await, Some((1, json!({}))));
    assert_eq!(get(&table, &missing).await, None, "a check writes nothing");

    // A check alone is a write too.
    write_one(
        &table,
        Write::Check {
            key: present.clone(),
            expect: Expect::Revision(1),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        write_one(
            &table,
            Write::Check {
                key: missing,
                expect: Expect::Revision(1),
            },
        )
        .await,
        Err(StoreError::ConditionFailed)
    );
}

// --- transactions ------------------------------------------------------------------------------

async fn transaction_of_several_items_applies_all_of_them(table: Arc<dyn Table>) {
    let scope = Scope::new();
    let keys: Vec<Key> = (0..4).map(|i| scope.key(&format!("k{i}"))).collect();
    write_one(&table, put(&keys[2], json!({"v": 1}), Expect::Absent))
        .await
        .unwrap();
    write_one(&table, put(&keys[3], json!({"v": 1}), Expect::Absent))
        .await
        .unwrap();
    table
        .write(vec![
            put(&keys[0], json!({"v": "new"}), Expect::Absent),
            put(&keys[1], json!({"v": "any"}), Expect::Anything),
            put(&keys[2], json!({"v": 2}), Expect::Revision(1)),
            Write::Delete {
                key: keys[3].clone(),
                expect: Expect::Revision(1),
            },
            Write::Add {
                key: scope.key("counter"),
                delta: 3,
            },
        ])
        .await
        .unwrap();
    assert_eq!(
        rev_and_doc(&table, &keys[0]).await,
        Some((1, json!({"v": "new"})))
    );
    assert_eq!(
        rev_and_doc(&table, &keys[1]).await,
        Some((1, json!({"v": "any"})))
    );
    assert_eq!(
        rev_and_doc(&table, &keys[2]).await,
        Some((2, json!({"v": 2})))
    );
    assert_eq!(get(&table, &keys[3]).await, None);
    assert_eq!(get(&table, &scope.key("counter")).await.unwrap().count, 3);
}

async fn two_writes_to_one_item_in_a_transaction_are_refused(table: Arc<dyn Table>) {
    let scope = Scope::new();
    let (key, other) = (scope.key("a"), scope.key("b"));
    let result = table
        .write(vec![
            put(&other, json!({}), Expect::Absent),
            put(&key, json!({"n": 1}), Expect::Absent),
            Write::Add {
                key: key.clone(),
                delta: 1,
            },
        ])
        .await;
    assert!(
        matches!(result, Err(StoreError::Corrupt(_))),
        "refused as a bad request: {result:?}"
    );
    assert_eq!(get(&table, &key).await, None);
    assert_eq!(get(&table, &other).await, None);
}

async fn more_than_the_transaction_limit_is_refused(table: Arc<dyn Table>) {
    let scope = Scope::new();
    let pk = scope.pk("many");
    let writes = (0..=MAX_WRITES_PER_TRANSACTION)
        .map(|i| put(&Key::new(&pk, format!("{i:03}")), json!({}), Expect::Absent))
        .collect();
    let result = table.write(writes).await;
    assert!(
        matches!(result, Err(StoreError::Corrupt(_))),
        "refused as a bad request: {result:?}"
    );
    assert!(
        table
            .query(&Query::partition(&pk))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn transaction_at_the_limit_applies(table: Arc<dyn Table>) {
    let scope = Scope::new();
    let pk = scope.pk("many");
    let writes = (0..MAX_WRITES_PER_TRANSACTION)
        .map(|i| put(&Key::new(&pk, format!("{i:03}")), json!({}), Expect::Absent))
        .collect();
    table.write(writes).await.unwrap();
    let mut query = Query::partition(&pk);
    query.limit = 1000;
    assert_eq!(
        table.query(&query).await.unwrap().len(),
        MAX_WRITES_PER_TRANSACTION
    );
}

// --- counters ----------------------------------------------------------------------------------

async fn add_creates_a_counter_and_sums_deltas(table: Arc<dyn Table>) {
    let scope = Scope::new();
    let (counter, other) = (scope.key("counter"), scope.key("other"));
    let add = |delta| Write::Add {
        key: counter.clone(),
        delta,
    };
    write_one(&table, add(5)).await.unwrap();
    let created = get(&table, &counter).await.expect("created by the add");
    assert_eq!(created.count, 5);
    assert_eq!(created.doc, Value::Null);

    write_one(&table, add(-7)).await.unwrap();
    assert_eq!(get(&table, &counter).await.unwrap().count, -2);

    // Within a transaction, next to another write.
    table
        .write(vec![add(10), put(&other, json!({}), Expect::Absent)])
        .await
        .unwrap();
    assert_eq!(get(&table, &counter).await.unwrap().count, 8);

    let negative = scope.key("negative");
    write_one(
        &table,
        Write::Add {
            key: negative.clone(),
            delta: -3,
        },
    )
    .await
    .unwrap();
    assert_eq!(get(&table, &negative).await.unwrap().count, -3);
}

async fn add_keeps_the_document_and_revision_of_an_item(table: Arc<dyn Table>) {
    let scope = Scope::new();
    let key = scope.key("a");
    write_one(&table, put(&key, json!({"name": "kept"}), Expect::Absent))
        .await
        .unwrap();
    write_one(
        &table,
        Write::Add {
            key: key.clone(),
            delta: 2,
        },
    )
    .await
    .unwrap();
    let item = get(&table, &key).await.unwrap();
    assert_eq!(
        (item.rev, item.doc, item.count),
        (1, json!({"name": "kept"}), 2)
    );
    // So a conditional put at that revision still holds.
    write_one(&table, put(&key, json!({}), Expect::Revision(1)))
        .await
        .unwrap();
}

async fn counter_items_read_at_revision_zero_and_take_writes_at_it(table: Arc<dyn Table>) {
    let scope = Scope::new();
    let key = scope.key("counter");
    table.increment(&key, 4, None).await.unwrap();
    assert_eq!(get(&table, &key).await.unwrap().rev, 0);
    write_one(
        &table,
        Write::Check {
            key: key.clone(),
            expect: Expect::Revision(0),
        },
    )
    .await
    .expect("the revision it reads at");
    assert_eq!(
        write_one(&table, put(&key, json!({}), Expect::Revision(1))).await,
        Err(StoreError::ConditionFailed)
    );
    write_one(&table, put(&key, json!({"n": 1}), Expect::Revision(0)))
        .await
        .unwrap();
    let item = get(&table, &key).await.unwrap();
    assert_eq!((item.rev, item.doc, item.count), (1, json!({"n": 1}), 0));
    assert_eq!(
        write_one(&table, put(&key, json!({}), Expect::Revision(0))).await,
        Err(StoreError::ConditionFailed),
        "no longer at revision 0"
    );
}

async fn increment_answers_the_new_value(table: Arc<dyn Table>) {
    let scope = Scope::new();
    let key = scope.key("counter");
    assert_eq!(table.increment(&key, 1, None).await.unwrap(), 1);
    assert_eq!(table.increment(&key, 10, None).await.unwrap(), 11);
    assert_eq!(table.increment(&key, -12, None).await.unwrap(), -1);
    assert_eq!(get(&table, &key).await.unwrap().count, -1);
}

async fn concurrent_increments_answer_distinct_values(table: Arc<dyn Table>) {
    let scope = Scope::new();
    let key = scope.key("counter");
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (table, key) = (table.clone(), key.clone());
            tokio::spawn(async move { table.increment(&key, 1, None).await.unwrap() })
        })
        .collect();
    let mut values = Vec::new();
    for task in tasks {
        values.push(task.await.unwrap());
    }
    values.sort();
    assert_eq!(values, (1..=16).collect::<Vec<i64>>());
    assert_eq!(get(&table, &key).await.unwrap().count, 16);
}

// --- get_many ----------------------------------------------------------------------------------

async fn get_many_answers_in_the_order_asked_with_none_for_missing(table: Arc<dyn Table>) {
    let scope = Scope::new();
    let (a, b, c) = (scope.key("a"), scope.key("b"), scope.key("c"));
    table
        .write(vec![
            put(&a, json!("a"), Expect::Absent),
            put(&c, json!("c"), Expect::Absent),
        ])
        .await
        .unwrap();
    let found = table
        .get_many(&[c.clone(), b.clone(), a.clone(), c.clone(), b.clone()])
        .await
        .unwrap();
    let docs: Vec<Option<Value>> = found.into_iter().map(|i| i.map(|i| i.doc)).collect();
    assert_eq!(
        docs,
        vec![
            Some(json!("c")),
            None,
            Some(json!("a")),
            Some(json!("c")),
            None
        ]
    );
}

async fn get_many_reads_more_than_one_batch(table: Arc<dyn Table>) {
    let scope = Scope::new();
    let pk = scope.pk("many");
    // 150 items; ask for them in reverse, with every third one missing and every fifth twice.
    let present: Vec<String> = (0..150)
        .filter(|i| i % 3 != 0)
        .map(|i| format!("{i:03}"))
        .collect();
    fill(
        &table,
        &pk,
        &present.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .await;
    let mut asked = Vec::new();
    for i in (0..150).rev() {
        asked.push(format!("{i:03}"));
        if i % 5 == 0 {
            asked.push(format!("{i:03}"));
        }
    }
    let keys: Vec<Key> = asked.iter().map(|sk| Key::new(&pk, sk)).collect();
    let found = table.get_many(&keys).await.unwrap();
    assert_eq!(found.len(), keys.len());
    for (sk, item) in asked.iter().zip(&found) {
        if present.contains(sk) {
            let item = item.as_ref().unwrap_or_else(|| panic!("{sk} is present"));
            assert_eq!(&item.key.sk, sk);
            assert_eq!(item.doc, json!({ "sk": sk }));
        } else {
            assert!(item.is_none(), "{sk} is missing");
        }
    }
}

async fn get_many_of_nothing_is_nothing(table: Arc<dyn Table>) {
    assert_eq!(table.get_many(&[]).await.unwrap(), Vec::new());
}

// --- query -------------------------------------------------------------------------------------

const SORTED: [&str; 8] = ["a", "a#1", "a#2", "b", "b#1", "b#2", "b#3", "c"];

async fn filled(table: &Arc<dyn Table>) -> String {
    let pk = Scope::new().pk("sorted");
    // Written out of order: the answer's order is the store's.
    let mut shuffled = SORTED;
    shuffled.reverse();
    fill(table, &pk, &shuffled).await;
    pk
}

fn reversed(sks: &[&str]) -> Vec<String> {
    sks.iter().rev().map(|s| s.to_string()).collect()
}

fn owned(sks: &[&str]) -> Vec<String> {
    sks.iter().map(|s| s.to_string()).collect()
}

async fn query_reads_a_partition_in_either_direction(table: Arc<dyn Table>) {
    let pk = filled(&table).await;
    let mut query = Query::partition(&pk);
    assert_eq!(sort_keys(&table, &query).await, owned(&SORTED));
    query.descending = true;
    assert_eq!(sort_keys(&table, &query).await, reversed(&SORTED));
    let items = table.query(&query).await.unwrap();
    assert!(items.iter().all(|item| item.key.pk == pk && item.rev == 1));
    assert_eq!(items[0].doc, json!({"sk": "c"}));
}

async fn query_stops_at_the_limit(table: Arc<dyn Table>) {
    let pk = filled(&table).await;
    let mut query = Query::partition(&pk);
    query.limit = 3;
    assert_eq!(sort_keys(&table, &query).await, owned(&SORTED[..3]));
    query.descending = true;
    assert_eq!(sort_keys(&table, &query).await, reversed(&SORTED[5..]));
    query.limit = 1;
    assert_eq!(sort_keys(&table, &query).await, owned(&["c"]));
}

async fn query_continues_after_a_key_exclusively_in_either_direction(table: Arc<dyn Table>) {
    let pk = filled(&table).await;
    let mut query = Query::partition(&pk);
    query.after = Some("b".to_owned());
    assert_eq!(sort_keys(&table, &query).await, owned(&SORTED[4..]));
    query.descending = true;
    assert_eq!(sort_keys(&table, &query).await, reversed(&SORTED[..3]));
    query.limit = 2;
    assert_eq!(sort_keys(&table, &query).await, owned(&["a#2", "a#1"]));

    // A key that is not itself an item continues from where it would sort.
    query.after = Some("a#15".to_owned());
    assert_eq!(sort_keys(&table, &query).await, owned(&["a#1", "a"]));
    query.descending = false;
    assert_eq!(sort_keys(&table, &query).await, owned(&["a#2", "b"]));

    // After the last (or, descending, the first): nothing.
    query.after = Some("c".to_owned());
    assert!(sort_keys(&table, &query).await.is_empty());
    query.after = Some("a".to_owned());
    query.descending = true;
    assert!(sort_keys(&table, &query).await.is_empty());
}

async fn query_reads_a_prefix_in_either_direction(table: Arc<dyn Table>) {
    let pk = filled(&table).await;
    let mut query = Query::partition(&pk);
    query.range = SortRange::Prefix("b#".to_owned());
    assert_eq!(
        sort_keys(&table, &query).await,
        owned(&["b#1", "b#2", "b#3"])
    );
    query.descending = true;
    assert_eq!(
        sort_keys(&table, &query).await,
        owned(&["b#3", "b#2", "b#1"])
    );
    query.limit = 2;
    query.after = Some("b#3".to_owned());
    assert_eq!(sort_keys(&table, &query).await, owned(&["b#2", "b#1"]));
    query.descending = false;
    query.after = Some("b#1".to_owned());
    assert_eq!(sort_keys(&table, &query).await, owned(&["b#2", "b#3"]));

    query.range = SortRange::Prefix("z".to_owned());
    query.after = None;
    assert!(sort_keys(&table, &query).await.is_empty());
}

async fn query_reads_an_inclusive_range_in_either_direction(table: Arc<dyn Table>) {
    let pk = filled(&table).await;
    let mut query = Query::partition(&pk);
    query.range = SortRange::Between("a#2".to_owned(), "b#2".to_owned());
    assert_eq!(
        sort_keys(&table, &query).await,
        owned(&["a#2", "b", "b#1", "b#2"])
    );
    query.descending = true;
    assert_eq!(
        sort_keys(&table, &query).await,
        owned(&["b#2", "b#1", "b", "a#2"])
    );
    query.after = Some("b#1".to_owned());
    assert_eq!(sort_keys(&table, &query).await, owned(&["b", "a#2"]));
    query.descending = false;
    assert_eq!(sort_keys(&table, &query).await, owned(&["b#2"]));

    // Bounds that are not items, and a range of one key.
    query.after = None;
    query.range = SortRange::Between("a#0".to_owned(), "a#9".to_owned());
    assert_eq!(sort_keys(&table, &query).await, owned(&["a#1", "a#2"]));
    query.range = SortRange::Between("b".to_owned(), "b".to_owned());
    assert_eq!(sort_keys(&table, &query).await, owned(&["b"]));
    query.range = SortRange::Between("x".to_owned(), "y".to_owned());
    assert!(sort_keys(&table, &query).await.is_empty());
}

/// Page positions come from earlier pages, so they lie in the range; one that does not (a bug, or
/// a position from another range) must still not leak keys outside the range. (DynamoDB itself
/// may refuse such a start key; that is fine too.)
async fn query_after_a_key_outside_the_range_never_widens_it(table: Arc<dyn Table>) {
    let pk = filled(&table).await;
    let between = SortRange::Between("b".to_owned(), "b#2".to_owned());
    for (range, descending, after, expected) in [
        (between.clone(), false, "a", owned(&["b", "b#1", "b#2"])),
        (between.clone(), true, "z", owned(&["b#2", "b#1", "b"])),
        (between.clone(), false, "z", Vec::new()),
        (between, true, "a", Vec::new()),
        (
            SortRange::Prefix("b#".to_owned()),
            false,
            "a",
            owned(&["b#1", "b#2", "b#3"]),
        ),
        (
            SortRange::Prefix("b#".to_owned()),
            true,
            "z",
            owned(&["b#3", "b#2", "b#1"]),
        ),
    ] {
        let query = Query {
            pk: pk.clone(),
            range: range.clone(),
            after: Some(after.to_owned()),
            descending,
            limit: 100,
        };
        if let Ok(items) = table.query(&query).await {
            let found: Vec<String> = items.into_iter().map(|item| item.key.sk).collect();
            assert_eq!(
                found, expected,
                "{range:?} after {after}, descending {descending}"
            );
        }
    }
}

async fn query_of_an_empty_partition_is_empty(table: Arc<dyn Table>) {
    let scope = Scope::new();
    let mut query = Query::partition(scope.pk("empty"));
    assert!(table.query(&query).await.unwrap().is_empty());
    query.descending = true;
    query.after = Some("m".to_owned());
    assert!(table.query(&query).await.unwrap().is_empty());
}

async fn paging_with_after_reads_every_item_exactly_once(table: Arc<dyn Table>) {
    let scope = Scope::new();
    let pk = scope.pk("paged");
    let all: Vec<String> = (0..57).map(|i| format!("{i:04}")).collect();
    fill(
        &table,
        &pk,
        &all.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .await;
    for descending in [false, true] {
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let query = Query {
                pk: pk.clone(),
                range: SortRange::All,
                after: after.clone(),
                descending,
                limit: 10,
            };
            let page = sort_keys(&table, &query).await;
            assert!(page.len() <= 10);
            let Some(last) = page.last() else { break };
            after = Some(last.clone());
            seen.extend(page);
        }
        let mut expected = all.clone();
        if descending {
            expected.reverse();
        }
        assert_eq!(seen, expected, "descending: {descending}");
    }
}

// --- documents ---------------------------------------------------------------------------------

async fn expiry_round_trips(table: Arc<dyn Table>) {
    let scope = Scope::new();
    let key = scope.key("expiring");
    // Far in the future, so no TTL sweep can take it during the test.
    let expires_at = 4_102_444_800;
    write_one(
        &table,
        Write::Put {
            key: key.clone(),
            doc: json!({}),
            expect: Expect::Absent,
            expires_at: Some(expires_at),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        get(&table, &key).await.unwrap().expires_at,
        Some(expires_at)
    );
    let queried = table.query(&Query::partition(&key.pk)).await.unwrap();
    assert_eq!(queried[0].expires_at, Some(expires_at));
    let many = table.get_many(std::slice::from_ref(&key)).await.unwrap();
    assert_eq!(many[0].as_ref().unwrap().expires_at, Some(expires_at));

    // A put replaces the whole item, expiry included.
    write_one(&table, put(&key, json!({}), Expect::Revision(1)))
        .await
        .unwrap();
    assert_eq!(get(&table, &key).await.unwrap().expires_at, None);
}

async fn nested_documents_round_trip_exactly(table: Arc<dyn Table>) {
    let scope = Scope::new();
    let doc = json!({
        "string": "text",
        "empty": "",
        "unicode": "Grüße, 你好, 🚀, \u{0}\u{1f}, \"quoted\" \\ back",
        "integers": [0, 1, -1, 42, 9_007_199_254_740_991_u64, -9_007_199_254_740_991_i64],
        "floats": [1.5, -0.25, 1.2345678901234567, 1e-7, 6.02e23],
        "bools": [true, false],
        "null": null,
        "empty_array": [],
        "empty_object": {},
        "mixed": [1, "two", null, {"three": [3]}, [[]], false],
        "nested": {"a": {"b": {"c": {"d": ["deep", {"e": null}]}}}},
        "keys with spaces and ünïcode": {"ключ": "значение"},
    });
    let keys = [
        scope.key("doc"),
        scope.key("top-level-array"),
        scope.key("s"),
    ];
    let docs = [doc, json!([1, {"a": []}, "x"]), json!("just a string")];
    for (key, doc) in keys.iter().zip(&docs) {
        write_one(&table, put(key, doc.clone(), Expect::Absent))
            .await
            .unwrap();
        assert_eq!(&get(&table, key).await.unwrap().doc, doc);
    }
    let many = table.get_many(&keys).await.unwrap();
    for (item, doc) in many.iter().zip(&docs) {
        assert_eq!(&item.as_ref().unwrap().doc, doc);
    }
    let queried = table.query(&Query::partition(&keys[0].pk)).await.unwrap();
    assert_eq!(queried[0].doc, docs[0]);
}

/// DynamoDB keeps numbers, not their spelling: `2.0` comes back as `2` (and `-0.0` as `0`).
async fn whole_floats_come_back_as_the_same_number(table: Arc<dyn Table>) {
    let scope = Scope::new();
    let key = scope.key("floats");
    let sent = [2.0, -3.0, 0.0, 1e20];
    write_one(&table, put(&key, json!(sent), Expect::Absent))
        .await
        .unwrap();
    let doc = get(&table, &key).await.unwrap().doc;
    let read: Vec<f64> = doc
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_f64().expect("a number"))
        .collect();
    assert_eq!(read, sent);
}

// --- concurrency -------------------------------------------------------------------------------

async fn concurrent_writes_at_one_revision_have_exactly_one_winner(table: Arc<dyn Table>) {
    let scope = Scope::new();
    let key = scope.key("contended");
    write_one(&table, put(&key, json!({"writer": null}), Expect::Absent))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|writer| {
            let (table, key) = (table.clone(), key.clone());
            tokio::spawn(async move {
                // Half as single writes, half as transactions with a second item.
                let mut writes = vec![put(&key, json!({ "writer": writer }), Expect::Revision(1))];
                if writer % 2 == 1 {
                    writes.push(put(
                        &Key::new(&key.pk, format!("side-{writer}")),
                        json!({}),
                        Expect::Absent,
                    ));
                }
                (writer, table.write(writes).await)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (writer, Ok(())) => winners.push(writer),
            (_, Err(StoreError::ConditionFailed)) => {}
            (writer, Err(other)) => panic!("writer {writer}: {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    assert_eq!(
        rev_and_doc(&table, &key).await,
        Some((2, json!({ "writer": winners[0] })))
    );
}

async fn concurrent_creations_of_one_item_have_exactly_one_winner(table: Arc<dyn Table>) {
    let scope = Scope::new();
    let key = scope.key("created");
    let tasks: Vec<_> = (0..16)
        .map(|writer| {
            let (table, key) = (table.clone(), key.clone());
            tokio::spawn(async move {
                let result = table
                    .write(vec![put(&key, json!({ "writer": writer }), Expect::Absent)])
                    .await;
                (writer, result)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (writer, Ok(())) => winners.push(writer),
            (_, Err(StoreError::ConditionFailed)) => {}
            (writer, Err(other)) => panic!("writer {writer}: {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    assert_eq!(
        rev_and_doc(&table, &key).await,
        Some((1, json!({ "writer": winners[0] })))
    );
}

// --- keys --------------------------------------------------------------------------------------

const NOW: &str = "2026-01-01T00:00:00.000Z";

fn organization() -> String {
    ids::new_id("org_", 0)
}

async fn created_keys_authenticate_with_bearer_or_bare(table: Arc<dyn Table>) {
    let keys = KeyStore::new(table);
    let org = organization();
    for (kind, prefix) in [(KeyKind::Private, "sk_"), (KeyKind::Public, "pk_")] {
        let (key, stored) = keys.create(&org, kind, "ci", NOW).await.unwrap();
        assert!(key.starts_with(prefix));
        assert_eq!((stored.kind, stored.name.as_str()), (kind, "ci"));
        for header in [
            format!("Bearer {key}"),
            format!("bearer {key}"),
            key.clone(),
        ] {
            let caller = keys.authenticate(Some(&header)).await.unwrap();
            assert_eq!(caller.organization_id, org);
            assert_eq!(caller.kind, kind);
            assert_eq!(caller.key_name, "ci");
        }
    }
}

async fn unknown_or_malformed_keys_are_unauthorized(table: Arc<dyn Table>) {
    let keys = KeyStore::new(table);
    let (key, _) = keys
        .create(&organization(), KeyKind::Private, "real", NOW)
        .await
        .unwrap();
    let unknown = format!("sk_{}", ids::random_token(40));
    let swapped_kind = format!("pk_{}", &key[3..]);
    for header in [
        None,
        Some(""),
        Some("Bearer"),
        Some(unknown.as_str()),
        Some(swapped_kind.as_str()),
        Some("Basic c2tfYWJj"),
        Some("xx_abcdefgh"),
    ] {
        let err = keys.authenticate(header).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::Unauthorized, "{header:?}");
    }
}

async fn revoked_keys_are_unauthorized(table: Arc<dyn Table>) {
    let keys = KeyStore::new(table);
    let org = organization();
    let (revoked, stored) = keys
        .create(&org, KeyKind::Private, "leaked", NOW)
        .await
        .unwrap();
    let (kept, _) = keys
        .create(&org, KeyKind::Private, "kept", NOW)
        .await
        .unwrap();
    assert!(
        keys.revoke(&org, &stored.hash_prefix, "2026-02-01T00:00:00.000Z")
            .await
            .unwrap()
    );
    let err = keys.authenticate(Some(&revoked)).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Unauthorized);
    keys.authenticate(Some(&kept))
        .await
        .expect("other keys live");
    let listed = keys.list(&org).await.unwrap();
    let leaked = listed.iter().find(|k| k.name == "leaked").unwrap();
    assert_eq!(
        leaked.revoked_at.as_deref(),
        Some("2026-02-01T00:00:00.000Z")
    );
}

async fn revoking_needs_the_organization_and_eight_hex_digits(table: Arc<dyn Table>) {
    let keys = KeyStore::new(table);
    let (org, other) = (organization(), organization());
    let (key, stored) = keys
        .create(&org, KeyKind::Private, "mine", NOW)
        .await
        .unwrap();
    assert!(!keys.revoke(&other, &stored.hash_prefix, NOW).await.unwrap());
    assert!(
        !keys
            .revoke(&org, &stored.hash_prefix[..7], NOW)
            .await
            .unwrap()
    );
    assert!(!keys.revoke(&org, "00000000", NOW).await.unwrap());
    keys.authenticate(Some(&key)).await.expect("still live");
}

async fn a_key_cannot_be_registered_for_a_second_organization(table: Arc<dyn Table>) {
    let keys = KeyStore::new(table);
    let (org, other) = (organization(), organization());
    let key = format!("sk_{}", ids::random_token(40));
    keys.register(&key, &org, "first", NOW).await.unwrap();
    // Again for the same organization: a no-op answering the stored key.
    let again = keys.register(&key, &org, "renamed", NOW).await.unwrap();
    assert_eq!(again.name, "first");

    let refused = keys.register(&key, &other, "stolen", NOW).await;
    assert!(refused.is_err(), "{refused:?}");
    let caller = keys.authenticate(Some(&key)).await.unwrap();
    assert_eq!(
        (caller.organization_id, caller.key_name),
        (org.clone(), "first".to_owned())
    );
    assert!(keys.list(&other).await.unwrap().is_empty());
    assert_eq!(keys.list(&org).await.unwrap().len(), 1);
}

async fn key_lists_show_names_and_never_plaintext(table: Arc<dyn Table>) {
    let keys = KeyStore::new(table.clone());
    let (org, other) = (organization(), organization());
    let (private, _) = keys
        .create(&org, KeyKind::Private, "backend", NOW)
        .await
        .unwrap();
    let (public, _) = keys
        .create(&org, KeyKind::Public, "dashboard", NOW)
        .await
        .unwrap();
    keys.create(&other, KeyKind::Private, "someone else", NOW)
        .await
        .unwrap();

    let listed = keys.list(&org).await.unwrap();
    let names: HashSet<&str> = listed.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, HashSet::from(["backend", "dashboard"]));
    for key in &listed {
        assert_eq!(key.organization_id, org);
        assert_eq!(key.hash_prefix.len(), 8);
        assert_eq!(key.revoked_at, None);
    }
    let shown = format!("{listed:?}");
    assert!(!shown.contains(&private) && !shown.contains(&public[3..]));

    // Nor is the plaintext anywhere in the table.
    for key in [&private, &public] {
        let hash = flowline_core::auth::hash_key(key);
        let item = table
            .get(&Key::new(format!("KEY#{hash}"), "KEY"))
            .await
            .unwrap()
            .expect("stored by hash");
        assert!(!item.doc.to_string().contains(&key[3..]));
    }
    let index = table
        .query(&Query::partition(format!("ORG#{org}#KEYS")))
        .await
        .unwrap();
    assert_eq!(index.len(), 2);
    assert!(index.iter().all(|item| {
        let text = format!("{item:?}");
        !text.contains(&private[3..]) && !text.contains(&public[3..])
    }));
}
