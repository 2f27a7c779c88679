//! `openapi.yaml`, the API contract: it describes exactly the router's routes, every error it
//! declares has the one error shape, and the local server serves it.

mod common;

use std::collections::BTreeSet;

use common::{Backend, TestServer};
use flowline_core::routes::{Access, ROUTES};
use flowline_core::webhooks::deliveries::{DeliveryStatus, DeliveryView};
use flowline_core::webhooks::delivery::AttemptRecord;
use flowline_core::webhooks::{EVENT_TYPES, Endpoint, EndpointStatus, EndpointView, EventType};
use reqwest::Method;
use serde_json::{Value, json};

const DOCUMENT: &str = include_str!("../openapi.yaml");
const ERROR_SCHEMA: &str = "#/components/schemas/Error";
const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "patch", "options", "head", "trace",
];
/// The Standard Webhooks headers of every delivery.
const DELIVERY_HEADERS: [&str; 3] = ["webhook-id", "webhook-timestamp", "webhook-signature"];

fn document() -> Value {
    serde_yaml_ng::from_str(DOCUMENT).expect("openapi.yaml parses")
}

/// The object a local `$ref` (`#/components/...`) points at.
fn resolve<'a>(document: &'a Value, reference: &str) -> &'a Value {
    let pointer = reference
        .strip_prefix('#')
        .unwrap_or_else(|| panic!("{reference} is not a local reference"));
    document
        .pointer(pointer)
        .unwrap_or_else(|| panic!("{reference} points at nothing"))
}

/// `value`, or what it refers to when it is a `$ref`.
fn dereference<'a>(document: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => resolve(document, reference),
        None => value,
    }
}

/// Every operation: (METHOD, path, operation, the path item's own parameters).
fn operations(document: &Value) -> Vec<(String, String, &Value, &Value)> {
    let paths = document["paths"].as_object().expect("paths");
    let mut found = Vec::new();
    for (path, item) in paths {
        for (method, operation) in item.as_object().expect("path item") {
            if METHODS.contains(&method.as_str()) {
                found.push((
                    method.to_ascii_uppercase(),
                    path.clone(),
                    operation,
                    &item["parameters"],
                ));
            }
        }
    }
    found
}

fn is_open(operation: &Value) -> bool {
    operation
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(Vec::is_empty)
}

#[test]
fn the_document_describes_exactly_the_routes_of_the_router() {
    let document = document();
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "an OpenAPI 3.1 document"
    );
    let described: BTreeSet<(String, String)> = operations(&document)
        .into_iter()
        .map(|(method, path, _, _)| (method, path))
        .collect();
    let routed: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|route| (route.method.to_string(), route.path.to_owned()))
        .collect();
    let undocumented: Vec<_> = routed.difference(&described).collect();
    let unrouted: Vec<_> = described.difference(&routed).collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "routes missing from openapi.yaml: {undocumented:?}; operations the router does not have: {unrouted:?}"
    );
}

#[test]
fn open_routes_and_only_they_go_without_an_api_key() {
    let document = document();
    let bearer = &document["components"]["securitySchemes"]["apiKey"];
    assert_eq!(bearer["type"], "http");
    assert_eq!(bearer["scheme"], "bearer");
    assert_eq!(document["security"], serde_json::json!([{ "apiKey": [] }]));
    for (method, path, operation, _) in operations(&document) {
        let route = ROUTES
            .iter()
            .find(|route| route.method.as_str() == method && route.path == path);
        if let Some(route) = route {
            assert_eq!(
                is_open(operation),
                route.access == Access::Open,
                "{method} {path}: `security: []` exactly when the route needs no API key"
            );
        }
    }
}

#[test]
fn every_keyed_operation_declares_401_and_every_write_403() {
    let document = document();
    for (method, path, operation, _) in operations(&document) {
        let responses = &operation["responses"];
        if is_open(operation) {
            assert!(
                responses.get("401").is_none(),
                "{method} {path} takes no key, so it never answers 401"
            );
            continue;
        }
        assert!(
            responses.get("401").is_some(),
            "{method} {path} declares no 401"
        );
        assert_eq!(
            responses.get("403").is_some(),
            method != "GET",
            "{method} {path}: public keys get 403 on writes, and only there"
        );
    }
}

