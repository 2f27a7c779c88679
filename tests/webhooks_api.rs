//! Webhook endpoints as a customer meets them over HTTP (SPEC §5): registration and its secret,
//! what a delivery carries, listing, changes, deletion, validation, idempotency, tenancy, and the
//! SSRF guard at registration. Every test runs on both stores.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::receiver::Receiver;
use common::{Backend, Org, TestServer};
use reqwest::Method;
use serde_json::{Value, json};

async fn replaying_the_key_of_a_deleted_endpoint_says_it_was_deleted(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let body = json!({"url": "https://93.184.216.34/hook", "events": ["callback.dispatch"]});
    let send = || {
        org.call(Method::POST, "/v1/webhooks")
            .header("idempotency-key", "setup-1")
            .json(&body)
            .send()
    };
    let id = send().await.expect(201)["id"].as_str().unwrap().to_owned();
    org.delete(&format!("/v1/webhooks/{id}")).await.expect(200);
    let replay = send().await;
    replay.expect_error(404, "NOT_FOUND");
    assert!(
        replay.body["error"]
            .as_str()
            .unwrap()
            .contains("deleted since")
    );
    let listed = org.get("/v1/webhooks").await;
    assert!(
        listed.expect(200)["webhooks"]
            .as_array()
            .unwrap()
            .is_empty(),
        "nothing was created again"
    );
}

on_every_store!(
    replaying_the_key_of_a_deleted_endpoint_says_it_was_deleted,
    create_answers_the_endpoint_with_its_secret,
    get_and_list_never_show_the_secret,
    the_secret_verifies_a_real_delivery,
    list_is_newest_first,
    list_limit_is_1_to_100,
    list_pages_to_the_end_without_duplicates,
    list_gives_a_token_only_when_more_exist,
    at_most_twenty_endpoints_and_the_default_page_holds_them,
    concurrent_creates_never_pass_twenty,
    bad_page_tokens_are_invalid_page_token,
    put_changes_only_the_fields_it_names,
    put_with_a_stale_if_match_is_412,
    the_etag_of_the_create_is_a_valid_if_match,
    delete_answers_a_message_then_the_endpoint_is_gone,
    disabled_endpoints_receive_nothing,
    endpoints_receive_only_the_events_they_subscribed_to,
    create_without_url_names_url,
    create_with_a_url_that_is_not_a_url_names_url,
    create_with_a_scheme_other_than_https_names_url,
    create_without_events_names_events,
    create_with_an_unknown_event_names_events,
    create_with_an_unknown_field_names_it,
    create_with_read_only_fields_names_them,
    create_with_wrong_types_names_every_field,
    put_with_invalid_fields_names_them_and_changes_nothing,
    put_refuses_null_for_url_events_and_status,
    unknown_query_parameters_are_refused_on_every_webhook_route,
    idempotent_create_replays_the_same_endpoint,
    idempotency_key_with_another_body_is_409,
    another_organizations_endpoint_is_not_found,
    public_keys_can_read_but_not_write,
    without_private_targets_internal_urls_are_refused,
    without_private_targets_a_public_address_is_accepted,
    without_private_targets_updates_to_internal_urls_are_refused,
);

/// A URL that is never called: nothing in the tests that use it emits an event.
const QUIET_URL: &str = "https://hooks.example.com/flowline";

