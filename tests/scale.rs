//! Flowline at scale, in-process, in virtual time, counted:
//! - a 09:00 burst (1,000 callbacks created a second across organizations, 200 a second in
//!   each, then 1,000 due and dispatched a second) keeps every partition key under DynamoDB's
//!   per-partition limits (1,000 write units, 3,000 read units a second);
//! - callbacks whose schedules were all lost are handed off by one sweep of the sweeper, and
//!   each is dispatched once.
//!
//! `FLOWLINE_SCALE=100000 cargo test --release --test scale` runs the second with 100,000
//! (RELIABILITY.md); CI runs it with 5,000.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use common::load::LoadRecorder;
use flowline_core::App;
use flowline_core::auth::{Caller, KeyKind};
use flowline_core::callbacks::{dispatch, input, service};
use flowline_core::config::Config;
use flowline_core::flows::{self, FlowRef};
use flowline_core::scheduler::{DispatchInvoker, DispatchJob, Job, Scheduler, SchedulerError};
use flowline_core::store::Table;
use flowline_core::store::memory::MemoryTable;
use flowline_core::time::{Clock, ManualClock, format_timestamp};
use flowline_core::webhooks::sender::{Attempt, WebhookSender};
use flowline_core::webhooks::{self};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};

/// A receiver that accepts everything at once.
struct Accepting;

#[async_trait]
impl WebhookSender for Accepting {
    async fn post(
        &self,
        _: &str,
        _: Vec<(&'static str, String)>,
        _: Bytes,
        _: Duration,
    ) -> Attempt {
        Attempt::Answered {
            status: 200,
            body: Bytes::from_static(b"{}"),
        }
    }
}

/// Schedules that are lost (never fire); hand-offs kept for the test to run, as the dispatch
/// function would, each after `latency` (an asynchronous Lambda invocation's round trip).
struct LostSchedules {
    handed_off: Mutex<Vec<Job>>,
    latency: Duration,
}

#[async_trait]
impl Scheduler for LostSchedules {
    async fn schedule(&self, _: &Job, _: Timestamp) -> Result<(), SchedulerError> {
        Ok(())
    }
    async fn reschedule(&self, _: &Job, _: Timestamp) -> Result<(), SchedulerError> {
        Ok(())
    }
    async fn unschedule(&self, _: &str) -> Result<(), SchedulerError> {
        Ok(())
    }
}

#[async_trait]
impl DispatchInvoker for LostSchedules {
    async fn invoke(&self, job: &Job) -> Result<(), SchedulerError> {
        tokio::time::sleep(self.latency).await;
        self.handed_off.lock().unwrap().push(job.clone());
        Ok(())
    }
}

fn object(value: Value) -> Map<String, Value> {
    value.as_object().expect("an object").clone()
}

fn caller(organization: &str) -> Caller {
    Caller {
        organization_id: organization.to_owned(),
        kind: KeyKind::Private,
        key_name: "scale".to_owned(),
    }
}

struct World {
    app: Arc<App>,
    clock: Arc<ManualClock>,
    schedules: Arc<LostSchedules>,
}

fn world(table: Arc<dyn Table>, clock: Arc<ManualClock>) -> World {
    let schedules = Arc::new(LostSchedules {
        handed_off: Mutex::default(),
        latency: Duration::from_millis(25),
    });
    let config = Config {
        public_base_url: "https://flowline.example.com".to_owned(),
        allow_private_targets: true,
        request_budget: flowline_core::deadline::HTTP_BUDGET,
        limits: common::UNLIMITED,
    };
    let app = App::builder(table, Arc::new(MemoryTable::new()), config)
        .clock(clock.clone())
        .scheduler(schedules.clone())
        .invoker(schedules.clone())
        .sender(Arc::new(Accepting))
        .signing_key(common::SIGNING_KEY)
        .build();
    World {
        app,
        clock,
        schedules,
    }
}

impl World {
    /// A published flow and a dispatch endpoint of `organization`; answers the flow.
    async fn organization(&self, organization: &str) -> String {
        let caller = caller(organization);
        webhooks::create(
            &self.app,
            &caller,
            object(json!({"url": "https://agents.example.com/dispatch", "events": ["callback.dispatch"]})),
        )
        .await
        .expect("endpoint");
        let flow = flows::service::create_flow(
            &self.app,
            &caller,
            flows::read_flow_body(object(json!({"name": "Scale", "data": {"a": 1}})), true)
                .expect("a flow body"),
        )
        .await
        .expect("flow");
        flows::service::publish(
            &self.app,
            &caller,
            &FlowRef::Slug(flow.slug.clone()),
            Map::new(),
        )
        .await
        .expect("published");
        flow.slug
    }

