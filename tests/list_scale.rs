//! A list page costs the same reads however many items the table holds: each list route
//! (flows, callbacks, an endpoint's deliveries, flow versions, a flow's trigger URLs; an
//! organization has at most 20 webhook endpoints, so their list cannot grow) answers its
//! fixture's first page and the page after it with exactly the same store calls and items read
//! (`MeteredTable`) at a small and a large count.
//!
//! In memory: 100 vs 10,000 of each (versions: 100 vs 1,000, the most a flow may have), pages
//! as the fixtures ask (10 or 20). On DynamoDB (the emulator): 12 vs 60, in pages of 5 — every
//! item is made through the API, and the emulator serves one request at a time and copies the
//! whole table on each transaction: at 250 of each it grew past 9 GB of memory and had not
//! finished after 20 minutes. 60 items are twelve pages of each list, and 12 already more than
//! two, which is what a page that scanned or counted would show.
//!
//! `FLOWLINE_SCALE_REPORT=path.json` also writes what was measured (BENCHMARKS.md, via
//! benches/run).

mod common;

use std::sync::Arc;

use common::Backend;
use common::fixtures::*;
use common::wiring::Rig;
use flowline_core::ApiRequest;
use flowline_core::config::Config;
use flowline_core::http::render;
use flowline_core::store::metered::{MeteredTable, StoreCalls};
use flowline_core::time::ManualClock;
use flowline_core::webhooks::sender::{Attempt, WebhookSender};
use serde_json::{Value, json};

const SIGNING_KEY: &[u8] = b"test signing key, 32 bytes long!";

/// Accepts every delivery without a network (flow.published reaches every endpoint).
struct Accepting;

#[async_trait::async_trait]
impl WebhookSender for Accepting {
    async fn post(
        &self,
        _: &str,
        _: Vec<(&'static str, String)>,
        _: bytes::Bytes,
        _: std::time::Duration,
    ) -> Attempt {
        Attempt::Answered {
            status: 200,
            body: bytes::Bytes::from_static(b"{}"),
        }
    }
}

struct World {
    rig: Rig,
    metered: Arc<MeteredTable>,
    /// The flow whose callbacks and trigger URLs are listed.
    slug: String,
    /// The flow whose versions are listed.
    versioned: String,
    /// The endpoint whose deliveries are listed.
    webhook: String,
}

impl World {
    async fn call(&self, function: &str, request: ApiRequest) -> Value {
        let response =
            render(flowline::functions::call(&self.rig.wired(function), function, request).await);
        let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        assert!(
            response.status.is_success(),
            "{function}: {} {body}",
            response.status
        );
        body
    }

