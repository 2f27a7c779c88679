//! Callback policies (SPEC §7) over HTTP, on every store: calling windows in the recipient's
//! zone (across midnight, daylight-saving switches and Lord Howe's half-hour shift), outcomes
//! and the retry chain they drive, one active callback per number under concurrent creates,
//! the do-not-call list at creation, at dispatch and by opt-out, and bulk cancel.
//!
//! Time is the test's: each test freezes the server's clock at an instant of its choosing and
//! moves it, so every `scheduled_at` is asserted to the millisecond.

mod common;

use std::time::Duration;

use common::receiver::{Receiver, Reply};
use common::{Answer, Backend, Org, TestServer};
use futures_util::StreamExt;
use jiff::{SignedDuration, Timestamp};
use reqwest::Method;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(15);
const NUMBER: &str = "+15550100001";
/// The same number in a path (`+` encoded).
const NUMBER_IN_PATH: &str = "%2B15550100001";

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn ts(value: &Value) -> Timestamp {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{value} is a timestamp"))
        .parse()
        .unwrap()
}

/// A server whose clock stands at `now`.
async fn server_at(backend: Backend, now: &str) -> TestServer {
    let server = TestServer::start(backend).await;
    server.clock.freeze_at(at(now));
    server
}

/// A published flow with `policies` (calling_window, retry_policy, dedupe) set.
async fn flow_with(org: &Org, policies: Value) -> String {
    let mut body = json!({"name": "Callbacks with rules", "data": {"greeting": "Hello"},
        "entry_points": [{"entry_number": "+15550001111"}]});
    for (name, value) in policies.as_object().unwrap() {
        body[name] = value.clone();
    }
    let slug = org.post("/v1/flows", body).await.expect(201)["slug"]
        .as_str()
        .unwrap()
        .to_owned();
    org.post(&format!("/v1/flows/{slug}/publish"), json!({}))
        .await
        .expect(200);
    slug
}

async fn create(org: &Org, flow: &str, extra: Value) -> Answer {
    let mut body = json!({"flow": flow, "to_number": NUMBER});
    for (name, value) in extra.as_object().unwrap() {
        body[name] = value.clone();
    }
    org.post("/v1/callbacks", body).await
}

async fn created(org: &Org, flow: &str, extra: Value) -> Value {
    create(org, flow, extra).await.expect(201).clone()
}

fn id_of(callback: &Value) -> String {
    callback["id"].as_str().unwrap().to_owned()
}

async fn get(org: &Org, id: &str) -> Value {
    org.get(&format!("/v1/callbacks/{id}"))
        .await
        .expect(200)
        .clone()
}

/// A receiver that takes every dispatch, subscribed to `events` as well.
async fn receiver_for(org: &Org, events: &[&str]) -> Receiver {
    let receiver = Receiver::start().await;
    receiver.default_reply(Reply::status(200));
    let mut subscribed = vec!["callback.dispatch"];
    subscribed.extend_from_slice(events);
    org.post(
        "/v1/webhooks",
        json!({"url": receiver.url, "events": subscribed}),
    )
    .await
    .expect(201);
    receiver
}

/// Fires the callback's schedule (the clock moves to it) and waits until the dispatch it
/// started is over.
async fn fire(server: &TestServer, org: &Org, id: &str) -> Value {
    let before = get(org, id).await["updated_at"].clone();
    server.fire_schedule(id).await;
    common::eventually("the dispatch ends", WAIT, || async {
        let callback = get(org, id).await;
        (callback["status"] != "dispatching" && callback["updated_at"] != before)
            .then_some(callback)
    })
    .await
}

async fn outcome(org: &Org, id: &str, body: Value) -> Answer {
    org.post(&format!("/v1/callbacks/{id}/outcome"), body).await
}

// --- calling windows -------------------------------------------------------------------------

const NEW_YORK_9_TO_5: &str =
    r#"{"time_zone": "America/New_York", "start": "09:00", "end": "17:00"}"#;

