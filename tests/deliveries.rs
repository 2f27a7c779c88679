//! Webhook deliveries you can see and trust (SPEC §8), each promise broken on purpose: an
//! endpoint down for a day, a crash between commit and delivery, a change that fails, a
//! receiver that hangs, redeliveries and recovery, three days of failures, a secret rotation,
//! a stream batch that half fails, a lost retry schedule, a stream record never handed out.
//!
//! Time-travel tests run on the local default (memory + in-process timers, which wake when the
//! test moves the clock); those that need no time travel run on both stores.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::clock::TestClock;
use common::faults::{FaultyScheduler, PartitionFault, SchedulerCall};
use common::receiver::{Receiver, Reply};
use common::{Backend, Org, TestServer};
use flowline_adapters::webhook_http::HttpSender;
use flowline_core::App;
use flowline_core::config::Config;
use flowline_core::scheduler::Job;
use flowline_core::store::Query;
use flowline_core::time::{Clock, format_timestamp};
use flowline_core::webhooks::outbox;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);
const HOUR: SignedDuration = SignedDuration::from_hours(1);

/// A flow with an ACTIVE version, ready for callbacks.
async fn published_flow(org: &Org) -> String {
    let created = org
        .post(
            "/v1/flows",
            json!({"name": "Renewal call", "data": {"greeting": "Hello"},
                   "entry_points": [{"entry_number": "+15550001111", "entry_language": "en-US"}]}),
        )
        .await;
    let slug = created.expect(201)["slug"].as_str().unwrap().to_owned();
    org.post(&format!("/v1/flows/{slug}/publish"), json!({}))
        .await
        .expect(200);
    slug
}

/// Registers `receiver` for `events`: the endpoint's id and secret.
async fn subscribe(org: &Org, receiver: &Receiver, events: &[&str]) -> (String, String) {
    let answer = org
        .post(
            "/v1/webhooks",
            json!({"url": receiver.url, "events": events}),
        )
        .await;
    let body = answer.expect(201);
    (
        body["id"].as_str().unwrap().to_owned(),
        body["secret"].as_str().unwrap().to_owned(),
    )
}

