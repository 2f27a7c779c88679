//! SPEC rules of §1–§5 pinned at their boundaries, over HTTP on both stores: which endpoint a
//! dispatch goes to and what its answer's `session_id` becomes, Idempotency-Key and page-token
//! lifetimes and scopes, the dispatch lease and the sweeper's threshold, the 1,000-version cap,
//! callback field limits, `callback.failed` and `attempted_at`, item-first-then-schedule when
//! the scheduler fails, archived flows, default page sizes and unknown query parameters.
//!
//! Boundaries are pinned on both sides with the clock frozen at exact instants. Where a rule
//! needs the scheduler to fail, or schedules that never fire so only the sweeper dispatches,
//! the app is assembled here on the store under test with a scheduler of the test's own
//! (`common::faults`).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::clock::TestClock;
use common::faults::{FaultyScheduler, FaultyTable, SchedulerCall};
use common::receiver::{Receiver, Reply};
use common::{Answer, Backend, Org, SIGNING_KEY, TestServer};
use flowline_adapters::webhook_http::HttpSender;
use flowline_core::App;
use flowline_core::callbacks::CallbackStatus;
use flowline_core::callbacks::dispatch;
use flowline_core::config::Config;
use flowline_core::scheduler::DispatchJob;
use flowline_core::time::{Clock, format_timestamp};
use jiff::{SignedDuration, Timestamp};
use reqwest::Method;
use serde_json::{Map, Value, json};

const DAY: SignedDuration = SignedDuration::from_hours(24);
const MILLISECOND: SignedDuration = SignedDuration::from_millis(1);
const LEASE: SignedDuration = SignedDuration::from_mins(5);
const SWEEP_THRESHOLD: SignedDuration = SignedDuration::from_mins(2);
const WAIT: Duration = Duration::from_secs(10);
/// A webhook URL that is never delivered to in the tests that use it (they subscribe it only
/// to an event they never cause).
const QUIET_URL: &str = "http://127.0.0.1:9/hooks";

// --- Helpers ---------------------------------------------------------------------------------

/// A whole second at least a second ahead of `clock`.
fn whole_second_ahead(clock: &TestClock) -> Timestamp {
    Timestamp::from_second(clock.now().as_second() + 2).expect("a timestamp")
}

fn timestamp(value: &Value) -> Timestamp {
    value
        .as_str()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| panic!("{value} is not a timestamp"))
}

/// A flow with an ACTIVE version, ready for callbacks.
async fn published_flow(org: &Org) -> String {
    let created = org
        .post(
            "/v1/flows",
            json!({"name": "Spec rules", "data": {"greeting": "Hello"}}),
        )
        .await;
    let slug = created.expect(201)["slug"].as_str().unwrap().to_owned();
    org.post(&format!("/v1/flows/{slug}/publish"), json!({}))
        .await
        .expect(200);
    slug
}

async fn subscribe(org: &Org, url: &str, events: &[&str]) -> Value {
    org.post("/v1/webhooks", json!({"url": url, "events": events}))
        .await
        .expect(201)
        .clone()
}

/// A scheduled callback of `flow` at `at`; answers its id.
async fn schedule_at(org: &Org, flow: &str, at: Timestamp) -> String {
    let body =
        json!({"flow": flow, "to_number": "+15557654321", "scheduled_at": format_timestamp(at)});
    org.post("/v1/callbacks", body).await.expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn callback_of(org: &Org, id: &str) -> Value {
    org.get(&format!("/v1/callbacks/{id}"))
        .await
        .expect(200)
        .clone()
}

async fn dispatch_now(org: &Org, id: &str) -> Value {
    org.post(&format!("/v1/callbacks/{id}/dispatch"), json!({}))
        .await
        .expect(200)
        .clone()
}

fn items<'a>(page: &'a Value, plural: &str) -> &'a Vec<Value> {
    page[plural]
        .as_array()
        .unwrap_or_else(|| panic!("{plural} in {page}"))
}

fn reply(status: u16, body: &str) -> Reply {
    Reply {
        status,
        body: body.to_owned(),
        delay: Duration::ZERO,
    }
}

/// A generated session id: `sess_` and 20+ base62 characters.
fn is_generated_session_id(value: &Value) -> bool {
    value.as_str().is_some_and(|id| {
        id.strip_prefix("sess_")
            .is_some_and(|rest| rest.len() >= 20 && rest.chars().all(|c| c.is_ascii_alphanumeric()))
    })
}

/// What a sweep came to: the due entries it read, and the dispatches that ran from them.
struct Swept {
    examined: usize,
    dispatched: usize,
}

/// The app on the store under test with a scheduler that never fires (and fails on cue) and a
/// table that fails on cue, served over HTTP on a clock the test moves.
struct FaultRig {
    server: TestServer,
    table: Arc<FaultyTable>,
    scheduler: Arc<FaultyScheduler>,
}

impl FaultRig {
    async fn start(backend: Backend) -> Self {
        let (main, keys) = common::tables(backend).await;
        let table = Arc::new(FaultyTable::new(main));
        let scheduler = Arc::new(FaultyScheduler::default());
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
        Self {
            server: TestServer::serve(app, backend, clock).await,
            table,
            scheduler,
        }
    }

    fn clock(&self) -> &TestClock {
        &self.server.clock
    }

    /// A sweep, then what it handed off run as the dispatch function runs it.
    async fn sweep(&self) -> Swept {
        let report = flowline_core::sweeper::sweep(&self.server.app, Duration::from_secs(60))
            .await
            .expect("the sweep runs");
        let mut dispatched = 0;
        for job in self.scheduler.take_invoked() {
            let job = job.as_dispatch().expect("only dispatches are due").clone();
            let done = dispatch::run_job(&self.server.app, &job)
                .await
                .expect("the dispatch runs");
            dispatched += usize::from(done.is_some());
        }
        assert_eq!(
            report.handed_off, report.examined,
            "every due entry handed off"
        );
        Swept {
            examined: report.examined,
            dispatched,
        }
    }
}

