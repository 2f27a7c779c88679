//! What an operator sees of a Lambda function, captured in-process through the subscriber the
//! functions install (`flowline_lambda::logging::subscriber`): one JSON line per request with
//! its request ids, route, organization, status, latency and cold start; and the CloudWatch
//! Embedded Metric Format lines a dispatch emits (created, dispatched with its lag, failed by
//! cause, webhook attempts and failures).

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::receiver::{Receiver, Reply};
use common::wiring::Rig;
use flowline_adapters::webhook_http::HttpSender;
use flowline_core::config::Config;
use flowline_core::http::render;
use flowline_core::scheduler::Job;
use flowline_core::time::{Clock, ManualClock};
use jiff::{SignedDuration, Timestamp};
use lambda_http::RequestExt;
use serde_json::Value;
use tracing_subscriber::fmt::MakeWriter;

const SIGNING_KEY: &[u8] = b"test signing key, 32 bytes long!";
const FIXTURE_ORGANIZATION: &str = "org_0Q7fGk2LmZp4Xc8RtYb1Nv";
const FIXTURE_FLOW: &str = "flow_7Hq2LmN9xKp3";
const FIXTURE_CALLBACK: &str = "cb_00VbcKJYqKy9Pf34qY6Nb3w";
const FIXTURE_WEBHOOK_URL: &str = "https://agents.acme.example.com/flowline/events";

/// Everything the subscriber wrote, line by line.
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

impl<'writer> MakeWriter<'writer> for Captured {
    type Writer = Captured;

    fn make_writer(&'writer self) -> Self::Writer {
        self.clone()
    }
}

impl Captured {
    /// Every line, each of which must be one JSON object.
    fn lines(&self) -> Vec<Value> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).expect("UTF-8 logs");
        text.lines()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}"))
            })
            .collect()
    }

    /// The EMF documents of `metric`.
    fn metric(&self, metric: &str) -> Vec<Value> {
        self.lines()
            .into_iter()
            .filter(|line| line["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"] == metric)
            .collect()
    }
}

