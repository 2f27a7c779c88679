//! The do-not-call list as a customer meets it over HTTP (SPEC §7): suppressing a number,
//! reading, listing and deleting it, replacing it, expiry (on the suppression's own clock, which
//! the tests move), tenancy, validation and keys. Every test runs on every store.

mod common;

use std::collections::HashSet;

use common::{Backend, Org, TestServer};
use flowline_core::time::{Clock, format_timestamp};
use jiff::{SignedDuration, Timestamp};
use reqwest::Method;
use serde_json::{Value, json};

on_every_store!(
    put_answers_the_suppression_and_get_shows_it,
    a_literal_plus_in_the_path_is_the_same_number,
    put_without_a_body_suppresses_for_good_without_a_reason,
    a_replace_keeps_created_at_and_source_and_replaces_reason_and_expiry,
    a_suppression_ends_at_its_expires_at,
    a_put_over_an_expired_suppression_starts_anew,
    list_is_in_number_order_and_pages_to_the_end,
    list_leaves_out_expired_suppressions,
    a_long_run_of_expired_suppressions_ends_a_page_early_with_a_token,
    list_limit_is_1_to_100_and_bad_tokens_are_invalid_page_token,
    delete_answers_a_message_then_the_number_is_not_suppressed,
    another_organization_can_neither_see_nor_delete_a_suppression,
    numbers_that_are_not_e164_are_400_naming_number_on_every_route,
    bad_bodies_are_400_naming_every_field_and_suppress_nothing,
    a_reason_takes_500_characters_and_refuses_501,
    bodies_that_are_not_json_objects_are_refused,
    public_keys_can_read_but_not_write,
    put_honours_if_match,
    unknown_query_parameters_are_refused_on_every_suppression_route,
);

const NUMBER: &str = "+15551234567";
const PATH: &str = "/v1/suppressions/%2B15551234567";

fn path_of(number: &str) -> String {
    format!("/v1/suppressions/{}", number.replace('+', "%2B"))
}