// --- Dispatch: failover and session ids (SPEC §4 Dispatch step 3) ----------------------------

async fn dispatch_tries_the_endpoints_oldest_first_until_one_answers_2xx(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let (oldest, middle, newest) = (
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    );
    oldest.default_reply(Reply::status(503));
    middle.default_reply(Reply::session("sess_from_middle"));
    newest.default_reply(Reply::session("sess_from_newest"));
    for receiver in [&oldest, &middle, &newest] {
        subscribe(&org, &receiver.url, &["callback.dispatch"]).await;
        // Registered a second apart: their age is unambiguous.
        server.clock.advance(SignedDuration::from_secs(1));
    }
    let flow = published_flow(&org).await;
    let id = schedule_at(&org, &flow, server.clock.now() + DAY).await;

    let dispatched = dispatch_now(&org, &id).await;
    assert_eq!(dispatched["status"], "dispatched");
    assert_eq!(dispatched["created_session_id"], "sess_from_middle");
    let (first, second) = (
        oldest.of_type("callback.dispatch"),
        middle.of_type("callback.dispatch"),
    );
    assert_eq!(first.len(), 3, "the oldest, all its tries");
    assert_eq!(second.len(), 1, "then the next one, which answers");
    assert!(
        newest.of_type("callback.dispatch").is_empty(),
        "nothing after a 2xx"
    );
    assert!(first[2].at <= second[0].at, "in that order");
    assert_eq!(
        first[0].headers["webhook-id"], second[0].headers["webhook-id"],
        "one event, tried on each endpoint"
    );
}

async fn a_final_refusal_fails_over_at_once_and_the_last_endpoint_names_the_failure(
    backend: Backend,
) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let (older, newer) = (Receiver::start().await, Receiver::start().await);
    older.default_reply(Reply::status(404));
    newer.default_reply(Reply::status(503));
    subscribe(&org, &older.url, &["callback.dispatch"]).await;
    server.clock.advance(SignedDuration::from_secs(1));
    subscribe(&org, &newer.url, &["callback.dispatch"]).await;
    let flow = published_flow(&org).await;
    let id = schedule_at(&org, &flow, server.clock.now() + DAY).await;

    let failed = dispatch_now(&org, &id).await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(
        failed["failure_cause"],
        format!("WEBHOOK_FAILED: 503 from {}", newer.url)
    );
    assert_eq!(older.of_type("callback.dispatch").len(), 1, "404 is final");
    assert_eq!(newer.of_type("callback.dispatch").len(), 3);
}

async fn a_session_id_of_up_to_255_characters_becomes_created_session_id(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let receiver = Receiver::start().await;
    subscribe(&org, &receiver.url, &["callback.dispatch"]).await;
    let flow = published_flow(&org).await;
    for session_id in ["s".to_owned(), "x".repeat(255)] {
        let id = schedule_at(&org, &flow, server.clock.now() + DAY).await;
        receiver.script([Reply::session(&session_id)]);
        let dispatched = dispatch_now(&org, &id).await;
        assert_eq!(dispatched["created_session_id"], session_id.as_str());
        assert_eq!(
            callback_of(&org, &id).await["created_session_id"],
            session_id
        );
    }
}

async fn a_session_id_of_255_multibyte_characters_becomes_created_session_id(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let receiver = Receiver::start().await;
    subscribe(&org, &receiver.url, &["callback.dispatch"]).await;
    let flow = published_flow(&org).await;
    // 255 characters, 510 bytes in UTF-8.
    let session_id = "é".repeat(255);
    let id = schedule_at(&org, &flow, server.clock.now() + DAY).await;
    receiver.script([Reply::session(&session_id)]);
    let dispatched = dispatch_now(&org, &id).await;
    assert_eq!(dispatched["created_session_id"], session_id.as_str());
}

async fn a_longer_or_non_string_session_id_is_replaced_by_a_generated_one(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let receiver = Receiver::start().await;
    subscribe(&org, &receiver.url, &["callback.dispatch"]).await;
    let flow = published_flow(&org).await;
    let answers = [
        json!({"session_id": "x".repeat(256)}).to_string(),
        json!({"session_id": 42}).to_string(),
        json!({"session_id": null}).to_string(),
        json!({"session_id": {"id": "sess_nested"}}).to_string(),
        json!({"session_id": ["sess_listed"]}).to_string(),
        json!({"other": "sess_elsewhere"}).to_string(),
        json!(["sess_in_a_list"]).to_string(),
        "sess_as_plain_text".to_owned(),
    ];
    for answer in answers {
        let id = schedule_at(&org, &flow, server.clock.now() + DAY).await;
        receiver.script([reply(200, &answer)]);
        let dispatched = dispatch_now(&org, &id).await;
        assert_eq!(dispatched["status"], "dispatched", "{answer}");
        assert!(
            is_generated_session_id(&dispatched["created_session_id"]),
            "answer {answer} gave {}",
            dispatched["created_session_id"]
        );
    }
}

// --- Idempotency-Key (SPEC §1) ---------------------------------------------------------------

