//! A list page costs the same reads however many items the table holds: each list route
//! (flows, callbacks, webhook endpoints, flow versions, a flow's trigger URLs) answers its
//! fixture's first page and the page after it with exactly the same store calls and items read
//! (`MeteredTable`) at a small and a large count.
//!
//! In memory: 100 vs 10,000 of each (versions: 100 vs 1,000, the most a flow may have). On
//! DynamoDB (the emulator): 25 vs 250 — every item is made through the API, and the emulator
//! serves one request at a time and copies the whole table on each transaction, so 10,000
//! would take the best part of an hour; 250 is still more than ten pages of each list (the
//! largest fixture page is 20), which is what a page that scanned would show.
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
        for _ in 1..versions {
            world
                .call("flow-publish", on_flow("flow-publish", &world.versioned))
                .await;
            world
                .call(
                    "flow-version-create",
                    on_flow("flow-version-create", &world.versioned),
                )
                .await;
        }
        for i in 0..n {
            world
                .call(
                    "webhook-create",
                    with_idempotency_key(event("webhook-create"), &key("webhook", i)),
                )
                .await;
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
        world
    }

    /// The fixture's page, then the one after it: the calls and items each read.
    async fn pages(&self, function: &str) -> (StoreCalls, StoreCalls) {
        let text = fixture_text(function);
        let request = || {
            if text.contains(FIXTURE_FLOW) {
                let slug = if function == "flow-versions-list" {
                    &self.versioned
                } else {
                    &self.slug
                };
                event_with(function, &[(FIXTURE_FLOW, slug)])
            } else {
                event(function)
            }
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
    "webhook-list",
    "flow-versions-list",
    "flow-callback-list",
];

async fn pages_at(backend: Backend, n: usize) -> Vec<(String, StoreCalls, StoreCalls)> {
    let world = World::new(backend, n).await;
    let mut out = Vec::new();
    for function in LISTS {
        let (first, second) = world.pages(function).await;
        out.push((function.to_string(), first, second));
    }
    out
}

async fn same_reads_per_page(backend: Backend, small: usize, large: usize) {
    let few = pages_at(backend, small).await;
    let many = pages_at(backend, large).await;
    let mut rows = Vec::new();
    for ((function, few_first, few_second), (_, many_first, many_second)) in few.iter().zip(&many) {
        eprintln!(
            "{backend:?} {function}: page 1 {few_first:?} / {many_first:?}; page 2 {few_second:?} / {many_second:?}"
        );
        assert_eq!(
            few_first, many_first,
            "{function}: first page at {small} vs {large} items"
        );
        assert_eq!(
            few_second, many_second,
            "{function}: second page at {small} vs {large} items"
        );
        rows.push(json!({
            "function": function,
            "small": small, "large": large,
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
    same_reads_per_page(Backend::Memory, 100, 10_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pages_read_the_same_at_25_and_250_items_on_dynamodb() {
    same_reads_per_page(Backend::DynamoDb, 25, 250).await;
}
