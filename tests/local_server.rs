//! The local server as a user meets it: `cargo run`'s binary, routing errors, and auth.

mod common;

use common::binary::{self, Binary};
use common::{Backend, TestServer};
use reqwest::Method;

#[tokio::test]
async fn without_configured_keys_the_server_prints_a_working_key_pair() {
    let data_dir = tempfile::tempdir().unwrap();
    let server = Binary::start(data_dir.path(), &[]);
    let key = |label: &str| {
        server
            .printed(label)
            .unwrap_or_else(|| panic!("no {label} line in {:?}", server.lines()))
    };
    let (public, private) = (key("public key (reads):"), key("private key (writes):"));
    assert!(public.starts_with("pk_") && private.starts_with("sk_"));
    let base = &server.base;
    let client = common::http_client();
    let created = client
        .post(format!("{base}/v1/flows"))
        .bearer_auth(&private)
        .json(&serde_json::json!({"name": "From the printed key"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let listed = client
        .get(format!("{base}/v1/flows"))
        .bearer_auth(&public)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
}

#[tokio::test]
async fn configured_keys_belong_to_their_organizations() {
    let data_dir = tempfile::tempdir().unwrap();
    let server = Binary::start(
        data_dir.path(),
        &[(
            "FLOWLINE_API_KEYS",
            "sk_alpha_key_1=org_alpha, pk_beta_key_1=org_beta",
        )],
    );
    assert!(
        !server.lines().iter().any(|l| l.contains("private key")),
        "no key is printed when keys are configured"
    );
    let base = &server.base;
    let client = common::http_client();
    let created = client
        .post(format!("{base}/v1/flows"))
        .bearer_auth("sk_alpha_key_1")
        .json(&serde_json::json!({"name": "Alpha's"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let body: serde_json::Value = created.json().await.unwrap();
    assert!(body["modified_by"].as_str().unwrap().starts_with("env-"));
    let slug = body["slug"].as_str().unwrap();
    let other = client
        .get(format!("{base}/v1/flows/{slug}"))
        .bearer_auth("pk_beta_key_1")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
}

#[test]
fn malformed_key_configuration_stops_the_start() {
    let data_dir = tempfile::tempdir().unwrap();
    let output = binary::command()
        .env("FLOWLINE_API_KEYS", "not-a-key")
        .env("FLOWLINE_ADDR", "127.0.0.1:0")
        .env("FLOWLINE_DATA_DIR", data_dir.path().join("data"))
        .output()
        .expect("binary runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("FLOWLINE_API_KEYS"));
    assert!(
        !data_dir.path().join("data").exists(),
        "a start refused for its configuration touches no data directory"
    );
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405_in_the_error_shape() {
    let server = TestServer::start(Backend::Memory).await;
    let org = server.org().await;
    org.get("/v1/nothing-here")
        .await
        .expect_error(404, "NOT_FOUND");
    let answer = org.call(Method::PATCH, "/v1/flows").send().await;
    answer.expect_error(405, "METHOD_NOT_ALLOWED");
    assert!(answer.header("allow").unwrap().contains("GET"));
}

#[tokio::test]
async fn missing_unknown_and_malformed_keys_are_401_with_the_exact_body() {
    let server = TestServer::start(Backend::Memory).await;
    let org = server.org().await;
    for call in [
        server.anonymous(Method::GET, "/v1/flows"),
        org.with_key("sk_unknown_key_123", Method::GET, "/v1/flows"),
        org.with_key("garbage", Method::GET, "/v1/flows"),
    ] {
        let answer = call.send().await;
        assert_eq!(answer.status, 401);
        assert_eq!(
            answer.text,
            r#"{"error":"Unauthorized","code":"UNAUTHORIZED"}"#
        );
    }
    // The bare key works as well as the Bearer form.
    let bare = server
        .anonymous(Method::GET, "/v1/flows")
        .header("authorization", &org.pk)
        .send()
        .await;
    bare.expect(200);
}

#[tokio::test]
async fn every_route_is_served_by_a_function() {
    let server = TestServer::start(Backend::Memory).await;
    let org = server.org().await;
    for route in flowline_core::routes::ROUTES {
        let path = route
            .path
            .replace("{flow}", "flow_AAAAAAAAAAAA")
            .replace(['{', '}'], "");
        let method = Method::from_bytes(route.method.as_str().as_bytes()).unwrap();
        // With a key, so the request gets past authentication to the route's function, which
        // answers in its own words (the router's 404 says "No route"; a route without a
        // function is a 500).
        let answer = org
            .call(method, &path)
            .json(&serde_json::json!({}))
            .send()
            .await;
        let shown = format!(
            "{} {}: {} {}",
            route.method, route.path, answer.status, answer.text
        );
        assert!(answer.status < 500, "{shown}");
        assert!(
            !answer.text.contains("No route for"),
            "the router answered, not a function: {shown}"
        );
        assert!(
            answer.body["code"].is_string() || (200..300).contains(&answer.status),
            "{shown}"
        );
    }
}
