//! The `Table` port in one local file: the local server's default store, so what a laptop or a
//! small team's machine creates survives a restart. Semantics are `MemoryTable`'s exactly
//! (`tests/store_conformance.rs` holds all three stores to one contract): conditional writes are
//! all-or-nothing, revisions, query order and page boundaries are the same, and `expires_at` is a
//! stored field only (an item is kept after it; DynamoDB's TTL sweep has no local counterpart,
//! and nothing reads an expired item as absent).
//!
//! ## Why redb
//! [redb](https://www.redb.org) is a pure-Rust embedded B-tree store (copy-on-write pages, MVCC:
//! readers never wait for the writer). Its only dependency is `libc`, so it adds one crate and no
//! C toolchain to the build; it is ACID, and a commit with `Durability::Immediate` (the default,
//! kept here) returns only after `fsync`, with checksummed commit slots so a crash leaves the
//! last complete commit; it locks its file, so one process owns a database; and it is actively
//! maintained (several releases in 2026). The others looked at: SQLite through `rusqlite` is as
//! durable but compiles SQLite's C and would mean SQL for a key-value port; `fjall` (an LSM tree)
//! pulls in a dozen crates and a background compaction for a workload of small transactions;
//! `sled` has had no release in years; LMDB (`heed`) is C.
//!
//! ## Layout
//! One file, `<data dir>/flowline.redb`, with two redb tables: `main` (flows, callbacks, webhooks,
//! idempotency records, counters) and `keys` (API keys), the two tables of the cloud. One file
//! means one lock and one commit for both, and one thing to back up or delete. The redb key is
//! the pair `(pk, sk)` as bytes, ordered as DynamoDB orders them (byte-wise, partition first), so
//! a query is one range scan. The value is a 26-byte header — format, `rev`, the counter `n`,
//! `expires_at` — followed by the document as JSON.
//!
//! ## Writes: one writer thread, group commit
//! redb runs one write transaction at a time, and each durable commit costs an `fsync`
//! (milliseconds on most disks). So every write goes to one writer thread, which takes all the
//! writes waiting (up to [`MAX_BATCH`]), applies each in turn in one redb transaction — each
//! checks its own conditions first and then applies all its items, or none — and commits once.
//! A caller hears back only after that commit: an answered write is on disk. If the commit
//! fails, every write of the batch answers `Unavailable` and none of them is applied.
//! Reads run on tokio's blocking pool, each in its own read transaction (a consistent snapshot).
//!
//! ## Ownership
//! redb locks the file: a second process opening the same directory gets [`OpenError::InUse`]
//! (the server refuses to start, `flowline-admin` says so) until the first closes it.

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, mpsc};
use std::thread::JoinHandle;

use ::redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use async_trait::async_trait;
use flowline_core::store::{
    Expect, Item, Key, Query, SortRange, StoreError, Table, Write, check_key, check_transaction,
};

/// The database file in a data directory.
pub const FILE_NAME: &str = "flowline.redb";

/// Writes applied in one redb transaction and made durable by one commit.
pub const MAX_BATCH: usize = 256;

/// Pages the process keeps in memory (redb's default is 1 GiB): the store of a local server is
/// small, and the operating system caches the file as well.
const CACHE_BYTES: usize = 256 * 1024 * 1024;

type Definition = TableDefinition<'static, (&'static [u8], &'static [u8]), &'static [u8]>;

const MAIN: Definition = TableDefinition::new("main");
const KEYS: Definition = TableDefinition::new("keys");

/// Which of the two tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    Main,
    Keys,
}

impl Which {
    fn definition(self) -> Definition {
        match self {
            Self::Main => MAIN,
            Self::Keys => KEYS,
        }
    }
}

/// Why a data directory could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// Another process (a server, or `flowline-admin`) has the database open.
    InUse(PathBuf),
    /// The directory or file could not be created or read.
    Failed { path: PathBuf, reason: String },
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InUse(path) => write!(
                f,
                "the data directory {} is in use by another process (a Flowline server or \
                 flowline-admin); one process owns a data directory at a time",
                path.display()
            ),
            Self::Failed { path, reason } => write!(f, "cannot open {}: {reason}", path.display()),
        }
    }
}

