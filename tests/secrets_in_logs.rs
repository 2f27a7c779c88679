//! Secrets never reach a log line, even at `trace` and from every crate (the SDK, hyper,
//! reqwest included): a workload that makes and uses every kind of secret Flowline has — API
//! keys in `Authorization`, a webhook endpoint's signing secret (and a rotated-out trigger
//! signature), trigger URL signatures, the signing key behind page tokens, the signatures of
//! deliveries — runs with everything logged, and no secret's text appears in what was logged.
//! Store failures are logged with their AWS error code.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use base64::Engine;
use common::TestServer;
use common::receiver::Receiver;
use flowline_fault_proxy::{Fault, Rule};
use serde_json::{Value, json};

/// Everything logged, kept for the test to read.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_a_log_line_at_trace_level() {
    let captured = Captured::default();
    let writer = captured.clone();
    // Everything, as an operator who sets RUST_LOG=trace gets it.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            flowline_core::logging::log_filter(Some("trace")),
        ))
        .with_writer(move || writer.clone())
        .init();

    let (server, proxy) = TestServer::start_proxied(std::time::Duration::from_secs(5)).await;
    let org = server.org().await;
    let receiver = Receiver::start().await;
    let mut secrets = vec![org.sk.clone(), org.pk.clone()];
    secrets.push(base64::engine::general_purpose::STANDARD.encode(common::SIGNING_KEY));
    secrets.push(String::from_utf8_lossy(common::SIGNING_KEY).into_owned());

    let endpoint = org
        .post(
            "/v1/webhooks",
            json!({"url": receiver.url, "events": ["callback.dispatch", "callback.scheduled", "flow.published"]}),
        )
        .await;
    let secret = endpoint.expect(201)["secret"].as_str().unwrap().to_owned();
    secrets.push(secret.trim_start_matches("whsec_").to_owned());
    secrets.push(secret);

    let flow = org
        .post("/v1/flows", json!({"name": "Secrets", "data": {"a": 1}}))
        .await;
    let slug = flow.expect(201)["slug"].as_str().unwrap().to_owned();
    org.post(&format!("/v1/flows/{slug}/publish"), json!({}))
        .await
        .expect(200);

    // A trigger URL, called, then rotated (both signatures are secrets).
    let trigger = org
        .post(&format!("/v1/flows/{slug}/callbacks"), json!({}))
        .await;
    let trigger = trigger.expect(201).clone();
    let url = trigger["url"].as_str().unwrap().to_owned();
    secrets.push(signature_of(&url));
    let called = common::http_client()
        .post(&url)
        .json(&json!({"to_number": "+15557654321"}))
        .send()
        .await
        .unwrap();
    assert_eq!(called.status(), 201);
    let rotated = org
        .put(
            &format!(
                "/v1/flows/{slug}/callbacks/{}",
                trigger["id"].as_str().unwrap()
            ),
            json!({"rotate_signature": true}),
        )
        .await;
    secrets.push(signature_of(rotated.expect(200)["url"].as_str().unwrap()));
    // A wrong one, as an attacker would send it.
    let forged = url.replace("signature=", "signature=forgedsignaturethatislongenough");
    common::http_client()
        .post(&forged)
        .json(&json!({"to_number": "+15557654321"}))
        .send()
        .await
        .unwrap();

    // A callback dispatched now: a signed delivery (its signature header is a secret).
    let callback = org
        .post(
            "/v1/callbacks",
            json!({"flow": slug, "to_number": "+15557654321"}),
        )
        .await;
    let id = callback.expect(201)["id"].as_str().unwrap().to_owned();
    let delivered = receiver
        .wait_for("callback.dispatch", 1, std::time::Duration::from_secs(10))
        .await;
    for delivery in &delivered {
        for value in delivery.headers.get_all("webhook-signature") {
            for signature in value.to_str().unwrap().split(' ') {
                secrets.push(signature.trim_start_matches("v1,").to_owned());
            }
        }
    }
    common::eventually("dispatched", std::time::Duration::from_secs(10), || async {
        let body = org.get(&format!("/v1/callbacks/{id}")).await.body.clone();
        (body["status"] != "scheduled" && body["status"] != "dispatching").then_some(())
    })
    .await;

    // Page tokens (signed with the signing key), keys in both header forms, a bad key.
    for _ in 0..3 {
        org.post("/v1/flows", json!({"name": "page"}))
            .await
            .expect(201);
    }
    let page = org.get("/v1/flows?page_size=1").await;
    let token = page.expect(200)["next_page_token"]
        .as_str()
        .unwrap()
        .to_owned();
    org.get(&format!("/v1/flows?page_size=1&next_page_token={token}"))
        .await
        .expect(200);
    server
        .anonymous(reqwest::Method::GET, "/v1/flows")
        .header("authorization", &org.sk)
        .send()
        .await
        .expect(200);
    org.with_key(
        "sk_not_a_real_key_but_long_enough_to_look_like_one",
        reqwest::Method::GET,
        "/v1/flows",
    )
    .send()
    .await
    .expect_error(401, "UNAUTHORIZED");

    // A store failure, logged: with its AWS error code, and still no secret.
    proxy.add_rule(
        Rule::new(Fault::error("ProvisionedThroughputExceededException"))
            .service("dynamodb")
            .operation("GetItem")
            .times(6),
    );
    org.get(&format!("/v1/flows/{slug}")).await;

    let logs = captured.text();
    assert!(
        logs.len() > 10_000,
        "trace level logged plenty: {} bytes",
        logs.len()
    );
    assert!(
        logs.contains("ProvisionedThroughputExceededException"),
        "store failures carry their AWS error code"
    );
    for secret in secrets.iter().filter(|secret| secret.len() >= 16) {
        let line = logs.lines().find(|line| line.contains(secret.as_str()));
        assert!(
            line.is_none(),
            "a secret ({}…) is in the logs: {}",
            &secret[..6],
            line.unwrap_or_default()
                .replace(secret.as_str(), "<SECRET>")
        );
    }
}

/// The signature of a trigger URL (`…?signature=<it>`).
fn signature_of(url: &str) -> String {
    let signature = url.split("signature=").nth(1).expect("a signature");
    let value: Value = json!(signature);
    value.as_str().unwrap().to_owned()
}