    async fn create(&self, organization: &str, flow: &str, at: Timestamp) -> String {
        let body = json!({"flow": flow, "to_number": "+15557654321",
                          "scheduled_at": format_timestamp(at)});
        let new = input::read_new_callback(object(body), None, self.clock.now()).expect("a body");
        service::create(&self.app, organization, new)
            .await
            .expect("created")
            .id
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nine_oclock_burst_stays_under_every_partitions_limits() {
    let clock = Arc::new(ManualClock::new("2026-12-01T08:00:00Z".parse().unwrap()));
    let recorder = Arc::new(LoadRecorder::new(
        Arc::new(MemoryTable::new()),
        clock.clone(),
    ));
    let world = world(recorder.clone(), clock.clone());
    let organizations: Vec<String> = (0..5).map(|n| format!("org_scale{n}")).collect();
    let mut flows = Vec::new();
    for organization in &organizations {
        flows.push(world.organization(organization).await);
    }
    let nine: Timestamp = "2026-12-01T09:00:00Z".parse().unwrap();
    // Three seconds of 1,000 creates a second (200 in each organization), each second's due
    // in one second at nine.
    let mut due = Vec::new();
    for second in 0..3 {
        let at = nine + SignedDuration::from_secs(second);
        clock.advance_to(
            "2026-12-01T08:30:00Z".parse::<Timestamp>().unwrap()
                + SignedDuration::from_secs(second),
        );
        let mut batch = Vec::new();
        for (organization, flow) in organizations.iter().zip(&flows) {
            for _ in 0..200 {
                batch.push((
                    organization.clone(),
                    world.create(organization, flow, at).await,
                ));
            }
        }
        due.push((at, batch));
    }
    // From nine: 1,000 due and dispatched each second.
    for (at, batch) in &due {
        clock.advance_to(*at);
        for (organization, id) in batch {
            let job = DispatchJob {
                callback_id: id.clone(),
                organization_id: organization.clone(),
            };
            let done = dispatch::run_job(&world.app, &job)
                .await
                .expect("dispatched");
            assert!(done.is_some());
        }
    }
    let peak = recorder.peak();
    let busiest = recorder.busiest(5);
    eprintln!("peak per partition key and second: {peak:?}; busiest: {busiest:#?}");
    assert!(
        peak.write <= 1000.0,
        "write units over a partition's limit: {busiest:#?}"
    );
    assert!(
        peak.read <= 3000.0,
        "read units over a partition's limit: {peak:?}"
    );
}

fn scale() -> usize {
    std::env::var("FLOWLINE_SCALE")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5_000)
}

/// On tokio's paused clock: the hand-offs' latency is virtual, and so is the time measured.
#[tokio::test(start_paused = true)]
async fn lost_schedules_by_the_thousand_are_all_handed_off_by_one_sweep_and_dispatched_once() {
    let count = scale();
    let clock = Arc::new(ManualClock::new("2026-12-01T08:00:00Z".parse().unwrap()));
    let world = world(Arc::new(MemoryTable::new()), clock.clone());
    let organizations: Vec<String> = (0..10).map(|n| format!("org_lost{n}")).collect();
    let mut flows = Vec::new();
    for organization in &organizations {
        flows.push(world.organization(organization).await);
    }
    let due: Timestamp = "2026-12-01T09:00:00Z".parse().unwrap();
    for n in 0..count {
        let index = n % organizations.len();
        world
            .create(&organizations[index], &flows[index], due)
            .await;
    }
    // No schedule fires. The sweeper's first run after the 2-minute grace finds them all.
    clock.advance_to(due + SignedDuration::from_mins(3));
    let started = tokio::time::Instant::now();
    let report = flowline_core::sweeper::sweep(&world.app, Duration::from_secs(240))
        .await
        .expect("the sweep runs");
    let took = started.elapsed();
    eprintln!(
        "{count} lost schedules: {report:?}, handed off in {took:?} (virtual: 25 ms a hand-off)"
    );
    assert_eq!(report.handed_off, count, "all in one run");
    // Every shard of both due indexes (callbacks and delivery retries).
    assert_eq!(report.shards_finished, 64);
    assert!(took < Duration::from_secs(240), "within one run's budget");

    // The dispatch function runs each hand-off: every callback dispatched, once.
    let handed_off: Vec<DispatchJob> =
        std::mem::take(&mut *world.schedules.handed_off.lock().unwrap())
            .iter()
            .map(|job| job.as_dispatch().expect("only callbacks are due").clone())
            .collect();
    let unique: HashSet<&str> = handed_off
        .iter()
        .map(|job| job.callback_id.as_str())
        .collect();
    assert_eq!(unique.len(), count);
    let mut dispatched = 0;
    for job in &handed_off {
        if dispatch::run_job(&world.app, job)
            .await
            .expect("runs")
            .is_some()
        {
            dispatched += 1;
        }
    }
    assert_eq!(dispatched, count);
    // An overlapping second run hands them off again: none is dispatched twice.
    let again = flowline_core::sweeper::sweep(&world.app, Duration::from_secs(240))
        .await
        .unwrap();
    assert_eq!(
        again.examined, 0,
        "dispatched callbacks leave the due index"
    );
}
