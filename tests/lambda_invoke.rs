//! "Dispatch now" as the cloud does it: an asynchronous invocation of the dispatch function
//! through the real Lambda SDK client, against the emulator's Lambda API (through the fault
//! proxy, which counts the invocations and fails them on cue). A throttled invocation is
//! retried; one that keeps failing rolls the new callback back and answers 503.

mod common;

use std::sync::Arc;

use common::{Backend, TestServer};
use flowline_adapters::dynamodb::DynamoTable;
use flowline_adapters::eventbridge::EventBridgeScheduler;
use flowline_adapters::lambda_invoke::LambdaInvoker;
use flowline_adapters::webhook_http::HttpSender;
use flowline_core::App;
use flowline_core::config::Config;
use flowline_fault_proxy::{Fault, FaultProxy, Rule};
use serde_json::json;

/// A Lambda function the emulator accepts `Event` invocations for (its role must exist; the
/// code never runs).
async fn dispatch_function(sdk: &aws_config::SdkConfig) -> String {
    let role = format!("flowline-test-{}", flowline_core::ids::random_token(8));
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("the emulator");
    // The workspace has no IAM client: one form POST, which the emulator routes by the
    // credential scope.
    let created = common::http_client()
        .post(format!("{endpoint}/"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(format!(
            "Action=CreateRole&Version=2010-05-08&RoleName={role}&AssumeRolePolicyDocument=%7B%7D"
        ))
        .send()
        .await
        .expect("the emulator answers");
    assert_eq!(created.status(), 200);
    let name = format!(
        "flowline-test-dispatch-{}",
        flowline_core::ids::random_token(8)
    );
    let mut empty_zip = b"PK\x05\x06".to_vec();
    empty_zip.resize(22, 0);
    let function = aws_sdk_lambda::Client::new(sdk)
        .create_function()
        .function_name(&name)
        .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
        .handler("bootstrap")
        .role(format!("arn:aws:iam::123456789012:role/{role}"))
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(aws_sdk_lambda::primitives::Blob::new(empty_zip))
                .build(),
        )
        .send()
        .await
        .expect("the function is made");
    function.function_arn().expect("an ARN").to_owned()
}

/// The cloud's wiring of `callback-create` (`Cloud::…with_scheduler()?.with_dispatch_invoker()?`)
/// on the emulator through the proxy.
async fn cloud_server() -> (TestServer, FaultProxy) {
    let upstream = std::env::var("AWS_ENDPOINT_URL").expect("the emulator (scripts/test)");
    let proxy = FaultProxy::start(&upstream).await;
    let sdk = common::proxied_config(&proxy).await;
    let arn = dispatch_function(&common::emulator_config().await).await;
    let (_, keys) = common::tables(Backend::DynamoDb).await;
    let run = flowline_core::ids::random_token(10);
    let table = DynamoTable::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        format!("flowline-test-{run}"),
    );
    table.ensure_exists().await.expect("table");
    let mut settings = common::scheduler_settings();
    settings.dispatch_function_arn = arn.clone();
    let clock = Arc::new(common::clock::TestClock::default());
    let scheduler = EventBridgeScheduler::new(
        aws_sdk_scheduler::Client::new(&sdk),
        settings,
        clock.clone(),
    );
    scheduler.ensure_group().await.expect("group");
    let config = Config {
        public_base_url: "http://flowline.test".to_owned(),
        allow_private_targets: true,
        request_budget: std::time::Duration::from_secs(6),
        limits: common::UNLIMITED,
    };
    let app = App::builder(Arc::new(table), keys, config)
        .clock(clock.clone())
        .scheduler(Arc::new(scheduler))
        .invoker(Arc::new(LambdaInvoker::new(
            aws_sdk_lambda::Client::new(&sdk),
            arn,
        )))
        .sender(Arc::new(HttpSender::new(true)))
        .signing_key(common::SIGNING_KEY)
        .build();
    let server = TestServer::serve(app, Backend::DynamoDb, clock).await;
    proxy.reset_counts();
    (server, proxy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatch_now_invokes_the_dispatch_function_asynchronously() {
    let (server, proxy) = cloud_server().await;
    let org = server.org().await;
    let flow = org
        .post("/v1/flows", json!({"name": "Now", "data": {"a": 1}}))
        .await;
    let slug = flow.expect(201)["slug"].as_str().unwrap().to_owned();
    org.post(&format!("/v1/flows/{slug}/publish"), json!({}))
        .await
        .expect(200);
    let body = json!({"flow": slug, "to_number": "+15557654321"});

    org.post("/v1/callbacks", body.clone()).await.expect(201);
    let invokes = proxy.counts().operation("lambda", "Invoke");
    assert_eq!(
        (invokes.requests, invokes.forwarded),
        (1, 1),
        "one Event invocation"
    );
    assert_eq!(
        proxy
            .counts()
            .operation("scheduler", "CreateSchedule")
            .requests,
        0,
        "no schedule: it could not be in the past"
    );

    // Throttled twice: the SDK tries again.
    proxy.add_rule(
        Rule::new(Fault::error("TooManyRequestsException"))
            .service("lambda")
            .operation("Invoke")
            .times(2),
    );
    org.post("/v1/callbacks", body.clone()).await.expect(201);

    // Failing for good: 503, and the callback it would have dispatched is not left behind.
    proxy.clear_rules();
    proxy.add_rule(
        Rule::new(Fault::error("ServiceException"))
            .service("lambda")
            .operation("Invoke"),
    );
    org.post("/v1/callbacks", body)
        .await
        .expect_error(503, "UPSTREAM_UNAVAILABLE");
    let listed = org.get("/v1/callbacks").await;
    assert_eq!(listed.expect(200)["callbacks"].as_array().unwrap().len(), 2);
}
