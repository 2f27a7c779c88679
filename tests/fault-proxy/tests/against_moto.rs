//! The proxy between the real SDK clients and moto: each fault reaches the SDK as AWS's typed
//! error, rules pick exactly the requests they say, faults after forwarding leave the write
//! applied, and the counts add up. Needs the emulator (`AWS_ENDPOINT_URL`): run under
//! `scripts/test`, or after `eval "$(scripts/emulator start)"`.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::RequestId;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, KeysAndAttributes,
    Put, ReturnConsumedCapacity, ScalarAttributeType, TransactWriteItem,
};
use bytes::Bytes;
use flowline_fault_proxy::{Capacity, Counts, Fault, FaultProxy, Rule};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

// ---- set-up ---------------------------------------------------------------------------------

/// The emulator's URL; fails loudly when the suite runs without it.
fn emulator() -> String {
    std::env::var("AWS_ENDPOINT_URL").expect(
        "the fault proxy's tests need the emulator: run ./scripts/test, or \
         eval \"$(scripts/emulator start)\" first",
    )
}

/// SDK configuration for `endpoint`, without the SDK's own retries: each fault is seen once.
async fn sdk(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .retry_config(RetryConfig::disabled())
        .load()
        .await
}

fn unique(prefix: &str) -> String {
    format!("fault-proxy-{prefix}-{:08x}", rand::random::<u32>())
}

/// A proxy to moto, and DynamoDB clients through it and straight to moto (to read back what
/// was really applied), with a fresh table.
struct Dynamo {
    proxy: FaultProxy,
    through: aws_sdk_dynamodb::Client,
    direct: aws_sdk_dynamodb::Client,
    table: String,
}

impl Dynamo {
    async fn start() -> Self {
        let upstream = emulator();
        let proxy = FaultProxy::start(&upstream).await;
        let direct = aws_sdk_dynamodb::Client::new(&sdk(&upstream).await);
        let through = aws_sdk_dynamodb::Client::new(&sdk(&proxy.url()).await);
        let table = unique("table");
        direct
            .create_table()
            .table_name(&table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("pk")
                    .key_type(KeyType::Hash)
                    .build()
                    .unwrap(),
            )
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("pk")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .expect("table created");
        Self {
            proxy,
            through,
            direct,
            table,
        }
    }

    async fn put(&self, pk: &str) -> Result<(), SdkError<PutItemError>> {
        self.through
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(pk.to_owned()))
            .send()
            .await
            .map(drop)
    }

    async fn transact_put(&self, pks: &[&str]) -> Result<(), SdkError<TransactWriteItemsError>> {
        let items = pks.iter().map(|pk| {
            let put = Put::builder()
                .table_name(&self.table)
                .item("pk", AttributeValue::S((*pk).to_owned()))
                .build()
                .unwrap();
            TransactWriteItem::builder().put(put).build()
        });
        self.through
            .transact_write_items()
            .set_transact_items(Some(items.collect()))
            .send()
            .await
            .map(drop)
    }

    /// Whether moto holds the item, asked without the proxy.
    async fn stored(&self, pk: &str) -> bool {
        self.direct
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .expect("moto answers")
            .item
            .is_some()
    }

    fn rule(&self, operation: &str, fault: Fault) -> Rule {
        Rule::new(fault).service("dynamodb").operation(operation)
    }
}

/// A plain HTTP call: moto's IAM (no SDK for it here) and the proxy's control API.
async fn http(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> (u16, Bytes) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut request = http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let response = client.request(request).await.expect("answered");
    let status = response.status().as_u16();
    (
        status,
        response.into_body().collect().await.unwrap().to_bytes(),
    )
}

// ---- DynamoDB -------------------------------------------------------------------------------