#[test]
fn every_error_response_has_the_error_shape() {
    let document = document();
    let error = resolve(&document, ERROR_SCHEMA);
    assert_eq!(error["required"], serde_json::json!(["error", "code"]));
    for (method, path, operation, _) in operations(&document) {
        let responses = operation["responses"].as_object().expect("responses");
        assert!(
            responses.keys().any(|status| status.starts_with('2')),
            "{method} {path} declares no success"
        );
        for (status, response) in responses {
            let response = dereference(&document, response);
            let json = &response["content"]["application/json"]["schema"];
            if status.starts_with('4') || status.starts_with('5') {
                assert_eq!(
                    json["$ref"], ERROR_SCHEMA,
                    "{method} {path} {status}: an error answers the Error schema"
                );
            } else {
                assert!(
                    json.is_object(),
                    "{method} {path} {status}: a success answers a JSON schema"
                );
            }
        }
    }
}

#[test]
fn path_parameters_are_declared_and_every_reference_resolves() {
    let document = document();
    for (method, path, operation, shared) in operations(&document) {
        let mut declared = BTreeSet::new();
        for list in [shared, &operation["parameters"]] {
            for parameter in list.as_array().into_iter().flatten() {
                let parameter = dereference(&document, parameter);
                if parameter["in"] == "path" {
                    assert_eq!(parameter["required"], true, "{method} {path}");
                    declared.insert(parameter["name"].as_str().expect("name").to_owned());
                }
            }
        }
        let templated: BTreeSet<String> = path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .map(str::to_owned)
            .collect();
        assert_eq!(declared, templated, "{method} {path}: path parameters");
    }
    fn walk(document: &Value, value: &Value) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(reference)) = map.get("$ref") {
                    resolve(document, reference);
                }
                map.values().for_each(|v| walk(document, v));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(document, v)),
            _ => {}
        }
    }
    walk(&document, &document);
}

#[tokio::test]
async fn the_local_server_serves_the_document_without_a_key() {
    let server = TestServer::start(Backend::Memory).await;
    let answer = server.anonymous(Method::GET, "/openapi.yaml").send().await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.header("content-type"), Some("application/yaml"));
    assert_eq!(answer.text, DOCUMENT);
}

/// The operation with this `operationId`.
fn operation_by_id<'a>(document: &'a Value, id: &str) -> Option<(String, &'a Value, &'a Value)> {
    operations(document)
        .into_iter()
        .find(|(_, _, operation, _)| operation["operationId"] == id)
        .map(|(_, path, operation, shared)| (path, operation, shared))
}

