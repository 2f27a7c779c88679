//! Scheduled callbacks (SPEC §4) over HTTP, on the local default (memory + in-process timers)
//! and on the cloud's shape (DynamoDB + EventBridge Scheduler on the emulator, which never
//! fires: there the test fires each schedule by reading it back and invoking the `dispatch`
//! handler with its input, as EventBridge would).

mod common;

use std::time::Duration;

use common::receiver::{Receiver, Reply};
use common::{Answer, Backend, Org, TestServer};
use flowline_core::jobs::JobDone;
use flowline_core::scheduler::DispatchJob;
use flowline_core::time::{Clock, format_timestamp};
use jiff::{SignedDuration, Timestamp};
use reqwest::Method;
use serde_json::{Value, json};

/// The SPEC's field list, exactly.
const CALLBACK_FIELDS: &[&str] = &[
    "id",
    "organization_id",
    "flow",
    "flow_version",
    "source_session_id",
    "created_session_id",
    "agent_id",
    "phone_number_id",
    "to_number",
    "from_number",
    "scheduled_at",
    "expires_at",
    "status",
    "reason",
    "instructions",
    "summary",
    "pipeline_config",
    "metadata",
    "failure_cause",
    "attempted_at",
    "dispatched_at",
    "cancelled_at",
    "created_at",
    "updated_at",
    "cancel_reason",
    "attempt",
    "max_attempts",
    "requested_at",
    "time_zone",
    "outcome",
    "outcome_at",
    "attempts",
];

/// `seconds` from now on the server's clock, as the API writes timestamps.
fn in_(server: &TestServer, seconds: f64) -> String {
    format_timestamp(server.clock.now() + SignedDuration::from_secs_f64(seconds))
}

fn parse(text: &Value) -> Timestamp {
    text.as_str().unwrap().parse().unwrap()
}

/// A flow with an ACTIVE version (and an entry point number), ready for callbacks.
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

/// Registers the receiver for `events`; answers the endpoint's secret.
async fn subscribe(org: &Org, receiver: &Receiver, events: &[&str]) -> String {
    let answer = org
        .post(
            "/v1/webhooks",
            json!({"url": receiver.url, "events": events}),
        )
        .await;
    answer.expect(201)["secret"].as_str().unwrap().to_owned()
}

async fn schedule(org: &Org, flow: &str, at: Option<&str>) -> Value {
    let mut body =
        json!({"flow": flow, "to_number": "+15557654321", "reason": "asked for a call back"});
    if let Some(at) = at {
        body["scheduled_at"] = at.into();
    }
    org.post("/v1/callbacks", body).await.expect(201).clone()
}

/// Polls the callback until it leaves `scheduled`/`dispatching`: the dispatch the schedule
/// started finishes after it answered.
async fn settled(org: &Org, id: &str) -> Value {
    common::eventually("the callback settles", Duration::from_secs(15), || async {
        let body = org
            .get(&format!("/v1/callbacks/{id}"))
            .await
            .expect(200)
            .clone();
        (!matches!(body["status"].as_str(), Some("scheduled" | "dispatching"))).then_some(body)
    })
    .await
}

/// The time the scheduler will fire a callback scheduled for `scheduled_at`: exactly then on
/// the in-process timers; on EventBridge the `at()` expression's whole second, rounded up (a
/// schedule is never early).
fn fire_time(server: &TestServer, scheduled_at: Timestamp) -> Timestamp {
    match server.backend {
        Backend::Memory | Backend::Persistent => scheduled_at,
        Backend::DynamoDb => Timestamp::from_second(
            scheduled_at.as_second() + i64::from(scheduled_at.subsec_nanosecond() > 0),
        )
        .unwrap(),
    }
}

async fn scheduled_callback_is_delivered_on_time_signed_and_records_the_session(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let receiver = Receiver::start().await;
    receiver.default_reply(Reply::session("sess_from_agent_runtime"));
    let secret = subscribe(&org, &receiver, &["callback.dispatch"]).await;
    let flow = published_flow(&org).await;
    let at = in_(&server, 90.5);
    let callback = schedule(&org, &flow, Some(&at)).await;
    assert_eq!(callback["status"], "scheduled");
    let id = callback["id"].as_str().unwrap();

    // One schedule, for its time, handing dispatch this callback.
    let scheduled = server.schedule_of(id).await.expect("a schedule");
    assert_eq!(
        scheduled.at,
        fire_time(&server, parse(&callback["scheduled_at"]))
    );
    if backend == Backend::DynamoDb {
        let job = scheduled.job.as_dispatch().expect("a dispatch");
        assert_eq!(job.callback_id, id);
        assert_eq!(job.organization_id, org.id);
    }
    assert!(receiver.deliveries().is_empty(), "nothing before its time");

    let fired_at = server.fire_schedule(id).await;
    let deliveries = receiver
        .wait_for("callback.dispatch", 1, Duration::from_secs(10))
        .await;
    assert_eq!(deliveries.len(), 1);
    let delivery = &deliveries[0];
    assert!(
        delivery.signed_by(&secret),
        "the signature verifies with the endpoint's secret"
    );
    assert_eq!(delivery.json["data"]["callback"]["id"], callback["id"]);
    assert_eq!(delivery.json["data"]["flow"]["slug"], flow);
    assert_eq!(
        delivery.headers["webhook-id"],
        delivery.json["id"].as_str().unwrap()
    );

    let done = settled(&org, id).await;
    assert_eq!(done["status"], "dispatched", "{done}");
    assert_eq!(done["created_session_id"], "sess_from_agent_runtime");
    assert!(
        parse(&done["attempted_at"]) >= fired_at,
        "taken when it fired"
    );
    assert!(parse(&done["dispatched_at"]) >= parse(&done["attempted_at"]));
    assert!(
        server.schedule_of(id).await.is_none(),
        "the schedule is gone once it ran"
    );
}