#[tokio::test]
async fn transaction_canceled_names_the_chosen_item_and_writes_nothing() {
    let dynamo = Dynamo::start().await;
    for reason in [
        "TransactionConflict",
        "ThrottlingError",
        "ConditionalCheckFailed",
    ] {
        dynamo.proxy.add_rule(
            dynamo
                .rule(
                    "TransactWriteItems",
                    Fault::transaction_canceled(reason, Some(1)),
                )
                .times(1),
        );
        let err = dynamo
            .transact_put(&["a", "b", "c"])
            .await
            .expect_err("canceled");
        assert_eq!(err.code(), Some("TransactionCanceledException"));
        assert_eq!(
            err.message(),
            Some(
                format!(
                    "Transaction cancelled, please refer cancellation reasons for specific \
                     reasons [None, {reason}, None]"
                )
                .as_str()
            )
        );
        let TransactWriteItemsError::TransactionCanceledException(canceled) =
            err.into_service_error()
        else {
            panic!("not a TransactionCanceledException");
        };
        let codes: Vec<_> = canceled
            .cancellation_reasons()
            .iter()
            .map(|r| r.code())
            .collect();
        assert_eq!(codes, [Some("None"), Some(reason), Some("None")]);
        assert!(canceled.cancellation_reasons()[1].message().is_some());
    }
    assert!(!dynamo.stored("a").await, "a canceled transaction wrote");
}

#[tokio::test]
async fn transaction_canceled_without_an_item_names_every_item() {
    let dynamo = Dynamo::start().await;
    dynamo.proxy.add_rule(
        dynamo
            .rule(
                "TransactWriteItems",
                Fault::transaction_canceled("TransactionConflict", None),
            )
            .times(1),
    );
    let err = dynamo
        .transact_put(&["a", "b"])
        .await
        .expect_err("canceled");
    let TransactWriteItemsError::TransactionCanceledException(canceled) = err.into_service_error()
    else {
        panic!("not a TransactionCanceledException");
    };
    let codes: Vec<_> = canceled
        .cancellation_reasons()
        .iter()
        .map(|r| r.code())
        .collect();
    assert_eq!(
        codes,
        [Some("TransactionConflict"), Some("TransactionConflict")]
    );
}

#[tokio::test]
async fn dynamodb_errors_reach_the_sdk_as_their_typed_errors() {
    let dynamo = Dynamo::start().await;
    let cases = [
        ("ProvisionedThroughputExceededException", 400),
        ("ThrottlingException", 400),
        ("RequestLimitExceeded", 400),
        ("InternalServerError", 500),
    ];
    for (code, status) in cases {
        dynamo
            .proxy
            .add_rule(dynamo.rule("PutItem", Fault::error(code)).times(1));
        let err = dynamo.put("a").await.expect_err(code);
        assert_eq!(err.code(), Some(code));
        assert_eq!(err.raw_response().unwrap().status().as_u16(), status);
        assert!(err.request_id().is_some(), "{code} has a request id");
        let typed = match err.into_service_error() {
            PutItemError::ProvisionedThroughputExceededException(_) => {
                "ProvisionedThroughputExceededException"
            }
            PutItemError::ThrottlingException(_) => "ThrottlingException",
            PutItemError::RequestLimitExceeded(_) => "RequestLimitExceeded",
            PutItemError::InternalServerError(_) => "InternalServerError",
            other => panic!("{code} parsed as {other:?}"),
        };
        assert_eq!(typed, code);
    }
    assert!(!dynamo.stored("a").await, "a fault before forwarding wrote");
}

#[tokio::test]
async fn a_bare_503_has_no_code() {
    let dynamo = Dynamo::start().await;
    dynamo.proxy.add_rule(
        dynamo
            .rule("PutItem", Fault::Status { status: 503 })
            .times(1),
    );
    let err = dynamo.put("a").await.expect_err("503");
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 503);
    assert_eq!(err.code(), None);
    dynamo.put("a").await.expect("the next one passes");
}