/// Creates a flow with a key, first used `sub_second` after a whole second (the clock frozen
/// there), then checks the key replays at 24 h − 1 ms and creates anew at 24 h.
async fn check_idempotency_lifetime(server: &TestServer, sub_second: SignedDuration) {
    let org = server.org().await;
    let first_use = whole_second_ahead(&server.clock) + sub_second;
    let body = json!({"name": "Created once a day"});
    let create = || {
        org.call(Method::POST, "/v1/flows")
            .header("idempotency-key", "nightly-import")
            .json(&body)
            .send()
    };
    server.clock.freeze_at(first_use);
    let first = create().await;
    let slug = first.expect(201)["slug"].clone();
    assert_eq!(first.header("idempotent-replayed"), None);

    server.clock.freeze_at(first_use + DAY - MILLISECOND);
    let replayed = create().await;
    assert_eq!(
        replayed.expect(201)["slug"],
        slug,
        "the same flow, just inside 24 h"
    );
    assert_eq!(replayed.header("idempotent-replayed"), Some("true"));

    server.clock.freeze_at(first_use + DAY);
    let anew = create().await;
    assert_ne!(anew.expect(201)["slug"], slug, "a new flow at 24 h");
    assert_eq!(anew.header("idempotent-replayed"), None);
    let listed = org.get("/v1/flows").await;
    assert_eq!(items(listed.expect(200), "flows").len(), 2);
}

async fn an_idempotency_key_replays_until_24_hours_and_creates_anew_at_24_hours(backend: Backend) {
    let server = TestServer::start(backend).await;
    check_idempotency_lifetime(&server, SignedDuration::ZERO).await;
}

async fn an_idempotency_key_first_used_mid_second_still_replays_for_24_hours(backend: Backend) {
    let server = TestServer::start(backend).await;
    check_idempotency_lifetime(&server, SignedDuration::from_millis(500)).await;
}

async fn an_idempotency_key_is_scoped_to_the_route(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let flow = published_flow(&org).await;
    let at = format_timestamp(server.clock.now() + DAY);
    let creates = [
        ("/v1/flows".to_owned(), json!({"name": "Keyed"}), "slug"),
        (
            "/v1/webhooks".to_owned(),
            json!({"url": QUIET_URL, "events": ["callback.cancelled"]}),
            "id",
        ),
        (
            "/v1/callbacks".to_owned(),
            json!({"flow": flow, "to_number": "+15557654321", "scheduled_at": at}),
            "id",
        ),
        (
            format!("/v1/flows/{flow}/callbacks"),
            json!({"description": "Keyed"}),
            "id",
        ),
    ];
    let send = |path: &str, body: &Value| {
        org.call(Method::POST, path)
            .header("idempotency-key", "one-key-for-everything")
            .json(body)
            .send()
    };
    let mut created = Vec::new();
    for (path, body, id_field) in &creates {
        let first = send(path, body).await;
        assert_eq!(
            first.header("idempotent-replayed"),
            None,
            "{path}: a create of its own"
        );
        created.push(first.expect(201)[*id_field].clone());
    }
    for ((path, body, id_field), id) in creates.iter().zip(&created) {
        let again = send(path, body).await;
        assert_eq!(&again.expect(201)[*id_field], id, "{path}: its own replay");
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
    }
}

async fn an_idempotency_key_is_scoped_to_the_organization(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (one, other) = (server.org().await, server.org().await);
    for (path, body, id_field) in [
        ("/v1/flows", json!({"name": "Same body"}), "slug"),
        (
            "/v1/webhooks",
            json!({"url": QUIET_URL, "events": ["callback.cancelled"]}),
            "id",
        ),
    ] {
        let mut ids = Vec::new();
        for org in [&one, &other] {
            let answer = org
                .call(Method::POST, path)
                .header("idempotency-key", "shared-by-chance")
                .json(&body)
                .send()
                .await;
            assert_eq!(answer.header("idempotent-replayed"), None, "{path}");
            ids.push(answer.expect(201)[id_field].clone());
            let own = org
                .get(&format!("{path}/{}", ids.last().unwrap().as_str().unwrap()))
                .await;
            own.expect(200);
        }
        assert_ne!(ids[0], ids[1], "{path}: one resource per organization");
    }
}

// --- Page tokens (SPEC §1) -------------------------------------------------------------------

/// Lists with two items each and a first page of one, issued `sub_second` after a whole second
/// (the clock frozen there); checks each token works at 24 h − 1 ms and is refused as expired
/// at 24 h.
async fn check_page_token_lifetime(server: &TestServer, sub_second: SignedDuration) {
    let org = server.org().await;
    let flow = published_flow(&org).await;
    org.post("/v1/flows", json!({"name": "Second"}))
        .await
        .expect(201);
    for _ in 0..2 {
        subscribe(&org, QUIET_URL, &["callback.cancelled"]).await;
        // A month ahead: never due while the test moves the clock a day.
        schedule_at(&org, &flow, server.clock.now() + DAY * 30).await;
        org.post(&format!("/v1/flows/{flow}/callbacks"), json!({}))
            .await
            .expect(201);
    }
    let lists = [
        ("/v1/flows?page_size=1".to_owned(), "flows"),
        ("/v1/webhooks?limit=1".to_owned(), "webhooks"),
        ("/v1/callbacks?limit=1".to_owned(), "callbacks"),
        (format!("/v1/flows/{flow}/callbacks?limit=1"), "callbacks"),
        (
            format!("/v1/flows/{flow}/versions?page_size=1"),
            "flow_versions",
        ),
    ];
    // Versions: a second one, so that list has two as well.
    org.post(&format!("/v1/flows/{flow}/versions"), json!({}))
        .await
        .expect(201);
    let issued = whole_second_ahead(&server.clock) + sub_second;
    server.clock.freeze_at(issued);
    let mut next_pages = Vec::new();
    for (path, plural) in &lists {
        let first = org.get(path).await;
        let token = first.expect(200)["next_page_token"]
            .as_str()
            .unwrap_or_else(|| panic!("{path}: a token"))
            .to_owned();
        next_pages.push((format!("{path}&next_page_token={token}"), *plural));
    }

    server.clock.freeze_at(issued + DAY - MILLISECOND);
    for (path, plural) in &next_pages {
        let page = org.get(path).await;
        assert_eq!(
            items(page.expect(200), plural).len(),
            1,
            "{path}: valid just inside 24 h"
        );
    }

    server.clock.freeze_at(issued + DAY);
    for (path, _) in &next_pages {
        let expired = org.get(path).await;
        let body = expired.expect_error(400, "INVALID_PAGE_TOKEN");
        assert!(
            body["error"].as_str().unwrap().contains("expired"),
            "{path}: the message says it expired: {body}"
        );
    }
}