/// A callback scheduled a month ahead (its `callback.scheduled` is what these tests send).
async fn schedule(server: &TestServer, org: &Org, flow: &str) -> String {
    let at = format_timestamp(server.clock.now() + SignedDuration::from_hours(24 * 30));
    let body = json!({"flow": flow, "to_number": "+15557654321", "scheduled_at": at});
    org.post("/v1/callbacks", body).await.expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The endpoint's deliveries (one page of 100), newest first, for `query` (`status=…`).
async fn deliveries(org: &Org, endpoint: &str, query: &str) -> Vec<Value> {
    let answer = org
        .get(&format!(
            "/v1/webhooks/{endpoint}/deliveries?limit=100&{query}"
        ))
        .await;
    answer.expect(200)["deliveries"].as_array().unwrap().clone()
}

/// Every item in the outbox.
async fn outbox_items(app: &App) -> Vec<flowline_core::store::Item> {
    let mut items = Vec::new();
    for shard in 0..outbox::SHARDS {
        items.extend(
            app.store
                .query(&Query::partition(outbox::shard_pk(shard)))
                .await
                .unwrap(),
        );
    }
    items
}

/// Waits until the organization has nothing left in the outbox: every event it raised so far
/// is handed out, and its first tries logged.
async fn outbox_drained(app: &App, org: &Org) {
    common::eventually("the outbox empties", WAIT, || async {
        outbox_items(app)
            .await
            .iter()
            .all(|item| item.doc["organization_id"] != org.id.as_str())
            .then_some(())
    })
    .await;
}

fn timestamp(value: &Value) -> Timestamp {
    value.as_str().unwrap().parse().unwrap()
}

/// Moves the clock to the earliest retry of the endpoint's waiting deliveries and waits until
/// that retry ran. `false` when nothing is waiting.
async fn next_retry(server: &TestServer, org: &Org, endpoint: &str) -> bool {
    let pending = deliveries(org, endpoint, "status=pending").await;
    let Some(next) = pending
        .iter()
        .min_by_key(|delivery| timestamp(&delivery["next_attempt_at"]))
    else {
        return false;
    };
    let id = next["id"].as_str().unwrap().to_owned();
    let before = next.clone();
    server
        .clock
        .advance_to(timestamp(&next["next_attempt_at"]) + SignedDuration::from_millis(1));
    common::eventually("the retry runs", WAIT, || async {
        let now = org
            .get(&format!("/v1/webhooks/{endpoint}/deliveries/{id}"))
            .await;
        let now = now.expect(200);
        (now["next_attempt_at"] != before["next_attempt_at"] || now["status"] != before["status"])
            .then_some(())
    })
    .await;
    true
}

/// Waits until no waiting delivery of the endpoint is due (the retries the last jump of the
/// clock woke have all run).
async fn settled(server: &TestServer, org: &Org, endpoint: &str) {
    common::eventually("the due retries run", WAIT, || async {
        let now = server.clock.now();
        deliveries(org, endpoint, "status=pending")
            .await
            .iter()
            .all(|delivery| timestamp(&delivery["next_attempt_at"]) > now)
            .then_some(())
    })
    .await;
}

// --- an outage -----------------------------------------------------------------------------

/// An endpoint down for a day gets every event once it is back: each once, in the order of
/// their first tries, each with the `webhook-id` it had from the start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_down_for_a_day_receives_every_event_in_order_once_it_recovers() {
    let server = TestServer::start(Backend::Memory).await;
    let org = server.org().await;
    let flow = published_flow(&org).await;
    let receiver = Receiver::start().await;
    receiver.default_reply(Reply::status(503));
    let (endpoint, _) = subscribe(&org, &receiver, &["callback.scheduled"]).await;
    let down_since = server.clock.now();

    // Six callbacks over the day, four hours apart: each event's first try fails.
    let mut callbacks = Vec::new();
    for _ in 0..6 {
        let id = schedule(&server, &org, &flow).await;
        common::eventually("its first try", WAIT, || async {
            receiver
                .of_type("callback.scheduled")
                .iter()
                .any(|d| d.json["data"]["callback"]["id"] == id.as_str())
                .then_some(())
        })
        .await;
        callbacks.push(id);
        // Logged once its answer is back: only then does `settled` see it waiting.
        common::eventually("its first try is logged", WAIT, || async {
            (deliveries(&org, &endpoint, "").await.len() == callbacks.len()).then_some(())
        })
        .await;
        server.clock.advance(4 * HOUR);
        settled(&server, &org, &endpoint).await;
    }
    // The ids every try carried, per callback: one each.
    let first_ids: Vec<String> = callbacks
        .iter()
        .map(|id| {
            let tries: Vec<_> = receiver
                .of_type("callback.scheduled")
                .into_iter()
                .filter(|d| d.json["data"]["callback"]["id"] == id.as_str())
                .collect();
            let ids: std::collections::HashSet<String> =
                tries.iter().map(|d| d.webhook_id().to_owned()).collect();
            assert_eq!(ids.len(), 1, "every try of one event has its webhook-id");
            ids.into_iter().next().unwrap()
        })
        .collect();
    assert!(receiver.deliveries().iter().all(|d| !d.accepted()));
    let pending = deliveries(&org, &endpoint, "status=pending").await;
    assert_eq!(pending.len(), 6, "all still waiting a day later");

    // Back up, a day after it went down.
    server
        .clock
        .advance_to(down_since + 24 * HOUR - SignedDuration::from_secs(1));
    settled(&server, &org, &endpoint).await;
    receiver.default_reply(Reply::status(200));
    let seen = receiver.deliveries().len();
    assert!(next_retry(&server, &org, &endpoint).await);
    let accepted = common::eventually("the backlog arrives", WAIT, || async {
        let accepted: Vec<String> = receiver.deliveries()[seen..]
            .iter()
            .filter(|d| d.accepted())
            .map(|d| d.webhook_id().to_owned())
            .collect();
        (accepted.len() >= 6).then_some(accepted)
    })
    .await;
    assert_eq!(
        accepted, first_ids,
        "each once, in the order of first tries"
    );
    // The receiver logs a request before its answer reaches the sender, so the last success
    // is recorded a moment after it arrived.
    common::eventually("the backlog is recorded as delivered", WAIT, || async {
        deliveries(&org, &endpoint, "status=pending")
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    assert_eq!(
        deliveries(&org, &endpoint, "status=succeeded").await.len(),
        6
    );
    // Their retry schedules still fire, and send nothing more.
    while next_retry(&server, &org, &endpoint).await {}
    server.clock.advance(48 * HOUR);
    let after: usize = receiver.deliveries()[seen..]
        .iter()
        .filter(|d| d.accepted())
        .count();
    assert_eq!(after, 6);
}

// --- the outbox ------------------------------------------------------------------------------

/// An event committed just before a crash (nothing read the outbox yet) is delivered by the
/// next process that reads it.
async fn a_crash_between_commit_and_delivery_loses_no_event(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let flow = published_flow(&org).await;
    let receiver = Receiver::start().await;
    subscribe(
        &org,
        &receiver,
        &["callback.scheduled", "callback.cancelled"],
    )
    .await;
    // The flow's own publication is handed out first; then the process that writes the
    // callback's events dies before handing them out.
    common::eventually("the outbox empties", WAIT, || async {
        outbox_items(&server.app).await.is_empty().then_some(())
    })
    .await;
    server.relay.abort();
    let id = schedule(&server, &org, &flow).await;
    org.post(&format!("/v1/callbacks/{id}/cancel"), json!({}))
        .await
        .expect(200);
    let queued = outbox_items(&server.app).await;
    let ours: Vec<_> = queued
        .iter()
        .filter(|item| item.doc["organization_id"] == org.id.as_str())
        .collect();
    assert_eq!(ours.len(), 2, "both events are in the outbox");
    assert!(receiver.deliveries().is_empty());

    // The next process starts its relay: both arrive (each once; the outbox's shards are read
    // side by side, so not necessarily in order) and the outbox empties.
    flowline_core::webhooks::relay::spawn(
        Arc::downgrade(&server.app),
        Arc::new(tokio::sync::Notify::new()),
    );
    for event in ["callback.scheduled", "callback.cancelled"] {
        let received = receiver.wait_for(event, 1, WAIT).await;
        assert_eq!(received.len(), 1, "{event}");
    }
    outbox_drained(&server.app, &org).await;
    for event in ["callback.scheduled", "callback.cancelled"] {
        assert_eq!(receiver.of_type(event).len(), 1, "{event} once");
    }
}

/// A change that fails has no event: a create whose schedule cannot be made, a cancel of a
/// callback that cannot be cancelled, a publish with nothing to publish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_that_fails_emits_nothing() {
    let (server, scheduler) = faulty_server().await;
    let org = server.org().await;
    let flow = published_flow(&org).await;
    // The flow's own publication is handed out before anyone listens.
    common::eventually("the outbox empties", WAIT, || async {
        outbox_items(&server.app).await.is_empty().then_some(())
    })
    .await;
    let receiver = Receiver::start().await;
    subscribe(
        &org,
        &receiver,
        &[
            "callback.scheduled",
            "callback.cancelled",
            "callback.dispatched",
            "callback.failed",
            "flow.published",
        ],
    )
    .await;
    let quiet = 0;

    scheduler.fail(SchedulerCall::Schedule);
    let at = format_timestamp(server.clock.now() + HOUR);
    org.post(
        "/v1/callbacks",
        json!({"flow": flow, "to_number": "+15557654321", "scheduled_at": at}),
    )
    .await
    .expect_error(503, "UPSTREAM_UNAVAILABLE");
    // "Now": the callback is written, its hand-off fails, it is removed again.
    scheduler.fail(SchedulerCall::Invoke);
    org.post(
        "/v1/callbacks",
        json!({"flow": flow, "to_number": "+15557654321"}),
    )
    .await
    .expect_error(503, "UPSTREAM_UNAVAILABLE");
    // Nothing to publish.
    org.post(&format!("/v1/flows/{flow}/publish"), json!({}))
        .await
        .expect_error(409, "CONFLICT");
    assert_eq!(outbox_items(&server.app).await.len(), quiet);
    flowline_core::webhooks::relay::pass(&server.app)
        .await
        .unwrap();
    assert!(
        receiver.deliveries().is_empty(),
        "{:?}",
        receiver.deliveries()
    );
    assert!(
        org.get("/v1/callbacks").await.expect(200)["callbacks"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

/// A "dispatch now" callback is announced once its dispatch has been handed off — by its
/// first change — so `callback.scheduled` comes, then how it ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_dispatched_now_is_announced_then_dispatched() {
    let server = TestServer::start(Backend::Memory).await;
    let org = server.org().await;
    let flow = published_flow(&org).await;
    let receiver = Receiver::start().await;
    subscribe(
        &org,
        &receiver,
        &[
            "callback.dispatch",
            "callback.scheduled",
            "callback.dispatched",
        ],
    )
    .await;
    org.post(
        "/v1/callbacks",
        json!({"flow": flow, "to_number": "+15557654321"}),
    )
    .await
    .expect(201);
    receiver.wait_for("callback.dispatched", 1, WAIT).await;
    let scheduled = receiver.of_type("callback.scheduled");
    assert_eq!(scheduled.len(), 1);
    assert_eq!(scheduled[0].json["data"]["callback"]["status"], "scheduled");
}

/// No route waits on an endpoint: with every delivery held unanswered, create, cancel and
/// publish answer all the same.
async fn no_route_waits_on_a_receiver_that_hangs(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let flow = published_flow(&org).await;
    let receiver = Receiver::start().await;
    subscribe(
        &org,
        &receiver,
        &["callback.scheduled", "callback.cancelled", "flow.published"],
    )
    .await;
    receiver.hold();
    let id = schedule(&server, &org, &flow).await;
    common::eventually("the event is being delivered", WAIT, || async {
        (receiver.in_flight() >= 1).then_some(())
    })
    .await;
    org.post(&format!("/v1/callbacks/{id}/cancel"), json!({}))
        .await
        .expect(200);
    org.post(&format!("/v1/flows/{flow}/versions"), json!({}))
        .await
        .expect(201);
    org.post(&format!("/v1/flows/{flow}/publish"), json!({}))
        .await
        .expect(200);
    common::eventually("every event is being delivered", WAIT, || async {
        (receiver.in_flight() >= 3).then_some(())
    })
    .await;
    assert!(
        receiver.deliveries().len() >= 3,
        "the answers came while the receiver held the deliveries"
    );
    receiver.release();
}

// --- redelivery and recovery -----------------------------------------------------------------

/// A redelivered `callback.dispatch` is a notification: the same event again, and the
/// callback untouched.
async fn redelivering_a_dispatch_changes_no_callback(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let flow = published_flow(&org).await;
    let receiver = Receiver::start().await;
    receiver.default_reply(Reply::session("sess_first"));
    let (endpoint, _) = subscribe(&org, &receiver, &["callback.dispatch"]).await;
    let id = schedule(&server, &org, &flow).await;
    let dispatched = org
        .post(&format!("/v1/callbacks/{id}/dispatch"), json!({}))
        .await;
    assert_eq!(dispatched.expect(200)["status"], "dispatched");
    let before = org.get(&format!("/v1/callbacks/{id}")).await.body;

    let log = deliveries(&org, &endpoint, "event_type=callback.dispatch").await;
    assert_eq!(log.len(), 1, "the dispatch's delivery is logged");
    assert_eq!(log[0]["status"], "succeeded");
    let delivery = log[0]["id"].as_str().unwrap();
    receiver.default_reply(Reply::session("sess_second"));
    let answer = org
        .post(
            &format!("/v1/webhooks/{endpoint}/deliveries/{delivery}/redeliver"),
            json!({}),
        )
        .await;
    answer.expect(202);
    let sent = receiver.wait_for("callback.dispatch", 2, WAIT).await;
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].webhook_id(), sent[1].webhook_id());
    common::eventually("the redelivery is logged", WAIT, || async {
        let one = org
            .get(&format!("/v1/webhooks/{endpoint}/deliveries/{delivery}"))
            .await;
        (one.expect(200)["attempts"].as_array().unwrap().len() == 2).then_some(())
    })
    .await;
    let after = org.get(&format!("/v1/callbacks/{id}")).await.body;
    assert_eq!(after, before, "the callback is as it was");
    assert_eq!(after["created_session_id"], "sess_first");
}

/// Recovery re-sends exactly the failed deliveries of the window: not the succeeded ones, not
/// the failed ones outside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_resends_exactly_the_failed_deliveries_of_the_window() {
    let server = TestServer::start(Backend::Memory).await;
    let org = server.org().await;
    let flow = published_flow(&org).await;
    let receiver = Receiver::start().await;
    receiver.default_reply(Reply::status(500));
    let (endpoint, _) = subscribe(&org, &receiver, &["callback.scheduled"]).await;
    let start = server.clock.now();
    let early = schedule(&server, &org, &flow).await;
    server.clock.advance(2 * HOUR);
    settled(&server, &org, &endpoint).await;
    let late = schedule(&server, &org, &flow).await;
    receiver.wait_for("callback.scheduled", 2, WAIT).await;
    // Every retry runs and fails: both end failed.
    while next_retry(&server, &org, &endpoint).await {}
    assert_eq!(deliveries(&org, &endpoint, "status=failed").await.len(), 2);
    // One more, delivered at once.
    receiver.default_reply(Reply::status(200));
    let fine = schedule(&server, &org, &flow).await;
    receiver.wait_for("callback.scheduled", 1, WAIT).await;
    common::eventually("it succeeds", WAIT, || async {
        (deliveries(&org, &endpoint, "status=succeeded").await.len() == 1).then_some(())
    })
    .await;
    let sent_before = receiver.deliveries().len();

    // The window holds the early failure only.
    let answer = org
        .post(
            &format!("/v1/webhooks/{endpoint}/recover"),
            json!({"since": format_timestamp(start - SignedDuration::from_mins(1)),
                   "until": format_timestamp(start + HOUR)}),
        )
        .await;
    assert_eq!(answer.expect(202), &json!({"queued": 1}));
    let resent = common::eventually("the early one is sent again", WAIT, || async {
        let sent = receiver.deliveries();
        (sent.len() > sent_before).then_some(sent[sent_before..].to_vec())
    })
    .await;
    assert_eq!(resent.len(), 1);
    assert_eq!(resent[0].json["data"]["callback"]["id"], early.as_str());
    // From the start until now: the late one (the early one succeeded meanwhile).
    common::eventually("the early one is logged", WAIT, || async {
        (deliveries(&org, &endpoint, "status=failed").await.len() == 1).then_some(())
    })
    .await;
    let answer = org
        .post(
            &format!("/v1/webhooks/{endpoint}/recover"),
            json!({"since": format_timestamp(start)}),
        )
        .await;
    assert_eq!(answer.expect(202), &json!({"queued": 1}));
    let resent = receiver.wait_for("callback.scheduled", 0, WAIT).await;
    let last = common::eventually("the late one is sent again", WAIT, || async {
        let sent = receiver.deliveries();
        (sent.len() > sent_before + 1).then(|| sent.last().unwrap().clone())
    })
    .await;
    assert_eq!(last.json["data"]["callback"]["id"], late.as_str());
    assert!(
        resent
            .iter()
            .all(|d| d.json["data"]["callback"]["id"] != fine.as_str() || d.accepted())
    );
    let fine_sent = receiver
        .of_type("callback.scheduled")
        .iter()
        .filter(|d| d.json["data"]["callback"]["id"] == fine.as_str())
        .count();
    assert_eq!(fine_sent, 1, "a succeeded delivery is never recovered");
    // Out of reach: more than 30 days back, or until before since.
    org.post(
        &format!("/v1/webhooks/{endpoint}/recover"),
        json!({"since": format_timestamp(server.clock.now() - SignedDuration::from_hours(31 * 24))}),
    )
    .await
    .expect_error(400, "VALIDATION_ERROR");
    org.post(
        &format!("/v1/webhooks/{endpoint}/recover"),
        json!({"since": format_timestamp(start), "until": format_timestamp(start - HOUR)}),
    )
    .await
    .expect_error(400, "VALIDATION_ERROR");
}