#[tokio::test]
async fn faults_after_forwarding_leave_the_write_applied() {
    let dynamo = Dynamo::start().await;
    dynamo.proxy.add_rule(
        dynamo
            .rule(
                "PutItem",
                Fault::error("ProvisionedThroughputExceededException"),
            )
            .times(1)
            .after_forwarding(),
    );
    let err = dynamo.put("put").await.expect_err("throttled");
    assert_eq!(err.code(), Some("ProvisionedThroughputExceededException"));
    assert!(dynamo.stored("put").await, "the put was not applied");

    dynamo.proxy.add_rule(
        dynamo
            .rule(
                "TransactWriteItems",
                Fault::transaction_canceled("TransactionConflict", Some(0)),
            )
            .times(1)
            .after_forwarding(),
    );
    let err = dynamo
        .transact_put(&["t1", "t2"])
        .await
        .expect_err("canceled");
    assert_eq!(err.code(), Some("TransactionCanceledException"));
    assert!(dynamo.stored("t1").await && dynamo.stored("t2").await);
}

#[tokio::test]
async fn a_delay_exceeds_the_sdk_timeout() {
    let dynamo = Dynamo::start().await;
    let impatient = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk(&dynamo.proxy.url()).await)
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_attempt_timeout(Duration::from_millis(300))
                    .build(),
            )
            .build(),
    );
    let put = |pk: &str| {
        impatient
            .put_item()
            .table_name(&dynamo.table)
            .item("pk", AttributeValue::S(pk.to_owned()))
            .send()
    };

    // After forwarding: applied at once, the answer comes too late.
    let late_answer = dynamo
        .rule("PutItem", Fault::Delay { ms: 1_000 })
        .times(1)
        .after_forwarding();
    dynamo.proxy.add_rule(late_answer);
    let err = put("after").await.expect_err("times out");
    assert!(matches!(err, SdkError::TimeoutError(_)), "{err:?}");
    assert!(dynamo.stored("after").await);

    // Before forwarding: the request reaches moto late — after the client gave up.
    dynamo
        .proxy
        .add_rule(dynamo.rule("PutItem", Fault::Delay { ms: 1_500 }).times(1));
    let err = put("before").await.expect_err("times out");
    assert!(matches!(err, SdkError::TimeoutError(_)), "{err:?}");
    assert!(!dynamo.stored("before").await, "applied before the delay");
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    assert!(dynamo.stored("before").await, "never applied");
}

#[tokio::test]
async fn a_reset_drops_the_connection_without_an_answer() {
    let dynamo = Dynamo::start().await;
    dynamo
        .proxy
        .add_rule(dynamo.rule("PutItem", Fault::Reset).times(1));
    let err = dynamo.put("before").await.expect_err("reset");
    let SdkError::DispatchFailure(failure) = &err else {
        panic!("not a dispatch failure: {err:?}");
    };
    assert!(failure.is_io(), "{failure:?}");
    assert!(!dynamo.stored("before").await);

    dynamo.proxy.add_rule(
        dynamo
            .rule("PutItem", Fault::Reset)
            .times(1)
            .after_forwarding(),
    );
    let err = dynamo.put("after").await.expect_err("reset");
    assert!(matches!(err, SdkError::DispatchFailure(_)), "{err:?}");
    assert!(dynamo.stored("after").await);

    dynamo.put("next").await.expect("the client reconnects");
}

#[tokio::test]
async fn count_rules_pick_exactly_the_next_n_after_skipping() {
    let dynamo = Dynamo::start().await;
    dynamo.proxy.add_rule(
        dynamo
            .rule("PutItem", Fault::error("ThrottlingException"))
            .skip(2)
            .times(3),
    );
    // Other operations do not count towards the rule.
    dynamo
        .through
        .get_item()
        .table_name(&dynamo.table)
        .key("pk", AttributeValue::S("x".to_owned()))
        .send()
        .await
        .expect("not a PutItem");
    let mut failed = Vec::new();
    for i in 0..8 {
        failed.push(dynamo.put(&format!("k{i}")).await.is_err());
    }
    assert_eq!(
        failed,
        [false, false, true, true, true, false, false, false]
    );
    let put = dynamo.proxy.counts().operation("dynamodb", "PutItem");
    assert_eq!((put.requests, put.forwarded, put.faults), (8, 5, 3));
}