fn keys(value: &Value) -> HashSet<&str> {
    value
        .as_object()
        .map(|object| object.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

fn timestamp(value: &Value) -> Timestamp {
    value
        .as_str()
        .filter(|text| text.ends_with('Z'))
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| panic!("{value} is an RFC 3339 timestamp in UTC"))
}

/// `at` as a request gives it, to the second.
fn text_of(at: Timestamp) -> String {
    format_timestamp(at)
}

fn numbers(page: &Value) -> Vec<String> {
    page["suppressions"]
        .as_array()
        .expect("suppressions")
        .iter()
        .map(|s| s["number"].as_str().expect("a number").to_owned())
        .collect()
}

async fn suppress(org: &Org, number: &str, body: Value) -> Value {
    org.put(&path_of(number), body).await.expect(200).clone()
}

/// Every page of the list at `limit`, and how many pages it took.
async fn every_page(org: &Org, limit: u32) -> (Vec<String>, usize) {
    let mut listed = Vec::new();
    let mut pages = 0;
    let mut token: Option<String> = None;
    loop {
        let mut path = format!("/v1/suppressions?limit={limit}");
        if let Some(token) = &token {
            path.push_str(&format!("&next_page_token={token}"));
        }
        let answer = org.get(&path).await;
        let page = answer.expect(200);
        pages += 1;
        listed.extend(numbers(page));
        match page.get("next_page_token") {
            Some(next) => token = Some(next.as_str().expect("a token").to_owned()),
            None => return (listed, pages),
        }
        assert!(pages < 100, "the list ends");
    }
}

// --- Suppressing, reading, replacing ------------------------------------------------------------

async fn put_answers_the_suppression_and_get_shows_it(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let expires = server.clock.now() + SignedDuration::from_hours(24 * 30);
    let before = server.clock.now();
    let answer = org
        .put(
            PATH,
            json!({"reason": "Asked not to be called", "expires_at": text_of(expires)}),
        )
        .await;
    let body = answer.expect(200).clone();
    assert_eq!(
        keys(&body),
        HashSet::from(["number", "reason", "source", "created_at", "expires_at"]),
        "{body}"
    );
    assert_eq!(body["number"], NUMBER);
    assert_eq!(body["reason"], "Asked not to be called");
    assert_eq!(body["source"], "api");
    let created = timestamp(&body["created_at"]);
    assert!(created >= before - SignedDuration::from_millis(1) && created <= server.clock.now());
    assert_eq!(body["expires_at"], text_of(expires).as_str());
    let etag = answer.header("etag").expect("an ETag").to_owned();

    let got = org.get(PATH).await;
    assert_eq!(got.expect(200), &body);
    assert_eq!(got.header("etag"), Some(etag.as_str()));
    let public = org.public(Method::GET, PATH).send().await;
    assert_eq!(public.expect(200), &body, "public keys read it too");
}

async fn a_literal_plus_in_the_path_is_the_same_number(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let body = org
        .put("/v1/suppressions/+15551234567", json!({"reason": "plus"}))
        .await
        .expect(200)
        .clone();
    assert_eq!(body["number"], NUMBER);
    assert_eq!(org.get(PATH).await.expect(200), &body);
    assert_eq!(
        org.get("/v1/suppressions/%2b15551234567").await.expect(200),
        &body,
        "a lower-case escape too"
    );
    let listed = org.get("/v1/suppressions").await;
    assert_eq!(numbers(listed.expect(200)), [NUMBER], "one number, once");
}

async fn put_without_a_body_suppresses_for_good_without_a_reason(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let answer = org.call(Method::PUT, PATH).send().await;
    let body = answer.expect(200);
    assert_eq!(body["reason"], Value::Null);
    assert_eq!(body["expires_at"], Value::Null);
    server.clock.advance(SignedDuration::from_hours(24 * 3650));
    org.get(PATH).await.expect(200);
}

async fn a_replace_keeps_created_at_and_source_and_replaces_reason_and_expiry(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let expires = server.clock.now() + SignedDuration::from_hours(1);
    let first = suppress(
        &org,
        NUMBER,
        json!({"reason": "first", "expires_at": text_of(expires)}),
    )
    .await;
    server.clock.advance(SignedDuration::from_mins(10));

    let second = suppress(&org, NUMBER, json!({"reason": "second"})).await;
    assert_eq!(
        second["created_at"], first["created_at"],
        "suppressed since"
    );
    assert_eq!(second["source"], "api");
    assert_eq!(second["reason"], "second");
    assert_eq!(
        second["expires_at"],
        Value::Null,
        "left out of the PUT: gone"
    );
    server.clock.advance(SignedDuration::from_hours(2));
    assert_eq!(
        org.get(PATH).await.expect(200),
        &second,
        "the first expiry no longer holds"
    );

    let third = suppress(&org, NUMBER, json!({})).await;
    assert_eq!(
        third["reason"],
        Value::Null,
        "a PUT replaces, it does not merge"
    );
    assert_eq!(third["created_at"], first["created_at"]);
}

async fn a_suppression_ends_at_its_expires_at(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let expires =
        Timestamp::from_second((server.clock.now() + SignedDuration::from_hours(1)).as_second())
            .unwrap();
    suppress(&org, NUMBER, json!({"expires_at": text_of(expires)})).await;

    server
        .clock
        .freeze_at(expires - SignedDuration::from_millis(1));
    org.get(PATH).await.expect(200);
    server.clock.resume();
    server.clock.advance_to(expires);
    org.get(PATH).await.expect_error(404, "NOT_FOUND");
    let listed = org.get("/v1/suppressions").await;
    assert!(
        numbers(listed.expect(200)).is_empty(),
        "left out of the list"
    );
    org.delete(PATH).await.expect_error(404, "NOT_FOUND");
    let in_force =
        flowline_core::suppressions::in_force(&server.app, &org.id, NUMBER, server.clock.now())
            .await
            .unwrap();
    assert_eq!(in_force, None, "the check that callbacks make agrees");
}

async fn a_put_over_an_expired_suppression_starts_anew(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let expires = server.clock.now() + SignedDuration::from_mins(5);
    let first = suppress(&org, NUMBER, json!({"expires_at": text_of(expires)})).await;
    server.clock.advance(SignedDuration::from_hours(1));
    let again = suppress(&org, NUMBER, json!({"reason": "again"})).await;
    assert!(
        timestamp(&again["created_at"])
            > timestamp(&first["created_at"]) + SignedDuration::from_mins(59),
        "{again}"
    );
    assert_eq!(again["expires_at"], Value::Null);
    assert_eq!(org.get(PATH).await.expect(200), &again);
}

// --- Listing ------------------------------------------------------------------------------------

async fn list_is_in_number_order_and_pages_to_the_end(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let mut suppressed = vec![
        "+447700900123",
        "+15551234567",
        "+33612345678",
        "+14155550123",
        "+819012345678",
    ];
    for number in &suppressed {
        suppress(&org, number, json!({})).await;
    }
    suppressed.sort_unstable();

    let (listed, pages) = every_page(&org, 2).await;
    assert_eq!(listed, suppressed);
    assert_eq!(pages, 3, "2 + 2 + 1, no empty page at the end");
    let (listed, pages) = every_page(&org, 5).await;
    assert_eq!(
        (listed.len(), pages),
        (5, 1),
        "a token only when more exist"
    );
    let first = org.get("/v1/suppressions").await;
    let first = first.expect(200);
    assert_eq!(numbers(first), suppressed, "25 by default");
    assert!(first.get("next_page_token").is_none());
    assert_eq!(first["suppressions"][0]["source"], "api");
}

async fn list_leaves_out_expired_suppressions(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let soon = text_of(server.clock.now() + SignedDuration::from_mins(5));
    for (number, body) in [
        ("+15550000001", json!({})),
        ("+15550000002", json!({"expires_at": soon})),
        ("+15550000003", json!({})),
        ("+15550000004", json!({"expires_at": soon})),
        (
            "+15550000005",
            json!({"reason": "later", "expires_at": text_of(server.clock.now() + SignedDuration::from_hours(5))}),
        ),
    ] {
        suppress(&org, number, body).await;
    }
    let (listed, _) = every_page(&org, 100).await;
    assert_eq!(listed.len(), 5);
    server.clock.advance(SignedDuration::from_mins(5));
    for limit in [1, 2, 100] {
        let (listed, _) = every_page(&org, limit).await;
        assert_eq!(
            listed,
            ["+15550000001", "+15550000003", "+15550000005"],
            "limit {limit}"
        );
    }
}

async fn a_long_run_of_expired_suppressions_ends_a_page_early_with_a_token(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let soon = text_of(server.clock.now() + SignedDuration::from_mins(1));
    for n in 0..12 {
        suppress(
            &org,
            &format!("+155500000{n:02}"),
            json!({"expires_at": soon}),
        )
        .await;
    }
    suppress(&org, "+15550000099", json!({})).await;
    server.clock.advance(SignedDuration::from_mins(1));

    // A page of 1 reads 2 items a Query, 4 Queries at most: 8 of the 12 expired ones, then
    // the page ends, empty, with a token to go on from there.
    let first = org.get("/v1/suppressions?limit=1").await;
    let first = first.expect(200);
    assert!(numbers(first).is_empty(), "{first}");
    let token = first["next_page_token"].as_str().expect("a token");
    let second = org
        .get(&format!("/v1/suppressions?limit=1&next_page_token={token}"))
        .await;
    let second = second.expect(200);
    assert_eq!(numbers(second), ["+15550000099"]);
    assert!(second.get("next_page_token").is_none(), "{second}");
    let (listed, _) = every_page(&org, 25).await;
    assert_eq!(listed, ["+15550000099"]);
}

async fn list_limit_is_1_to_100_and_bad_tokens_are_invalid_page_token(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    for limit in ["0", "101", "x", "-1"] {
        let answer = org.get(&format!("/v1/suppressions?limit={limit}")).await;
        answer.expect_error(400, "VALIDATION_ERROR");
        assert_eq!(answer.detail_fields(), ["limit"], "{limit}");
    }
    org.get("/v1/suppressions?limit=100").await.expect(200);
    org.get("/v1/suppressions?next_page_token=garbage")
        .await
        .expect_error(400, "INVALID_PAGE_TOKEN");

    // A token of another list, and one of another organization.
    for number in ["+15550000001", "+15550000002"] {
        suppress(&org, number, json!({})).await;
    }
    let page = org.get("/v1/suppressions?limit=1").await;
    let token = page.expect(200)["next_page_token"]
        .as_str()
        .expect("a token")
        .to_owned();
    let other = server.org().await;
    let answer = other
        .get(&format!("/v1/suppressions?next_page_token={token}"))
        .await;
    answer.expect_error(400, "INVALID_PAGE_TOKEN");
    assert!(
        answer.text.contains("another organization"),
        "{}",
        answer.text
    );
    org.post(
        "/v1/webhooks",
        json!({"url": "https://hooks.example.com/a", "events": ["callback.dispatch"]}),
    )
    .await
    .expect(201);
    org.post(
        "/v1/webhooks",
        json!({"url": "https://hooks.example.com/b", "events": ["callback.dispatch"]}),
    )
    .await
    .expect(201);
    let webhooks = org.get("/v1/webhooks?limit=1").await;
    let webhook_token = webhooks.expect(200)["next_page_token"]
        .as_str()
        .expect("a token")
        .to_owned();
    org.get(&format!("/v1/suppressions?next_page_token={webhook_token}"))
        .await
        .expect_error(400, "INVALID_PAGE_TOKEN");
}

// --- Deleting -----------------------------------------------------------------------------------

async fn delete_answers_a_message_then_the_number_is_not_suppressed(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    suppress(&org, NUMBER, json!({"reason": "x"})).await;
    let answer = org.delete(PATH).await;
    let body = answer.expect(200);
    assert_eq!(keys(body), HashSet::from(["message"]));
    assert!(body["message"].as_str().unwrap().contains(NUMBER), "{body}");
    org.get(PATH).await.expect_error(404, "NOT_FOUND");
    let listed = org.get("/v1/suppressions").await;
    assert!(numbers(listed.expect(200)).is_empty());
    org.delete(PATH).await.expect_error(404, "NOT_FOUND");
    org.delete("/v1/suppressions/+15550000000")
        .await
        .expect_error(404, "NOT_FOUND");
}

// --- Tenancy ------------------------------------------------------------------------------------

async fn another_organization_can_neither_see_nor_delete_a_suppression(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let other = server.org().await;
    let mine = suppress(&org, NUMBER, json!({"reason": "mine"})).await;

    other.get(PATH).await.expect_error(404, "NOT_FOUND");
    other.delete(PATH).await.expect_error(404, "NOT_FOUND");
    let listed = other.get("/v1/suppressions").await;
    assert!(numbers(listed.expect(200)).is_empty());
    let in_force =
        flowline_core::suppressions::in_force(&server.app, &other.id, NUMBER, server.clock.now())
            .await
            .unwrap();
    assert_eq!(in_force, None);

    // Its own suppression of the same number is its own.
    let theirs = suppress(&other, NUMBER, json!({"reason": "theirs"})).await;
    assert_eq!(theirs["reason"], "theirs");
    assert_eq!(org.get(PATH).await.expect(200), &mine, "untouched");
    other.delete(PATH).await.expect(200);
    assert_eq!(org.get(PATH).await.expect(200), &mine, "still untouched");
}

// --- Validation ---------------------------------------------------------------------------------

async fn numbers_that_are_not_e164_are_400_naming_number_on_every_route(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    for bad in [
        "15551234567",
        "%2B05551234567",
        "%2B155512",
        "%2B1555123456789012",
        "%2B1555abc4567",
        "%2B1%20555%20123%204567",
        "%2B%2B15551234567",
        "abc",
    ] {
        let path = format!("/v1/suppressions/{bad}");
        for method in [Method::PUT, Method::GET, Method::DELETE] {
            let answer = org
                .call(method.clone(), &path)
                .json(&json!({}))
                .send()
                .await;
            answer.expect_error(400, "VALIDATION_ERROR");
            assert_eq!(answer.detail_fields(), ["number"], "{method} {path}");
        }
    }
    let listed = org.get("/v1/suppressions").await;
    assert!(numbers(listed.expect(200)).is_empty(), "nothing suppressed");
}

async fn bad_bodies_are_400_naming_every_field_and_suppress_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let past = text_of(server.clock.now() - SignedDuration::from_secs(1));
    let now = text_of(server.clock.now());
    for (body, fields) in [
        (json!({"reason": 5}), vec!["reason"]),
        (json!({"expires_at": "soon"}), vec!["expires_at"]),
        (json!({"expires_at": 1795270630}), vec!["expires_at"]),
        (json!({"expires_at": past}), vec!["expires_at"]),
        (json!({"expires_at": "2026-11-21"}), vec!["expires_at"]),
        (json!({"surprise": 1}), vec!["surprise"]),
        (
            json!({"number": NUMBER, "source": "api", "created_at": now}),
            vec!["number", "source", "created_at"],
        ),
        (
            json!({"reason": ["x"], "expires_at": false, "extra": null}),
            vec!["reason", "expires_at", "extra"],
        ),
    ] {
        let answer = org.put(PATH, body.clone()).await;
        answer.expect_error(400, "VALIDATION_ERROR");
        let mut named = answer.detail_fields();
        named.sort();
        let mut expected: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
        expected.sort();
        assert_eq!(named, expected, "{body}");
    }
    org.get(PATH).await.expect_error(404, "NOT_FOUND");

    // Over a suppression in force, a bad body changes nothing.
    let kept = suppress(&org, NUMBER, json!({"reason": "kept"})).await;
    org.put(PATH, json!({"reason": "new", "expires_at": past}))
        .await
        .expect_error(400, "VALIDATION_ERROR");
    assert_eq!(org.get(PATH).await.expect(200), &kept);
}

