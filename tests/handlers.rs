//! The function crates as Lambda runs them: each `events/<function>.json` is the event
//! `cargo lambda invoke --data-file` sends that function — an API Gateway HTTP API payload v2
//! request for a route's function (through `flowline_lambda::api_request` into its
//! `handle`), the authorizer's payload 2.0 request for `authorizer`, EventBridge Scheduler's
//! input for `dispatch`, the scheduled event for `sweeper` — run on an in-memory app. The
//! fixtures are checked against `functions/` and the route table, so they cannot rot.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use common::receiver::{Receiver, Reply};
use common::wiring::Rig;
use flowline_adapters::webhook_http::HttpSender;
use flowline_core::auth::{KeyKind, KeyStore};
use flowline_core::config::Config;
use flowline_core::http::{StatusCode, render};
use flowline_core::jobs::JobDone;
use flowline_core::routes::{Access, EVENT_FUNCTIONS, ROUTES, Route, RouteMatch, match_route};
use flowline_core::scheduler::{DispatchJob, Job};

use flowline_core::store::memory::MemoryTable;
use flowline_core::store::{Expect, Item, Key, Query, StoreError, Table, Write};
use flowline_core::time::{ManualClock, SystemClock};
use flowline_core::webhooks::outbox::{self, Work};
use flowline_core::{ApiRequest, ApiResponse, ApiResult};
use flowline_lambda::stream::StreamBatch;
use flowline_lambda::{api_request, lambda_response};
use jiff::{SignedDuration, Timestamp};
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerV2Request;
use serde_json::{Value, json};

const SIGNING_KEY: &[u8] = b"test signing key, 32 bytes long!";
const UNAUTHORIZED: &str = r#"{"error":"Unauthorized","code":"UNAUTHORIZED"}"#;

/// Example values of the fixtures, which tests replace with those of the resources they make.
const FIXTURE_ORGANIZATION: &str = "org_0Q7fGk2LmZp4Xc8RtYb1Nv";
const FIXTURE_FLOW: &str = "flow_7Hq2LmN9xKp3";
const FIXTURE_CALLBACK: &str = "cb_00VbcKJYqKy9Pf34qY6Nb3w";
const FIXTURE_WEBHOOK: &str = "we_00VbcKHANWD25RQ4F5ZR3qa";
const FIXTURE_WEBHOOK_URL: &str = "https://agents.acme.example.com/flowline/events";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// In-memory tables with each function's application wired as its `main` wires it.
fn app() -> Rig {
    Rig::new(
        Arc::new(SystemClock),
        Arc::new(HttpSender::new(false)),
        Config {
            public_base_url: "https://api.flowline.example.com".to_owned(),
            allow_private_targets: false,
            request_budget: flowline_core::deadline::HTTP_BUDGET,
            limits: common::UNLIMITED,
        },
        SIGNING_KEY,
    )
}

fn fixture_text(function: &str) -> String {
    let path = root().join("events").join(format!("{function}.json"));
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn fixture_json(function: &str) -> Value {
    serde_json::from_str(&fixture_text(function))
        .unwrap_or_else(|err| panic!("events/{function}.json is not JSON: {err}"))
}

/// The fixture as the function's runtime receives it.
fn event(function: &str) -> ApiRequest {
    let request = lambda_http::request::from_str(&fixture_text(function))
        .unwrap_or_else(|err| panic!("events/{function}.json is not an HTTP API v2 event: {err}"));
    api_request(request)
}

/// The fixture, with its `{flow}` pointing at `slug` (a flow that exists in the test's app).
fn event_on(function: &str, slug: &str) -> ApiRequest {
    let mut request = event(function);
    let fixture_slug = request
        .path_params
        .insert("flow".to_owned(), slug.to_owned());
    let fixture_slug = fixture_slug.expect("the fixture has a {flow} path parameter");
    request.path = request.path.replace(&fixture_slug, slug);
    request
}

/// The fixture with example values (`FIXTURE_*`) replaced by the test's own wherever they
/// occur: path, path parameters, query, body. Each must occur, so fixtures cannot drift away
/// from the tests silently.
fn event_with(function: &str, replacements: &[(&str, &str)]) -> ApiRequest {
    let mut text = fixture_text(function);
    for (example, actual) in replacements {
        assert!(
            text.contains(example),
            "events/{function}.json has no {example}"
        );
        text = text.replace(example, actual);
    }
    api_request(lambda_http::request::from_str(&text).expect("an HTTP API v2 event"))
}

/// Renders like the Lambda adapter does, and reads the JSON body.
fn answer(result: ApiResult<ApiResponse>) -> (StatusCode, Value, ApiResponse) {
    let response = render(result);
    let body = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    (response.status, body, response)
}

fn timestamp(value: &Value) -> Timestamp {
    value
        .as_str()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| panic!("{value} is not a timestamp"))
}

/// The fixture's organization's flow, created through the `flow-create` fixture.
async fn existing_flow(app: &Rig) -> String {
    let (status, body, _) =
        answer(flow_create::handle(&app.wired("flow-create"), event("flow-create")).await);
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["slug"].as_str().expect("a slug").to_owned()
}

async fn published_flow(app: &Rig) -> String {
    let slug = existing_flow(app).await;
    let (status, body, _) = answer(
        flow_publish::handle(&app.wired("flow-publish"), event_on("flow-publish", &slug)).await,
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    slug
}

fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root().join("events"))
        .expect("events/ exists")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .map(|path| {
            path.file_stem()
                .and_then(|stem| stem.to_str())
                .expect("a UTF-8 name")
                .to_owned()
        })
        .collect();
    names.sort();
    names
}

fn function_dirs() -> Vec<PathBuf> {
    std::fs::read_dir(root().join("functions"))
        .expect("functions/ exists")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.join("Cargo.toml").is_file())
        .collect()
}

fn route_of(function: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|route| route.function == function)
}

/// The fixtures of functions that serve a route, with their route.
fn http_fixtures() -> Vec<(String, &'static Route)> {
    fixture_names()
        .into_iter()
        .filter_map(|name| route_of(&name).map(|route| (name, route)))
        .collect()
}

/// The fixtures of routes behind the authorizer.
fn api_key_fixtures() -> Vec<String> {
    http_fixtures()
        .into_iter()
        .filter(|(_, route)| route.access == Access::ApiKey)
        .map(|(name, _)| name)
        .collect()
}

fn path_parameter_names(template: &str) -> Vec<&str> {
    template
        .split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .collect()
}

// --- the fixtures themselves -------------------------------------------------------------------

#[test]
fn every_fixture_names_a_function_crate_that_serves_a_route_or_an_event() {
    let names = fixture_names();
    assert!(!names.is_empty());
    for name in names {
        let manifest = root().join("functions").join(&name).join("Cargo.toml");
        let manifest = std::fs::read_to_string(&manifest)
            .unwrap_or_else(|_| panic!("events/{name}.json names no crate under functions/"));
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "functions/{name}/Cargo.toml is not the crate {name}"
        );
        let serves_a_route = route_of(&name).is_some();
        let takes_an_event = EVENT_FUNCTIONS.contains(&name.as_str());
        assert!(
            serves_a_route != takes_an_event,
            "{name}: a function serves a route of ROUTES or is one of EVENT_FUNCTIONS, not both"
        );
    }
}

/// Derived from `functions/` as it is, so a new function crate must come with its fixture.
#[test]
fn every_function_crate_has_a_fixture() {
    let fixtures = fixture_names();
    let mut missing: Vec<String> = function_dirs()
        .iter()
        .filter_map(|dir| dir.file_name()?.to_str().map(str::to_owned))
        .filter(|function| !fixtures.contains(function))
        .collect();
    missing.sort();
    assert!(
        missing.is_empty(),
        "function crates without events/<function>.json: {missing:?}"
    );
}

