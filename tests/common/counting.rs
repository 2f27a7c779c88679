//! Ports that count what a route asks of them, for tests/costs.rs and tests/scale.rs: the
//! scheduler (EventBridge Scheduler calls), the dispatch invoker (asynchronous Lambda
//! invocations), the webhook sender (HTTPS POSTs), and a table that logs which items each call
//! touched and how big they were (so a test can see a route re-read what it just wrote, and
//! estimate DynamoDB capacity units). `flowline_core::store::metered::MeteredTable` counts the
//! store calls themselves.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use flowline_core::scheduler::{DispatchInvoker, Job, Scheduler, SchedulerError};
use flowline_core::store::{Item, Key, Query, StoreError, Table, Write};
use flowline_core::webhooks::sender::{Attempt, WebhookSender};
use jiff::Timestamp;
use serde::Serialize;

/// Calls to the scheduler, invoker and sender ports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PortCalls {
    /// `CreateSchedule`.
    pub schedule: u64,
    /// `UpdateSchedule` (moving a schedule).
    pub reschedule: u64,
    /// `DeleteSchedule`.
    pub unschedule: u64,
    /// Lambda `Invoke` (asynchronous: "dispatch now").
    pub invoke: u64,
    /// Webhook HTTPS POSTs.
    pub post: u64,
}

impl PortCalls {
    pub fn since(&self, earlier: &PortCalls) -> PortCalls {
        PortCalls {
            schedule: self.schedule - earlier.schedule,
            reschedule: self.reschedule - earlier.reschedule,
            unschedule: self.unschedule - earlier.unschedule,
            invoke: self.invoke - earlier.invoke,
            post: self.post - earlier.post,
        }
    }

    /// EventBridge Scheduler API calls.
    pub fn scheduler(&self) -> u64 {
        self.schedule + self.reschedule + self.unschedule
    }
}

#[derive(Default)]
pub struct PortCounters {
    schedule: AtomicU64,
    reschedule: AtomicU64,
    unschedule: AtomicU64,
    invoke: AtomicU64,
    post: AtomicU64,
}

