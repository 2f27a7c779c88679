//! The local reader of the outbox: what the cloud's `deliver` function does with the table's
//! stream, the local server does with a task that reads the outbox partitions — at once after
//! a write that queued something (the table is wrapped in [`Signaling`]), and every second in
//! case a signal was missed. At start it hands out whatever the last process left behind, so
//! an event committed just before a crash is still delivered.

use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use tokio::sync::Notify;

use super::outbox::{self, SHARDS};
use super::worker;
use crate::app::App;
use crate::error::ApiResult;
use crate::store::{Item, Key, Query, SortRange, StoreError, Table, Write};

/// Items read from a shard at a time, and handled at once.
const PAGE: usize = 100;
const IN_FLIGHT: usize = 16;
/// How often the relay looks without being signalled.
const POLL: Duration = Duration::from_secs(1);

/// A table that signals the relay after every write that queued outbox work.
pub struct Signaling {
    inner: Arc<dyn Table>,
    signal: Arc<Notify>,
}

impl Signaling {
    pub fn new(inner: Arc<dyn Table>) -> Self {
        Self {
            inner,
            signal: Arc::new(Notify::new()),
        }
    }

    pub fn signal(&self) -> Arc<Notify> {
        self.signal.clone()
    }
}

#[async_trait]
impl Table for Signaling {
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
        let queued = writes
            .iter()
            .any(|write| matches!(write, Write::Put { key, .. } if outbox::is_outbox_key(&key.pk)));
        self.inner.write(writes).await?;
        if queued {
            self.signal.notify_one();
        }
        Ok(())
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

/// One pass over the outbox: hands out everything in it, oldest first in each shard, several
/// items at once. Answers how many items it handed out.
pub async fn pass(app: &App) -> ApiResult<usize> {
    let mut handed_out = 0;
    for shard in 0..SHARDS {
        let mut after = None;
        loop {
            let query = Query {
                pk: outbox::shard_pk(shard),
                range: SortRange::All,
                after: after.clone(),
                descending: false,
                limit: PAGE,
            };
            let items = app.store.query(&query).await?;
            let outcomes: Vec<ApiResult<()>> = futures_util::stream::iter(items.iter().cloned())
                .map(|item| async move { hand_out(app, &item).await })
                .buffer_unordered(IN_FLIGHT)
                .collect()
                .await;
            for outcome in outcomes {
                if let Err(err) = outcome {
                    // Left in the outbox: the next pass tries it again.
                    tracing::warn!(error = %err.message, "an outbox item could not be handled");
                }
            }
            handed_out += items.len();
            if items.len() < PAGE {
                break;
            }
            after = items.last().map(|item| item.key.sk.clone());
        }
    }
    Ok(handed_out)
}

async fn hand_out(app: &App, item: &Item) -> ApiResult<()> {
    let deadline = tokio::time::Instant::now() + crate::deadline::DEFAULT_BUDGET;
    match outbox::decode(item) {
        Ok(outboxed) => {
            crate::deadline::within(deadline, worker::handle(app, &item.key, outboxed)).await
        }
        Err(err) => {
            // Unreadable: logged and dropped, so it cannot block the rest.
            tracing::error!(%err, "an outbox item could not be read; dropped");
            app.store
                .write(vec![Write::Delete {
                    key: item.key.clone(),
                    expect: crate::store::Expect::Anything,
                }])
                .await?;
            Ok(())
        }
    }
}

/// Runs the relay until the application is dropped: a pass at start, then one after each
/// signal and at least every second.
pub fn spawn(app: Weak<App>, signal: Arc<Notify>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let Some(app) = app.upgrade() else { return };
            if let Err(err) = pass(&app).await {
                tracing::warn!(error = %err.message, "the outbox could not be read");
            }
            drop(app);
            let _ = tokio::time::timeout(POLL, signal.notified()).await;
        }
    })
}
