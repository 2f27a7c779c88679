//! The local scheduler: a timer task per scheduled callback in this process, which hands the
//! job to a [`JobRunner`] (the application, running the same dispatch as the cloud's `dispatch`
//! function) when it fires. It is also the local "dispatch now". Timers die with the process;
//! the local server's sweeper then dispatches what was missed, as the cloud's sweeper would.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use async_trait::async_trait;
use jiff::Timestamp;
use tokio::task::AbortHandle;

use super::{DispatchInvoker, DispatchJob, JobRunner, Scheduler, SchedulerError};
use crate::time::Clock;

type Timers = Arc<Mutex<HashMap<String, AbortHandle>>>;

pub struct InProcessScheduler {
    timers: Timers,
    clock: Arc<dyn Clock>,
    runner: OnceLock<Weak<dyn JobRunner>>,
}

fn lock(timers: &Timers) -> std::sync::MutexGuard<'_, HashMap<String, AbortHandle>> {
    timers
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl InProcessScheduler {
    /// Timers measured against `clock` (the application's).
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            timers: Timers::default(),
            clock,
            runner: OnceLock::new(),
        }
    }

    /// Gives the timers what runs their jobs (the application owns the scheduler, so it comes
    /// after both exist; a weak reference, so timers never keep it alive).
    pub fn attach(&self, runner: Weak<dyn JobRunner>) {
        let _ = self.runner.set(runner);
    }

    fn runner(&self) -> Result<Weak<dyn JobRunner>, SchedulerError> {
        self.runner.get().cloned().ok_or_else(|| {
            SchedulerError::Refused("the in-process scheduler has nothing to run jobs".to_owned())
        })
    }

    fn arm(&self, job: &DispatchJob, at: Option<Timestamp>) -> Result<(), SchedulerError> {
        let runner = self.runner()?;
        let job = job.clone();
        let callback_id = job.callback_id.clone();
        let timers = self.timers.clone();
        let wait = at.map(|at| at.duration_since(self.clock.now()));
        let task = tokio::spawn(async move {
            if let Some(wait) = wait.filter(|wait| wait.is_positive()) {
                tokio::time::sleep(wait.unsigned_abs()).await;
            }
            lock(&timers).remove(&job.callback_id);
            if let Some(runner) = runner.upgrade() {
                runner.run_job(&job).await;
            }
        });
        if let Some(previous) = lock(&self.timers).insert(callback_id, task.abort_handle()) {
            previous.abort();
        }
        Ok(())
    }

    /// How many timers are armed (for tests).
    pub fn pending(&self) -> usize {
        lock(&self.timers).len()
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
        if let Some(timer) = lock(&self.timers).remove(callback_id) {
            timer.abort();
        }
        Ok(())
    }
}

#[async_trait]
impl DispatchInvoker for InProcessScheduler {
    async fn invoke(&self, job: &DispatchJob) -> Result<(), SchedulerError> {
        self.arm(job, None)
    }
}