impl PortCounters {
    pub fn calls(&self) -> PortCalls {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        PortCalls {
            schedule: read(&self.schedule),
            reschedule: read(&self.reschedule),
            unschedule: read(&self.unschedule),
            invoke: read(&self.invoke),
            post: read(&self.post),
        }
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Counts schedule operations and arms nothing: in the cloud EventBridge Scheduler fires a
/// schedule into the `dispatch` function, elsewhere and later (measured as a function of its
/// own, with the test playing the scheduler). A timer in this process would fire as soon as
/// the test moves its clock, and its work would be counted against whatever was measured then.
pub struct CountingScheduler {
    pub counters: Arc<PortCounters>,
}

#[async_trait]
impl Scheduler for CountingScheduler {
    async fn schedule(&self, _: &Job, _: Timestamp) -> Result<(), SchedulerError> {
        bump(&self.counters.schedule);
        Ok(())
    }
    async fn reschedule(&self, _: &Job, _: Timestamp) -> Result<(), SchedulerError> {
        bump(&self.counters.reschedule);
        Ok(())
    }
    async fn unschedule(&self, _: &str) -> Result<(), SchedulerError> {
        bump(&self.counters.unschedule);
        Ok(())
    }
}

/// Counts "dispatch now" invocations and runs nothing: in the cloud the invoked `dispatch`
/// function runs elsewhere, and is measured as a function of its own.
pub struct CountingInvoker {
    pub counters: Arc<PortCounters>,
}

#[async_trait]
impl DispatchInvoker for CountingInvoker {
    async fn invoke(&self, _: &Job) -> Result<(), SchedulerError> {
        bump(&self.counters.invoke);
        Ok(())
    }
}

/// Counts webhook POSTs, then sends them with `inner`.
pub struct CountingSender {
    pub inner: Arc<dyn WebhookSender>,
    pub counters: Arc<PortCounters>,
}

#[async_trait]
impl WebhookSender for CountingSender {
    async fn post(
        &self,
        url: &str,
        headers: Vec<(&'static str, String)>,
        body: Bytes,
        timeout: Duration,
    ) -> Attempt {
        bump(&self.counters.post);
        self.inner.post(url, headers, body, timeout).await
    }
}

/// One store call, with the items it touched and their approximate stored size.
#[derive(Debug, Clone, PartialEq)]
pub enum Access {
    /// `GetItem` or `BatchGetItem`: the keys asked for, and the size of each item found.
    Read { keys: Vec<Key>, bytes: Vec<usize> },
    /// `Query`: the items answered.
    Query { keys: Vec<Key>, bytes: Vec<usize> },
    /// A write of one item (`PutItem`/`DeleteItem`/`UpdateItem`) or several
    /// (`TransactWriteItems`): each item written, with the size of what is put.
    Write {
        keys: Vec<Key>,
        bytes: Vec<usize>,
        /// `put`, `delete`, `check` or `add`, per item.
        kinds: Vec<&'static str>,
        transaction: bool,
    },
    /// `UpdateItem … ADD` on a counter.
    Increment { key: Key },
}

/// The approximate size DynamoDB bills for an item: its key attributes, revision, counter and
/// the document as JSON text (the adapter stores it as a map, whose size is close to that).
pub fn item_bytes(key: &Key, doc: &serde_json::Value) -> usize {
    let attribute_names = "pk".len() + "sk".len() + "rev".len() + "doc".len();
    key.pk.len() + key.sk.len() + attribute_names + 8 + doc.to_string().len()
}

fn found_bytes(item: &Item) -> usize {
    item_bytes(&item.key, &item.doc)
}

/// A table that logs every call's items, in order.
pub struct AccessLog {
    inner: Arc<dyn Table>,
    log: Mutex<Vec<Access>>,
}

impl AccessLog {
    pub fn new(inner: Arc<dyn Table>) -> Self {
        Self {
            inner,
            log: Mutex::new(Vec::new()),
        }
    }

    /// How many calls are logged so far (a mark to take [`AccessLog::since`] from).
    pub fn mark(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    pub fn since(&self, mark: usize) -> Vec<Access> {
        self.log.lock().unwrap()[mark..].to_vec()
    }

    fn push(&self, access: Access) {
        self.log.lock().unwrap().push(access);
    }
}

#[async_trait]
impl Table for AccessLog {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let item = self.inner.get(key).await?;
        self.push(Access::Read {
            keys: vec![key.clone()],
            bytes: item.iter().map(found_bytes).collect(),
        });
        Ok(item)
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError> {
        let items = self.inner.get_many(keys).await?;
        if !keys.is_empty() {
            self.push(Access::Read {
                keys: keys.to_vec(),
                bytes: items.iter().flatten().map(found_bytes).collect(),
            });
        }
        Ok(items)
    }

    async fn query(&self, query: &Query) -> Result<Vec<Item>, StoreError> {
        let items = self.inner.query(query).await?;
        self.push(Access::Query {
            keys: items.iter().map(|item| item.key.clone()).collect(),
            bytes: items.iter().map(found_bytes).collect(),
        });
        Ok(items)
    }

    async fn write(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        if !writes.is_empty() {
            let keys = writes.iter().map(|write| write.key().clone()).collect();
            let bytes = writes
                .iter()
                .map(|write| match write {
                    Write::Put { key, doc, .. } => item_bytes(key, doc),
                    // Billed on the size of the item deleted or checked, which the write does
                    // not carry: counted as the 1 KB minimum.
                    Write::Delete { .. } | Write::Check { .. } | Write::Add { .. } => 0,
                })
                .collect();
            let kinds = writes
                .iter()
                .map(|write| match write {
                    Write::Put { .. } => "put",
                    Write::Delete { .. } => "delete",
                    Write::Check { .. } => "check",
                    Write::Add { .. } => "add",
                })
                .collect();
            let transaction = writes.len() > 1 || matches!(writes[0], Write::Check { .. });
            self.inner.write(writes).await?;
            self.push(Access::Write {
                keys,
                bytes,
                kinds,
                transaction,
            });
            return Ok(());
        }
        self.inner.write(writes).await
    }

    async fn increment(
        &self,
        key: &Key,
        delta: i64,
        expires_at: Option<i64>,
    ) -> Result<i64, StoreError> {
        let value = self.inner.increment(key, delta, expires_at).await?;
        self.push(Access::Increment { key: key.clone() });
        Ok(value)
    }
}

/// Point reads of items this same sequence of calls had already written (what a route never
/// needs: it knows what it wrote).
pub fn rereads(accesses: &[Access]) -> Vec<Key> {
    let mut written: Vec<&Key> = Vec::new();
    let mut again = Vec::new();
    for access in accesses {
        match access {
            Access::Write { keys, .. } => written.extend(keys),
            Access::Increment { key } => written.push(key),
            Access::Read { keys, .. } => {
                again.extend(keys.iter().filter(|key| written.contains(key)).cloned())
            }
            Access::Query { .. } => {}
        }
    }
    again
}

/// DynamoDB capacity units these calls would consume, estimated from item sizes (strongly
/// consistent reads: 1 RCU per 4 KB per item read, a query's items summed before rounding;
/// writes: 1 WCU per 1 KB per item, twice that in a transaction; a read that finds nothing
/// still costs 1 RCU).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Capacity {
    pub rcu: f64,
    pub wcu: f64,
}

pub fn capacity(accesses: &[Access]) -> Capacity {
    let units = |bytes: usize, unit: usize| bytes.div_ceil(unit).max(1) as f64;
    let mut total = Capacity::default();
    for access in accesses {
        match access {
            Access::Read { keys, bytes } => {
                // Each key asked costs at least 1 RCU, found or not.
                let missing = keys.len().saturating_sub(bytes.len());
                total.rcu += missing as f64;
                total.rcu += bytes.iter().map(|b| units(*b, 4096)).sum::<f64>();
            }
            Access::Query { bytes, .. } => total.rcu += units(bytes.iter().sum(), 4096),
            Access::Write {
                bytes, transaction, ..
            } => {
                let factor = if *transaction { 2.0 } else { 1.0 };
                total.wcu += factor * bytes.iter().map(|b| units(*b, 1024)).sum::<f64>();
            }
            Access::Increment { .. } => total.wcu += 1.0,
        }
    }
    total
}

/// Single-item writes by kind (`put`, `delete`, …): which DynamoDB operation each was.
pub fn single_writes(accesses: &[Access]) -> std::collections::BTreeMap<&'static str, u64> {
    let mut kinds = std::collections::BTreeMap::new();
    for access in accesses {
        if let Access::Write {
            kinds: written,
            transaction: false,
            ..
        } = access
        {
            for kind in written {
                *kinds.entry(*kind).or_insert(0) += 1;
            }
        }
    }
    kinds
}