async fn a_callback_has_exactly_the_specified_fields_with_nulls_for_absent_values(
    backend: Backend,
) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let flow = published_flow(&org).await;
    let callback = schedule(&org, &flow, Some(&in_(&server, 3600.0))).await;
    let mut fields: Vec<&str> = callback
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort();
    let mut expected = CALLBACK_FIELDS.to_vec();
    expected.sort();
    assert_eq!(fields, expected);
    assert!(callback["id"].as_str().unwrap().starts_with("cb_"));
    assert_eq!(callback["organization_id"], org.id);
    assert_eq!(callback["flow_version"], 1);
    assert_eq!(
        callback["from_number"], "+15550001111",
        "defaults to the flow's first entry point"
    );
    for absent in [
        "source_session_id",
        "created_session_id",
        "expires_at",
        "failure_cause",
        "attempted_at",
        "metadata",
    ] {
        assert!(callback[absent].is_null(), "{absent}");
    }
    let read = org
        .get(&format!(
            "/v1/callbacks/{}",
            callback["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(read.expect(200), &callback);
    assert!(read.header("etag").is_some());
}

async fn cancelled_before_its_time_is_never_delivered(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let receiver = Receiver::start().await;
    subscribe(&org, &receiver, &["callback.dispatch"]).await;
    let flow = published_flow(&org).await;
    let callback = schedule(&org, &flow, Some(&in_(&server, 60.0))).await;
    let id = callback["id"].as_str().unwrap();
    assert!(server.schedule_of(id).await.is_some());
    let stale_job = DispatchJob {
        callback_id: id.to_owned(),
        organization_id: org.id.clone(),
    };

    let cancelled = org
        .post(
            &format!("/v1/callbacks/{id}/cancel"),
            json!({"reason": "customer called in"}),
        )
        .await;
    let cancelled = cancelled.expect(200);
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["cancel_reason"], "customer called in");
    assert!(cancelled["cancelled_at"].is_string());
    assert!(
        server.schedule_of(id).await.is_none(),
        "the schedule is deleted"
    );
    // A schedule that fires anyway (a late or duplicate delivery) does nothing.
    server
        .clock
        .advance_to(parse(&callback["scheduled_at"]) + SignedDuration::from_secs(1));
    let outcome = dispatch::handle(&server.app, stale_job.into())
        .await
        .unwrap();
    assert_eq!(
        outcome,
        JobDone::Dispatch {
            callback_id: id.to_owned(),
            status: None
        }
    );
    assert!(receiver.of_type("callback.dispatch").is_empty());
    assert_eq!(
        org.get(&format!("/v1/callbacks/{id}")).await.expect(200)["status"],
        "cancelled"
    );
}

async fn cancelling_twice_answers_the_cancelled_callback_unchanged(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let flow = published_flow(&org).await;
    let id = schedule(&org, &flow, Some(&in_(&server, 3600.0))).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let first = org
        .post(&format!("/v1/callbacks/{id}/cancel"), json!({}))
        .await
        .expect(200)
        .clone();
    let again = org
        .call(Method::POST, &format!("/v1/callbacks/{id}/cancel"))
        .send()
        .await;
    assert_eq!(again.expect(200), &first);
}

async fn rescheduling_moves_the_delivery(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let receiver = Receiver::start().await;
    subscribe(&org, &receiver, &["callback.dispatch"]).await;
    let flow = published_flow(&org).await;
    let callback = schedule(&org, &flow, Some(&in_(&server, 60.0))).await;
    let id = callback["id"].as_str().unwrap();
    let old_time = parse(&callback["scheduled_at"]);
    let later = format_timestamp(old_time + SignedDuration::from_millis(60_500));
    let moved = org
        .patch(
            &format!("/v1/callbacks/{id}"),
            json!({"scheduled_at": later, "reason": "moved"}),
        )
        .await;
    let moved = moved.expect(200).clone();
    assert_eq!(moved["scheduled_at"], later);
    assert_eq!(moved["reason"], "moved");
    // The scheduler holds one schedule for it, at the new time: nothing fires at the old one.
    let scheduled = server.schedule_of(id).await.expect("a schedule");
    assert_eq!(
        scheduled.at,
        fire_time(&server, parse(&moved["scheduled_at"]))
    );
    match backend {
        Backend::Memory | Backend::Persistent => assert_eq!(server.timers.pending(), 1),
        Backend::DynamoDb => assert_eq!(
            common::schedule_names()
                .await
                .iter()
                .filter(|name| *name == id)
                .count(),
            1
        ),
    }
    // …and it comes at the new one.
    let fired_at = server.fire_schedule(id).await;
    let done = settled(&org, id).await;
    assert_eq!(done["status"], "dispatched");
    assert!(parse(&done["attempted_at"]) >= fired_at);
    assert!(fired_at > old_time + SignedDuration::from_secs(60));
    assert_eq!(receiver.of_type("callback.dispatch").len(), 1);
}

async fn a_failing_receiver_fails_the_callback_after_exactly_three_tries_and_a_manual_dispatch_then_succeeds(
    backend: Backend,
) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let receiver = Receiver::start().await;
    receiver.script([Reply::status(503), Reply::status(503), Reply::status(503)]);
    receiver.default_reply(Reply::session("sess_second_try"));
    subscribe(&org, &receiver, &["callback.dispatch"]).await;
    let flow = published_flow(&org).await;
    let callback = schedule(&org, &flow, Some(&in_(&server, 60.0))).await;
    let id = callback["id"].as_str().unwrap();
    server.fire_schedule(id).await;
    let failed = settled(&org, id).await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(
        failed["failure_cause"],
        format!("WEBHOOK_FAILED: 503 from {}", receiver.url)
    );
    assert_eq!(
        receiver.of_type("callback.dispatch").len(),
        3,
        "exactly three tries"
    );

    let retried = org
        .post(&format!("/v1/callbacks/{id}/dispatch"), json!({}))
        .await;
    let retried = retried.expect(200);
    assert_eq!(retried["status"], "dispatched");
    assert_eq!(retried["created_session_id"], "sess_second_try");
    assert!(retried["failure_cause"].is_null());
    assert_eq!(receiver.of_type("callback.dispatch").len(), 4);
}