#[test]
fn http_fixtures_are_requests_of_their_route() {
    let fixtures = http_fixtures();
    assert!(!fixtures.is_empty());
    for (name, route) in fixtures {
        let fixture = fixture_json(&name);
        assert_eq!(fixture["version"], "2.0", "{name}: payload format 2.0");
        let route_key = format!("{} {}", route.method, route.path);
        assert_eq!(fixture["routeKey"], route_key.as_str(), "{name}");
        assert_eq!(
            fixture["requestContext"]["routeKey"],
            route_key.as_str(),
            "{name}"
        );
        assert_eq!(
            fixture["requestContext"]["http"]["method"],
            route.method.as_str(),
            "{name}"
        );
        let raw_path = fixture["rawPath"].as_str().expect("rawPath");
        assert_eq!(
            fixture["requestContext"]["http"]["path"], raw_path,
            "{name}"
        );

        // The path is one API Gateway would send to this route, with these parameters.
        let RouteMatch::Found {
            route: matched,
            params,
        } = match_route(&route.method, raw_path)
        else {
            panic!("{name}: {raw_path} matches no route");
        };
        assert_eq!(
            matched.function, name,
            "{name}: {raw_path} is another route's"
        );
        let declared: serde_json::Map<String, Value> = fixture
            .get("pathParameters")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mut declared_names: Vec<&str> = declared.keys().map(String::as_str).collect();
        declared_names.sort_unstable();
        let mut template_names = path_parameter_names(route.path);
        template_names.sort_unstable();
        assert_eq!(declared_names, template_names, "{name}: pathParameters");
        for (param, value) in &params {
            assert_eq!(declared[param], value.as_str(), "{name}: {param}");
        }

        // The query string and its parsed form agree.
        let raw_query = fixture["rawQueryString"].as_str().expect("rawQueryString");
        let parsed: serde_json::Map<String, Value> =
            reqwest::Url::parse(&format!("https://api.flowline.example.com/?{raw_query}"))
                .expect("a query string")
                .query_pairs()
                .map(|(key, value)| (key.into_owned(), Value::from(value.into_owned())))
                .collect();
        let declared_query = fixture
            .get("queryStringParameters")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        assert_eq!(parsed, declared_query, "{name}: queryStringParameters");

        let request = event(&name);
        assert_eq!(request.method, route.method, "{name}");
        for param in template_names {
            assert!(
                !request.path_param(param).is_empty(),
                "{name}: path parameter {param}"
            );
        }
    }
}

#[test]
fn event_function_fixtures_are_their_events_not_http_requests() {
    for &function in EVENT_FUNCTIONS {
        assert!(route_of(function).is_none(), "{function} serves no route");
        let text = fixture_text(function);
        let fixture = fixture_json(function);
        match function {
            // What API Gateway sends a Lambda authorizer (payload 2.0) before the route runs.
            "authorizer" => {
                let request: ApiGatewayV2CustomAuthorizerV2Request =
                    serde_json::from_str(&text).expect("an HTTP API authorizer request");
                assert_eq!(request.version.as_deref(), Some("2.0"));
                assert_eq!(fixture["type"], "REQUEST");
                assert!(
                    request
                        .route_arn
                        .is_some_and(|arn| arn.starts_with("arn:aws:execute-api:"))
                );
                assert!(request.headers.contains_key("authorization"));
                assert_eq!(
                    request.identity_source.as_deref(),
                    Some(
                        &[request.headers["authorization"]
                            .to_str()
                            .unwrap()
                            .to_owned()][..]
                    ),
                    "the identity source is the Authorization header"
                );
                let route_key = request.route_key.expect("routeKey");
                let (method, path) = route_key.split_once(' ').expect("METHOD /path");
                assert!(
                    ROUTES
                        .iter()
                        .any(|route| route.method.as_str() == method && route.path == path),
                    "{route_key} is a route"
                );
                assert!(fixture.get("body").is_none(), "authorizers get no body");
                assert!(
                    fixture["requestContext"].get("authorizer").is_none(),
                    "the authorizer's request carries no authorizer context"
                );
            }
            // EventBridge Scheduler's `Input` for a callback's schedule, exactly.
            "dispatch" => {
                let job: DispatchJob =
                    serde_json::from_str(&text).expect("{callback_id, organization_id}");
                assert_eq!(job.callback_id, FIXTURE_CALLBACK);
                assert_eq!(job.organization_id, FIXTURE_ORGANIZATION);
                assert!(lambda_http::request::from_str(&text).is_err());
            }
            // The scheduled event of the sweeper's rate(5 minutes) schedule.
            "sweeper" => {
                assert_eq!(fixture["detail-type"], "Scheduled Event");
                assert!(
                    ["aws.events", "aws.scheduler"].contains(&fixture["source"].as_str().unwrap())
                );
                assert_eq!(fixture["version"], "0");
                assert!(
                    fixture["time"]
                        .as_str()
                        .is_some_and(|t| t.parse::<Timestamp>().is_ok())
                );
                assert!(lambda_http::request::from_str(&text).is_err());
            }
            // A DynamoDB Streams batch of the main table: one outbox item written (the
            // fixture's event), then its removal, which the handler skips.
            "deliver" => {
                let batch: StreamBatch = serde_json::from_str(&text).expect("a stream batch");
                assert_eq!(batch.records.len(), 2);
                let records = flowline_lambda::stream::outbox_records(batch);
                assert_eq!(
                    records.len(),
                    1,
                    "only the written outbox item is handed out"
                );
                let item = records[0].item.as_ref().expect("the item reads");
                assert!(item.key.pk.starts_with("OUTBOX#"));
                let outboxed = outbox::decode(item).expect("an outbox item");
                let Work::Event {
                    organization_id,
                    event,
                } = outboxed.work
                else {
                    panic!("an event");
                };
                assert_eq!(organization_id, FIXTURE_ORGANIZATION);
                assert_eq!(item.key.sk, event.id);
                assert_eq!(event.data["callback"]["id"], FIXTURE_CALLBACK);
                assert!(lambda_http::request::from_str(&text).is_err());
            }
            other => panic!("no check for the event of {other}: add one"),
        }
    }
}

#[test]
fn fixtures_carry_the_authorizer_context_as_the_caller() {
    for (name, route) in http_fixtures() {
        let request = event(&name);
        if route.access == Access::Open {
            assert!(
                request.caller.is_none(),
                "{name}: an open route has no authorizer"
            );
            continue;
        }
        let caller = request
            .caller
            .as_ref()
            .unwrap_or_else(|| panic!("events/{name}.json: no authorizer context"));
        assert_eq!(caller.organization_id, FIXTURE_ORGANIZATION, "{name}");
        assert!(!caller.key_name.is_empty());
        let reads = request.method == http::Method::GET;
        let kind = if reads {
            KeyKind::Public
        } else {
            KeyKind::Private
        };
        assert_eq!(caller.kind, kind, "{name}");
        let authorization = request
            .header("authorization")
            .unwrap()
            .expect("authorization");
        assert!(authorization.starts_with(&format!("Bearer {}", kind.prefix())));
        if !request.body.is_empty() {
            assert_eq!(
                request.header("content-type").unwrap(),
                Some("application/json")
            );
            let _: Value = serde_json::from_slice(&request.body).expect("a JSON body");
            let length = request
                .header("content-length")
                .unwrap()
                .expect("content-length");
            assert_eq!(
                length,
                request.body.len().to_string(),
                "{name}: content-length"
            );
        }
    }
}

// --- each function on its fixture --------------------------------------------------------------

#[tokio::test]
async fn flow_create_creates_the_fixture_flow_as_draft_version_one() {
    let app = app();
    let request = event("flow-create");
    let organization = request.caller.clone().unwrap().organization_id;
    let (status, body, response) =
        answer(flow_create::handle(&app.wired("flow-create"), request).await);
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(response.headers.contains_key("etag"));
    assert_eq!(body["name"], "Missed-call callback");
    assert_eq!(
        (body["version"].clone(), body["status"].clone()),
        (json!(1), json!("DRAFT"))
    );
    assert_eq!(body["channel_type"], "voice");
    assert_eq!(body["modified_by"], "crm-integration");
    assert_eq!(body["entry_points"][0]["entry_number"], "+14155550123");
    assert!(
        body["entry_points"][0]["entry_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
    assert!(body["data_yaml"].as_str().unwrap().contains("greeting:"));
    let slug = body["slug"].as_str().unwrap();
    assert!(body["code_snippet"].as_str().unwrap().contains(slug));

    // The fixture's Idempotency-Key makes a second invocation a replay.
    let (status, again, response) =
        answer(flow_create::handle(&app.wired("flow-create"), event("flow-create")).await);
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(again["slug"], slug);
    assert_eq!(
        response
            .headers
            .get("idempotent-replayed")
            .map(|v| v.to_str().unwrap()),
        Some("true")
    );
    let stored =
        flowline_core::flows::store::load_head(app.full().store.as_ref(), &organization, slug)
            .await
            .unwrap();
    assert!(
        stored.is_some(),
        "stored under the authorizer's organization"
    );
}

#[tokio::test]
async fn flow_list_lists_the_organizations_drafts() {
    let app = app();
    let slug = existing_flow(&app).await;
    let (status, body, _) =
        answer(flow_list::handle(&app.wired("flow-list"), event("flow-list")).await);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["page_size"], 10);
    assert_eq!(body["total_records"], 1);
    assert_eq!(body["flows"][0]["slug"], slug.as_str());
    assert!(body.get("next_page_token").is_none());
}

#[tokio::test]
async fn flow_validate_finds_the_fixture_body_valid_and_stores_nothing() {
    let app = app();
    let (status, body, _) = answer(flow_validate::handle(event("flow-validate")).await);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"valid": true, "problems": []}));
    let (_, listed, _) =
        answer(flow_list::handle(&app.wired("flow-list"), event("flow-list")).await);
    assert_eq!(listed["total_records"], 0);
}

