//! Ports that let a test down on cue: a table whose next write of a callback in a given status
//! fails as if DynamoDB were unreachable, and a scheduler that keeps its schedules without ever
//! firing them (so only the sweeper or the test dispatches) and fails the operations it is told
//! to fail — keeping, as EventBridge would, the schedule an operation failed to change.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use flowline_core::scheduler::{DispatchInvoker, Job, Scheduler, SchedulerError};
use flowline_core::store::{Item, Key, Query, StoreError, Table, Write};
use jiff::Timestamp;

/// A fault armed for one partition: the next query of that partition takes it, once. Other
/// partitions pass, so a background task (the relay polling the outbox) never takes a fault
/// meant for the route under test.
#[derive(Default)]
pub struct PartitionFault(Mutex<Option<String>>);

impl PartitionFault {
    pub fn arm(&self, partition: String) {
        *self.0.lock().unwrap() = Some(partition);
    }

    /// Whether `query` takes the fault (which is then spent).
    pub fn hits(&self, query: &Query) -> bool {
        let mut armed = self.0.lock().unwrap();
        let hit = armed.as_deref() == Some(query.pk.as_str());
        if hit {
            *armed = None;
        }
        hit
    }
}

/// A table over `inner` that fails one write on cue.
pub struct FaultyTable {
    inner: Arc<dyn Table>,
    fail_status: Mutex<Option<&'static str>>,
}

impl FaultyTable {
    pub fn new(inner: Arc<dyn Table>) -> Self {
        Self {
            inner,
            fail_status: Mutex::new(None),
        }
    }

    /// The next write that puts a callback in `status` fails (`Unavailable`), once.
    pub fn fail_next_write_of_status(&self, status: &'static str) {
        *self.fail_status.lock().unwrap() = Some(status);
    }

    /// Whether the fault set up is still waiting for its write.
    pub fn fault_pending(&self) -> bool {
        self.fail_status.lock().unwrap().is_some()
    }
}

#[async_trait]
impl Table for FaultyTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.inner.get(key).await
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError> {
        self.inner.get_many(keys).await
    }

    async fn query(&self, query: &Query) -> Result<Vec<Item>, StoreError> {
        self.inner.query(query).await
    }

    async fn write(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        {
            let mut fail_status = self.fail_status.lock().unwrap();
            if let Some(status) = *fail_status {
                let hit = writes.iter().any(|write| {
                    matches!(write, Write::Put { doc, .. }
                        if doc["status"] == status
                            && doc["id"].as_str().is_some_and(|id| id.starts_with("cb_")))
                });
                if hit {
                    *fail_status = None;
                    return Err(StoreError::Unavailable("injected fault".to_owned()));
                }
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
        self.inner.increment(key, delta, expires_at).await
    }
}

/// What a [`FaultyScheduler`] can be told to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchedulerCall {
    Schedule,
    Reschedule,
    Unschedule,
    Invoke,
}

/// Schedules kept by name (a callback's id), never fired; failures on cue.
#[derive(Default)]
pub struct FaultyScheduler {
    schedules: Mutex<HashMap<String, (Job, Timestamp)>>,
    failing: Mutex<HashSet<SchedulerCall>>,
    /// Jobs handed off ("dispatch now", the sweeper), for the test to run as the dispatch
    /// function would.
    invoked: Mutex<Vec<Job>>,
}

impl FaultyScheduler {
    /// From now on, `call` fails as if the scheduler were unreachable.
    pub fn fail(&self, call: SchedulerCall) {
        self.failing.lock().unwrap().insert(call);
    }

    /// From now on, `call` works again.
    pub fn heal(&self, call: SchedulerCall) {
        self.failing.lock().unwrap().remove(&call);
    }

    /// The jobs handed off since the last call.
    pub fn take_invoked(&self) -> Vec<Job> {
        std::mem::take(&mut *self.invoked.lock().unwrap())
    }

    /// The schedule named `name` (a callback's id): its job and time.
    pub fn schedule_of(&self, name: &str) -> Option<(Job, Timestamp)> {
        self.schedules.lock().unwrap().get(name).cloned()
    }

    fn check(&self, call: SchedulerCall) -> Result<(), SchedulerError> {
        if self.failing.lock().unwrap().contains(&call) {
            return Err(SchedulerError::Unavailable("injected fault".to_owned()));
        }
        Ok(())
    }
}

#[async_trait]
impl Scheduler for FaultyScheduler {
    async fn schedule(&self, job: &Job, at: Timestamp) -> Result<(), SchedulerError> {
        self.check(SchedulerCall::Schedule)?;
        self.schedules
            .lock()
            .unwrap()
            .insert(job.name(), (job.clone(), at));
        Ok(())
    }

    async fn reschedule(&self, job: &Job, at: Timestamp) -> Result<(), SchedulerError> {
        self.check(SchedulerCall::Reschedule)?;
        self.schedules
            .lock()
            .unwrap()
            .insert(job.name(), (job.clone(), at));
        Ok(())
    }

    async fn unschedule(&self, name: &str) -> Result<(), SchedulerError> {
        self.check(SchedulerCall::Unschedule)?;
        self.schedules.lock().unwrap().remove(name);
        Ok(())
    }
}

#[async_trait]
impl DispatchInvoker for FaultyScheduler {
    async fn invoke(&self, job: &Job) -> Result<(), SchedulerError> {
        self.check(SchedulerCall::Invoke)?;
        self.invoked.lock().unwrap().push(job.clone());
        Ok(())
    }
}

/// A table over `inner` whose reads, while slowed, each take `delay` (on tokio's clock: a test
/// on paused time sees a slow store without waiting for one).
pub struct SlowTable {
    inner: Arc<dyn Table>,
    delay: Mutex<std::time::Duration>,
}

impl SlowTable {
    pub fn new(inner: Arc<dyn Table>) -> Self {
        Self {
            inner,
            delay: Mutex::new(std::time::Duration::ZERO),
        }
    }

    pub fn slow_reads(&self, delay: std::time::Duration) {
        *self.delay.lock().unwrap() = delay;
    }

    async fn wait(&self) {
        let delay = *self.delay.lock().unwrap();
        tokio::time::sleep(delay).await;
    }
}

#[async_trait]
impl Table for SlowTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.wait().await;
        self.inner.get(key).await
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError> {
        self.wait().await;
        self.inner.get_many(keys).await
    }

    async fn query(&self, query: &Query) -> Result<Vec<Item>, StoreError> {
        self.wait().await;
        self.inner.query(query).await
    }

    async fn write(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        self.inner.write(writes).await
    }

    async fn increment(
        &self,
        key: &Key,
        delta: i64,
        expires_at: Option<i64>,
    ) -> Result<i64, StoreError> {
        self.inner.increment(key, delta, expires_at).await
    }
}