/// `prefix` + at least 20 base62 characters.
fn is_id(value: &Value, prefix: &str) -> bool {
    value
        .as_str()
        .and_then(|id| id.strip_prefix(prefix))
        .is_some_and(|rest| rest.len() >= 20 && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// RFC 3339 in UTC with a `Z`.
fn is_timestamp(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|text| text.ends_with('Z') && text.parse::<jiff::Timestamp>().is_ok())
}

fn keys(value: &Value) -> HashSet<&str> {
    value
        .as_object()
        .map(|object| object.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

fn sorted(events: &Value) -> Vec<String> {
    let mut names: Vec<String> = events
        .as_array()
        .expect("events is a list")
        .iter()
        .map(|e| e.as_str().expect("event names are strings").to_owned())
        .collect();
    names.sort();
    names
}

async fn register(org: &Org, url: &str, events: &[&str]) -> Value {
    org.post("/v1/webhooks", json!({"url": url, "events": events}))
        .await
        .expect(201)
        .clone()
}

fn id_of(endpoint: &Value) -> &str {
    endpoint["id"].as_str().expect("an id")
}

/// A flow whose draft can be published (its `data` is a non-empty mapping); its slug.
async fn publishable_flow(org: &Org) -> String {
    let flow = org
        .post(
            "/v1/flows",
            json!({"name": "Webhook test flow", "data": {"a": 1}}),
        )
        .await;
    flow.expect(201)["slug"].as_str().expect("slug").to_owned()
}

async fn publish(org: &Org, slug: &str) -> Value {
    org.post(&format!("/v1/flows/{slug}/publish"), json!({}))
        .await
        .expect(200)
        .clone()
}

/// Every endpoint of the organization, one page of 100.
async fn all_endpoints(org: &Org) -> Vec<Value> {
    let answer = org.get("/v1/webhooks?limit=100").await;
    answer.expect(200)["webhooks"]
        .as_array()
        .expect("webhooks")
        .clone()
}

// --- Creation and the secret -----------------------------------------------------------------

async fn create_answers_the_endpoint_with_its_secret(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let answer = org
        .post(
            "/v1/webhooks",
            json!({
                "url": QUIET_URL,
                "events": ["flow.published", "callback.dispatch"],
                "description": "Agent runtime",
            }),
        )
        .await;
    let body = answer.expect(201);
    assert_eq!(
        keys(body),
        HashSet::from([
            "id",
            "url",
            "events",
            "status",
            "disabled_reason",
            "description",
            "secret",
            "created_at",
            "updated_at"
        ]),
        "{body}"
    );
    assert!(is_id(&body["id"], "we_"), "{}", body["id"]);
    assert_eq!(body["url"], QUIET_URL);
    assert_eq!(
        sorted(&body["events"]),
        ["callback.dispatch", "flow.published"]
    );
    assert_eq!(body["status"], "active");
    assert_eq!(body["description"], "Agent runtime");
    assert!(is_timestamp(&body["created_at"]), "{}", body["created_at"]);
    assert_eq!(body["updated_at"], body["created_at"]);
    let secret = body["secret"].as_str().expect("a secret");
    let key = secret
        .strip_prefix("whsec_")
        .map(|encoded| STANDARD.decode(encoded).expect("base64 after whsec_"))
        .expect("whsec_ prefix");
    assert_eq!(key.len(), 32);
    assert!(answer.header("etag").is_some());

    let other = register(&org, QUIET_URL, &["flow.published"]).await;
    assert_ne!(other["secret"], body["secret"], "each endpoint has its own");
}

async fn get_and_list_never_show_the_secret(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let created = register(&org, QUIET_URL, &["callback.dispatch"]).await;
    let mut expected = created.clone();
    expected.as_object_mut().unwrap().remove("secret");

    let one = org.get(&format!("/v1/webhooks/{}", id_of(&created))).await;
    assert_eq!(one.expect(200), &expected);
    assert!(one.header("etag").is_some());
    assert!(!one.text.contains(created["secret"].as_str().unwrap()));

    let public = org
        .public(Method::GET, &format!("/v1/webhooks/{}", id_of(&created)))
        .send()
        .await;
    assert_eq!(public.expect(200), &expected);

    let list = org.get("/v1/webhooks").await;
    assert_eq!(list.expect(200)["webhooks"], json!([expected]));
    assert!(!list.text.contains("secret"));
}

async fn the_secret_verifies_a_real_delivery(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let receiver = Receiver::start().await;
    let slug = publishable_flow(&org).await;
    let endpoint = register(&org, &receiver.url, &["flow.published"]).await;
    let secret = endpoint["secret"].as_str().unwrap();

    let published = publish(&org, &slug).await;
    let deliveries = receiver
        .wait_for("flow.published", 1, Duration::from_secs(10))
        .await;
    assert_eq!(deliveries.len(), 1, "one delivery per event");
    let delivery = &deliveries[0];

    assert!(delivery.signed_by(secret));
    let stranger = format!("whsec_{}", STANDARD.encode([7u8; 32]));
    assert!(
        !delivery.signed_by(&stranger),
        "only its own secret verifies"
    );

    let header = |name: &str| {
        delivery
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_owned()
    };
    assert!(header("content-type").starts_with("application/json"));
    assert_eq!(header("webhook-id"), delivery.json["id"].as_str().unwrap());
    let sent_at: i64 = header("webhook-timestamp").parse().expect("unix seconds");
    let now = jiff::Timestamp::now().as_second();
    assert!((now - 300..=now).contains(&sent_at), "{sent_at} vs {now}");
    assert!(header("webhook-signature").starts_with("v1,"));

    let event = &delivery.json;
    assert_eq!(
        keys(event),
        HashSet::from(["id", "type", "created_at", "data"])
    );
    assert!(is_id(&event["id"], "evt_"), "{}", event["id"]);
    assert_eq!(event["type"], "flow.published");
    assert!(is_timestamp(&event["created_at"]));
    assert_eq!(keys(&event["data"]), HashSet::from(["flow"]));
    assert_eq!(event["data"]["flow"]["slug"], slug.as_str());
    assert_eq!(event["data"]["flow"]["status"], "ACTIVE");
    assert_eq!(
        event["data"]["flow"], published,
        "the event carries the flow as published"
    );
}

// --- Listing -----------------------------------------------------------------------------------

async fn list_is_newest_first(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let mut created = Vec::new();
    for _ in 0..4 {
        created.push(register(&org, QUIET_URL, &["callback.dispatch"]).await);
    }
    // Newest first at millisecond precision, ties broken by id (SPEC §1).
    created.sort_by(|a, b| {
        let key = |e: &Value| {
            (
                e["created_at"].as_str().unwrap().to_owned(),
                id_of(e).to_owned(),
            )
        };
        key(b).cmp(&key(a))
    });
    let expected: Vec<&str> = created.iter().map(id_of).collect();
    let listed = all_endpoints(&org).await;
    let listed: Vec<&str> = listed.iter().map(id_of).collect();
    assert_eq!(listed, expected);
}

async fn list_limit_is_1_to_100(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    register(&org, QUIET_URL, &["callback.dispatch"]).await;
    for limit in ["0", "101", "-1", "ten", ""] {
        let answer = org.get(&format!("/v1/webhooks?limit={limit}")).await;
        answer.expect_error(400, "VALIDATION_ERROR");
        assert_eq!(answer.detail_fields(), ["limit"], "limit={limit}");
    }
    for limit in [1, 100] {
        let answer = org.get(&format!("/v1/webhooks?limit={limit}")).await;
        assert_eq!(answer.expect(200)["webhooks"].as_array().unwrap().len(), 1);
    }
}

async fn list_pages_to_the_end_without_duplicates(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    for _ in 0..5 {
        register(&org, QUIET_URL, &["callback.dispatch"]).await;
    }
    let everything: Vec<String> = all_endpoints(&org)
        .await
        .iter()
        .map(|e| id_of(e).to_owned())
        .collect();
    assert_eq!(everything.len(), 5);

    let mut paged = Vec::new();
    let mut sizes = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let path = match &token {
            Some(token) => format!("/v1/webhooks?limit=2&next_page_token={token}"),
            None => "/v1/webhooks?limit=2".to_owned(),
        };
        let answer = org.get(&path).await;
        let page = answer.expect(200);
        let items = page["webhooks"].as_array().unwrap();
        sizes.push(items.len());
        paged.extend(items.iter().map(|e| id_of(e).to_owned()));
        match page.get("next_page_token") {
            Some(next) => token = Some(next.as_str().expect("a string token").to_owned()),
            None => break,
        }
        assert!(sizes.len() < 10, "pagination does not end");
    }
    assert_eq!(sizes, [2, 2, 1]);
    assert_eq!(paged, everything, "every endpoint once, in order");
}

async fn list_gives_a_token_only_when_more_exist(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let empty = org.get("/v1/webhooks").await;
    assert_eq!(empty.expect(200), &json!({"webhooks": []}));

    register(&org, QUIET_URL, &["callback.dispatch"]).await;
    register(&org, QUIET_URL, &["callback.dispatch"]).await;
    let exact = org.get("/v1/webhooks?limit=2").await;
    let page = exact.expect(200);
    assert_eq!(page["webhooks"].as_array().unwrap().len(), 2);
    assert!(page.get("next_page_token").is_none(), "{page}");

    let partial = org.get("/v1/webhooks?limit=1").await;
    assert!(partial.expect(200)["next_page_token"].is_string());
}

/// At most 20 endpoints (SPEC §8): the twenty-first is refused, and the default page (25)
/// holds every endpoint an organization can have. A deleted endpoint frees its place.
async fn at_most_twenty_endpoints_and_the_default_page_holds_them(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(id_of(&register(&org, QUIET_URL, &["callback.dispatch"]).await).to_owned());
    }
    let refused = org
        .post(
            "/v1/webhooks",
            json!({"url": QUIET_URL, "events": ["callback.dispatch"]}),
        )
        .await;
    refused.expect_error(409, "CONFLICT");
    assert!(refused.body["error"].as_str().unwrap().contains("20"));
    let answer = org.get("/v1/webhooks").await;
    let page = answer.expect(200);
    assert_eq!(page["webhooks"].as_array().unwrap().len(), 20);
    assert!(page.get("next_page_token").is_none());
    // Another organization has places of its own.
    let other = server.org().await;
    register(&other, QUIET_URL, &["callback.dispatch"]).await;
    // A deleted endpoint frees its place, once.
    org.delete(&format!("/v1/webhooks/{}", ids[0]))
        .await
        .expect(200);
    org.delete(&format!("/v1/webhooks/{}", ids[0]))
        .await
        .expect_error(404, "NOT_FOUND");
    register(&org, QUIET_URL, &["callback.dispatch"]).await;
    org.post(
        "/v1/webhooks",
        json!({"url": QUIET_URL, "events": ["callback.dispatch"]}),
    )
    .await
    .expect_error(409, "CONFLICT");
}

/// Concurrent creates cannot both take the last place: the count and the endpoint are one
/// transaction.
async fn concurrent_creates_never_pass_twenty(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    for _ in 0..15 {
        register(&org, QUIET_URL, &["callback.dispatch"]).await;
    }
    let creates = (0..10).map(|_| {
        org.post(
            "/v1/webhooks",
            json!({"url": QUIET_URL, "events": ["callback.dispatch"]}),
        )
    });
    let answers = futures_util::future::join_all(creates).await;
    let created = answers.iter().filter(|a| a.status == 201).count();
    let refused = answers.iter().filter(|a| a.status == 409).count();
    assert_eq!(
        (created, refused),
        (5, 5),
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    assert_eq!(all_endpoints(&org).await.len(), 20);
}

async fn bad_page_tokens_are_invalid_page_token(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let other = server.org().await;
    register(&org, QUIET_URL, &["callback.dispatch"]).await;
    register(&org, QUIET_URL, &["callback.dispatch"]).await;
    let first = org.get("/v1/webhooks?limit=1").await;
    let token = first.expect(200)["next_page_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut tampered = token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    for bad in ["garbage", "a.b", tampered.as_str()] {
        let answer = org
            .get(&format!("/v1/webhooks?next_page_token={bad}"))
            .await;
        answer.expect_error(400, "INVALID_PAGE_TOKEN");
    }
    let foreign = other
        .get(&format!("/v1/webhooks?next_page_token={token}"))
        .await;
    foreign.expect_error(400, "INVALID_PAGE_TOKEN");

    // A token of another list is refused too.
    org.post("/v1/flows", json!({"name": "one"}))
        .await
        .expect(201);
    org.post("/v1/flows", json!({"name": "two"}))
        .await
        .expect(201);
    let flows = org.get("/v1/flows?page_size=1").await;
    let flow_token = flows.expect(200)["next_page_token"].as_str().unwrap();
    let crossed = org
        .get(&format!("/v1/webhooks?next_page_token={flow_token}"))
        .await;
    crossed.expect_error(400, "INVALID_PAGE_TOKEN");
}

// --- Changes and deletion --------------------------------------------------------------------

async fn put_changes_only_the_fields_it_names(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let created = org
        .post(
            "/v1/webhooks",
            json!({"url": QUIET_URL, "events": ["callback.dispatch"], "description": "first"}),
        )
        .await
        .expect(201)
        .clone();
    let path = format!("/v1/webhooks/{}", id_of(&created));

    let described = org.put(&path, json!({"description": "second"})).await;
    let body = described.expect(200);
    assert_eq!(body["description"], "second");
    assert_eq!(body["url"], QUIET_URL);
    assert_eq!(body["events"], json!(["callback.dispatch"]));
    assert_eq!(body["status"], "active");
    assert_eq!(body["created_at"], created["created_at"]);
    assert!(is_timestamp(&body["updated_at"]));
    assert!(body["updated_at"].as_str() >= created["updated_at"].as_str());
    assert!(
        body.get("secret").is_none(),
        "the secret is shown only once"
    );
    assert!(described.header("etag").is_some());

    let moved = org
        .put(&path, json!({"url": "https://agents.example.com/v2/hook"}))
        .await;
    let body = moved.expect(200);
    assert_eq!(body["url"], "https://agents.example.com/v2/hook");
    assert_eq!(body["description"], "second");

    let resubscribed = org
        .put(
            &path,
            json!({"events": ["flow.published", "callback.failed"]}),
        )
        .await;
    let body = resubscribed.expect(200);
    assert_eq!(
        sorted(&body["events"]),
        ["callback.failed", "flow.published"]
    );
    assert_eq!(body["url"], "https://agents.example.com/v2/hook");

    let disabled = org.put(&path, json!({"status": "disabled"})).await;
    assert_eq!(disabled.expect(200)["status"], "disabled");

    let cleared = org.put(&path, json!({"description": null})).await;
    assert_eq!(cleared.expect(200)["description"], Value::Null);

    let now = org.get(&path).await;
    let body = now.expect(200);
    assert_eq!(body["url"], "https://agents.example.com/v2/hook");
    assert_eq!(
        sorted(&body["events"]),
        ["callback.failed", "flow.published"]
    );
    assert_eq!(body["status"], "disabled");
    assert_eq!(body["description"], Value::Null);
    assert_eq!(body["created_at"], created["created_at"]);
}

async fn put_with_a_stale_if_match_is_412(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let created = register(&org, QUIET_URL, &["callback.dispatch"]).await;
    let path = format!("/v1/webhooks/{}", id_of(&created));
    let read = org.get(&path).await;
    let etag = read.header("etag").expect("an ETag").to_owned();

    let first = org
        .call(Method::PUT, &path)
        .header("if-match", &etag)
        .json(&json!({"description": "mine"}))
        .send()
        .await;
    first.expect(200);
    let fresh = first.header("etag").expect("an ETag").to_owned();
    assert_ne!(fresh, etag, "a change changes the ETag");
    assert_eq!(org.get(&path).await.header("etag"), Some(fresh.as_str()));

    let stale = org
        .call(Method::PUT, &path)
        .header("if-match", &etag)
        .json(&json!({"description": "theirs"}))
        .send()
        .await;
    stale.expect_error(412, "PRECONDITION_FAILED");
    assert_eq!(org.get(&path).await.body["description"], "mine");
}

async fn the_etag_of_the_create_is_a_valid_if_match(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let created = org
        .post(
            "/v1/webhooks",
            json!({"url": QUIET_URL, "events": ["callback.dispatch"]}),
        )
        .await;
    let etag = created.header("etag").expect("an ETag").to_owned();
    let path = format!("/v1/webhooks/{}", id_of(&created.body));
    let changed = org
        .call(Method::PUT, &path)
        .header("if-match", &etag)
        .json(&json!({"description": "right after creating it"}))
        .send()
        .await;
    assert_eq!(
        changed.expect(200)["description"],
        "right after creating it"
    );
}

async fn delete_answers_a_message_then_the_endpoint_is_gone(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let created = register(&org, QUIET_URL, &["callback.dispatch"]).await;
    let kept = register(&org, QUIET_URL, &["callback.dispatch"]).await;
    let path = format!("/v1/webhooks/{}", id_of(&created));

    let deleted = org.delete(&path).await;
    let body = deleted.expect(200);
    assert_eq!(keys(body), HashSet::from(["message"]));
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));

    org.get(&path).await.expect_error(404, "NOT_FOUND");
    org.delete(&path).await.expect_error(404, "NOT_FOUND");
    org.put(&path, json!({"description": "back?"}))
        .await
        .expect_error(404, "NOT_FOUND");
    let listed: Vec<String> = all_endpoints(&org)
        .await
        .iter()
        .map(|e| id_of(e).to_owned())
        .collect();
    assert_eq!(listed, [id_of(&kept)]);
}

