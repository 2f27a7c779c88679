//! Time: one one-time schedule per scheduled callback, which invokes dispatch at its
//! `scheduled_at` ([`Scheduler`]), and "dispatch now", which hands a dispatch off to run within
//! seconds outside the current request ([`DispatchInvoker`]). In the cloud these are
//! EventBridge Scheduler and an asynchronous Lambda invocation (`flowline-adapters`); locally
//! [`in_process::InProcessScheduler`] does both with timers in the server's process, running
//! each dispatch through a [`JobRunner`].

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
    /// Creates the schedule that dispatches `job` at `at`.
    async fn schedule(&self, job: &DispatchJob, at: Timestamp) -> Result<(), SchedulerError>;
    /// Moves the schedule to `at` (creating it again if it is gone).
    async fn reschedule(&self, job: &DispatchJob, at: Timestamp) -> Result<(), SchedulerError>;
    /// Deletes the schedule; one that is already gone is not an error.
    async fn unschedule(&self, callback_id: &str) -> Result<(), SchedulerError>;
}

/// "Dispatch now": runs `job` within seconds, elsewhere (a schedule cannot be in the past).
#[async_trait]
pub trait DispatchInvoker: Send + Sync {
    async fn invoke(&self, job: &DispatchJob) -> Result<(), SchedulerError>;
}

/// Runs one dispatch job where it is handed over (what the cloud's `dispatch` function does
/// with the scheduler's input). The application implements it; the in-process scheduler
/// depends only on this.
#[async_trait]
pub trait JobRunner: Send + Sync {
    async fn run_job(&self, job: &DispatchJob);
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
    async fn schedule(&self, _: &DispatchJob, _: Timestamp) -> Result<(), SchedulerError> {
        Err(self.refuse("the scheduler"))
    }
    async fn reschedule(&self, _: &DispatchJob, _: Timestamp) -> Result<(), SchedulerError> {
        Err(self.refuse("the scheduler"))
    }
    async fn unschedule(&self, _: &str) -> Result<(), SchedulerError> {
        Err(self.refuse("the scheduler"))
    }
}

#[async_trait]
impl DispatchInvoker for Unwired {
    async fn invoke(&self, _: &DispatchJob) -> Result<(), SchedulerError> {
        Err(self.refuse("the dispatch invoker"))
    }
}