/// Asked outside the window, a callback is scheduled at the next opening: across midnight,
/// across the March switch to daylight time (09:00 EDT is 13:00Z, not 14:00Z), in the
/// callback's own zone, and on a later day; `requested_at` keeps the time asked.
async fn a_callback_asked_outside_its_window_is_moved_to_the_next_opening(backend: Backend) {
    // Friday 2027-03-12, 15:00 in New York (EST, UTC-5).
    let server = server_at(backend, "2027-03-12T20:00:00Z").await;
    let org = server.org().await;
    let window: Value = serde_json::from_str(NEW_YORK_9_TO_5).unwrap();
    let flow = flow_with(&org, json!({"calling_window": window})).await;

    // Saturday 18:30 EST → Sunday 09:00, which is daylight time (EDT, UTC-4) since 02:00.
    let moved = created(&org, &flow, json!({"scheduled_at": "2027-03-13T23:30:00Z"})).await;
    assert_eq!(ts(&moved["scheduled_at"]), at("2027-03-14T13:00:00Z"));
    assert_eq!(ts(&moved["requested_at"]), at("2027-03-13T23:30:00Z"));
    assert_eq!(moved["attempt"], 1);
    // Its schedule is at the opening too.
    let schedule = server.schedule_of(&id_of(&moved)).await.unwrap();
    assert_eq!(schedule.at, at("2027-03-14T13:00:00Z"));

    // Inside the window: unchanged.
    let inside = created(&org, &flow, json!({"scheduled_at": "2027-03-15T14:00:00Z"})).await;
    assert_eq!(ts(&inside["scheduled_at"]), at("2027-03-15T14:00:00Z"));
    // At the window's end exactly: the next day's start (the end is not open).
    let at_end = created(&org, &flow, json!({"scheduled_at": "2027-03-15T21:00:00Z"})).await;
    assert_eq!(ts(&at_end["scheduled_at"]), at("2027-03-16T13:00:00Z"));

    // The recipient's own zone replaces the window's: Saturday 23:30 in London → Sunday 09:00
    // GMT (London switches two weeks later).
    let london = created(
        &org,
        &flow,
        json!({"scheduled_at": "2027-03-13T23:30:00Z", "time_zone": "europe/london"}),
    )
    .await;
    assert_eq!(
        london["time_zone"], "Europe/London",
        "in the database's spelling"
    );
    assert_eq!(ts(&london["scheduled_at"]), at("2027-03-14T09:00:00Z"));

    // November's switch back: Saturday 2027-11-06 20:00 EDT → Sunday 09:00 EST (14:00Z).
    let november = created(&org, &flow, json!({"scheduled_at": "2027-11-07T00:00:00Z"})).await;
    assert_eq!(ts(&november["scheduled_at"]), at("2027-11-07T14:00:00Z"));

    // An opening after expires_at: refused, naming the field.
    let too_late = create(
        &org,
        &flow,
        json!({"scheduled_at": "2027-03-13T23:30:00Z", "expires_at": "2027-03-14T12:00:00Z"}),
    )
    .await;
    too_late.expect_error(400, "VALIDATION_ERROR");
    assert_eq!(too_late.detail_fields(), ["expires_at"]);
}

/// A window that opens on a later day, in a zone whose daylight shift is 30 minutes: Lord Howe
/// Island is UTC+11 until 2027-04-04, then UTC+10:30. A callback for "now" outside the window
/// is scheduled for the opening, not dispatched.
async fn a_window_on_a_later_day_follows_lord_howes_half_hour_shift(backend: Backend) {
    // Saturday 2027-03-13, 07:00 on Lord Howe.
    let server = server_at(backend, "2027-03-12T20:00:00Z").await;
    let org = server.org().await;
    let receiver = receiver_for(&org, &[]).await;
    let flow = flow_with(
        &org,
        json!({"calling_window": {"time_zone": "Australia/Lord_Howe", "days": ["sat"],
                                  "start": "10:00", "end": "12:00"}}),
    )
    .await;
    let now = created(&org, &flow, json!({})).await;
    assert_eq!(now["status"], "scheduled");
    assert_eq!(ts(&now["scheduled_at"]), at("2027-03-12T23:00:00Z"));
    assert_eq!(ts(&now["requested_at"]), at("2027-03-12T20:00:00Z"));

    // Thursday 2027-04-01 11:00 (+11) → Saturday 2027-04-03 10:00 (+11).
    let before = created(&org, &flow, json!({"scheduled_at": "2027-04-01T00:00:00Z"})).await;
    assert_eq!(ts(&before["scheduled_at"]), at("2027-04-02T23:00:00Z"));
    // Monday 2027-04-05 10:30 (+10:30) → Saturday 2027-04-10 10:00 (+10:30).
    let after = created(&org, &flow, json!({"scheduled_at": "2027-04-05T00:00:00Z"})).await;
    assert_eq!(ts(&after["scheduled_at"]), at("2027-04-09T23:30:00Z"));

    // The "now" callback is dispatched at the opening, and not before.
    assert!(receiver.deliveries().is_empty());
    let dispatched = fire(&server, &org, &id_of(&now)).await;
    assert_eq!(dispatched["status"], "dispatched");
}

