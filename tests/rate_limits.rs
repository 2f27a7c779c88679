//! Request budgets (SPEC §1): an organization over its budget gets 429 `RATE_LIMITED` with
//! `Retry-After`, and no other organization notices; a hammered trigger URL is limited on its
//! own; a flood of wrong signatures from one address is refused before it costs a read, and
//! other tenants' triggers keep working. The clock is frozen, so budgets refill only when the
//! test moves it.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use common::clock::TestClock;
use common::{Backend, Org, TestServer};
use flowline_core::App;
use flowline_core::config::Config;
use flowline_core::ratelimit::{Limit, Limits};
use flowline_core::store::memory::MemoryTable;
use flowline_core::store::metered::MeteredTable;
use jiff::SignedDuration;
use serde_json::json;

fn limits(organization: Limit, trigger: Limit) -> Limits {
    Limits {
        organization,
        trigger,
        bad_signature: Limit::new(1.0, 5.0),
    }
}

async fn published_flow(org: &Org) -> String {
    let created = org
        .post("/v1/flows", json!({"name": "Budget", "data": {"a": 1}}))
        .await;
    let slug = created.expect(201)["slug"].as_str().unwrap().to_owned();
    org.post(&format!("/v1/flows/{slug}/publish"), json!({}))
        .await
        .expect(200);
    slug
}

#[tokio::test]
async fn an_organization_over_its_budget_gets_429_and_no_other_does() {
    let budget = limits(Limit::new(5.0, 10.0), Limit::new(1e9, 1e9));
    let server = TestServer::start_with_limits(Backend::Memory, budget).await;
    let (busy, quiet) = (server.org().await, server.org().await);
    server.clock.freeze();
    for _ in 0..10 {
        busy.get("/v1/flows").await.expect(200);
    }
    let refused = busy.get("/v1/flows").await;
    refused.expect_error(429, "RATE_LIMITED");
    assert_eq!(refused.header("retry-after"), Some("1"));
    // Writes and public keys count too: it is the organization's budget.
    busy.post("/v1/flows", json!({"name": "x"}))
        .await
        .expect_error(429, "RATE_LIMITED");
    quiet.get("/v1/flows").await.expect(200);
    // A second later, five more (the sustained rate).
    server.clock.advance(SignedDuration::from_secs(1));
    for _ in 0..5 {
        busy.get("/v1/flows").await.expect(200);
    }
    busy.get("/v1/flows")
        .await
        .expect_error(429, "RATE_LIMITED");
}

#[tokio::test]
async fn a_hammered_trigger_url_is_limited_alone_in_its_own_format() {
    let budget = limits(Limit::new(1e9, 1e9), Limit::new(2.0, 4.0));
    let server = TestServer::start_with_limits(Backend::Memory, budget).await;
    let org = server.org().await;
    let slug = published_flow(&org).await;
    let trigger = |format: &str| {
        let org = &org;
        let slug = slug.clone();
        let body = json!({ "format": format });
        async move {
            let created = org.post(&format!("/v1/flows/{slug}/callbacks"), body).await;
            created.expect(201)["url"].as_str().unwrap().to_owned()
        }
    };
    let (hammered, other) = (trigger("xml").await, trigger("json").await);
    server.clock.freeze();
    let client = common::http_client();
    let call = |url: &str| {
        client
            .post(url)
            .json(&json!({"to_number": "+15557654321"}))
            .send()
    };
    for _ in 0..4 {
        assert_eq!(call(&hammered).await.unwrap().status(), 201);
    }
    let refused = call(&hammered).await.unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(
        refused.headers()["retry-after"].to_str().unwrap(),
        "1",
        "Retry-After in whole seconds"
    );
    let body = refused.text().await.unwrap();
    assert!(body.contains("<code>RATE_LIMITED</code>"), "{body}");
    // The other trigger, and the API, are untouched.
    assert_eq!(call(&other).await.unwrap().status(), 201);
    org.get("/v1/callbacks").await.expect(200);
}

/// A client whose requests come from `address` (any 127.0.0.0/8 address is this machine).
fn client_from(address: Ipv4Addr) -> reqwest::Client {
    flowline_adapters::webhook_http::install_tls_provider();
    reqwest::Client::builder()
        .local_address(IpAddr::V4(address))
        .build()
        .expect("a client")
}

