//! The local scheduler: a timer task per scheduled callback in this process, which runs the
//! same dispatch as the cloud's `dispatch` function when it fires. Timers die with the process;
//! the local server's sweeper then dispatches what was missed, as the cloud's sweeper would.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use async_trait::async_trait;
use jiff::Timestamp;
use tokio::task::AbortHandle;

use super::{DispatchJob, Scheduler, SchedulerError};
use crate::app::App;

#[derive(Default)]
pub struct InProcessScheduler {
    timers: Mutex<HashMap<String, AbortHandle>>,
    app: OnceLock<Weak<App>>,
}

impl InProcessScheduler {
    pub fn new() -> Self {
        Self::default()
    }

    /// Gives the timers the app they dispatch with (the app owns the scheduler, so it comes
    /// after both exist).
    pub fn attach(&self, app: &Arc<App>) {
        let _ = self.app.set(Arc::downgrade(app));
    }

    fn app(&self) -> Result<Weak<App>, SchedulerError> {
        self.app.get().cloned().ok_or_else(|| {
            SchedulerError::Refused("the in-process scheduler has no app".to_owned())
        })
    }

    fn timers(&self) -> std::sync::MutexGuard<'_, HashMap<String, AbortHandle>> {
        self.timers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn arm(&self, job: &DispatchJob, at: Option<Timestamp>) -> Result<(), SchedulerError> {
        let app = self.app()?;
        let job = job.clone();
        let callback_id = job.callback_id.clone();
        let task = tokio::spawn(async move {
            if let Some(at) = at {
                let now = match app.upgrade() {
                    Some(app) => app.clock.now(),
                    None => return,
                };
                let wait = at.duration_since(now).unsigned_abs();
                if at > now {
                    tokio::time::sleep(wait).await;
                }
            }
            let Some(app) = app.upgrade() else { return };
            if let Some(scheduler) = app.in_process_scheduler() {
                scheduler.timers().remove(&job.callback_id);
            }
            if let Err(err) = crate::callbacks::dispatch::run_job(&app, &job).await {
                tracing::warn!(callback = %job.callback_id, error = %err.message, "in-process dispatch failed");
            }
        });
        if let Some(previous) = self.timers().insert(callback_id, task.abort_handle()) {
            previous.abort();
        }
        Ok(())
    }

    /// How many timers are armed (for tests).
    pub fn pending(&self) -> usize {
        self.timers().len()
    }
}

#[async_trait]
impl Scheduler for InProcessScheduler {
    async fn schedule(&self, job: &DispatchJob, at: Timestamp) -> Result<(), SchedulerError> {
        self.arm(job, Some(at))
    }

    async fn reschedule(&self, job: &DispatchJob, at: Timestamp) -> Result<(), SchedulerError> {
        self.arm(job, Some(at))
    }

    async fn unschedule(&self, callback_id: &str) -> Result<(), SchedulerError> {
        if let Some(timer) = self.timers().remove(callback_id) {
            timer.abort();
        }
        Ok(())
    }

    async fn dispatch_soon(&self, job: &DispatchJob) -> Result<(), SchedulerError> {
        self.arm(job, None)
    }
}