// --- Who receives what -------------------------------------------------------------------------

async fn disabled_endpoints_receive_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let (active, switched_off, born_off) = (
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    );
    register(&org, &active.url, &["flow.published"]).await;
    let off = register(&org, &switched_off.url, &["flow.published"]).await;
    org.put(
        &format!("/v1/webhooks/{}", id_of(&off)),
        json!({"status": "disabled"}),
    )
    .await
    .expect(200);
    org.post(
        "/v1/webhooks",
        json!({"url": born_off.url, "events": ["flow.published"], "status": "disabled"}),
    )
    .await
    .expect(201);

    let slug = publishable_flow(&org).await;
    publish(&org, &slug).await;
    let delivered = active
        .wait_for("flow.published", 1, Duration::from_secs(10))
        .await;
    assert_eq!(delivered.len(), 1);
    // The event went to every subscriber at once, before the active one had it: no
    // straggler can come later.
    assert!(switched_off.deliveries().is_empty());
    assert!(born_off.deliveries().is_empty());
}

async fn endpoints_receive_only_the_events_they_subscribed_to(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let (scheduling, publishing) = (Receiver::start().await, Receiver::start().await);
    register(&org, &scheduling.url, &["callback.scheduled"]).await;
    register(&org, &publishing.url, &["flow.published"]).await;

    let slug = publishable_flow(&org).await;
    publish(&org, &slug).await;
    let published = publishing
        .wait_for("flow.published", 1, Duration::from_secs(10))
        .await;
    assert_eq!(published.len(), 1);

    let in_an_hour = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1);
    let callback = org
        .post(
            "/v1/callbacks",
            json!({
                "flow": slug,
                "to_number": "+14155550123",
                "scheduled_at": in_an_hour.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            }),
        )
        .await;
    callback.expect(201);
    let scheduled = scheduling
        .wait_for("callback.scheduled", 1, Duration::from_secs(10))
        .await;
    assert_eq!(scheduled.len(), 1);
    assert_eq!(
        scheduled[0].json["data"]["callback"]["id"],
        callback.body["id"]
    );

    // Each event went to all its subscribers at once, and both have arrived where they were
    // due: anything misrouted would have arrived with them.
    let types = |r: &Receiver| -> Vec<String> {
        r.deliveries()
            .iter()
            .map(|d| d.event_type().to_owned())
            .collect()
    };
    assert_eq!(types(&scheduling), ["callback.scheduled"]);
    assert_eq!(types(&publishing), ["flow.published"]);
}

