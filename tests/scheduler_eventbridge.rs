//! The EventBridge Scheduler adapter against the emulator, through the real SDK client: the
//! schedule it makes for a callback (SPEC §4, "The schedule") and how `schedule`, `reschedule`
//! and `unschedule` treat existing and missing schedules.

mod common;

use std::sync::Arc;

use aws_sdk_scheduler::Client;
use aws_sdk_scheduler::error::ProvideErrorMetadata;
use aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput;
use aws_sdk_scheduler::types::{ActionAfterCompletion, FlexibleTimeWindowMode, ScheduleState};
use flowline_adapters::eventbridge::{EventBridgeScheduler, EventBridgeSettings};
use flowline_core::ids;
use flowline_core::scheduler::{DispatchJob, Job, Scheduler};
use flowline_core::time::{ManualClock, parse_timestamp};
use serde_json::{Value, json};

/// Where the adapter's clock stands: a schedule "for now" is made for it.
const NOW: &str = "2030-06-01T00:00:00.250Z";

/// The adapter, a client to look behind it, and the settings both use.
struct Fixture {
    scheduler: EventBridgeScheduler,
    client: Client,
    settings: EventBridgeSettings,
}

async fn fixture() -> Fixture {
    let sdk = common::emulator_config().await;
    let mut settings = common::scheduler_settings();
    // A group of its own per test, so tests never see each other's schedules (nor erase them:
    // the emulator's CreateScheduleGroup replaces an existing group, schedules and all).
    settings.group = format!("{}-{}", settings.group, ids::random_token(6));
    let client = Client::new(&sdk);
    let clock = Arc::new(ManualClock::new(at(NOW)));
    let scheduler = EventBridgeScheduler::new(client.clone(), settings.clone(), clock);
    scheduler.ensure_group().await.expect("the group is made");
    Fixture {
        scheduler,
        client,
        settings,
    }
}

fn job() -> DispatchJob {
    DispatchJob {
        callback_id: ids::new_id("cb_", 1_800_000_000_000),
        organization_id: ids::new_id("org_", 0),
    }
}

/// What the scheduler is handed for a callback's dispatch.
fn dispatch(job: &DispatchJob) -> Job {
    Job::Dispatch(job.clone())
}

fn at(text: &str) -> jiff::Timestamp {
    parse_timestamp(text).expect("a timestamp")
}

impl Fixture {
    async fn get(&self, name: &str) -> GetScheduleOutput {
        self.client
            .get_schedule()
            .name(name)
            .group_name(&self.settings.group)
            .send()
            .await
            .unwrap_or_else(|err| panic!("schedule {name}: {:?}", err.code()))
    }

    /// The error code GetSchedule answers, or `None` when the schedule exists.
    async fn get_error(&self, name: &str) -> Option<String> {
        self.client
            .get_schedule()
            .name(name)
            .group_name(&self.settings.group)
            .send()
            .await
            .err()
            .map(|err| err.code().unwrap_or("no code").to_owned())
    }

    async fn names(&self) -> Vec<String> {
        let listed = self
            .client
            .list_schedules()
            .group_name(&self.settings.group)
            .send()
            .await
            .expect("list");
        listed
            .schedules()
            .iter()
            .filter_map(|s| s.name().map(str::to_owned))
            .collect()
    }
}

#[tokio::test]
async fn a_schedule_for_now_fires_five_seconds_later_rounded_up_to_the_second() {
    let fixture = fixture().await;
    let (now, earlier) = (job(), job());
    fixture
        .scheduler
        .schedule(&dispatch(&now), at(NOW))
        .await
        .expect("scheduled");
    // A time already past is treated the same: a schedule cannot be in the past.
    fixture
        .scheduler
        .schedule(&dispatch(&earlier), at("2030-05-31T23:00:00Z"))
        .await
        .expect("scheduled");
    // 00:00:00.250 + 5 s = 00:00:05.250, rounded up: the item is written after the schedule,
    // and a schedule that fired before it would find nothing.
    for job in [&now, &earlier] {
        let schedule = fixture.get(&job.callback_id).await;
        assert_eq!(
            schedule.schedule_expression(),
            Some("at(2030-06-01T00:00:06)")
        );
    }
    // Just past the lead, the time asked for stands.
    let later = job();
    fixture
        .scheduler
        .schedule(&dispatch(&later), at("2030-06-01T00:00:05.251Z"))
        .await
        .expect("scheduled");
    assert_eq!(
        fixture.get(&later.callback_id).await.schedule_expression(),
        Some("at(2030-06-01T00:00:06)")
    );
    let much_later = job();
    fixture
        .scheduler
        .schedule(&dispatch(&much_later), at("2031-05-06T07:08:15.001Z"))
        .await
        .expect("scheduled");
    assert_eq!(
        fixture
            .get(&much_later.callback_id)
            .await
            .schedule_expression(),
        Some("at(2031-05-06T07:08:16)")
    );
}

