//! The function crates as Lambda runs them: each `events/<function>.json` (an API Gateway HTTP API
//! payload v2 event, the one `cargo lambda invoke --data-file` sends) goes through the Lambda
//! adapter (`flowline_core::lambda::api_request`) into that function's `handle`, on an in-memory
//! app. The fixtures are checked against `functions/` and the route table, so they cannot rot.

use std::path::{Path, PathBuf};

use flowline_core::app::Config;
use flowline_core::auth::KeyKind;
use flowline_core::http::{StatusCode, render};
use flowline_core::lambda::{api_request, lambda_response};
use flowline_core::routes::ROUTES;
use flowline_core::{ApiRequest, ApiResponse, ApiResult, App};
use serde_json::{Value, json};

const SIGNING_KEY: &[u8] = b"test signing key, 32 bytes long!";
const UNAUTHORIZED: &str = r#"{"error":"Unauthorized","code":"UNAUTHORIZED"}"#;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn app() -> std::sync::Arc<App> {
    App::in_memory(
        SIGNING_KEY,
        Config {
            public_base_url: "https://api.flowline.example.com".to_owned(),
            allow_private_targets: false,
        },
    )
}

fn fixture_text(function: &str) -> String {
    let path = root().join("events").join(format!("{function}.json"));
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
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

/// Renders like the Lambda adapter does, and reads the JSON body.
fn answer(result: ApiResult<ApiResponse>) -> (StatusCode, Value, ApiResponse) {
    let response = render(result);
    let body = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    (response.status, body, response)
}

/// The fixture's organization's flow, created through the `flow-create` fixture.
async fn existing_flow(app: &App) -> String {
    let (status, body, _) = answer(flow_create::handle(app, event("flow-create")).await);
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["slug"].as_str().expect("a slug").to_owned()
}

async fn published_flow(app: &App) -> String {
    let slug = existing_flow(app).await;
    let (status, body, _) =
        answer(flow_publish::handle(app, event_on("flow-publish", &slug)).await);
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

// --- the fixtures themselves -------------------------------------------------------------------

#[test]
fn every_fixture_names_a_function_crate_and_its_route() {
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

        let fixture: Value = serde_json::from_str(&fixture_text(&name)).expect("JSON");
        assert_eq!(fixture["version"], "2.0", "{name}: payload format 2.0");
        // HTTP functions serve the routes the route table gives them.
        if let Some(route) = ROUTES.iter().find(|route| route.function == name) {
            let route_key = format!("{} {}", route.method, route.path);
            assert_eq!(fixture["routeKey"], route_key.as_str(), "{name}");
            assert_eq!(fixture["requestContext"]["routeKey"], route_key.as_str());
            assert_eq!(
                fixture["requestContext"]["http"]["method"],
                route.method.as_str()
            );
            let request = event(&name);
            assert_eq!(request.method, route.method, "{name}");
            for param in route.path.split('/').filter_map(|segment| {
                segment
                    .strip_prefix('{')
                    .and_then(|segment| segment.strip_suffix('}'))
            }) {
                assert!(
                    !request.path_param(param).is_empty(),
                    "{name}: path parameter {param}"
                );
            }
        }
    }
}

#[test]
fn every_flow_function_has_a_fixture() {
    let fixtures = fixture_names();
    let flow_functions: Vec<String> = function_dirs()
        .iter()
        .filter_map(|dir| dir.file_name()?.to_str().map(str::to_owned))
        .filter(|name| name.starts_with("flow-"))
        .collect();
    assert_eq!(flow_functions.len(), 9, "{flow_functions:?}");
    for function in flow_functions {
        assert!(
            fixtures.contains(&function),
            "functions/{function} has no events/{function}.json"
        );
    }
}

#[test]
fn fixtures_carry_the_authorizer_context_as_the_caller() {
    for name in fixture_names() {
        let request = event(&name);
        let caller = request
            .caller
            .as_ref()
            .unwrap_or_else(|| panic!("events/{name}.json: no authorizer context"));
        assert!(caller.organization_id.starts_with("org_"));
        assert!(!caller.key_name.is_empty());
        let reads = request.method == http::Method::GET;
        let kind = if reads {
            KeyKind::Public
        } else {
            KeyKind::Private
        };
        assert_eq!(caller.kind, kind, "{name}");
        let authorization = request.header("authorization").expect("authorization");
        assert!(authorization.starts_with(&format!("Bearer {}", kind.prefix())));
        if !request.body.is_empty() {
            assert_eq!(request.header("content-type"), Some("application/json"));
            let _: Value = serde_json::from_slice(&request.body).expect("a JSON body");
        }
    }
}

// --- each function on its fixture --------------------------------------------------------------

#[tokio::test]
async fn flow_create_creates_the_fixture_flow_as_draft_version_one() {
    let app = app();
    let request = event("flow-create");
    let organization = request.caller.clone().unwrap().organization_id;
    let (status, body, response) = answer(flow_create::handle(&app, request).await);
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
    let (status, again, response) = answer(flow_create::handle(&app, event("flow-create")).await);
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(again["slug"], slug);
    assert_eq!(
        response
            .headers
            .get("idempotent-replayed")
            .map(|v| v.to_str().unwrap()),
        Some("true")
    );
    let stored = flowline_core::flows::store::load_head(app.store.as_ref(), &organization, slug)
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
    let (status, body, _) = answer(flow_list::handle(&app, event("flow-list")).await);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["page_size"], 10);
    assert_eq!(body["total_records"], 1);
    assert_eq!(body["flows"][0]["slug"], slug.as_str());
    assert!(body.get("next_page_token").is_none());
}