impl std::error::Error for OpenError {}

/// The open database of a data directory; its [`main`](Self::main) and [`keys`](Self::keys)
/// tables share it.
pub struct RedbStore {
    shared: Arc<Shared>,
    directory: PathBuf,
}

/// The database, `None` once [closed](RedbStore::close): the tables read through it, the writer
/// thread writes through it. When the last table is dropped, [`Shared`]'s `Drop` stops the
/// writer, and the database, dropped last, closes the file cleanly.
type Db = Arc<RwLock<Option<Database>>>;

struct Shared {
    db: Db,
    writer: mpsc::Sender<Job>,
    writer_thread: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl RedbStore {
    /// Opens (creating on first use) the database in `directory`, creating the directory too.
    pub fn open(directory: &Path) -> Result<Self, OpenError> {
        let failed = |path: &Path, reason: String| OpenError::Failed {
            path: path.to_owned(),
            reason,
        };
        std::fs::create_dir_all(directory).map_err(|err| failed(directory, err.to_string()))?;
        let path = directory.join(FILE_NAME);
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(&path)
            .map_err(|err| match err {
                ::redb::DatabaseError::DatabaseAlreadyOpen => {
                    OpenError::InUse(directory.to_owned())
                }
                other => failed(&path, other.to_string()),
            })?;
        // Both tables exist from the first start on, so a read never meets a missing table.
        let created = (|| -> Result<(), ::redb::Error> {
            let txn = db.begin_write()?;
            txn.open_table(MAIN)?;
            txn.open_table(KEYS)?;
            txn.commit()?;
            Ok(())
        })();
        created.map_err(|err| failed(&path, err.to_string()))?;

        let db: Db = Arc::new(RwLock::new(Some(db)));
        let (writer, jobs) = mpsc::channel();
        let thread = {
            let db = db.clone();
            std::thread::Builder::new()
                .name("flowline-store-writer".to_owned())
                .spawn(move || write_batches(&db, &jobs))
                .map_err(|err| failed(&path, err.to_string()))?
        };
        Ok(Self {
            shared: Arc::new(Shared {
                db,
                writer,
                writer_thread: std::sync::Mutex::new(Some(thread)),
            }),
            directory: directory.to_owned(),
        })
    }

    pub fn directory(&self) -> &Path {
        &self.directory
    }

    /// The main table: flows, callbacks, webhooks, idempotency records, counters.
    pub fn main(&self) -> RedbTable {
        self.table(Which::Main)
    }

    /// The keys table: API keys (by hash) and organizations' budgets.
    pub fn keys(&self) -> RedbTable {
        self.table(Which::Keys)
    }

    fn table(&self, which: Which) -> RedbTable {
        RedbTable {
            shared: self.shared.clone(),
            which,
        }
    }

    /// Finishes the writes already handed over, then closes the file cleanly (releasing its
    /// lock); later calls on its tables answer `Unavailable`. Without it, a process that exits
    /// leaves every commit intact, but the next open first checks the whole file.
    pub fn close(&self) -> Result<(), StoreError> {
        let _ = self.shared.writer.send(Job::Stop);
        let thread = self
            .shared
            .writer_thread
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
        let db = self
            .shared
            .db
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        match db {
            Some(db) => db.close().map_err(unavailable),
            None => Ok(()),
        }
    }
}

impl Drop for Shared {
    /// The last table is gone: the writer finishes what it was handed, and the file is closed
    /// cleanly before this returns (so a process that exits next leaves a clean file).
    fn drop(&mut self) {
        let _ = self.writer.send(Job::Stop);
        let thread = self
            .writer_thread
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

/// One of the two tables of a [`RedbStore`].
#[derive(Clone)]
pub struct RedbTable {
    shared: Arc<Shared>,
    which: Which,
}

/// What the writer thread is handed.
enum Job {
    Apply {
        table: Which,
        change: Change,
        reply: tokio::sync::oneshot::Sender<Result<i64, StoreError>>,
    },
    /// Finish what came before, then stop.
    Stop,
}

enum Change {
    Write(Vec<Write>),
    Increment {
        key: Key,
        delta: i64,
        expires_at: Option<i64>,
    },
}

fn unavailable(err: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("local store: {err}"))
}

fn closed() -> StoreError {
    StoreError::Unavailable("local store: closed".to_owned())
}

fn begin_read(db: &Db) -> Result<::redb::ReadTransaction, StoreError> {
    let db = db.read().unwrap_or_else(|p| p.into_inner());
    db.as_ref()
        .ok_or_else(closed)?
        .begin_read()
        .map_err(unavailable)
}

fn begin_write(db: &Db) -> Result<::redb::WriteTransaction, StoreError> {
    let db = db.read().unwrap_or_else(|p| p.into_inner());
    db.as_ref()
        .ok_or_else(closed)?
        .begin_write()
        .map_err(unavailable)
}

/// The writer thread: takes every job waiting, applies them in one transaction, commits once,
/// then answers each.
fn write_batches(db: &Db, jobs: &mpsc::Receiver<Job>) {
    let mut stopping = false;
    while !stopping {
        let Ok(first) = jobs.recv() else { return };
        let mut batch = Vec::new();
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                Job::Stop => stopping = true,
                Job::Apply {
                    table,
                    change,
                    reply,
                } => batch.push((table, change, reply)),
            }
            if stopping || batch.len() >= MAX_BATCH {
                break;
            }
            next = jobs.try_recv().ok();
        }
        if batch.is_empty() {
            continue;
        }
        match apply_batch(db, &batch) {
            Ok(outcomes) => {
                for ((_, _, reply), outcome) in batch.into_iter().zip(outcomes) {
                    // The caller may have given up waiting; the write stands either way.
                    let _ = reply.send(outcome);
                }
            }
            Err(err) => {
                tracing::error!(%err, "the local store could not commit a batch of writes");
                for (_, _, reply) in batch {
                    let _ = reply.send(Err(err.clone()));
                }
            }
        }
    }
}