// --- endpoint health -------------------------------------------------------------------------

/// Three days of failed tries disable an endpoint, tell the organization's other endpoints,
/// and stop its deliveries; `PUT status: active` enables it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_days_of_failures_disable_an_endpoint() {
    let server = TestServer::start(Backend::Memory).await;
    let org = server.org().await;
    let flow = published_flow(&org).await;
    let dead = Receiver::start().await;
    dead.default_reply(Reply::status(503));
    let watcher = Receiver::start().await;
    let (endpoint, _) = subscribe(&org, &dead, &["callback.scheduled"]).await;
    subscribe(&org, &watcher, &["webhook.disabled"]).await;
    let path = format!("/v1/webhooks/{endpoint}");

    schedule(&server, &org, &flow).await;
    dead.wait_for("callback.scheduled", 1, WAIT).await;
    // The try is logged once its answer is back, a moment after the receiver saw it.
    let first_failure = common::eventually("the first failure is logged", WAIT, || async {
        let logged = deliveries(&org, &endpoint, "").await;
        let at = logged.first()?["attempts"].get(0)?["at"].clone();
        Some(timestamp(&at))
    })
    .await;
    // An event every 12 hours: still active after two and a half days of failures.
    for _ in 0..5 {
        server.clock.advance(12 * HOUR);
        settled(&server, &org, &endpoint).await;
        schedule(&server, &org, &flow).await;
    }
    settled(&server, &org, &endpoint).await;
    assert_eq!(org.get(&path).await.expect(200)["status"], "active");
    // Past three days, the next failed try disables it.
    server.clock.advance(13 * HOUR);
    schedule(&server, &org, &flow).await;
    let notice = watcher.wait_for("webhook.disabled", 1, WAIT).await;
    assert_eq!(notice.len(), 1);
    assert_eq!(notice[0].json["data"]["webhook"]["id"], endpoint.as_str());
    assert!(notice[0].json["data"]["webhook"].get("secret").is_none());
    let disabled = org.get(&path).await.expect(200).clone();
    assert_eq!(disabled["status"], "disabled");
    assert_eq!(
        disabled["disabled_reason"],
        format!("failing since {}", format_timestamp(first_failure))
    );
    // The jump woke the retries of all six earlier events, and the seventh event is fanned
    // out meanwhile; tries already under way still go to the endpoint they read as active.
    // Wait for them: the event handed out (its outbox item is removed once its tries are
    // logged, or at once if the endpoint was disabled first) and no retry due.
    outbox_drained(&server.app, &org).await;
    settled(&server, &org, &endpoint).await;
    // Nothing more is sent to it, and what was waiting fails without a try.
    let sent = dead.deliveries().len();
    schedule(&server, &org, &flow).await;
    while next_retry(&server, &org, &endpoint).await {}
    assert_eq!(dead.deliveries().len(), sent);
    assert!(
        deliveries(&org, &endpoint, "status=pending")
            .await
            .is_empty()
    );
    // Enabled again by hand.
    dead.default_reply(Reply::status(200));
    let enabled = org.put(&path, json!({"status": "active"})).await;
    assert!(enabled.expect(200)["disabled_reason"].is_null());
    schedule(&server, &org, &flow).await;
    let accepted = common::eventually("it receives again", WAIT, || async {
        dead.deliveries().iter().any(|d| d.accepted()).then_some(())
    })
    .await;
    let () = accepted;
}