#[tokio::test]
async fn flow_get_answers_the_flow_of_the_path() {
    let app = app();
    let slug = existing_flow(&app).await;
    let (status, body, response) =
        answer(flow_get::handle(&app.wired("flow-get"), event_on("flow-get", &slug)).await);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(response.headers.contains_key("etag"));
    assert_eq!(body["slug"], slug.as_str());
    assert_eq!(body["name"], "Missed-call callback");

    // The fixture as it stands names a flow no organization has.
    let (status, body, _) =
        answer(flow_get::handle(&app.wired("flow-get"), event("flow-get")).await);
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "NOT_FOUND");
}

#[tokio::test]
async fn flow_update_changes_the_draft() {
    let app = app();
    let slug = existing_flow(&app).await;
    let (status, body, _) = answer(
        flow_update::handle(&app.wired("flow-update"), event_on("flow-update", &slug)).await,
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "Missed-call callback (billing)");
    assert_eq!(body["version"], 1);
    assert!(body["data_yaml"].as_str().unwrap().contains("Acme billing"));
    let data: Value = serde_json::from_str(body["data"].as_str().unwrap()).unwrap();
    assert_eq!(data["steps"][0]["transfer_to"], "queue:billing");
}

#[tokio::test]
async fn flow_delete_archives_every_version() {
    let app = app();
    let slug = existing_flow(&app).await;
    let (status, body, _) = answer(
        flow_delete::handle(&app.wired("flow-delete"), event_on("flow-delete", &slug)).await,
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["message"].as_str().unwrap().contains(&slug));
    let (_, flow, _) =
        answer(flow_get::handle(&app.wired("flow-get"), event_on("flow-get", &slug)).await);
    assert_eq!(flow["status"], "ARCHIVED");
}

#[tokio::test]
async fn flow_versions_list_lists_highest_first() {
    let app = app();
    let slug = published_flow(&app).await;
    let (status, _, _) = answer(
        flow_version_create::handle(
            &app.wired("flow-version-create"),
            event_on("flow-version-create", &slug),
        )
        .await,
    );
    assert_eq!(status, StatusCode::CREATED);
    let (status, body, _) = answer(
        flow_versions_list::handle(
            &app.wired("flow-versions-list"),
            event_on("flow-versions-list", &slug),
        )
        .await,
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    let versions: Vec<(Value, Value)> = body["flow_versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["version"].clone(), v["status"].clone()))
        .collect();
    assert_eq!(
        versions,
        vec![(json!(2), json!("DRAFT")), (json!(1), json!("ACTIVE"))]
    );
}

#[tokio::test]
async fn flow_version_create_copies_version_one_into_a_draft() {
    let app = app();
    let slug = published_flow(&app).await;
    let (status, body, _) = answer(
        flow_version_create::handle(
            &app.wired("flow-version-create"),
            event_on("flow-version-create", &slug),
        )
        .await,
    );
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        (body["version"].clone(), body["status"].clone()),
        (json!(2), json!("DRAFT"))
    );
    assert_eq!(body["name"], "Missed-call callback");
    // A second draft is a conflict.
    let (status, body, _) = answer(
        flow_version_create::handle(
            &app.wired("flow-version-create"),
            event_on("flow-version-create", &slug),
        )
        .await,
    );
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
}

#[tokio::test]
async fn flow_publish_makes_version_one_active() {
    let app = app();
    let slug = existing_flow(&app).await;
    let (status, body, _) = answer(
        flow_publish::handle(&app.wired("flow-publish"), event_on("flow-publish", &slug)).await,
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["version"].clone(), body["status"].clone()),
        (json!(1), json!("ACTIVE"))
    );
    // Publishing it again: it is already ACTIVE.
    let (status, body, _) = answer(
        flow_publish::handle(&app.wired("flow-publish"), event_on("flow-publish", &slug)).await,
    );
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
}

// --- webhook endpoints and callbacks -----------------------------------------------------------

/// When the callback fixtures were recorded (`callback-create`'s `requestContext.timeEpoch`).
fn recorded_at(function: &str) -> Timestamp {
    let epoch_ms = fixture_json(function)["requestContext"]["timeEpoch"]
        .as_i64()
        .expect("timeEpoch");
    Timestamp::from_millisecond(epoch_ms).expect("a time")
}

/// An in-memory app whose clock stands where the callback fixtures were recorded, so their
/// `scheduled_at` lies ahead whatever today's date, and moves only when a test moves it. The
/// test plays EventBridge Scheduler, calling `dispatch` itself. The in-process timers wake
/// when the clock moves too, so a schedule the test moves past also fires on its own: that is
/// the duplicate invocation EventBridge may send, and the tests' single-threaded runtime only
/// lets it run once the test's own call has taken the callback's lease (it then finds the work
/// taken or done). Private targets are allowed, for the loopback receiver (and so the
/// fixtures' example URL is not looked up in DNS).
fn callback_app() -> (Rig, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(recorded_at("callback-create")));
    let config = Config {
        public_base_url: "https://api.flowline.example.com".to_owned(),
        allow_private_targets: true,
        request_budget: flowline_core::deadline::HTTP_BUDGET,
        limits: common::UNLIMITED,
    };
    let rig = Rig::new(
        clock.clone(),
        Arc::new(HttpSender::new(true)),
        config,
        SIGNING_KEY,
    );
    (rig, clock)
}

fn move_clock_to(clock: &ManualClock, at: Timestamp) {
    use flowline_core::time::Clock;
    clock.advance(at.duration_since(clock.now()));
}

/// What the callback fixtures need: the fixture organization's published flow and its webhook
/// endpoint (made by the `webhook-create` fixture) pointing at a local receiver.
struct World {
    app: Rig,
    clock: Arc<ManualClock>,
    slug: String,
    receiver: Receiver,
    webhook_id: String,
}

async fn world() -> World {
    let (app, clock) = callback_app();
    let slug = published_flow(&app).await;
    let receiver = Receiver::start().await;
    let request = event_with("webhook-create", &[(FIXTURE_WEBHOOK_URL, &receiver.url)]);
    let (status, body, _) =
        answer(webhook_create::handle(&app.wired("webhook-create"), request).await);
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let webhook_id = body["id"].as_str().expect("an id").to_owned();
    World {
        app,
        clock,
        slug,
        receiver,
        webhook_id,
    }
}

impl World {
    /// The `callback-create` fixture's callback, on this world's flow: its id and `scheduled_at`.
    async fn scheduled_callback(&self) -> (String, Timestamp) {
        let request = event_with("callback-create", &[(FIXTURE_FLOW, &self.slug)]);
        let (status, body, _) =
            answer(callback_create::handle(&self.app.wired("callback-create"), request).await);
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let id = body["id"].as_str().expect("an id").to_owned();
        (id, timestamp(&body["scheduled_at"]))
    }

    /// A callback fixture aimed at `id`.
    fn on_callback(&self, function: &str, id: &str) -> ApiRequest {
        event_with(function, &[(FIXTURE_CALLBACK, id)])
    }

    fn on_webhook(&self, function: &str) -> ApiRequest {
        event_with(function, &[(FIXTURE_WEBHOOK, &self.webhook_id)])
    }