type Batch = [(
    Which,
    Change,
    tokio::sync::oneshot::Sender<Result<i64, StoreError>>,
)];

/// Applies every change of `batch` in one transaction and commits it: the outcome of each (its
/// counter's new value for an increment), or the error that aborted them all.
fn apply_batch(db: &Db, batch: &Batch) -> Result<Vec<Result<i64, StoreError>>, StoreError> {
    let txn = begin_write(db)?;
    let mut outcomes = Vec::with_capacity(batch.len());
    {
        let mut main = txn.open_table(MAIN).map_err(unavailable)?;
        let mut keys = txn.open_table(KEYS).map_err(unavailable)?;
        for (which, change, _) in batch {
            let table = match which {
                Which::Main => &mut main,
                Which::Keys => &mut keys,
            };
            outcomes.push(apply_change(table, change)?);
        }
    }
    txn.commit().map_err(unavailable)?;
    Ok(outcomes)
}

/// A stored key: `(pk, sk)` as bytes.
type StoredKey = (&'static [u8], &'static [u8]);
type WriteTable<'txn> = ::redb::Table<'txn, StoredKey, &'static [u8]>;

/// Applies one change, all of it or (a condition failing) none of it. The outer error is the
/// store's own failure, which aborts the whole batch.
fn apply_change(
    table: &mut WriteTable<'_>,
    change: &Change,
) -> Result<Result<i64, StoreError>, StoreError> {
    match change {
        Change::Write(writes) => {
            for write in writes {
                let expect = match write {
                    Write::Put { expect, .. }
                    | Write::Delete { expect, .. }
                    | Write::Check { expect, .. } => *expect,
                    Write::Add { .. } => Expect::Anything,
                };
                let current = read_header(table, write.key())?;
                if !holds(expect, current) {
                    return Ok(Err(StoreError::ConditionFailed));
                }
            }
            for write in writes {
                apply_write(table, write)?;
            }
            Ok(Ok(0))
        }
        Change::Increment {
            key,
            delta,
            expires_at,
        } => add(table, key, *delta, *expires_at),
    }
}