#[tokio::test]
async fn seeded_probability_picks_the_same_requests_every_time() {
    async fn pattern(seed: u64) -> (Vec<bool>, u64) {
        let dynamo = Dynamo::start().await;
        dynamo.proxy.add_rule(
            dynamo
                .rule("GetItem", Fault::error("ThrottlingException"))
                .probability(0.5, seed)
                .skip(1),
        );
        let mut failed = Vec::new();
        for _ in 0..24 {
            let answer = dynamo
                .through
                .get_item()
                .table_name(&dynamo.table)
                .key("pk", AttributeValue::S("a".to_owned()))
                .send()
                .await;
            failed.push(answer.is_err());
        }
        let faults = dynamo
            .proxy
            .counts()
            .operation("dynamodb", "GetItem")
            .faults;
        (failed, faults)
    }
    let (first, faults) = pattern(7).await;
    let (again, _) = pattern(7).await;
    let (other, _) = pattern(8).await;
    assert_eq!(first, again, "the same seed picks the same requests");
    assert_ne!(first, other, "another seed picks others");
    assert!(!first[0], "the skipped request passed");
    let picked = first.iter().filter(|&&f| f).count() as u64;
    assert_eq!(picked, faults);
    assert!((4..=20).contains(&picked), "p = 0.5 picked {picked} of 23");
}

#[tokio::test]
async fn counts_and_consumed_capacity_of_a_known_sequence() {
    let dynamo = Dynamo::start().await;
    let (client, table) = (&dynamo.through, dynamo.table.as_str());
    let key = |pk: &str| AttributeValue::S(pk.to_owned());
    dynamo
        .proxy
        .add_rule(dynamo.rule("PutItem", Fault::Reset).times(1));
    dynamo.put("lost").await.expect_err("reset");
    dynamo.put("a").await.unwrap();
    let put = client
        .put_item()
        .table_name(table)
        .item("pk", key("b"))
        .send()
        .await
        .unwrap();
    assert!(
        put.consumed_capacity.is_none(),
        "the client did not ask for the capacity the proxy asked for"
    );
    let got = client
        .get_item()
        .table_name(table)
        .key("pk", key("a"))
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.consumed_capacity.and_then(|c| c.capacity_units),
        Some(0.5),
        "a client that asks still gets it"
    );
    client
        .query()
        .table_name(table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", key("a"))
        .send()
        .await
        .unwrap();
    client
        .update_item()
        .table_name(table)
        .key("pk", key("a"))
        .update_expression("SET n = :n")
        .expression_attribute_values(":n", AttributeValue::N("1".to_owned()))
        .send()
        .await
        .unwrap();
    client
        .delete_item()
        .table_name(table)
        .key("pk", key("b"))
        .send()
        .await
        .unwrap();
    let keys = KeysAndAttributes::builder()
        .keys([("pk".to_owned(), key("a"))].into())
        .keys([("pk".to_owned(), key("missing"))].into())
        .build()
        .unwrap();
    client
        .batch_get_item()
        .request_items(table, keys)
        .send()
        .await
        .unwrap();
    dynamo.transact_put(&["t1", "t2"]).await.unwrap();

    let counts = dynamo.proxy.counts();
    let units = |units: f64| {
        Some(Capacity {
            capacity_units: units,
            ..Capacity::default()
        })
    };
    let op = |name: &str| counts.operation("dynamodb", name);
    assert_eq!((op("PutItem").requests, op("PutItem").forwarded), (3, 2));
    assert_eq!(op("PutItem").faults, 1);
    // moto's constants (see the crate docs): the reset put consumed nothing.
    assert_eq!(op("PutItem").capacity, units(2.0));
    assert_eq!(op("GetItem").capacity, units(0.5));
    assert_eq!(op("Query").capacity, units(1.0));
    assert_eq!(op("UpdateItem").capacity, units(0.5));
    assert_eq!(op("DeleteItem").capacity, units(1.0));
    assert_eq!(op("BatchGetItem").capacity, units(2.0));
    // moto answers TransactWriteItems with an empty ConsumedCapacity: nothing to count.
    assert_eq!(op("TransactWriteItems").requests, 1);
    assert_eq!(op("TransactWriteItems").capacity, None);
    assert_eq!(counts.table(table), units(7.0));

    dynamo.proxy.reset_counts();
    assert_eq!(dynamo.proxy.counts(), Counts::default());
}

