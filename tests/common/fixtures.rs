//! The `events/*.json` fixtures as the functions receive them, with their example ids replaced
//! by those of resources a test made (as tests/handlers.rs does), for tests/costs.rs,
//! tests/scale.rs and the Criterion benches.

use std::path::Path;

use flowline_core::ApiRequest;
use flowline_lambda::api_request;
use jiff::Timestamp;
use serde_json::Value;

/// Example values of the fixtures.
pub const FIXTURE_FLOW: &str = "flow_7Hq2LmN9xKp3";
pub const FIXTURE_CALLBACK: &str = "cb_00VbcKJYqKy9Pf34qY6Nb3w";
pub const FIXTURE_WEBHOOK: &str = "we_00VbcKHANWD25RQ4F5ZR3qa";
pub const FIXTURE_WEBHOOK_URL: &str = "https://agents.acme.example.com/flowline/events";
pub const FIXTURE_TRIGGER: &str = "fcb_00VbcKLmQ3sT8uV1wX4yZ6a";
pub const FIXTURE_SIGNATURE: &str = "kR2vXw9QpL4mT7nZc1Yb8Hs3Gd6Jf0Ua5Ee2Ki9Oo4M";

pub fn fixture_text(function: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("events")
        .join(format!("{function}.json"));
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

pub fn fixture_json(function: &str) -> Value {
    serde_json::from_str(&fixture_text(function)).expect("a JSON fixture")
}

/// The fixture of an HTTP function as its runtime hands it over.
pub fn event(function: &str) -> ApiRequest {
    event_with(function, &[])
}

/// The fixture with each example value replaced wherever it occurs (each must occur).
pub fn event_with(function: &str, replacements: &[(&str, &str)]) -> ApiRequest {
    let mut text = fixture_text(function);
    for (example, actual) in replacements {
        assert!(
            text.contains(example),
            "events/{function}.json has no {example}"
        );
        text = text.replace(example, actual);
    }
    api_request(lambda_http::request::from_str(&text).expect("an HTTP API v2 event"))
}

/// The request with its own `Idempotency-Key`, so a create is a create, not a replay.
pub fn with_idempotency_key(mut request: ApiRequest, key: &str) -> ApiRequest {
    request
        .headers
        .insert("idempotency-key", key.parse().expect("a header value"));
    request
}

/// When the callback fixtures were recorded (`requestContext.timeEpoch`): a clock standing
/// there sees their `scheduled_at` ahead.
pub fn recorded_at(function: &str) -> Timestamp {
    let epoch_ms = fixture_json(function)["requestContext"]["timeEpoch"]
        .as_i64()
        .expect("timeEpoch");
    Timestamp::from_millisecond(epoch_ms).expect("a time")
}
