//! What the API fuzzer (`scripts/fuzz-api`) found, pinned: a literal path that answered as a
//! flow, text headers that were silently ignored when they were not text (SPEC §1), and objects
//! stored that DynamoDB could not give back.

mod common;

use common::{Backend, Org, TestServer};
use flowline_core::auth::KeyStore;
use flowline_core::store::memory::MemoryTable;
use flowline_lambda::api_request;
use jiff::{SignedDuration, Timestamp};
use reqwest::Method;
use reqwest::header::HeaderValue;
use serde_json::{Value, json};

/// Not visible ASCII: `"café"` in Latin-1, which HTTP carries as it is (obs-text).
const NOT_TEXT: &[u8] = b"\"caf\xe9\"";

/// `(status, body)` of a request with one raw header (and the private key, unless that header
/// is `authorization`).
async fn send_with_header(
    org: &Org,
    method: Method,
    path: &str,
    name: &str,
    value: &[u8],
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = org.client.request(method, format!("{}{path}", org.base));
    if name != "authorization" {
        request = request.bearer_auth(&org.sk);
    }
    request = request.header(
        name,
        HeaderValue::from_bytes(value).expect("a header value"),
    );
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request reaches the server");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

#[track_caller]
fn assert_names_header(status: u16, body: &Value, header: &str) {
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "VALIDATION_ERROR", "{body}");
    assert_eq!(body["details"][0]["field"], header, "{body}");
}

async fn published_flow(org: &Org) -> String {
    let created = org
        .post(
            "/v1/flows",
            json!({"name": "Fuzz findings", "data": {"greeting": "Hello"}}),
        )
        .await;
    let slug = created.expect(201)["slug"].as_str().unwrap().to_owned();
    org.post(&format!("/v1/flows/{slug}/publish"), json!({}))
        .await
        .expect(200);
    slug
}

fn tomorrow() -> String {
    (Timestamp::now() + SignedDuration::from_hours(24)).to_string()
}

#[tokio::test]
async fn a_literal_path_answers_405_for_the_methods_it_lacks_not_as_a_flow() {
    let server = TestServer::start(Backend::Memory).await;
    let org = server.org().await;
    // `PUT /v1/flows/validate` used to reach `PUT /v1/flows/{flow}` and answer 404 "Flow not found".
    for method in [Method::GET, Method::PUT, Method::DELETE] {
        let answer = org.call(method.clone(), "/v1/flows/validate").send().await;
        answer.expect_error(405, "METHOD_NOT_ALLOWED");
        assert_eq!(answer.header("allow"), Some("POST"), "{method}");
    }
}

#[tokio::test]
async fn an_if_match_that_is_not_text_is_400_and_changes_nothing() {
    let server = TestServer::start(Backend::Memory).await;
    let org = server.org().await;
    let slug = published_flow(&org).await;
    let draft = org
        .post("/v1/flows", json!({"name": "Draft"}))
        .await
        .expect(201)["slug"]
        .as_str()
        .unwrap()
        .to_owned();
    let webhook = org
        .post(
            "/v1/webhooks",
            json!({"url": "https://93.184.216.34/hook", "events": ["flow.published"]}),
        )
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let trigger = org
        .post(&format!("/v1/flows/{slug}/callbacks"), json!({}))
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let callback = org
        .post(
            "/v1/callbacks",
            json!({"flow": slug, "to_number": "+15551234567", "scheduled_at": tomorrow()}),
        )
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // It used to be taken as no If-Match at all, so the change went through unconditionally.
    for (method, path) in [
        (Method::PUT, format!("/v1/flows/{draft}")),
        (Method::PUT, format!("/v1/webhooks/{webhook}")),
        (Method::PUT, format!("/v1/flows/{slug}/callbacks/{trigger}")),
        (Method::PATCH, format!("/v1/callbacks/{callback}")),
    ] {
        let before = org.get(&path).await.expect(200).clone();
        let field = if method == Method::PATCH {
            "reason"
        } else {
            "description"
        };
        let change = json!({ field: "changed" });
        let (status, body) =
            send_with_header(&org, method, &path, "if-match", NOT_TEXT, Some(change)).await;
        assert_names_header(status, &body, "If-Match");
        assert_eq!(
            org.get(&path).await.expect(200),
            &before,
            "{path} unchanged"
        );
    }
}