/// The names of an operation's parameters (its own and its path's).
fn parameter_names(document: &Value, operation: &Value, shared: &Value) -> BTreeSet<String> {
    [shared, &operation["parameters"]]
        .into_iter()
        .flat_map(|list| list.as_array().into_iter().flatten())
        .map(|parameter| {
            dereference(document, parameter)["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

#[test]
fn every_link_targets_an_operation_and_only_what_it_takes() {
    let document = document();
    let mut links = 0;
    for (method, path, operation, _) in operations(&document) {
        for (status, response) in operation["responses"].as_object().expect("responses") {
            let response = dereference(&document, response);
            for (name, link) in response["links"].as_object().into_iter().flatten() {
                links += 1;
                let target = link["operationId"]
                    .as_str()
                    .expect("links name an operationId");
                let (_, target_operation, target_shared) = operation_by_id(&document, target)
                    .unwrap_or_else(|| {
                        panic!("{method} {path} {status} {name}: no operation {target}")
                    });
                let takes = parameter_names(&document, target_operation, target_shared);
                for parameter in link["parameters"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, _)| k)
                {
                    assert!(
                        takes.contains(parameter),
                        "{method} {path} {status} {name}: {target} takes no parameter {parameter}"
                    );
                }
                if let Some(body) = link["requestBody"].as_object() {
                    let schema = dereference(
                        &document,
                        &target_operation["requestBody"]["content"]["application/json"]["schema"],
                    );
                    for field in body.keys() {
                        assert!(
                            schema["properties"].get(field).is_some(),
                            "{method} {path} {status} {name}: {target}'s body has no field {field}"
                        );
                    }
                }
            }
        }
    }
    assert!(links > 0, "the stateful fuzzer follows links");
}

#[test]
fn every_create_links_to_reading_what_it_created() {
    let document = document();
    for (method, path, operation, _) in operations(&document) {
        let Some(created) = operation["responses"].get("201") else {
            continue;
        };
        if is_open(operation) {
            // A trigger URL's answer may be XML or text: nothing to follow.
            continue;
        }
        let reads = dereference(&document, created)["links"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(_, link)| operation_by_id(&document, link["operationId"].as_str()?))
            .any(|(target, _, _)| {
                operations(&document)
                    .iter()
                    .any(|(m, p, _, _)| m == "GET" && *p == target)
            });
        assert!(
            reads,
            "{method} {path}: its 201 links to no GET of what it made"
        );
    }
}

#[test]
fn conditional_and_idempotent_requests_declare_their_headers() {
    let document = document();
    // SPEC §1: the create routes that honour Idempotency-Key.
    let idempotent = [
        ("POST", "/v1/flows"),
        ("POST", "/v1/callbacks"),
        ("POST", "/v1/webhooks"),
        ("POST", "/v1/flows/{flow}/callbacks"),
        ("POST", "/v1/hooks/{id}"),
    ];
    for (method, path, operation, shared) in operations(&document) {
        let names = parameter_names(&document, operation, shared);
        assert_eq!(
            names.contains("If-Match"),
            method == "PUT" || method == "PATCH",
            "{method} {path}: If-Match on PUT and PATCH, and only there"
        );
        assert_eq!(
            names.contains("Idempotency-Key"),
            idempotent.contains(&(method.as_str(), path.as_str())),
            "{method} {path}: Idempotency-Key on the SPEC's create routes, and only there"
        );
        if names.contains("If-Match") {
            assert!(
                operation["responses"].get("412").is_some(),
                "{method} {path} declares no 412"
            );
        }
    }
}

#[test]
fn every_keyed_operation_declares_400() {
    // An Authorization header that is not text is a 400 naming it, on every keyed route.
    let document = document();
    for (method, path, operation, _) in operations(&document) {
        if !is_open(operation) {
            assert!(
                operation["responses"].get("400").is_some(),
                "{method} {path} declares no 400"
            );
        }
    }
}

/// The keys of a JSON object.
fn keys_of(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("{value} is no object"))
        .keys()
        .cloned()
        .collect()
}

/// A schema's property names, and what it requires.
fn properties_and_required(schema: &Value) -> (BTreeSet<String>, BTreeSet<String>) {
    let required = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    (keys_of(&schema["properties"]), required)
}

#[test]
fn the_event_type_schema_lists_exactly_the_event_types() {
    let document = document();
    let listed: Vec<&str> = document["components"]["schemas"]["EventType"]["enum"]
        .as_array()
        .expect("an enum")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(listed, EVENT_TYPES);
}

#[test]
fn the_webhooks_section_describes_exactly_the_event_types() {
    let document = document();
    let webhooks = document["webhooks"]
        .as_object()
        .expect("a `webhooks` section");
    let described: BTreeSet<&str> = webhooks.keys().map(String::as_str).collect();
    let sent: BTreeSet<&str> = EVENT_TYPES.iter().copied().collect();
    assert_eq!(described, sent, "one entry per event type, named after it");
    for (event_type, item) in webhooks {
        let operation = &item["post"];
        assert!(operation.is_object(), "{event_type}: a POST");
        let headers: BTreeSet<&str> = operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|parameter| dereference(&document, parameter))
            .filter(|parameter| parameter["in"] == "header" && parameter["required"] == true)
            .filter_map(|parameter| parameter["name"].as_str())
            .collect();
        assert_eq!(
            headers,
            BTreeSet::from(DELIVERY_HEADERS),
            "{event_type}: the Standard Webhooks headers, each required"
        );
        let content = &operation["requestBody"]["content"]["application/json"];
        let body = dereference(&document, &content["schema"]);
        let type_schema = dereference(&document, &body["properties"]["type"]);
        let only = type_schema
            .get("const")
            .or_else(|| match type_schema["enum"].as_array() {
                Some(values) if values.len() == 1 => values.first(),
                _ => None,
            });
        assert_eq!(
            only.and_then(Value::as_str),
            Some(event_type.as_str()),
            "{event_type}: the body's `type` is this type and no other"
        );
        let (properties, required) = properties_and_required(body);
        let event = BTreeSet::from(["id", "type", "created_at", "data"].map(str::to_owned));
        assert_eq!(
            (&properties, &required),
            (&event, &event),
            "{event_type}: the body is an event"
        );
        let examples = content["examples"].as_object().expect("examples");
        assert!(!examples.is_empty(), "{event_type}: an example");
        for (name, example) in examples {
            let value = &dereference(&document, example)["value"];
            assert_eq!(value["type"], event_type.as_str(), "{event_type} {name}");
            assert_eq!(keys_of(value), event, "{event_type} {name}: an event");
        }
        assert!(
            operation["responses"]
                .as_object()
                .is_some_and(|responses| responses.keys().any(|status| status.starts_with('2'))),
            "{event_type}: what a receiver answers to accept it"
        );
    }
    let dispatch = &webhooks["callback.dispatch"]["post"]["responses"]["200"];
    let answer = dereference(
        &document,
        &dispatch["content"]["application/json"]["schema"],
    );
    assert!(
        answer["properties"]["session_id"].is_object(),
        "a receiver of callback.dispatch may answer its session_id"
    );
}

fn a_timestamp() -> jiff::Timestamp {
    flowline_core::time::parse_timestamp("2026-11-21T14:15:22.123Z").expect("a timestamp")
}

#[test]
fn the_delivery_schemas_have_exactly_the_fields_of_a_delivery() {
    let document = document();
    let schema = |name: &str| properties_and_required(&document["components"]["schemas"][name]);
    let view = DeliveryView {
        id: "del_00VbcK9ge7Kq2Lm4Np6Rs8T".to_owned(),
        endpoint_id: "we_1bKq9Xz3Lb4Ns6Tu8Wx0Za2".to_owned(),
        event_id: "evt_00VbcK9ge5Hk8Jm1Pq3Rt5V".to_owned(),
        event_type: EventType::CallbackFailed,
        status: DeliveryStatus::Pending,
        attempts: vec![AttemptRecord {
            at: a_timestamp(),
            status_code: Some(503),
            error: Some("HTTP 503".to_owned()),
            duration_ms: 212,
        }],
        next_attempt_at: Some(a_timestamp()),
        created_at: a_timestamp(),
        payload: None,
    };
    let listed = serde_json::to_value(&view).expect("serializes");
    let fields = keys_of(&listed);
    assert_eq!(schema("Delivery"), (fields.clone(), fields), "Delivery");
    let attempt = keys_of(&listed["attempts"][0]);
    assert_eq!(
        schema("DeliveryAttempt"),
        (attempt.clone(), attempt),
        "DeliveryAttempt"
    );
    let one = DeliveryView {
        payload: Some(json!({"id": "evt_00VbcK9ge5Hk8Jm1Pq3Rt5V", "type": "callback.failed"})),
        ..view
    };
    let fields = keys_of(&serde_json::to_value(&one).expect("serializes"));
    assert_eq!(
        schema("DeliveryWithPayload"),
        (fields.clone(), fields),
        "DeliveryWithPayload"
    );
}

#[test]
fn the_endpoint_schemas_have_exactly_the_fields_of_an_endpoint() {
    let document = document();
    let schema = |name: &str| properties_and_required(&document["components"]["schemas"][name]);
    let endpoint = Endpoint {
        id: "we_1bKq9Xz3Lb4Ns6Tu8Wx0Za2".to_owned(),
        url: "https://agents.example.com/dispatch".to_owned(),
        events: vec![EventType::CallbackDispatch],
        status: EndpointStatus::Disabled,
        description: None,
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw4wU6uQmCCzs=".to_owned(),
        disabled_reason: None,
        failing_since: None,
        previous_secret: None,
        previous_secret_until: None,
        created_at: a_timestamp(),
        updated_at: a_timestamp(),
    };
    for (name, show_secret) in [("WebhookEndpoint", false), ("NewWebhookEndpoint", true)] {
        let shown = EndpointView::new(endpoint.clone(), show_secret);
        let fields = keys_of(&serde_json::to_value(&shown).expect("serializes"));
        assert_eq!(schema(name), (fields.clone(), fields), "{name}");
    }
}