#[tokio::test]
async fn schedule_makes_the_one_time_schedule_of_the_spec() {
    let fixture = fixture().await;
    let job = job();
    fixture
        .scheduler
        .schedule(&dispatch(&job), at("2031-05-06T07:08:09.500Z"))
        .await
        .expect("scheduled");

    let schedule = fixture.get(&job.callback_id).await;
    assert_eq!(schedule.name(), Some(job.callback_id.as_str()));
    assert_eq!(schedule.group_name(), Some(fixture.settings.group.as_str()));
    // One-time, to the second (rounded up: a schedule is never early), read in UTC.
    assert_eq!(
        schedule.schedule_expression(),
        Some("at(2031-05-06T07:08:10)")
    );
    assert_eq!(schedule.schedule_expression_timezone(), Some("UTC"));
    assert_eq!(
        schedule.flexible_time_window().map(|w| w.mode()),
        Some(&FlexibleTimeWindowMode::Off)
    );
    assert_eq!(
        schedule.action_after_completion(),
        Some(&ActionAfterCompletion::Delete)
    );
    assert_eq!(schedule.state(), Some(&ScheduleState::Enabled));

    let target = schedule.target().expect("a target");
    assert_eq!(target.arn(), fixture.settings.dispatch_function_arn);
    assert_eq!(target.role_arn(), fixture.settings.role_arn);
    let input: Value = serde_json::from_str(target.input().expect("an input")).expect("JSON");
    assert_eq!(
        input,
        json!({"callback_id": job.callback_id, "organization_id": job.organization_id})
    );
    let retry = target.retry_policy().expect("a retry policy");
    assert_eq!(retry.maximum_retry_attempts(), Some(10));
    assert_eq!(retry.maximum_event_age_in_seconds(), Some(3600));
    assert_eq!(
        target.dead_letter_config().and_then(|d| d.arn()),
        fixture.settings.dead_letter_arn.as_deref()
    );
}

#[tokio::test]
async fn the_expression_is_in_utc_whatever_the_offset_given() {
    let fixture = fixture().await;
    let job = job();
    // 23:30 in New York on 31 December is 04:30 UTC on 1 January.
    fixture
        .scheduler
        .schedule(&dispatch(&job), at("2030-12-31T23:30:00-05:00"))
        .await
        .expect("scheduled");
    let schedule = fixture.get(&job.callback_id).await;
    assert_eq!(
        schedule.schedule_expression(),
        Some("at(2031-01-01T04:30:00)")
    );
    assert_eq!(schedule.schedule_expression_timezone(), Some("UTC"));
}

#[tokio::test]
async fn reschedule_moves_the_expression() {
    let fixture = fixture().await;
    let job = job();
    fixture
        .scheduler
        .schedule(&dispatch(&job), at("2031-05-06T07:08:09Z"))
        .await
        .expect("scheduled");
    fixture
        .scheduler
        .reschedule(&dispatch(&job), at("2031-05-07T10:00:00Z"))
        .await
        .expect("rescheduled");

    let schedule = fixture.get(&job.callback_id).await;
    assert_eq!(
        schedule.schedule_expression(),
        Some("at(2031-05-07T10:00:00)")
    );
    assert_eq!(schedule.schedule_expression_timezone(), Some("UTC"));
    // Everything else is as it was made (UpdateSchedule replaces the whole definition).
    assert_eq!(
        schedule.flexible_time_window().map(|w| w.mode()),
        Some(&FlexibleTimeWindowMode::Off)
    );
    let target = schedule.target().expect("a target");
    assert_eq!(target.arn(), fixture.settings.dispatch_function_arn);
    assert_eq!(target.role_arn(), fixture.settings.role_arn);
    let input: Value = serde_json::from_str(target.input().unwrap()).unwrap();
    assert_eq!(input["callback_id"], job.callback_id.as_str());
    assert_eq!(
        target
            .retry_policy()
            .and_then(|r| r.maximum_retry_attempts()),
        Some(10)
    );
    assert_eq!(
        target.dead_letter_config().and_then(|d| d.arn()),
        fixture.settings.dead_letter_arn.as_deref()
    );
    assert_eq!(fixture.names().await, vec![job.callback_id.clone()]);
}