// --- Validation --------------------------------------------------------------------------------

/// Posts `body` and asserts a 400 `VALIDATION_ERROR` naming exactly `fields` (in any order).
async fn refused(org: &Org, body: Value, fields: &[&str]) {
    let answer = org.post("/v1/webhooks", body.clone()).await;
    answer.expect_error(400, "VALIDATION_ERROR");
    let mut named = answer.detail_fields();
    named.sort();
    let mut expected: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
    expected.sort();
    assert_eq!(named, expected, "for {body}: {}", answer.text);
}

async fn create_without_url_names_url(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    refused(&org, json!({"events": ["callback.dispatch"]}), &["url"]).await;
    refused(
        &org,
        json!({"url": null, "events": ["callback.dispatch"]}),
        &["url"],
    )
    .await;
    assert!(all_endpoints(&org).await.is_empty());
}

async fn create_with_a_url_that_is_not_a_url_names_url(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    for url in [
        "not a url",
        "/v1/relative",
        "hooks.example.com/x",
        "https://",
        "",
    ] {
        refused(
            &org,
            json!({"url": url, "events": ["callback.dispatch"]}),
            &["url"],
        )
        .await;
    }
}

async fn create_with_a_scheme_other_than_https_names_url(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    for url in [
        "ftp://hooks.example.com/x",
        "file:///etc/passwd",
        "ws://hooks.example.com/x",
        "gopher://hooks.example.com/x",
    ] {
        refused(
            &org,
            json!({"url": url, "events": ["callback.dispatch"]}),
            &["url"],
        )
        .await;
    }
}

