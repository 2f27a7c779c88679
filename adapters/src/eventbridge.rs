//! EventBridge Scheduler: one one-time schedule per [`Job`] — per callback, named after it, and
//! per try of a webhook delivery — in the schedule group (default `flowline-callbacks`):
//! `at(…)` in UTC, no flexible window, deleted after it runs, targeting the dispatch function
//! with the job as input, with a retry policy and a dead-letter queue. ("Now" is not a
//! schedule: see `lambda_invoke`.)

use async_trait::async_trait;
use aws_sdk_scheduler::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_scheduler::types::{
    ActionAfterCompletion, DeadLetterConfig, FlexibleTimeWindow, FlexibleTimeWindowMode,
    RetryPolicy, ScheduleState, Target,
};
use std::sync::Arc;

use flowline_core::scheduler::{Job, Scheduler, SchedulerError};
use flowline_core::time::Clock;
use jiff::Timestamp;

pub const DEFAULT_GROUP: &str = "flowline-callbacks";
/// The scheduler retries a failed invocation (dispatch is idempotent) for up to an hour;
/// after that the event goes to the dead-letter queue and the sweeper still finds the callback.
const RETRY_ATTEMPTS: i32 = 10;
const RETRY_MAX_AGE_SECONDS: i32 = 3600;

pub mod env {
    pub const GROUP: &str = "FLOWLINE_SCHEDULE_GROUP";
    pub const DISPATCH_FUNCTION_ARN: &str = "FLOWLINE_DISPATCH_FUNCTION_ARN";
    pub const ROLE_ARN: &str = "FLOWLINE_SCHEDULER_ROLE_ARN";
    pub const DEAD_LETTER_ARN: &str = "FLOWLINE_DISPATCH_DLQ_ARN";
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventBridgeSettings {
    pub group: String,
    pub dispatch_function_arn: String,
    pub role_arn: String,
    pub dead_letter_arn: Option<String>,
}

pub struct EventBridgeScheduler {
    client: aws_sdk_scheduler::Client,
    settings: EventBridgeSettings,
    clock: Arc<dyn Clock>,
}

fn classify<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    err: SdkError<E, R>,
) -> SchedulerError {
    match err.code() {
        Some(
            "ValidationException"
            | "ResourceNotFoundException"
            | "ConflictException"
            | "ServiceQuotaExceededException",
        ) => SchedulerError::Refused(format!(
            "{}: {}",
            err.code().unwrap_or_default(),
            err.message().unwrap_or_default()
        )),
        // Logged by the use case as the reason of its 503: the AWS error code first (a bare
        // "service error" tells an operator nothing), or the whole error when there is none
        // (a timeout, a connection reset).
        _ => SchedulerError::Unavailable(match err.code() {
            Some(code) => format!("{code}: {}", err.message().unwrap_or_default()),
            None => format!("{err:?}"),
        }),
    }
}

/// `at(2026-11-21T14:15:22)`: one-time, to the second, read in the `UTC` time zone.
pub fn at_expression(at: Timestamp) -> String {
    format!("at({})", at.strftime("%Y-%m-%dT%H:%M:%S"))
}

