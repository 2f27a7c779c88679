//! Trigger URLs (SPEC §3) over HTTP on both stores: managing them with an API key, and calling
//! them without one, in each answer format.

mod common;

use std::time::Duration;

use common::receiver::{Receiver, Reply};
use common::{Answer, Backend, Org, TestServer};
use flowline_core::callbacks::model::FIELDS;
use quick_xml::events::Event;
use reqwest::Method;
use serde_json::{Value, json};

async fn published_flow(org: &Org) -> String {
    let body = json!({"name": "Trigger target", "data": {"say": "hi"}, "entry_points": [{"entry_number": "+15550001111"}]});
    let slug = org.post("/v1/flows", body).await.expect(201)["slug"]
        .as_str()
        .unwrap()
        .to_owned();
    org.post(&format!("/v1/flows/{slug}/publish"), json!({}))
        .await
        .expect(200);
    slug
}

async fn new_trigger(org: &Org, flow: &str, body: Value) -> Value {
    org.post(&format!("/v1/flows/{flow}/callbacks"), body)
        .await
        .expect(201)
        .clone()
}

/// The path and query of a trigger URL (the server's base is the test server's).
fn path_of(url: &str) -> String {
    let start = url.find("/v1/hooks/").expect("a trigger URL");
    url[start..].to_owned()
}

async fn call_trigger(server: &TestServer, url: &str, body: &Value) -> Answer {
    server
        .anonymous(Method::POST, &path_of(url))
        .json(body)
        .send()
        .await
}

fn callback_body() -> Value {
    json!({"to_number": "+15557654321", "reason": "Asked for <a> callback & a follow-up", "metadata": {"crm": {"id": 7}}})
}

/// The elements of an XML document, as (name, text) pairs of the root's children, read with a
/// real XML parser.
fn xml_children(xml: &str) -> (String, Vec<(String, String)>) {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut root = String::new();
    let mut children = Vec::new();
    let mut depth = 0;
    let mut current: Option<(String, String)> = None;
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(start) => {
                depth += 1;
                let name = String::from_utf8(start.name().as_ref().to_vec()).unwrap();
                if depth == 1 {
                    root = name;
                } else if depth == 2 {
                    current = Some((name, String::new()));
                }
            }
            Event::Empty(empty) if depth == 1 => {
                children.push((
                    String::from_utf8(empty.name().as_ref().to_vec()).unwrap(),
                    String::new(),
                ));
            }
            Event::Text(text) if depth == 2 => {
                let decoded = text.decode().unwrap();
                let unescaped = quick_xml::escape::unescape(&decoded).unwrap();
                current.as_mut().unwrap().1.push_str(&unescaped);
            }
            Event::GeneralRef(reference) if depth == 2 => {
                let name = reference.decode().unwrap();
                let text = match name.as_ref() {
                    "lt" => "<".to_owned(),
                    "gt" => ">".to_owned(),
                    "amp" => "&".to_owned(),
                    "quot" => "\"".to_owned(),
                    "apos" => "'".to_owned(),
                    other => {
                        let code = other.strip_prefix('#').unwrap();
                        char::from_u32(code.parse().unwrap()).unwrap().to_string()
                    }
                };
                current.as_mut().unwrap().1.push_str(&text);
            }
            Event::End(_) => {
                if depth == 2 {
                    children.push(current.take().unwrap());
                }
                depth -= 1;
            }
            Event::Eof => break,
            _ => {}
        }
    }
    (root, children)
}