async fn a_reason_takes_500_characters_and_refuses_501(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let reason = "é".repeat(500);
    let body = suppress(&org, NUMBER, json!({"reason": reason})).await;
    assert_eq!(body["reason"], reason.as_str());
    let answer = org.put(PATH, json!({"reason": "x".repeat(501)})).await;
    answer.expect_error(400, "VALIDATION_ERROR");
    assert_eq!(answer.detail_fields(), ["reason"]);
    assert_eq!(org.get(PATH).await.expect(200), &body);
}

async fn bodies_that_are_not_json_objects_are_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    for body in ["{", "[]", "\"x\"", "null"] {
        org.call(Method::PUT, PATH)
            .raw("application/json", body)
            .send()
            .await
            .expect_error(400, "INVALID_JSON");
    }
    org.call(Method::PUT, PATH)
        .raw("text/plain", "{}")
        .send()
        .await
        .expect_error(415, "UNSUPPORTED_MEDIA_TYPE");
    org.get(PATH).await.expect_error(404, "NOT_FOUND");
}

// --- Keys and conditions ------------------------------------------------------------------------

async fn public_keys_can_read_but_not_write(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    org.public(Method::PUT, PATH)
        .json(&json!({"reason": "x"}))
        .send()
        .await
        .expect_error(403, "FORBIDDEN");
    org.get(PATH).await.expect_error(404, "NOT_FOUND");
    suppress(&org, NUMBER, json!({})).await;
    org.public(Method::DELETE, PATH)
        .send()
        .await
        .expect_error(403, "FORBIDDEN");
    org.public(Method::GET, PATH).send().await.expect(200);
    let listed = org.public(Method::GET, "/v1/suppressions").send().await;
    assert_eq!(numbers(listed.expect(200)), [NUMBER]);
    server
        .anonymous(Method::GET, "/v1/suppressions")
        .send()
        .await
        .expect_error(401, "UNAUTHORIZED");
}