#[tokio::test]
async fn reschedule_of_a_missing_schedule_creates_it() {
    let fixture = fixture().await;
    let job = job();
    fixture
        .scheduler
        .reschedule(&dispatch(&job), at("2031-05-07T10:00:00Z"))
        .await
        .expect("rescheduled");

    let schedule = fixture.get(&job.callback_id).await;
    assert_eq!(
        schedule.schedule_expression(),
        Some("at(2031-05-07T10:00:00)")
    );
    assert_eq!(
        schedule.action_after_completion(),
        Some(&ActionAfterCompletion::Delete)
    );
    let input: Value = serde_json::from_str(schedule.target().unwrap().input().unwrap()).unwrap();
    assert_eq!(
        input,
        json!({"callback_id": job.callback_id, "organization_id": job.organization_id})
    );
}

#[tokio::test]
async fn schedule_twice_leaves_one_schedule_at_the_second_time() {
    let fixture = fixture().await;
    let job = job();
    fixture
        .scheduler
        .schedule(&dispatch(&job), at("2031-05-06T07:08:09Z"))
        .await
        .expect("scheduled");
    // A retried create for the same callback meets a conflict, and makes the schedule say the same.
    fixture
        .scheduler
        .schedule(&dispatch(&job), at("2031-05-06T08:00:00Z"))
        .await
        .expect("scheduled again");

    assert_eq!(fixture.names().await, vec![job.callback_id.clone()]);
    let schedule = fixture.get(&job.callback_id).await;
    assert_eq!(
        schedule.schedule_expression(),
        Some("at(2031-05-06T08:00:00)")
    );
    assert_eq!(
        schedule.action_after_completion(),
        Some(&ActionAfterCompletion::Delete)
    );
}

#[tokio::test]
async fn unschedule_deletes_the_schedule() {
    let fixture = fixture().await;
    let (job, other) = (job(), job());
    for job in [&job, &other] {
        fixture
            .scheduler
            .schedule(&dispatch(job), at("2031-05-06T07:08:09Z"))
            .await
            .expect("scheduled");
    }
    fixture
        .scheduler
        .unschedule(&job.callback_id)
        .await
        .expect("unscheduled");

    assert_eq!(
        fixture.get_error(&job.callback_id).await.as_deref(),
        Some("ResourceNotFoundException")
    );
    assert_eq!(
        fixture.get_error(&other.callback_id).await,
        None,
        "only its own"
    );
}

#[tokio::test]
async fn unschedule_of_a_missing_schedule_is_ok() {
    let fixture = fixture().await;
    let job = job();
    assert_eq!(
        fixture.get_error(&job.callback_id).await.as_deref(),
        Some("ResourceNotFoundException")
    );
    fixture
        .scheduler
        .unschedule(&job.callback_id)
        .await
        .expect("nothing to delete is not an error");

    // Twice, after a real one, too.
    fixture
        .scheduler
        .schedule(&dispatch(&job), at("2031-05-06T07:08:09Z"))
        .await
        .expect("scheduled");
    fixture
        .scheduler
        .unschedule(&job.callback_id)
        .await
        .unwrap();
    fixture
        .scheduler
        .unschedule(&job.callback_id)
        .await
        .unwrap();
}

#[tokio::test]
async fn ensure_group_keeps_an_existing_group_and_its_schedules() {
    let fixture = fixture().await;
    let job = job();
    fixture
        .scheduler
        .schedule(&dispatch(&job), at("2031-05-06T07:08:09Z"))
        .await
        .expect("scheduled");
    // What a second local server on the same emulator (or a restart) does at start-up.
    fixture
        .scheduler
        .ensure_group()
        .await
        .expect("an existing group is fine");
    assert_eq!(fixture.get_error(&job.callback_id).await, None);
}