#[tokio::test]
async fn an_idempotency_key_that_is_not_text_is_400_and_creates_nothing() {
    let server = TestServer::start(Backend::Memory).await;
    let org = server.org().await;
    let body = json!({"url": "https://93.184.216.34/hook", "events": ["flow.published"]});
    // It used to be taken as no key at all: each retry created another endpoint.
    for _ in 0..2 {
        let (status, answer) = send_with_header(
            &org,
            Method::POST,
            "/v1/webhooks",
            "idempotency-key",
            b"retry-\xe9",
            Some(body.clone()),
        )
        .await;
        assert_names_header(status, &answer, "Idempotency-Key");
    }
    let listed = org.get("/v1/webhooks").await;
    assert_eq!(listed.expect(200)["webhooks"], json!([]));
}

#[tokio::test]
async fn an_authorization_that_is_not_text_is_400_naming_it() {
    let server = TestServer::start(Backend::Memory).await;
    let org = server.org().await;
    let (status, body) = send_with_header(
        &org,
        Method::GET,
        "/v1/flows",
        "authorization",
        format!("Bearer {}\u{e9}", org.sk).as_bytes(),
        None,
    )
    .await;
    assert_names_header(status, &body, "Authorization");
}

#[tokio::test]
async fn in_lambda_an_authorization_that_is_not_text_is_400_naming_it() {
    let authorizer = flowline_lambda::authorizer::Authorizer {
        keys: KeyStore::new(std::sync::Arc::new(MemoryTable::new())),
        limiter: flowline_core::ratelimit::RateLimiter::local(common::UNLIMITED),
    };
    let mut request: Value =
        serde_json::from_str(include_str!("../events/authorizer.json")).unwrap();
    request["headers"]["authorization"] = "Bearer sk_caf\u{e9}".into();
    let response = authorizer::handle(&authorizer, serde_json::from_value(request).unwrap()).await;
    assert!(
        response.is_authorized,
        "the routes answer, not the authorizer"
    );
    assert_eq!(
        Value::Object(response.context.clone()),
        json!({"auth_error": "invalid_authorization_header"})
    );
    // The route that context reaches answers the 400.
    let mut event: Value = serde_json::from_str(include_str!("../events/flow-list.json")).unwrap();
    event["requestContext"]["authorizer"] = json!({ "lambda": response.context });
    let request = api_request(lambda_http::request::from_str(&event.to_string()).unwrap());
    let err = request.caller().unwrap_err();
    assert_eq!(err.status(), 400);
    assert_eq!(err.details[0].field, "Authorization");
}

async fn objects_with_an_empty_key_are_refused_not_stored_unreadable(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let slug = published_flow(&org).await;
    // DynamoDB keeps these objects as maps, whose keys cannot be empty: the emulator stored
    // `{"": 1}` as something no read could decode, and the callback answered 503 ever after.
    for (field, value) in [
        ("metadata", json!({"": 1})),
        ("metadata", json!({"ticket": {"": "x"}})),
        ("pipeline_config", json!({"steps": [{"": true}]})),
    ] {
        let answer = org
            .post(
                "/v1/callbacks",
                json!({"flow": slug, "to_number": "+15551234567",
                       "scheduled_at": tomorrow(), field: value}),
            )
            .await;
        answer.expect_error(400, "VALIDATION_ERROR");
        assert_eq!(answer.detail_fields(), [field]);
    }
    assert_eq!(
        org.get("/v1/callbacks").await.expect(200)["callbacks"],
        json!([]),
        "nothing was created"
    );
    let created = org
        .post(
            "/v1/callbacks",
            json!({"flow": slug, "to_number": "+15551234567", "scheduled_at": tomorrow(),
                   "metadata": {"ticket": "T-1"}}),
        )
        .await;
    let id = created.expect(201)["id"].as_str().unwrap().to_owned();
    let patched = org
        .patch(
            &format!("/v1/callbacks/{id}"),
            json!({"metadata": {"": "x"}}),
        )
        .await;
    patched.expect_error(400, "VALIDATION_ERROR");
    assert_eq!(patched.detail_fields(), ["metadata"]);
    let read = org.get(&format!("/v1/callbacks/{id}")).await;
    assert_eq!(read.expect(200)["metadata"], json!({"ticket": "T-1"}));
}

on_every_store!(objects_with_an_empty_key_are_refused_not_stored_unreadable);