#[tokio::test]
async fn flow_validate_finds_the_fixture_body_valid_and_stores_nothing() {
    let app = app();
    let (status, body, _) = answer(flow_validate::handle(&app, event("flow-validate")).await);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"valid": true, "problems": []}));
    let (_, listed, _) = answer(flow_list::handle(&app, event("flow-list")).await);
    assert_eq!(listed["total_records"], 0);
}

#[tokio::test]
async fn flow_get_answers_the_flow_of_the_path() {
    let app = app();
    let slug = existing_flow(&app).await;
    let (status, body, response) =
        answer(flow_get::handle(&app, event_on("flow-get", &slug)).await);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(response.headers.contains_key("etag"));
    assert_eq!(body["slug"], slug.as_str());
    assert_eq!(body["name"], "Missed-call callback");

    // The fixture as it stands names a flow no organization has.
    let (status, body, _) = answer(flow_get::handle(&app, event("flow-get")).await);
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "NOT_FOUND");
}

#[tokio::test]
async fn flow_update_changes_the_draft() {
    let app = app();
    let slug = existing_flow(&app).await;
    let (status, body, _) = answer(flow_update::handle(&app, event_on("flow-update", &slug)).await);
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
    let (status, body, _) = answer(flow_delete::handle(&app, event_on("flow-delete", &slug)).await);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["message"].as_str().unwrap().contains(&slug));
    let (_, flow, _) = answer(flow_get::handle(&app, event_on("flow-get", &slug)).await);
    assert_eq!(flow["status"], "ARCHIVED");
}

#[tokio::test]
async fn flow_versions_list_lists_highest_first() {
    let app = app();
    let slug = published_flow(&app).await;
    let (status, _, _) =
        answer(flow_version_create::handle(&app, event_on("flow-version-create", &slug)).await);
    assert_eq!(status, StatusCode::CREATED);
    let (status, body, _) =
        answer(flow_versions_list::handle(&app, event_on("flow-versions-list", &slug)).await);
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
    let (status, body, _) =
        answer(flow_version_create::handle(&app, event_on("flow-version-create", &slug)).await);
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        (body["version"].clone(), body["status"].clone()),
        (json!(2), json!("DRAFT"))
    );
    assert_eq!(body["name"], "Missed-call callback");
    // A second draft is a conflict.
    let (status, body, _) =
        answer(flow_version_create::handle(&app, event_on("flow-version-create", &slug)).await);
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
}

#[tokio::test]
async fn flow_publish_makes_version_one_active() {
    let app = app();
    let slug = existing_flow(&app).await;
    let (status, body, _) =
        answer(flow_publish::handle(&app, event_on("flow-publish", &slug)).await);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["version"].clone(), body["status"].clone()),
        (json!(1), json!("ACTIVE"))
    );
    // Publishing it again: it is already ACTIVE.
    let (status, body, _) =
        answer(flow_publish::handle(&app, event_on("flow-publish", &slug)).await);
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
}

// --- the authorizer context --------------------------------------------------------------------

/// The fixture's event with `authorizer.lambda` replaced (`None`: the whole authorizer gone).
fn event_with_authorizer(function: &str, context: Option<Value>) -> ApiRequest {
    let mut fixture: Value = serde_json::from_str(&fixture_text(function)).unwrap();
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
    for name in fixture_names() {
        let request = event_with_authorizer(&name, None);
        assert!(request.caller.is_none());
        let response = render(flowline::functions::call(&app, &name, request).await);
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
        let (status, _, response) = answer(flow_create::handle(&app, request).await);
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
    let (status, body, _) = answer(flow_create::handle(&app, request).await);
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "FORBIDDEN");
}