async fn a_new_trigger_shows_its_full_url_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let flow = published_flow(&org).await;
    let created = new_trigger(&org, &flow, json!({"description": "CRM"})).await;
    assert!(created["id"].as_str().unwrap().starts_with("fcb_"));
    assert_eq!(
        (
            created["flow"].as_str().unwrap(),
            created["status"].as_str().unwrap(),
            created["format"].as_str().unwrap()
        ),
        (flow.as_str(), "active", "json")
    );
    let url = created["url"].as_str().unwrap();
    let signature = url.split("signature=").nth(1).unwrap();
    assert!(url.starts_with(&format!(
        "{}/v1/hooks/{}?signature=",
        server.base,
        created["id"].as_str().unwrap()
    )));
    assert!(
        signature.len() >= 43 && signature != "****",
        "32 random bytes"
    );
    assert!(created["last_triggered_at"].is_null());
    let id = created["id"].as_str().unwrap();
    let read = org.get(&format!("/v1/flows/{flow}/callbacks/{id}")).await;
    assert!(
        read.expect(200)["url"]
            .as_str()
            .unwrap()
            .ends_with("?signature=****")
    );
    assert!(read.header("etag").is_some());
    let listed = org
        .get(&format!("/v1/flows/{flow}/callbacks"))
        .await
        .expect(200)
        .clone();
    assert_eq!(listed["callbacks"].as_array().unwrap().len(), 1);
    assert!(
        listed["callbacks"][0]["url"]
            .as_str()
            .unwrap()
            .ends_with("?signature=****")
    );
}

async fn a_json_trigger_schedules_a_callback_that_is_dispatched_like_any_other(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let receiver = Receiver::start().await;
    receiver.default_reply(Reply::session("sess_from_trigger"));
    org.post(
        "/v1/webhooks",
        json!({"url": receiver.url, "events": ["callback.dispatch"]}),
    )
    .await
    .expect(201);
    let flow = published_flow(&org).await;
    let trigger = new_trigger(&org, &flow, json!({})).await;
    let answer = call_trigger(&server, trigger["url"].as_str().unwrap(), &callback_body()).await;
    let callback = answer.expect(201).clone();
    assert!(
        answer
            .header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(callback["flow"], flow);
    assert_eq!(callback["organization_id"], org.id);
    let listed = org
        .get(&format!("/v1/callbacks?flow={flow}"))
        .await
        .expect(200)
        .clone();
    assert_eq!(listed["callbacks"][0]["id"], callback["id"]);
    let deliveries = receiver
        .wait_for("callback.dispatch", 1, Duration::from_secs(10))
        .await;
    assert_eq!(deliveries[0].json["data"]["callback"]["id"], callback["id"]);
    let id = callback["id"].as_str().unwrap();
    let done = common::eventually(
        "the callback is dispatched",
        Duration::from_secs(10),
        || async {
            let body = org
                .get(&format!("/v1/callbacks/{id}"))
                .await
                .expect(200)
                .clone();
            (body["status"] == "dispatched").then_some(body)
        },
    )
    .await;
    assert_eq!(done["created_session_id"], "sess_from_trigger");
    let trigger_id = trigger["id"].as_str().unwrap();
    let read = org
        .get(&format!("/v1/flows/{flow}/callbacks/{trigger_id}"))
        .await
        .expect(200)
        .clone();
    assert!(
        read["last_triggered_at"].is_string(),
        "last_triggered_at is kept up to date"
    );
}

async fn an_xml_trigger_answers_one_escaped_element_per_field(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let flow = published_flow(&org).await;
    let trigger = new_trigger(&org, &flow, json!({"format": "xml"})).await;
    let mut body = callback_body();
    body["scheduled_at"] = "2099-01-01T00:00:00Z".into();
    body["scheduled_at"] = flowline_core::time::format_timestamp(
        jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1),
    )
    .into();
    let answer = call_trigger(&server, trigger["url"].as_str().unwrap(), &body).await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    assert!(
        answer
            .header("content-type")
            .unwrap()
            .starts_with("application/xml")
    );
    let (root, children) = xml_children(&answer.text);
    assert_eq!(root, "callback");
    let names: Vec<&str> = children.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, FIELDS);
    let field = |name: &str| children.iter().find(|(n, _)| n == name).unwrap().1.clone();
    assert_eq!(field("reason"), "Asked for <a> callback & a follow-up");
    assert_eq!(field("metadata"), r#"{"crm":{"id":7}}"#);
    assert_eq!(field("expires_at"), "", "null is an empty element");
    assert_eq!(field("flow_version"), "1");
    assert_eq!(field("status"), "scheduled");
    let id = field("id");
    org.get(&format!("/v1/callbacks/{id}")).await.expect(200);
}

