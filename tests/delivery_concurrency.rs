//! Many callbacks due at once, one receiver: at most 10 tries are in flight to it (SPEC §8), the
//! others wait their turn instead of timing out, and each callback is delivered exactly once —
//! also when the tries come from several sandboxes at once, which share the endpoint's slots
//! in the table.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::receiver::{Receiver, Reply};
use common::{Backend, Org, TestServer};
use flowline_core::App;
use flowline_core::time::{Clock, format_timestamp};
use flowline_core::webhooks::delivery::try_once;
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

/// Three sandboxes (each with its own in-process gate, as three Lambda sandboxes of `deliver`
/// and `dispatch` would be) send 45 tries at once to one slow endpoint: the endpoint's ten
/// slots in the table keep ten in flight in all, and every try is made.
async fn sandboxes_share_an_endpoints_ten_places(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let receiver = Receiver::start().await;
    // Each answer takes a second: time enough, even on a loaded emulator, for ten tries to
    // take their slots before the first answer frees one.
    receiver.default_reply(Reply::status(200).slow(Duration::from_secs(1)));
    let created = org
        .post(
            "/v1/webhooks",
            json!({"url": receiver.url, "events": ["callback.dispatch"]}),
        )
        .await;
    let id = created.expect(201)["id"].as_str().unwrap().to_owned();
    let (endpoint, _) = flowline_core::webhooks::load(&server.app, &org.id, &id)
        .await
        .unwrap();
    let sandboxes: Vec<Arc<App>> = (0..3)
        .map(|_| {
            let app = &server.app;
            App::builder(app.store.clone(), app.store.clone(), app.config.clone())
                .sender(app.sender.clone())
                .clock(app.clock.clone())
                .build()
        })
        .collect();
    let deadline = flowline_core::deadline::current() + Duration::from_secs(60);
    let tries = sandboxes.iter().enumerate().flat_map(|(sandbox, app)| {
        let endpoint = &endpoint;
        (0..15).map(move |n| async move {
            let event = format!("evt_{sandbox}_{n}");
            let body = Bytes::from(format!(r#"{{"type":"callback.dispatch","id":"{event}"}}"#));
            try_once(
                app,
                endpoint,
                &event,
                &body,
                Duration::from_secs(10),
                deadline,
            )
            .await
        })
    });
    let tried = futures_util::future::join_all(tries).await;
    assert_eq!(tried.len(), 45);
    assert!(
        tried
            .iter()
            .all(|tried| tried.as_ref().is_some_and(|t| t.accepted.is_some())),
        "every try made and taken"
    );
    assert_eq!(receiver.deliveries().len(), 45);
    assert_eq!(
        receiver.max_in_flight(),
        10,
        "ten at once in all, never more"
    );
}

on_every_store!(sandboxes_share_an_endpoints_ten_places);
