//! Running a [`Job`] handed over by a schedule or "now": what the cloud's `dispatch` function
//! does with its input, and the in-process timers locally. A late, repeated or stale job is a
//! no-op; an error (the store unreachable) fails the run, so the scheduler retries it.

use serde::Serialize;

use crate::app::App;
use crate::callbacks::dispatch;
use crate::error::ApiResult;
use crate::scheduler::{Job, JobRunner};
use crate::webhooks::worker;

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
