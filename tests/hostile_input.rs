//! Input meant to break things: headers that are not text, path segments and filters far past
//! what a store key can hold, on every route and both stores. Each gets a clear 4xx in the
//! SPEC's error shape — never a 500, never a silently ignored header, never a write.

mod common;

use common::{Backend, TestServer};
use flowline_core::routes::{Access, ROUTES};
use reqwest::Method;
use serde_json::json;

/// Bytes that are not visible ASCII, as a header value.
fn not_text(text: &str) -> reqwest::header::HeaderValue {
    reqwest::header::HeaderValue::from_bytes(text.as_bytes()).expect("any bytes but CR/LF/NUL")
}

async fn headers_that_are_not_text_are_400_naming_the_header(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let client = common::http_client();
    let url = |path: &str| format!("{}{path}", server.base);

    // The same non-ASCII Idempotency-Key twice, then one with a tab (a control character an
    // HTTP header may carry, but not text): refusals, no flow (it was never ignored).
    for key in ["clé-é", "clé-é", "a\tb"] {
        let answer = client
            .post(url("/v1/flows"))
            .bearer_auth(&org.sk)
            .header("idempotency-key", not_text(key))
            .json(&json!({"name": "twice?"}))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 400);
        let body: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(body["code"], "VALIDATION_ERROR");
        assert_eq!(body["details"][0]["field"], "Idempotency-Key");
    }
    let listed = org.get("/v1/flows").await;
    assert_eq!(
        listed.expect(200)["total_records"],
        0,
        "nothing was created"
    );

    let flow = org.post("/v1/flows", json!({"name": "target"})).await;
    let slug = flow.expect(201)["slug"].as_str().unwrap().to_owned();
    let answer = client
        .put(url(&format!("/v1/flows/{slug}")))
        .bearer_auth(&org.sk)
        .header("if-match", not_text("\"ü\""))
        .json(&json!({"description": "changed?"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["details"][0]["field"], "If-Match");
    let unchanged = org.get(&format!("/v1/flows/{slug}")).await;
    assert!(unchanged.expect(200)["description"].is_null());

    let answer = client
        .get(url("/v1/flows"))
        .header("authorization", not_text("Bearer sk_ü"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["details"][0]["field"], "Authorization");
}

/// Every route, every path parameter replaced by text far beyond a key's 1,024 bytes (plain,
/// multi-byte, and starting like a real id), with an `Idempotency-Key`: 4xx, never 5xx.
async fn path_segments_past_the_key_limits_are_4xx_on_every_route(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let long_values = [
        "A".repeat(1_100),
        "é".repeat(600),
        format!("flow_{}", "a".repeat(1_100)),
        format!("cb_{}", "1".repeat(1_100)),
        format!("fcb_{}", "z".repeat(1_100)),
        format!("we_{}", "9".repeat(1_100)),
        "1".repeat(1_100),
    ];
    for route in ROUTES.iter().filter(|route| route.path.contains('{')) {
        for value in &long_values {
            let mut path = route.path.to_owned();
            while let Some(start) = path.find('{') {
                let end = path[start..].find('}').unwrap() + start;
                path.replace_range(start..=end, value);
            }
            let method = Method::from_bytes(route.method.as_str().as_bytes()).unwrap();
            let mut call = match route.access {
                Access::ApiKey => org.call(method, &path),
                Access::Open => server.anonymous(method, &format!("{path}?signature=x")),
            };
            call = call
                .header("idempotency-key", "hostile-1")
                .json(&json!({"name": "x", "to_number": "+15557654321", "flow": value}));
            let answer = call.send().await;
            assert!(
                (400..500).contains(&answer.status),
                "{} {}: {} {}",
                route.method,
                route.path,
                answer.status,
                answer.text
            );
            assert!(answer.body["code"].is_string(), "{}", answer.text);
        }
    }
}

/// List filters are made into keys too: past the limits, 400.
async fn list_filters_past_the_key_limits_are_400(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let long = "s".repeat(3_000);
    for path in [
        format!("/v1/callbacks?source_session_id={long}"),
        format!("/v1/callbacks?flow={long}"),
        format!("/v1/flows?status={long}"),
        format!("/v1/flows?type={long}"),
        format!("/v1/webhooks?next_page_token={long}"),
        format!("/v1/callbacks?next_page_token={long}"),
    ] {
        let answer = org.get(&path).await;
        assert_eq!(answer.status, 400, "{path}: {}", answer.text);
    }
}

on_every_store!(
    headers_that_are_not_text_are_400_naming_the_header,
    path_segments_past_the_key_limits_are_4xx_on_every_route,
    list_filters_past_the_key_limits_are_400,
);