async fn a_page_token_is_valid_until_24_hours_and_expired_at_24_hours(backend: Backend) {
    let server = TestServer::start(backend).await;
    check_page_token_lifetime(&server, SignedDuration::ZERO).await;
}

async fn a_page_token_issued_mid_second_stays_valid_for_24_hours(backend: Backend) {
    let server = TestServer::start(backend).await;
    check_page_token_lifetime(&server, SignedDuration::from_millis(500)).await;
}

// --- The dispatch lease and the sweeper (SPEC §4 Dispatch step 1, the sweeper) ---------------

/// A callback due at a whole second a minute ahead, whose dispatch delivered and then could not
/// record its end: left `dispatching`, leased. Answers its job and when it was taken.
async fn leased_callback(
    rig: &FaultRig,
    org: &Org,
    receiver: &Receiver,
) -> (DispatchJob, Timestamp) {
    subscribe(org, &receiver.url, &["callback.dispatch"]).await;
    let flow = published_flow(org).await;
    let due = whole_second_ahead(rig.clock()) + SignedDuration::from_mins(1);
    let id = schedule_at(org, &flow, due).await;
    let job = DispatchJob {
        callback_id: id.clone(),
        organization_id: org.id.clone(),
    };
    rig.clock().freeze_at(due);
    rig.table.fail_next_write_of_status("dispatched");
    assert!(
        dispatch::run_job(&rig.server.app, &job).await.is_err(),
        "the end of the dispatch is not recorded"
    );
    assert!(!rig.table.fault_pending(), "the fault was hit");
    let leased = callback_of(org, &id).await;
    assert_eq!(leased["status"], "dispatching");
    assert_eq!(timestamp(&leased["attempted_at"]), due);
    assert_eq!(receiver.of_type("callback.dispatch").len(), 1);
    (job, due)
}

async fn a_dispatching_callback_is_taken_again_exactly_when_its_5_minute_lease_runs_out(
    backend: Backend,
) {
    let rig = FaultRig::start(backend).await;
    let org = rig.server.org().await;
    let receiver = Receiver::start().await;
    receiver.default_reply(Reply::session("sess_taken_over"));
    let (job, taken_at) = leased_callback(&rig, &org, &receiver).await;
    let app = &rig.server.app;

    rig.clock().freeze_at(taken_at + LEASE - MILLISECOND);
    assert!(
        dispatch::run_job(app, &job).await.unwrap().is_none(),
        "the lease still holds"
    );
    assert_eq!(receiver.of_type("callback.dispatch").len(), 1);
    assert_eq!(
        callback_of(&org, &job.callback_id).await["status"],
        "dispatching"
    );

    rig.clock().freeze_at(taken_at + LEASE);
    let taken = dispatch::run_job(app, &job)
        .await
        .unwrap()
        .expect("taken again once the lease ran out");
    assert_eq!(taken.status, CallbackStatus::Dispatched);
    assert_eq!(taken.attempted_at, Some(taken_at + LEASE));
    assert_eq!(receiver.of_type("callback.dispatch").len(), 2);
}

async fn the_sweeper_takes_over_a_dispatch_whose_lease_has_run_out(backend: Backend) {
    let rig = FaultRig::start(backend).await;
    let org = rig.server.org().await;
    let receiver = Receiver::start().await;
    let (job, taken_at) = leased_callback(&rig, &org, &receiver).await;

    rig.clock().freeze_at(taken_at + LEASE - MILLISECOND);
    assert_eq!(rig.sweep().await.dispatched, 0, "the lease still holds");
    assert_eq!(
        callback_of(&org, &job.callback_id).await["status"],
        "dispatching"
    );

    rig.clock().freeze_at(taken_at + LEASE + MILLISECOND);
    assert_eq!(rig.sweep().await.dispatched, 1);
    assert_eq!(
        callback_of(&org, &job.callback_id).await["status"],
        "dispatched"
    );
    assert_eq!(receiver.of_type("callback.dispatch").len(), 2);
}

/// A callback due at `due` whose schedule never fires.
async fn callback_with_a_lost_schedule(
    rig: &FaultRig,
    org: &Org,
    receiver: &Receiver,
) -> (String, Timestamp) {
    subscribe(org, &receiver.url, &["callback.dispatch"]).await;
    let flow = published_flow(org).await;
    // Not on a whole second: the threshold is kept to the millisecond.
    let due = whole_second_ahead(rig.clock()) + SignedDuration::from_millis(60_250);
    let id = schedule_at(org, &flow, due).await;
    assert!(rig.scheduler.schedule_of(&id).is_some());
    (id, due)
}

async fn the_sweeper_leaves_a_callback_under_2_minutes_overdue_and_dispatches_it_just_after(
    backend: Backend,
) {
    let rig = FaultRig::start(backend).await;
    let org = rig.server.org().await;
    let receiver = Receiver::start().await;
    let (id, due) = callback_with_a_lost_schedule(&rig, &org, &receiver).await;

    rig.clock().freeze_at(due + SWEEP_THRESHOLD - MILLISECOND);
    let early = rig.sweep().await;
    assert_eq!((early.examined, early.dispatched), (0, 0));
    assert_eq!(callback_of(&org, &id).await["status"], "scheduled");

    rig.clock().freeze_at(due + SWEEP_THRESHOLD + MILLISECOND);
    assert_eq!(rig.sweep().await.dispatched, 1);
    assert_eq!(callback_of(&org, &id).await["status"], "dispatched");
    assert_eq!(receiver.of_type("callback.dispatch").len(), 1);
}

