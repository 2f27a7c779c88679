//! The local scheduler: a timer task per schedule in this process, which hands the
//! job to a [`JobRunner`] (the application, running the same dispatch as the cloud's `dispatch`
//! function) when it fires. It is also the local "dispatch now". Timers die with the process;
//! the local server's sweeper then dispatches what was missed, as the cloud's sweeper would.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use async_trait::async_trait;
use jiff::Timestamp;
use tokio::task::AbortHandle;

use super::{DispatchInvoker, Job, JobRunner, Scheduler, SchedulerError};
use crate::time::Clock;

/// A timer: the task that waits, and the time it waits for (`None`: "dispatch now").
struct Timer {
    task: AbortHandle,
    at: Option<Timestamp>,
}

type Timers = Arc<Mutex<HashMap<String, Timer>>>;

pub struct InProcessScheduler {
    timers: Timers,
    clock: Arc<dyn Clock>,
    runner: OnceLock<Weak<dyn JobRunner>>,
}

fn lock(timers: &Timers) -> std::sync::MutexGuard<'_, HashMap<String, Timer>> {
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

    fn arm(&self, job: &Job, at: Option<Timestamp>) -> Result<(), SchedulerError> {
        let runner = self.runner()?;
        let job = job.clone();
        // A job run now replaces its schedule's timer: it runs the same job, sooner.
        let name = job.name();
        let entry = name.clone();
        let timers = self.timers.clone();
        let clock = self.clock.clone();
        // Held while spawning, so the task cannot look for its entry before it is there.
        let mut armed = lock(&self.timers);
        let task = tokio::spawn(async move {
            if let Some(at) = at {
                clock.sleep_until(at).await;
            }
            {
                // Only this timer's own entry: a newer one may have replaced it meanwhile.
                let mut timers = lock(&timers);
                if timers
                    .get(&entry)
                    .is_some_and(|timer| timer.task.id() == tokio::task::id())
                {
                    timers.remove(&entry);
                }
            }
            if let Some(runner) = runner.upgrade() {
                runner.run_job(&job).await;
            }
        });
        let timer = Timer {
            task: task.abort_handle(),
            at,
        };
        if let Some(previous) = armed.insert(name, timer) {
            previous.task.abort();
        }
        Ok(())
    }

    /// How many timers are armed (for tests).
    pub fn pending(&self) -> usize {
        lock(&self.timers).len()
    }

    /// When the timer of schedule `name` fires, if one is armed for a time (for tests: what an
    /// EventBridge schedule's `at()` expression is to the cloud).
    pub fn armed_at(&self, name: &str) -> Option<Timestamp> {
        lock(&self.timers).get(name).and_then(|timer| timer.at)
    }
}

#[async_trait]
impl Scheduler for InProcessScheduler {
    async fn schedule(&self, job: &Job, at: Timestamp) -> Result<(), SchedulerError> {
        self.arm(job, Some(at))
    }

    async fn reschedule(&self, job: &Job, at: Timestamp) -> Result<(), SchedulerError> {
        self.arm(job, Some(at))
    }

    async fn unschedule(&self, name: &str) -> Result<(), SchedulerError> {
        if let Some(timer) = lock(&self.timers).remove(name) {
            timer.task.abort();
        }
        Ok(())
    }
}

#[async_trait]
impl DispatchInvoker for InProcessScheduler {
    async fn invoke(&self, job: &Job) -> Result<(), SchedulerError> {
        self.arm(job, None)
    }
}
