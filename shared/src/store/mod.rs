//! Storage behind one small trait, [`Table`]: a single-table key-value store with atomic
//! multi-item writes, conditional on item revisions. The use cases (flows, keys, idempotency…)
//! are written once against it; [`memory::MemoryTable`] here and `DynamoTable` (in
//! `flowline-adapters`) implement it, held to one contract by `tests/store_conformance.rs`.
//!
//! Every item has a partition key `pk`, a sort key `sk`, a revision `rev` (bumped by every
//! conditional put, so "write only if nobody wrote since I read" is one condition), a document
//! `doc` (the domain record), and optionally a counter `n` and an expiry `ttl` (epoch seconds).

pub mod memory;
pub mod metered;

use async_trait::async_trait;
use serde::{Serialize, de::DeserializeOwned};

/// DynamoDB's limit on the items of one transaction; the memory table enforces it too.
pub const MAX_WRITES_PER_TRANSACTION: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            sk: sk.into(),
        }
    }
}

/// An item as read.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub key: Key,
    pub rev: u64,
    pub doc: serde_json::Value,
    /// The counter attribute, for counter items.
    pub count: i64,
    pub expires_at: Option<i64>,
}

impl Item {
    /// The domain record stored in `doc`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, StoreError> {
        T::deserialize(&self.doc)
            .map_err(|err| StoreError::Corrupt(format!("{}/{}: {err}", self.key.pk, self.key.sk)))
    }
}

/// What must be true of an item for a write to happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// No condition (index entries and other items that only one writer derives).
    Anything,
    /// The item must not exist (creation).
    Absent,
    /// The item must exist at exactly this revision (read-modify-write).
    Revision(u64),
    /// The item must not exist, or its `expires_at` (Unix seconds) be before this second: a
    /// lease that nobody holds, or whose holder let it run out (the webhook in-flight gate).
    AbsentOrExpired(i64),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Replace the whole item. Its revision becomes 1 (after `Absent`/`Anything`) or the
    /// expected revision + 1.
    Put {
        key: Key,
        doc: serde_json::Value,
        expect: Expect,
        expires_at: Option<i64>,
    },
    Delete {
        key: Key,
        expect: Expect,
    },
    /// Fails the whole write unless the condition holds; writes nothing itself.
    Check {
        key: Key,
        expect: Expect,
    },
    /// Adds `delta` to the item's counter, creating it at 0 first if missing.
    Add {
        key: Key,
        delta: i64,
    },
}

impl Write {
    pub fn put<T: Serialize>(key: Key, doc: &T, expect: Expect) -> Result<Self, StoreError> {
        let doc = serde_json::to_value(doc).map_err(|err| StoreError::Corrupt(err.to_string()))?;
        Ok(Self::Put {
            key,
            doc,
            expect,
            expires_at: None,
        })
    }

    pub fn key(&self) -> &Key {
        match self {
            Self::Put { key, .. }
            | Self::Delete { key, .. }
            | Self::Check { key, .. }
            | Self::Add { key, .. } => key,
        }
    }
}

/// Which sort keys of one partition a query reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortRange {
    All,
    Prefix(String),
    /// Inclusive on both ends.
    Between(String, String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub pk: String,
    pub range: SortRange,
    /// Continue after this sort key (exclusive), in the query's direction.
    pub after: Option<String>,
    pub descending: bool,
    pub limit: usize,
}

impl Query {
    pub fn partition(pk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            range: SortRange::All,
            after: None,
            descending: false,
            limit: 100,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A condition of the write did not hold (or a concurrent transaction touched its items).
    #[error("a write condition did not hold")]
    ConditionFailed,
    /// The store could not be reached or refused for capacity: safe to retry.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store answered something Flowline cannot read, or was asked something it cannot do.
    #[error("store error: {0}")]
    Corrupt(String),
    /// A key over DynamoDB's limits. Keys are made from validated input, so this is a backstop
    /// that answers 400 rather than letting a request through to the store.
    #[error("key too long: {0}")]
    InvalidKey(String),
}

#[async_trait]
pub trait Table: Send + Sync {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError>;

    /// Reads many items at once; the answer is in the order of `keys`, `None` where missing.
    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError>;

    /// At most `limit` items of one partition, in sort-key order (or reversed).
    async fn query(&self, query: &Query) -> Result<Vec<Item>, StoreError>;

    /// All of `writes` or none of them. At most [`MAX_WRITES_PER_TRANSACTION`], each on a
    /// different item.
    async fn write(&self, writes: Vec<Write>) -> Result<(), StoreError>;

