//! A floor: the least a Rust Lambda function needs to do a Flowline function's job. It loads
//! the AWS configuration once and builds only the clients its features name (as the runtime's
//! own `http-dynamodb` example does), then, on each invocation, makes the calls of its plan
//! (`FLOOR_PLAN`, e.g. `get=2,transact=1x5,sched-create=1`: the kinds and counts the function
//! makes on its fixture, measured by tests/costs.rs) and answers.
//!
//! Without features it is the hello world: `lambda_runtime` alone, answering `{}`.
//!
//! The calls go to `FLOOR_TABLE` (items `item#0…` seeded by benches/run), the schedule group
//! `FLOOR_SCHEDULE_GROUP`, and `FLOOR_FUNCTION_ARN`; `FLOOR_POST_URL` is where `post` POSTs.

#[cfg(feature = "aws")]
use std::sync::atomic::{AtomicU64, Ordering};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// One kind of call, how many times, and how many items each.
#[derive(Debug, Clone)]
#[cfg_attr(not(feature = "aws"), allow(dead_code))]
struct Step {
    op: String,
    times: usize,
    items: usize,
}

fn plan() -> Vec<Step> {
    let text = std::env::var("FLOOR_PLAN").unwrap_or_default();
    text.split(',')
        .filter(|step| !step.is_empty())
        .map(|step| {
            let (op, count) = step.split_once('=').expect("op=count[xitems]");
            let (times, items) = count.split_once('x').unwrap_or((count, "1"));
            Step {
                op: op.to_owned(),
                times: times.parse().expect("a count"),
                items: items.parse().expect("an item count"),
            }
        })
        .collect()
}

#[cfg_attr(not(feature = "aws"), allow(dead_code))]
struct Clients {
    #[cfg(feature = "dynamodb")]
    dynamodb: aws_sdk_dynamodb::Client,
    #[cfg(feature = "scheduler")]
    scheduler: aws_sdk_scheduler::Client,
    #[cfg(feature = "invoke")]
    lambda: aws_sdk_lambda::Client,
    #[cfg(feature = "post")]
    web: std::sync::OnceLock<reqwest::Client>,
    table: String,
    plan: Vec<Step>,
}

#[cfg(feature = "aws")]
fn fresh(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!(
        "{prefix}{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(feature = "dynamodb")]
fn key(sk: String) -> std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    use aws_sdk_dynamodb::types::AttributeValue;
    [
        ("pk".to_owned(), AttributeValue::S("floor".to_owned())),
        ("sk".to_owned(), AttributeValue::S(sk)),
    ]
    .into()
}

/// What a put writes: about the size of a callback record.
#[cfg(any(feature = "put", feature = "transact"))]
fn item(sk: String) -> std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let mut item = key(sk);
    item.insert("rev".to_owned(), AttributeValue::N("1".to_owned()));
    item.insert("doc".to_owned(), AttributeValue::S("x".repeat(900)));
    item
}

impl Clients {
    async fn new() -> Self {
        #[cfg(feature = "aws")]
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self {
            #[cfg(feature = "dynamodb")]
            dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
            #[cfg(feature = "scheduler")]
            scheduler: aws_sdk_scheduler::Client::new(&sdk),
            #[cfg(feature = "invoke")]
            lambda: aws_sdk_lambda::Client::new(&sdk),
            #[cfg(feature = "post")]
            web: std::sync::OnceLock::new(),
            table: std::env::var("FLOOR_TABLE").unwrap_or_else(|_| "floor".to_owned()),
            plan: plan(),
        }
    }

    /// Makes every call of the plan, in order; answers how many calls it made.
    async fn run(&self) -> Result<usize, Error> {
        let mut calls = 0;
        for step in &self.plan {
            for _ in 0..step.times {
                self.call(step).await?;
                calls += 1;
            }
        }
        Ok(calls)
    }

