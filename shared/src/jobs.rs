//! Running a [`Job`] handed over by a schedule or "now": what the cloud's `dispatch` function
//! does with its input, and the in-process timers locally. A late, repeated or stale job is a
//! no-op; an error (the store unreachable) fails the run, so the scheduler retries it.

use futures_util::StreamExt;
use serde::Serialize;

use crate::app::App;
use crate::callbacks::{dispatch, store as callbacks};
use crate::error::ApiResult;
use crate::scheduler::{Job, JobRunner, RetryJob};
use crate::webhooks::{deliveries, worker};

/// What a run did, as the dispatch function answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum JobDone {
    Dispatch {
        callback_id: String,
        /// The status the callback ended in, or `null` when there was nothing to do.
        status: Option<String>,
    },
    Retry {
        delivery_id: String,
        attempt: u32,
    },
}

pub async fn run(app: &App, job: &Job) -> ApiResult<JobDone> {
    match job {
        Job::Dispatch(job) => {
            let done = dispatch::run_job(app, job).await?;
            Ok(JobDone::Dispatch {
                callback_id: job.callback_id.clone(),
                status: done.map(|callback| callback.status.as_str().to_owned()),
            })
        }
        Job::Retry(job) => {
            worker::run_retry(app, job).await?;
            Ok(JobDone::Retry {
                delivery_id: job.delivery_id.clone(),
                attempt: job.attempt,
            })
        }
    }
}

/// What the in-process scheduler's timers run: the job, as the cloud's `dispatch` function does.
#[async_trait::async_trait]
impl JobRunner for App {
    async fn run_job(&self, job: &Job) {
        let deadline = tokio::time::Instant::now() + crate::deadline::DEFAULT_BUDGET;
        if let Err(err) = crate::deadline::within(deadline, run(self, job)).await {
            tracing::warn!(job = %job.name(), error = %err.message, "in-process job failed");
        }
    }
}

/// What [`rearm`] armed again.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RearmReport {
    /// `scheduled` callbacks, armed at their `scheduled_at`.
    pub scheduled: usize,
    /// `dispatching` callbacks, armed at the end of their dispatcher's lease.
    pub dispatching: usize,
    /// Webhook deliveries waiting for a retry, armed at its time.
    pub retries: usize,
}

/// Due entries read at a time when re-arming, and shards read at once.
const REARM_PAGE: usize = 1000;
const REARM_SHARDS_AT_ONCE: usize = 8;

/// For a process whose schedules live in it and died with the last one (the local server's
/// in-process timers): arms a schedule again for every `scheduled` callback at its
/// `scheduled_at`, for every `dispatching` one at the end of its lease (when a crashed dispatch
/// may be taken over), and for every delivery retry at its time. What fell due while no process
/// ran fires at once. It reads only the two due indexes (each entry says when, and whether it
/// is a lease), so it costs O(jobs waiting), whatever else the store holds.
pub async fn rearm(app: &App) -> ApiResult<RearmReport> {
    let shards = (0..callbacks::DUE_SHARDS)
        .map(|shard| (false, shard))
        .chain((0..deliveries::DUE_SHARDS).map(|shard| (true, shard)));
    let reports: Vec<ApiResult<RearmReport>> = futures_util::stream::iter(shards)
        .map(|(retries, shard)| async move {
            if retries {
                rearm_retries(app, shard).await
            } else {
                rearm_callbacks(app, shard).await
            }
        })
        .buffer_unordered(REARM_SHARDS_AT_ONCE)
        .collect()
        .await;
    let mut report = RearmReport::default();
    for shard in reports {
        let shard = shard?;
        report.scheduled += shard.scheduled;
        report.dispatching += shard.dispatching;
        report.retries += shard.retries;
    }
    Ok(report)
}

async fn rearm_callbacks(app: &App, shard: u32) -> ApiResult<RearmReport> {
    let mut report = RearmReport::default();
    let mut after = None;
    loop {
        let waiting = callbacks::waiting(app.store.as_ref(), shard, after, REARM_PAGE).await?;
        for (_, callback) in &waiting {
            if callback.leased {
                report.dispatching += 1;
            } else {
                report.scheduled += 1;
            }
            let job = Job::Dispatch(callback.job.clone());
            app.scheduler.schedule(&job, callback.at).await?;
        }
        if waiting.len() < REARM_PAGE {
            return Ok(report);
        }
        after = waiting.last().map(|(position, _)| position.clone());
    }
}

async fn rearm_retries(app: &App, shard: u32) -> ApiResult<RearmReport> {
    let mut report = RearmReport::default();
    let mut after = None;
    loop {
        let waiting = deliveries::waiting(app.store.as_ref(), shard, after, REARM_PAGE).await?;
        for (_, at, due) in &waiting {
            report.retries += 1;
            let job = Job::Retry(RetryJob {
                organization_id: due.organization_id.clone(),
                delivery_id: due.delivery_id.clone(),
                attempt: due.attempt,
            });
            app.scheduler.schedule(&job, *at).await?;
        }
        if waiting.len() < REARM_PAGE {
            return Ok(report);
        }
        after = waiting.last().map(|(position, _, _)| position.clone());
    }
}