async fn put_honours_if_match(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    org.call(Method::PUT, PATH)
        .header("if-match", "\"000000000000000000000000\"")
        .json(&json!({}))
        .send()
        .await
        .expect_error(412, "PRECONDITION_FAILED");
    org.get(PATH).await.expect_error(404, "NOT_FOUND");

    let first = org.put(PATH, json!({"reason": "first"})).await;
    let etag = first.header("etag").expect("an ETag").to_owned();
    let second = org
        .call(Method::PUT, PATH)
        .header("if-match", &etag)
        .json(&json!({"reason": "second"}))
        .send()
        .await;
    assert_eq!(second.expect(200)["reason"], "second");
    org.call(Method::PUT, PATH)
        .header("if-match", &etag)
        .json(&json!({"reason": "stale"}))
        .send()
        .await
        .expect_error(412, "PRECONDITION_FAILED");
    assert_eq!(org.get(PATH).await.expect(200)["reason"], "second");
}

async fn unknown_query_parameters_are_refused_on_every_suppression_route(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    for (method, path) in [
        (Method::GET, "/v1/suppressions?surprise=1"),
        (Method::PUT, "/v1/suppressions/%2B15551234567?surprise=1"),
        (Method::GET, "/v1/suppressions/%2B15551234567?surprise=1"),
        (Method::DELETE, "/v1/suppressions/%2B15551234567?surprise=1"),
    ] {
        let answer = org.call(method.clone(), path).json(&json!({})).send().await;
        answer.expect_error(400, "VALIDATION_ERROR");
        assert_eq!(answer.detail_fields(), ["surprise"], "{method} {path}");
    }
    org.get(PATH).await.expect_error(404, "NOT_FOUND");
}