    async fn callback(&self, id: &str) -> Value {
        let request = self.on_callback("callback-get", id);
        let (status, body, _) =
            answer(callback_get::handle(&self.app.wired("callback-get"), request).await);
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    fn pending_schedules(&self) -> usize {
        self.app.timers().pending()
    }
}

#[tokio::test]
async fn callback_create_schedules_the_fixture_callback_on_the_active_flow() {
    let world = world().await;
    let request = event_with("callback-create", &[(FIXTURE_FLOW, &world.slug)]);
    let (status, body, response) =
        answer(callback_create::handle(&world.app.wired("callback-create"), request).await);
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(response.headers.contains_key("etag"));
    let id = body["id"].as_str().unwrap();
    assert!(id.starts_with("cb_"), "{id}");
    assert_eq!(body["organization_id"], FIXTURE_ORGANIZATION);
    assert_eq!(body["status"], "scheduled");
    assert_eq!(body["flow"], world.slug.as_str());
    assert_eq!(body["flow_version"], 1);
    assert_eq!(body["to_number"], "+14155550199");
    assert_eq!(
        body["from_number"], "+14155550123",
        "the flow's first entry point number"
    );
    assert_eq!(
        timestamp(&body["scheduled_at"]),
        "2026-11-21T16:30:00Z".parse().unwrap()
    );
    assert_eq!(
        timestamp(&body["expires_at"]),
        "2026-11-21T19:00:00Z".parse().unwrap()
    );
    assert_eq!(body["source_session_id"], "sess_00VbcJ1sQ8wN3kTz6Rb2Yh4");
    assert_eq!(body["metadata"]["ticket"], "SUP-48213");
    assert_eq!(body["pipeline_config"]["max_duration_seconds"], 600);
    assert!(body["created_session_id"].is_null());
    assert_eq!(world.pending_schedules(), 1, "one schedule per callback");

    // The fixture's Idempotency-Key makes a second invocation a replay.
    let request = event_with("callback-create", &[(FIXTURE_FLOW, &world.slug)]);
    let (status, again, response) =
        answer(callback_create::handle(&world.app.wired("callback-create"), request).await);
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again["id"], id);
    assert_eq!(
        response
            .headers
            .get("idempotent-replayed")
            .map(|v| v.to_str().unwrap()),
        Some("true")
    );
    assert_eq!(world.pending_schedules(), 1);
}

#[tokio::test]
async fn callback_create_on_a_draft_flow_is_a_conflict() {
    let (app, _) = callback_app();
    let slug = existing_flow(&app).await;
    let request = event_with("callback-create", &[(FIXTURE_FLOW, &slug)]);
    let (status, body, _) =
        answer(callback_create::handle(&app.wired("callback-create"), request).await);
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "CONFLICT");
}

#[tokio::test]
async fn callback_list_lists_the_scheduled_callbacks_of_the_flow() {
    let world = world().await;
    let (id, _) = world.scheduled_callback().await;
    let request = event_with("callback-list", &[(FIXTURE_FLOW, &world.slug)]);
    let (status, body, _) =
        answer(callback_list::handle(&world.app.wired("callback-list"), request).await);
    assert_eq!(status, StatusCode::OK, "{body}");
    let ids: Vec<&str> = body["callbacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|callback| callback["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [id.as_str()]);
    assert!(body.get("next_page_token").is_none());

    // The fixture's filters as they stand name a flow the organization does not have.
    let (status, body, _) = answer(
        callback_list::handle(&world.app.wired("callback-list"), event("callback-list")).await,
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["callbacks"], json!([]));
}

#[tokio::test]
async fn callback_get_answers_the_callback_of_the_path() {
    let world = world().await;
    let (id, _) = world.scheduled_callback().await;
    let request = world.on_callback("callback-get", &id);
    let (status, body, response) =
        answer(callback_get::handle(&world.app.wired("callback-get"), request).await);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(response.headers.contains_key("etag"));
    assert_eq!(body["id"], id.as_str());
    assert_eq!(body["status"], "scheduled");

    // The fixture as it stands names a callback no organization has.
    let (status, body, _) =
        answer(callback_get::handle(&world.app.wired("callback-get"), event("callback-get")).await);
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["code"], "NOT_FOUND");
}

#[tokio::test]
async fn callback_update_reschedules_the_callback() {
    let world = world().await;
    let (id, _) = world.scheduled_callback().await;
    let request = world.on_callback("callback-update", &id);
    let (status, body, response) =
        answer(callback_update::handle(&world.app.wired("callback-update"), request).await);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(response.headers.contains_key("etag"));
    assert_eq!(body["status"], "scheduled");
    assert_eq!(
        timestamp(&body["scheduled_at"]),
        "2026-11-21T17:45:00Z".parse().unwrap()
    );
    assert!(body["instructions"].as_str().unwrap().contains("17:30 UTC"));
    assert!(
        body["reason"]
            .as_str()
            .unwrap()
            .contains("abandoned the billing queue"),
        "fields the patch does not name are kept"
    );
    assert_eq!(
        world.pending_schedules(),
        1,
        "the schedule moved, not doubled"
    );
    assert_eq!(
        world.callback(&id).await["scheduled_at"],
        body["scheduled_at"]
    );
}

#[tokio::test]
async fn callback_cancel_cancels_with_the_fixture_reason() {
    let world = world().await;
    let (id, _) = world.scheduled_callback().await;
    let request = world.on_callback("callback-cancel", &id);
    let (status, body, _) =
        answer(callback_cancel::handle(&world.app.wired("callback-cancel"), request).await);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "cancelled");
    assert!(
        body["cancel_reason"]
            .as_str()
            .unwrap()
            .contains("called in again")
    );
    assert!(body["cancelled_at"].is_string());
    assert_eq!(world.pending_schedules(), 0, "the schedule is deleted");

    // Cancelling a cancelled callback changes nothing.
    let request = world.on_callback("callback-cancel", &id);
    let (status, again, _) =
        answer(callback_cancel::handle(&world.app.wired("callback-cancel"), request).await);
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again, body);
}

#[tokio::test]
async fn callback_dispatch_delivers_the_callback_now_and_records_the_session() {
    let world = world().await;
    let (id, _) = world.scheduled_callback().await;
    world
        .receiver
        .script([Reply::session("sess_acme_runtime_5f2c9a")]);
    let request = world.on_callback("callback-dispatch", &id);
    let (status, body, _) =
        answer(callback_dispatch::handle(&world.app.wired("callback-dispatch"), request).await);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "dispatched", "{body}");
    assert_eq!(body["created_session_id"], "sess_acme_runtime_5f2c9a");
    assert!(body["dispatched_at"].is_string());
    assert!(body["failure_cause"].is_null());
    assert_eq!(world.pending_schedules(), 0, "the schedule is deleted");

    let deliveries = world.receiver.of_type("callback.dispatch");
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].json["data"]["callback"]["id"], id.as_str());
    assert_eq!(
        deliveries[0].json["data"]["flow"]["slug"],
        world.slug.as_str()
    );
    assert_eq!(deliveries[0].json["data"]["flow"]["version"], 1);

    // A dispatched callback cannot be dispatched again.
    let request = world.on_callback("callback-dispatch", &id);
    let (status, body, _) =
        answer(callback_dispatch::handle(&world.app.wired("callback-dispatch"), request).await);
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(world.receiver.of_type("callback.dispatch").len(), 1);
}

#[tokio::test]
async fn webhook_create_registers_the_fixture_endpoint_and_shows_its_secret_once() {
    let (app, _) = callback_app();
    let (status, body, response) =
        answer(webhook_create::handle(&app.wired("webhook-create"), event("webhook-create")).await);
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(response.headers.contains_key("etag"));
    let id = body["id"].as_str().unwrap();
    assert!(id.starts_with("we_"), "{id}");
    assert_eq!(body["url"], FIXTURE_WEBHOOK_URL);
    assert_eq!(
        body["events"],
        json!([
            "callback.dispatch",
            "callback.dispatched",
            "callback.failed"
        ])
    );
    assert_eq!(body["status"], "active");
    assert_eq!(body["description"], "Acme voice-agent runtime (production)");
    assert!(body["secret"].as_str().unwrap().starts_with("whsec_"));

    // The fixture's Idempotency-Key makes a second invocation a replay: the first answer
    // again (SPEC §1), secret included, so a client that lost it can still have it.
    let (status, again, response) =
        answer(webhook_create::handle(&app.wired("webhook-create"), event("webhook-create")).await);
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again["id"], id);
    assert_eq!(again["secret"], body["secret"], "{again}");
    assert_eq!(
        response
            .headers
            .get("idempotent-replayed")
            .map(|v| v.to_str().unwrap()),
        Some("true")
    );
}

#[tokio::test]
async fn webhook_list_lists_the_endpoints_without_secrets() {
    let world = world().await;
    let (status, body, _) =
        answer(webhook_list::handle(&world.app.wired("webhook-list"), event("webhook-list")).await);
    assert_eq!(status, StatusCode::OK, "{body}");
    let webhooks = body["webhooks"].as_array().unwrap();
    assert_eq!(webhooks.len(), 1);
    assert_eq!(webhooks[0]["id"], world.webhook_id.as_str());
    assert_eq!(webhooks[0]["url"], world.receiver.url.as_str());
    assert!(webhooks[0].get("secret").is_none());
    assert!(body.get("next_page_token").is_none());
}

#[tokio::test]
async fn webhook_get_answers_the_endpoint_of_the_path() {
    let world = world().await;
    let (status, body, response) = answer(
        webhook_get::handle(
            &world.app.wired("webhook-get"),
            world.on_webhook("webhook-get"),
        )
        .await,
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(response.headers.contains_key("etag"));
    assert_eq!(body["id"], world.webhook_id.as_str());
    assert!(body.get("secret").is_none());

    // The fixture as it stands names an endpoint no organization has.
    let (status, body, _) =
        answer(webhook_get::handle(&world.app.wired("webhook-get"), event("webhook-get")).await);
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["code"], "NOT_FOUND");
}

