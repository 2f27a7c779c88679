//! Faults: the scheduler or the store failing part-way must never leave a callback lost or
//! half-made. The app is assembled here with a store that fails on cue, a scheduler that fails
//! (or silently loses schedules), and a clock the test moves, over both stores.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use common::clock::TestClock;
use common::faults::PartitionFault;
use common::receiver::{Receiver, Reply};
use common::{Backend, Org, SIGNING_KEY, TestServer};
use flowline_adapters::webhook_http::HttpSender;
use flowline_core::App;
use flowline_core::callbacks::dispatch;
use flowline_core::config::Config;
use flowline_core::scheduler::{DispatchInvoker, DispatchJob, Job, Scheduler, SchedulerError};
use flowline_core::store::{Item, Key, Query, StoreError, Table, Write};
use flowline_core::time::{Clock, format_timestamp};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

/// A table that fails the next write matching a condition, once.
struct FlakyTable {
    inner: Arc<dyn Table>,
    fail_next: Mutex<Option<&'static str>>,
    fail_next_query: PartitionFault,
}

impl FlakyTable {
    /// The next write that puts a callback in `status` fails as if DynamoDB were unreachable.
    fn fail_when_writing_status(&self, status: &'static str) {
        *self.fail_next.lock().unwrap() = Some(status);
    }

    fn armed(&self) -> bool {
        self.fail_next.lock().unwrap().is_some()
    }
}

#[async_trait]
impl Table for FlakyTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.inner.get(key).await
    }
    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError> {
        self.inner.get_many(keys).await
    }
    async fn query(&self, query: &Query) -> Result<Vec<Item>, StoreError> {
        if self.fail_next_query.hits(query) {
            return Err(StoreError::Unavailable("injected fault".to_owned()));
        }
        self.inner.query(query).await
    }
    async fn write(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let status = *self.fail_next.lock().unwrap();
        if let Some(status) = status {
            let hit = writes.iter().any(|w| matches!(w, Write::Put { doc, .. } if doc["status"] == status && doc["id"].as_str().is_some_and(|id| id.starts_with("cb_"))));
            if hit {
                *self.fail_next.lock().unwrap() = None;
                return Err(StoreError::Unavailable("injected fault".to_owned()));
            }
        }
        self.inner.write(writes).await
    }
    async fn increment(
        &self,
        key: &Key,
        delta: i64,
        expires_at: Option<i64>,
    ) -> Result<i64, StoreError> {
        self.inner.increment(key, delta, expires_at).await
    }
}

/// A scheduler that fails when told to, and otherwise keeps schedules that never fire (a lost
/// schedule, as far as the callback is concerned).
#[derive(Default)]
struct FakeScheduler {
    failing: Mutex<bool>,
    scheduled: Mutex<Vec<String>>,
    /// Jobs handed off ("dispatch now", the sweeper), for the test to run as the dispatch
    /// function would.
    invoked: Mutex<Vec<Job>>,
}

#[async_trait]
impl Scheduler for FakeScheduler {
    async fn schedule(&self, job: &Job, _at: Timestamp) -> Result<(), SchedulerError> {
        if *self.failing.lock().unwrap() {
            return Err(SchedulerError::Unavailable("injected fault".to_owned()));
        }
        self.scheduled.lock().unwrap().push(job.name());
        Ok(())
    }
    async fn reschedule(&self, job: &Job, at: Timestamp) -> Result<(), SchedulerError> {
        self.schedule(job, at).await
    }
    async fn unschedule(&self, callback_id: &str) -> Result<(), SchedulerError> {
        self.scheduled
            .lock()
            .unwrap()
            .retain(|id| id != callback_id);
        Ok(())
    }
}

#[async_trait]
impl DispatchInvoker for FakeScheduler {
    async fn invoke(&self, job: &Job) -> Result<(), SchedulerError> {
        if *self.failing.lock().unwrap() {
            return Err(SchedulerError::Unavailable("injected fault".to_owned()));
        }
        self.invoked.lock().unwrap().push(job.clone());
        Ok(())
    }
}