impl EventBridgeScheduler {
    /// Schedules made "for now" are made for `clock`'s now plus a lead (see [`MIN_LEAD`]).
    pub fn new(
        client: aws_sdk_scheduler::Client,
        settings: EventBridgeSettings,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            client,
            settings,
            clock,
        }
    }

    /// Creates the schedule group when missing (local use; in the cloud the template owns it).
    /// It looks first: an emulator may answer a second create by replacing the group, and
    /// with it every schedule in it.
    pub async fn ensure_group(&self) -> Result<(), SchedulerError> {
        match self
            .client
            .get_schedule_group()
            .name(&self.settings.group)
            .send()
            .await
        {
            Ok(_) => return Ok(()),
            Err(err) if err.code() == Some("ResourceNotFoundException") => {}
            Err(err) => return Err(classify(err)),
        }
        match self
            .client
            .create_schedule_group()
            .name(&self.settings.group)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(err) if err.code() == Some("ConflictException") => Ok(()),
            Err(err) => Err(classify(err)),
        }
    }

    fn target(&self, job: &Job) -> Result<Target, SchedulerError> {
        let input =
            serde_json::to_string(job).map_err(|err| SchedulerError::Refused(err.to_string()))?;
        let retry = RetryPolicy::builder()
            .maximum_retry_attempts(RETRY_ATTEMPTS)
            .maximum_event_age_in_seconds(RETRY_MAX_AGE_SECONDS)
            .build();
        let mut target = Target::builder()
            .arn(&self.settings.dispatch_function_arn)
            .role_arn(&self.settings.role_arn)
            .input(input)
            .retry_policy(retry);
        if let Some(arn) = &self.settings.dead_letter_arn {
            target = target.dead_letter_config(DeadLetterConfig::builder().arn(arn).build());
        }
        target
            .build()
            .map_err(|err| SchedulerError::Refused(err.to_string()))
    }

    fn window() -> Result<FlexibleTimeWindow, SchedulerError> {
        FlexibleTimeWindow::builder()
            .mode(FlexibleTimeWindowMode::Off)
            .build()
            .map_err(|err| SchedulerError::Refused(err.to_string()))
    }

    async fn create(&self, job: &Job, at: Timestamp) -> Result<(), SchedulerError> {
        self.client
            .create_schedule()
            .name(job.name())
            .group_name(&self.settings.group)
            .schedule_expression(at_expression(at))
            .schedule_expression_timezone("UTC")
            .flexible_time_window(Self::window()?)
            .action_after_completion(ActionAfterCompletion::Delete)
            .state(ScheduleState::Enabled)
            .description(description(job))
            .target(self.target(job)?)
            .send()
            .await
            .map(drop)
            .map_err(classify)
    }

    async fn update(&self, job: &Job, at: Timestamp) -> Result<(), SchedulerError> {
        self.client
            .update_schedule()
            .name(job.name())
            .group_name(&self.settings.group)
            .schedule_expression(at_expression(at))
            .schedule_expression_timezone("UTC")
            .flexible_time_window(Self::window()?)
            .action_after_completion(ActionAfterCompletion::Delete)
            .state(ScheduleState::Enabled)
            .description(description(job))
            .target(self.target(job)?)
            .send()
            .await
            .map(drop)
            .map_err(classify)
    }
}

fn description(job: &Job) -> String {
    match job {
        Job::Dispatch(job) => format!(
            "Flowline callback {} of {}",
            job.callback_id, job.organization_id
        ),
        Job::Retry(job) => format!(
            "Flowline delivery {} of {}, try {}",
            job.delivery_id, job.organization_id, job.attempt
        ),
    }
}

fn is_code(err: &SchedulerError, code: &str) -> bool {
    matches!(err, SchedulerError::Refused(message) if message.starts_with(code))
}

/// A schedule made for "almost now" could fire before the callback's item is written (the
/// create writes the schedule first), and `at()` has whole seconds: schedules fire at least this
/// long after they are made. Dispatch accepts a schedule up to 30 s after `scheduled_at`.
pub const MIN_LEAD: jiff::SignedDuration = jiff::SignedDuration::from_secs(5);

pub fn fire_time(at: Timestamp, now: Timestamp) -> Timestamp {
    let earliest = now + MIN_LEAD;
    let at = at.max(earliest);
    // Round up to the second: `at()` truncates, and early is never due.
    let rounded = Timestamp::from_second(at.as_second() + i64::from(at.subsec_nanosecond() > 0));
    rounded.unwrap_or(at)
}

#[async_trait]
impl Scheduler for EventBridgeScheduler {
    async fn schedule(&self, job: &Job, at: Timestamp) -> Result<(), SchedulerError> {
        let at = fire_time(at, self.clock.now());
        match self.create(job, at).await {
            // A retried create (same callback id): make the existing schedule say the same.
            Err(err) if is_code(&err, "ConflictException") => self.update(job, at).await,
            other => other,
        }
    }

    async fn reschedule(&self, job: &Job, at: Timestamp) -> Result<(), SchedulerError> {
        let at = fire_time(at, self.clock.now());
        match self.update(job, at).await {
            Err(err) if is_code(&err, "ResourceNotFoundException") => self.create(job, at).await,
            other => other,
        }
    }

    async fn unschedule(&self, name: &str) -> Result<(), SchedulerError> {
        match self
            .client
            .delete_schedule()
            .name(name)
            .group_name(&self.settings.group)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(err) if err.code() == Some("ResourceNotFoundException") => Ok(()),
            Err(err) => Err(classify(err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_expressions_are_utc_to_the_second() {
        let at: Timestamp = "2026-11-21T14:15:22.789Z".parse().unwrap();
        assert_eq!(at_expression(at), "at(2026-11-21T14:15:22)");
    }
}