#[tokio::test]
async fn webhook_update_subscribes_the_endpoint_to_cancellations() {
    let world = world().await;
    let (status, body, _) = answer(
        webhook_update::handle(
            &world.app.wired("webhook-update"),
            world.on_webhook("webhook-update"),
        )
        .await,
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["events"],
        json!([
            "callback.cancelled",
            "callback.dispatch",
            "callback.dispatched",
            "callback.failed"
        ])
    );
    assert_eq!(
        body["description"],
        "Acme voice-agent runtime (production, us-west-2)"
    );
    assert_eq!(body["url"], world.receiver.url.as_str(), "url unchanged");
    assert!(body.get("secret").is_none());
}

#[tokio::test]
async fn webhook_delete_deletes_the_endpoint() {
    let world = world().await;
    let (status, body, _) = answer(
        webhook_delete::handle(
            &world.app.wired("webhook-delete"),
            world.on_webhook("webhook-delete"),
        )
        .await,
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains(&world.webhook_id)
    );
    let (status, _, _) = answer(
        webhook_get::handle(
            &world.app.wired("webhook-get"),
            world.on_webhook("webhook-get"),
        )
        .await,
    );
    assert_eq!(status, StatusCode::NOT_FOUND);
}

// --- the do-not-call list ----------------------------------------------------------------------

/// The fixture's number, suppressed by the `suppression-put` fixture.
async fn suppressed(app: &Rig) -> Value {
    let (status, body, response) = answer(
        suppression_put::handle(&app.wired("suppression-put"), event("suppression-put")).await,
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(response.headers.contains_key("etag"));
    body
}

#[tokio::test]
async fn suppression_put_suppresses_the_number_of_the_path() {
    let app = app();
    let body = suppressed(&app).await;
    assert_eq!(body["number"], "+15551234567", "the path's %2B decoded");
    assert_eq!(
        body["reason"],
        "Asked not to be called again (support ticket 48121)"
    );
    assert_eq!(body["source"], "api");
    assert_eq!(body["expires_at"], Value::Null);
    let organization = event("suppression-put").caller.unwrap().organization_id;
    let stored = flowline_core::suppressions::in_force(
        app.full(),
        &organization,
        "+15551234567",
        Timestamp::now(),
    )
    .await
    .unwrap();
    assert!(
        stored.is_some(),
        "stored under the authorizer's organization"
    );
}

#[tokio::test]
async fn suppression_get_answers_the_suppression_of_the_path() {
    let app = app();
    let (status, body, _) = answer(
        suppression_get::handle(&app.wired("suppression-get"), event("suppression-get")).await,
    );
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["code"], "NOT_FOUND");
    let put = suppressed(&app).await;
    let (status, body, response) = answer(
        suppression_get::handle(&app.wired("suppression-get"), event("suppression-get")).await,
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(response.headers.contains_key("etag"));
    assert_eq!(body, put);
}

#[tokio::test]
async fn suppression_list_lists_the_organizations_suppressions() {
    let app = app();
    let put = suppressed(&app).await;
    let (status, body, _) = answer(
        suppression_list::handle(&app.wired("suppression-list"), event("suppression-list")).await,
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"suppressions": [put]}));
}

#[tokio::test]
async fn suppression_delete_takes_the_number_off_the_list() {
    let app = app();
    suppressed(&app).await;
    let (status, body, _) = answer(
        suppression_delete::handle(
            &app.wired("suppression-delete"),
            event("suppression-delete"),
        )
        .await,
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["message"].as_str().unwrap().contains("+15551234567"));
    let (status, _, _) = answer(
        suppression_get::handle(&app.wired("suppression-get"), event("suppression-get")).await,
    );
    assert_eq!(status, StatusCode::NOT_FOUND);
}

// --- the scheduler's target and the sweeper ----------------------------------------------------

/// The `dispatch` fixture (EventBridge Scheduler's input) for the callback `id`.
fn dispatch_job(id: &str) -> Job {
    let text = fixture_text("dispatch");
    assert!(text.contains(FIXTURE_CALLBACK));
    let job: Job = serde_json::from_str(&text.replace(FIXTURE_CALLBACK, id)).expect("a job");
    assert!(
        job.as_dispatch().is_some(),
        "the fixture is a callback's dispatch"
    );
    job
}

/// The status a dispatch run answered (`None`: nothing to do).
fn dispatched_status(done: JobDone) -> Option<String> {
    match done {
        JobDone::Dispatch { status, .. } => status,
        other => panic!("not a dispatch: {other:?}"),
    }
}

#[tokio::test]
async fn dispatch_delivers_the_due_callback_once_and_a_repeat_is_a_no_op() {
    let world = world().await;
    let (id, scheduled_at) = world.scheduled_callback().await;
    world
        .receiver
        .script([Reply::session("sess_acme_runtime_7d41e0")]);
    // The schedule fires at scheduled_at.
    move_clock_to(&world.clock, scheduled_at);
    let done = dispatch::handle(&world.app.wired("dispatch"), dispatch_job(&id))
        .await
        .expect("dispatch succeeds");
    assert_eq!(
        done,
        JobDone::Dispatch {
            callback_id: id.clone(),
            status: Some("dispatched".to_owned()),
        }
    );
    let callback = world.callback(&id).await;
    assert_eq!(callback["status"], "dispatched");
    assert_eq!(callback["created_session_id"], "sess_acme_runtime_7d41e0");
    let deliveries = world.receiver.of_type("callback.dispatch");
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].json["data"]["callback"]["id"], id.as_str());

    // EventBridge Scheduler delivers at least once: the same input again does nothing.
    let again = dispatch::handle(&world.app.wired("dispatch"), dispatch_job(&id))
        .await
        .expect("a repeat succeeds");
    assert_eq!(dispatched_status(again), None);
    assert_eq!(world.receiver.of_type("callback.dispatch").len(), 1);
    assert_eq!(world.callback(&id).await, callback);
}

#[tokio::test]
async fn dispatch_of_a_cancelled_callback_is_a_no_op() {
    let world = world().await;
    let (id, scheduled_at) = world.scheduled_callback().await;
    let request = world.on_callback("callback-cancel", &id);
    let (status, _, _) =
        answer(callback_cancel::handle(&world.app.wired("callback-cancel"), request).await);
    assert_eq!(status, StatusCode::OK);
    move_clock_to(&world.clock, scheduled_at);
    let done = dispatch::handle(&world.app.wired("dispatch"), dispatch_job(&id))
        .await
        .unwrap();
    assert_eq!(dispatched_status(done), None);
    assert!(world.receiver.deliveries().is_empty());
}

#[tokio::test]
async fn sweeper_dispatches_a_callback_more_than_two_minutes_overdue() {
    let world = world().await;
    let (id, scheduled_at) = world.scheduled_callback().await;
    let tick = fixture_json("sweeper");

    // Just due, the callback is its schedule's business.
    move_clock_to(&world.clock, scheduled_at + SignedDuration::from_mins(1));
    let report = sweeper::handle(&world.app.wired("sweeper"), tick.clone())
        .await
        .unwrap();
    assert_eq!((report.examined, report.handed_off), (0, 0));
    assert_eq!(
        report.shards_finished, 64,
        "every shard of both due indexes swept"
    );
    assert_eq!(world.callback(&id).await["status"], "scheduled");

    // Its schedule was lost: three minutes late, the sweeper hands it to dispatch.
    move_clock_to(&world.clock, scheduled_at + SignedDuration::from_mins(3));
    let report = sweeper::handle(&world.app.wired("sweeper"), tick.clone())
        .await
        .unwrap();
    assert_eq!(
        (report.examined, report.handed_off, report.errors),
        (1, 1, 0)
    );
    common::eventually(
        "the callback is dispatched",
        std::time::Duration::from_secs(10),
        || async { (world.callback(&id).await["status"] == "dispatched").then_some(()) },
    )
    .await;
    assert_eq!(world.receiver.of_type("callback.dispatch").len(), 1);

    // A dispatched callback leaves the sweeper's index.
    let report = sweeper::handle(&world.app.wired("sweeper"), tick)
        .await
        .unwrap();
    assert_eq!(report.examined, 0);
}

// --- the authorizer context --------------------------------------------------------------------