fn holds(expect: Expect, current: Option<Header>) -> bool {
    match expect {
        Expect::Anything => true,
        Expect::Absent => current.is_none(),
        Expect::Revision(rev) => current.is_some_and(|header| header.rev == rev),
        Expect::AbsentOrExpired(now) => {
            current.is_none_or(|header| header.expires_at.is_some_and(|end| end < now))
        }
    }
}

fn apply_write(table: &mut WriteTable<'_>, write: &Write) -> Result<(), StoreError> {
    match write {
        Write::Put {
            key,
            doc,
            expect,
            expires_at,
        } => {
            let rev = match expect {
                Expect::Revision(rev) => rev + 1,
                Expect::Absent | Expect::Anything | Expect::AbsentOrExpired(_) => 1,
            };
            let header = Header {
                rev,
                count: 0,
                expires_at: *expires_at,
            };
            let value = encode(header, doc)?;
            table
                .insert((key.pk.as_bytes(), key.sk.as_bytes()), value.as_slice())
                .map_err(unavailable)?;
        }
        Write::Delete { key, .. } => {
            table
                .remove((key.pk.as_bytes(), key.sk.as_bytes()))
                .map_err(unavailable)?;
        }
        Write::Check { .. } => {}
        Write::Add { key, delta } => {
            add(table, key, *delta, None)?.map(drop)?;
        }
    }
    Ok(())
}

/// Adds `delta` to the counter of `key` (creating it at revision 0 with no document), keeping
/// the rest of the item; `expires_at`, when given, replaces the expiry. Answers the new count.
fn add(
    table: &mut WriteTable<'_>,
    key: &Key,
    delta: i64,
    expires_at: Option<i64>,
) -> Result<Result<i64, StoreError>, StoreError> {
    let current = table
        .get((key.pk.as_bytes(), key.sk.as_bytes()))
        .map_err(unavailable)?
        .map(|value| value.value().to_vec());
    let mut value = match current {
        Some(value) => value,
        None => encode(
            Header {
                rev: 0,
                count: 0,
                expires_at: None,
            },
            &serde_json::Value::Null,
        )?,
    };
    let mut header = Header::read(&value)?;
    let Some(count) = header.count.checked_add(delta) else {
        return Ok(Err(StoreError::Corrupt(format!(
            "{}/{}: the counter would overflow",
            key.pk, key.sk
        ))));
    };
    header.count = count;
    if expires_at.is_some() {
        header.expires_at = expires_at;
    }
    // The document is kept byte for byte: only the header changes.
    header.write(&mut value);
    table
        .insert((key.pk.as_bytes(), key.sk.as_bytes()), value.as_slice())
        .map_err(unavailable)?;
    Ok(Ok(count))
}

fn read_header(table: &WriteTable<'_>, key: &Key) -> Result<Option<Header>, StoreError> {
    table
        .get((key.pk.as_bytes(), key.sk.as_bytes()))
        .map_err(unavailable)?
        .map(|value| Header::read(value.value()))
        .transpose()
}

/// The stored value's fixed part; the document's JSON follows it.
#[derive(Debug, Clone, Copy)]
struct Header {
    rev: u64,
    count: i64,
    expires_at: Option<i64>,
}

/// The first byte of every value: its layout, so a later one can be told apart.
const FORMAT: u8 = 1;
const HEADER_BYTES: usize = 26;

impl Header {
    fn read(value: &[u8]) -> Result<Self, StoreError> {
        if value.len() < HEADER_BYTES || value[0] != FORMAT {
            return Err(StoreError::Corrupt(
                "a stored value of an unknown layout".to_owned(),
            ));
        }
        let number = |at: usize| {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&value[at..at + 8]);
            bytes
        };
        Ok(Self {
            rev: u64::from_le_bytes(number(1)),
            count: i64::from_le_bytes(number(9)),
            expires_at: (value[17] == 1).then(|| i64::from_le_bytes(number(18))),
        })
    }

    fn write(&self, value: &mut [u8]) {
        value[0] = FORMAT;
        value[1..9].copy_from_slice(&self.rev.to_le_bytes());
        value[9..17].copy_from_slice(&self.count.to_le_bytes());
        value[17] = u8::from(self.expires_at.is_some());
        value[18..26].copy_from_slice(&self.expires_at.unwrap_or(0).to_le_bytes());
    }
}