async fn the_sweeper_leaves_a_callback_exactly_2_minutes_overdue(backend: Backend) {
    let rig = FaultRig::start(backend).await;
    let org = rig.server.org().await;
    let receiver = Receiver::start().await;
    let (id, due) = callback_with_a_lost_schedule(&rig, &org, &receiver).await;

    // "More than 2 minutes overdue": exactly 2 minutes is not yet the sweeper's.
    rig.clock().freeze_at(due + SWEEP_THRESHOLD);
    assert_eq!(rig.sweep().await.dispatched, 0);
    assert_eq!(callback_of(&org, &id).await["status"], "scheduled");
    assert!(receiver.of_type("callback.dispatch").is_empty());
}

// --- Item first, schedule second (SPEC §4, the schedule) -------------------------------------

async fn a_reschedule_the_scheduler_fails_is_kept_and_the_sweeper_dispatches_it_at_its_new_time(
    backend: Backend,
) {
    let rig = FaultRig::start(backend).await;
    let org = rig.server.org().await;
    let receiver = Receiver::start().await;
    subscribe(&org, &receiver.url, &["callback.dispatch"]).await;
    let flow = published_flow(&org).await;
    let base = whole_second_ahead(rig.clock());
    let (old_time, new_time) = (
        base + SignedDuration::from_mins(10),
        base + SignedDuration::from_mins(20),
    );
    let id = schedule_at(&org, &flow, old_time).await;

    rig.scheduler.fail(SchedulerCall::Reschedule);
    let moved = org
        .patch(
            &format!("/v1/callbacks/{id}"),
            json!({"scheduled_at": format_timestamp(new_time)}),
        )
        .await;
    assert_eq!(
        timestamp(&moved.expect(200)["scheduled_at"]),
        new_time,
        "the change is committed and answered"
    );
    assert_eq!(
        timestamp(&callback_of(&org, &id).await["scheduled_at"]),
        new_time
    );
    let (job, stale_at) = rig.scheduler.schedule_of(&id).expect("the old schedule");
    assert_eq!(stale_at, old_time, "the schedule did not move");

    // The stale schedule fires at the old time: the callback is not due, nothing happens.
    rig.clock().freeze_at(old_time);
    assert!(
        dispatch::run_job(&rig.server.app, job.as_dispatch().expect("a dispatch"))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(rig.sweep().await.dispatched, 0);
    assert!(receiver.of_type("callback.dispatch").is_empty());

    // No schedule fires at the new time; the sweeper dispatches it once it is overdue.
    rig.clock()
        .freeze_at(new_time + SWEEP_THRESHOLD - MILLISECOND);
    assert_eq!(rig.sweep().await.dispatched, 0);
    rig.clock()
        .freeze_at(new_time + SWEEP_THRESHOLD + MILLISECOND);
    assert_eq!(rig.sweep().await.dispatched, 1);
    let done = callback_of(&org, &id).await;
    assert_eq!(done["status"], "dispatched");
    assert_eq!(timestamp(&done["scheduled_at"]), new_time);
    assert_eq!(receiver.of_type("callback.dispatch").len(), 1);
}

async fn a_cancel_whose_schedule_cannot_be_deleted_is_kept_and_the_schedule_does_nothing(
    backend: Backend,
) {
    let rig = FaultRig::start(backend).await;
    let org = rig.server.org().await;
    let receiver = Receiver::start().await;
    subscribe(&org, &receiver.url, &["callback.dispatch"]).await;
    let flow = published_flow(&org).await;
    let due = whole_second_ahead(rig.clock()) + SignedDuration::from_mins(10);
    let id = schedule_at(&org, &flow, due).await;

    rig.scheduler.fail(SchedulerCall::Unschedule);
    let cancelled = org
        .post(
            &format!("/v1/callbacks/{id}/cancel"),
            json!({"reason": "customer called in"}),
        )
        .await;
    assert_eq!(cancelled.expect(200)["status"], "cancelled");
    assert_eq!(callback_of(&org, &id).await["status"], "cancelled");
    let (job, _) = rig
        .scheduler
        .schedule_of(&id)
        .expect("the schedule is still there");

    rig.clock().freeze_at(due);
    assert!(
        dispatch::run_job(&rig.server.app, job.as_dispatch().expect("a dispatch"))
            .await
            .unwrap()
            .is_none()
    );
    rig.clock().freeze_at(due + SignedDuration::from_mins(10));
    assert_eq!(rig.sweep().await.dispatched, 0);
    assert_eq!(callback_of(&org, &id).await["status"], "cancelled");
    assert!(receiver.of_type("callback.dispatch").is_empty());
}

// --- Flows: 1,000 versions (SPEC §2 / the head item's limit) ---------------------------------

async fn a_flow_takes_1000_versions_and_refuses_the_1001st(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let slug = published_flow(&org).await;
    for version in 2..=1000 {
        let draft = org
            .post(&format!("/v1/flows/{slug}/versions"), json!({}))
            .await;
        assert_eq!(draft.expect(201)["version"], version);
        org.post(&format!("/v1/flows/{slug}/publish"), json!({}))
            .await
            .expect(200);
    }
    let flow = org.get(&format!("/v1/flows/{slug}")).await;
    let flow = flow.expect(200);
    assert_eq!(flow["version"], 1000);
    assert_eq!(flow["flow_versions"].as_array().unwrap().len(), 1000);

    let refused = org
        .post(&format!("/v1/flows/{slug}/versions"), json!({}))
        .await;
    let body = refused.expect_error(409, "CONFLICT");
    assert!(body["error"].as_str().unwrap().contains("1000"), "{body}");
    let after = org.get(&format!("/v1/flows/{slug}")).await;
    assert_eq!(
        after.expect(200)["flow_versions"].as_array().unwrap().len(),
        1000
    );
}

// --- Callback field limits (SPEC §4) ---------------------------------------------------------

/// A JSON object whose compact encoding is exactly `bytes` long.
fn object_of_bytes(bytes: usize) -> Value {
    let overhead = r#"{"k":""}"#.len();
    let value = json!({"k": "x".repeat(bytes - overhead)});
    assert_eq!(serde_json::to_vec(&value).unwrap().len(), bytes);
    value
}

/// Creates a callback with `extra` fields; answers the raw answer.
async fn create_with(server: &TestServer, org: &Org, flow: &str, extra: Value) -> Answer {
    let mut body = json!({
        "flow": flow,
        "to_number": "+15557654321",
        "scheduled_at": format_timestamp(server.clock.now() + DAY),
    });
    for (name, value) in extra.as_object().unwrap() {
        body[name] = value.clone();
    }
    org.post("/v1/callbacks", body).await
}

/// Checks that `accepted` is taken on create and on PATCH, and `refused` refused on both with
/// a validation error naming `field`.
async fn check_limit(
    server: &TestServer,
    org: &Org,
    flow: &str,
    field: &str,
    accepted: Value,
    refused: Value,
) {
    let created = create_with(server, org, flow, json!({ field: accepted })).await;
    assert_eq!(created.expect(201)[field], accepted, "{field} on create");
    let id = created.body["id"].as_str().unwrap().to_owned();

    let answer = create_with(server, org, flow, json!({ field: refused })).await;
    answer.expect_error(400, "VALIDATION_ERROR");
    assert_eq!(answer.detail_fields(), [field], "{field} on create");

    let other = create_with(server, org, flow, json!({})).await;
    let other_id = other.expect(201)["id"].as_str().unwrap().to_owned();
    let patched = org
        .patch(
            &format!("/v1/callbacks/{other_id}"),
            json!({ field: accepted }),
        )
        .await;
    assert_eq!(patched.expect(200)[field], accepted, "{field} on PATCH");
    let answer = org
        .patch(&format!("/v1/callbacks/{id}"), json!({ field: refused }))
        .await;
    answer.expect_error(400, "VALIDATION_ERROR");
    assert_eq!(answer.detail_fields(), [field], "{field} on PATCH");
    assert_eq!(callback_of(org, &id).await[field], accepted, "unchanged");
}

async fn instructions_and_summary_take_4000_characters_and_refuse_4001(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let flow = published_flow(&org).await;
    // Characters, not bytes: each is two bytes in UTF-8.
    for field in ["instructions", "summary"] {
        check_limit(
            &server,
            &org,
            &flow,
            field,
            json!("é".repeat(4000)),
            json!("é".repeat(4001)),
        )
        .await;
    }
}

async fn metadata_takes_50_keys_and_refuses_51(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let flow = published_flow(&org).await;
    let keys = |count: usize| -> Value {
        Value::Object(
            (0..count)
                .map(|i| (format!("key_{i}"), json!(i)))
                .collect::<Map<String, Value>>(),
        )
    };
    check_limit(&server, &org, &flow, "metadata", keys(50), keys(51)).await;
}

async fn metadata_and_pipeline_config_take_16_kib_and_refuse_a_byte_more(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let flow = published_flow(&org).await;
    for field in ["metadata", "pipeline_config"] {
        check_limit(
            &server,
            &org,
            &flow,
            field,
            object_of_bytes(16 * 1024),
            object_of_bytes(16 * 1024 + 1),
        )
        .await;
    }
}

async fn scheduled_at_may_be_365_days_ahead_and_not_a_millisecond_more(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let flow = published_flow(&org).await;
    let now = whole_second_ahead(&server.clock);
    server.clock.freeze_at(now);
    let limit = now + DAY * 365;
    let body = |at: Timestamp| json!({"flow": flow, "to_number": "+15557654321", "scheduled_at": format_timestamp(at)});
    let accepted = org.post("/v1/callbacks", body(limit)).await;
    let id = accepted.expect(201)["id"].as_str().unwrap().to_owned();
    assert_eq!(timestamp(&accepted.body["scheduled_at"]), limit);
    let refused = org.post("/v1/callbacks", body(limit + MILLISECOND)).await;
    refused.expect_error(400, "VALIDATION_ERROR");
    assert_eq!(refused.detail_fields(), ["scheduled_at"]);

    // The same bound when rescheduling.
    let path = format!("/v1/callbacks/{id}");
    let refused = org
        .patch(
            &path,
            json!({"scheduled_at": format_timestamp(limit + MILLISECOND)}),
        )
        .await;
    refused.expect_error(400, "VALIDATION_ERROR");
    assert_eq!(refused.detail_fields(), ["scheduled_at"]);
    let earlier = org
        .patch(&path, json!({"scheduled_at": format_timestamp(now + DAY)}))
        .await;
    earlier.expect(200);
    let back = org
        .patch(&path, json!({"scheduled_at": format_timestamp(limit)}))
        .await;
    assert_eq!(timestamp(&back.expect(200)["scheduled_at"]), limit);
}

// --- callback.failed and attempted_at (SPEC §4 Dispatch steps 4–5, the state machine) --------

async fn a_failed_dispatch_emits_callback_failed_with_the_callback(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let receiver = Receiver::start().await;
    receiver.default_reply(Reply::status(400));
    subscribe(
        &org,
        &receiver.url,
        &[
            "callback.dispatch",
            "callback.dispatched",
            "callback.failed",
        ],
    )
    .await;
    let flow = published_flow(&org).await;
    let id = schedule_at(&org, &flow, server.clock.now() + DAY).await;

    let failed = dispatch_now(&org, &id).await;
    assert_eq!(failed["status"], "failed");
    let events = receiver.wait_for("callback.failed", 1, WAIT).await;
    assert_eq!(events.len(), 1);
    let sent = &events[0].json["data"]["callback"];
    assert_eq!(sent["id"], id.as_str());
    assert_eq!(sent["status"], "failed");
    assert_eq!(
        sent["failure_cause"],
        format!("WEBHOOK_FAILED: 400 from {}", receiver.url)
    );
    assert_eq!(
        sent,
        &callback_of(&org, &id).await,
        "the callback as it ended"
    );
    assert!(receiver.of_type("callback.dispatched").is_empty());
}

async fn a_callback_without_a_dispatch_target_fails_attempted_with_callback_failed(
    backend: Backend,
) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let receiver = Receiver::start().await;
    subscribe(&org, &receiver.url, &["callback.failed"]).await;
    let flow = published_flow(&org).await;
    let id = schedule_at(&org, &flow, server.clock.now() + DAY).await;
    let started = whole_second_ahead(&server.clock);
    server.clock.freeze_at(started);

    let failed = dispatch_now(&org, &id).await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["failure_cause"], "NO_DISPATCH_TARGET");
    assert_eq!(timestamp(&failed["attempted_at"]), started);
    assert!(failed["dispatched_at"].is_null());
    let events = receiver.wait_for("callback.failed", 1, WAIT).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].json["data"]["callback"], failed);
}