struct Rig {
    server: TestServer,
    table: Arc<FlakyTable>,
    scheduler: Arc<FakeScheduler>,
    clock: Arc<TestClock>,
}

async fn rig(backend: Backend) -> Rig {
    let (main, keys) = common::tables(backend).await;
    let table = Arc::new(FlakyTable {
        inner: main,
        fail_next: Mutex::new(None),
        fail_next_query: PartitionFault::default(),
    });
    let scheduler = Arc::new(FakeScheduler::default());
    let clock = Arc::new(TestClock::default());
    let config = Config {
        public_base_url: "http://flowline.test".to_owned(),
        allow_private_targets: true,
        request_budget: flowline_core::deadline::HTTP_BUDGET,
        limits: common::UNLIMITED,
    };
    let app: Arc<App> = App::builder(table.clone(), keys, config)
        .scheduler(scheduler.clone())
        .invoker(scheduler.clone())
        .sender(Arc::new(HttpSender::new(true)))
        .clock(clock.clone())
        .signing_key(SIGNING_KEY)
        .build();
    Rig {
        server: TestServer::serve(app, backend, clock.clone()).await,
        table,
        scheduler,
        clock,
    }
}

impl Rig {
    /// A sweep, then what it handed off run as the dispatch function runs it: the due entries
    /// read, and the dispatches that ran.
    async fn sweep(&self) -> (usize, usize) {
        let report = flowline_core::sweeper::sweep(&self.server.app, Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(
            report.handed_off, report.examined,
            "every due entry handed off"
        );
        let jobs = std::mem::take(&mut *self.scheduler.invoked.lock().unwrap());
        let mut dispatched = 0;
        for job in jobs {
            let job = job.as_dispatch().expect("only callbacks are due").clone();
            if dispatch::run_job(&self.server.app, &job)
                .await
                .unwrap()
                .is_some()
            {
                dispatched += 1;
            }
        }
        (report.examined, dispatched)
    }
}

async fn published_flow(org: &Org) -> String {
    let slug = org
        .post("/v1/flows", json!({"name": "Faults", "data": {"a": 1}}))
        .await
        .expect(201)["slug"]
        .clone();
    let slug = slug.as_str().unwrap().to_owned();
    org.post(&format!("/v1/flows/{slug}/publish"), json!({}))
        .await
        .expect(200);
    slug
}

fn minutes_later(clock: &TestClock, minutes: i64) -> String {
    format_timestamp(clock.now() + SignedDuration::from_mins(minutes))
}

async fn status_of(org: &Org, id: &str) -> Value {
    org.get(&format!("/v1/callbacks/{id}"))
        .await
        .expect(200)
        .clone()
}

async fn a_scheduler_failure_on_create_leaves_no_scheduled_callback(backend: Backend) {
    let rig = rig(backend).await;
    let org = rig.server.org().await;
    let flow = published_flow(&org).await;
    *rig.scheduler.failing.lock().unwrap() = true;
    let later = minutes_later(&rig.clock, 10);
    let scheduled = org
        .post(
            "/v1/callbacks",
            json!({"flow": flow, "to_number": "+15557654321", "scheduled_at": later}),
        )
        .await;
    scheduled.expect_error(503, "UPSTREAM_UNAVAILABLE");
    let now = org
        .post(
            "/v1/callbacks",
            json!({"flow": flow, "to_number": "+15557654321"}),
        )
        .await;
    now.expect_error(503, "UPSTREAM_UNAVAILABLE");
    let listed = org.get("/v1/callbacks").await;
    assert!(
        listed.expect(200)["callbacks"]
            .as_array()
            .unwrap()
            .is_empty(),
        "nothing half-made"
    );
    // Past both callbacks' times (and the sweeper's grace), a half-made one would be found.
    rig.clock.advance(SignedDuration::from_mins(20));
    let (examined, _) = rig.sweep().await;
    assert_eq!(examined, 0, "and nothing for the sweeper to find");
}

async fn a_store_failure_after_delivery_leaves_a_callback_the_sweeper_completes(backend: Backend) {
    let rig = rig(backend).await;
    let org = rig.server.org().await;
    let receiver = Receiver::start().await;
    receiver.default_reply(Reply::session("sess_after_fault"));
    org.post(
        "/v1/webhooks",
        json!({"url": receiver.url, "events": ["callback.dispatch"]}),
    )
    .await
    .expect(201);
    let flow = published_flow(&org).await;
    let at = minutes_later(&rig.clock, 1);
    let callback = org
        .post(
            "/v1/callbacks",
            json!({"flow": flow, "to_number": "+15557654321", "scheduled_at": at}),
        )
        .await;
    let id = callback.expect(201)["id"].as_str().unwrap().to_owned();
    let job = DispatchJob {
        callback_id: id.clone(),
        organization_id: org.id.clone(),
    };
    let app = &rig.server.app;

    rig.clock.advance(SignedDuration::from_mins(1));
    rig.table.fail_when_writing_status("dispatched");
    let first = dispatch::run_job(app, &job).await;
    assert!(
        first.is_err(),
        "the invocation fails, so the scheduler would retry it"
    );
    assert!(!rig.table.armed(), "the fault was hit");
    assert_eq!(
        receiver.of_type("callback.dispatch").len(),
        1,
        "delivered before the store failed"
    );
    assert_eq!(status_of(&org, &id).await["status"], "dispatching");

    // A retry while the first dispatcher's lease holds does nothing…
    assert!(dispatch::run_job(app, &job).await.unwrap().is_none());
    // …and once it runs out, the sweeper completes the dispatch.
    rig.clock
        .advance(dispatch::LEASE + SignedDuration::from_secs(1));
    let (_, dispatched) = rig.sweep().await;
    assert_eq!(dispatched, 1);
    let done = status_of(&org, &id).await;
    assert_eq!(done["status"], "dispatched");
    assert_eq!(done["created_session_id"], "sess_after_fault");
    let deliveries = receiver.of_type("callback.dispatch");
    assert_eq!(deliveries.len(), 2);
    assert_eq!(
        deliveries[0].headers["webhook-id"], deliveries[1].headers["webhook-id"],
        "a repeat the receiver can recognise"
    );
}

async fn a_store_failure_taking_the_callback_delivers_nothing_and_the_retry_succeeds(
    backend: Backend,
) {
    let rig = rig(backend).await;
    let org = rig.server.org().await;
    let receiver = Receiver::start().await;
    org.post(
        "/v1/webhooks",
        json!({"url": receiver.url, "events": ["callback.dispatch"]}),
    )
    .await
    .expect(201);
    let flow = published_flow(&org).await;
    let at = minutes_later(&rig.clock, 1);
    let callback = org
        .post(
            "/v1/callbacks",
            json!({"flow": flow, "to_number": "+15557654321", "scheduled_at": at}),
        )
        .await;
    let id = callback.expect(201)["id"].as_str().unwrap().to_owned();
    let job = DispatchJob {
        callback_id: id.clone(),
        organization_id: org.id.clone(),
    };
    rig.clock.advance(SignedDuration::from_mins(1));
    rig.table.fail_when_writing_status("dispatching");
    assert!(dispatch::run_job(&rig.server.app, &job).await.is_err());
    assert!(receiver.deliveries().is_empty());
    assert_eq!(status_of(&org, &id).await["status"], "scheduled");
    let retried = dispatch::run_job(&rig.server.app, &job)
        .await
        .unwrap()
        .expect("dispatched");
    assert_eq!(retried.status.as_str(), "dispatched");
    assert_eq!(receiver.of_type("callback.dispatch").len(), 1);
}

async fn the_sweeper_dispatches_a_callback_whose_schedule_was_lost_once_two_minutes_overdue(
    backend: Backend,
) {
    let rig = rig(backend).await;
    let org = rig.server.org().await;
    let receiver = Receiver::start().await;
    org.post(
        "/v1/webhooks",
        json!({"url": receiver.url, "events": ["callback.dispatch"]}),
    )
    .await
    .expect(201);
    let flow = published_flow(&org).await;
    let at = minutes_later(&rig.clock, 5);
    let callback = org
        .post(
            "/v1/callbacks",
            json!({"flow": flow, "to_number": "+15557654321", "scheduled_at": at}),
        )
        .await;
    let id = callback.expect(201)["id"].as_str().unwrap().to_owned();
    assert_eq!(
        rig.scheduler.scheduled.lock().unwrap().clone(),
        vec![id.clone()],
        "one schedule, which never fires"
    );

    rig.clock.advance(SignedDuration::from_mins(6));
    let (_, early) = rig.sweep().await;
    assert_eq!(early, 0, "a minute late is the scheduler's business");
    rig.clock.advance(SignedDuration::from_mins(2));
    let (_, late) = rig.sweep().await;
    assert_eq!(late, 1);
    assert_eq!(status_of(&org, &id).await["status"], "dispatched");
    let (again, _) = rig.sweep().await;
    assert_eq!(again, 0, "a dispatched callback leaves the sweeper's index");
}

async fn a_job_for_a_missing_or_foreign_callback_is_a_no_op(backend: Backend) {
    let rig = rig(backend).await;
    let owner = rig.server.org().await;
    let stranger = rig.server.org().await;
    let flow = published_flow(&owner).await;
    let at = minutes_later(&rig.clock, 1);
    let callback = owner
        .post(
            "/v1/callbacks",
            json!({"flow": flow, "to_number": "+15557654321", "scheduled_at": at}),
        )
        .await;
    let id = callback.expect(201)["id"].as_str().unwrap().to_owned();
    rig.clock.advance(SignedDuration::from_mins(2));
    let app = &rig.server.app;
    let missing = DispatchJob {
        callback_id: "cb_00000000000000000000000".to_owned(),
        organization_id: owner.id.clone(),
    };
    assert!(dispatch::run_job(app, &missing).await.unwrap().is_none());
    let foreign = DispatchJob {
        callback_id: id.clone(),
        organization_id: stranger.id.clone(),
    };
    assert!(dispatch::run_job(app, &foreign).await.unwrap().is_none());
    assert_eq!(status_of(&owner, &id).await["status"], "scheduled");
}

async fn a_store_failure_before_delivery_hands_the_callback_back_at_once(backend: Backend) {
    let rig = rig(backend).await;
    let org = rig.server.org().await;
    let receiver = Receiver::start().await;
    org.post(
        "/v1/webhooks",
        json!({"url": receiver.url, "events": ["callback.dispatch"]}),
    )
    .await
    .expect(201);
    let flow = published_flow(&org).await;
    let at = minutes_later(&rig.clock, 10);
    let callback = org
        .post(
            "/v1/callbacks",
            json!({"flow": flow, "to_number": "+15557654321", "scheduled_at": at}),
        )
        .await;
    let id = callback.expect(201)["id"].as_str().unwrap().to_owned();
    // Reading the endpoints fails: the route answers 503 and the callback is not left leased.
    rig.table
        .fail_next_query
        .arm(flowline_core::webhooks::endpoints_pk(&org.id));
    org.post(&format!("/v1/callbacks/{id}/dispatch"), json!({}))
        .await
        .expect_error(503, "UPSTREAM_UNAVAILABLE");
    assert!(receiver.deliveries().is_empty());
    assert_eq!(status_of(&org, &id).await["status"], "scheduled");
    let retried = org
        .post(&format!("/v1/callbacks/{id}/dispatch"), json!({}))
        .await;
    assert_eq!(
        retried.expect(200)["status"],
        "dispatched",
        "the retry need not wait out a lease"
    );
}

on_every_store!(
    a_store_failure_before_delivery_hands_the_callback_back_at_once,
    a_scheduler_failure_on_create_leaves_no_scheduled_callback,
    a_store_failure_after_delivery_leaves_a_callback_the_sweeper_completes,
    a_store_failure_taking_the_callback_delivers_nothing_and_the_retry_succeeds,
    the_sweeper_dispatches_a_callback_whose_schedule_was_lost_once_two_minutes_overdue,
    a_job_for_a_missing_or_foreign_callback_is_a_no_op,
);