// ---- EventBridge Scheduler ------------------------------------------------------------------

#[tokio::test]
async fn scheduler_errors_reach_the_sdk_and_after_forwarding_the_schedule_exists() {
    use aws_sdk_scheduler::operation::create_schedule::CreateScheduleError;
    use aws_sdk_scheduler::types::{FlexibleTimeWindow, FlexibleTimeWindowMode, Target};

    let upstream = emulator();
    let proxy = FaultProxy::start(&upstream).await;
    let direct = aws_sdk_scheduler::Client::new(&sdk(&upstream).await);
    let through = aws_sdk_scheduler::Client::new(&sdk(&proxy.url()).await);
    let group = unique("group");
    direct
        .create_schedule_group()
        .name(&group)
        .send()
        .await
        .expect("group created");
    let create = |name: &str| {
        through
            .create_schedule()
            .name(name)
            .group_name(&group)
            .schedule_expression("at(2030-01-01T00:00:00)")
            .flexible_time_window(
                FlexibleTimeWindow::builder()
                    .mode(FlexibleTimeWindowMode::Off)
                    .build()
                    .unwrap(),
            )
            .target(
                Target::builder()
                    .arn("arn:aws:lambda:us-east-1:123456789012:function:flowline-dispatch")
                    .role_arn("arn:aws:iam::123456789012:role/flowline-scheduler")
                    .input("{}")
                    .build()
                    .unwrap(),
            )
            .send()
    };
    let rule = |fault| {
        Rule::new(fault)
            .service("scheduler")
            .operation("CreateSchedule")
            .times(1)
    };

    for (code, status) in [
        ("ThrottlingException", 429),
        ("InternalServerException", 500),
    ] {
        proxy.add_rule(rule(Fault::error(code)));
        let err = create("never").await.expect_err(code);
        assert_eq!(err.code(), Some(code));
        assert_eq!(err.raw_response().unwrap().status().as_u16(), status);
        let typed = match err.into_service_error() {
            CreateScheduleError::ThrottlingException(_) => "ThrottlingException",
            CreateScheduleError::InternalServerException(_) => "InternalServerException",
            other => panic!("{code} parsed as {other:?}"),
        };
        assert_eq!(typed, code);
    }
    proxy.add_rule(rule(Fault::Status { status: 503 }));
    let err = create("never").await.expect_err("503");
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 503);
    let missing = direct
        .get_schedule()
        .name("never")
        .group_name(&group)
        .send();
    assert!(
        missing.await.is_err(),
        "a fault before forwarding created it"
    );

    proxy.add_rule(rule(Fault::error("ThrottlingException")).after_forwarding());
    let err = create("applied").await.expect_err("throttled");
    assert_eq!(err.code(), Some("ThrottlingException"));
    direct
        .get_schedule()
        .name("applied")
        .group_name(&group)
        .send()
        .await
        .expect("the schedule exists");

    let counts = proxy.counts().operation("scheduler", "CreateSchedule");
    assert_eq!(
        (counts.requests, counts.forwarded, counts.faults),
        (4, 1, 4)
    );
}

// ---- Lambda ---------------------------------------------------------------------------------