/// The fixture's event with `authorizer.lambda` replaced (`None`: the whole authorizer gone).
fn event_with_authorizer(function: &str, context: Option<Value>) -> ApiRequest {
    let mut fixture = fixture_json(function);
    let request_context = fixture["requestContext"].as_object_mut().unwrap();
    match context {
        None => {
            request_context.remove("authorizer");
        }
        Some(context) => {
            request_context.insert("authorizer".to_owned(), json!({ "lambda": context }));
        }
    }
    api_request(lambda_http::request::from_str(&fixture.to_string()).unwrap())
}

#[tokio::test]
async fn every_function_answers_401_without_the_authorizer_context() {
    let app = app();
    for name in api_key_fixtures() {
        let request = event_with_authorizer(&name, None);
        assert!(request.caller.is_none());
        let response = render(flowline::functions::call(&app.wired(&name), &name, request).await);
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{name}");
        assert_eq!(response.body, UNAUTHORIZED.as_bytes(), "{name}");
        // And so it leaves the Lambda.
        let lambda = lambda_response(response);
        assert_eq!(lambda.status(), 401);
        assert_eq!(
            lambda.headers().get("content-type").unwrap(),
            "application/json"
        );
    }
}

#[tokio::test]
async fn every_function_answers_503_when_the_authorizer_could_not_read_the_keys() {
    let app = app();
    for name in api_key_fixtures() {
        let request = event_with_authorizer(&name, Some(json!({"auth_error": "unavailable"})));
        assert!(request.caller.is_none());
        let (status, body, _) =
            answer(flowline::functions::call(&app.wired(&name), &name, request).await);
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{name}: {body}");
        assert_eq!(body["code"], "UPSTREAM_UNAVAILABLE", "{name}");
    }
}

#[tokio::test]
async fn every_function_answers_429_when_the_authorizer_found_the_organization_over_budget() {
    let app = app();
    for name in api_key_fixtures() {
        let context = json!({"auth_error": "rate_limited", "retry_after": 3});
        let request = event_with_authorizer(&name, Some(context));
        let (status, body, response) =
            answer(flowline::functions::call(&app.wired(&name), &name, request).await);
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{name}: {body}");
        assert_eq!(body["code"], "RATE_LIMITED", "{name}");
        assert_eq!(response.headers["retry-after"], "3", "{name}");
    }
}

#[tokio::test]
async fn the_authorizer_spends_the_organizations_budget() {
    let keys = KeyStore::new(Arc::new(MemoryTable::new()));
    let (key, _) = keys
        .create(
            FIXTURE_ORGANIZATION,
            KeyKind::Private,
            "crm-integration",
            "2026-11-02T09:00:00.000Z",
        )
        .await
        .unwrap();
    let authorizer = flowline_lambda::authorizer::Authorizer {
        keys: keys.clone(),
        limiter: flowline_core::ratelimit::RateLimiter::local(flowline_core::ratelimit::Limits {
            organization: flowline_core::ratelimit::Limit::new(0.001, 2.0),
            ..flowline_core::ratelimit::Limits::default()
        }),
    };
    let request = || authorizer_request(Some(&format!("Bearer {key}")));
    // An organization's own budget, set with the admin command, replaces the deployment's.
    let own = flowline_core::ratelimit::Limit::new(1000.0, 1000.0);
    keys.set_organization_limit(FIXTURE_ORGANIZATION, Some(own))
        .await
        .unwrap();
    for _ in 0..5 {
        let response = authorizer::handle(&authorizer, request()).await;
        assert_eq!(
            response.context.get("organization_id"),
            Some(&json!(FIXTURE_ORGANIZATION))
        );
    }
    // Without it, the deployment's: two more, then refused.
    keys.set_organization_limit(FIXTURE_ORGANIZATION, None)
        .await
        .unwrap();
    for _ in 0..2 {
        let response = authorizer::handle(&authorizer, request()).await;
        assert!(response.context.contains_key("organization_id"));
    }
    let over = authorizer::handle(&authorizer, request()).await;
    assert!(over.is_authorized, "it always allows; the route answers");
    assert_eq!(over.context["auth_error"], "rate_limited");
    assert!(over.context["retry_after"].as_u64().unwrap() >= 1);
    assert!(!over.context.contains_key("organization_id"));
}

#[tokio::test]
async fn an_incomplete_or_unknown_authorizer_context_is_401() {
    let app = app();
    for context in [
        json!({}),
        json!({"organization_id": "org_x", "key_name": "k"}),
        json!({"organization_id": "org_x", "key_kind": "admin", "key_name": "k"}),
        json!({"key_kind": "private", "key_name": "k"}),
        json!({"organization_id": "org_x", "key_kind": "private"}),
        json!({"organization_id": 7, "key_kind": "private", "key_name": "k"}),
    ] {
        let request = event_with_authorizer("flow-create", Some(context.clone()));
        let (status, _, response) =
            answer(flow_create::handle(&app.wired("flow-create"), request).await);
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{context}");
        assert_eq!(response.body, UNAUTHORIZED.as_bytes());
    }
}

#[tokio::test]
async fn a_public_key_context_cannot_write() {
    let app = app();
    let public = json!({
        "organization_id": "org_0Q7fGk2LmZp4Xc8RtYb1Nv",
        "key_kind": "public",
        "key_name": "ops-dashboard",
    });
    let request = event_with_authorizer("flow-create", Some(public));
    let (status, body, _) = answer(flow_create::handle(&app.wired("flow-create"), request).await);
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "FORBIDDEN");
}

// --- the authorizer function -------------------------------------------------------------------

/// The `authorizer` fixture with its `Authorization` header (and so its identity source)
/// replaced, or removed (`None`).
fn authorizer_request(authorization: Option<&str>) -> ApiGatewayV2CustomAuthorizerV2Request {
    let mut fixture = fixture_json("authorizer");
    match authorization {
        Some(value) => {
            fixture["headers"]["authorization"] = value.into();
            fixture["identitySource"] = json!([value]);
        }
        None => {
            fixture["headers"]
                .as_object_mut()
                .unwrap()
                .remove("authorization");
            fixture.as_object_mut().unwrap().remove("identitySource");
        }
    }
    serde_json::from_value(fixture).expect("an HTTP API authorizer request (payload 2.0)")
}

/// The authorizer over `keys`, with the default request budgets.
fn authorizer_over(keys: &KeyStore) -> flowline_lambda::authorizer::Authorizer {
    flowline_lambda::authorizer::Authorizer {
        keys: keys.clone(),
        limiter: flowline_core::ratelimit::RateLimiter::local(
            flowline_core::ratelimit::Limits::default(),
        ),
    }
}

/// The context the HTTP fixtures of private-key routes carry.
fn private_key_context() -> Value {
    fixture_json("callback-create")["requestContext"]["authorizer"]["lambda"].clone()
}

#[tokio::test]
async fn authorizer_hands_the_routes_the_organization_kind_and_name_of_a_live_key() {
    let keys = KeyStore::new(Arc::new(MemoryTable::new()));
    let (key, _) = keys
        .create(
            FIXTURE_ORGANIZATION,
            KeyKind::Private,
            "crm-integration",
            "2026-11-02T09:00:00.000Z",
        )
        .await
        .unwrap();
    let response = authorizer::handle(
        &authorizer_over(&keys),
        authorizer_request(Some(&format!("Bearer {key}"))),
    )
    .await;
    assert!(response.is_authorized);
    // Exactly the context the HTTP fixtures carry.
    assert_eq!(
        Value::Object(response.context.clone()),
        private_key_context()
    );
    // As API Gateway reads a simple response.
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        json!({"isAuthorized": true, "context": private_key_context()})
    );

    // The bare key is accepted too.
    let response =
        authorizer::handle(&authorizer_over(&keys), authorizer_request(Some(&key))).await;
    assert_eq!(Value::Object(response.context), private_key_context());
}

#[tokio::test]
async fn authorizer_gives_no_context_for_a_missing_unknown_or_revoked_key() {
    let keys = KeyStore::new(Arc::new(MemoryTable::new()));
    let (revoked, stored) = keys
        .create(
            FIXTURE_ORGANIZATION,
            KeyKind::Private,
            "old-crm-integration",
            "2026-11-02T09:00:00.000Z",
        )
        .await
        .unwrap();
    assert!(
        keys.revoke(
            FIXTURE_ORGANIZATION,
            &stored.hash_prefix,
            "2026-11-20T09:00:00.000Z"
        )
        .await
        .unwrap()
    );
    let unknown = authorizer::handle(
        &authorizer_over(&keys),
        serde_json::from_str(&fixture_text("authorizer")).unwrap(),
    )
    .await;
    let revoked = authorizer::handle(
        &authorizer_over(&keys),
        authorizer_request(Some(&format!("Bearer {revoked}"))),
    )
    .await;
    let missing = authorizer::handle(&authorizer_over(&keys), authorizer_request(None)).await;
    let wrong_scheme = authorizer::handle(
        &authorizer_over(&keys),
        authorizer_request(Some("Basic c2tfZXhhbXBsZTo=")),
    )
    .await;
    for (case, response) in [
        ("unknown", unknown),
        ("revoked", revoked),
        ("missing", missing),
        ("wrong scheme", wrong_scheme),
    ] {
        // Allowed with no caller: the route renders the SPEC's 401.
        assert!(response.is_authorized, "{case}");
        assert!(
            response.context.is_empty(),
            "{case}: {:?}",
            response.context
        );
    }
    let request = event_with_authorizer("callback-create", Some(json!({})));
    let (status, _, response) =
        answer(callback_create::handle(&app().wired("callback-create"), request).await);
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(response.body, UNAUTHORIZED.as_bytes());
}