async fn a_4xx_answer_is_not_retried(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let receiver = Receiver::start().await;
    receiver.default_reply(Reply::status(400));
    subscribe(&org, &receiver, &["callback.dispatch"]).await;
    let flow = published_flow(&org).await;
    let id = schedule(&org, &flow, Some(&in_(&server, 3600.0))).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let failed = org
        .post(&format!("/v1/callbacks/{id}/dispatch"), json!({}))
        .await;
    assert_eq!(
        failed.expect(200)["failure_cause"],
        format!("WEBHOOK_FAILED: 400 from {}", receiver.url)
    );
    assert_eq!(receiver.of_type("callback.dispatch").len(), 1);
}

async fn eight_concurrent_dispatches_give_one_success_and_one_delivery(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let receiver = Receiver::start().await;
    receiver.default_reply(Reply::session("sess_once").slow(Duration::from_millis(200)));
    subscribe(&org, &receiver, &["callback.dispatch"]).await;
    let flow = published_flow(&org).await;
    let id = schedule(&org, &flow, Some(&in_(&server, 3600.0))).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v1/callbacks/{id}/dispatch");
    let calls = (0..8).map(|_| org.post(&path, json!({})));
    let answers: Vec<Answer> = futures_util::future::join_all(calls).await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        answers
            .iter()
            .filter(|a| a.status != 200)
            .all(|a| a.status == 409 && a.body["code"] == "CONFLICT")
    );
    assert_eq!(receiver.of_type("callback.dispatch").len(), 1);
}

async fn concurrent_cancel_and_dispatch_have_exactly_one_winner(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let receiver = Receiver::start().await;
    subscribe(&org, &receiver, &["callback.dispatch"]).await;
    let flow = published_flow(&org).await;
    for _ in 0..3 {
        let id = schedule(&org, &flow, Some(&in_(&server, 3600.0))).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let before = receiver.of_type("callback.dispatch").len();
        let (cancel_path, dispatch_path) = (
            format!("/v1/callbacks/{id}/cancel"),
            format!("/v1/callbacks/{id}/dispatch"),
        );
        let (cancel, dispatch) = tokio::join!(
            org.post(&cancel_path, json!({})),
            org.post(&dispatch_path, json!({}))
        );
        assert_eq!(
            [cancel.status, dispatch.status]
                .iter()
                .filter(|s| **s == 200)
                .count(),
            1
        );
        let delivered = receiver.of_type("callback.dispatch").len() - before;
        let status = org.get(&format!("/v1/callbacks/{id}")).await.expect(200)["status"].clone();
        if cancel.status == 200 {
            assert_eq!((status.as_str().unwrap(), delivered), ("cancelled", 0));
        } else {
            assert_eq!((status.as_str().unwrap(), delivered), ("dispatched", 1));
        }
    }
}