async fn create_without_events_names_events(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    refused(&org, json!({"url": QUIET_URL}), &["events"]).await;
    refused(&org, json!({"url": QUIET_URL, "events": []}), &["events"]).await;
    refused(&org, json!({"url": QUIET_URL, "events": null}), &["events"]).await;
}

async fn create_with_an_unknown_event_names_events(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let answer = org
        .post(
            "/v1/webhooks",
            json!({"url": QUIET_URL, "events": ["callback.dispatch", "callback.exploded"]}),
        )
        .await;
    answer.expect_error(400, "VALIDATION_ERROR");
    assert_eq!(answer.detail_fields(), ["events"]);
    // The message tells which names exist.
    assert!(answer.text.contains("flow.published"), "{}", answer.text);
    refused(
        &org,
        json!({"url": QUIET_URL, "events": ["Callback.Dispatch"]}),
        &["events"],
    )
    .await;
}

async fn create_with_an_unknown_field_names_it(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    refused(
        &org,
        json!({"url": QUIET_URL, "events": ["callback.dispatch"], "colour": "red"}),
        &["colour"],
    )
    .await;
}

async fn create_with_read_only_fields_names_them(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let chosen = format!("whsec_{}", STANDARD.encode([1u8; 32]));
    refused(
        &org,
        json!({"url": QUIET_URL, "events": ["callback.dispatch"], "secret": chosen, "id": "we_00000000000000000000000"}),
        &["secret", "id"],
    )
    .await;
}

