//! The warm path of each route, in process: parse → core → render, on the embedded store.
//! Each bench hands a function crate's `handle` the `ApiRequest` of its `events/<function>.json`
//! fixture (as tests/handlers.rs does, on an application wired as its `main` wires it) and
//! renders the answer as the Lambda adapter does. No AWS, no network: this is Flowline's own
//! cost per request once the sandbox is warm.
//!
//! `cargo bench --bench warm` (benches/run reads Criterion's estimates for BENCHMARKS.md).
//! Creates use a fresh `Idempotency-Key` per iteration (built outside the timed part), so each
//! is a create, not a replay; the in-memory tables grow as they go.

#[path = "../tests/common/fixtures.rs"]
#[allow(dead_code)]
mod fixtures;
#[path = "../tests/common/wiring.rs"]
#[allow(dead_code)]
mod wiring;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use fixtures::*;
use flowline_core::config::Config;
use flowline_core::http::render;
use flowline_core::time::ManualClock;
use flowline_core::webhooks::sender::{Attempt, WebhookSender};
use flowline_core::{ApiRequest, App};
use serde_json::Value;
use wiring::Rig;

const SIGNING_KEY: &[u8] = b"bench signing key, 32 bytes long";

/// Answers every delivery at once, so lifecycle events cost what Flowline spends on them.
struct Accepting;