    async fn new(backend: Backend, n: usize) -> Self {
        let (store, keys) = common::tables(backend).await;
        let metered = Arc::new(MeteredTable::new(store));
        let clock = Arc::new(ManualClock::new(recorded_at("callback-create")));
        let config = Config {
            public_base_url: "https://api.flowline.example.com".to_owned(),
            allow_private_targets: true,
            request_budget: flowline_core::deadline::HTTP_BUDGET,
            limits: common::UNLIMITED,
        };
        let rig = Rig::on_tables(
            metered.clone(),
            keys,
            clock,
            Arc::new(Accepting),
            config,
            SIGNING_KEY,
        );
        let mut world = Self {
            rig,
            metered,
            slug: String::new(),
            versioned: String::new(),
            webhook: String::new(),
        };
        let key = |kind: &str, i: usize| format!("scale-{kind}-{i}");
        let flow = |i: usize| with_idempotency_key(event("flow-create"), &key("flow", i));
        // The listed flows (drafts, as the flow-list fixture asks), one of them published.
        for i in 0..n {
            world.call("flow-create", flow(i)).await;
        }
        world.slug = world.call("flow-create", flow(n)).await["slug"]
            .as_str()
            .unwrap()
            .to_owned();
        let on_flow = |function: &str, slug: &str| event_with(function, &[(FIXTURE_FLOW, slug)]);
        world
            .call("flow-publish", on_flow("flow-publish", &world.slug))
            .await;
        // Versions: publish, new draft, and so on (before any endpoint exists to be told).
        world.versioned = world.call("flow-create", flow(n + 1)).await["slug"]
            .as_str()
            .unwrap()
            .to_owned();
        let versions = n.min(flowline_core::flows::service::MAX_VERSIONS);
        for version in 1..versions {
            let mut publish = on_flow("flow-publish", &world.versioned);
            publish.body = format!(r#"{{"version": {version}}}"#).into();
            let length = publish.body.len().to_string();
            publish
                .headers
                .insert("content-length", length.parse().unwrap());
            world.call("flow-publish", publish).await;
            world
                .call(
                    "flow-version-create",
                    on_flow("flow-version-create", &world.versioned),
                )
                .await;
        }
        // One endpoint, told of every callback scheduled: a delivery each.
        let subscribed = event_with(
            "webhook-create",
            &[(
                r#"\"callback.failed\"]"#,
                r#"\"callback.failed\", \"callback.scheduled\"]"#,
            )],
        );
        world.webhook = world.call("webhook-create", subscribed).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        for i in 0..n {
            world
                .call(
                    "callback-create",
                    with_idempotency_key(
                        on_flow("callback-create", &world.slug),
                        &key("callback", i),
                    ),
                )
                .await;
            world
                .call(
                    "flow-callback-create",
                    on_flow("flow-callback-create", &world.slug),
                )
                .await;
        }
        // The outbox handed out, as the deliver function does: n deliveries.
        common::within_budget(
            std::time::Duration::from_secs(3600),
            flowline_core::webhooks::relay::pass(&world.rig.wired("deliver")),
        )
        .await
        .expect("the outbox is handed out");
        world
    }

    /// The fixture's page (of `page_size` items, when given), then the one after it: the calls
    /// and items each read.
    async fn pages(&self, function: &str, page_size: Option<usize>) -> (StoreCalls, StoreCalls) {
        let text = fixture_text(function);
        let request = || {
            let mut request = if text.contains(FIXTURE_FLOW) {
                let slug = if function == "flow-versions-list" {
                    &self.versioned
                } else {
                    &self.slug
                };
                event_with(function, &[(FIXTURE_FLOW, slug)])
            } else if text.contains(FIXTURE_WEBHOOK) {
                // Every delivery succeeded (the fixture lists failed ones).
                event_with(
                    function,
                    &[
                        (FIXTURE_WEBHOOK, &self.webhook),
                        ("status=failed", "status=succeeded"),
                        (r#""status": "failed""#, r#""status": "succeeded""#),
                    ],
                )
            } else {
                event(function)
            };
            if let (Some(size), Some(query)) = (page_size, &request.query) {
                let resized: Vec<String> = query
                    .split('&')
                    .map(|pair| match pair.split_once('=') {
                        Some(("page_size" | "limit", _)) => {
                            format!("{}={size}", pair.split('=').next().unwrap())
                        }
                        _ => pair.to_owned(),
                    })
                    .collect();
                request.query = Some(resized.join("&"));
            }
            request
        };
        let before = self.metered.calls();
        let first = self.call(function, request()).await;
        let first_calls = self.metered.calls().since(&before);
        let token = first["next_page_token"]
            .as_str()
            .unwrap_or_else(|| panic!("{function}: a full first page has a next page: {first}"));
        let mut next = request();
        let query = next.query.take().unwrap_or_default();
        let token: String = form_urlencoded_token(token);
        next.query = Some(format!("{query}&next_page_token={token}"));
        let before = self.metered.calls();
        self.call(function, next).await;
        (first_calls, self.metered.calls().since(&before))
    }
}

fn form_urlencoded_token(token: &str) -> String {
    token
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

const LISTS: &[&str] = &[
    "flow-list",
    "callback-list",
    "webhook-deliveries-list",
    "flow-versions-list",
    "flow-callback-list",
];

async fn pages_at(
    backend: Backend,
    n: usize,
    page_size: Option<usize>,
) -> Vec<(String, StoreCalls, StoreCalls)> {
    let world = World::new(backend, n).await;
    let mut out = Vec::new();
    for function in LISTS {
        let (first, second) = world.pages(function, page_size).await;
        out.push((function.to_string(), first, second));
    }
    out
}

async fn same_reads_per_page(
    backend: Backend,
    small: usize,
    large: usize,
    page_size: Option<usize>,
) {
    let few = pages_at(backend, small, page_size).await;
    let many = pages_at(backend, large, page_size).await;
    let mut rows = Vec::new();
    for ((function, few_first, few_second), (_, many_first, many_second)) in few.iter().zip(&many) {
        eprintln!(
            "{backend:?} {function}: page 1 {few_first:?} / {many_first:?}; page 2 {few_second:?} / {many_second:?}"
        );
        for (page, few, many) in [
            ("first", few_first, many_first),
            ("second", few_second, many_second),
        ] {
            // Ids spread over a list's shards at random: in the small world a shard may hold
            // less than a page, and its Query answers fewer entries. Every other count is exact.
            let relaxed = StoreCalls {
                query_items: many.query_items,
                ..*few
            };
            assert_eq!(
                &relaxed, many,
                "{function}: {page} page at {small} vs {large} items"
            );
            assert!(
                few.query_items <= many.query_items,
                "{function}: {page} page at {small} vs {large} items: {few:?} / {many:?}"
            );
        }
        rows.push(json!({
            "function": function,
            "small": small, "large": large, "page_size": page_size,
            "first_page": many_first, "second_page": many_second,
        }));
    }
    if let Ok(path) = std::env::var("FLOWLINE_SCALE_REPORT") {
        let path = path.replace(".json", &format!(".{backend:?}.json").to_lowercase());
        std::fs::write(&path, serde_json::to_string_pretty(&rows).unwrap())
            .unwrap_or_else(|err| panic!("{path}: {err}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pages_read_the_same_at_100_and_10_000_items_in_memory() {
    same_reads_per_page(Backend::Memory, 100, 10_000, None).await;
}

/// Pages of 5 (the fixtures ask for 10 or 20), so that 12 items are already more than two
/// pages and 60 are twelve.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pages_read_the_same_at_12_and_60_items_on_dynamodb() {
    same_reads_per_page(Backend::DynamoDb, 12, 60, Some(5)).await;
}