    // A floor built with no operation (hello, http) has only the refusing arm: `step` unused,
    // and nothing after the match reachable.
    #[allow(unused_variables, unreachable_code)]
    async fn call(&self, step: &Step) -> Result<(), Error> {
        match step.op.as_str() {
            #[cfg(feature = "get")]
            "get" => {
                self.dynamodb
                    .get_item()
                    .table_name(&self.table)
                    .set_key(Some(key("item#0".to_owned())))
                    .consistent_read(true)
                    .send()
                    .await?;
            }
            #[cfg(feature = "batch")]
            "batch" => {
                use aws_sdk_dynamodb::types::KeysAndAttributes;
                let mut keys = KeysAndAttributes::builder().consistent_read(true);
                for i in 0..step.items {
                    keys = keys.keys(key(format!("item#{i}")));
                }
                self.dynamodb
                    .batch_get_item()
                    .request_items(&self.table, keys.build()?)
                    .send()
                    .await?;
            }
            #[cfg(feature = "query")]
            "query" => {
                use aws_sdk_dynamodb::types::AttributeValue;
                self.dynamodb
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                    .expression_attribute_values(":pk", AttributeValue::S("floor".to_owned()))
                    .expression_attribute_values(":prefix", AttributeValue::S("item#".to_owned()))
                    .limit(step.items.max(1) as i32)
                    .consistent_read(true)
                    .send()
                    .await?;
            }
            #[cfg(feature = "put")]
            "put" => {
                self.dynamodb
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(item(fresh("put#"))))
                    .condition_expression("attribute_not_exists(pk)")
                    .send()
                    .await?;
            }
            #[cfg(feature = "delete")]
            "delete" => {
                self.dynamodb
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(key(fresh("gone#"))))
                    .send()
                    .await?;
            }
            #[cfg(feature = "update")]
            "update" => {
                use aws_sdk_dynamodb::types::AttributeValue;
                self.dynamodb
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(key("counter".to_owned())))
                    .update_expression("ADD n :one")
                    .expression_attribute_values(":one", AttributeValue::N("1".to_owned()))
                    .send()
                    .await?;
            }
            #[cfg(feature = "transact")]
            "transact" => {
                use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
                let mut writes = Vec::new();
                for _ in 0..step.items {
                    let put = Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(item(fresh("tx#"))))
                        .condition_expression("attribute_not_exists(pk)")
                        .build()?;
                    writes.push(TransactWriteItem::builder().put(put).build());
                }
                self.dynamodb
                    .transact_write_items()
                    .set_transact_items(Some(writes))
                    .send()
                    .await?;
            }
            #[cfg(feature = "sched-create")]
            "sched-create" => {
                self.scheduler
                    .create_schedule()
                    .name(fresh("floor-"))
                    .group_name(group())
                    .schedule_expression("at(2099-01-01T00:00:00)")
                    .schedule_expression_timezone("UTC")
                    .flexible_time_window(window()?)
                    .action_after_completion(
                        aws_sdk_scheduler::types::ActionAfterCompletion::Delete,
                    )
                    .target(target()?)
                    .send()
                    .await?;
            }
            #[cfg(feature = "sched-update")]
            "sched-update" => {
                self.scheduler
                    .update_schedule()
                    .name("floor-existing")
                    .group_name(group())
                    .schedule_expression("at(2099-01-01T01:00:00)")
                    .schedule_expression_timezone("UTC")
                    .flexible_time_window(window()?)
                    .action_after_completion(
                        aws_sdk_scheduler::types::ActionAfterCompletion::Delete,
                    )
                    .target(target()?)
                    .send()
                    .await?;
            }
            #[cfg(feature = "sched-delete")]
            "sched-delete" => {
                // Deleting one that is already gone is not an error (as for Flowline).
                let _ = self
                    .scheduler
                    .delete_schedule()
                    .name(fresh("floor-gone-"))
                    .group_name(group())
                    .send()
                    .await;
            }
            #[cfg(feature = "invoke")]
            "invoke" => {
                self.lambda
                    .invoke()
                    .function_name(function_arn())
                    .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
                    .payload(aws_sdk_lambda::primitives::Blob::new(
                        br#"{"callback_id":"cb_floor","organization_id":"org_floor"}"#.to_vec(),
                    ))
                    .send()
                    .await?;
            }
            #[cfg(feature = "post")]
            "post" => {
                let url = std::env::var("FLOOR_POST_URL")?;
                let client = self.web.get_or_init(|| {
                    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
                    reqwest::Client::builder()
                        .redirect(reqwest::redirect::Policy::none())
                        .build()
                        .expect("an HTTP client")
                });
                client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(r#"{"type":"callback.dispatch"}"#)
                    .send()
                    .await?
                    .bytes()
                    .await?;
            }
            #[cfg(feature = "parsers")]
            "parse" => {
                // What validating a flow needs: its YAML data read and written, and a calling
                // window's time zone looked up.
                let request: serde_json::Value =
                    serde_yaml_ng::from_str("greeting: hello\nsteps: [1, 2]\n")?;
                serde_yaml_ng::to_string(&request)?;
                jiff::tz::TimeZone::get("America/New_York")?;
            }
            other => return Err(format!("this floor was not built to call {other}").into()),
        }
        Ok(())
    }
}