/// A callback that falls due outside its window (here: the window was narrowed after it was
/// scheduled) is moved to the next opening — still `scheduled`, `callback.rescheduled` — and
/// dispatched there; one whose next opening is after `expires_at` fails `EXPIRED`.
async fn a_callback_due_outside_its_window_is_moved_not_dispatched(backend: Backend) {
    let server = server_at(backend, "2027-03-12T20:00:00Z").await;
    let org = server.org().await;
    let receiver = receiver_for(&org, &["callback.rescheduled"]).await;
    let window: Value = serde_json::from_str(NEW_YORK_9_TO_5).unwrap();
    let flow = flow_with(&org, json!({"calling_window": window})).await;
    // 16:00 EST: inside the window when asked.
    let kept = created(&org, &flow, json!({"scheduled_at": "2027-03-12T21:00:00Z"})).await;
    let expiring = created(
        &org,
        &flow,
        json!({"scheduled_at": "2027-03-12T21:30:00Z", "expires_at": "2027-03-13T12:00:00Z"}),
    )
    .await;
    assert_eq!(ts(&kept["scheduled_at"]), at("2027-03-12T21:00:00Z"));

    // The ACTIVE version's window narrows to 09:00–10:00 (policies are editable while ACTIVE).
    org.put(
        &format!("/v1/flows/{flow}"),
        json!({"calling_window": {"time_zone": "America/New_York", "start": "09:00", "end": "10:00"}}),
    )
    .await
    .expect(200);

    let moved = fire(&server, &org, &id_of(&kept)).await;
    assert_eq!(moved["status"], "scheduled");
    assert_eq!(ts(&moved["scheduled_at"]), at("2027-03-13T14:00:00Z"));
    assert!(receiver.of_type("callback.dispatch").is_empty());
    let rescheduled = receiver.wait_for("callback.rescheduled", 1, WAIT).await;
    assert_eq!(rescheduled.len(), 1);
    assert_eq!(
        rescheduled[0].json["data"]["callback"]["scheduled_at"],
        moved["scheduled_at"]
    );

    let expired = fire(&server, &org, &id_of(&expiring)).await;
    assert_eq!(expired["status"], "failed");
    assert_eq!(expired["failure_cause"], "EXPIRED");

    // At the opening it is dispatched.
    let dispatched = fire(&server, &org, &id_of(&kept)).await;
    assert_eq!(dispatched["status"], "dispatched");
    assert_eq!(receiver.of_type("callback.dispatch").len(), 1);
}

// --- outcomes and retries --------------------------------------------------------------------