fn fixture(function: &str) -> String {
    let path = format!("{}/events/{function}.json", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"))
}

/// The fixture as API Gateway and the Lambda runtime hand it to a function.
fn lambda_event(function: &str, replacements: &[(&str, &str)]) -> lambda_http::Request {
    let mut text = fixture(function);
    for (example, actual) in replacements {
        text = text.replace(example, actual);
    }
    let mut context = lambda_http::Context::default();
    context.request_id = "8476a536-e9f4-11e8-9739-2dfe598c3fcd".to_owned();
    context.xray_trace_id = Some("Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700".to_owned());
    context.deadline = u64::try_from(Timestamp::now().as_millisecond()).unwrap() + 30_000;
    lambda_http::request::from_str(&text)
        .expect("an HTTP API v2 event")
        .with_lambda_context(context)
}

/// An in-memory app whose clock stands where the callback fixtures were recorded (so their
/// `scheduled_at` lies ahead), webhooks allowed to the loopback receiver.
fn rig() -> (Rig, Arc<ManualClock>) {
    let recorded: Value = serde_json::from_str(&fixture("callback-create")).unwrap();
    let epoch_ms = recorded["requestContext"]["timeEpoch"].as_i64().unwrap();
    let clock = Arc::new(ManualClock::new(
        Timestamp::from_millisecond(epoch_ms).unwrap(),
    ));
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

#[tokio::test]
async fn a_request_is_one_json_line_with_its_ids_route_organization_status_latency_and_cold_start()
{
    let captured = Captured::default();
    let _subscriber =
        tracing::subscriber::set_default(flowline_lambda::logging::subscriber(captured.clone()));
    let (rig, _) = rig();
    let app = rig.wired("flow-create");
    let handler = |request| flow_create::handle(&app, request);

    let response = flowline_lambda::serve(&handler, lambda_event("flow-create", &[])).await;
    assert_eq!(response.status(), 201);
    let again = flowline_lambda::serve(&handler, lambda_event("flow-create", &[])).await;
    assert_eq!(again.status(), 201);

    let requests: Vec<Value> = captured
        .lines()
        .into_iter()
        .filter(|line| line["message"] == "request")
        .collect();
    assert_eq!(requests.len(), 2, "one line per request: {requests:#?}");
    let line = &requests[0];
    assert_eq!(line["level"], "INFO");
    assert!(line["timestamp"].is_string(), "{line}");
    assert_eq!(
        line["function_request_id"],
        "8476a536-e9f4-11e8-9739-2dfe598c3fcd"
    );
    assert_eq!(line["api_request_id"], "Ab3dEfGhIjKlMn0=");
    assert_eq!(line["route"], "POST /v1/flows");
    assert_eq!(line["organization"], FIXTURE_ORGANIZATION);
    assert_eq!(line["status"], 201);
    assert!(line["latency_ms"].is_u64(), "{line}");
    assert!(line["cold_start"].is_boolean(), "{line}");
    assert_eq!(
        line["xray_trace_id"],
        "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700"
    );
    assert!(line.get("error_code").is_none(), "{line}");
    assert_eq!(
        requests[1]["cold_start"], false,
        "only a sandbox's first invocation is a cold start"
    );
}

#[tokio::test]
async fn a_failed_request_names_its_error_code() {
    let captured = Captured::default();
    let _subscriber =
        tracing::subscriber::set_default(flowline_lambda::logging::subscriber(captured.clone()));
    let (rig, _) = rig();
    let app = rig.wired("callback-get");
    let handler = |request| callback_get::handle(&app, request);
    let response = flowline_lambda::serve(&handler, lambda_event("callback-get", &[])).await;
    assert_eq!(response.status(), 404);
    let line = captured
        .lines()
        .into_iter()
        .find(|line| line["message"] == "request")
        .expect("a request line");
    assert_eq!(line["status"], 404);
    assert_eq!(line["error_code"], "NOT_FOUND");
    assert_eq!(line["route"], "GET /v1/callbacks/{id}");
}

/// A published flow, a webhook endpoint at `receiver`, and a callback scheduled on the flow:
/// the callback's id and `scheduled_at`.
async fn scheduled_callback(rig: &Rig, receiver: &Receiver) -> (String, Timestamp) {
    let created = render(
        flow_create::handle(
            &rig.wired("flow-create"),
            flowline_lambda::api_request(lambda_event("flow-create", &[])),
        )
        .await,
    );
    let flow: Value = serde_json::from_slice(&created.body).unwrap();
    let slug = flow["slug"].as_str().unwrap();
    let published = render(
        flow_publish::handle(
            &rig.wired("flow-publish"),
            flowline_lambda::api_request(lambda_event("flow-publish", &[(FIXTURE_FLOW, slug)])),
        )
        .await,
    );
    assert_eq!(published.status, 200);
    let endpoint = render(
        webhook_create::handle(
            &rig.wired("webhook-create"),
            flowline_lambda::api_request(lambda_event(
                "webhook-create",
                &[(FIXTURE_WEBHOOK_URL, &receiver.url)],
            )),
        )
        .await,
    );
    assert_eq!(endpoint.status, 201);
    let callback = render(
        callback_create::handle(
            &rig.wired("callback-create"),
            flowline_lambda::api_request(lambda_event("callback-create", &[(FIXTURE_FLOW, slug)])),
        )
        .await,
    );
    let callback: Value = serde_json::from_slice(&callback.body).unwrap();
    (
        callback["id"].as_str().unwrap().to_owned(),
        callback["scheduled_at"].as_str().unwrap().parse().unwrap(),
    )
}

fn dispatch_job(id: &str) -> Job {
    serde_json::from_str(&fixture("dispatch").replace(FIXTURE_CALLBACK, id)).expect("a job")
}

#[tokio::test]
async fn a_dispatch_emits_its_metrics_in_embedded_metric_format() {
    let captured = Captured::default();
    let _subscriber =
        tracing::subscriber::set_default(flowline_lambda::logging::subscriber(captured.clone()));
    let (rig, clock) = rig();
    let receiver = Receiver::start().await;
    let (id, scheduled_at) = scheduled_callback(&rig, &receiver).await;
    receiver.script([Reply::session("sess_metrics")]);
    // The schedule fires 1.5 s late.
    clock.advance(scheduled_at.duration_since(clock.now()) + SignedDuration::from_millis(1500));
    dispatch::handle(&rig.wired("dispatch"), dispatch_job(&id))
        .await
        .expect("the dispatch runs");

    let created = captured.metric("CallbacksCreated");
    assert_eq!(created.len(), 1, "{created:#?}");
    let document = &created[0];
    assert_eq!(
        document["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "Flowline"
    );
    assert_eq!(
        document["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        serde_json::json!([["Service"]])
    );
    assert_eq!(
        document["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"],
        "Count"
    );
    assert!(document["_aws"]["Timestamp"].is_i64());
    assert_eq!(document["Service"], "flowline");
    assert_eq!(document["CallbacksCreated"], 1.0);

    assert_eq!(captured.metric("CallbacksDispatched").len(), 1);
    let lag = captured.metric("DispatchLag");
    assert_eq!(lag.len(), 1, "{lag:#?}");
    assert_eq!(lag[0]["DispatchLag"], 1500.0);
    assert_eq!(
        lag[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"],
        "Milliseconds"
    );
    assert!(!captured.metric("WebhookAttempts").is_empty());
    assert!(captured.metric("WebhookFailures").is_empty());
    assert!(captured.metric("CallbacksFailed").is_empty());
    // Metrics are not log lines: the log filter never shows them as such.
    assert!(
        captured
            .lines()
            .iter()
            .all(|line| line["target"] != flowline_core::metrics::TARGET)
    );
}

#[tokio::test]
async fn a_failed_dispatch_is_counted_by_cause_with_its_webhook_failure() {
    let captured = Captured::default();
    let _subscriber =
        tracing::subscriber::set_default(flowline_lambda::logging::subscriber(captured.clone()));
    let (rig, clock) = rig();
    let receiver = Receiver::start().await;
    let (id, scheduled_at) = scheduled_callback(&rig, &receiver).await;
    // A 4xx other than 408/429 is final: one try, then failed.
    receiver.script([Reply::status(400)]);
    clock.advance(scheduled_at.duration_since(clock.now()));
    dispatch::handle(&rig.wired("dispatch"), dispatch_job(&id))
        .await
        .expect("the dispatch runs");

    let failed = captured.metric("CallbacksFailed");
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert_eq!(failed[0]["Cause"], "WEBHOOK_FAILED");
    assert_eq!(
        failed[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        serde_json::json!([["Service"], ["Service", "Cause"]])
    );
    assert!(!captured.metric("WebhookFailures").is_empty());
    assert!(captured.metric("CallbacksDispatched").is_empty());
    assert!(captured.metric("DispatchLag").is_empty());
}