fn encode(header: Header, doc: &serde_json::Value) -> Result<Vec<u8>, StoreError> {
    let mut value = vec![0u8; HEADER_BYTES];
    header.write(&mut value);
    serde_json::to_writer(&mut value, doc).map_err(|err| StoreError::Corrupt(err.to_string()))?;
    Ok(value)
}

fn decode(pk: &[u8], sk: &[u8], value: &[u8]) -> Result<Item, StoreError> {
    let text = |bytes: &[u8]| {
        String::from_utf8(bytes.to_vec())
            .map_err(|_| StoreError::Corrupt("a stored key is not UTF-8".to_owned()))
    };
    let key = Key::new(text(pk)?, text(sk)?);
    let header = Header::read(value)?;
    let doc = serde_json::from_slice(&value[HEADER_BYTES..])
        .map_err(|err| StoreError::Corrupt(format!("{}/{}: {err}", key.pk, key.sk)))?;
    Ok(Item {
        key,
        rev: header.rev,
        doc,
        count: header.count,
        expires_at: header.expires_at,
    })
}

/// Above every sort key: UTF-8 never contains the byte 0xFF.
const PAST_EVERY_SORT_KEY: &[u8] = &[0xFF];

type SortBounds = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// The sort-key bounds of a query, as `MemoryTable` narrows them; `None` when nothing lies
/// between them.
fn sort_bounds(query: &Query) -> Option<SortBounds> {
    let (mut lower, mut upper) = match &query.range {
        SortRange::All => (Bound::Unbounded, Bound::Unbounded),
        SortRange::Prefix(prefix) => {
            // Every key that starts with the prefix, and nothing else, lies below prefix + 0xFF.
            let mut past = prefix.as_bytes().to_vec();
            past.push(0xFF);
            (
                Bound::Included(prefix.as_bytes().to_vec()),
                Bound::Excluded(past),
            )
        }
        SortRange::Between(low, high) => (
            Bound::Included(low.as_bytes().to_vec()),
            Bound::Included(high.as_bytes().to_vec()),
        ),
    };
    // `after` narrows the range, never widens it.
    if let Some(after) = &query.after {
        let after = after.as_bytes().to_vec();
        if query.descending {
            if !matches!(&upper, Bound::Included(u) | Bound::Excluded(u) if after > *u) {
                upper = Bound::Excluded(after);
            }
        } else if !matches!(&lower, Bound::Included(l) | Bound::Excluded(l) if after < *l) {
            lower = Bound::Excluded(after);
        }
    }
    let empty = match (&lower, &upper) {
        (Bound::Included(l), Bound::Included(u)) => l > u,
        (Bound::Included(l) | Bound::Excluded(l), Bound::Included(u) | Bound::Excluded(u)) => {
            l >= u
        }
        _ => false,
    };
    (!empty).then_some((lower, upper))
}

impl RedbTable {
    /// Runs `read` on a snapshot of this table, on the blocking pool.
    async fn read<T, F>(&self, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&::redb::ReadOnlyTable<StoredKey, &'static [u8]>) -> Result<T, StoreError>
            + Send
            + 'static,
    {
        let (db, definition) = (self.shared.db.clone(), self.which.definition());
        tokio::task::spawn_blocking(move || {
            let txn = begin_read(&db)?;
            let table = txn.open_table(definition).map_err(unavailable)?;
            read(&table)
        })
        .await
        .map_err(unavailable)?
    }

    /// Hands `change` to the writer thread and waits for its commit.
    async fn submit(&self, change: Change) -> Result<i64, StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.shared
            .writer
            .send(Job::Apply {
                table: self.which,
                change,
                reply,
            })
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}

fn get_item(
    table: &impl ReadableTable<StoredKey, &'static [u8]>,
    key: &Key,
) -> Result<Option<Item>, StoreError> {
    let (pk, sk) = (key.pk.as_bytes(), key.sk.as_bytes());
    table
        .get((pk, sk))
        .map_err(unavailable)?
        .map(|value| decode(pk, sk, value.value()))
        .transpose()
}

#[async_trait]
impl Table for RedbTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        check_key(key)?;
        let key = key.clone();
        self.read(move |table| get_item(table, &key)).await
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError> {
        keys.iter().try_for_each(check_key)?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let keys = keys.to_vec();
        self.read(move |table| keys.iter().map(|key| get_item(table, key)).collect())
            .await
    }

