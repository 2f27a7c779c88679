//! A [`Table`] that counts what it is asked: calls by operation, and the items they read and
//! write. It shows what a route costs in store calls (tests/costs.rs holds every route to a
//! budget) and what a request did (its log line).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use serde::Serialize;

use super::{Item, Key, Query, StoreError, Table, Write};

/// The calls made so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StoreCalls {
    /// Single-item reads (`GetItem`).
    pub get: u64,
    /// Multi-item reads, and the keys they asked for (`BatchGetItem`, 100 keys a request).
    pub get_many: u64,
    pub get_many_keys: u64,
    /// Queries of one partition, and the items they answered (`Query`).
    pub query: u64,
    pub query_items: u64,
    /// Writes, and the items in them: one item is a single conditional write
    /// (`PutItem`/`DeleteItem`/`UpdateItem`), more are a `TransactWriteItems`.
    pub write: u64,
    pub write_items: u64,
    pub transactions: u64,
    /// Counter increments (`UpdateItem … ADD`).
    pub increment: u64,
}

impl StoreCalls {
    /// Calls that read.
    pub fn reads(&self) -> u64 {
        self.get + self.get_many + self.query
    }

    /// Calls that write.
    pub fn writes(&self) -> u64 {
        self.write + self.increment
    }

    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &StoreCalls) -> StoreCalls {
        StoreCalls {
            get: self.get - earlier.get,
            get_many: self.get_many - earlier.get_many,
            get_many_keys: self.get_many_keys - earlier.get_many_keys,
            query: self.query - earlier.query,
            query_items: self.query_items - earlier.query_items,
            write: self.write - earlier.write,
            write_items: self.write_items - earlier.write_items,
            transactions: self.transactions - earlier.transactions,
            increment: self.increment - earlier.increment,
        }
    }
}

#[derive(Default)]
struct Counters {
    get: AtomicU64,
    get_many: AtomicU64,
    get_many_keys: AtomicU64,
    query: AtomicU64,
    query_items: AtomicU64,
    write: AtomicU64,
    write_items: AtomicU64,
    transactions: AtomicU64,
    increment: AtomicU64,
}

fn add(counter: &AtomicU64, n: usize) {
    counter.fetch_add(n as u64, Ordering::Relaxed);
}

pub struct MeteredTable {
    inner: Arc<dyn Table>,
    counters: Counters,
}

impl MeteredTable {
    pub fn new(inner: Arc<dyn Table>) -> Self {
        Self {
            inner,
            counters: Counters::default(),
        }
    }

    pub fn calls(&self) -> StoreCalls {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let c = &self.counters;
        StoreCalls {
            get: read(&c.get),
            get_many: read(&c.get_many),
            get_many_keys: read(&c.get_many_keys),
            query: read(&c.query),
            query_items: read(&c.query_items),
            write: read(&c.write),
            write_items: read(&c.write_items),
            transactions: read(&c.transactions),
            increment: read(&c.increment),
        }
    }
}

#[async_trait]
impl Table for MeteredTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        add(&self.counters.get, 1);
        self.inner.get(key).await
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError> {
        if !keys.is_empty() {
            add(&self.counters.get_many, 1);
            add(&self.counters.get_many_keys, keys.len());
        }
        self.inner.get_many(keys).await
    }

    async fn query(&self, query: &Query) -> Result<Vec<Item>, StoreError> {
        add(&self.counters.query, 1);
        let items = self.inner.query(query).await?;
        add(&self.counters.query_items, items.len());
        Ok(items)
    }

    async fn write(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        if !writes.is_empty() {
            add(&self.counters.write, 1);
            add(&self.counters.write_items, writes.len());
            if writes.len() > 1 {
                add(&self.counters.transactions, 1);
            }
        }
        self.inner.write(writes).await
    }

    async fn increment(
        &self,
        key: &Key,
        delta: i64,
        expires_at: Option<i64>,
    ) -> Result<i64, StoreError> {
        add(&self.counters.increment, 1);
        self.inner.increment(key, delta, expires_at).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryTable;
    use crate::store::{Expect, SortRange};

    #[tokio::test]
    async fn every_call_and_item_is_counted() {
        let table = MeteredTable::new(Arc::new(MemoryTable::new()));
        let key = |sk: &str| Key::new("P", sk);
        let put = |sk: &str| Write::put(key(sk), &serde_json::json!({}), Expect::Absent).unwrap();
        table.write(vec![put("a")]).await.unwrap();
        table.write(vec![put("b"), put("c")]).await.unwrap();
        table.get(&key("a")).await.unwrap();
        table
            .get_many(&[key("a"), key("b"), key("x")])
            .await
            .unwrap();
        let mut query = Query::partition("P");
        query.range = SortRange::All;
        table.query(&query).await.unwrap();
        table.increment(&key("n"), 1, None).await.unwrap();
        assert_eq!(
            table.calls(),
            StoreCalls {
                get: 1,
                get_many: 1,
                get_many_keys: 3,
                query: 1,
                query_items: 3,
                write: 2,
                write_items: 3,
                transactions: 1,
                increment: 1,
            }
        );
        assert_eq!(table.calls().reads(), 3);
        assert_eq!(table.calls().writes(), 3);
    }
}