// --- secret rotation -------------------------------------------------------------------------

/// For 24 hours after a rotation deliveries carry both signatures, each verified by the
/// Standard Webhooks reference library with its secret; then only the new one.
async fn a_rotated_secret_signs_alongside_the_old_one_for_a_day(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let flow = published_flow(&org).await;
    let receiver = Receiver::start().await;
    let (endpoint, old) = subscribe(&org, &receiver, &["callback.scheduled"]).await;
    let rotated = org
        .post(&format!("/v1/webhooks/{endpoint}/rotate-secret"), json!({}))
        .await;
    let new = rotated.expect(200)["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(
        org.get(&format!("/v1/webhooks/{endpoint}"))
            .await
            .expect(200)
            .get("secret")
            .is_none()
    );

    schedule(&server, &org, &flow).await;
    let during = receiver.wait_for("callback.scheduled", 1, WAIT).await;
    let signature = during[0].headers["webhook-signature"].to_str().unwrap();
    assert_eq!(signature.split(' ').count(), 2, "{signature}");
    assert!(during[0].signed_by(&new), "the new secret verifies");
    assert!(during[0].signed_by(&old), "the old secret verifies");

    server
        .clock
        .advance(24 * HOUR + SignedDuration::from_secs(1));
    schedule(&server, &org, &flow).await;
    let after = receiver.wait_for("callback.scheduled", 2, WAIT).await;
    // (A day ahead on the test's clock: the reference library's age check would refuse any
    // timestamp, so the signatures are compared with the ones it makes.)
    let signature = after[1].headers["webhook-signature"].to_str().unwrap();
    assert_eq!(signature.split(' ').count(), 1, "{signature}");
    assert!(after[1].carries_signature_of(&new));
    assert!(
        !after[1].carries_signature_of(&old),
        "the old secret no longer signs"
    );
    assert!(during[0].carries_signature_of(&old) && during[0].carries_signature_of(&new));
}