async fn the_dispatch_event_carries_the_callback_already_attempted(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let receiver = Receiver::start().await;
    subscribe(&org, &receiver.url, &["callback.dispatch"]).await;
    let flow = published_flow(&org).await;
    let id = schedule_at(&org, &flow, server.clock.now() + DAY).await;
    let started = whole_second_ahead(&server.clock);
    server.clock.freeze_at(started);

    let dispatched = dispatch_now(&org, &id).await;
    let delivered = &receiver.of_type("callback.dispatch")[0].json["data"]["callback"];
    assert_eq!(delivered["status"], "dispatching");
    assert_eq!(timestamp(&delivered["attempted_at"]), started);
    assert!(delivered["dispatched_at"].is_null());
    assert_eq!(dispatched["status"], "dispatched");
    assert_eq!(timestamp(&dispatched["attempted_at"]), started);
    assert!(timestamp(&dispatched["dispatched_at"]) >= started);
}

// --- Archived flows (SPEC §4 POST /v1/callbacks) ---------------------------------------------

async fn creating_a_callback_on_an_archived_flow_is_a_conflict(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let flow = published_flow(&org).await;
    org.delete(&format!("/v1/flows/{flow}")).await.expect(200);
    let at = format_timestamp(server.clock.now() + DAY);
    for body in [
        json!({"flow": flow, "to_number": "+15557654321", "scheduled_at": at}),
        json!({"flow": flow, "to_number": "+15557654321"}),
    ] {
        org.post("/v1/callbacks", body)
            .await
            .expect_error(409, "CONFLICT");
    }
    let listed = org.get("/v1/callbacks").await;
    assert!(items(listed.expect(200), "callbacks").is_empty());
}