#[async_trait::async_trait]
impl WebhookSender for Accepting {
    async fn post(
        &self,
        _: &str,
        _: Vec<(&'static str, String)>,
        _: bytes::Bytes,
        _: Duration,
    ) -> Attempt {
        Attempt::Answered {
            status: 200,
            body: bytes::Bytes::from_static(br#"{"session_id":"sess_bench"}"#),
        }
    }
}

/// Every function's application wired as its `main` wires it (tests/common/wiring.rs), on
/// shared in-memory tables, with the clock where the callback fixtures were recorded, and a
/// flow, endpoint, callback and trigger URL for the fixtures to aim at.
struct World {
    rig: Rig,
    runtime: tokio::runtime::Runtime,
    slug: String,
    callback: String,
    webhook: String,
    trigger: String,
    signature: String,
}

fn run(
    world_runtime: &tokio::runtime::Runtime,
    app: &App,
    function: &str,
    request: ApiRequest,
) -> Value {
    let response =
        render(world_runtime.block_on(flowline::functions::call(app, function, request)));
    assert!(
        response.status.is_success(),
        "{function}: {} {}",
        response.status,
        String::from_utf8_lossy(&response.body)
    );
    serde_json::from_slice(&response.body).unwrap_or(Value::Null)
}

impl World {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let clock = Arc::new(ManualClock::new(recorded_at("callback-create")));
        // No request budgets: a benchmark makes more requests a second than any organization.
        let unlimited = flowline_core::ratelimit::Limits {
            organization: flowline_core::ratelimit::Limit::new(1e9, 1e9),
            trigger: flowline_core::ratelimit::Limit::new(1e9, 1e9),
            bad_signature: flowline_core::ratelimit::Limit::new(1e9, 1e9),
        };
        let config = Config {
            public_base_url: "https://api.flowline.example.com".to_owned(),
            allow_private_targets: true,
            request_budget: flowline_core::deadline::HTTP_BUDGET,
            limits: unlimited,
        };
        // The in-process timers need the runtime to exist when they are made.
        let rig =
            runtime.block_on(async { Rig::new(clock, Arc::new(Accepting), config, SIGNING_KEY) });
        let text = |body: &Value, field: &str| body[field].as_str().expect(field).to_owned();
        let flow = run(
            &runtime,
            &rig.wired("flow-create"),
            "flow-create",
            event("flow-create"),
        );
        let slug = text(&flow, "slug");
        run(
            &runtime,
            &rig.wired("flow-publish"),
            "flow-publish",
            event_with("flow-publish", &[(FIXTURE_FLOW, &slug)]),
        );
        let webhook = run(
            &runtime,
            &rig.wired("webhook-create"),
            "webhook-create",
            event("webhook-create"),
        );
        let callback = run(
            &runtime,
            &rig.wired("callback-create"),
            "callback-create",
            event_with("callback-create", &[(FIXTURE_FLOW, &slug)]),
        );
        let trigger = run(
            &runtime,
            &rig.wired("flow-callback-create"),
            "flow-callback-create",
            event_with("flow-callback-create", &[(FIXTURE_FLOW, &slug)]),
        );
        let url = text(&trigger, "url");
        Self {
            slug,
            callback: text(&callback, "id"),
            webhook: text(&webhook, "id"),
            trigger: text(&trigger, "id"),
            signature: url
                .split("signature=")
                .nth(1)
                .expect("a signature")
                .to_owned(),
            rig,
            runtime,
        }
    }

    /// The fixture of `function` aimed at this world's resources.
    fn request(&self, function: &str) -> ApiRequest {
        let text = fixture_text(function);
        let mut replacements: Vec<(&str, &str)> = Vec::new();
        for (example, actual) in [
            (FIXTURE_FLOW, self.slug.as_str()),
            (FIXTURE_CALLBACK, self.callback.as_str()),
            (FIXTURE_WEBHOOK, self.webhook.as_str()),
            (FIXTURE_TRIGGER, self.trigger.as_str()),
            (FIXTURE_SIGNATURE, self.signature.as_str()),
        ] {
            if text.contains(example) {
                replacements.push((example, actual));
            }
        }
        event_with(function, &replacements)
    }
}

/// What each bench runs: the function, and whether every iteration needs a fresh
/// `Idempotency-Key` (a create).
const ROUTES: &[(&str, bool)] = &[
    ("flow-get", false),
    ("callback-get", false),
    ("webhook-get", false),
    ("flow-callback-get", false),
    ("flow-create", true),
    ("callback-create", true),
    ("webhook-create", true),
    ("flow-callback-create", false),
    ("hook-trigger", false),
    ("flow-validate", false),
    ("flow-list", false),
    ("callback-list", false),
    ("webhook-list", false),
    ("flow-versions-list", false),
    ("flow-callback-list", false),
    ("flow-update", false),
    ("callback-update", false),
    ("webhook-update", false),
];

fn warm(c: &mut Criterion) {
    let world = World::new();
    let counter = AtomicU64::new(0);
    let mut group = c.benchmark_group("warm");
    for &(function, fresh_key) in ROUTES {
        let app = world.rig.wired(function);
        // flow-update's fixture changes a DRAFT: give it one of its own.
        let request = if function == "flow-update" {
            let draft = run(
                &world.runtime,
                &world.rig.wired("flow-create"),
                "flow-create",
                with_idempotency_key(event("flow-create"), "bench-draft"),
            );
            let slug = draft["slug"].as_str().expect("a slug").to_owned();
            event_with(function, &[(FIXTURE_FLOW, &slug)])
        } else {
            world.request(function)
        };
        group.bench_function(function, |b| {
            b.iter_batched(
                || {
                    if fresh_key {
                        let n = counter.fetch_add(1, Ordering::Relaxed);
                        let mut request =
                            with_idempotency_key(request.clone(), &format!("bench-{n}"));
                        // An organization has at most 20 endpoints: each create in its own.
                        if function == "webhook-create"
                            && let Some(caller) = request.caller.as_mut()
                        {
                            caller.organization_id = format!("org_bench{n}");
                        }
                        request
                    } else {
                        request.clone()
                    }
                },
                |request| {
                    let response = render(
                        world
                            .runtime
                            .block_on(flowline::functions::call(&app, function, request)),
                    );
                    assert!(
                        response.status.is_success(),
                        "{function}: {}",
                        response.status
                    );
                    response
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = warm
}
criterion_main!(benches);