/// A keys table that cannot be reached.
struct UnreachableTable;

#[async_trait]
impl Table for UnreachableTable {
    async fn get(&self, _: &Key) -> Result<Option<Item>, StoreError> {
        Err(StoreError::Unavailable("connection refused".to_owned()))
    }
    async fn get_many(&self, _: &[Key]) -> Result<Vec<Option<Item>>, StoreError> {
        Err(StoreError::Unavailable("connection refused".to_owned()))
    }
    async fn query(&self, _: &Query) -> Result<Vec<Item>, StoreError> {
        Err(StoreError::Unavailable("connection refused".to_owned()))
    }
    async fn write(&self, _: Vec<Write>) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("connection refused".to_owned()))
    }
    async fn increment(&self, _: &Key, _: i64, _: Option<i64>) -> Result<i64, StoreError> {
        Err(StoreError::Unavailable("connection refused".to_owned()))
    }
}

#[tokio::test]
async fn authorizer_reports_an_unreachable_keys_table_and_the_route_answers_503() {
    let keys = KeyStore::new(Arc::new(UnreachableTable));
    let request = serde_json::from_str(&fixture_text("authorizer")).unwrap();
    let response = authorizer::handle(&authorizer_over(&keys), request).await;
    assert!(response.is_authorized);
    assert_eq!(
        Value::Object(response.context.clone()),
        json!({"auth_error": "unavailable"})
    );

    // That context, handed to the route the authorizer ran for, is a 503 safe to retry.
    let request = event_with_authorizer("callback-create", Some(Value::Object(response.context)));
    let (status, body, _) =
        answer(callback_create::handle(&app().wired("callback-create"), request).await);
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "UPSTREAM_UNAVAILABLE");
}

const FIXTURE_TRIGGER: &str = "fcb_00VbcKLmQ3sT8uV1wX4yZ6a";
const FIXTURE_SIGNATURE: &str = "kR2vXw9QpL4mT7nZc1Yb8Hs3Gd6Jf0Ua5Ee2Ki9Oo4M";

impl World {
    /// The `flow-callback-create` fixture's trigger on this world's flow: its id and signature.
    async fn trigger(&self) -> (String, String) {
        let request = event_with("flow-callback-create", &[(FIXTURE_FLOW, &self.slug)]);
        let (status, body, _) = answer(
            flow_callback_create::handle(&self.app.wired("flow-callback-create"), request).await,
        );
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let url = body["url"].as_str().expect("a url");
        let signature = url
            .split("signature=")
            .nth(1)
            .expect("a signature")
            .to_owned();
        (body["id"].as_str().expect("an id").to_owned(), signature)
    }

    fn on_trigger(&self, function: &str, id: &str) -> ApiRequest {
        event_with(
            function,
            &[(FIXTURE_FLOW, &self.slug), (FIXTURE_TRIGGER, id)],
        )
    }
}

#[tokio::test]
async fn flow_callback_create_makes_the_fixture_trigger_with_its_full_url() {
    let world = world().await;
    let request = event_with("flow-callback-create", &[(FIXTURE_FLOW, &world.slug)]);
    let (status, body, response) = answer(
        flow_callback_create::handle(&world.app.wired("flow-callback-create"), request).await,
    );
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["format"], "xml");
    assert_eq!(body["flow"], world.slug.as_str());
    assert!(!body["url"].as_str().unwrap().ends_with("****"));
    assert!(response.headers.contains_key("etag"));
}

