//! Many callbacks due at once, one receiver: at most 10 tries are in flight to it (SPEC §8), the
//! others wait their turn instead of timing out, and each callback is delivered exactly once.

mod common;

use std::time::Duration;

use common::receiver::{Receiver, Reply};
use common::{Backend, Org, TestServer};
use flowline_core::time::{Clock, format_timestamp};
use jiff::SignedDuration;
use serde_json::json;

async fn published_flow(org: &Org) -> String {
    let created = org
        .post("/v1/flows", json!({"name": "Burst", "data": {"a": 1}}))
        .await;
    let slug = created.expect(201)["slug"].as_str().unwrap().to_owned();
    org.post(&format!("/v1/flows/{slug}/publish"), json!({}))
        .await
        .expect(200);
    slug
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_due_callbacks_keeps_at_most_ten_tries_in_flight_per_endpoint() {
    let server = TestServer::start(Backend::Memory).await;
    let org = server.org().await;
    let receiver = Receiver::start().await;
    // Slow enough that without a limit every delivery would be in flight at once.
    receiver.default_reply(Reply::session("sess_burst").slow(Duration::from_millis(200)));
    org.post(
        "/v1/webhooks",
        json!({"url": receiver.url, "events": ["callback.dispatch"]}),
    )
    .await
    .expect(201);
    let flow = published_flow(&org).await;
    let due = server.clock.now() + SignedDuration::from_mins(10);
    let mut ids = Vec::new();
    for _ in 0..40 {
        let created = org
            .post(
                "/v1/callbacks",
                json!({"flow": flow, "to_number": "+15557654321",
                       "scheduled_at": format_timestamp(due)}),
            )
            .await;
        ids.push(created.expect(201)["id"].as_str().unwrap().to_owned());
    }
    // Every timer fires at once.
    server.clock.advance_to(due);
    let deliveries = common::eventually("all delivered", Duration::from_secs(30), || async {
        let delivered = receiver.of_type("callback.dispatch");
        (delivered.len() >= ids.len()).then_some(delivered)
    })
    .await;
    assert_eq!(receiver.max_in_flight(), 10, "ten at once, never more");
    // Exactly once each: no try timed out into a repeat.
    let mut delivered: Vec<String> = deliveries
        .iter()
        .map(|d| {
            d.json["data"]["callback"]["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    delivered.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(delivered, expected);
}