    /// Atomically adds `delta` to a counter item and answers the new value; `expires_at` (epoch
    /// seconds) sets the item's expiry.
    async fn increment(
        &self,
        key: &Key,
        delta: i64,
        expires_at: Option<i64>,
    ) -> Result<i64, StoreError>;
}

/// A record with the revision it was read at (what a conditional write expects).
#[derive(Debug, Clone)]
pub struct Loaded<T> {
    pub value: T,
    pub rev: u64,
}

/// Reads the record at `key`, if any.
pub async fn load<T: DeserializeOwned>(
    table: &dyn Table,
    key: &Key,
) -> Result<Option<Loaded<T>>, StoreError> {
    match table.get(key).await? {
        Some(item) => Ok(Some(Loaded {
            value: item.decode()?,
            rev: item.rev,
        })),
        None => Ok(None),
    }
}

/// A list query reads one item more than a page: if it came, the page ends at the `limit`-th
/// item, whose sort key is where the next page starts.
pub fn split_page(mut items: Vec<Item>, limit: usize) -> (Vec<Item>, Option<String>) {
    let next = (items.len() > limit).then(|| items[limit - 1].key.sk.clone());
    items.truncate(limit);
    (items, next)
}

/// One page, newest first, of a list spread over several partitions (`pks`, the list's
/// shards), and the position after it: the newest `limit + 1` entries of each, merged. Sort
/// keys are unique across the shards (ids), so the merge is exact and one position continues
/// every shard.
pub async fn merged_page(
    table: &dyn Table,
    pks: Vec<String>,
    range: SortRange,
    after: Option<String>,
    limit: usize,
) -> Result<(Vec<Item>, Option<String>), StoreError> {
    let queries = pks.into_iter().map(|pk| Query {
        pk,
        range: range.clone(),
        after: after.clone(),
        descending: true,
        limit: limit + 1,
    });
    let pages = futures_util::future::try_join_all(
        queries.map(|query| async move { table.query(&query).await }),
    )
    .await?;
    let mut merged: Vec<Item> = pages.into_iter().flatten().collect();
    merged.sort_by(|a, b| b.key.sk.cmp(&a.key.sk));
    Ok(split_page(merged, limit))
}

/// The time a due-index entry's sort key starts with (`<ms, 13 digits>#<id>`), in ms.
pub fn due_ms_of(item: &Item) -> Result<i64, StoreError> {
    item.key
        .sk
        .split_once('#')
        .and_then(|(due, _)| due.parse().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("due entry {}", item.key.sk)))
}

/// A stable spread of ids over `shards` (ids end in random digits, so any hash of them is even).
pub fn shard_of(id: &str, shards: u32) -> u32 {
    id.bytes().fold(0u32, |hash, b| {
        hash.wrapping_mul(31).wrapping_add(u32::from(b))
    }) % shards
}

/// DynamoDB's limits on key attributes (UTF-8 bytes): 2048 for a partition key, 1024 for a
/// sort key. Every implementation refuses longer keys, as DynamoDB does.
pub const MAX_PARTITION_KEY_BYTES: usize = 2048;
pub const MAX_SORT_KEY_BYTES: usize = 1024;

pub fn check_key(key: &Key) -> Result<(), StoreError> {
    if key.pk.is_empty() || key.pk.len() > MAX_PARTITION_KEY_BYTES {
        return Err(StoreError::InvalidKey(format!(
            "a partition key of {} bytes",
            key.pk.len()
        )));
    }
    if key.sk.len() > MAX_SORT_KEY_BYTES {
        return Err(StoreError::InvalidKey(format!(
            "a sort key of {} bytes",
            key.sk.len()
        )));
    }
    Ok(())
}

/// Checks what every implementation refuses before touching anything.
pub fn check_transaction(writes: &[Write]) -> Result<(), StoreError> {
    if writes.len() > MAX_WRITES_PER_TRANSACTION {
        return Err(StoreError::Corrupt(format!(
            "a transaction of {} writes is over the limit of {MAX_WRITES_PER_TRANSACTION}",
            writes.len()
        )));
    }
    let mut seen = std::collections::HashSet::new();
    for write in writes {
        check_key(write.key())?;
        if !seen.insert(write.key()) {
            let key = write.key();
            return Err(StoreError::Corrupt(format!(
                "two writes to {}/{} in one transaction",
                key.pk, key.sk
            )));
        }
    }
    Ok(())
}

/// The index entries of a record: the items (in list partitions) that point at it.
pub type Entries = std::collections::BTreeMap<Key, serde_json::Value>;

/// The writes that turn a record's entries `before` into `after`: stale ones deleted, new or
/// changed ones put. Entries are derived from the record, so they need no condition of their
/// own: the record's conditional write in the same transaction guards them.
pub fn reindex(before: &Entries, after: &Entries) -> Vec<Write> {
    let mut writes = Vec::new();
    for key in before.keys().filter(|key| !after.contains_key(*key)) {
        writes.push(Write::Delete {
            key: key.clone(),
            expect: Expect::Anything,
        });
    }
    for (key, doc) in after {
        if before.get(key) != Some(doc) {
            writes.push(Write::Put {
                key: key.clone(),
                doc: doc.clone(),
                expect: Expect::Anything,
                expires_at: None,
            });
        }
    }
    writes
}