#[tokio::test]
async fn wrong_signatures_from_one_address_are_refused_before_any_read_and_others_are_not() {
    let metered = Arc::new(MeteredTable::new(Arc::new(MemoryTable::new())));
    let clock = Arc::new(TestClock::default());
    let config = Config {
        public_base_url: "http://flowline.test".to_owned(),
        allow_private_targets: true,
        request_budget: flowline_core::deadline::HTTP_BUDGET,
        limits: limits(Limit::new(1e9, 1e9), Limit::new(1e9, 1e9)),
    };
    let app: Arc<App> = App::builder(metered.clone(), Arc::new(MemoryTable::new()), config)
        .clock(clock.clone())
        .in_process(Arc::new(
            flowline_core::scheduler::in_process::InProcessScheduler::new(clock.clone()),
        ))
        .signing_key(common::SIGNING_KEY)
        .build();
    let server = TestServer::serve(app, Backend::Memory, clock.clone()).await;
    let (victim, other) = (server.org().await, server.org().await);
    let victim_trigger = {
        let slug = published_flow(&victim).await;
        victim
            .post(&format!("/v1/flows/{slug}/callbacks"), json!({}))
            .await
            .expect(201)["url"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let other_trigger = {
        let slug = published_flow(&other).await;
        other
            .post(&format!("/v1/flows/{slug}/callbacks"), json!({}))
            .await
            .expect(201)["url"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // The app was made before the server had its address.
    let (victim_trigger, other_trigger) = (
        victim_trigger.replace("http://flowline.test", &server.base),
        other_trigger.replace("http://flowline.test", &server.base),
    );
    clock.freeze();
    let forged = victim_trigger.replace("signature=", "signature=forged");
    let attacker = client_from(Ipv4Addr::new(127, 0, 0, 2));
    let body = json!({"to_number": "+15557654321"});
    // Five wrong signatures are answered 404, as any; the sixth is refused before any read.
    for _ in 0..5 {
        let answer = attacker.post(&forged).json(&body).send().await.unwrap();
        assert_eq!(answer.status(), 404);
    }
    let reads_before = metered.calls().reads();
    for _ in 0..20 {
        let answer = attacker.post(&forged).json(&body).send().await.unwrap();
        assert_eq!(answer.status(), 429);
        assert!(answer.headers().contains_key("retry-after"));
    }
    assert_eq!(
        metered.calls().reads(),
        reads_before,
        "a refused call reads nothing"
    );
    // Other callers, the victim's own included, are unaffected.
    let tenant = client_from(Ipv4Addr::new(127, 0, 0, 1));
    for url in [&other_trigger, &victim_trigger] {
        let answer = tenant.post(url).json(&body).send().await.unwrap();
        assert_eq!(answer.status(), 201);
    }
}

/// Lambda sandboxes each keep their own buckets; through the store they share a window, so
/// together they stop soon after the organization's budget is spent — on DynamoDB, as in the
/// cloud.
#[tokio::test]
async fn sandboxes_share_an_organizations_budget_through_dynamodb() {
    use flowline_core::ratelimit::{Budget, RateLimiter};
    let (table, _) = common::tables(Backend::DynamoDb).await;
    let budget = limits(Limit::new(1.0, 5.0), Limit::new(1e9, 1e9));
    let sandboxes = [
        RateLimiter::shared(budget, table.clone()),
        RateLimiter::shared(budget, table.clone()),
        RateLimiter::shared(budget, table),
    ];
    let org = Budget::Organization("org_shared".to_owned());
    let start = jiff::Timestamp::from_second(1_800_000_000).unwrap();
    let mut admitted = 0;
    // Nine seconds of one window (10 s: 1 × 10 + 5 = 15 allowed in all).
    for second in 0..9 {
        let now = start + SignedDuration::from_secs(second);
        for sandbox in &sandboxes {
            while sandbox.admit(&org, now).await.is_ok() {
                admitted += 1;
            }
        }
    }
    // Alone, three sandboxes would have let 3 × (5 + 8) = 39 through; sharing, a little over
    // 15 (each decides alone between its once-a-second additions to the window).
    assert!((15..=24).contains(&admitted), "{admitted}");
    let late = start + SignedDuration::from_millis(9_500);
    for sandbox in &sandboxes {
        assert!(
            sandbox.admit(&org, late).await.is_err(),
            "refused until the window ends"
        );
    }
    let next_window = start + SignedDuration::from_secs(10);
    assert!(sandboxes[0].admit(&org, next_window).await.is_ok());
}