/// no_answer → no_answer → answered: each retry is scheduled exactly `delays_s` after its
/// outcome (the last delay repeating), `attempt` counts, `attempts` keeps the history, and an
/// outcome posted again for the same attempt is refused.
async fn a_retry_chain_schedules_each_attempt_exactly(backend: Backend) {
    let server = server_at(backend, "2027-03-12T20:00:00Z").await;
    let org = server.org().await;
    let receiver = receiver_for(&org, &["callback.outcome", "callback.rescheduled"]).await;
    let flow = flow_with(
        &org,
        json!({"retry_policy": {"max_attempts": 3, "retry_on": ["no_answer", "busy"],
                                "delays_s": [600, 3600]}}),
    )
    .await;
    let callback = created(&org, &flow, json!({"scheduled_at": "2027-03-12T20:01:00Z"})).await;
    assert_eq!(callback["max_attempts"], 3);
    let id = id_of(&callback);

    let first = fire(&server, &org, &id).await;
    assert_eq!(first["status"], "dispatched");
    let told_at = server.clock.freeze();
    let retried = outcome(
        &org,
        &id,
        json!({"outcome": "no_answer", "detail": "rang out"}),
    )
    .await;
    let retried = retried.expect(200);
    assert_eq!(retried["status"], "scheduled");
    assert_eq!(retried["attempt"], 2);
    assert_eq!(retried["outcome"], "no_answer");
    assert_eq!(
        ts(&retried["scheduled_at"]),
        told_at + SignedDuration::from_secs(600)
    );
    assert_eq!(retried["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(retried["attempts"][0]["attempt"], 1);
    assert_eq!(retried["attempts"][0]["outcome"], "no_answer");
    assert_eq!(retried["attempts"][0]["detail"], "rang out");
    assert_eq!(
        retried["attempts"][0]["created_session_id"],
        first["created_session_id"]
    );
    // Its new schedule.
    let schedule = server
        .schedule_of(&id)
        .await
        .expect("a schedule for attempt 2");
    assert_eq!(schedule.at, told_at + SignedDuration::from_secs(600));
    // Posted again while scheduled: refused.
    outcome(&org, &id, json!({"outcome": "no_answer"}))
        .await
        .expect_error(409, "CONFLICT");

    let second = fire(&server, &org, &id).await;
    assert_eq!(second["status"], "dispatched");
    assert_eq!(second["attempt"], 2);
    let told_at = server.clock.freeze();
    let retried = outcome(&org, &id, json!({"outcome": "no_answer"})).await;
    let retried = retried.expect(200);
    assert_eq!(retried["attempt"], 3);
    assert_eq!(
        ts(&retried["scheduled_at"]),
        told_at + SignedDuration::from_secs(3600)
    );

    fire(&server, &org, &id).await;
    let answered = outcome(
        &org,
        &id,
        json!({"outcome": "answered", "session_id": "sess_9"}),
    )
    .await
    .expect(200)
    .clone();
    assert_eq!(answered["status"], "dispatched");
    assert_eq!(answered["outcome"], "answered");
    let attempts: Vec<(u64, String)> = answered["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["attempt"].as_u64().unwrap(),
                a["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        attempts,
        [
            (1, "no_answer".to_owned()),
            (2, "no_answer".to_owned()),
            (3, "answered".to_owned())
        ]
    );
    outcome(&org, &id, json!({"outcome": "answered"}))
        .await
        .expect_error(409, "CONFLICT");
    assert_eq!(
        receiver.wait_for("callback.outcome", 3, WAIT).await.len(),
        3
    );
    assert_eq!(
        receiver
            .wait_for("callback.rescheduled", 2, WAIT)
            .await
            .len(),
        2
    );
    assert_eq!(receiver.of_type("callback.dispatch").len(), 3);
}

/// At `max_attempts` a retryable outcome is recorded and the callback stays `dispatched`; an
/// outcome not in `retry_on` never retries; ten outcomes posted at once are recorded once.
async fn max_attempts_holds_exactly_even_under_concurrent_outcomes(backend: Backend) {
    let server = server_at(backend, "2027-03-12T20:00:00Z").await;
    let org = server.org().await;
    let _receiver = receiver_for(&org, &[]).await;
    let flow = flow_with(&org, json!({"retry_policy": {"max_attempts": 2}})).await;

    let id = id_of(&created(&org, &flow, json!({"scheduled_at": "2027-03-12T20:01:00Z"})).await);
    fire(&server, &org, &id).await;
    // Ten at once: one is recorded (and retries), nine find the attempt already told.
    let answers: Vec<Answer> = futures_util::stream::iter(0..10)
        .map(|_| outcome(&org, &id, json!({"outcome": "busy"})))
        .buffer_unordered(10)
        .collect()
        .await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        9,
        "{statuses:?}"
    );
    let callback = get(&org, &id).await;
    assert_eq!(callback["attempt"], 2);
    assert_eq!(callback["attempts"].as_array().unwrap().len(), 1);

    fire(&server, &org, &id).await;
    let last = outcome(&org, &id, json!({"outcome": "no_answer"})).await;
    let last = last.expect(200);
    assert_eq!(last["status"], "dispatched", "attempt 2 of 2: no retry");
    assert_eq!(last["outcome"], "no_answer");
    assert_eq!(last["attempts"].as_array().unwrap().len(), 2);
    assert_eq!(server.schedule_of(&id).await, None);

    // voicemail is not in the default retry_on ([no_answer, busy]).
    let other = id_of(
        &created(
            &org,
            &flow,
            json!({"scheduled_at": "2027-03-12T21:00:00Z", "to_number": "+15550100002"}),
        )
        .await,
    );
    fire(&server, &org, &other).await;
    let voicemail = outcome(&org, &other, json!({"outcome": "voicemail"})).await;
    assert_eq!(voicemail.expect(200)["status"], "dispatched");
}

// --- one active callback per number ----------------------------------------------------------

/// Twenty creates at once to one number under `one_active_per_number`: one 201, nineteen 409s
/// naming it. The number is free again once it is cancelled, and once its successor is
/// dispatched; a trigger URL obeys the rule too; another number is never affected.
async fn one_active_callback_per_number_under_concurrent_creates(backend: Backend) {
    let server = server_at(backend, "2027-03-12T20:00:00Z").await;
    let org = server.org().await;
    let _receiver = receiver_for(&org, &[]).await;
    let flow = flow_with(&org, json!({"dedupe": "one_active_per_number"})).await;
    let answers: Vec<Answer> = futures_util::stream::iter(0..20)
        .map(|_| create(&org, &flow, json!({"scheduled_at": "2027-03-12T21:00:00Z"})))
        .buffer_unordered(20)
        .collect()
        .await;
    let winners: Vec<&Answer> = answers.iter().filter(|a| a.status == 201).collect();
    assert_eq!(
        winners.len(),
        1,
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    let winner = id_of(&winners[0].body);
    for answer in answers.iter().filter(|a| a.status != 201) {
        answer.expect_error(409, "CONFLICT");
        assert_eq!(answer.body["existing_callback_id"], winner.as_str());
    }
    // Another number is not held.
    created(&org, &flow, json!({"to_number": "+15550100002"})).await;

    // A trigger URL on the flow is refused the same way.
    let trigger = org
        .post(&format!("/v1/flows/{flow}/callbacks"), json!({}))
        .await
        .expect(201)
        .clone();
    let url = trigger["url"].as_str().unwrap();
    let path = &url[url.find("/v1/hooks/").unwrap()..];
    let by_trigger = server
        .anonymous(Method::POST, path)
        .json(&json!({"to_number": NUMBER}))
        .send()
        .await;
    by_trigger.expect_error(409, "CONFLICT");
    assert_eq!(by_trigger.body["existing_callback_id"], winner.as_str());

    // Cancelled: the number is free.
    org.post(&format!("/v1/callbacks/{winner}/cancel"), json!({}))
        .await
        .expect(200);
    let next = id_of(&created(&org, &flow, json!({"scheduled_at": "2027-03-12T21:00:00Z"})).await);
    create(&org, &flow, json!({"scheduled_at": "2027-03-12T22:00:00Z"}))
        .await
        .expect_error(409, "CONFLICT");
    // Dispatched: free again.
    assert_eq!(fire(&server, &org, &next).await["status"], "dispatched");
    created(&org, &flow, json!({"scheduled_at": "2027-03-12T22:00:00Z"})).await;
}

/// The rule counts every active callback to the number, also one scheduled by a flow without
/// it; and a failed callback dispatched again by hand must take its number back.
async fn one_active_per_number_counts_every_callback_and_manual_redispatch(backend: Backend) {
    let server = server_at(backend, "2027-03-12T20:00:00Z").await;
    let org = server.org().await;
    let plain = flow_with(&org, json!({})).await;
    let strict = flow_with(&org, json!({"dedupe": "one_active_per_number"})).await;
    let later = json!({"scheduled_at": "2027-03-13T20:00:00Z"});
    let earlier = id_of(&created(&org, &plain, later.clone()).await);
    let refused = create(&org, &strict, later.clone()).await;
    refused.expect_error(409, "CONFLICT");
    assert_eq!(refused.body["existing_callback_id"], earlier.as_str());

    // No endpoint: a dispatch by hand fails (NO_DISPATCH_TARGET), which frees the number.
    let other = json!({"to_number": "+15550100002", "scheduled_at": "2027-03-13T20:00:00Z"});
    let first = id_of(&created(&org, &strict, other.clone()).await);
    let failed = org
        .post(&format!("/v1/callbacks/{first}/dispatch"), json!({}))
        .await
        .expect(200)
        .clone();
    assert_eq!(failed["status"], "failed");
    let second = id_of(&created(&org, &strict, other).await);
    let again = org
        .post(&format!("/v1/callbacks/{first}/dispatch"), json!({}))
        .await;
    again.expect_error(409, "CONFLICT");
    assert_eq!(again.body["existing_callback_id"], second.as_str());
}

// --- the do-not-call list --------------------------------------------------------------------

/// A number suppressed while its callback waits: the callback fails `SUPPRESSED` when due,
/// and no new callback to it can be created; deleting the suppression lifts both.
async fn a_suppression_added_while_a_callback_waits_fails_it_when_due(backend: Backend) {
    let server = server_at(backend, "2027-03-12T20:00:00Z").await;
    let org = server.org().await;
    let receiver = receiver_for(&org, &[]).await;
    let flow = flow_with(&org, json!({})).await;
    let id = id_of(&created(&org, &flow, json!({"scheduled_at": "2027-03-12T21:00:00Z"})).await);
    org.put(
        &format!("/v1/suppressions/{NUMBER_IN_PATH}"),
        json!({"reason": "asked by letter"}),
    )
    .await
    .expect(200);
    let refused = create(&org, &flow, json!({"scheduled_at": "2027-03-12T21:00:00Z"})).await;
    refused.expect_error(409, "CONFLICT");
    assert!(
        refused.body["error"]
            .as_str()
            .unwrap()
            .contains("do-not-call")
    );

    let failed = fire(&server, &org, &id).await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["failure_cause"], "SUPPRESSED");
    assert!(
        receiver.of_type("callback.dispatch").is_empty(),
        "never called"
    );

    org.delete(&format!("/v1/suppressions/{NUMBER_IN_PATH}"))
        .await
        .expect(200);
    created(&org, &flow, json!({"scheduled_at": "2027-03-13T21:00:00Z"})).await;
}

/// An `opt_out` outcome suppresses the number (`source`: `opt_out:<id>`) and cancels the
/// organization's other scheduled callbacks to it (`cancel_reason`: `opt_out`), not those to
/// other numbers nor another organization's.
async fn an_opt_out_suppresses_the_number_and_cancels_its_other_callbacks(backend: Backend) {
    let server = server_at(backend, "2027-03-12T20:00:00Z").await;
    let org = server.org().await;
    let other_org = server.org().await;
    let _receiver = receiver_for(&org, &[]).await;
    let flow = flow_with(&org, json!({})).await;
    let other_flow = flow_with(&other_org, json!({})).await;
    let called =
        id_of(&created(&org, &flow, json!({"scheduled_at": "2027-03-12T20:01:00Z"})).await);
    let siblings: Vec<String> = futures_util::stream::iter(0..3)
        .then(|n| {
            let (org, flow) = (&org, &flow);
            async move {
                id_of(
                    &created(
                        org,
                        flow,
                        json!({"scheduled_at": format!("2027-03-1{}T20:00:00Z", 3 + n)}),
                    )
                    .await,
                )
            }
        })
        .collect()
        .await;
    let elsewhere = id_of(
        &created(
            &org,
            &flow,
            json!({"to_number": "+15550100002", "scheduled_at": "2027-03-13T20:00:00Z"}),
        )
        .await,
    );
    let not_ours = id_of(
        &created(
            &other_org,
            &other_flow,
            json!({"scheduled_at": "2027-03-13T20:00:00Z"}),
        )
        .await,
    );

    fire(&server, &org, &called).await;
    let opted = outcome(
        &org,
        &called,
        json!({"outcome": "opt_out", "detail": "please never call"}),
    )
    .await;
    assert_eq!(opted.expect(200)["outcome"], "opt_out");

    let suppression = org
        .get(&format!("/v1/suppressions/{NUMBER_IN_PATH}"))
        .await
        .expect(200)
        .clone();
    assert_eq!(suppression["number"], NUMBER);
    assert_eq!(suppression["source"], format!("opt_out:{called}"));
    for id in &siblings {
        let sibling = get(&org, id).await;
        assert_eq!(sibling["status"], "cancelled", "{id}");
        assert_eq!(sibling["cancel_reason"], "opt_out");
        assert_eq!(
            server.schedule_of(id).await,
            None,
            "{id}'s schedule is deleted"
        );
    }
    assert_eq!(get(&org, &elsewhere).await["status"], "scheduled");
    assert_eq!(get(&other_org, &not_ours).await["status"], "scheduled");
    create(&org, &flow, json!({}))
        .await
        .expect_error(409, "CONFLICT");
}

// --- bulk cancel -----------------------------------------------------------------------------

/// 1,200 scheduled callbacks of one session are cancelled in three calls (500, 500, 200), each
/// as its own cancel route would (status, schedule); others are untouched.
async fn bulk_cancel_takes_1200_callbacks_in_three_calls(backend: Backend) {
    let server = server_at(backend, "2027-03-12T20:00:00Z").await;
    let org = server.org().await;
    let flow = flow_with(&org, json!({})).await;
    let ids: Vec<String> = futures_util::stream::iter(0..1200)
        .map(|n| {
            let (org, flow) = (&org, &flow);
            async move {
                id_of(
                    &created(
                        org,
                        flow,
                        json!({"source_session_id": "sess_bulk",
                    "to_number": format!("+1555{:07}", n), "scheduled_at": "2027-03-13T20:00:00Z"}),
                    )
                    .await,
                )
            }
        })
        // A few at once: the emulator answers one request at a time.
        .buffer_unordered(4)
        .collect()
        .await;
    let kept = id_of(
        &created(
            &org,
            &flow,
            json!({"source_session_id": "sess_other", "scheduled_at": "2027-03-13T20:00:00Z"}),
        )
        .await,
    );

    let mut counts = Vec::new();
    let mut cancelled = std::collections::BTreeSet::new();
    loop {
        let answer = org
            .post(
                "/v1/callbacks/cancel",
                json!({"source_session_id": "sess_bulk", "reason": "campaign stopped"}),
            )
            .await;
        let body = answer.expect(200);
        let these = body["cancelled"].as_array().unwrap();
        counts.push((these.len(), body["remaining"].as_bool().unwrap()));
        cancelled.extend(these.iter().map(|id| id.as_str().unwrap().to_owned()));
        if !body["remaining"].as_bool().unwrap() {
            break;
        }
        assert!(counts.len() < 5, "{counts:?}");
    }
    assert_eq!(counts, [(500, true), (500, true), (200, false)]);
    assert_eq!(cancelled, ids.iter().cloned().collect());
    for id in ids.iter().step_by(97) {
        let callback = get(&org, id).await;
        assert_eq!(callback["status"], "cancelled");
        assert_eq!(callback["cancel_reason"], "campaign stopped");
        assert_eq!(
            server.schedule_of(id).await,
            None,
            "{id}'s schedule is deleted"
        );
    }
    assert_eq!(get(&org, &kept).await["status"], "scheduled");
}

/// Filters combine: by number and flow, only that flow's callbacks to the number; another
/// organization's are never touched; a body without a filter is refused.
async fn bulk_cancel_filters_combine_and_stay_in_the_organization(backend: Backend) {
    let server = server_at(backend, "2027-03-12T20:00:00Z").await;
    let org = server.org().await;
    let other_org = server.org().await;
    let first = flow_with(&org, json!({})).await;
    let second = flow_with(&org, json!({})).await;
    let theirs = flow_with(&other_org, json!({})).await;
    let later = json!({"scheduled_at": "2027-03-13T20:00:00Z"});
    let a = id_of(&created(&org, &first, later.clone()).await);
    let b = id_of(&created(&org, &second, later.clone()).await);
    let c = id_of(&created(&other_org, &theirs, later.clone()).await);
    let answer = org
        .post(
            "/v1/callbacks/cancel",
            json!({"to_number": NUMBER, "flow": first}),
        )
        .await;
    assert_eq!(answer.expect(200)["cancelled"], json!([a]));
    assert_eq!(get(&org, &b).await["status"], "scheduled");
    assert_eq!(get(&other_org, &c).await["status"], "scheduled");
    let by_number = org
        .post("/v1/callbacks/cancel", json!({"to_number": NUMBER}))
        .await;
    assert_eq!(by_number.expect(200)["cancelled"], json!([b]));
    assert_eq!(get(&other_org, &c).await["status"], "scheduled");

    let empty = org
        .post("/v1/callbacks/cancel", json!({"reason": "no filter"}))
        .await;
    empty.expect_error(400, "VALIDATION_ERROR");
    let bad = org
        .post(
            "/v1/callbacks/cancel",
            json!({"to_number": "555", "flow": "nope", "extra": 1}),
        )
        .await;
    bad.expect_error(400, "VALIDATION_ERROR");
    assert_eq!(bad.detail_fields().len(), 3, "{}", bad.text);
    org.public(Method::POST, "/v1/callbacks/cancel")
        .json(&json!({"to_number": NUMBER}))
        .send()
        .await
        .expect_error(403, "FORBIDDEN");
}

// --- bad input -------------------------------------------------------------------------------

/// Every policy field is checked, each problem named; outcomes are checked and tenant-bound.
async fn bad_policies_and_outcomes_are_400s_naming_their_fields(backend: Backend) {
    let server = server_at(backend, "2027-03-12T20:00:00Z").await;
    let org = server.org().await;
    let bad = org
        .post(
            "/v1/flows",
            json!({"name": "x",
                   "calling_window": {"time_zone": "Mars/Base", "days": ["funday"], "start": "25:00", "end": "09:00"},
                   "retry_policy": {"max_attempts": 11, "retry_on": ["answered"], "delays_s": [59]},
                   "dedupe": "sometimes"}),
        )
        .await;
    bad.expect_error(400, "VALIDATION_ERROR");
    let fields = bad.detail_fields();
    for field in [
        "calling_window.time_zone",
        "calling_window.start",
        "retry_policy.max_attempts",
        "dedupe",
    ] {
        assert!(fields.iter().any(|f| f == field), "{field} in {fields:?}");
    }
    assert!(
        fields.iter().any(|f| f.starts_with("calling_window.days")),
        "{fields:?}"
    );
    assert!(
        fields
            .iter()
            .any(|f| f.starts_with("retry_policy.retry_on")),
        "{fields:?}"
    );
    assert!(
        fields
            .iter()
            .any(|f| f.starts_with("retry_policy.delays_s")),
        "{fields:?}"
    );

    let flow = flow_with(&org, json!({})).await;
    let zone = create(&org, &flow, json!({"time_zone": "Europe/Atlantis"})).await;
    zone.expect_error(400, "VALIDATION_ERROR");
    assert_eq!(zone.detail_fields(), ["time_zone"]);

    let _receiver = receiver_for(&org, &[]).await;
    let id = id_of(&created(&org, &flow, json!({"scheduled_at": "2027-03-12T20:01:00Z"})).await);
    // Not dispatched yet.
    outcome(&org, &id, json!({"outcome": "answered"}))
        .await
        .expect_error(409, "CONFLICT");
    fire(&server, &org, &id).await;
    for body in [
        json!({}),
        json!({"outcome": "hung_up"}),
        json!({"outcome": "answered", "detail": "x".repeat(501)}),
        json!({"outcome": "answered", "status": "dispatched"}),
    ] {
        outcome(&org, &id, body)
            .await
            .expect_error(400, "VALIDATION_ERROR");
    }
    let stranger = server.org().await;
    outcome(&stranger, &id, json!({"outcome": "answered"}))
        .await
        .expect_error(404, "NOT_FOUND");
    org.public(Method::POST, &format!("/v1/callbacks/{id}/outcome"))
        .json(&json!({"outcome": "answered"}))
        .send()
        .await
        .expect_error(403, "FORBIDDEN");
    outcome(&org, &id, json!({"outcome": "answered"}))
        .await
        .expect(200);
}

on_every_store!(
    a_callback_asked_outside_its_window_is_moved_to_the_next_opening,
    a_window_on_a_later_day_follows_lord_howes_half_hour_shift,
    a_callback_due_outside_its_window_is_moved_not_dispatched,
    a_retry_chain_schedules_each_attempt_exactly,
    max_attempts_holds_exactly_even_under_concurrent_outcomes,
    one_active_callback_per_number_under_concurrent_creates,
    one_active_per_number_counts_every_callback_and_manual_redispatch,
    a_suppression_added_while_a_callback_waits_fails_it_when_due,
    an_opt_out_suppresses_the_number_and_cancels_its_other_callbacks,
    bulk_cancel_takes_1200_callbacks_in_three_calls,
    bulk_cancel_filters_combine_and_stay_in_the_organization,
    bad_policies_and_outcomes_are_400s_naming_their_fields,
);