/// A function moto can take an `Event` invocation for: moto checks that its role exists, and
/// without Docker it still accepts the event (202).
async fn lambda_function(direct: &aws_sdk_lambda::Client) -> String {
    let role = unique("role");
    // moto serves IAM on the same port; it routes by the credential scope and checks no
    // signature.
    let (status, body) = http(
        "POST",
        &format!("{}/", emulator()),
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/iam/aws4_request, \
                 SignedHeaders=host, Signature=0",
            ),
        ],
        &format!(
            "Action=CreateRole&Version=2010-05-08&RoleName={role}&AssumeRolePolicyDocument=%7B%7D"
        ),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let name = unique("function");
    // An empty zip archive: moto never runs the code.
    let mut empty_zip = b"PK\x05\x06".to_vec();
    empty_zip.resize(22, 0);
    direct
        .create_function()
        .function_name(&name)
        .runtime(aws_sdk_lambda::types::Runtime::Python312)
        .handler("index.handler")
        .role(format!("arn:aws:iam::123456789012:role/{role}"))
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(aws_sdk_lambda::primitives::Blob::new(empty_zip))
                .build(),
        )
        .send()
        .await
        .expect("function created");
    name
}

#[tokio::test]
async fn lambda_invoke_errors_reach_the_sdk_before_and_after_forwarding() {
    use aws_sdk_lambda::operation::invoke::InvokeError;
    use aws_sdk_lambda::types::InvocationType;

    let upstream = emulator();
    let proxy = FaultProxy::start(&upstream).await;
    let direct = aws_sdk_lambda::Client::new(&sdk(&upstream).await);
    let through = aws_sdk_lambda::Client::new(&sdk(&proxy.url()).await);
    let function = lambda_function(&direct).await;
    let invoke = || {
        through
            .invoke()
            .function_name(&function)
            .invocation_type(InvocationType::Event)
            .payload(aws_sdk_lambda::primitives::Blob::new(b"{}".to_vec()))
            .send()
    };
    let rule = |fault| {
        Rule::new(fault)
            .service("lambda")
            .operation("Invoke")
            .times(1)
    };

    for (code, status) in [("TooManyRequestsException", 429), ("ServiceException", 500)] {
        proxy.add_rule(rule(Fault::error(code)));
        let err = invoke().await.expect_err(code);
        assert_eq!(err.code(), Some(code));
        assert_eq!(err.raw_response().unwrap().status().as_u16(), status);
        let typed = match err.into_service_error() {
            InvokeError::TooManyRequestsException(e) => e.r#type().map(str::to_owned),
            InvokeError::ServiceException(e) => e.r#type().map(str::to_owned),
            other => panic!("{code} parsed as {other:?}"),
        };
        assert!(typed.is_some(), "{code} has its Type");
    }
    proxy.add_rule(rule(Fault::Status { status: 503 }));
    let err = invoke().await.expect_err("503");
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 503);
    assert_eq!(
        proxy.counts().operation("lambda", "Invoke").forwarded,
        0,
        "faults before forwarding never reached moto"
    );

    // After forwarding: moto took the event (its 202 reached the proxy), the caller saw 429.
    proxy.add_rule(rule(Fault::error("TooManyRequestsException")).after_forwarding());
    let err = invoke().await.expect_err("throttled");
    assert_eq!(err.code(), Some("TooManyRequestsException"));
    assert_eq!(proxy.counts().operation("lambda", "Invoke").forwarded, 1);
    let accepted = invoke().await.expect("moto takes the event");
    assert_eq!(accepted.status_code, 202);
}

// ---- the binary and its control API ---------------------------------------------------------

