//! The Flows API (SPEC §2) as a client meets it, over HTTP, on both stores.

mod common;

use common::{Answer, Backend, Org, TestServer};
use reqwest::Method;
use serde_json::{Value, json};

on_every_store!(
    // create
    create_answers_201_with_a_draft_version_1,
    create_fills_in_the_defaults,
    create_gives_a_slug_of_flow_and_12_base62_characters_and_a_numeric_id,
    create_answers_an_etag,
    code_snippet_is_a_curl_naming_the_slug,
    modified_by_is_the_name_of_the_key_that_wrote,
    yaml_data_is_kept_verbatim_and_answered_as_json_too,
    json_string_data_is_stored_as_block_yaml,
    json_object_data_is_stored_as_block_yaml,
    entry_points_get_an_entry_id_when_none_is_given,
    timestamps_are_rfc3339_in_utc,
    // get
    get_by_slug_answers_the_current_version,
    get_by_numeric_id_answers_that_version,
    get_with_version_answers_that_version_of_the_slug,
    get_of_a_version_that_does_not_exist_is_404,
    get_with_version_on_a_numeric_id_is_400,
    // update
    put_on_a_draft_changes_only_the_fields_sent,
    put_with_null_clears_an_optional_field,
    put_on_an_active_version_takes_name_description_active_and_targeting_logic,
    put_on_an_active_version_refuses_any_other_field_with_409,
    put_on_an_archived_version_is_409,
    put_with_a_matching_if_match_succeeds,
    put_with_a_stale_if_match_is_412_and_changes_nothing,
    concurrent_puts_with_one_if_match_let_exactly_one_win,
    etag_changes_when_the_flow_changes,
    // publish
    publish_makes_the_draft_active,
    publish_accepts_an_empty_body_without_a_content_type,
    publish_archives_the_previous_active_version,
    publish_without_a_draft_is_409,
    publish_of_the_active_version_is_409,
    publish_of_a_version_that_does_not_exist_is_404,
    publish_needs_data_that_is_a_non_empty_mapping,
    publish_of_an_archived_version_is_a_rollback,
    publish_by_numeric_id_publishes_that_version,
    publish_by_numeric_id_of_another_version_is_400,
    concurrent_publishes_leave_exactly_one_active_version,
    // versions
    new_version_is_a_draft_copied_from_the_current_version,
    new_version_while_a_draft_exists_is_409,
    new_version_from_version_copies_that_version,
    new_version_from_a_version_that_does_not_exist_is_404,
    concurrent_new_versions_make_exactly_one_draft,
    flow_versions_summarise_every_version_highest_first,
    versions_list_is_highest_first_and_paginated,
    versions_page_token_of_another_flow_is_invalid,
    // delete
    delete_by_slug_archives_every_version,
    delete_by_numeric_id_archives_only_that_version,
    delete_answers_200_with_a_message,
    // list
    list_is_newest_change_first,
    an_update_moves_a_flow_to_the_top_of_the_list,
    list_shows_the_current_version_of_each_flow,
    list_filters_by_status_case_insensitively,
    list_status_published_means_active,
    list_filters_by_channel_type,
    list_filters_by_type,
    list_filters_combine,
    total_records_counts_every_match_not_just_the_page,
    total_records_follow_a_flow_from_status_to_status,
    total_records_follow_a_change_of_channel_type,
    pagination_walks_every_flow_once_without_gaps,
    last_page_has_no_next_page_token,
    list_pages_30_flows_by_default,
    page_token_reused_with_other_filters_is_invalid,
    page_token_accepts_the_same_filters_spelled_otherwise,
    tampered_page_token_is_invalid,
    page_token_of_another_organization_is_invalid,
    page_size_outside_1_to_100_is_400,
    unknown_list_query_parameter_is_400_naming_it,
    // validate
    validate_accepts_a_valid_body,
    validate_names_every_problem_of_a_bad_body,
    validate_stores_nothing,
    // idempotency
    same_idempotency_key_and_body_replays_the_first_answer,
    same_idempotency_key_and_body_creates_only_one_flow,
    same_idempotency_key_with_another_body_is_409,
    an_error_answer_is_not_remembered_by_its_idempotency_key,
    idempotency_keys_belong_to_one_organization,
    concurrent_creates_with_one_idempotency_key_make_one_flow,
    idempotency_key_over_255_characters_is_400,
    // tenancy
    another_organizations_flow_is_404_by_slug_on_every_route,
    another_organizations_flow_is_404_by_numeric_id_on_every_route,
    another_organizations_flows_never_appear_in_the_list,
    // keys
    public_key_cannot_write_on_any_route,
    public_key_can_read_flows,
    // bad input
    malformed_json_is_400_invalid_json,
    invalid_utf8_is_400_invalid_json,
    json_array_body_is_400_invalid_json,
    empty_create_body_is_400_invalid_json,
    deeply_nested_json_is_400_invalid_json,
    malformed_action_body_is_400_invalid_json,
    wrong_types_are_400_naming_each_field,
    missing_or_empty_name_is_400_naming_it,
    over_long_fields_are_400_naming_them,
    unknown_fields_are_400_naming_them,
    server_owned_fields_are_400_naming_them,
    body_over_256_kib_is_413,
    body_that_is_not_json_content_is_415,
    huge_numeric_ids_are_404,
    garbage_slugs_are_404,
    data_over_200_kib_is_400,
    invalid_yaml_data_is_400,
    data_of_the_wrong_type_is_400,
    yaml_aliases_are_answered_expanded,
    yaml_aliases_that_expand_past_1_mib_are_400,
    json_data_with_a_merge_key_is_400_rather_than_changed,
    deeply_nested_yaml_data_is_400,
    entry_points_with_a_bad_e164_number_or_language_tag_are_400_naming_the_entry,
    more_than_50_entry_points_are_400,
    bad_action_bodies_are_400_naming_the_field,
    unknown_query_parameters_are_400_on_every_route,
);

// ----------------------------------------------------------------------------------------------
// Helpers

/// A definition that can be published.
const DEFINITION: &str = "# greeting\nsteps:\n  - say: hello\n";

async fn start(backend: Backend) -> (TestServer, Org) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    (server, org)
}

/// Creates a flow from `body` (201 expected) and answers it.
async fn create(org: &Org, body: Value) -> Value {
    org.post("/v1/flows", body).await.expect(201).clone()
}

/// A draft with a publishable definition.
async fn draft(org: &Org, name: &str) -> Value {
    create(org, json!({"name": name, "data": DEFINITION})).await
}

/// A flow whose version 1 is `ACTIVE`.
async fn published(org: &Org, name: &str) -> Value {
    let flow = draft(org, name).await;
    org.post(&format!("/v1/flows/{}/publish", slug(&flow)), json!({}))
        .await
        .expect(200)
        .clone()
}

fn slug(flow: &Value) -> &str {
    flow["slug"].as_str().expect("a slug")
}

fn id(flow: &Value) -> u64 {
    flow["id"].as_u64().expect("a numeric id")
}

fn path(flow: &Value) -> String {
    format!("/v1/flows/{}", slug(flow))
}

async fn get(org: &Org, path: &str) -> Value {
    org.get(path).await.expect(200).clone()
}

async fn new_version(org: &Org, flow: &Value) -> Value {
    org.post(&format!("{}/versions", path(flow)), json!({}))
        .await
        .expect(201)
        .clone()
}

async fn publish_version(org: &Org, flow: &Value, version: u64) -> Value {
    org.post(
        &format!("{}/publish", path(flow)),
        json!({ "version": version }),
    )
    .await
    .expect(200)
    .clone()
}