async fn create_with_wrong_types_names_every_field(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    refused(
        &org,
        json!({"url": 5, "events": "flow.published", "status": "paused", "description": 7}),
        &["url", "events", "status", "description"],
    )
    .await;
    refused(
        &org,
        json!({"url": [QUIET_URL], "events": [1], "status": true, "description": {"a": 1}}),
        &["url", "events", "status", "description"],
    )
    .await;
}

async fn put_with_invalid_fields_names_them_and_changes_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let created = register(&org, QUIET_URL, &["callback.dispatch"]).await;
    let path = format!("/v1/webhooks/{}", id_of(&created));
    let before = org.get(&path).await.body;

    let answer = org
        .put(
            &path,
            json!({"url": "ftp://x.example.com", "events": [], "status": "on", "secret": "whsec_x", "extra": 1}),
        )
        .await;
    answer.expect_error(400, "VALIDATION_ERROR");
    let mut named = answer.detail_fields();
    named.sort();
    assert_eq!(named, ["events", "extra", "secret", "status", "url"]);
    assert_eq!(org.get(&path).await.body, before);
}

async fn put_refuses_null_for_url_events_and_status(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let created = register(&org, QUIET_URL, &["callback.dispatch"]).await;
    let path = format!("/v1/webhooks/{}", id_of(&created));
    let before = org.get(&path).await.body;
    for field in ["url", "events", "status"] {
        let answer = org.put(&path, json!({ field: null })).await;
        answer.expect_error(400, "VALIDATION_ERROR");
        assert_eq!(answer.detail_fields(), [field]);
    }
    assert_eq!(org.get(&path).await.body, before);
}