#[tokio::test]
async fn the_binary_serves_the_proxy_and_its_control_api() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};

    /// Stops the binary however the test ends.
    struct Running(std::process::Child);
    impl Drop for Running {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    let mut child = Running(
        Command::new(env!("CARGO_BIN_EXE_flowline-fault-proxy"))
            .args(["--upstream", &emulator()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("the binary starts"),
    );
    let mut first = String::new();
    std::io::BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let url = first
        .trim()
        .strip_prefix("export FAULT_PROXY_URL=")
        .expect("the first line exports the URL")
        .to_owned();

    let (status, _) = http(
        "POST",
        &format!("{url}/__proxy/rules"),
        &[],
        r#"{"service": "dynamodb", "operation": "PutItem", "times": 1,
            "fault": {"kind": "error", "code": "ThrottlingException"}}"#,
    )
    .await;
    assert_eq!(status, 201);
    let (status, body) = http(
        "POST",
        &format!("{url}/__proxy/rules"),
        &[],
        r#"{"fault": {"kind": "error", "code": "NoSuchCode"}}"#,
    )
    .await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));

    let dynamo = Dynamo::start().await;
    let through = aws_sdk_dynamodb::Client::new(&sdk(&url).await);
    let put = || {
        through
            .put_item()
            .table_name(&dynamo.table)
            .item("pk", AttributeValue::S("a".to_owned()))
            .send()
    };
    let err = put().await.expect_err("throttled");
    assert_eq!(err.code(), Some("ThrottlingException"));
    put().await.expect("the rule was for one request");

    let (status, body) = http("GET", &format!("{url}/__proxy/counts"), &[], "").await;
    assert_eq!(status, 200);
    let counts: Counts = serde_json::from_slice(&body).unwrap();
    let put_counts = counts.operation("dynamodb", "PutItem");
    assert_eq!((put_counts.requests, put_counts.faults), (2, 1));
    assert_eq!(put_counts.capacity.map(|c| c.capacity_units), Some(1.0));

    let (status, _) = http("POST", &format!("{url}/__proxy/counts/reset"), &[], "").await;
    assert_eq!(status, 204);
    let (_, body) = http("GET", &format!("{url}/__proxy/counts"), &[], "").await;
    assert_eq!(
        serde_json::from_slice::<Counts>(&body).unwrap(),
        Counts::default()
    );

    let (status, _) = http(
        "POST",
        &format!("{url}/__proxy/rules"),
        &[],
        r#"{"fault": {"kind": "status", "status": 503}}"#,
    )
    .await;
    assert_eq!(status, 201);
    put().await.expect_err("every request fails");
    let (status, _) = http("DELETE", &format!("{url}/__proxy/rules"), &[], "").await;
    assert_eq!(status, 204);
    put().await.expect("no rule left");
}

// ---- the wire -------------------------------------------------------------------------------

/// Sends a DynamoDB `ListTables` on `stream` and reads the answer's status; the error of the
/// read when the proxy cut the connection.
fn list_tables(stream: &mut std::net::TcpStream) -> std::io::Result<u16> {
    use std::io::{BufRead, BufReader, Read, Write};
    let body = "{}";
    write!(
        stream,
        "POST / HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/x-amz-json-1.0\r\n\
         x-amz-target: DynamoDB_20120810.ListTables\r\n\
         authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/dynamodb/aws4_request, \
         SignedHeaders=host, Signature=0\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let status = line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap();
    let mut length = 0;
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        if line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap();
        }
    }
    reader.read_exact(&mut vec![0; length])?;
    Ok(status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_connection_stays_open_and_a_reset_is_a_tcp_rst() {
    let proxy = FaultProxy::start(&emulator()).await;
    let address = proxy.url().trim_start_matches("http://").to_owned();
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    // moto closes its connections after each answer; the client's stays open.
    let statuses = tokio::task::spawn_blocking(move || {
        let statuses = [list_tables(&mut stream), list_tables(&mut stream)];
        (statuses.map(Result::unwrap), stream)
    });
    let (statuses, mut stream) = statuses.await.unwrap();
    assert_eq!(statuses, [200, 200]);

    proxy.add_rule(Rule::new(Fault::Reset).operation("ListTables"));
    let read = tokio::task::spawn_blocking(move || list_tables(&mut stream));
    let err = read.await.unwrap().expect_err("no answer");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
}