// --- the sweeper's safety nets ---------------------------------------------------------------

/// A server whose scheduler never fires and fails on cue (the sweeper's business).
async fn faulty_server() -> (TestServer, Arc<FaultyScheduler>) {
    let (store, keys) = common::tables(Backend::Memory).await;
    let scheduler = Arc::new(FaultyScheduler::default());
    let clock = Arc::new(TestClock::default());
    let config = Config {
        public_base_url: "http://flowline.test".to_owned(),
        allow_private_targets: true,
        request_budget: flowline_core::deadline::HTTP_BUDGET,
        limits: common::UNLIMITED,
    };
    let app = App::builder(store, keys, config)
        .scheduler(scheduler.clone())
        .invoker(scheduler.clone())
        .sender(Arc::new(HttpSender::new(true)))
        .clock(clock.clone())
        .signing_key(common::SIGNING_KEY)
        .build();
    (
        TestServer::serve(app, Backend::Memory, clock).await,
        scheduler,
    )
}

/// A retry whose schedule is lost is handed over by the sweeper once 2 minutes overdue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_retry_schedule_is_handed_over_by_the_sweeper() {
    let (server, scheduler) = faulty_server().await;
    let org = server.org().await;
    let flow = published_flow(&org).await;
    let receiver = Receiver::start().await;
    receiver.default_reply(Reply::status(503));
    let (endpoint, _) = subscribe(&org, &receiver, &["callback.scheduled"]).await;
    scheduler.fail(SchedulerCall::Schedule);
    // The callback's own schedule must work: it is made before the retry's fails.
    let at = format_timestamp(server.clock.now() + SignedDuration::from_hours(24 * 30));
    let body = json!({"flow": flow, "to_number": "+15557654321", "scheduled_at": at});
    scheduler.heal(SchedulerCall::Schedule);
    org.post("/v1/callbacks", body).await.expect(201);
    scheduler.fail(SchedulerCall::Schedule);
    receiver.wait_for("callback.scheduled", 1, WAIT).await;
    let pending = common::eventually("the retry is set", WAIT, || async {
        let pending = deliveries(&org, &endpoint, "status=pending").await;
        (pending.len() == 1).then(|| pending[0].clone())
    })
    .await;
    let next = timestamp(&pending["next_attempt_at"]);

    // Not yet two minutes overdue: nothing to hand over.
    receiver.default_reply(Reply::status(200));
    server
        .clock
        .advance_to(next + SignedDuration::from_secs(60));
    let report = flowline_core::sweeper::sweep(&server.app, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(report.handed_off, 0);
    server
        .clock
        .advance_to(next + SignedDuration::from_secs(121));
    let report = flowline_core::sweeper::sweep(&server.app, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(report.handed_off, 1);
    let jobs = scheduler.take_invoked();
    assert!(
        matches!(&jobs[..], [Job::Retry(job)] if job.attempt == 2),
        "{jobs:?}"
    );
    for job in &jobs {
        flowline_core::jobs::run(&server.app, job).await.unwrap();
    }
    assert!(
        receiver
            .of_type("callback.scheduled")
            .last()
            .unwrap()
            .accepted()
    );
    assert_eq!(
        deliveries(&org, &endpoint, "status=succeeded").await.len(),
        1
    );
    // Run again (a duplicate hand-over): nothing more is sent.
    for job in &jobs {
        flowline_core::jobs::run(&server.app, job).await.unwrap();
    }
    assert_eq!(receiver.of_type("callback.scheduled").len(), 2);
}

/// An outbox item the stream never handed out is written again by the sweeper after 5
/// minutes (a new stream record), and again 5 minutes after that if still there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbox_item_never_handed_out_is_nudged_by_the_sweeper() {
    let server = TestServer::start(Backend::Memory).await;
    server.relay.abort();
    let org = server.org().await;
    let flow = published_flow(&org).await;
    let item = outbox_items(&server.app)
        .await
        .into_iter()
        .find(|item| item.doc["organization_id"] == org.id.as_str())
        .expect("the flow.published event");
    let sweep = || flowline_core::sweeper::sweep(&server.app, Duration::from_secs(30));
    assert_eq!(sweep().await.unwrap().nudged, 0, "not stuck yet");
    server.clock.advance(SignedDuration::from_mins(5));
    assert_eq!(sweep().await.unwrap().nudged, 1);
    let nudged = server.app.store.get(&item.key).await.unwrap().unwrap();
    assert_eq!(nudged.rev, item.rev + 1, "written again");
    assert_eq!(nudged.doc["nudges"], 1);
    assert_eq!(sweep().await.unwrap().nudged, 0, "once per 5 minutes");
    let _ = flow;
}