async fn the_same_scheduler_input_twice_delivers_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let receiver = Receiver::start().await;
    receiver.default_reply(Reply::session("sess_x").slow(Duration::from_millis(100)));
    subscribe(&org, &receiver, &["callback.dispatch"]).await;
    let flow = published_flow(&org).await;
    let callback = schedule(&org, &flow, Some(&in_(&server, 60.0))).await;
    let job = DispatchJob {
        callback_id: callback["id"].as_str().unwrap().to_owned(),
        organization_id: org.id.clone(),
    };
    // Its time comes (on memory its own timer fires too: a third dispatcher in the race).
    server.clock.advance_to(parse(&callback["scheduled_at"]));
    let (first, second) = tokio::join!(
        dispatch::handle(&server.app, job.clone().into()),
        dispatch::handle(&server.app, job.clone().into())
    );
    first.unwrap();
    second.unwrap();
    let late = dispatch::handle(&server.app, job.clone().into())
        .await
        .unwrap();
    assert_eq!(
        late,
        JobDone::Dispatch {
            callback_id: job.callback_id,
            status: None
        },
        "a late delivery is a no-op"
    );
    settled(&org, callback["id"].as_str().unwrap()).await;
    assert_eq!(receiver.of_type("callback.dispatch").len(), 1);
}