// --- Default page sizes (SPEC §2–§5) ---------------------------------------------------------

/// With `size` items the default page holds them all and no token; with one more, `size`
/// and a token to a last page of one.
async fn check_default_page(
    org: &Org,
    path: &str,
    plural: &str,
    size: usize,
    mut add: impl AsyncFnMut(),
) {
    for _ in 0..size {
        add().await;
    }
    let full = org.get(path).await;
    let full = full.expect(200);
    assert_eq!(items(full, plural).len(), size, "{path}");
    assert!(full.get("next_page_token").is_none(), "{path}: {full}");

    add().await;
    let first = org.get(path).await;
    let first = first.expect(200).clone();
    assert_eq!(items(&first, plural).len(), size, "{path}");
    let token = first["next_page_token"].as_str().expect("a token");
    let rest = org.get(&format!("{path}?next_page_token={token}")).await;
    let rest = rest.expect(200);
    assert_eq!(items(rest, plural).len(), 1, "{path}");
    assert!(rest.get("next_page_token").is_none());
}

async fn callback_lists_page_25_by_default(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let flow = published_flow(&org).await;
    let at = server.clock.now() + DAY * 30;
    check_default_page(&org, "/v1/callbacks", "callbacks", 25, async || {
        schedule_at(&org, &flow, at).await;
    })
    .await;
}

/// An organization has at most 20 endpoints (SPEC §8), so the default page of 25 holds them
/// all; a smaller `limit` pages them.
async fn webhook_lists_page_25_by_default(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    for _ in 0..20 {
        subscribe(&org, QUIET_URL, &["callback.cancelled"]).await;
    }
    let full = org.get("/v1/webhooks").await;
    let full = full.expect(200);
    assert_eq!(items(full, "webhooks").len(), 20);
    assert!(full.get("next_page_token").is_none(), "{full}");
    let first = org.get("/v1/webhooks?limit=15").await;
    let first = first.expect(200).clone();
    assert_eq!(items(&first, "webhooks").len(), 15);
    let token = first["next_page_token"].as_str().expect("a token");
    let rest = org
        .get(&format!("/v1/webhooks?limit=15&next_page_token={token}"))
        .await;
    assert_eq!(items(rest.expect(200), "webhooks").len(), 5);
}

