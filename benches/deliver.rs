//! How fast one `deliver` invocation hands out lifecycle events, locally, beside a floor
//! measured in the same run, and what a million such events cost on AWS.
//!
//! The invocation is the real handler (`deliver::handle`) on stream batches of 100 outbox
//! records (the event source mapping's `BatchSize`), over the in-memory table, sending signed
//! deliveries with the real HTTP sender to a receiver on loopback that answers 200 at once.
//! The floor is the least that work needs: the same number of signed POSTs of the same bodies
//! to the same receiver, as many at once (16), with nothing else. Each side runs `ROUNDS`
//! times, alternating; medians are reported, and the ratio floor / deliver.
//!
//! The cost model counts what one event costs in the calls the handler made (a
//! `MeteredTable` counts them) at AWS list prices, with DynamoDB units from the items' sizes.
//!
//! `cargo bench --bench deliver` prints the table and writes `benches/results/deliver.json`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use flowline_adapters::webhook_http::HttpSender;
use flowline_core::App;
use flowline_core::auth::{Caller, KeyKind};
use flowline_core::config::Config;
use flowline_core::ratelimit::Limits;
use flowline_core::store::memory::MemoryTable;
use flowline_core::store::metered::MeteredTable;
use flowline_core::store::{Item, Table, Write};
use flowline_core::time::{Clock, SystemClock};
use flowline_core::webhooks::delivery::signed_headers;
use flowline_core::webhooks::sender::WebhookSender;
use flowline_core::webhooks::{EventType, outbox};
use futures_util::StreamExt;
use serde_json::{Value, json};

const BATCH: usize = 100;
const ROUNDS: usize = 15;
const IN_FLIGHT: usize = 16;

/// US East (N. Virginia) list prices (USD), November 2026.
mod price {
    /// DynamoDB on-demand: per million write request units, per million read request units.
    pub const WRITE_UNIT: f64 = 0.625;
    pub const READ_UNIT: f64 = 0.125;
    /// Lambda on arm64: per GB-second, per million requests.
    pub const LAMBDA_GB_SECOND: f64 = 0.000_013_333_4;
    pub const LAMBDA_REQUEST: f64 = 0.20;
    /// The deliver function's memory (infra/template.yaml's Globals).
    pub const LAMBDA_GB: f64 = 0.25;
    /// EventBridge Scheduler: per million invocations (a retry's schedule).
    pub const SCHEDULE: f64 = 1.00;
}

async fn receiver() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    let router = axum::Router::new().fallback(|| async { "{}" });
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    url
}

fn attribute(value: &Value) -> Value {
    match value {
        Value::Null => json!({"NULL": true}),
        Value::Bool(b) => json!({"BOOL": b}),
        Value::Number(n) => json!({"N": n.to_string()}),
        Value::String(s) => json!({"S": s}),
        Value::Array(items) => json!({"L": items.iter().map(attribute).collect::<Vec<_>>()}),
        Value::Object(fields) => json!({"M": fields
            .iter()
            .map(|(name, value)| (name.clone(), attribute(value)))
            .collect::<serde_json::Map<_, _>>()}),
    }
}

fn record(item: &Item, sequence: usize) -> Value {
    let keys = json!({"pk": {"S": item.key.pk}, "sk": {"S": item.key.sk}});
    let mut image = keys.as_object().unwrap().clone();
    image.insert("rev".to_owned(), json!({"N": item.rev.to_string()}));
    image.insert("doc".to_owned(), attribute(&item.doc));
    json!({
        "eventID": format!("e{sequence}"), "eventName": "INSERT", "awsRegion": "us-east-1",
        "dynamodb": {"Keys": keys, "NewImage": image, "SequenceNumber": sequence.to_string(),
                     "SizeBytes": 1, "StreamViewType": "NEW_IMAGE"},
    })
}

