//! Time: one one-time schedule per scheduled callback, which invokes dispatch at its
//! `scheduled_at`. [`eventbridge::EventBridgeScheduler`] in the cloud;
//! [`in_process::InProcessScheduler`] (timers in the server's process) locally.

pub mod eventbridge;
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
    /// Dispatches `job` within seconds (a schedule cannot be in the past).
    async fn dispatch_soon(&self, job: &DispatchJob) -> Result<(), SchedulerError>;
}