async fn a_txt_trigger_answers_one_line_per_field(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let flow = published_flow(&org).await;
    let trigger = new_trigger(&org, &flow, json!({"format": "txt"})).await;
    let mut body = callback_body();
    body["instructions"] = "Line one\nLine two".into();
    let answer = call_trigger(&server, trigger["url"].as_str().unwrap(), &body).await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    assert!(
        answer
            .header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    assert!(!answer.text.contains('\r'));
    let lines: Vec<&str> = answer.text.lines().collect();
    assert_eq!(lines.len(), FIELDS.len());
    for (line, field) in lines.iter().zip(FIELDS) {
        assert!(line.starts_with(&format!("{field}: ")), "{line}");
    }
    let value = |name: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        value("instructions"),
        r#""Line one\nLine two""#,
        "a value with a newline is a JSON string"
    );
    assert_eq!(value("metadata"), r#"{"crm":{"id":7}}"#);
    assert_eq!(value("cancel_reason"), "", "null is nothing after ': '");
    assert_eq!(value("to_number"), "+15557654321");
}

async fn errors_come_in_the_triggers_format(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let flow = published_flow(&org).await;
    let xml = new_trigger(&org, &flow, json!({"format": "xml"})).await;
    let answer = call_trigger(
        &server,
        xml["url"].as_str().unwrap(),
        &json!({"to_number": "555"}),
    )
    .await;
    assert_eq!(answer.status, 400);
    let (root, children) = xml_children(&answer.text);
    assert_eq!(root, "error");
    assert_eq!(
        children.iter().find(|(n, _)| n == "code").unwrap().1,
        "VALIDATION_ERROR"
    );
    assert!(
        children
            .iter()
            .any(|(n, t)| n == "message" && t.contains("to_number"))
    );

    let txt = new_trigger(&org, &flow, json!({"format": "txt"})).await;
    let answer = call_trigger(
        &server,
        txt["url"].as_str().unwrap(),
        &json!({"flow": flow, "to_number": "+15557654321"}),
    )
    .await;
    assert_eq!(answer.status, 400);
    assert!(answer.text.starts_with("error: "), "{}", answer.text);
    assert!(answer.text.contains("\ncode: VALIDATION_ERROR\n"));
    let malformed = server
        .anonymous(Method::POST, &path_of(txt["url"].as_str().unwrap()))
        .raw("application/json", "{")
        .send()
        .await;
    assert_eq!(malformed.status, 400);
    assert!(malformed.text.contains("code: INVALID_JSON"));
}

async fn wrong_or_missing_signatures_and_unknown_ids_are_the_same_404(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let flow = published_flow(&org).await;
    let trigger = new_trigger(&org, &flow, json!({"format": "xml"})).await;
    let id = trigger["id"].as_str().unwrap();
    let body = callback_body();
    let answers = [
        server
            .anonymous(Method::POST, &format!("/v1/hooks/{id}?signature=wrong"))
            .json(&body)
            .send()
            .await,
        server
            .anonymous(Method::POST, &format!("/v1/hooks/{id}"))
            .json(&body)
            .send()
            .await,
        server
            .anonymous(Method::POST, &format!("/v1/hooks/{id}?signature="))
            .json(&body)
            .send()
            .await,
        server
            .anonymous(
                Method::POST,
                "/v1/hooks/fcb_00000000000000000000000?signature=wrong",
            )
            .json(&body)
            .send()
            .await,
        server
            .anonymous(Method::POST, "/v1/hooks/garbage?signature=wrong")
            .json(&body)
            .send()
            .await,
    ];
    for answer in &answers {
        answer.expect_error(404, "NOT_FOUND");
        assert_eq!(answer.text, answers[0].text, "indistinguishable");
    }
    // An API key does not open a trigger either.
    let keyed = org
        .call(Method::POST, &format!("/v1/hooks/{id}"))
        .json(&body)
        .send()
        .await;
    keyed.expect_error(404, "NOT_FOUND");
    assert!(
        org.get(&format!("/v1/callbacks?flow={flow}"))
            .await
            .expect(200)["callbacks"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

async fn an_inactive_trigger_is_forbidden(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let flow = published_flow(&org).await;
    let trigger = new_trigger(&org, &flow, json!({"status": "inactive", "format": "txt"})).await;
    let answer = call_trigger(&server, trigger["url"].as_str().unwrap(), &callback_body()).await;
    assert_eq!(answer.status, 403);
    assert!(answer.text.contains("code: FORBIDDEN"));
}

async fn rotating_the_signature_kills_the_old_url_at_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let flow = published_flow(&org).await;
    let trigger = new_trigger(&org, &flow, json!({})).await;
    let old_url = trigger["url"].as_str().unwrap();
    let id = trigger["id"].as_str().unwrap();
    let rotated = org
        .put(
            &format!("/v1/flows/{flow}/callbacks/{id}"),
            json!({"rotate_signature": true}),
        )
        .await;
    let new_url = rotated.expect(200)["url"].as_str().unwrap().to_owned();
    assert_ne!(new_url, old_url);
    assert!(
        !new_url.ends_with("****"),
        "the new URL is shown in the rotation's answer"
    );
    call_trigger(&server, old_url, &callback_body())
        .await
        .expect_error(404, "NOT_FOUND");
    call_trigger(&server, &new_url, &callback_body())
        .await
        .expect(201);
    // Other updates keep the signature (and mask it).
    let renamed = org
        .put(
            &format!("/v1/flows/{flow}/callbacks/{id}"),
            json!({"description": "renamed", "format": "txt"}),
        )
        .await;
    let renamed = renamed.expect(200).clone();
    assert!(
        renamed["url"]
            .as_str()
            .unwrap()
            .ends_with("?signature=****")
    );
    assert_eq!(renamed["format"], "txt");
    assert_eq!(
        call_trigger(&server, &new_url, &callback_body())
            .await
            .status,
        201
    );
}

async fn deleting_a_trigger_kills_its_url(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let flow = published_flow(&org).await;
    let trigger = new_trigger(&org, &flow, json!({})).await;
    let id = trigger["id"].as_str().unwrap();
    let deleted = org
        .delete(&format!("/v1/flows/{flow}/callbacks/{id}"))
        .await;
    assert!(deleted.expect(200)["message"].is_string());
    call_trigger(&server, trigger["url"].as_str().unwrap(), &callback_body())
        .await
        .expect_error(404, "NOT_FOUND");
    org.get(&format!("/v1/flows/{flow}/callbacks/{id}"))
        .await
        .expect_error(404, "NOT_FOUND");
    assert!(
        org.get(&format!("/v1/flows/{flow}/callbacks"))
            .await
            .expect(200)["callbacks"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

async fn a_flow_that_cannot_take_callbacks_is_a_conflict(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let draft = org
        .post("/v1/flows", json!({"name": "draft only"}))
        .await
        .expect(201)["slug"]
        .as_str()
        .unwrap()
        .to_owned();
    let unpublished = new_trigger(&org, &draft, json!({"format": "xml"})).await;
    let answer = call_trigger(
        &server,
        unpublished["url"].as_str().unwrap(),
        &callback_body(),
    )
    .await;
    assert_eq!(answer.status, 409);
    assert!(answer.text.contains("<code>CONFLICT</code>"));
    let flow = published_flow(&org).await;
    let trigger = new_trigger(&org, &flow, json!({})).await;
    org.put(&format!("/v1/flows/{flow}"), json!({"active": false}))
        .await
        .expect(200);
    call_trigger(&server, trigger["url"].as_str().unwrap(), &callback_body())
        .await
        .expect_error(409, "CONFLICT");
    org.put(&format!("/v1/flows/{flow}"), json!({"active": true}))
        .await
        .expect(200);
    org.delete(&format!("/v1/flows/{flow}")).await.expect(200);
    call_trigger(&server, trigger["url"].as_str().unwrap(), &callback_body())
        .await
        .expect_error(409, "CONFLICT");
}

async fn an_idempotency_key_on_a_trigger_creates_one_callback(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let flow = published_flow(&org).await;
    let trigger = new_trigger(&org, &flow, json!({})).await;
    let path = path_of(trigger["url"].as_str().unwrap());
    let mut body = callback_body();
    body["scheduled_at"] = flowline_core::time::format_timestamp(
        jiff::Timestamp::now() + jiff::SignedDuration::from_hours(2),
    )
    .into();
    let send = || {
        server
            .anonymous(Method::POST, &path)
            .header("idempotency-key", "crm-event-9")
            .json(&body)
            .send()
    };
    let first = send().await;
    let again = send().await;
    assert_eq!(again.expect(201)["id"], first.expect(201)["id"]);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    let mut other = body.clone();
    other["to_number"] = "+15550002222".into();
    let reused = server
        .anonymous(Method::POST, &path)
        .header("idempotency-key", "crm-event-9")
        .json(&other)
        .send()
        .await;
    reused.expect_error(409, "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(
        org.get(&format!("/v1/callbacks?flow={flow}"))
            .await
            .expect(200)["callbacks"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

async fn managing_triggers_validates_bodies(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let flow = published_flow(&org).await;
    let path = format!("/v1/flows/{flow}/callbacks");
    let bad = org.post(&path, json!({"format": "yaml", "status": "paused", "rotate_signature": true, "url": "x", "colour": 1})).await;
    bad.expect_error(400, "VALIDATION_ERROR");
    let mut fields = bad.detail_fields();
    fields.sort();
    assert_eq!(
        fields,
        ["colour", "format", "rotate_signature", "status", "url"]
    );
    let id = new_trigger(&org, &flow, json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let update = org
        .put(
            &format!("{path}/{id}"),
            json!({"rotate_signature": "yes", "format": null}),
        )
        .await;
    update.expect_error(400, "VALIDATION_ERROR");
    org.post("/v1/flows/flow_AAAAAAAAAAAA/callbacks", json!({}))
        .await
        .expect_error(404, "NOT_FOUND");
    org.get(&format!("{path}?limit=101"))
        .await
        .expect_error(400, "VALIDATION_ERROR");
}

async fn triggers_belong_to_their_organization_and_flow(backend: Backend) {
    let server = TestServer::start(backend).await;
    let owner = server.org().await;
    let stranger = server.org().await;
    let flow = published_flow(&owner).await;
    let other_flow = published_flow(&owner).await;
    let id = new_trigger(&owner, &flow, json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v1/flows/{flow}/callbacks/{id}");
    stranger.get(&path).await.expect_error(404, "NOT_FOUND");
    stranger
        .put(&path, json!({"status": "inactive"}))
        .await
        .expect_error(404, "NOT_FOUND");
    stranger.delete(&path).await.expect_error(404, "NOT_FOUND");
    stranger
        .get(&format!("/v1/flows/{flow}/callbacks"))
        .await
        .expect_error(404, "NOT_FOUND");
    stranger
        .post(&format!("/v1/flows/{flow}/callbacks"), json!({}))
        .await
        .expect_error(404, "NOT_FOUND");
    let stranger_flow = published_flow(&stranger).await;
    stranger
        .get(&format!("/v1/flows/{stranger_flow}/callbacks/{id}"))
        .await
        .expect_error(404, "NOT_FOUND");
    owner
        .get(&format!("/v1/flows/{other_flow}/callbacks/{id}"))
        .await
        .expect_error(404, "NOT_FOUND");
    assert_eq!(owner.get(&path).await.expect(200)["status"], "active");
}

async fn public_keys_read_triggers_but_cannot_manage_them(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let flow = published_flow(&org).await;
    let id = new_trigger(&org, &flow, json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    org.public(Method::GET, &format!("/v1/flows/{flow}/callbacks"))
        .send()
        .await
        .expect(200);
    org.public(Method::GET, &format!("/v1/flows/{flow}/callbacks/{id}"))
        .send()
        .await
        .expect(200);
    org.public(Method::POST, &format!("/v1/flows/{flow}/callbacks"))
        .json(&json!({}))
        .send()
        .await
        .expect_error(403, "FORBIDDEN");
    org.public(Method::PUT, &format!("/v1/flows/{flow}/callbacks/{id}"))
        .json(&json!({}))
        .send()
        .await
        .expect_error(403, "FORBIDDEN");
    org.public(Method::DELETE, &format!("/v1/flows/{flow}/callbacks/{id}"))
        .send()
        .await
        .expect_error(403, "FORBIDDEN");
}

async fn trigger_lists_are_newest_first_and_paginated(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let flow = published_flow(&org).await;
    let mut created = Vec::new();
    for _ in 0..5 {
        created.push(
            new_trigger(&org, &flow, json!({})).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    created.sort_by(|a, b| b.cmp(a));
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let path = match &token {
            Some(token) => format!("/v1/flows/{flow}/callbacks?limit=2&next_page_token={token}"),
            None => format!("/v1/flows/{flow}/callbacks?limit=2"),
        };
        let page = org.get(&path).await.expect(200).clone();
        seen.extend(
            page["callbacks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_owned()),
        );
        match page["next_page_token"].as_str() {
            Some(next) => token = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, created);
}

async fn the_create_answers_etag_is_the_triggers_etag(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let flow = published_flow(&org).await;
    let created = org
        .post(&format!("/v1/flows/{flow}/callbacks"), json!({}))
        .await;
    let id = created.expect(201)["id"].as_str().unwrap().to_owned();
    let etag = created.header("etag").unwrap().to_owned();
    let path = format!("/v1/flows/{flow}/callbacks/{id}");
    assert_eq!(org.get(&path).await.header("etag"), Some(etag.as_str()));
    let updated = org
        .call(Method::PUT, &path)
        .header("if-match", &etag)
        .json(&json!({"description": "x"}))
        .send()
        .await;
    updated.expect(200);
    let stale = org
        .call(Method::PUT, &path)
        .header("if-match", &etag)
        .json(&json!({"description": "y"}))
        .send()
        .await;
    stale.expect_error(412, "PRECONDITION_FAILED");
}

async fn an_idempotency_key_is_scoped_to_the_flow(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let first_flow = published_flow(&org).await;
    let second_flow = published_flow(&org).await;
    let create = |flow: String| {
        org.call(Method::POST, &format!("/v1/flows/{flow}/callbacks"))
            .header("idempotency-key", "setup")
            .json(&json!({}))
            .send()
    };
    let first = create(first_flow.clone()).await.expect(201).clone();
    let second = create(second_flow.clone()).await.expect(201).clone();
    assert_ne!(first["id"], second["id"]);
    assert_eq!(second["flow"], second_flow);
}

on_every_store!(
    an_idempotency_key_is_scoped_to_the_flow,
    the_create_answers_etag_is_the_triggers_etag,
    a_new_trigger_shows_its_full_url_once,
    a_json_trigger_schedules_a_callback_that_is_dispatched_like_any_other,
    an_xml_trigger_answers_one_escaped_element_per_field,
    a_txt_trigger_answers_one_line_per_field,
    errors_come_in_the_triggers_format,
    wrong_or_missing_signatures_and_unknown_ids_are_the_same_404,
    an_inactive_trigger_is_forbidden,
    rotating_the_signature_kills_the_old_url_at_once,
    deleting_a_trigger_kills_its_url,
    a_flow_that_cannot_take_callbacks_is_a_conflict,
    an_idempotency_key_on_a_trigger_creates_one_callback,
    managing_triggers_validates_bodies,
    triggers_belong_to_their_organization_and_flow,
    public_keys_read_triggers_but_cannot_manage_them,
    trigger_lists_are_newest_first_and_paginated,
);