async fn trigger_lists_page_25_by_default(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let flow = published_flow(&org).await;
    let path = format!("/v1/flows/{flow}/callbacks");
    check_default_page(&org, &path, "callbacks", 25, async || {
        org.post(&path, json!({})).await.expect(201);
    })
    .await;
}

async fn flow_lists_page_30_by_default(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    check_default_page(&org, "/v1/flows", "flows", 30, async || {
        org.post("/v1/flows", json!({"name": "Listed"}))
            .await
            .expect(201);
    })
    .await;
}

// --- Unknown query parameters (SPEC §1) on trigger routes ------------------------------------

async fn every_trigger_route_refuses_unknown_query_parameters_naming_them(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let flow = published_flow(&org).await;
    let trigger = org
        .post(
            &format!("/v1/flows/{flow}/callbacks"),
            json!({"description": "CRM"}),
        )
        .await;
    let id = trigger.expect(201)["id"].as_str().unwrap().to_owned();
    let list = format!("/v1/flows/{flow}/callbacks");
    let one = format!("{list}/{id}");
    for (method, path, body) in [
        (Method::GET, format!("{list}?verbose=1"), None),
        (Method::POST, format!("{list}?verbose=1"), Some(json!({}))),
        (Method::GET, format!("{one}?verbose=1"), None),
        (
            Method::PUT,
            format!("{one}?verbose=1"),
            Some(json!({"description": "changed"})),
        ),
        (Method::DELETE, format!("{one}?verbose=1"), None),
    ] {
        let mut call = org.call(method.clone(), &path);
        if let Some(body) = &body {
            call = call.json(body);
        }
        let answer = call.send().await;
        answer.expect_error(400, "VALIDATION_ERROR");
        assert_eq!(answer.detail_fields(), ["verbose"], "{method} {path}");
    }
    // Nothing was created, changed or deleted.
    let listed = org.get(&list).await;
    let listed = items(listed.expect(200), "callbacks").clone();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["description"], "CRM");
}

async fn a_trigger_url_takes_no_query_parameter_besides_its_signature(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let flow = published_flow(&org).await;
    let trigger = org
        .post(&format!("/v1/flows/{flow}/callbacks"), json!({}))
        .await;
    let url = trigger.expect(201)["url"].as_str().unwrap().to_owned();
    let path = &url[url.find("/v1/hooks/").expect("a trigger URL")..];
    let body = json!({"to_number": "+15557654321", "scheduled_at": format_timestamp(server.clock.now() + DAY)});

    let refused = server
        .anonymous(Method::POST, &format!("{path}&source=crm"))
        .json(&body)
        .send()
        .await;
    refused.expect_error(400, "VALIDATION_ERROR");
    assert_eq!(refused.detail_fields(), ["source"]);
    let listed = org.get("/v1/callbacks").await;
    assert!(items(listed.expect(200), "callbacks").is_empty());

    let accepted = server
        .anonymous(Method::POST, path)
        .json(&body)
        .send()
        .await;
    accepted.expect(201);
}

on_every_store!(
    dispatch_tries_the_endpoints_oldest_first_until_one_answers_2xx,
    a_final_refusal_fails_over_at_once_and_the_last_endpoint_names_the_failure,
    a_session_id_of_up_to_255_characters_becomes_created_session_id,
    a_longer_or_non_string_session_id_is_replaced_by_a_generated_one,
    an_idempotency_key_replays_until_24_hours_and_creates_anew_at_24_hours,
    an_idempotency_key_is_scoped_to_the_route,
    an_idempotency_key_is_scoped_to_the_organization,
    a_page_token_is_valid_until_24_hours_and_expired_at_24_hours,
    a_dispatching_callback_is_taken_again_exactly_when_its_5_minute_lease_runs_out,
    the_sweeper_takes_over_a_dispatch_whose_lease_has_run_out,
    the_sweeper_leaves_a_callback_under_2_minutes_overdue_and_dispatches_it_just_after,
    a_reschedule_the_scheduler_fails_is_kept_and_the_sweeper_dispatches_it_at_its_new_time,
    a_cancel_whose_schedule_cannot_be_deleted_is_kept_and_the_schedule_does_nothing,
    instructions_and_summary_take_4000_characters_and_refuse_4001,
    metadata_takes_50_keys_and_refuses_51,
    metadata_and_pipeline_config_take_16_kib_and_refuse_a_byte_more,
    scheduled_at_may_be_365_days_ahead_and_not_a_millisecond_more,
    a_failed_dispatch_emits_callback_failed_with_the_callback,
    a_callback_without_a_dispatch_target_fails_attempted_with_callback_failed,
    the_dispatch_event_carries_the_callback_already_attempted,
    creating_a_callback_on_an_archived_flow_is_a_conflict,
    callback_lists_page_25_by_default,
    webhook_lists_page_25_by_default,
    trigger_lists_page_25_by_default,
    flow_lists_page_30_by_default,
    every_trigger_route_refuses_unknown_query_parameters_naming_them,
    a_trigger_url_takes_no_query_parameter_besides_its_signature,
    a_session_id_of_255_multibyte_characters_becomes_created_session_id,
    an_idempotency_key_first_used_mid_second_still_replays_for_24_hours,
    a_page_token_issued_mid_second_stays_valid_for_24_hours,
    the_sweeper_leaves_a_callback_exactly_2_minutes_overdue,
);

/// The 1,000-version cap on the memory store only: on the emulator, which copies the whole
/// table for every transaction, the 2,000 transactions it takes run for many minutes.
mod memory_only {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flow_takes_1000_versions_and_refuses_the_1001st() {
        super::a_flow_takes_1000_versions_and_refuses_the_1001st(crate::common::Backend::Memory)
            .await
    }
}
