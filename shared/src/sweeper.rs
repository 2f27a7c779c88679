//! The sweeper (SPEC §4, §8), run every 5 minutes: the safety net under the schedules and the
//! stream. It finds
//! - callbacks more than 2 minutes overdue (a lost schedule) and those whose dispatcher's lease
//!   ran out (a crashed dispatch),
//! - delivery retries more than 2 minutes overdue (a lost retry schedule),
//!
//! and hands each to the `dispatch` function (an asynchronous invocation) — it never delivers
//! itself, so one slow receiver cannot hold it up; and it writes again any outbox item the
//! stream did not hand out in 5 minutes. Every shard of both due indexes is swept each run,
//! several at once, each resuming where the last run stopped (a cursor per shard), so however
//! many are due none starves. Runs may overlap: a job handed off twice still runs once (taking
//! a callback is one conditional write; a retry's try is named by its number).

use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::app::App;
use crate::callbacks::store as callbacks;
use crate::error::ApiResult;
use crate::scheduler::{Job, RetryJob};
use crate::store::{Expect, Key, StoreError, Table, Write};
use crate::webhooks::{deliveries, worker};

/// What one sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// Due entries read.
    pub examined: usize,
    /// Jobs handed off (one per due callback or retry; each runs elsewhere, once).
    pub handed_off: usize,
    /// Hand-offs that failed (the entry stays due: the next sweep tries again).
    pub errors: usize,
    /// Shards whose due entries were all read (a shard not finished resumes next time).
    pub shards_finished: usize,
    /// Outbox items written again for the stream.
    pub nudged: usize,
}

/// Shards swept at once, hand-offs at once in each, and due entries read a page at a time:
/// 64 asynchronous invocations in flight hand off 100,000 callbacks in well under a minute.
const PARALLEL_SHARDS: usize = 8;
const HANDOFFS_PER_SHARD: usize = 8;
const SWEEP_PAGE: usize = 100;

/// The two due indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Index {
    Callbacks,
    Retries,
}

impl Index {
    fn shards(self) -> u32 {
        match self {
            Self::Callbacks => callbacks::DUE_SHARDS,
            Self::Retries => deliveries::DUE_SHARDS,
        }
    }

    /// Where the sweep of a shard stands: `SWEEP#<shard>` (callbacks), `SWEEP#DLV#<shard>`.
    fn cursor_key(self, shard: u32) -> Key {
        match self {
            Self::Callbacks => Key::new(format!("SWEEP#{shard}"), "CURSOR"),
            Self::Retries => Key::new(format!("SWEEP#DLV#{shard}"), "CURSOR"),
        }
    }

    async fn due(
        self,
        table: &dyn Table,
        shard: u32,
        now_ms: i64,
        after: Option<String>,
    ) -> Result<Vec<(String, Job)>, StoreError> {
        Ok(match self {
            Self::Callbacks => callbacks::due(table, shard, now_ms, after, SWEEP_PAGE)
                .await?
                .into_iter()
                .map(|(position, job)| (position, Job::Dispatch(job)))
                .collect(),
            Self::Retries => deliveries::due(table, shard, now_ms, after, SWEEP_PAGE)
                .await?
                .into_iter()
                .map(|(position, due)| {
                    let job = RetryJob {
                        organization_id: due.organization_id,
                        delivery_id: due.delivery_id,
                        attempt: due.attempt,
                    };
                    (position, Job::Retry(job))
                })
                .collect(),
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Cursor {
    after: Option<String>,
}

async fn cursor(table: &dyn Table, key: &Key) -> Result<Option<String>, StoreError> {
    match table.get(key).await? {
        Some(item) => Ok(item.decode::<Cursor>()?.after),
        None => Ok(None),
    }
}

/// Records where the sweeper stopped in a shard. Written blind: overlapping sweeps may move it
/// back and forth, which only makes one of them look at some entries again.
async fn save_cursor(table: &dyn Table, key: &Key, after: Option<&str>) -> Result<(), StoreError> {
    let cursor = Cursor {
        after: after.map(str::to_owned),
    };
    table
        .write(vec![Write::put(key.clone(), &cursor, Expect::Anything)?])
        .await
}

/// One sweep, within `budget`.
pub async fn sweep(app: &App, budget: Duration) -> ApiResult<SweepReport> {
    let until = Instant::now() + budget;
    let now_ms = app.clock.now().as_millisecond();
    let nudged = worker::nudge_stuck(app).await?;
    let shards = [Index::Callbacks, Index::Retries]
        .into_iter()
        .flat_map(|index| (0..index.shards()).map(move |shard| (index, shard)));
    let reports: Vec<ApiResult<SweepReport>> = futures_util::stream::iter(shards)
        .map(|(index, shard)| sweep_shard(app, index, shard, now_ms, until))
        .buffer_unordered(PARALLEL_SHARDS)
        .collect()
        .await;
    let mut report = SweepReport {
        nudged,
        ..SweepReport::default()
    };
    for shard in reports {
        let shard = shard?;
        report.examined += shard.examined;
        report.handed_off += shard.handed_off;
        report.errors += shard.errors;
        report.shards_finished += shard.shards_finished;
    }
    if report.examined > 0 || report.nudged > 0 {
        tracing::info!(
            examined = report.examined,
            handed_off = report.handed_off,
            errors = report.errors,
            shards_finished = report.shards_finished,
            nudged = report.nudged,
            "sweep finished"
        );
    }
    Ok(report)
}

async fn hand_off(app: &App, job: Job) -> (Job, Result<(), crate::scheduler::SchedulerError>) {
    let outcome = app.invoker.invoke(&job).await;
    (job, outcome)
}

async fn sweep_shard(
    app: &App,
    index: Index,
    shard: u32,
    now_ms: i64,
    until: Instant,
) -> ApiResult<SweepReport> {
    let table = app.store.as_ref();
    let cursor_key = index.cursor_key(shard);
    let mut report = SweepReport::default();
    let started_at = cursor(table, &cursor_key).await?;
    let mut position = started_at.clone();
    loop {
        if Instant::now() >= until {
            save_cursor(table, &cursor_key, position.as_deref()).await?;
            return Ok(report);
        }
        let jobs = index.due(table, shard, now_ms, position.clone()).await?;
        // A page's hand-offs, several at once (each is an API call to Lambda).
        let due: Vec<Job> = jobs.iter().map(|(_, job)| job.clone()).collect();
        let outcomes: Vec<(Job, Result<(), _>)> = futures_util::stream::iter(due)
            .map(|job| hand_off(app, job))
            .buffer_unordered(HANDOFFS_PER_SHARD)
            .collect()
            .await;
        for (job, outcome) in outcomes {
            report.examined += 1;
            match outcome {
                Ok(()) => report.handed_off += 1,
                Err(err) => {
                    report.errors += 1;
                    tracing::warn!(job = %job.name(), %err, "sweeper could not hand off a job");
                }
            }
        }
        if let Some((last, _)) = jobs.last() {
            position = Some(last.clone());
        }
        if jobs.len() < SWEEP_PAGE {
            // The shard's due range is read: the next run starts it over (nothing to write when
            // it already did: an idle sweep writes nothing).
            if started_at.is_some() {
                save_cursor(table, &cursor_key, None).await?;
            }
            report.shards_finished += 1;
            return Ok(report);
        }
        save_cursor(table, &cursor_key, position.as_deref()).await?;
    }
}