#[tokio::test]
async fn flow_callback_list_and_get_mask_the_signature() {
    let world = world().await;
    let (id, _) = world.trigger().await;
    let request = event_with("flow-callback-list", &[(FIXTURE_FLOW, &world.slug)]);
    let (status, body, _) =
        answer(flow_callback_list::handle(&world.app.wired("flow-callback-list"), request).await);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["callbacks"][0]["id"], id.as_str());
    assert!(
        body["callbacks"][0]["url"]
            .as_str()
            .unwrap()
            .ends_with("?signature=****")
    );
    let (status, body, _) = answer(
        flow_callback_get::handle(
            &world.app.wired("flow-callback-get"),
            world.on_trigger("flow-callback-get", &id),
        )
        .await,
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["url"].as_str().unwrap().ends_with("?signature=****"));
    // The fixture as it stands names a trigger no organization has.
    let (status, _, _) = answer(
        flow_callback_get::handle(
            &world.app.wired("flow-callback-get"),
            event("flow-callback-get"),
        )
        .await,
    );
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn flow_callback_update_rotates_the_signature() {
    let world = world().await;
    let (id, old) = world.trigger().await;
    let (status, body, _) = answer(
        flow_callback_update::handle(
            &world.app.wired("flow-callback-update"),
            world.on_trigger("flow-callback-update", &id),
        )
        .await,
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    let new = body["url"]
        .as_str()
        .unwrap()
        .split("signature=")
        .nth(1)
        .unwrap()
        .to_owned();
    assert_ne!(new, old);
    let request = event_with(
        "hook-trigger",
        &[(FIXTURE_TRIGGER, &id), (FIXTURE_SIGNATURE, &old)],
    );
    let (status, _, _) =
        answer(hook_trigger::handle(&world.app.wired("hook-trigger"), request).await);
    assert_eq!(status, StatusCode::NOT_FOUND, "the old URL is dead");
}

#[tokio::test]
async fn flow_callback_delete_kills_the_url() {
    let world = world().await;
    let (id, signature) = world.trigger().await;
    let (status, body, _) = answer(
        flow_callback_delete::handle(
            &world.app.wired("flow-callback-delete"),
            world.on_trigger("flow-callback-delete", &id),
        )
        .await,
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    let request = event_with(
        "hook-trigger",
        &[(FIXTURE_TRIGGER, &id), (FIXTURE_SIGNATURE, &signature)],
    );
    let (status, _, _) =
        answer(hook_trigger::handle(&world.app.wired("hook-trigger"), request).await);
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn hook_trigger_schedules_the_fixture_callback_and_answers_in_xml() {
    let world = world().await;
    let (id, signature) = world.trigger().await;
    let request = event_with(
        "hook-trigger",
        &[(FIXTURE_TRIGGER, &id), (FIXTURE_SIGNATURE, &signature)],
    );
    assert!(request.caller.is_none(), "a trigger URL carries no API key");
    let response = render(hook_trigger::handle(&world.app.wired("hook-trigger"), request).await);
    assert_eq!(response.status, StatusCode::CREATED);
    assert!(
        response.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/xml")
    );
    let text = std::str::from_utf8(&response.body).unwrap();
    assert!(text.contains("<status>scheduled</status>"), "{text}");
    assert!(text.contains(&format!("<flow>{}</flow>", world.slug)));
    assert_eq!(world.pending_schedules(), 1);
    // As Lambda returns it: the XML text, unchanged.
    let lambda = lambda_response(response);
    assert_eq!(lambda.status(), 201);
}

// --- the outbox's reader, and the delivery log -------------------------------------------------

/// The `deliver` fixture's event id (`webhook-id` of what it delivers).
const FIXTURE_EVENT: &str = "evt_00VbcKJYr3Hd7Tq1Wm5Xa2e";
const FIXTURE_DELIVERY: &str = "del_00VbcKJZ4mPq8Rt2Vx6Yb9c";

impl World {
    /// Subscribes the world's endpoint to `callback.scheduled` too.
    async fn subscribe_to_scheduled(&self) {
        let request = event_with(
            "webhook-update",
            &[
                (FIXTURE_WEBHOOK, &self.webhook_id),
                (
                    r#"\"callback.cancelled\"]"#,
                    r#"\"callback.cancelled\", \"callback.scheduled\"]"#,
                ),
            ],
        );
        let (status, body, _) =
            answer(webhook_update::handle(&self.app.wired("webhook-update"), request).await);
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(
            body["events"]
                .as_array()
                .unwrap()
                .contains(&json!("callback.scheduled"))
        );
    }

    /// The `deliver` fixture as the stream hands it over, with its outbox item in the table
    /// (where the change that queued it put it).
    async fn outbox_fixture(&self) -> StreamBatch {
        let batch: StreamBatch = serde_json::from_str(&fixture_text("deliver")).unwrap();
        let store = self.app.wired("deliver").store.clone();
        for record in flowline_lambda::stream::outbox_records(batch.clone()) {
            let item = record.item.expect("the fixture reads");
            store
                .write(vec![Write::Put {
                    key: item.key,
                    doc: item.doc,
                    expect: Expect::Absent,
                    expires_at: item.expires_at,
                }])
                .await
                .unwrap();
        }
        batch
    }

    /// The endpoint's delivery log as `webhook-deliveries-list` answers it, for `status`.
    async fn deliveries(&self, status: &str) -> Value {
        let request = event_with(
            "webhook-deliveries-list",
            &[
                (FIXTURE_WEBHOOK, &self.webhook_id),
                ("status=failed", &format!("status={status}")),
                (r#""status": "failed""#, &format!(r#""status": "{status}""#)),
            ],
        );
        let (code, body, _) = answer(
            webhook_deliveries_list::handle(&self.app.wired("webhook-deliveries-list"), request)
                .await,
        );
        assert_eq!(code, StatusCode::OK, "{body}");
        body
    }
}

#[tokio::test]
async fn deliver_sends_the_fixture_event_once_even_when_the_stream_hands_it_out_again() {
    let world = world().await;
    world.subscribe_to_scheduled().await;
    let batch = world.outbox_fixture().await;
    let deliver_app = world.app.wired("deliver");
    let answer = deliver::handle(&deliver_app, batch.clone()).await.unwrap();
    assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
    let received = world.receiver.of_type("callback.scheduled");
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].webhook_id(), FIXTURE_EVENT);
    assert_eq!(received[0].json["data"]["callback"]["id"], FIXTURE_CALLBACK);

    // Lambda delivers a batch at least once: the same records again send nothing.
    let again = deliver::handle(&deliver_app, batch).await.unwrap();
    assert!(again.batch_item_failures.is_empty());
    assert_eq!(world.receiver.of_type("callback.scheduled").len(), 1);

    // The delivery is in the endpoint's log, succeeded, with its one try.
    let log = world.deliveries("succeeded").await;
    let deliveries = log["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 1, "{log}");
    assert_eq!(deliveries[0]["event_id"], FIXTURE_EVENT);
    assert_eq!(deliveries[0]["event_type"], "callback.scheduled");
    assert_eq!(deliveries[0]["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(deliveries[0]["attempts"][0]["status_code"], 200);
    assert!(deliveries[0]["next_attempt_at"].is_null());
    assert!(
        world.deliveries("failed").await["deliveries"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn deliver_reports_the_records_that_failed_for_the_stream_to_retry() {
    let world = world().await;
    world.subscribe_to_scheduled().await;
    world.receiver.default_reply(Reply::status(503));
    let batch = world.outbox_fixture().await;
    // A receiver that fails is the delivery's business (retries), not the stream's.
    let answer = deliver::handle(&world.app.wired("deliver"), batch)
        .await
        .unwrap();
    assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
    let pending = world.deliveries("pending").await;
    let deliveries = pending["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 1, "{pending}");
    assert!(
        deliveries[0]["next_attempt_at"].is_string(),
        "a retry is set"
    );
    assert_eq!(world.app.timers().pending(), 1, "and scheduled");
}

#[tokio::test]
async fn delivery_routes_answer_the_fixture_delivery_of_the_organization_only() {
    let world = world().await;
    world.subscribe_to_scheduled().await;
    world.receiver.default_reply(Reply::status(500));
    let batch = world.outbox_fixture().await;
    deliver::handle(&world.app.wired("deliver"), batch)
        .await
        .unwrap();
    let log = world.deliveries("pending").await;
    let id = log["deliveries"][0]["id"].as_str().unwrap().to_owned();

    let request = event_with(
        "webhook-delivery-get",
        &[
            (FIXTURE_WEBHOOK, &world.webhook_id),
            (FIXTURE_DELIVERY, &id),
        ],
    );
    let (status, body, response) = answer(
        webhook_delivery_get::handle(&world.app.wired("webhook-delivery-get"), request).await,
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(response.headers.contains_key("etag"));
    assert_eq!(body["id"], id.as_str());
    assert_eq!(body["payload"]["id"], FIXTURE_EVENT, "the event as sent");
    assert_eq!(body["payload"]["type"], "callback.scheduled");
    assert_eq!(body["attempts"][0]["status_code"], 500);

    // The fixture as it stands names a delivery nobody has.
    let request = event_with(
        "webhook-delivery-get",
        &[(FIXTURE_WEBHOOK, &world.webhook_id)],
    );
    let (status, body, _) = answer(
        webhook_delivery_get::handle(&world.app.wired("webhook-delivery-get"), request).await,
    );
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // Redeliver: 202, and one more try by the deliver function.
    world.receiver.default_reply(Reply::status(200));
    let request = event_with(
        "webhook-delivery-redeliver",
        &[
            (FIXTURE_WEBHOOK, &world.webhook_id),
            (FIXTURE_DELIVERY, &id),
        ],
    );
    let (status, body, _) = answer(
        webhook_delivery_redeliver::handle(&world.app.wired("webhook-delivery-redeliver"), request)
            .await,
    );
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["id"], id.as_str());
    // (The world's flow.published is in the outbox too: no stream runs here.)
    let queued: Vec<Item> = outbox_items(&world)
        .await
        .into_iter()
        .filter(|item| matches!(outbox::decode(item).unwrap().work, Work::Redelivery { .. }))
        .collect();
    assert_eq!(queued.len(), 1, "queued in the outbox");
    let before = world.receiver.of_type("callback.scheduled").len();
    for item in queued {
        let outboxed = outbox::decode(&item).unwrap();
        flowline_core::webhooks::worker::handle(&world.app.wired("deliver"), &item.key, outboxed)
            .await
            .unwrap();
    }
    let received = world.receiver.of_type("callback.scheduled");
    assert_eq!(received.len(), before + 1);
    assert_eq!(
        received.last().unwrap().webhook_id(),
        FIXTURE_EVENT,
        "same webhook-id"
    );
    let log = world.deliveries("succeeded").await;
    assert_eq!(log["deliveries"][0]["id"], id.as_str());

    // Recover: the fixture's window (the day before) holds no failed delivery.
    let request = event_with("webhook-recover", &[(FIXTURE_WEBHOOK, &world.webhook_id)]);
    let (status, body, _) =
        answer(webhook_recover::handle(&world.app.wired("webhook-recover"), request).await);
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body, json!({"queued": 0}));
    // A `since` more than 30 days back is refused by name.
    let request = event_with(
        "webhook-recover",
        &[
            (FIXTURE_WEBHOOK, &world.webhook_id),
            ("2026-11-20T09:00:00Z", "2026-10-01T09:00:00Z"),
        ],
    );
    let (status, body, _) =
        answer(webhook_recover::handle(&world.app.wired("webhook-recover"), request).await);
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["details"][0]["field"], "since");
}

#[tokio::test]
async fn rotate_secret_answers_a_new_secret_once() {
    let world = world().await;
    let request = world.on_webhook("webhook-rotate-secret");
    let (status, body, response) = answer(
        webhook_rotate_secret::handle(&world.app.wired("webhook-rotate-secret"), request).await,
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(response.headers.contains_key("etag"));
    let secret = body["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"));
    let (_, shown, _) = answer(
        webhook_get::handle(
            &world.app.wired("webhook-get"),
            world.on_webhook("webhook-get"),
        )
        .await,
    );
    assert!(shown.get("secret").is_none());
    // A public key cannot rotate.
    let request = event_with(
        "webhook-rotate-secret",
        &[
            (FIXTURE_WEBHOOK, &world.webhook_id),
            ("\"key_kind\": \"private\"", "\"key_kind\": \"public\""),
        ],
    );
    let (status, _, _) = answer(
        webhook_rotate_secret::handle(&world.app.wired("webhook-rotate-secret"), request).await,
    );
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// Everything in the outbox (what the stream would hand the deliver function).
async fn outbox_items(world: &World) -> Vec<Item> {
    let store = world.app.wired("deliver").store.clone();
    let mut items = Vec::new();
    for shard in 0..outbox::SHARDS {
        items.extend(
            store
                .query(&Query::partition(outbox::shard_pk(shard)))
                .await
                .unwrap(),
        );
    }
    items
}
