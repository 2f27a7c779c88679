//! A table that keeps DynamoDB's bill: the write and read capacity units each partition key
//! takes in each second of the application's clock, as DynamoDB counts them (a write: 1 unit a
//! KiB, twice in a transaction; a strongly consistent read: 1 unit per 4 KiB, a query's items
//! summed), to hold a simulated burst against the per-partition limits (1,000 WCU, 3,000 RCU a
//! second).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use flowline_core::store::{Item, Key, Query, StoreError, Table, Write};
use flowline_core::time::Clock;

/// What one partition key took in one second.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Units {
    pub write: f64,
    pub read: f64,
}

pub struct LoadRecorder {
    inner: Arc<dyn Table>,
    clock: Arc<dyn Clock>,
    /// (second, partition key) → units.
    load: Mutex<HashMap<(i64, String), Units>>,
}

/// An item's size as DynamoDB counts it, near enough: its attribute names and values.
fn size_of(key: &Key, doc: &serde_json::Value) -> usize {
    key.pk.len() + key.sk.len() + doc.to_string().len() + 24
}

fn write_units(bytes: usize) -> f64 {
    bytes.div_ceil(1024).max(1) as f64
}

fn read_units(bytes: usize) -> f64 {
    bytes.div_ceil(4096).max(1) as f64
}

impl LoadRecorder {
    pub fn new(inner: Arc<dyn Table>, clock: Arc<dyn Clock>) -> Self {
        Self {
            inner,
            clock,
            load: Mutex::new(HashMap::new()),
        }
    }

    fn add(&self, pk: &str, units: Units) {
        let second = self.clock.now().as_second();
        let mut load = self.load.lock().unwrap();
        let entry = load.entry((second, pk.to_owned())).or_default();
        entry.write += units.write;
        entry.read += units.read;
    }

    /// The busiest partition keys of any second, busiest first by write units.
    pub fn busiest(&self, count: usize) -> Vec<((i64, String), Units)> {
        let mut all: Vec<_> = self
            .load
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        all.sort_by(|a, b| b.1.write.total_cmp(&a.1.write));
        all.truncate(count);
        all
    }

    /// The most write and read units any partition key took in any second.
    pub fn peak(&self) -> Units {
        self.load
            .lock()
            .unwrap()
            .values()
            .fold(Units::default(), |peak, units| Units {
                write: peak.write.max(units.write),
                read: peak.read.max(units.read),
            })
    }
}

#[async_trait]
impl Table for LoadRecorder {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let item = self.inner.get(key).await?;
        let bytes = item
            .as_ref()
            .map_or(0, |item| size_of(&item.key, &item.doc));
        self.add(
            &key.pk,
            Units {
                write: 0.0,
                read: read_units(bytes),
            },
        );
        Ok(item)
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError> {
        let items = self.inner.get_many(keys).await?;
        for (key, item) in keys.iter().zip(&items) {
            let bytes = item
                .as_ref()
                .map_or(0, |item| size_of(&item.key, &item.doc));
            self.add(
                &key.pk,
                Units {
                    write: 0.0,
                    read: read_units(bytes),
                },
            );
        }
        Ok(items)
    }

    async fn query(&self, query: &Query) -> Result<Vec<Item>, StoreError> {
        let items = self.inner.query(query).await?;
        let bytes: usize = items.iter().map(|item| size_of(&item.key, &item.doc)).sum();
        self.add(
            &query.pk,
            Units {
                write: 0.0,
                read: read_units(bytes),
            },
        );
        Ok(items)
    }

    async fn write(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        // A transaction costs twice: DynamoDB prepares, then commits, every item.
        let factor = if writes.len() > 1 { 2.0 } else { 1.0 };
        let costs: Vec<(String, f64)> = writes
            .iter()
            .map(|write| {
                let bytes = match write {
                    Write::Put { key, doc, .. } => size_of(key, doc),
                    Write::Delete { key, .. }
                    | Write::Check { key, .. }
                    | Write::Add { key, .. } => size_of(key, &serde_json::Value::Null),
                };
                (write.key().pk.clone(), write_units(bytes) * factor)
            })
            .collect();
        self.inner.write(writes).await?;
        for (pk, units) in costs {
            self.add(
                &pk,
                Units {
                    write: units,
                    read: 0.0,
                },
            );
        }
        Ok(())
    }

    async fn increment(
        &self,
        key: &Key,
        delta: i64,
        expires_at: Option<i64>,
    ) -> Result<i64, StoreError> {
        let value = self.inner.increment(key, delta, expires_at).await?;
        self.add(
            &key.pk,
            Units {
                write: 1.0,
                read: 0.0,
            },
        );
        Ok(value)
    }
}
