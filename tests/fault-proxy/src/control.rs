//! The control API under `/__proxy/`, for scripts and tests in another process.

use bytes::Bytes;
use http::{Method, Response};
use http_body_util::Full;
use serde::Serialize;
use serde_json::json;

use crate::rules::Rule;
use crate::state::State;
use crate::wire::Answer;

pub const PREFIX: &str = "/__proxy/";

pub(crate) fn answer(state: &State, method: &Method, path: &str, body: &[u8]) -> Answer {
    match (method.as_str(), path) {
        ("POST", "/__proxy/rules") => match serde_json::from_slice::<Rule>(body) {
            Ok(rule) => match state.add_rule(rule.clone()) {
                Ok(()) => json_answer(201, &rule),
                Err(error) => json_answer(400, &json!({ "error": error })),
            },
            Err(error) => json_answer(400, &json!({ "error": error.to_string() })),
        },
        ("DELETE", "/__proxy/rules") => {
            state.clear_rules();
            json_answer(204, &())
        }
        ("GET", "/__proxy/counts") => json_answer(200, &*state.counts()),
        ("POST", "/__proxy/counts/reset") => {
            state.reset_counts();
            json_answer(204, &())
        }
        _ => json_answer(
            404,
            &json!({ "error": "the control API is POST|DELETE /__proxy/rules, \
                               GET /__proxy/counts, POST /__proxy/counts/reset" }),
        ),
    }
}

fn json_answer(status: u16, body: &impl Serialize) -> Answer {
    let body = if status == 204 {
        Bytes::new()
    } else {
        Bytes::from(serde_json::to_vec(body).expect("serializable"))
    };
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(body))
        .expect("a valid response")
}