/// `(version, status)` of every `flow_versions` summary, in the order answered.
fn version_statuses(flow: &Value) -> Vec<(u64, String)> {
    flow["flow_versions"]
        .as_array()
        .expect("flow_versions")
        .iter()
        .map(|v| {
            (
                v["version"].as_u64().unwrap(),
                v["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The slugs of a list answer, in order.
fn slugs(list: &Value) -> Vec<String> {
    list["flows"]
        .as_array()
        .expect("flows")
        .iter()
        .map(|f| slug(f).to_owned())
        .collect()
}

/// Moves the server's clock on, so the next change gets a later millisecond timestamp.
fn tick(server: &TestServer) {
    server.clock.advance(jiff::SignedDuration::from_millis(2));
}

/// A JSON request with a raw body.
async fn send_raw(org: &Org, method: Method, path: &str, body: impl Into<reqwest::Body>) -> Answer {
    org.call(method, path)
        .raw("application/json", body)
        .send()
        .await
}

// ----------------------------------------------------------------------------------------------
// Create

async fn create_answers_201_with_a_draft_version_1(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = create(&org, json!({"name": "Renewals"})).await;
    assert_eq!(flow["name"], "Renewals");
    assert_eq!(flow["version"], 1);
    assert_eq!(flow["status"], "DRAFT");
}

async fn create_fills_in_the_defaults(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = create(&org, json!({"name": "Defaults"})).await;
    assert_eq!(flow["type"], "CUSTOM");
    assert_eq!(flow["channel_type"], "voice");
    assert_eq!(flow["active"], true);
    assert_eq!(flow["data"], "{}");
    assert_eq!(flow["entry_points"], json!([]));
    assert_eq!(flow["description"], Value::Null);
    assert_eq!(flow["created_at"], flow["modified_at"]);
}

async fn create_gives_a_slug_of_flow_and_12_base62_characters_and_a_numeric_id(backend: Backend) {
    let (_server, org) = start(backend).await;
    let first = create(&org, json!({"name": "One"})).await;
    let second = create(&org, json!({"name": "Two"})).await;
    for flow in [&first, &second] {
        let rest = slug(flow).strip_prefix("flow_").expect("flow_ prefix");
        assert_eq!(rest.len(), 12, "{}", slug(flow));
        assert!(rest.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert!((1..1u64 << 53).contains(&id(flow)));
    }
    assert_ne!(slug(&first), slug(&second));
    assert_ne!(id(&first), id(&second));
}

async fn create_answers_an_etag(backend: Backend) {
    let (_server, org) = start(backend).await;
    let answer = org.post("/v1/flows", json!({"name": "Tagged"})).await;
    answer.expect(201);
    let etag = answer.header("etag").expect("an ETag");
    assert!(etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2);
}

async fn code_snippet_is_a_curl_naming_the_slug(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = create(&org, json!({"name": "Snippet"})).await;
    let snippet = flow["code_snippet"].as_str().unwrap();
    assert!(snippet.starts_with("curl"), "{snippet}");
    assert!(snippet.contains(slug(&flow)), "{snippet}");
    assert!(snippet.contains("/v1/callbacks"), "{snippet}");
}

async fn modified_by_is_the_name_of_the_key_that_wrote(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = create(&org, json!({"name": "Who"})).await;
    assert_eq!(flow["modified_by"], "test-private");
    assert_eq!(flow["flow_versions"][0]["modified_by"], "test-private");
}

async fn yaml_data_is_kept_verbatim_and_answered_as_json_too(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = create(&org, json!({"name": "Yaml", "data": DEFINITION})).await;
    assert_eq!(flow["data_yaml"], DEFINITION);
    let data: Value = serde_json::from_str(flow["data"].as_str().unwrap()).unwrap();
    assert_eq!(data, json!({"steps": [{"say": "hello"}]}));
    let again = get(&org, &path(&flow)).await;
    assert_eq!(again["data_yaml"], DEFINITION);
}

async fn json_string_data_is_stored_as_block_yaml(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = create(
        &org,
        json!({"name": "Json text", "data": "{\"steps\": [{\"say\": \"hi\"}]}"}),
    )
    .await;
    assert_eq!(flow["data_yaml"], "steps:\n- say: hi\n");
    let data: Value = serde_json::from_str(flow["data"].as_str().unwrap()).unwrap();
    assert_eq!(data, json!({"steps": [{"say": "hi"}]}));
}

async fn json_object_data_is_stored_as_block_yaml(backend: Backend) {
    let (_server, org) = start(backend).await;
    // Keys in alphabetical order: JSON objects are parsed without keeping their key order.
    let definition = json!({"greeting": {"retries": 2, "say": "hi"}, "steps": ["a", "b"]});
    let flow = create(&org, json!({"name": "Json", "data": definition})).await;
    assert_eq!(
        flow["data_yaml"],
        "greeting:\n  retries: 2\n  say: hi\nsteps:\n- a\n- b\n"
    );
    let data: Value = serde_json::from_str(flow["data"].as_str().unwrap()).unwrap();
    assert_eq!(data, definition);
}

async fn entry_points_get_an_entry_id_when_none_is_given(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = create(
        &org,
        json!({"name": "Entries", "entry_points": [
            {"entry_name": "Main line", "entry_number": "+15551234567", "entry_language": "en-US"},
            {"entry_id": "support", "entry_language": "zh-Hant-TW"}
        ]}),
    )
    .await;
    let points = flow["entry_points"].as_array().unwrap();
    assert!(!points[0]["entry_id"].as_str().unwrap().is_empty());
    assert_eq!(points[0]["entry_number"], "+15551234567");
    assert_eq!(points[0]["entry_language"], "en-US");
    assert_eq!(points[1]["entry_id"], "support");
    assert_eq!(points[1]["entry_number"], Value::Null);
}

async fn timestamps_are_rfc3339_in_utc(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = create(&org, json!({"name": "When"})).await;
    for field in ["created_at", "modified_at"] {
        let text = flow[field].as_str().unwrap();
        // 2026-11-21T14:15:22Z or 2026-11-21T14:15:22.123Z
        let shape = text.len() >= 20
            && text.ends_with('Z')
            && text.as_bytes()[4] == b'-'
            && text.as_bytes()[10] == b'T'
            && text.as_bytes()[13] == b':';
        assert!(shape, "{field}: {text}");
    }
    assert_eq!(flow["flow_versions"][0]["modified_at"], flow["modified_at"]);
}

// ----------------------------------------------------------------------------------------------
// Get

async fn get_by_slug_answers_the_current_version(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = published(&org, "Current").await;
    let draft = new_version(&org, &flow).await;
    assert_eq!(draft["version"], 2);
    // The ACTIVE version is current even though a newer draft exists.
    let answer = org.get(&path(&flow)).await;
    let current = answer.expect(200);
    assert_eq!(current["version"], 1);
    assert_eq!(current["status"], "ACTIVE");
    assert!(answer.header("etag").is_some());
}

async fn get_by_numeric_id_answers_that_version(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = published(&org, "By id").await;
    let draft = new_version(&org, &flow).await;
    let got = get(&org, &format!("/v1/flows/{}", id(&draft))).await;
    assert_eq!(got["version"], 2);
    assert_eq!(got["status"], "DRAFT");
    assert_eq!(got["slug"], flow["slug"]);
    let got = get(&org, &format!("/v1/flows/{}", id(&flow))).await;
    assert_eq!(got["version"], 1);
}

async fn get_with_version_answers_that_version_of_the_slug(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = published(&org, "Pinned").await;
    let draft = new_version(&org, &flow).await;
    let got = get(&org, &format!("{}?version=2", path(&flow))).await;
    assert_eq!(got["version"], 2);
    assert_eq!(got["id"], draft["id"]);
    let got = get(&org, &format!("{}?version=1", path(&flow))).await;
    assert_eq!(got["id"], flow["id"]);
}

async fn get_of_a_version_that_does_not_exist_is_404(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = draft(&org, "One version").await;
    org.get(&format!("{}?version=2", path(&flow)))
        .await
        .expect_error(404, "NOT_FOUND");
}

async fn get_with_version_on_a_numeric_id_is_400(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = draft(&org, "Id and version").await;
    let answer = org.get(&format!("/v1/flows/{}?version=1", id(&flow))).await;
    answer.expect_error(400, "VALIDATION_ERROR");
    assert_eq!(answer.detail_fields(), ["version"]);
}

// ----------------------------------------------------------------------------------------------
// Update

async fn put_on_a_draft_changes_only_the_fields_sent(backend: Backend) {
    let (server, org) = start(backend).await;
    let flow = create(
        &org,
        json!({"name": "Before", "description": "kept", "channel_type": "chat"}),
    )
    .await;
    tick(&server);
    let updated = org
        .put(
            &path(&flow),
            json!({"name": "After", "type": "SURVEY", "data": {"a": 1}}),
        )
        .await
        .expect(200)
        .clone();
    assert_eq!(updated["name"], "After");
    assert_eq!(updated["type"], "SURVEY");
    assert_eq!(updated["data"], r#"{"a":1}"#);
    assert_eq!(updated["description"], "kept");
    assert_eq!(updated["channel_type"], "chat");
    assert_eq!(updated["version"], 1);
    assert_eq!(updated["id"], flow["id"]);
    assert_eq!(updated["created_at"], flow["created_at"]);
    assert_ne!(updated["modified_at"], flow["modified_at"]);
    assert_eq!(get(&org, &path(&flow)).await, updated);
}

async fn put_with_null_clears_an_optional_field(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = create(
        &org,
        json!({"name": "Clear", "description": "gone soon", "targeting_logic": "x > 1"}),
    )
    .await;
    let updated = org
        .put(&path(&flow), json!({"description": null}))
        .await
        .expect(200)
        .clone();
    assert_eq!(updated["description"], Value::Null);
    assert_eq!(updated["targeting_logic"], "x > 1");
}

async fn put_on_an_active_version_takes_name_description_active_and_targeting_logic(
    backend: Backend,
) {
    let (_server, org) = start(backend).await;
    let flow = published(&org, "Live").await;
    let updated = org
        .put(
            &path(&flow),
            json!({"name": "Renamed", "description": "d", "active": false, "targeting_logic": "vip"}),
        )
        .await
        .expect(200)
        .clone();
    assert_eq!(updated["status"], "ACTIVE");
    assert_eq!(updated["name"], "Renamed");
    assert_eq!(updated["description"], "d");
    assert_eq!(updated["active"], false);
    assert_eq!(updated["targeting_logic"], "vip");
}

async fn put_on_an_active_version_refuses_any_other_field_with_409(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = published(&org, "Locked").await;
    for body in [
        json!({"data": "other: 1\n"}),
        json!({"type": "FORM"}),
        json!({"channel_type": "sms"}),
        json!({"entry_points": []}),
        json!({"name": "allowed", "data": {"x": 1}}),
    ] {
        org.put(&path(&flow), body.clone())
            .await
            .expect_error(409, "CONFLICT");
    }
    let unchanged = get(&org, &path(&flow)).await;
    assert_eq!(unchanged["name"], "Locked");
    assert_eq!(unchanged["data_yaml"], DEFINITION);
}

async fn put_on_an_archived_version_is_409(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = published(&org, "Old").await;
    new_version(&org, &flow).await;
    publish_version(&org, &flow, 2).await;
    // Version 1 is ARCHIVED now.
    org.put(&format!("/v1/flows/{}", id(&flow)), json!({"name": "x"}))
        .await
        .expect_error(409, "CONFLICT");
    // And a deleted flow's current version too.
    org.delete(&path(&flow)).await.expect(200);
    org.put(&path(&flow), json!({"name": "x"}))
        .await
        .expect_error(409, "CONFLICT");
}

async fn put_with_a_matching_if_match_succeeds(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = create(&org, json!({"name": "Guarded"})).await;
    let read = org.get(&path(&flow)).await;
    let etag = read.header("etag").expect("etag").to_owned();
    let answer = org
        .call(Method::PUT, &path(&flow))
        .header("if-match", &etag)
        .json(&json!({"name": "Changed"}))
        .send()
        .await;
    assert_eq!(answer.expect(200)["name"], "Changed");
}

async fn put_with_a_stale_if_match_is_412_and_changes_nothing(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = create(&org, json!({"name": "Guarded"})).await;
    let stale = org
        .get(&path(&flow))
        .await
        .header("etag")
        .unwrap()
        .to_owned();
    org.put(&path(&flow), json!({"name": "Someone else"}))
        .await
        .expect(200);
    org.call(Method::PUT, &path(&flow))
        .header("if-match", &stale)
        .json(&json!({"name": "Mine"}))
        .send()
        .await
        .expect_error(412, "PRECONDITION_FAILED");
    assert_eq!(get(&org, &path(&flow)).await["name"], "Someone else");
}

/// Sends every call at once and answers their statuses.
async fn all_at_once(calls: Vec<common::Call>) -> Vec<u16> {
    let tasks: Vec<_> = calls
        .into_iter()
        .map(|call| tokio::spawn(call.send()))
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.expect("request task").status);
    }
    statuses.sort();
    statuses
}

async fn concurrent_puts_with_one_if_match_let_exactly_one_win(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = create(&org, json!({"name": "Contended"})).await;
    let etag = org
        .get(&path(&flow))
        .await
        .header("etag")
        .unwrap()
        .to_owned();
    let calls = (0..4)
        .map(|n| {
            org.call(Method::PUT, &path(&flow))
                .header("if-match", &etag)
                .json(&json!({"name": format!("writer {n}")}))
        })
        .collect();
    assert_eq!(all_at_once(calls).await, [200, 412, 412, 412]);
}

async fn etag_changes_when_the_flow_changes(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = create(&org, json!({"name": "Tagged"})).await;
    let before = org
        .get(&path(&flow))
        .await
        .header("etag")
        .unwrap()
        .to_owned();
    let same = org
        .get(&path(&flow))
        .await
        .header("etag")
        .unwrap()
        .to_owned();
    assert_eq!(before, same, "an unchanged flow keeps its ETag");
    let put = org.put(&path(&flow), json!({"name": "Retagged"})).await;
    put.expect(200);
    let after = org
        .get(&path(&flow))
        .await
        .header("etag")
        .unwrap()
        .to_owned();
    assert_ne!(before, after);
    assert_eq!(put.header("etag"), Some(after.as_str()));
}

// ----------------------------------------------------------------------------------------------
// Publish

async fn publish_makes_the_draft_active(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = draft(&org, "To publish").await;
    let answer = org
        .post(&format!("{}/publish", path(&flow)), json!({}))
        .await;
    let published = answer.expect(200);
    assert_eq!(published["version"], 1);
    assert_eq!(published["status"], "ACTIVE");
    assert!(answer.header("etag").is_some());
    assert_eq!(get(&org, &path(&flow)).await["status"], "ACTIVE");
}

async fn publish_accepts_an_empty_body_without_a_content_type(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = draft(&org, "Empty body").await;
    let answer = org
        .call(Method::POST, &format!("{}/publish", path(&flow)))
        .send()
        .await;
    assert_eq!(answer.expect(200)["status"], "ACTIVE");
}

async fn publish_archives_the_previous_active_version(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = published(&org, "Two versions").await;
    new_version(&org, &flow).await;
    let second = org
        .post(&format!("{}/publish", path(&flow)), json!({}))
        .await
        .expect(200)
        .clone();
    assert_eq!(second["version"], 2);
    assert_eq!(second["status"], "ACTIVE");
    assert_eq!(
        version_statuses(&second),
        [(2, "ACTIVE".to_owned()), (1, "ARCHIVED".to_owned())]
    );
    let first = get(&org, &format!("/v1/flows/{}", id(&flow))).await;
    assert_eq!(first["status"], "ARCHIVED");
}

async fn publish_without_a_draft_is_409(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = published(&org, "No draft").await;
    org.post(&format!("{}/publish", path(&flow)), json!({}))
        .await
        .expect_error(409, "CONFLICT");
}

async fn publish_of_the_active_version_is_409(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = published(&org, "Already").await;
    new_version(&org, &flow).await;
    org.post(&format!("{}/publish", path(&flow)), json!({"version": 1}))
        .await
        .expect_error(409, "CONFLICT");
    assert_eq!(get(&org, &path(&flow)).await["version"], 1);
}

async fn publish_of_a_version_that_does_not_exist_is_404(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = draft(&org, "Unknown version").await;
    org.post(&format!("{}/publish", path(&flow)), json!({"version": 7}))
        .await
        .expect_error(404, "NOT_FOUND");
}

async fn publish_needs_data_that_is_a_non_empty_mapping(backend: Backend) {
    let (_server, org) = start(backend).await;
    for data in [
        None,
        Some(json!({})),
        Some(json!(["a", "b"])),
        Some(json!("just text")),
    ] {
        let mut body = json!({"name": "Unpublishable"});
        if let Some(data) = data {
            body["data"] = data;
        }
        let flow = create(&org, body).await;
        let answer = org
            .post(&format!("{}/publish", path(&flow)), json!({}))
            .await;
        answer.expect_error(400, "VALIDATION_ERROR");
        assert_eq!(answer.detail_fields(), ["data"], "{}", flow["data_yaml"]);
        assert_eq!(get(&org, &path(&flow)).await["status"], "DRAFT");
    }
}

async fn publish_of_an_archived_version_is_a_rollback(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = published(&org, "Rollback").await;
    new_version(&org, &flow).await;
    publish_version(&org, &flow, 2).await;
    let rolled_back = publish_version(&org, &flow, 1).await;
    assert_eq!(rolled_back["version"], 1);
    assert_eq!(rolled_back["status"], "ACTIVE");
    assert_eq!(
        version_statuses(&rolled_back),
        [(2, "ARCHIVED".to_owned()), (1, "ACTIVE".to_owned())]
    );
    assert_eq!(get(&org, &path(&flow)).await["version"], 1);
}

async fn publish_by_numeric_id_publishes_that_version(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = published(&org, "By id").await;
    new_version(&org, &flow).await;
    publish_version(&org, &flow, 2).await;
    // Version 1 is ARCHIVED: publishing it by its id rolls back to it.
    let answer = org
        .post(&format!("/v1/flows/{}/publish", id(&flow)), json!({}))
        .await;
    let rolled_back = answer.expect(200);
    assert_eq!(rolled_back["version"], 1);
    assert_eq!(rolled_back["status"], "ACTIVE");
}

async fn publish_by_numeric_id_of_another_version_is_400(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = published(&org, "By id").await;
    new_version(&org, &flow).await;
    let answer = org
        .post(
            &format!("/v1/flows/{}/publish", id(&flow)),
            json!({"version": 2}),
        )
        .await;
    answer.expect_error(400, "VALIDATION_ERROR");
    assert_eq!(answer.detail_fields(), ["version"]);
    assert_eq!(get(&org, &path(&flow)).await["version"], 1);
}

async fn concurrent_publishes_leave_exactly_one_active_version(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = published(&org, "Raced").await;
    new_version(&org, &flow).await;
    let calls = (0..4)
        .map(|_| {
            org.call(Method::POST, &format!("{}/publish", path(&flow)))
                .json(&json!({}))
        })
        .collect();
    assert_eq!(all_at_once(calls).await, [200, 409, 409, 409]);
    assert_eq!(
        version_statuses(&get(&org, &path(&flow)).await),
        [(2, "ACTIVE".to_owned()), (1, "ARCHIVED".to_owned())]
    );
    assert_eq!(
        get(&org, "/v1/flows?status=active").await["total_records"],
        1
    );
}

// ----------------------------------------------------------------------------------------------
// Versions

async fn new_version_is_a_draft_copied_from_the_current_version(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = create(
        &org,
        json!({"name": "Copied", "description": "d", "type": "TOUR", "channel_type": "sms",
               "data": DEFINITION, "targeting_logic": "t",
               "entry_points": [{"entry_id": "main", "entry_number": "+15551234567"}]}),
    )
    .await;
    let flow = publish_version(&org, &flow, 1).await;
    let answer = org
        .post(&format!("{}/versions", path(&flow)), json!({}))
        .await;
    let copy = answer.expect(201).clone();
    assert!(answer.header("etag").is_some());
    assert_eq!(copy["version"], 2);
    assert_eq!(copy["status"], "DRAFT");
    assert_eq!(copy["slug"], flow["slug"]);
    assert_ne!(copy["id"], flow["id"]);
    for field in [
        "name",
        "description",
        "type",
        "channel_type",
        "active",
        "data",
        "data_yaml",
        "targeting_logic",
        "entry_points",
        "code_snippet",
    ] {
        assert_eq!(copy[field], flow[field], "{field}");
    }
}

async fn new_version_while_a_draft_exists_is_409(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = draft(&org, "Draft exists").await;
    org.post(&format!("{}/versions", path(&flow)), json!({}))
        .await
        .expect_error(409, "CONFLICT");
    assert_eq!(version_statuses(&get(&org, &path(&flow)).await).len(), 1);
}

async fn new_version_from_version_copies_that_version(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = published(&org, "First").await;
    let second = new_version(&org, &flow).await;
    org.put(
        &format!("/v1/flows/{}", id(&second)),
        json!({"name": "Second", "data": "second: true\n"}),
    )
    .await
    .expect(200);
    publish_version(&org, &flow, 2).await;
    let third = org
        .post(
            &format!("{}/versions", path(&flow)),
            json!({"from_version": 1}),
        )
        .await
        .expect(201)
        .clone();
    assert_eq!(third["version"], 3);
    assert_eq!(third["name"], "First");
    assert_eq!(third["data_yaml"], DEFINITION);
}

async fn new_version_from_a_version_that_does_not_exist_is_404(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = published(&org, "Only one").await;
    org.post(
        &format!("{}/versions", path(&flow)),
        json!({"from_version": 9}),
    )
    .await
    .expect_error(404, "NOT_FOUND");
}

async fn concurrent_new_versions_make_exactly_one_draft(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = published(&org, "Raced").await;
    let calls = (0..4)
        .map(|_| {
            org.call(Method::POST, &format!("{}/versions", path(&flow)))
                .json(&json!({}))
        })
        .collect();
    assert_eq!(all_at_once(calls).await, [201, 409, 409, 409]);
    assert_eq!(
        version_statuses(&get(&org, &path(&flow)).await),
        [(2, "DRAFT".to_owned()), (1, "ACTIVE".to_owned())]
    );
}

async fn flow_versions_summarise_every_version_highest_first(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = published(&org, "Summaries").await;
    new_version(&org, &flow).await;
    publish_version(&org, &flow, 2).await;
    let third = new_version(&org, &flow).await;
    assert_eq!(
        version_statuses(&third),
        [
            (3, "DRAFT".to_owned()),
            (2, "ACTIVE".to_owned()),
            (1, "ARCHIVED".to_owned())
        ]
    );
    let summary = &third["flow_versions"][0];
    assert_eq!(summary["id"], third["id"]);
    assert_eq!(summary["modified_at"], third["modified_at"]);
    assert_eq!(summary["modified_by"], "test-private");
    // Every version answers the same summaries.
    let first = get(&org, &format!("/v1/flows/{}", id(&flow))).await;
    assert_eq!(first["flow_versions"], third["flow_versions"]);
}

async fn versions_list_is_highest_first_and_paginated(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = published(&org, "Many").await;
    new_version(&org, &flow).await;
    publish_version(&org, &flow, 2).await;
    new_version(&org, &flow).await;
    let first = get(&org, &format!("{}/versions?page_size=2", path(&flow))).await;
    let numbers = |page: &Value| -> Vec<u64> {
        page["flow_versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["version"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(numbers(&first), [3, 2]);
    let token = first["next_page_token"].as_str().expect("a next page");
    let second = get(
        &org,
        &format!(
            "{}/versions?page_size=2&next_page_token={token}",
            path(&flow)
        ),
    )
    .await;
    assert_eq!(numbers(&second), [1]);
    assert!(second.get("next_page_token").is_none());
    let all = get(&org, &format!("{}/versions", path(&flow))).await;
    assert_eq!(numbers(&all), [3, 2, 1]);
    assert_eq!(all["flow_versions"][1]["status"], "ACTIVE");
}

async fn versions_page_token_of_another_flow_is_invalid(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = published(&org, "One").await;
    new_version(&org, &flow).await;
    let other = draft(&org, "Other").await;
    let first = get(&org, &format!("{}/versions?page_size=1", path(&flow))).await;
    let token = first["next_page_token"].as_str().expect("a next page");
    org.get(&format!(
        "{}/versions?page_size=1&next_page_token={token}",
        path(&other)
    ))
    .await
    .expect_error(400, "INVALID_PAGE_TOKEN");
    // Nor is it a token of the flows list.
    org.get(&format!("/v1/flows?page_size=1&next_page_token={token}"))
        .await
        .expect_error(400, "INVALID_PAGE_TOKEN");
}

// ----------------------------------------------------------------------------------------------
// Delete

async fn delete_by_slug_archives_every_version(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = published(&org, "Doomed").await;
    let second = new_version(&org, &flow).await;
    org.delete(&path(&flow)).await.expect(200);
    for version in [id(&flow), id(&second)] {
        let got = get(&org, &format!("/v1/flows/{version}")).await;
        assert_eq!(got["status"], "ARCHIVED");
    }
    assert_eq!(
        version_statuses(&get(&org, &path(&flow)).await),
        [(2, "ARCHIVED".to_owned()), (1, "ARCHIVED".to_owned())]
    );
}

async fn delete_by_numeric_id_archives_only_that_version(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = published(&org, "Partly").await;
    let second = new_version(&org, &flow).await;
    org.delete(&format!("/v1/flows/{}", id(&second)))
        .await
        .expect(200);
    let current = get(&org, &path(&flow)).await;
    assert_eq!(current["version"], 1);
    assert_eq!(
        version_statuses(&current),
        [(2, "ARCHIVED".to_owned()), (1, "ACTIVE".to_owned())]
    );
}

async fn delete_answers_200_with_a_message(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = draft(&org, "Message").await;
    for target in [format!("/v1/flows/{}", id(&flow)), path(&flow)] {
        let answer = org.delete(&target).await;
        let body = answer.expect(200);
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{}",
            answer.text
        );
    }
}

// ----------------------------------------------------------------------------------------------
// List

async fn list_is_newest_change_first(backend: Backend) {
    let (server, org) = start(backend).await;
    let mut created = Vec::new();
    for name in ["a", "b", "c"] {
        created.push(slug(&create(&org, json!({"name": name})).await).to_owned());
        tick(&server);
    }
    created.reverse();
    assert_eq!(slugs(&get(&org, "/v1/flows").await), created);
}

async fn an_update_moves_a_flow_to_the_top_of_the_list(backend: Backend) {
    let (server, org) = start(backend).await;
    let older = create(&org, json!({"name": "older"})).await;
    tick(&server);
    let newer = create(&org, json!({"name": "newer"})).await;
    tick(&server);
    org.put(&path(&older), json!({"description": "touched"}))
        .await
        .expect(200);
    assert_eq!(
        slugs(&get(&org, "/v1/flows").await),
        [slug(&older), slug(&newer)]
    );
}

async fn list_shows_the_current_version_of_each_flow(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = published(&org, "Live one").await;
    new_version(&org, &flow).await;
    let list = get(&org, "/v1/flows").await;
    assert_eq!(list["flows"].as_array().unwrap().len(), 1);
    assert_eq!(list["flows"][0]["version"], 1);
    assert_eq!(list["flows"][0]["status"], "ACTIVE");
    assert_eq!(list["flows"][0], get(&org, &path(&flow)).await);
}

/// One draft, one active and one archived flow; answers their slugs in that order.
async fn one_of_each_status(org: &Org) -> [String; 3] {
    let draft = draft(org, "draft").await;
    let active = published(org, "active").await;
    let archived = draft_then_delete(org).await;
    [slug(&draft).to_owned(), slug(&active).to_owned(), archived]
}

async fn draft_then_delete(org: &Org) -> String {
    let flow = draft(org, "archived").await;
    org.delete(&path(&flow)).await.expect(200);
    slug(&flow).to_owned()
}

async fn list_filters_by_status_case_insensitively(backend: Backend) {
    let (_server, org) = start(backend).await;
    let [draft, active, archived] = one_of_each_status(&org).await;
    for (filter, expected) in [
        ("draft", &draft),
        ("DRAFT", &draft),
        ("Active", &active),
        ("archived", &archived),
        ("ARCHIVED", &archived),
    ] {
        let list = get(&org, &format!("/v1/flows?status={filter}")).await;
        assert_eq!(slugs(&list), [expected.as_str()], "status={filter}");
        assert_eq!(list["total_records"], 1, "status={filter}");
    }
    org.get("/v1/flows?status=live")
        .await
        .expect_error(400, "VALIDATION_ERROR");
}

async fn list_status_published_means_active(backend: Backend) {
    let (_server, org) = start(backend).await;
    let [_, active, _] = one_of_each_status(&org).await;
    for filter in ["published", "PUBLISHED"] {
        let list = get(&org, &format!("/v1/flows?status={filter}")).await;
        assert_eq!(slugs(&list), [active.as_str()]);
    }
}

async fn list_filters_by_channel_type(backend: Backend) {
    let (_server, org) = start(backend).await;
    let chat = create(&org, json!({"name": "chat", "channel_type": "chat"})).await;
    let app = create(&org, json!({"name": "app", "channel_type": "in_app_chat"})).await;
    create(&org, json!({"name": "voice"})).await;
    let list = get(&org, "/v1/flows?channel_type=chat").await;
    assert_eq!(slugs(&list), [slug(&chat)]);
    let list = get(&org, "/v1/flows?channel_type=in_app_chat").await;
    assert_eq!(slugs(&list), [slug(&app)]);
    assert_eq!(
        get(&org, "/v1/flows?channel_type=video").await["total_records"],
        0
    );
}

async fn list_filters_by_type(backend: Backend) {
    let (_server, org) = start(backend).await;
    let survey = create(&org, json!({"name": "survey", "type": "SURVEY"})).await;
    create(&org, json!({"name": "custom"})).await;
    create(
        &org,
        json!({"name": "form", "type": "FORM", "channel_type": "sms"}),
    )
    .await;
    let list = get(&org, "/v1/flows?type=SURVEY").await;
    assert_eq!(slugs(&list), [slug(&survey)]);
    let list = get(&org, "/v1/flows?type=FORM&channel_type=voice").await;
    assert_eq!(list["flows"], json!([]));
    assert_eq!(list["total_records"], 0);
}

async fn list_filters_combine(backend: Backend) {
    let (_server, org) = start(backend).await;
    let wanted = create(
        &org,
        json!({"name": "sms form", "type": "FORM", "channel_type": "sms", "data": DEFINITION}),
    )
    .await;
    publish_version(&org, &wanted, 1).await;
    create(
        &org,
        json!({"name": "sms form draft", "type": "FORM", "channel_type": "sms"}),
    )
    .await;
    published(&org, "voice custom").await;
    let list = get(
        &org,
        "/v1/flows?status=published&type=form&channel_type=SMS",
    )
    .await;
    assert_eq!(slugs(&list), [slug(&wanted)]);
    assert_eq!(list["total_records"], 1);
}

async fn total_records_counts_every_match_not_just_the_page(backend: Backend) {
    let (_server, org) = start(backend).await;
    for n in 0..3 {
        create(
            &org,
            json!({"name": format!("sms {n}"), "channel_type": "sms"}),
        )
        .await;
    }
    create(&org, json!({"name": "voice"})).await;
    let list = get(&org, "/v1/flows?channel_type=sms&page_size=1").await;
    assert_eq!(list["flows"].as_array().unwrap().len(), 1);
    assert_eq!(list["page_size"], 1);
    assert_eq!(list["total_records"], 3);
    assert_eq!(get(&org, "/v1/flows").await["total_records"], 4);
}

async fn total_records_follow_a_flow_from_status_to_status(backend: Backend) {
    let (_server, org) = start(backend).await;
    let count = |status: &'static str| {
        let org = &org;
        async move {
            get(org, &format!("/v1/flows?status={status}")).await["total_records"]
                .as_u64()
                .unwrap()
        }
    };
    let flow = draft(&org, "Travels").await;
    assert_eq!((count("draft").await, count("active").await), (1, 0));
    publish_version(&org, &flow, 1).await;
    assert_eq!((count("draft").await, count("active").await), (0, 1));
    new_version(&org, &flow).await;
    // The ACTIVE version stays current while a draft exists.
    assert_eq!((count("draft").await, count("active").await), (0, 1));
    org.delete(&path(&flow)).await.expect(200);
    assert_eq!(
        (
            count("draft").await,
            count("active").await,
            count("archived").await
        ),
        (0, 0, 1)
    );
    assert_eq!(get(&org, "/v1/flows").await["total_records"], 1);
}

async fn total_records_follow_a_change_of_channel_type(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = create(&org, json!({"name": "Moves", "channel_type": "chat"})).await;
    let count = |channel: &'static str| {
        let org = &org;
        async move {
            get(org, &format!("/v1/flows?channel_type={channel}")).await["total_records"]
                .as_u64()
                .unwrap()
        }
    };
    assert_eq!((count("chat").await, count("sms").await), (1, 0));
    org.put(&path(&flow), json!({"channel_type": "sms"}))
        .await
        .expect(200);
    assert_eq!((count("chat").await, count("sms").await), (0, 1));
    let list = get(&org, "/v1/flows?channel_type=chat").await;
    assert_eq!(list["flows"], json!([]));
}

async fn pagination_walks_every_flow_once_without_gaps(backend: Backend) {
    let (server, org) = start(backend).await;
    let mut expected = Vec::new();
    for n in 0..5 {
        expected.push(slug(&create(&org, json!({"name": format!("flow {n}")})).await).to_owned());
        tick(&server);
    }
    expected.reverse();
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &token {
            Some(token) => format!("/v1/flows?page_size=2&next_page_token={token}"),
            None => "/v1/flows?page_size=2".to_owned(),
        };
        let page = get(&org, &query).await;
        assert_eq!(page["total_records"], 5);
        seen.extend(slugs(&page));
        pages += 1;
        assert!(pages <= 3, "more pages than 5 flows need");
        match page["next_page_token"].as_str() {
            Some(next) => token = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, expected);
}

async fn last_page_has_no_next_page_token(backend: Backend) {
    let (_server, org) = start(backend).await;
    for n in 0..2 {
        create(&org, json!({"name": format!("flow {n}")})).await;
    }
    // Exactly a page: nothing more exists, so no token.
    let page = get(&org, "/v1/flows?page_size=2").await;
    assert_eq!(page["flows"].as_array().unwrap().len(), 2);
    assert!(page.get("next_page_token").is_none(), "{page}");
    let empty_org_list = get(&org, "/v1/flows?status=archived").await;
    assert!(empty_org_list.get("next_page_token").is_none());
}

async fn list_pages_30_flows_by_default(backend: Backend) {
    let (_server, org) = start(backend).await;
    for n in 0..31 {
        create(&org, json!({"name": format!("flow {n}")})).await;
    }
    let first = get(&org, "/v1/flows").await;
    assert_eq!(first["flows"].as_array().unwrap().len(), 30);
    assert_eq!(first["page_size"], 30);
    assert_eq!(first["total_records"], 31);
    let token = first["next_page_token"].as_str().expect("a next page");
    let rest = get(&org, &format!("/v1/flows?next_page_token={token}")).await;
    assert_eq!(rest["flows"].as_array().unwrap().len(), 1);
    assert!(rest.get("next_page_token").is_none());
}

/// A `next_page_token` of a first page of one flow per page over three flows.
async fn first_page_token(org: &Org, query: &str) -> String {
    for n in 0..3 {
        create(org, json!({"name": format!("flow {n}")})).await;
    }
    get(org, &format!("/v1/flows?page_size=1{query}")).await["next_page_token"]
        .as_str()
        .expect("a next page")
        .to_owned()
}

async fn page_token_reused_with_other_filters_is_invalid(backend: Backend) {
    let (_server, org) = start(backend).await;
    let token = first_page_token(&org, "&status=draft").await;
    org.get(&format!("/v1/flows?page_size=1&next_page_token={token}"))
        .await
        .expect_error(400, "INVALID_PAGE_TOKEN");
    org.get(&format!(
        "/v1/flows?page_size=1&status=draft&channel_type=voice&next_page_token={token}"
    ))
    .await
    .expect_error(400, "INVALID_PAGE_TOKEN");
    // With the same filters it works.
    get(
        &org,
        &format!("/v1/flows?page_size=1&status=draft&next_page_token={token}"),
    )
    .await;
}

async fn page_token_accepts_the_same_filters_spelled_otherwise(backend: Backend) {
    let (_server, org) = start(backend).await;
    let token = first_page_token(&org, "&status=draft&type=custom").await;
    let next = get(
        &org,
        &format!("/v1/flows?page_size=1&type=CUSTOM&status=DRAFT&next_page_token={token}"),
    )
    .await;
    assert_eq!(next["flows"].as_array().unwrap().len(), 1);
}

async fn tampered_page_token_is_invalid(backend: Backend) {
    let (_server, org) = start(backend).await;
    let token = first_page_token(&org, "").await;
    let (payload, signature) = token.split_once('.').unwrap();
    let flipped = |text: &str| -> String {
        let mut chars: Vec<char> = text.chars().collect();
        chars[1] = if chars[1] == 'A' { 'B' } else { 'A' };
        chars.into_iter().collect()
    };
    for tampered in [
        format!("{}.{signature}", flipped(payload)),
        format!("{payload}.{}", flipped(signature)),
        payload.to_owned(),
        "garbage".to_owned(),
    ] {
        org.get(&format!("/v1/flows?page_size=1&next_page_token={tampered}"))
            .await
            .expect_error(400, "INVALID_PAGE_TOKEN");
    }
}

async fn page_token_of_another_organization_is_invalid(backend: Backend) {
    let (server, org) = start(backend).await;
    let token = first_page_token(&org, "").await;
    let other = server.org().await;
    for n in 0..3 {
        create(&other, json!({"name": format!("other {n}")})).await;
    }
    other
        .get(&format!("/v1/flows?page_size=1&next_page_token={token}"))
        .await
        .expect_error(400, "INVALID_PAGE_TOKEN");
}

async fn page_size_outside_1_to_100_is_400(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = draft(&org, "Sizes").await;
    for size in ["0", "101", "-1", "ten", ""] {
        let answer = org.get(&format!("/v1/flows?page_size={size}")).await;
        answer.expect_error(400, "VALIDATION_ERROR");
        assert_eq!(answer.detail_fields(), ["page_size"]);
        org.get(&format!("{}/versions?page_size={size}", path(&flow)))
            .await
            .expect_error(400, "VALIDATION_ERROR");
    }
    get(&org, "/v1/flows?page_size=100").await;
    get(&org, "/v1/flows?page_size=1").await;
}

async fn unknown_list_query_parameter_is_400_naming_it(backend: Backend) {
    let (_server, org) = start(backend).await;
    let answer = org.get("/v1/flows?limit=5").await;
    answer.expect_error(400, "VALIDATION_ERROR");
    assert_eq!(answer.detail_fields(), ["limit"]);
    let answer = org.get("/v1/flows?status=draft&status=active").await;
    answer.expect_error(400, "VALIDATION_ERROR");
    assert_eq!(answer.detail_fields(), ["status"]);
}

// ----------------------------------------------------------------------------------------------
// Validate

async fn validate_accepts_a_valid_body(backend: Backend) {
    let (_server, org) = start(backend).await;
    let answer = org
        .post(
            "/v1/flows/validate",
            json!({"name": "Valid", "data": DEFINITION, "type": "FORM"}),
        )
        .await;
    assert_eq!(*answer.expect(200), json!({"valid": true, "problems": []}));
}

async fn validate_names_every_problem_of_a_bad_body(backend: Backend) {
    let (_server, org) = start(backend).await;
    let answer = org
        .post(
            "/v1/flows/validate",
            json!({"type": "POPUP", "data": "a: [unclosed", "colour": "red",
                   "entry_points": [{"entry_number": "12345"}]}),
        )
        .await;
    let body = answer.expect(200);
    assert_eq!(body["valid"], false);
    let fields: Vec<&str> = body["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            assert!(p["message"].as_str().is_some_and(|m| !m.is_empty()));
            p["field"].as_str().unwrap()
        })
        .collect();
    for field in [
        "name",
        "type",
        "data",
        "colour",
        "entry_points[0].entry_number",
    ] {
        assert!(fields.contains(&field), "{field} not in {fields:?}");
    }
}

async fn validate_stores_nothing(backend: Backend) {
    let (_server, org) = start(backend).await;
    org.post("/v1/flows/validate", json!({"name": "Dry run"}))
        .await
        .expect(200);
    let list = get(&org, "/v1/flows").await;
    assert_eq!(list["flows"], json!([]));
    assert_eq!(list["total_records"], 0);
}

// ----------------------------------------------------------------------------------------------
// Idempotency

async fn create_with_key(org: &Org, key: &str, body: &str) -> Answer {
    org.call(Method::POST, "/v1/flows")
        .header("idempotency-key", key)
        .raw("application/json", body.to_owned())
        .send()
        .await
}

async fn same_idempotency_key_and_body_replays_the_first_answer(backend: Backend) {
    let (_server, org) = start(backend).await;
    let first = create_with_key(&org, "key-1", r#"{"name": "Once", "type": "FORM"}"#).await;
    first.expect(201);
    assert!(first.header("idempotent-replayed").is_none());
    // The same body, keys in another order.
    let again = create_with_key(&org, "key-1", r#"{"type": "FORM", "name": "Once"}"#).await;
    again.expect(201);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("etag"), first.header("etag"));
}

async fn same_idempotency_key_and_body_creates_only_one_flow(backend: Backend) {
    let (_server, org) = start(backend).await;
    for _ in 0..3 {
        create_with_key(&org, "key-1", r#"{"name": "Once"}"#)
            .await
            .expect(201);
    }
    let list = get(&org, "/v1/flows").await;
    assert_eq!(list["total_records"], 1);
    assert_eq!(list["flows"].as_array().unwrap().len(), 1);
}

async fn same_idempotency_key_with_another_body_is_409(backend: Backend) {
    let (_server, org) = start(backend).await;
    create_with_key(&org, "key-1", r#"{"name": "First"}"#)
        .await
        .expect(201);
    create_with_key(&org, "key-1", r#"{"name": "Second"}"#)
        .await
        .expect_error(409, "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(get(&org, "/v1/flows").await["total_records"], 1);
}

async fn an_error_answer_is_not_remembered_by_its_idempotency_key(backend: Backend) {
    let (_server, org) = start(backend).await;
    create_with_key(&org, "key-1", r#"{"name": ""}"#)
        .await
        .expect_error(400, "VALIDATION_ERROR");
    create_with_key(&org, "key-1", r#"{"name": "Fixed"}"#)
        .await
        .expect(201);
    let replay = create_with_key(&org, "key-1", r#"{"name": "Fixed"}"#).await;
    replay.expect(201);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
}

async fn idempotency_keys_belong_to_one_organization(backend: Backend) {
    let (server, org) = start(backend).await;
    let other = server.org().await;
    let mine = create_with_key(&org, "shared-key", r#"{"name": "Same"}"#).await;
    let theirs = create_with_key(&other, "shared-key", r#"{"name": "Same"}"#).await;
    theirs.expect(201);
    assert!(theirs.header("idempotent-replayed").is_none());
    assert_ne!(theirs.body["slug"], mine.body["slug"]);
    assert_eq!(get(&other, "/v1/flows").await["total_records"], 1);
}

async fn concurrent_creates_with_one_idempotency_key_make_one_flow(backend: Backend) {
    let (_server, org) = start(backend).await;
    let calls = (0..4)
        .map(|_| {
            org.call(Method::POST, "/v1/flows")
                .header("idempotency-key", "raced")
                .json(&json!({"name": "Once"}))
        })
        .collect();
    let statuses = all_at_once(calls).await;
    // Each either created, replayed, or was told the first is still in progress.
    assert!(
        statuses.iter().all(|s| [201, 409].contains(s)),
        "{statuses:?}"
    );
    assert!(statuses.contains(&201), "{statuses:?}");
    assert_eq!(get(&org, "/v1/flows").await["total_records"], 1);
}

async fn idempotency_key_over_255_characters_is_400(backend: Backend) {
    let (_server, org) = start(backend).await;
    let answer = create_with_key(&org, &"k".repeat(256), r#"{"name": "Long key"}"#).await;
    answer.expect_error(400, "VALIDATION_ERROR");
    assert_eq!(answer.detail_fields(), ["Idempotency-Key"]);
    create_with_key(&org, &"k".repeat(255), r#"{"name": "Long key"}"#)
        .await
        .expect(201);
    assert_eq!(get(&org, "/v1/flows").await["total_records"], 1);
}

// ----------------------------------------------------------------------------------------------
// Tenancy

/// Every route that names a flow, as `(method, path, body)`, for `reference`.
fn routes_naming(reference: &str) -> Vec<(Method, String, Option<Value>)> {
    let flow = format!("/v1/flows/{reference}");
    vec![
        (Method::GET, flow.clone(), None),
        (Method::PUT, flow.clone(), Some(json!({"name": "Taken"}))),
        (Method::DELETE, flow.clone(), None),
        (Method::GET, format!("{flow}/versions"), None),
        (Method::POST, format!("{flow}/versions"), Some(json!({}))),
        (Method::POST, format!("{flow}/publish"), Some(json!({}))),
    ]
}

async fn assert_hidden_from(other: &Org, owner: &Org, flow: &Value, reference: &str) {
    for (method, path, body) in routes_naming(reference) {
        let mut call = other.call(method.clone(), &path);
        if let Some(body) = &body {
            call = call.json(body);
        }
        let answer = call.send().await;
        assert_eq!(answer.status, 404, "{method} {path}: {}", answer.text);
        answer.expect_error(404, "NOT_FOUND");
    }
    let unchanged = get(owner, &self::path(flow)).await;
    assert_eq!(unchanged["name"], flow["name"]);
    assert_eq!(unchanged["status"], "DRAFT");
    assert_eq!(version_statuses(&unchanged).len(), 1);
}

async fn another_organizations_flow_is_404_by_slug_on_every_route(backend: Backend) {
    let (server, owner) = start(backend).await;
    let other = server.org().await;
    let flow = draft(&owner, "Private").await;
    assert_hidden_from(&other, &owner, &flow, slug(&flow)).await;
}

async fn another_organizations_flow_is_404_by_numeric_id_on_every_route(backend: Backend) {
    let (server, owner) = start(backend).await;
    let other = server.org().await;
    let flow = draft(&owner, "Private").await;
    assert_hidden_from(&other, &owner, &flow, &id(&flow).to_string()).await;
}

async fn another_organizations_flows_never_appear_in_the_list(backend: Backend) {
    let (server, owner) = start(backend).await;
    let other = server.org().await;
    draft(&owner, "Private").await;
    published(&owner, "Also private").await;
    let mine = create(&other, json!({"name": "Mine"})).await;
    for query in ["", "?status=draft", "?status=active", "?channel_type=voice"] {
        let list = get(&other, &format!("/v1/flows{query}")).await;
        let expected: Vec<String> = if query.contains("active") {
            vec![]
        } else {
            vec![slug(&mine).to_owned()]
        };
        assert_eq!(slugs(&list), expected, "{query}");
        assert_eq!(list["total_records"], expected.len(), "{query}");
    }
}

// ----------------------------------------------------------------------------------------------
// Keys

async fn public_key_cannot_write_on_any_route(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = draft(&org, "Read only").await;
    let writes = [
        (Method::POST, "/v1/flows".to_owned(), json!({"name": "x"})),
        (
            Method::POST,
            "/v1/flows/validate".to_owned(),
            json!({"name": "x"}),
        ),
        (Method::PUT, path(&flow), json!({"name": "x"})),
        (Method::DELETE, path(&flow), json!({})),
        (Method::POST, format!("{}/versions", path(&flow)), json!({})),
        (Method::POST, format!("{}/publish", path(&flow)), json!({})),
    ];
    for (method, path, body) in writes {
        org.public(method, &path)
            .json(&body)
            .send()
            .await
            .expect_error(403, "FORBIDDEN");
    }
    let unchanged = get(&org, &path(&flow)).await;
    assert_eq!(unchanged["status"], "DRAFT");
    assert_eq!(unchanged["name"], "Read only");
    assert_eq!(get(&org, "/v1/flows").await["total_records"], 1);
}

async fn public_key_can_read_flows(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = draft(&org, "Readable").await;
    for path in [
        "/v1/flows".to_owned(),
        path(&flow),
        format!("/v1/flows/{}", id(&flow)),
        format!("{}/versions", path(&flow)),
    ] {
        org.public(Method::GET, &path).send().await.expect(200);
    }
    let got = org.public(Method::GET, &path(&flow)).send().await;
    assert_eq!(got.body["slug"], flow["slug"]);
}

// ----------------------------------------------------------------------------------------------
// Bad input

async fn malformed_json_is_400_invalid_json(backend: Backend) {
    let (_server, org) = start(backend).await;
    for body in [
        r#"{"name": "#,
        "{name: 'x'}",
        "not json",
        r#"{"name": "x"} trailing"#,
    ] {
        send_raw(&org, Method::POST, "/v1/flows", body)
            .await
            .expect_error(400, "INVALID_JSON");
    }
}

async fn invalid_utf8_is_400_invalid_json(backend: Backend) {
    let (_server, org) = start(backend).await;
    let body: &'static [u8] = b"{\"name\": \"caf\xe9\"}";
    send_raw(&org, Method::POST, "/v1/flows", body)
        .await
        .expect_error(400, "INVALID_JSON");
}

async fn json_array_body_is_400_invalid_json(backend: Backend) {
    let (_server, org) = start(backend).await;
    for body in [r#"[{"name": "x"}]"#, "\"name\"", "42", "null"] {
        send_raw(&org, Method::POST, "/v1/flows", body)
            .await
            .expect_error(400, "INVALID_JSON");
    }
}

async fn empty_create_body_is_400_invalid_json(backend: Backend) {
    let (_server, org) = start(backend).await;
    send_raw(&org, Method::POST, "/v1/flows", "")
        .await
        .expect_error(400, "INVALID_JSON");
}

async fn deeply_nested_json_is_400_invalid_json(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = draft(&org, "Deep").await;
    let deep = "[".repeat(100_000);
    let nested_in_data = format!(r#"{{"name": "x", "data": {}}}"#, "[".repeat(100_000));
    for (method, path, body) in [
        (Method::POST, "/v1/flows".to_owned(), deep.clone()),
        (Method::POST, "/v1/flows".to_owned(), nested_in_data.clone()),
        (Method::PUT, path(&flow), nested_in_data),
        (Method::POST, "/v1/flows/validate".to_owned(), deep.clone()),
        (Method::POST, format!("{}/publish", path(&flow)), deep),
    ] {
        send_raw(&org, method, &path, body)
            .await
            .expect_error(400, "INVALID_JSON");
    }
    // The server is still there.
    get(&org, &path(&flow)).await;
}

async fn malformed_action_body_is_400_invalid_json(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = draft(&org, "Actions").await;
    for route in ["publish", "versions"] {
        for body in ["{", "[]", "\"x\""] {
            send_raw(
                &org,
                Method::POST,
                &format!("{}/{route}", path(&flow)),
                body,
            )
            .await
            .expect_error(400, "INVALID_JSON");
        }
    }
}

async fn wrong_types_are_400_naming_each_field(backend: Backend) {
    let (_server, org) = start(backend).await;
    let body = json!({
        "name": 5, "description": [], "type": "POPUP", "channel_type": "fax",
        "active": "yes", "data": 7, "targeting_logic": {}, "entry_points": {}
    });
    let answer = org.post("/v1/flows", body.clone()).await;
    answer.expect_error(400, "VALIDATION_ERROR");
    let mut fields = answer.detail_fields();
    fields.sort();
    let mut expected = vec![
        "name",
        "description",
        "type",
        "channel_type",
        "active",
        "data",
        "targeting_logic",
        "entry_points",
    ];
    expected.sort();
    assert_eq!(fields, expected);
    // The same on an update.
    let flow = draft(&org, "Typed").await;
    let answer = org.put(&path(&flow), body).await;
    answer.expect_error(400, "VALIDATION_ERROR");
    assert_eq!(answer.detail_fields().len(), 8, "{}", answer.text);
}

async fn missing_or_empty_name_is_400_naming_it(backend: Backend) {
    let (_server, org) = start(backend).await;
    for body in [
        json!({}),
        json!({"name": ""}),
        json!({"name": "   "}),
        json!({"name": null}),
    ] {
        let answer = org.post("/v1/flows", body.clone()).await;
        answer.expect_error(400, "VALIDATION_ERROR");
        assert_eq!(answer.detail_fields(), ["name"], "{body}");
    }
    let flow = draft(&org, "Named").await;
    for body in [json!({"name": ""}), json!({"name": null})] {
        let answer = org.put(&path(&flow), body).await;
        answer.expect_error(400, "VALIDATION_ERROR");
        assert_eq!(answer.detail_fields(), ["name"]);
    }
}

async fn over_long_fields_are_400_naming_them(backend: Backend) {
    let (_server, org) = start(backend).await;
    let answer = org
        .post(
            "/v1/flows",
            json!({"name": "n".repeat(201), "description": "d".repeat(2001),
                   "targeting_logic": "t".repeat(4097)}),
        )
        .await;
    answer.expect_error(400, "VALIDATION_ERROR");
    assert_eq!(
        answer.detail_fields(),
        ["name", "description", "targeting_logic"]
    );
    // The limits count characters, not bytes.
    create(
        &org,
        json!({"name": "é".repeat(200), "description": "ü".repeat(2000)}),
    )
    .await;
}

async fn unknown_fields_are_400_naming_them(backend: Backend) {
    let (_server, org) = start(backend).await;
    let answer = org
        .post(
            "/v1/flows",
            json!({"name": "x", "colour": "red", "Name": "y"}),
        )
        .await;
    answer.expect_error(400, "VALIDATION_ERROR");
    assert_eq!(answer.detail_fields(), ["Name", "colour"]);
    let flow = draft(&org, "Strict").await;
    let answer = org.put(&path(&flow), json!({"colour": "red"})).await;
    answer.expect_error(400, "VALIDATION_ERROR");
    assert_eq!(answer.detail_fields(), ["colour"]);
    let answer = org
        .post(
            "/v1/flows",
            json!({"name": "x", "entry_points": [{"entry_id": "a", "extension": "12"}]}),
        )
        .await;
    answer.expect_error(400, "VALIDATION_ERROR");
    assert_eq!(answer.detail_fields(), ["entry_points[0].extension"]);
}

async fn server_owned_fields_are_400_naming_them(backend: Backend) {
    let (_server, org) = start(backend).await;
    let answer = org
        .post(
            "/v1/flows",
            json!({"name": "x", "status": "ACTIVE", "slug": "flow_AAAAAAAAAAAA", "version": 3}),
        )
        .await;
    answer.expect_error(400, "VALIDATION_ERROR");
    let mut fields = answer.detail_fields();
    fields.sort();
    assert_eq!(fields, ["slug", "status", "version"]);
}

async fn body_over_256_kib_is_413(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = draft(&org, "Big").await;
    let big = format!(
        r#"{{"name": "x", "description": "{}"}}"#,
        "a".repeat(300 * 1024)
    );
    for (method, path) in [
        (Method::POST, "/v1/flows".to_owned()),
        (Method::PUT, path(&flow)),
        (Method::POST, "/v1/flows/validate".to_owned()),
    ] {
        send_raw(&org, method, &path, big.clone())
            .await
            .expect_error(413, "PAYLOAD_TOO_LARGE");
    }
    // Exactly 256 KiB is accepted; one byte more is not.
    let at_limit = |extra: usize| {
        let body = r#"{"name": "x"}"#;
        format!("{body}{}", " ".repeat(256 * 1024 - body.len() + extra))
    };
    send_raw(&org, Method::POST, "/v1/flows", at_limit(0))
        .await
        .expect(201);
    send_raw(&org, Method::POST, "/v1/flows", at_limit(1))
        .await
        .expect_error(413, "PAYLOAD_TOO_LARGE");
}

async fn body_that_is_not_json_content_is_415(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = draft(&org, "Typed").await;
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
    ] {
        for (method, path) in [
            (Method::POST, "/v1/flows".to_owned()),
            (Method::PUT, path(&flow)),
            (Method::POST, format!("{}/publish", path(&flow))),
        ] {
            org.call(method, &path)
                .raw(content_type, r#"{"name": "x"}"#)
                .send()
                .await
                .expect_error(415, "UNSUPPORTED_MEDIA_TYPE");
        }
    }
    // No content type at all.
    org.call(Method::POST, "/v1/flows")
        .body(r#"{"name": "x"}"#)
        .send()
        .await
        .expect_error(415, "UNSUPPORTED_MEDIA_TYPE");
    // JSON with a charset is JSON.
    org.call(Method::POST, "/v1/flows")
        .raw("application/json; charset=utf-8", r#"{"name": "x"}"#)
        .send()
        .await
        .expect(201);
}

async fn huge_numeric_ids_are_404(backend: Backend) {
    let (_server, org) = start(backend).await;
    for reference in [
        "99999999999999999999999",
        "18446744073709551616",
        "9007199254740992",
        "0",
        "-1",
        "1e5",
        "00000000000000000000000001",
    ] {
        for (method, path, body) in routes_naming(reference) {
            let mut call = org.call(method.clone(), &path);
            if let Some(body) = &body {
                call = call.json(body);
            }
            let answer = call.send().await;
            assert_eq!(answer.status, 404, "{method} {path}: {}", answer.text);
            answer.expect_error(404, "NOT_FOUND");
        }
    }
}

async fn garbage_slugs_are_404(backend: Backend) {
    let (_server, org) = start(backend).await;
    for reference in [
        "flow_AAAAAAAAAAAA",
        "flow_short",
        "flow_AAAAAAAAAAAAA",
        "flow_AAAAAA%20AAAAA",
        "FLOW_AAAAAAAAAAAA",
        "flow_%F0%9F%92%A9%F0%9F%92%A9%F0%9F%92%A9",
        "%00",
        "..",
        "%2E%2E%2F%2E%2E",
        "'%20OR%201=1",
        "flow_AAAAAAAAAAA%FF",
    ] {
        for (method, path, body) in routes_naming(reference) {
            let mut call = org.call(method.clone(), &path);
            if let Some(body) = &body {
                call = call.json(body);
            }
            let answer = call.send().await;
            assert_eq!(answer.status, 404, "{method} {path}: {}", answer.text);
            answer.expect_error(404, "NOT_FOUND");
        }
    }
}

async fn data_over_200_kib_is_400(backend: Backend) {
    let (_server, org) = start(backend).await;
    let yaml = format!("text: {}\n", "a".repeat(201 * 1024));
    let mut big_object = serde_json::Map::new();
    for n in 0..2100 {
        big_object.insert(format!("key{n}"), json!("v".repeat(100)));
    }
    for data in [json!(yaml), Value::Object(big_object)] {
        let answer = org
            .post("/v1/flows", json!({"name": "x", "data": data}))
            .await;
        answer.expect_error(400, "VALIDATION_ERROR");
        assert_eq!(answer.detail_fields(), ["data"]);
    }
    // Just under the limit is fine.
    let fits = format!("text: {}\n", "a".repeat(199 * 1024));
    create(&org, json!({"name": "x", "data": fits})).await;
}

async fn invalid_yaml_data_is_400(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = draft(&org, "Yaml").await;
    for yaml in [
        "a: [unclosed",
        "a: 1\n  b: 2\n c: 3",
        "a: 1\n---\nb: 2\n",
        "key: \"unterminated",
        "a: *undefined_alias",
        "a: 1\na: 2\n",
    ] {
        let answer = org
            .post("/v1/flows", json!({"name": "x", "data": yaml}))
            .await;
        answer.expect_error(400, "VALIDATION_ERROR");
        assert_eq!(answer.detail_fields(), ["data"], "{yaml:?}");
        let answer = org.put(&path(&flow), json!({"data": yaml})).await;
        answer.expect_error(400, "VALIDATION_ERROR");
    }
}

async fn data_of_the_wrong_type_is_400(backend: Backend) {
    let (_server, org) = start(backend).await;
    for data in [json!(42), json!(true), json!(1.5)] {
        let answer = org
            .post("/v1/flows", json!({"name": "x", "data": data}))
            .await;
        answer.expect_error(400, "VALIDATION_ERROR");
        assert_eq!(answer.detail_fields(), ["data"]);
    }
}

async fn yaml_aliases_are_answered_expanded(backend: Backend) {
    let (_server, org) = start(backend).await;
    let yaml = "greeting: &hello {say: hello}\nsteps:\n  - *hello\n  - *hello\n";
    let flow = create(&org, json!({"name": "Aliases", "data": yaml})).await;
    assert_eq!(flow["data_yaml"], yaml);
    let data: Value = serde_json::from_str(flow["data"].as_str().unwrap()).unwrap();
    assert_eq!(
        data,
        json!({"greeting": {"say": "hello"}, "steps": [{"say": "hello"}, {"say": "hello"}]})
    );
}

async fn yaml_aliases_that_expand_past_1_mib_are_400(backend: Backend) {
    let (_server, org) = start(backend).await;
    // 20 KB of text that names a 5,000-item sequence 5,000 times: 25 million items.
    let wide = format!(
        "a: &a [{}]\nb: [{}]\n",
        vec!["x"; 5_000].join(","),
        vec!["*a"; 5_000].join(",")
    );
    // Refused for what it would expand to, measured while walking it, never built (the guard's
    // bounds are pinned by flows::data's unit tests).
    let answer = org
        .post("/v1/flows", json!({"name": "Bomb", "data": wide}))
        .await;
    answer.expect_error(400, "VALIDATION_ERROR");
    assert_eq!(answer.detail_fields(), ["data"]);
}

async fn json_data_with_a_merge_key_is_400_rather_than_changed(backend: Backend) {
    let (_server, org) = start(backend).await;
    for data in [json!({"<<": {"a": 1}, "b": 2}), json!("{\"<<\": 5}")] {
        let answer = org
            .post("/v1/flows", json!({"name": "Merge", "data": data}))
            .await;
        answer.expect_error(400, "VALIDATION_ERROR");
        assert_eq!(answer.detail_fields(), ["data"]);
    }
}

async fn deeply_nested_yaml_data_is_400(backend: Backend) {
    let (_server, org) = start(backend).await;
    for yaml in [
        "[".repeat(100_000),
        format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000)),
        format!("{}1{}", "{a: ".repeat(10_000), "}".repeat(10_000)),
        format!("{}x", "- ".repeat(10_000)),
    ] {
        let answer = org
            .post("/v1/flows", json!({"name": "x", "data": yaml}))
            .await;
        answer.expect_error(400, "VALIDATION_ERROR");
    }
    get(&org, "/v1/flows").await;
}

async fn entry_points_with_a_bad_e164_number_or_language_tag_are_400_naming_the_entry(
    backend: Backend,
) {
    let (_server, org) = start(backend).await;
    let answer = org
        .post(
            "/v1/flows",
            json!({"name": "x", "entry_points": [
                {"entry_number": "5551234567", "entry_language": "english"},
                {"entry_number": "+15551234567", "entry_language": "en-US"},
                {"entry_number": "+0123456789"},
                {"entry_language": "e"},
                {"entry_number": "+1 555 123 4567"},
                {"entry_number": 15551234567_u64},
                "not an object"
            ]}),
        )
        .await;
    answer.expect_error(400, "VALIDATION_ERROR");
    assert_eq!(
        answer.detail_fields(),
        [
            "entry_points[0].entry_number",
            "entry_points[0].entry_language",
            "entry_points[2].entry_number",
            "entry_points[3].entry_language",
            "entry_points[4].entry_number",
            "entry_points[5].entry_number",
            "entry_points[6]",
        ]
    );
    let answer = org
        .post(
            "/v1/flows",
            json!({"name": "x", "entry_points": [{"entry_id": "a"}, {"entry_id": "a"}]}),
        )
        .await;
    answer.expect_error(400, "VALIDATION_ERROR");
    assert_eq!(answer.detail_fields(), ["entry_points[1].entry_id"]);
}

async fn more_than_50_entry_points_are_400(backend: Backend) {
    let (_server, org) = start(backend).await;
    let points: Vec<Value> = (0..51).map(|_| json!({})).collect();
    let answer = org
        .post("/v1/flows", json!({"name": "x", "entry_points": points}))
        .await;
    answer.expect_error(400, "VALIDATION_ERROR");
    assert_eq!(answer.detail_fields(), ["entry_points"]);
    let fifty: Vec<Value> = (0..50).map(|_| json!({})).collect();
    let flow = create(&org, json!({"name": "x", "entry_points": fifty})).await;
    assert_eq!(flow["entry_points"].as_array().unwrap().len(), 50);
}

async fn bad_action_bodies_are_400_naming_the_field(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = published(&org, "Actions").await;
    for (route, body, field) in [
        ("publish", json!({"version": "2"}), "version"),
        ("publish", json!({"version": 0}), "version"),
        ("publish", json!({"version": 1.5}), "version"),
        ("publish", json!({"version": 99999999999_u64}), "version"),
        ("publish", json!({"force": true}), "force"),
        ("versions", json!({"from_version": -1}), "from_version"),
        ("versions", json!({"from_version": "1"}), "from_version"),
        ("versions", json!({"name": "x"}), "name"),
    ] {
        let answer = org
            .post(&format!("{}/{route}", path(&flow)), body.clone())
            .await;
        answer.expect_error(400, "VALIDATION_ERROR");
        assert_eq!(answer.detail_fields(), [field], "{route} {body}");
    }
}

async fn unknown_query_parameters_are_400_on_every_route(backend: Backend) {
    let (_server, org) = start(backend).await;
    let flow = draft(&org, "Queried").await;
    let routes = [
        (
            Method::POST,
            "/v1/flows".to_owned(),
            Some(json!({"name": "x"})),
        ),
        (Method::GET, "/v1/flows".to_owned(), None),
        (
            Method::POST,
            "/v1/flows/validate".to_owned(),
            Some(json!({"name": "x"})),
        ),
        (Method::GET, path(&flow), None),
        (Method::PUT, path(&flow), Some(json!({"name": "x"}))),
        (Method::DELETE, path(&flow), None),
        (Method::GET, format!("{}/versions", path(&flow)), None),
        (
            Method::POST,
            format!("{}/versions", path(&flow)),
            Some(json!({})),
        ),
        (
            Method::POST,
            format!("{}/publish", path(&flow)),
            Some(json!({})),
        ),
    ];
    for (method, path, body) in routes {
        let mut call = org.call(method.clone(), &format!("{path}?dry_run=1"));
        if let Some(body) = &body {
            call = call.json(body);
        }
        let answer = call.send().await;
        assert_eq!(answer.status, 400, "{method} {path}: {}", answer.text);
        answer.expect_error(400, "VALIDATION_ERROR");
        assert_eq!(answer.detail_fields(), ["dry_run"], "{method} {path}");
    }
    // Nothing happened.
    let unchanged = get(&org, &path(&flow)).await;
    assert_eq!(unchanged["name"], "Queried");
    assert_eq!(unchanged["status"], "DRAFT");
    assert_eq!(get(&org, "/v1/flows").await["total_records"], 1);
}