async fn unknown_query_parameters_are_refused_on_every_webhook_route(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let created = register(&org, QUIET_URL, &["callback.dispatch"]).await;
    let path = format!("/v1/webhooks/{}?dry_run=true", id_of(&created));
    let body = json!({"url": QUIET_URL, "events": ["callback.dispatch"]});
    for (method, path) in [
        (Method::POST, "/v1/webhooks?dry_run=true"),
        (Method::GET, "/v1/webhooks?dry_run=true"),
        (Method::GET, path.as_str()),
        (Method::PUT, path.as_str()),
        (Method::DELETE, path.as_str()),
    ] {
        let mut call = org.call(method.clone(), path);
        if method == Method::POST || method == Method::PUT {
            call = call.json(&body);
        }
        let answer = call.send().await;
        answer.expect_error(400, "VALIDATION_ERROR");
        assert_eq!(answer.detail_fields(), ["dry_run"], "{method} {path}");
    }
    assert_eq!(
        all_endpoints(&org).await.len(),
        1,
        "nothing created or deleted"
    );
}

// --- Idempotency -------------------------------------------------------------------------------

async fn idempotent_create_replays_the_same_endpoint(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let body = json!({"url": QUIET_URL, "events": ["callback.dispatch"], "description": "once"});
    let send = || {
        org.call(Method::POST, "/v1/webhooks")
            .header("idempotency-key", "register-agent-runtime-1")
            .json(&body)
            .send()
    };
    let first = send().await;
    first.expect(201);
    assert_eq!(first.header("idempotent-replayed"), None);

    let again = send().await;
    again.expect(201);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    // The first answer again, secret included: a client whose first answer was lost still
    // learns the secret that signs its deliveries.
    assert_eq!(again.body, first.body);

    assert_eq!(all_endpoints(&org).await.len(), 1, "nothing created twice");
}

async fn idempotency_key_with_another_body_is_409(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let send = |description: &'static str| {
        org.call(Method::POST, "/v1/webhooks")
            .header("idempotency-key", "k-1")
            .json(&json!({"url": QUIET_URL, "events": ["callback.dispatch"], "description": description}))
            .send()
    };
    send("first").await.expect(201);
    send("second")
        .await
        .expect_error(409, "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(all_endpoints(&org).await.len(), 1);
}