/// A callback as a `callback.scheduled` event carries it (the typical lifecycle payload).
fn callback_data(i: usize) -> Value {
    json!({"callback": {
        "id": format!("cb_00VbcKJYqKy9Pf34qY6N{i:03}"), "organization_id": "org_bench",
        "flow": "flow_Hk3LmP9qRs2T", "flow_version": 3, "source_session_id": "sess_9f2c41d7",
        "created_session_id": null, "agent_id": "agent_billing_en", "phone_number_id": null,
        "to_number": "+14155550123", "from_number": "+14155550199",
        "scheduled_at": "2026-11-21T16:00:00.000Z", "expires_at": null, "status": "scheduled",
        "reason": "Customer asked to be called back about the November invoice",
        "instructions": null, "summary": null, "pipeline_config": null,
        "metadata": {"crm_ticket": "ACME-48213"}, "failure_cause": null, "attempted_at": null,
        "dispatched_at": null, "cancelled_at": null, "created_at": "2026-11-21T14:15:54.118Z",
        "updated_at": "2026-11-21T14:15:54.118Z", "cancel_reason": null}})
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// DynamoDB write (1 KB) or strongly consistent read (4 KB) units of an item of `bytes`.
fn units(bytes: usize, per: usize) -> f64 {
    bytes.div_ceil(per).max(1) as f64
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    flowline_adapters::webhook_http::install_tls_provider();
    let url = receiver().await;
    let store = Arc::new(MeteredTable::new(Arc::new(MemoryTable::new())));
    let config = Config {
        public_base_url: "http://bench.local".to_owned(),
        allow_private_targets: true,
        request_budget: flowline_core::deadline::HTTP_BUDGET,
        limits: Limits::default(),
    };
    let sender: Arc<dyn WebhookSender> = Arc::new(HttpSender::new(true));
    let app: Arc<App> = App::builder(store.clone(), Arc::new(MemoryTable::new()), config)
        .sender(sender.clone())
        .signing_key(b"bench signing key, 32 bytes long")
        .build();
    let caller = Caller {
        organization_id: "org_bench".to_owned(),
        kind: KeyKind::Private,
        key_name: "bench".to_owned(),
    };
    let body = json!({"url": url, "events": ["callback.scheduled"]});
    let endpoint =
        flowline_core::webhooks::create(&app, &caller, body.as_object().unwrap().clone())
            .await
            .expect("an endpoint");
    let secret = endpoint.secret.clone().unwrap();

    let mut deliver_rates = Vec::new();
    let mut floor_rates = Vec::new();
    let mut calls_per_event = None;
    let mut bytes = (0usize, 0usize);
    for round in 0..ROUNDS {
        // A batch of outbox items, as the changes that queued them wrote them.
        let mut records = Vec::new();
        let mut bodies = Vec::new();
        for i in 0..BATCH {
            let write = outbox::event(
                "org_bench",
                EventType::CallbackScheduled,
                callback_data(i),
                SystemClock.now(),
            )
            .unwrap();
            let key = write.key().clone();
            if let Write::Put { doc, .. } = &write {
                bytes.1 = serde_json::to_vec(doc).unwrap().len();
                bodies.push(serde_json::to_vec(&doc["event"]).unwrap());
            }
            store.write(vec![write]).await.unwrap();
            let item = store.get(&key).await.unwrap().unwrap();
            records.push(record(&item, round * BATCH + i));
        }
        let batch: flowline_lambda::stream::StreamBatch =
            serde_json::from_value(json!({ "Records": records })).unwrap();

        let before = store.calls();
        let started = Instant::now();
        let answer = flowline_core::deadline::within(
            tokio::time::Instant::now() + Duration::from_secs(60),
            deliver::handle(&app, batch),
        )
        .await
        .expect("the batch is handed out");
        let took = started.elapsed();
        assert!(answer.batch_item_failures.is_empty());
        deliver_rates.push(BATCH as f64 / took.as_secs_f64());
        let calls = store.calls().since(&before);
        calls_per_event.get_or_insert(calls);

        // The floor: the same bodies, signed and posted, as many at once.
        let started = Instant::now();
        futures_util::stream::iter(bodies)
            .map(|body| {
                let sender = sender.clone();
                let url = url.clone();
                let secret = secret.clone();
                async move {
                    let headers =
                        signed_headers(&[&secret], "evt_floor", 1_795_270_554, &body).unwrap();
                    sender
                        .post(&url, headers, body.into(), Duration::from_secs(5))
                        .await
                }
            })
            .buffer_unordered(IN_FLIGHT)
            .collect::<Vec<_>>()
            .await;
        floor_rates.push(BATCH as f64 / started.elapsed().as_secs_f64());
    }
    // The event item kept for the log (payload) and a delivery item with its entries.
    bytes.0 = bytes.1;

    let deliver = median(deliver_rates);
    let floor = median(floor_rates);
    let calls = calls_per_event.unwrap();
    let per_event = |n: u64| n as f64 / BATCH as f64;
    // Reads: the outbox item (GetItem), the subscribers (one Query, one endpoint), the delivery
    // (GetItem, absent); writes: the event kept (its size), the delivery and its 4 entries in one
    // transaction (each item written twice-priced in a transaction), the outbox item's delete.
    let read_units = per_event(calls.get) * units(bytes.1, 4096)
        + per_event(calls.query) * 1.0
        + per_event(calls.get_many_keys) * 1.0;
    let write_units = units(bytes.0, 1024) // the event kept
        + 2.0 * 5.0 // the delivery + 4 list entries, transactional
        + 1.0 // the outbox item's delete
        + units(bytes.1, 1024); // the outbox item's write, by the change itself
    // Locally the table answers in microseconds; in the cloud each record waits on about six
    // DynamoDB calls (~8 ms each) and its POST (say 100 ms): ~150 ms, 16 records at once.
    let lambda_seconds_per_event = (1.0 / deliver).max(0.150 / IN_FLIGHT as f64);
    let cost = json!({
        "dynamodb_writes": write_units * price::WRITE_UNIT,
        "dynamodb_reads": read_units * price::READ_UNIT,
        "lambda_compute": lambda_seconds_per_event * price::LAMBDA_GB * price::LAMBDA_GB_SECOND * 1e6,
        "lambda_requests": price::LAMBDA_REQUEST / BATCH as f64,
        "retry_schedule_if_first_try_fails": price::SCHEDULE,
    });
    let total: f64 = [
        "dynamodb_writes",
        "dynamodb_reads",
        "lambda_compute",
        "lambda_requests",
    ]
    .iter()
    .map(|k| cost[k].as_f64().unwrap())
    .sum();
    println!("deliver: one invocation, batches of {BATCH} records, {ROUNDS} rounds (medians)");
    println!("  deliver::handle      {deliver:>9.0} events/s");
    println!("  floor (signed POSTs) {floor:>9.0} events/s");
    println!("  ratio deliver/floor  {:>9.2}", deliver / floor);
    println!(
        "  store calls per event: {:.2} GetItem, {:.2} Query, {:.2} writes ({:.2} transactions, {:.2} items)",
        per_event(calls.get),
        per_event(calls.query),
        per_event(calls.write),
        per_event(calls.transactions),
        per_event(calls.write_items)
    );
    println!("  cost per million lifecycle events delivered first time: ${total:.2} ({cost})");
    let report = json!({
        "date": jiff::Timestamp::now().to_string(),
        "batch": BATCH, "rounds": ROUNDS, "in_flight": IN_FLIGHT,
        "deliver_events_per_second": deliver,
        "floor_events_per_second": floor,
        "ratio": deliver / floor,
        "store_calls_per_batch": {
            "get": calls.get, "query": calls.query, "write": calls.write,
            "transactions": calls.transactions, "write_items": calls.write_items,
        },
        "event_item_bytes": bytes.1,
        "cost_per_million_usd": cost, "cost_per_million_total_usd": total,
    });
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/results/deliver.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    println!("  written to {}", path.display());
}