async fn without_scheduled_at_the_callback_is_dispatched_within_seconds(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let receiver = Receiver::start().await;
    subscribe(&org, &receiver, &["callback.dispatch"]).await;
    let flow = published_flow(&org).await;
    let before = Timestamp::from_millisecond(server.clock.now().as_millisecond()).unwrap();
    let callback = schedule(&org, &flow, None).await;
    let after = server.clock.now();
    assert_eq!(callback["status"], "scheduled");
    let scheduled_at = parse(&callback["scheduled_at"]);
    assert!(
        before <= scheduled_at && scheduled_at <= after,
        "scheduled_at is the time of the request"
    );
    // No schedule (it could not be in the past): the dispatch was handed off at once, and it
    // completes without the clock moving.
    assert!(
        server
            .schedule_of(callback["id"].as_str().unwrap())
            .await
            .is_none()
    );
    let done = settled(&org, callback["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "dispatched");
    assert!(
        done["created_session_id"]
            .as_str()
            .unwrap()
            .starts_with("sess_"),
        "generated when the receiver names none"
    );
}

async fn without_a_subscribed_endpoint_the_callback_fails_with_no_dispatch_target(
    backend: Backend,
) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let receiver = Receiver::start().await;
    // Subscribed to something else, and a disabled dispatch endpoint: neither is a target.
    subscribe(&org, &receiver, &["callback.cancelled"]).await;
    let disabled = org
        .post(
            "/v1/webhooks",
            json!({"url": receiver.url, "events": ["callback.dispatch"], "status": "disabled"}),
        )
        .await;
    disabled.expect(201);
    let flow = published_flow(&org).await;
    let id = schedule(&org, &flow, Some(&in_(&server, 3600.0))).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let failed = org
        .post(&format!("/v1/callbacks/{id}/dispatch"), json!({}))
        .await;
    assert_eq!(failed.expect(200)["failure_cause"], "NO_DISPATCH_TARGET");
    assert!(receiver.deliveries().is_empty());
}

async fn an_inactive_flow_fails_due_callbacks_and_refuses_new_ones(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let receiver = Receiver::start().await;
    subscribe(&org, &receiver, &["callback.dispatch"]).await;
    let flow = published_flow(&org).await;
    let id = schedule(&org, &flow, Some(&in_(&server, 3600.0))).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    org.put(&format!("/v1/flows/{flow}"), json!({"active": false}))
        .await
        .expect(200);
    let failed = org
        .post(&format!("/v1/callbacks/{id}/dispatch"), json!({}))
        .await;
    assert_eq!(failed.expect(200)["failure_cause"], "FLOW_INACTIVE");
    let refused = org
        .post(
            "/v1/callbacks",
            json!({"flow": flow, "to_number": "+15557654321"}),
        )
        .await;
    refused.expect_error(409, "CONFLICT");
    assert!(receiver.of_type("callback.dispatch").is_empty());
}

async fn an_archived_flow_fails_due_callbacks(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let receiver = Receiver::start().await;
    subscribe(&org, &receiver, &["callback.dispatch"]).await;
    let flow = published_flow(&org).await;
    let id = schedule(&org, &flow, Some(&in_(&server, 3600.0))).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    org.delete(&format!("/v1/flows/{flow}")).await.expect(200);
    let failed = org
        .post(&format!("/v1/callbacks/{id}/dispatch"), json!({}))
        .await;
    assert_eq!(failed.expect(200)["failure_cause"], "FLOW_INACTIVE");
}

async fn the_pinned_flow_version_is_delivered_after_a_newer_one_is_published(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let receiver = Receiver::start().await;
    subscribe(&org, &receiver, &["callback.dispatch"]).await;
    let flow = published_flow(&org).await;
    let id = schedule(&org, &flow, Some(&in_(&server, 3600.0))).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let draft = org
        .post(&format!("/v1/flows/{flow}/versions"), json!({}))
        .await
        .expect(201)["id"]
        .clone();
    org.put(
        &format!("/v1/flows/{draft}"),
        json!({"data": {"greeting": "Version two"}}),
    )
    .await
    .expect(200);
    org.post(&format!("/v1/flows/{flow}/publish"), json!({}))
        .await
        .expect(200);
    let done = org
        .post(&format!("/v1/callbacks/{id}/dispatch"), json!({}))
        .await;
    assert_eq!(done.expect(200)["flow_version"], 1);
    let delivery = &receiver.of_type("callback.dispatch")[0];
    assert_eq!(delivery.json["data"]["flow"]["version"], 1);
    assert_eq!(
        delivery.json["data"]["flow"]["data"],
        r#"{"greeting":"Hello"}"#
    );
}

async fn a_dispatch_after_expires_at_fails_as_expired(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let receiver = Receiver::start().await;
    receiver.default_reply(Reply::status(503));
    subscribe(&org, &receiver, &["callback.dispatch"]).await;
    let flow = published_flow(&org).await;
    let body = json!({"flow": flow, "to_number": "+15557654321", "scheduled_at": in_(&server, 60.0), "expires_at": in_(&server, 120.0)});
    let callback = org.post("/v1/callbacks", body).await.expect(201).clone();
    let id = callback["id"].as_str().unwrap();
    server.fire_schedule(id).await;
    let failed = settled(&org, id).await;
    assert_eq!(failed["status"], "failed");
    let webhook_failed = failed["failure_cause"].clone();
    // A millisecond before `expires_at`, a retry still tries to deliver (and fails again)…
    let expires_at = parse(&callback["expires_at"]);
    server
        .clock
        .freeze_at(expires_at - SignedDuration::from_millis(1));
    let retried = org
        .post(&format!("/v1/callbacks/{id}/dispatch"), json!({}))
        .await;
    assert_eq!(retried.expect(200)["failure_cause"], webhook_failed);
    // …and at `expires_at` it fails as expired, without a delivery.
    let tries = receiver.of_type("callback.dispatch").len();
    server.clock.freeze_at(expires_at);
    let expired = org
        .post(&format!("/v1/callbacks/{id}/dispatch"), json!({}))
        .await;
    assert_eq!(expired.expect(200)["failure_cause"], "EXPIRED");
    assert_eq!(receiver.of_type("callback.dispatch").len(), tries);
}

async fn actions_outside_the_state_machine_are_conflicts(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let receiver = Receiver::start().await;
    subscribe(&org, &receiver, &["callback.dispatch"]).await;
    let flow = published_flow(&org).await;
    let id = schedule(&org, &flow, Some(&in_(&server, 3600.0))).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    org.post(&format!("/v1/callbacks/{id}/dispatch"), json!({}))
        .await
        .expect(200);
    for (path, body) in [
        (format!("/v1/callbacks/{id}/dispatch"), json!({})),
        (format!("/v1/callbacks/{id}/cancel"), json!({})),
    ] {
        org.post(&path, body).await.expect_error(409, "CONFLICT");
    }
    org.patch(
        &format!("/v1/callbacks/{id}"),
        json!({"reason": "too late"}),
    )
    .await
    .expect_error(409, "CONFLICT");
    let cancelled = schedule(&org, &flow, Some(&in_(&server, 3600.0))).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    org.post(&format!("/v1/callbacks/{cancelled}/cancel"), json!({}))
        .await
        .expect(200);
    org.post(&format!("/v1/callbacks/{cancelled}/dispatch"), json!({}))
        .await
        .expect_error(409, "CONFLICT");
}

async fn creating_needs_a_published_flow_and_valid_fields(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let missing = org
        .post(
            "/v1/callbacks",
            json!({"flow": "flow_AAAAAAAAAAAA", "to_number": "+15557654321"}),
        )
        .await;
    missing.expect_error(404, "NOT_FOUND");
    let draft = org
        .post("/v1/flows", json!({"name": "never published"}))
        .await
        .expect(201)["slug"]
        .clone();
    let unpublished = org
        .post(
            "/v1/callbacks",
            json!({"flow": draft, "to_number": "+15557654321"}),
        )
        .await;
    unpublished.expect_error(409, "CONFLICT");
    let flow = published_flow(&org).await;
    let invalid = org
        .post(
            "/v1/callbacks",
            json!({"flow": flow, "to_number": "5557654321", "scheduled_at": "2020-01-01T00:00:00Z",
                   "metadata": "not an object", "surprise": 1}),
        )
        .await;
    invalid.expect_error(400, "VALIDATION_ERROR");
    assert_eq!(
        invalid.detail_fields(),
        ["to_number", "metadata", "surprise", "scheduled_at"]
    );
    let too_far = org.post("/v1/callbacks", json!({"flow": flow, "to_number": "+15557654321", "scheduled_at": in_(&server, 366.0 * 86400.0)})).await;
    assert_eq!(
        too_far.expect_error(400, "VALIDATION_ERROR")["details"][0]["field"],
        "scheduled_at"
    );
    let wrong_type = org
        .call(Method::POST, "/v1/callbacks")
        .raw("text/plain", "flow=x")
        .send()
        .await;
    wrong_type.expect_error(415, "UNSUPPORTED_MEDIA_TYPE");
    let listed = org.get("/v1/callbacks").await;
    assert_eq!(
        listed.expect(200)["callbacks"].as_array().unwrap().len(),
        0,
        "nothing was stored"
    );
}

async fn an_idempotency_key_creates_one_callback(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let flow = published_flow(&org).await;
    let body =
        json!({"flow": flow, "to_number": "+15557654321", "scheduled_at": in_(&server, 3600.0)});
    let send = |body: Value| {
        org.call(Method::POST, "/v1/callbacks")
            .header("idempotency-key", "analysis-run-42")
            .json(&body)
            .send()
    };
    let first = send(body.clone()).await;
    let replay = send(body.clone()).await;
    assert_eq!(replay.expect(201), first.expect(201));
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(first.header("idempotent-replayed"), None);
    let mut other = body.clone();
    other["to_number"] = "+15550009999".into();
    send(other)
        .await
        .expect_error(409, "IDEMPOTENCY_KEY_REUSED");
    let listed = org.get("/v1/callbacks").await;
    assert_eq!(listed.expect(200)["callbacks"].as_array().unwrap().len(), 1);
}

async fn lists_are_newest_first_filtered_and_paginated_to_the_end(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let flow = published_flow(&org).await;
    let other_flow = published_flow(&org).await;
    let mut created = Vec::new();
    for index in 0..5 {
        let body = json!({"flow": if index == 4 { &other_flow } else { &flow }, "to_number": "+15557654321",
                          "scheduled_at": in_(&server, 3600.0), "source_session_id": format!("sess|{}", index % 2)});
        created.push(
            org.post("/v1/callbacks", body).await.expect(201)["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    org.post(&format!("/v1/callbacks/{}/cancel", created[0]), json!({}))
        .await
        .expect(200);

    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let path = match &token {
            Some(token) => format!("/v1/callbacks?limit=2&next_page_token={token}"),
            None => "/v1/callbacks?limit=2".to_owned(),
        };
        let page = org.get(&path).await.expect(200).clone();
        seen.extend(
            page["callbacks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_owned()),
        );
        match page.get("next_page_token").and_then(Value::as_str) {
            Some(next) => token = Some(next.to_owned()),
            None => break,
        }
    }
    // Newest first at millisecond precision; callbacks of the same millisecond by id (SPEC §1).
    // Ids start with their creation time, so that is the ids in descending order.
    let mut newest_first = created.clone();
    newest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, newest_first);

    let ids = |answer: Answer| -> Vec<String> {
        answer.expect(200)["callbacks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids(org.get("/v1/callbacks?status=cancelled").await),
        [created[0].clone()]
    );
    assert_eq!(
        ids(org.get(&format!("/v1/callbacks?flow={other_flow}")).await),
        [created[4].clone()]
    );
    let session = "sess%7C1";
    assert_eq!(
        ids(org
            .get(&format!(
                "/v1/callbacks?source_session_id={session}&status=scheduled"
            ))
            .await),
        [created[3].clone(), created[1].clone()]
    );
    let page = org.get("/v1/callbacks?limit=1").await.expect(200).clone();
    let token = page["next_page_token"].as_str().unwrap();
    org.get(&format!(
        "/v1/callbacks?limit=1&status=scheduled&next_page_token={token}"
    ))
    .await
    .expect_error(400, "INVALID_PAGE_TOKEN");
    org.get("/v1/callbacks?limit=0")
        .await
        .expect_error(400, "VALIDATION_ERROR");
    org.get("/v1/callbacks?status=lost")
        .await
        .expect_error(400, "VALIDATION_ERROR");
    org.get("/v1/callbacks?colour=red")
        .await
        .expect_error(400, "VALIDATION_ERROR");
}

async fn rescheduling_checks_its_fields_and_honours_if_match(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let flow = published_flow(&org).await;
    let id = schedule(&org, &flow, Some(&in_(&server, 3600.0))).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v1/callbacks/{id}");
    org.patch(&path, json!({"scheduled_at": "2020-01-01T00:00:00Z"}))
        .await
        .expect_error(400, "VALIDATION_ERROR");
    org.patch(&path, json!({"flow": "flow_BBBBBBBBBBBB"}))
        .await
        .expect_error(400, "VALIDATION_ERROR");
    org.patch(&path, json!({"to_number": null}))
        .await
        .expect_error(400, "VALIDATION_ERROR");
    let etag = org.get(&path).await.header("etag").unwrap().to_owned();
    let changed = org
        .call(Method::PATCH, &path)
        .header("if-match", &etag)
        .json(&json!({"metadata": {"crm_id": "42"}}))
        .send()
        .await;
    assert_eq!(changed.expect(200)["metadata"], json!({"crm_id": "42"}));
    let stale = org
        .call(Method::PATCH, &path)
        .header("if-match", &etag)
        .json(&json!({"summary": "late"}))
        .send()
        .await;
    stale.expect_error(412, "PRECONDITION_FAILED");
}

async fn lifecycle_events_reach_the_endpoints_subscribed_to_them(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let everything = Receiver::start().await;
    let cancellations = Receiver::start().await;
    let secret = subscribe(
        &org,
        &everything,
        &[
            "callback.dispatch",
            "callback.scheduled",
            "callback.dispatched",
            "callback.failed",
            "flow.published",
        ],
    )
    .await;
    subscribe(&org, &cancellations, &["callback.cancelled"]).await;
    let flow = published_flow(&org).await;
    let published = everything
        .wait_for("flow.published", 1, Duration::from_secs(5))
        .await;
    assert_eq!(published[0].json["data"]["flow"]["slug"], flow);
    assert!(published[0].signed_by(&secret));

    let kept = schedule(&org, &flow, Some(&in_(&server, 3600.0))).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let dropped = schedule(&org, &flow, Some(&in_(&server, 3600.0))).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        everything
            .wait_for("callback.scheduled", 2, Duration::from_secs(5))
            .await
            .len(),
        2
    );
    org.post(&format!("/v1/callbacks/{dropped}/cancel"), json!({}))
        .await
        .expect(200);
    let cancelled = cancellations
        .wait_for("callback.cancelled", 1, Duration::from_secs(5))
        .await;
    assert_eq!(cancelled[0].json["data"]["callback"]["id"], dropped);
    org.post(&format!("/v1/callbacks/{kept}/dispatch"), json!({}))
        .await
        .expect(200);
    let dispatched = everything
        .wait_for("callback.dispatched", 1, Duration::from_secs(5))
        .await;
    assert_eq!(
        dispatched[0].json["data"]["callback"]["status"],
        "dispatched"
    );
    assert!(
        everything.of_type("callback.cancelled").is_empty(),
        "not subscribed"
    );
    assert_eq!(
        cancellations.deliveries().len(),
        1,
        "only what it subscribed to"
    );
}

async fn another_organizations_callbacks_are_not_found(backend: Backend) {
    let server = TestServer::start(backend).await;
    let owner = server.org().await;
    let stranger = server.org().await;
    let flow = published_flow(&owner).await;
    let id = schedule(&owner, &flow, Some(&in_(&server, 3600.0))).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    stranger
        .get(&format!("/v1/callbacks/{id}"))
        .await
        .expect_error(404, "NOT_FOUND");
    stranger
        .patch(&format!("/v1/callbacks/{id}"), json!({"reason": "x"}))
        .await
        .expect_error(404, "NOT_FOUND");
    stranger
        .post(&format!("/v1/callbacks/{id}/cancel"), json!({}))
        .await
        .expect_error(404, "NOT_FOUND");
    stranger
        .post(&format!("/v1/callbacks/{id}/dispatch"), json!({}))
        .await
        .expect_error(404, "NOT_FOUND");
    let listed = stranger.get(&format!("/v1/callbacks?flow={flow}")).await;
    assert!(
        listed.expect(200)["callbacks"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // Nor can a stranger schedule a callback on the owner's flow.
    let foreign = stranger
        .post(
            "/v1/callbacks",
            json!({"flow": flow, "to_number": "+15557654321"}),
        )
        .await;
    foreign.expect_error(404, "NOT_FOUND");
    assert_eq!(
        owner.get(&format!("/v1/callbacks/{id}")).await.expect(200)["status"],
        "scheduled"
    );
}

async fn public_keys_read_callbacks_but_cannot_change_them(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let flow = published_flow(&org).await;
    let id = schedule(&org, &flow, Some(&in_(&server, 3600.0))).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    org.public(Method::GET, &format!("/v1/callbacks/{id}"))
        .send()
        .await
        .expect(200);
    org.public(Method::GET, "/v1/callbacks")
        .send()
        .await
        .expect(200);
    let body = json!({"flow": flow, "to_number": "+15557654321"});
    org.public(Method::POST, "/v1/callbacks")
        .json(&body)
        .send()
        .await
        .expect_error(403, "FORBIDDEN");
    org.public(Method::PATCH, &format!("/v1/callbacks/{id}"))
        .json(&json!({}))
        .send()
        .await
        .expect_error(403, "FORBIDDEN");
    org.public(Method::POST, &format!("/v1/callbacks/{id}/cancel"))
        .send()
        .await
        .expect_error(403, "FORBIDDEN");
    org.public(Method::POST, &format!("/v1/callbacks/{id}/dispatch"))
        .send()
        .await
        .expect_error(403, "FORBIDDEN");
}

async fn garbage_callback_ids_are_not_found(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    for id in [
        "nope",
        "cb_",
        "cb_%2F..%2F..",
        &format!("cb_{}", "9".repeat(300)),
    ] {
        org.get(&format!("/v1/callbacks/{id}"))
            .await
            .expect_error(404, "NOT_FOUND");
    }
}

async fn write_routes_refuse_unknown_query_parameters(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let flow = published_flow(&org).await;
    let id = schedule(&org, &flow, Some(&in_(&server, 3600.0))).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let body =
        json!({"flow": flow, "to_number": "+15557654321", "scheduled_at": in_(&server, 3600.0)});
    for (method, path, body) in [
        (Method::POST, "/v1/callbacks?dry_run=1".to_owned(), body),
        (
            Method::PATCH,
            format!("/v1/callbacks/{id}?force=1"),
            json!({"reason": "x"}),
        ),
        (
            Method::POST,
            format!("/v1/callbacks/{id}/cancel?force=1"),
            json!({}),
        ),
        (
            Method::POST,
            format!("/v1/callbacks/{id}/dispatch?force=1"),
            json!({}),
        ),
    ] {
        let answer = org.call(method, &path).json(&body).send().await;
        answer.expect_error(400, "VALIDATION_ERROR");
    }
    assert_eq!(
        org.get(&format!("/v1/callbacks/{id}")).await.expect(200)["status"],
        "scheduled"
    );
    assert_eq!(
        org.get("/v1/callbacks").await.expect(200)["callbacks"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

async fn an_idempotent_replay_after_the_scheduled_time_answers_the_callback(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let flow = published_flow(&org).await;
    let body =
        json!({"flow": flow, "to_number": "+15557654321", "scheduled_at": in_(&server, 60.0)});
    let send = || {
        org.call(Method::POST, "/v1/callbacks")
            .header("idempotency-key", "late-retry")
            .json(&body)
            .send()
    };
    let first = send().await.expect(201).clone();
    server.clock.advance(SignedDuration::from_secs(90));
    let again = send().await;
    assert_eq!(
        again.expect(201)["id"],
        first["id"],
        "the retry is the first request, not a new one in the past"
    );
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
}

async fn objects_must_fit_what_the_store_can_keep(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let flow = published_flow(&org).await;
    let mut deep = json!(1);
    for _ in 0..20 {
        deep = json!({"a": deep});
    }
    for metadata in [deep, json!({"huge": 1e300})] {
        let answer = org
            .post(
                "/v1/callbacks",
                json!({"flow": flow, "to_number": "+15557654321", "metadata": metadata}),
            )
            .await;
        answer.expect_error(400, "VALIDATION_ERROR");
        assert_eq!(answer.detail_fields(), ["metadata"]);
    }
}

async fn list_filters_must_be_values_a_callback_can_have(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let long = "s".repeat(3000);
    org.get(&format!("/v1/callbacks?source_session_id={long}"))
        .await
        .expect_error(400, "VALIDATION_ERROR");
    org.get(&format!("/v1/callbacks?flow={long}"))
        .await
        .expect_error(400, "VALIDATION_ERROR");
    org.get("/v1/callbacks?flow=not-a-slug")
        .await
        .expect_error(400, "VALIDATION_ERROR");
}

on_every_store!(
    an_idempotent_replay_after_the_scheduled_time_answers_the_callback,
    objects_must_fit_what_the_store_can_keep,
    list_filters_must_be_values_a_callback_can_have,
    write_routes_refuse_unknown_query_parameters,
    scheduled_callback_is_delivered_on_time_signed_and_records_the_session,
    a_callback_has_exactly_the_specified_fields_with_nulls_for_absent_values,
    cancelled_before_its_time_is_never_delivered,
    cancelling_twice_answers_the_cancelled_callback_unchanged,
    rescheduling_moves_the_delivery,
    a_failing_receiver_fails_the_callback_after_exactly_three_tries_and_a_manual_dispatch_then_succeeds,
    a_4xx_answer_is_not_retried,
    eight_concurrent_dispatches_give_one_success_and_one_delivery,
    concurrent_cancel_and_dispatch_have_exactly_one_winner,
    the_same_scheduler_input_twice_delivers_once,
    without_scheduled_at_the_callback_is_dispatched_within_seconds,
    without_a_subscribed_endpoint_the_callback_fails_with_no_dispatch_target,
    an_inactive_flow_fails_due_callbacks_and_refuses_new_ones,
    an_archived_flow_fails_due_callbacks,
    the_pinned_flow_version_is_delivered_after_a_newer_one_is_published,
    a_dispatch_after_expires_at_fails_as_expired,
    actions_outside_the_state_machine_are_conflicts,
    creating_needs_a_published_flow_and_valid_fields,
    an_idempotency_key_creates_one_callback,
    lists_are_newest_first_filtered_and_paginated_to_the_end,
    rescheduling_checks_its_fields_and_honours_if_match,
    lifecycle_events_reach_the_endpoints_subscribed_to_them,
    another_organizations_callbacks_are_not_found,
    public_keys_read_callbacks_but_cannot_change_them,
    garbage_callback_ids_are_not_found,
);