#[cfg(feature = "scheduler")]
fn group() -> String {
    std::env::var("FLOOR_SCHEDULE_GROUP").unwrap_or_else(|_| "floor".to_owned())
}

#[cfg(any(feature = "scheduler", feature = "invoke"))]
fn function_arn() -> String {
    std::env::var("FLOOR_FUNCTION_ARN")
        .unwrap_or_else(|_| "arn:aws:lambda:us-east-1:123456789012:function:floor".to_owned())
}

#[cfg(feature = "scheduler")]
fn window() -> Result<aws_sdk_scheduler::types::FlexibleTimeWindow, Error> {
    Ok(aws_sdk_scheduler::types::FlexibleTimeWindow::builder()
        .mode(aws_sdk_scheduler::types::FlexibleTimeWindowMode::Off)
        .build()?)
}

#[cfg(feature = "scheduler")]
fn target() -> Result<aws_sdk_scheduler::types::Target, Error> {
    Ok(aws_sdk_scheduler::types::Target::builder()
        .arn(function_arn())
        .role_arn("arn:aws:iam::123456789012:role/floor-scheduler")
        .input(r#"{"callback_id":"cb_floor","organization_id":"org_floor"}"#)
        .dead_letter_config(
            aws_sdk_scheduler::types::DeadLetterConfig::builder()
                .arn("arn:aws:sqs:us-east-1:123456789012:floor-dlq")
                .build(),
        )
        .build()?)
}

#[cfg(feature = "http")]
#[tokio::main]
async fn main() -> Result<(), Error> {
    use lambda_http::{Body, Request, Response, service_fn};
    lambda_http::tracing::init_default_subscriber();
    let clients = Clients::new().await;
    let clients = &clients;
    lambda_http::run(service_fn(move |_request: Request| async move {
        let calls = clients.run().await?;
        Ok::<_, Error>(
            Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .body(Body::from(format!(r#"{{"calls":{calls}}}"#)))?,
        )
    }))
    .await
}

#[cfg(not(feature = "http"))]
#[tokio::main]
async fn main() -> Result<(), Error> {
    use lambda_runtime::{LambdaEvent, service_fn};
    lambda_runtime::tracing::init_default_subscriber();
    let clients = Clients::new().await;
    let clients = &clients;
    lambda_runtime::run(service_fn(
        move |_event: LambdaEvent<serde_json::Value>| async move {
            let calls = clients.run().await?;
            Ok::<_, Error>(serde_json::json!({ "calls": calls }))
        },
    ))
    .await
}