// --- Tenancy and keys --------------------------------------------------------------------------

async fn another_organizations_endpoint_is_not_found(backend: Backend) {
    let server = TestServer::start(backend).await;
    let owner = server.org().await;
    let stranger = server.org().await;
    let created = register(&owner, QUIET_URL, &["callback.dispatch"]).await;
    let path = format!("/v1/webhooks/{}", id_of(&created));
    let before = owner.get(&path).await.body;

    let missing = stranger.get("/v1/webhooks/we_0000000000000000000000").await;
    missing.expect_error(404, "NOT_FOUND");
    for answer in [
        stranger.get(&path).await,
        stranger.public(Method::GET, &path).send().await,
        stranger
            .put(&path, json!({"description": "mine now"}))
            .await,
        stranger.delete(&path).await,
    ] {
        answer.expect_error(404, "NOT_FOUND");
        assert_eq!(
            answer.body["error"], missing.body["error"],
            "exactly as a missing one"
        );
    }
    assert!(all_endpoints(&stranger).await.is_empty());
    assert_eq!(owner.get(&path).await.body, before);
}

async fn public_keys_can_read_but_not_write(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let created = register(&org, QUIET_URL, &["callback.dispatch"]).await;
    let path = format!("/v1/webhooks/{}", id_of(&created));

    let create = org
        .public(Method::POST, "/v1/webhooks")
        .json(&json!({"url": QUIET_URL, "events": ["callback.dispatch"]}))
        .send()
        .await;
    create.expect_error(403, "FORBIDDEN");
    let update = org
        .public(Method::PUT, &path)
        .json(&json!({"status": "disabled"}))
        .send()
        .await;
    update.expect_error(403, "FORBIDDEN");
    org.public(Method::DELETE, &path)
        .send()
        .await
        .expect_error(403, "FORBIDDEN");

    let one = org.public(Method::GET, &path).send().await;
    assert_eq!(one.expect(200)["status"], "active");
    let list = org.public(Method::GET, "/v1/webhooks").send().await;
    assert_eq!(list.expect(200)["webhooks"].as_array().unwrap().len(), 1);
}

// --- The SSRF guard at registration ------------------------------------------------------------

async fn without_private_targets_internal_urls_are_refused(backend: Backend) {
    let server = TestServer::start_with(backend, false).await;
    let org = server.org().await;
    for url in [
        "http://93.184.216.34/hook",
        "http://hooks.example.com/hook",
        "https://127.0.0.1/hook",
        "https://127.0.0.1:8443/hook",
        "https://localhost/hook",
        "https://[::1]/hook",
        "https://10.0.0.1/hook",
        "https://192.168.1.20/hook",
        "https://172.16.0.1/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[fd00:ec2::254]/latest/meta-data/",
        "https://[::ffff:127.0.0.1]/hook",
        "https://0.0.0.0/hook",
        "https://2130706433/hook",
    ] {
        refused(
            &org,
            json!({"url": url, "events": ["callback.dispatch"]}),
            &["url"],
        )
        .await;
    }
    assert!(all_endpoints(&org).await.is_empty());
}

async fn without_private_targets_a_public_address_is_accepted(backend: Backend) {
    let server = TestServer::start_with(backend, false).await;
    let org = server.org().await;
    // A literal public address needs no DNS. Nothing is published here, so nothing is sent.
    let created = register(&org, "https://93.184.216.34/hook", &["callback.dispatch"]).await;
    assert_eq!(created["url"], "https://93.184.216.34/hook");
}

async fn without_private_targets_updates_to_internal_urls_are_refused(backend: Backend) {
    let server = TestServer::start_with(backend, false).await;
    let org = server.org().await;
    let created = register(&org, "https://93.184.216.34/hook", &["callback.dispatch"]).await;
    let path = format!("/v1/webhooks/{}", id_of(&created));
    for url in [
        "https://169.254.169.254/latest/meta-data/",
        "http://93.184.216.34/hook",
    ] {
        let answer = org.put(&path, json!({"url": url})).await;
        answer.expect_error(400, "VALIDATION_ERROR");
        assert_eq!(answer.detail_fields(), ["url"]);
    }
    assert_eq!(
        org.get(&path).await.body["url"],
        "https://93.184.216.34/hook"
    );
}