    async fn query(&self, query: &Query) -> Result<Vec<Item>, StoreError> {
        check_key(&Key::new(
            query.pk.clone(),
            query.after.clone().unwrap_or_default(),
        ))?;
        let Some((lower, upper)) = sort_bounds(query) else {
            return Ok(Vec::new());
        };
        let (pk, descending, limit) = (query.pk.clone(), query.descending, query.limit);
        self.read(move |table| {
            let pk = pk.as_bytes();
            let lower = match &lower {
                Bound::Included(sk) => Bound::Included((pk, sk.as_slice())),
                Bound::Excluded(sk) => Bound::Excluded((pk, sk.as_slice())),
                Bound::Unbounded => Bound::Included((pk, &[][..])),
            };
            let upper = match &upper {
                Bound::Included(sk) => Bound::Included((pk, sk.as_slice())),
                Bound::Excluded(sk) => Bound::Excluded((pk, sk.as_slice())),
                Bound::Unbounded => Bound::Excluded((pk, PAST_EVERY_SORT_KEY)),
            };
            let range = table.range((lower, upper)).map_err(unavailable)?;
            let decode_entry = |entry: Result<_, ::redb::StorageError>| {
                let (key, value): (
                    ::redb::AccessGuard<'_, (&[u8], &[u8])>,
                    ::redb::AccessGuard<'_, &[u8]>,
                ) = entry.map_err(unavailable)?;
                let (pk, sk) = key.value();
                decode(pk, sk, value.value())
            };
            if descending {
                range.rev().take(limit).map(decode_entry).collect()
            } else {
                range.take(limit).map(decode_entry).collect()
            }
        })
        .await
    }

    async fn write(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        check_transaction(&writes)?;
        if writes.is_empty() {
            return Ok(());
        }
        self.submit(Change::Write(writes)).await.map(drop)
    }

    async fn increment(
        &self,
        key: &Key,
        delta: i64,
        expires_at: Option<i64>,
    ) -> Result<i64, StoreError> {
        check_key(key)?;
        self.submit(Change::Increment {
            key: key.clone(),
            delta,
            expires_at,
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(range: SortRange, after: Option<&str>, descending: bool) -> Query {
        Query {
            pk: "p".to_owned(),
            range,
            after: after.map(str::to_owned),
            descending,
            limit: 10,
        }
    }

    #[test]
    fn a_range_narrowed_to_nothing_is_empty() {
        let between = || SortRange::Between("b".to_owned(), "d".to_owned());
        assert!(sort_bounds(&query(between(), Some("d"), false)).is_none());
        assert!(sort_bounds(&query(between(), Some("b"), true)).is_none());
        assert!(
            sort_bounds(&query(
                SortRange::Between("d".into(), "b".into()),
                None,
                false
            ))
            .is_none()
        );
        assert!(sort_bounds(&query(between(), Some("c"), false)).is_some());
    }

    #[test]
    fn headers_round_trip() {
        let header = Header {
            rev: 7,
            count: -3,
            expires_at: Some(4_102_444_800),
        };
        let value = encode(header, &serde_json::json!({"a": 1})).unwrap();
        let read = Header::read(&value).unwrap();
        assert_eq!(
            (read.rev, read.count, read.expires_at),
            (7, -3, Some(4_102_444_800))
        );
        let item = decode(b"p", b"s", &value).unwrap();
        assert_eq!(item.doc, serde_json::json!({"a": 1}));
    }
}