// --- the log ---------------------------------------------------------------------------------

/// The log pages newest first, filters by status and event type, and answers 404 for another
/// organization's endpoint or another endpoint's delivery.
async fn the_log_pages_filters_and_keeps_organizations_apart(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let flow = published_flow(&org).await;
    let receiver = Receiver::start().await;
    let (endpoint, _) = subscribe(
        &org,
        &receiver,
        &["callback.scheduled", "callback.cancelled"],
    )
    .await;
    let (other_endpoint, _) = subscribe(&org, &receiver, &["flow.published"]).await;
    let mut ids = Vec::new();
    for _ in 0..13 {
        ids.push(schedule(&server, &org, &flow).await);
    }
    // "Newest" is to the millisecond: the cancellation must not share the last one's.
    server.clock.advance(SignedDuration::from_millis(1));
    org.post(&format!("/v1/callbacks/{}/cancel", ids[0]), json!({}))
        .await
        .expect(200);
    receiver.wait_for("callback.scheduled", 13, WAIT).await;
    receiver.wait_for("callback.cancelled", 1, WAIT).await;
    common::eventually("all are logged", WAIT, || async {
        (deliveries(&org, &endpoint, "").await.len() == 14).then_some(())
    })
    .await;

    let first = org
        .get(&format!("/v1/webhooks/{endpoint}/deliveries?limit=5"))
        .await;
    let first = first.expect(200).clone();
    let page: Vec<&Value> = first["deliveries"].as_array().unwrap().iter().collect();
    assert_eq!(page.len(), 5);
    assert_eq!(page[0]["event_type"], "callback.cancelled", "newest first");
    let mut seen: Vec<String> = page
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect();
    let mut token = first["next_page_token"].as_str().map(str::to_owned);
    while let Some(next) = token {
        let more = org
            .get(&format!(
                "/v1/webhooks/{endpoint}/deliveries?limit=5&next_page_token={next}"
            ))
            .await;
        let more = more.expect(200).clone();
        seen.extend(
            more["deliveries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["id"].as_str().unwrap().to_owned()),
        );
        token = more["next_page_token"].as_str().map(str::to_owned);
    }
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    sorted.dedup();
    assert_eq!(seen, sorted, "14 distinct, newest first");
    assert_eq!(seen.len(), 14);

    assert_eq!(
        deliveries(&org, &endpoint, "event_type=callback.cancelled")
            .await
            .len(),
        1
    );
    assert_eq!(
        deliveries(&org, &endpoint, "status=succeeded").await.len(),
        14
    );
    assert!(
        deliveries(&org, &endpoint, "status=failed")
            .await
            .is_empty()
    );
    org.get(&format!("/v1/webhooks/{endpoint}/deliveries?status=lost"))
        .await
        .expect_error(400, "VALIDATION_ERROR");
    org.get(&format!(
        "/v1/webhooks/{endpoint}/deliveries?event_type=call.me"
    ))
    .await
    .expect_error(400, "VALIDATION_ERROR");

    // One delivery, through its own endpoint only, to its own organization only.
    let id = &seen[0];
    let one = org
        .get(&format!("/v1/webhooks/{endpoint}/deliveries/{id}"))
        .await;
    let one = one.expect(200);
    assert_eq!(one["payload"]["type"], "callback.cancelled");
    assert_eq!(one["payload"]["id"], one["event_id"]);
    org.get(&format!("/v1/webhooks/{other_endpoint}/deliveries/{id}"))
        .await
        .expect_error(404, "NOT_FOUND");
    let stranger = server.org().await;
    for path in [
        format!("/v1/webhooks/{endpoint}/deliveries"),
        format!("/v1/webhooks/{endpoint}/deliveries/{id}"),
    ] {
        stranger.get(&path).await.expect_error(404, "NOT_FOUND");
    }
    for path in [
        format!("/v1/webhooks/{endpoint}/deliveries/{id}/redeliver"),
        format!("/v1/webhooks/{endpoint}/rotate-secret"),
    ] {
        stranger
            .post(&path, json!({}))
            .await
            .expect_error(404, "NOT_FOUND");
    }
    stranger
        .post(
            &format!("/v1/webhooks/{endpoint}/recover"),
            json!({"since": format_timestamp(server.clock.now() - HOUR)}),
        )
        .await
        .expect_error(404, "NOT_FOUND");
}

on_every_store!(
    a_crash_between_commit_and_delivery_loses_no_event,
    no_route_waits_on_a_receiver_that_hangs,
    redelivering_a_dispatch_changes_no_callback,
    a_rotated_secret_signs_alongside_the_old_one_for_a_day,
    the_log_pages_filters_and_keeps_organizations_apart,
);

// --- the stream ------------------------------------------------------------------------------

/// A table whose query of one partition fails once, as DynamoDB does under throttling.
struct QueryFailsOnce {
    inner: Arc<dyn flowline_core::store::Table>,
    fault: PartitionFault,
}

#[async_trait::async_trait]
impl flowline_core::store::Table for QueryFailsOnce {
    async fn get(
        &self,
        key: &flowline_core::store::Key,
    ) -> Result<Option<flowline_core::store::Item>, flowline_core::store::StoreError> {
        self.inner.get(key).await
    }
    async fn get_many(
        &self,
        keys: &[flowline_core::store::Key],
    ) -> Result<Vec<Option<flowline_core::store::Item>>, flowline_core::store::StoreError> {
        self.inner.get_many(keys).await
    }
    async fn query(
        &self,
        query: &Query,
    ) -> Result<Vec<flowline_core::store::Item>, flowline_core::store::StoreError> {
        if self.fault.hits(query) {
            return Err(flowline_core::store::StoreError::Unavailable(
                "injected: throughput exceeded".to_owned(),
            ));
        }
        self.inner.query(query).await
    }
    async fn write(
        &self,
        writes: Vec<flowline_core::store::Write>,
    ) -> Result<(), flowline_core::store::StoreError> {
        self.inner.write(writes).await
    }
    async fn increment(
        &self,
        key: &flowline_core::store::Key,
        delta: i64,
        expires_at: Option<i64>,
    ) -> Result<i64, flowline_core::store::StoreError> {
        self.inner.increment(key, delta, expires_at).await
    }
}

/// A JSON value in DynamoDB's attribute format (what a stream record's image holds).
fn attribute(value: &Value) -> Value {
    match value {
        Value::Null => json!({"NULL": true}),
        Value::Bool(b) => json!({"BOOL": b}),
        Value::Number(n) => json!({"N": n.to_string()}),
        Value::String(s) => json!({"S": s}),
        Value::Array(items) => json!({"L": items.iter().map(attribute).collect::<Vec<_>>()}),
        Value::Object(fields) => json!({"M": fields
            .iter()
            .map(|(name, value)| (name.clone(), attribute(value)))
            .collect::<serde_json::Map<_, _>>()}),
    }
}

/// The stream record of an item's write, with sequence number `sequence`.
fn stream_record(item: &flowline_core::store::Item, sequence: u64) -> Value {
    let keys = json!({"pk": {"S": item.key.pk}, "sk": {"S": item.key.sk}});
    let mut image = keys.as_object().unwrap().clone();
    image.insert("rev".to_owned(), json!({"N": item.rev.to_string()}));
    image.insert("doc".to_owned(), attribute(&item.doc));
    json!({
        "eventID": format!("event-{sequence}"),
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": 1_795_270_554,
            "Keys": keys,
            "NewImage": image,
            "SequenceNumber": sequence.to_string(),
            "SizeBytes": 512,
            "StreamViewType": "NEW_IMAGE",
        },
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/flowline-test/stream/x",
    })
}

