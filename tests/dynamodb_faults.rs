//! What DynamoDB, EventBridge Scheduler and Lambda do in production and the emulator never does
//! — transaction conflicts, throttling, 5xx, slow answers, dropped connections, writes applied
//! whose answer was lost — injected by the fault proxy (tests/fault-proxy) in AWS's own wire
//! shapes, through the real SDK clients, and what Flowline answers: retried within the
//! request's deadline, never a 409 for somebody else's write, a 503 with `Retry-After` when
//! the deadline runs out, never a write done twice or a delivery repeated.

mod common;

use std::time::Duration;

use common::receiver::{Receiver, Reply};
use common::{Org, TestServer};
use flowline_fault_proxy::{Fault, FaultProxy, Rule};
use serde_json::json;

/// Long enough for every retry these tests provoke; short enough that running out is quick.
const BUDGET: Duration = Duration::from_secs(6);

async fn server() -> (TestServer, FaultProxy, Org) {
    let (server, proxy) = TestServer::start_proxied(BUDGET).await;
    let org = server.org().await;
    proxy.reset_counts();
    (server, proxy, org)
}

fn dynamodb(operation: &str, fault: Fault) -> Rule {
    Rule::new(fault).service("dynamodb").operation(operation)
}

async fn published_flow(org: &Org) -> String {
    let created = org
        .post(
            "/v1/flows",
            json!({"name": "Faults", "data": {"greeting": "Hello"}}),
        )
        .await;
    let slug = created.expect(201)["slug"].as_str().unwrap().to_owned();
    org.post(&format!("/v1/flows/{slug}/publish"), json!({}))
        .await
        .expect(200);
    slug
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_whose_transaction_conflicts_is_retried_and_answers_201() {
    let (_server, proxy, org) = server().await;
    proxy.add_rule(
        dynamodb(
            "TransactWriteItems",
            Fault::transaction_canceled("TransactionConflict", Some(0)),
        )
        .times(3),
    );
    let created = org.post("/v1/flows", json!({"name": "Contended"})).await;
    created.expect(201);
    let writes = proxy.counts().operation("dynamodb", "TransactWriteItems");
    assert_eq!(
        (writes.requests, writes.faults),
        (4, 3),
        "three conflicts, then through"
    );
    let listed = org.get("/v1/flows").await;
    assert_eq!(listed.expect(200)["total_records"], 1, "created once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_flow_creates_in_one_organization_never_answer_409() {
    let (_server, proxy, org) = server().await;
    // Every other transaction conflicts, as they do when 20 creates move the same counters.
    proxy.add_rule(
        dynamodb(
            "TransactWriteItems",
            Fault::transaction_canceled("TransactionConflict", None),
        )
        .probability(0.5, 42),
    );
    let creates = (0..20).map(|n| org.post("/v1/flows", json!({"name": format!("flow {n}")})));
    let answers = futures_util::future::join_all(creates).await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    assert!(
        proxy
            .counts()
            .operation("dynamodb", "TransactWriteItems")
            .faults
            > 5,
        "conflicts were injected"
    );
    assert_eq!(org.get("/v1/flows").await.expect(200)["total_records"], 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_write_is_retried_past_the_sdks_own_three_attempts() {
    let (_server, proxy, org) = server().await;
    let receiver = Receiver::start().await;
    let created = org
        .post(
            "/v1/webhooks",
            json!({"url": receiver.url, "events": ["callback.dispatch"]}),
        )
        .await;
    let id = created.expect(201)["id"].as_str().unwrap().to_owned();
    // An endpoint's update is one conditional PutItem.
    proxy.add_rule(
        dynamodb(
            "PutItem",
            Fault::error("ProvisionedThroughputExceededException"),
        )
        .times(5),
    );
    let updated = org
        .put(
            &format!("/v1/webhooks/{id}"),
            json!({"description": "renamed"}),
        )
        .await;
    updated.expect(200);
    let puts = proxy.counts().operation("dynamodb", "PutItem");
    assert_eq!((puts.requests, puts.faults), (6, 5));
    let endpoint = org.get(&format!("/v1/webhooks/{id}")).await;
    assert_eq!(endpoint.expect(200)["description"], "renamed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_throttled_past_the_deadline_answers_503_with_retry_after() {
    let (_server, proxy, org) = server().await;
    proxy.add_rule(dynamodb("GetItem", Fault::error("ThrottlingException")));
    let answer = org.get("/v1/flows/flow_AAAAAAAAAAAA").await;
    answer.expect_error(503, "UPSTREAM_UNAVAILABLE");
    assert_eq!(answer.header("retry-after"), Some("1"));
    let gets = proxy.counts().operation("dynamodb", "GetItem");
    assert!(
        gets.requests > 3,
        "retried beyond the SDK's attempts: {gets:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_write_applied_whose_answer_was_lost_is_not_a_failure() {
    let (_server, proxy, org) = server().await;
    let receiver = Receiver::start().await;
    let created = org
        .post(
            "/v1/webhooks",
            json!({"url": receiver.url, "events": ["callback.dispatch"]}),
        )
        .await;
    let id = created.expect(201)["id"].as_str().unwrap().to_owned();
    // The update (one conditional PutItem) is stored, then the answer is lost: the retry's
    // condition fails on Flowline's own write, which it recognises.
    proxy.add_rule(
        dynamodb("PutItem", Fault::error("InternalServerError"))
            .after_forwarding()
            .times(1),
    );
    let updated = org
        .put(
            &format!("/v1/webhooks/{id}"),
            json!({"description": "renamed"}),
        )
        .await;
    assert_eq!(updated.expect(200)["description"], "renamed");
    let listed = org.get("/v1/webhooks").await;
    let webhooks = listed.expect(200)["webhooks"].as_array().unwrap().clone();
    assert_eq!(webhooks.len(), 1, "stored once");
    assert_eq!(webhooks[0]["description"], "renamed");
    assert_eq!(proxy.counts().operation("dynamodb", "PutItem").requests, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_applied_whose_answer_was_lost_is_not_a_failure() {
    let (_server, proxy, org) = server().await;
    proxy.add_rule(
        dynamodb("TransactWriteItems", Fault::Status { status: 503 })
            .after_forwarding()
            .times(1),
    );
    let created = org.post("/v1/flows", json!({"name": "Once"})).await;
    created.expect(201);
    let listed = org.get("/v1/flows").await;
    assert_eq!(listed.expect(200)["total_records"], 1, "applied once");
    let writes = proxy.counts().operation("dynamodb", "TransactWriteItems");
    assert_eq!(writes.requests, 2, "retried under the same token");
}

/// A callback's transaction is applied but every answer is lost until the request's deadline:
/// the create looks for its callback before failing, finds it, and answers 201 — so a client
/// retrying with its Idempotency-Key gets that callback, not a second one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_applied_whose_answers_were_all_lost_is_not_made_twice() {
    let (_server, proxy, org) = server().await;
    let slug = published_flow(&org).await;
    proxy.add_rule(
        dynamodb("TransactWriteItems", Fault::Status { status: 503 })
            .after_forwarding()
            .times(1_000),
    );
    let body = json!({"flow": slug, "to_number": "+15557654321",
                      "scheduled_at": "2027-01-01T09:00:00Z"});
    let call = || {
        org.call(reqwest::Method::POST, "/v1/callbacks")
            .header("Idempotency-Key", "lost-answers-1")
            .json(&body)
            .send()
    };
    let first = call().await;
    let id = first.expect(201)["id"].as_str().unwrap().to_owned();
    proxy.clear_rules();
    let again = call().await;
    assert_eq!(again.expect(201)["id"], id.as_str(), "the same callback");
    let listed = org.get("/v1/callbacks").await;
    let callbacks = listed.expect(200)["callbacks"].as_array().unwrap().clone();
    assert_eq!(callbacks.len(), 1, "made once: {callbacks:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_answer_or_a_reset_is_retried_within_the_deadline() {
    let (_server, proxy, org) = server().await;
    let slug = published_flow(&org).await;
    // Slower than the SDK's attempt timeout, then a dropped connection.
    proxy.add_rule(dynamodb("GetItem", Fault::Delay { ms: 5_000 }).times(1));
    proxy.add_rule(dynamodb("GetItem", Fault::Reset).times(1));
    let answer = org.get(&format!("/v1/flows/{slug}")).await;
    assert_eq!(answer.expect(200)["slug"], slug.as_str());
    assert!(proxy.counts().operation("dynamodb", "GetItem").requests >= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_record_after_a_delivery_is_retried_and_delivers_once() {
    let (_server, proxy, org) = server().await;
    let receiver = Receiver::start().await;
    receiver.default_reply(Reply::session("sess_once"));
    org.post(
        "/v1/webhooks",
        json!({"url": receiver.url, "events": ["callback.dispatch"]}),
    )
    .await
    .expect(201);
    let slug = published_flow(&org).await;
    let scheduled_at = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1);
    let created = org
        .post(
            "/v1/callbacks",
            json!({"flow": slug, "to_number": "+15557654321",
                   "scheduled_at": flowline_core::time::format_timestamp(scheduled_at)}),
        )
        .await;
    let id = created.expect(201)["id"].as_str().unwrap().to_owned();
    // The dispatch takes the callback (one transaction), delivers, then records (the next
    // transaction): throttle the record three times.
    proxy.add_rule(
        dynamodb(
            "TransactWriteItems",
            Fault::transaction_canceled("ThrottlingError", None),
        )
        .skip(1)
        .times(3),
    );
    let dispatched = org
        .post(&format!("/v1/callbacks/{id}/dispatch"), json!({}))
        .await;
    let dispatched = dispatched.expect(200);
    assert_eq!(dispatched["status"], "dispatched");
    assert_eq!(dispatched["created_session_id"], "sess_once");
    assert_eq!(
        receiver.of_type("callback.dispatch").len(),
        1,
        "delivered once"
    );
    assert_eq!(
        proxy
            .counts()
            .operation("dynamodb", "TransactWriteItems")
            .faults,
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_scheduler_is_retried_and_a_failing_one_leaves_nothing_behind() {
    let (_server, proxy, org) = server().await;
    let slug = published_flow(&org).await;
    let at = flowline_core::time::format_timestamp(
        jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1),
    );
    let body = json!({"flow": slug, "to_number": "+15557654321", "scheduled_at": at});
    proxy.add_rule(
        Rule::new(Fault::error("ThrottlingException"))
            .service("scheduler")
            .operation("CreateSchedule")
            .times(2),
    );
    org.post("/v1/callbacks", body.clone()).await.expect(201);

    proxy.clear_rules();
    proxy.add_rule(
        Rule::new(Fault::error("InternalServerException"))
            .service("scheduler")
            .operation("CreateSchedule"),
    );
    org.post("/v1/callbacks", body)
        .await
        .expect_error(503, "UPSTREAM_UNAVAILABLE");
    let listed = org.get("/v1/callbacks").await;
    assert_eq!(
        listed.expect(200)["callbacks"].as_array().unwrap().len(),
        1,
        "the failed create left no callback"
    );
}
