//! Time: one-time schedules that run a [`Job`] at a given time ([`Scheduler`]) — a callback's
//! dispatch at its `scheduled_at`, a webhook delivery's next try — and "now", which hands a job
//! off to run within seconds outside the current request ([`DispatchInvoker`]). In the cloud
//! these are EventBridge Scheduler and an asynchronous Lambda invocation of the `dispatch`
//! function, which runs every job (`flowline-adapters`); locally
//! [`in_process::InProcessScheduler`] does both with timers in the server's process, running
//! each job through a [`JobRunner`].

pub mod in_process;

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// What a schedule hands the dispatch function (SPEC §4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispatchJob {
    pub callback_id: String,
    pub organization_id: String,
}

/// One more try of a webhook delivery (SPEC §8), the `attempt`-th.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryJob {
    pub organization_id: String,
    pub delivery_id: String,
    pub attempt: u32,
}

/// What a schedule (or "now") hands the `dispatch` function. Untagged, so a dispatch's input
/// is exactly SPEC §4's `{"callback_id", "organization_id"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Job {
    Dispatch(DispatchJob),
    Retry(RetryJob),
}

impl Job {
    /// The schedule's name: the callback's id (one schedule per callback, moved with it), or
    /// the delivery's id and the try (one schedule per try, so the next can be made while the
    /// one that runs it still exists).
    pub fn name(&self) -> String {
        match self {
            Self::Dispatch(job) => job.callback_id.clone(),
            Self::Retry(job) => format!("{}-{}", job.delivery_id, job.attempt),
        }
    }
}

impl Job {
    /// The callback dispatch this job is, if it is one.
    pub fn as_dispatch(&self) -> Option<&DispatchJob> {
        match self {
            Self::Dispatch(job) => Some(job),
            Self::Retry(_) => None,
        }
    }
}

impl From<DispatchJob> for Job {
    fn from(job: DispatchJob) -> Self {
        Self::Dispatch(job)
    }
}

impl From<RetryJob> for Job {
    fn from(job: RetryJob) -> Self {
        Self::Retry(job)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchedulerError {
    /// Could not reach the scheduler, or it refused for load: safe to retry.
    #[error("scheduler unavailable: {0}")]
    Unavailable(String),
    /// The scheduler refused the request itself (configuration or input).
    #[error("scheduler refused the request: {0}")]
    Refused(String),
}

impl From<SchedulerError> for crate::error::ApiError {
    fn from(err: SchedulerError) -> Self {
        match err {
            SchedulerError::Unavailable(_) => {
                tracing::warn!(%err, "scheduler unavailable");
                Self::unavailable()
            }
            // A refusal is Flowline's (or its configuration's) fault: retrying will not help.
            SchedulerError::Refused(_) => {
                tracing::error!(%err, "scheduler refused a request");
                Self::internal()
            }
        }
    }
}

#[async_trait]
pub trait Scheduler: Send + Sync {
    /// Creates the schedule (named [`Job::name`]) that runs `job` at `at`.
    async fn schedule(&self, job: &Job, at: Timestamp) -> Result<(), SchedulerError>;
    /// Moves the schedule to `at` (creating it again if it is gone).
    async fn reschedule(&self, job: &Job, at: Timestamp) -> Result<(), SchedulerError>;
    /// Deletes the schedule `name`; one that is already gone is not an error.
    async fn unschedule(&self, name: &str) -> Result<(), SchedulerError>;
}

/// "Now": runs `job` within seconds, elsewhere (a schedule cannot be in the past).
#[async_trait]
pub trait DispatchInvoker: Send + Sync {
    async fn invoke(&self, job: &Job) -> Result<(), SchedulerError>;
}

/// Runs one job where it is handed over (what the cloud's `dispatch` function does with the
/// scheduler's input). The application implements it; the in-process scheduler depends only
/// on this.
#[async_trait]
pub trait JobRunner: Send + Sync {
    async fn run_job(&self, job: &Job);
}

/// The scheduler and invoker of a process that did not wire them: a function whose route
/// never schedules. Reaching it is a wiring mistake, refused loudly (tests/template.rs keeps
/// each function's wiring and its IAM permissions in step).
pub struct Unwired;

impl Unwired {
    fn refuse(&self, what: &str) -> SchedulerError {
        tracing::error!("{what} is not wired into this process");
        SchedulerError::Refused(format!("{what} is not wired into this process"))
    }
}

#[async_trait]
impl Scheduler for Unwired {
    async fn schedule(&self, _: &Job, _: Timestamp) -> Result<(), SchedulerError> {
        Err(self.refuse("the scheduler"))
    }
    async fn reschedule(&self, _: &Job, _: Timestamp) -> Result<(), SchedulerError> {
        Err(self.refuse("the scheduler"))
    }
    async fn unschedule(&self, _: &str) -> Result<(), SchedulerError> {
        Err(self.refuse("the scheduler"))
    }
}

#[async_trait]
impl DispatchInvoker for Unwired {
    async fn invoke(&self, _: &Job) -> Result<(), SchedulerError> {
        Err(self.refuse("the dispatch invoker"))
    }
}