/// A batch whose middle record fails (the store throttles its subscribers' read) reports that
/// record alone; Lambda retries the batch from it, and the record before it, which succeeded,
/// is not handed out again — nor is the one after it sent twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_batch_that_half_fails_is_retried_without_resending_what_succeeded() {
    let (store, keys) = common::tables(Backend::Memory).await;
    let table = Arc::new(QueryFailsOnce {
        inner: store,
        fault: PartitionFault::default(),
    });
    let clock = Arc::new(TestClock::default());
    let config = Config {
        public_base_url: "http://flowline.test".to_owned(),
        allow_private_targets: true,
        request_budget: flowline_core::deadline::HTTP_BUDGET,
        limits: common::UNLIMITED,
    };
    let app = App::builder(table.clone(), keys, config)
        .scheduler(Arc::new(FaultyScheduler::default()))
        .sender(Arc::new(HttpSender::new(true)))
        .clock(clock.clone())
        .signing_key(common::SIGNING_KEY)
        .build();
    let server = TestServer::serve(app, Backend::Memory, clock).await;
    // No relay: the batch below is what reads the outbox.
    server.relay.abort();

    // Three organizations, an endpoint each, and an event each in the outbox.
    let mut records = Vec::new();
    let mut receivers = Vec::new();
    let mut orgs = Vec::new();
    for sequence in 1..=3u64 {
        let org = server.org().await;
        let receiver = Receiver::start().await;
        subscribe(&org, &receiver, &["flow.published"]).await;
        let write = outbox::event(
            &org.id,
            flowline_core::webhooks::EventType::FlowPublished,
            json!({"flow": {"slug": format!("flow_{sequence:012}")}}),
            server.clock.now(),
        )
        .unwrap();
        server.app.store.write(vec![write.clone()]).await.unwrap();
        let item = server.app.store.get(write.key()).await.unwrap().unwrap();
        records.push(stream_record(&item, sequence * 100));
        receivers.push(receiver);
        orgs.push(org);
    }
    table
        .fault
        .arm(flowline_core::webhooks::endpoints_pk(&orgs[1].id));
    let batch = |records: &[Value]| -> flowline_lambda::stream::StreamBatch {
        serde_json::from_value(json!({ "Records": records })).expect("a stream batch")
    };

    let answer = deliver::handle(&server.app, batch(&records)).await.unwrap();
    let failed: Vec<_> = answer
        .batch_item_failures
        .iter()
        .map(|failure| failure.item_identifier.clone().unwrap())
        .collect();
    assert_eq!(failed, ["200"], "only the middle record failed");
    let counts = || {
        receivers
            .iter()
            .map(|r| r.deliveries().len())
            .collect::<Vec<_>>()
    };
    assert_eq!(counts(), [1, 0, 1]);

    // Lambda's retry: from the first failed record to the end of the batch.
    let again = deliver::handle(&server.app, batch(&records[1..]))
        .await
        .unwrap();
    assert!(again.batch_item_failures.is_empty(), "{again:?}");
    assert_eq!(counts(), [1, 1, 1], "each event once");
    // And the whole batch once more (a duplicate invocation): nothing is sent twice.
    let once_more = deliver::handle(&server.app, batch(&records)).await.unwrap();
    assert!(once_more.batch_item_failures.is_empty());
    assert_eq!(counts(), [1, 1, 1]);
}
