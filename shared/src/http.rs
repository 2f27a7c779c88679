//! The HTTP shape of every route, independent of where it runs: [`ApiRequest`] is built from a
//! Lambda event (`lambda.rs`) or by the local server, and every handler answers an
//! [`ApiResult<ApiResponse>`] that [`render`] turns into the wire response in one place.

use std::collections::HashMap;

use bytes::Bytes;
pub use http::{HeaderMap, Method, StatusCode};
use http::{HeaderValue, header};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::auth::{Caller, KeyKind};
use crate::error::{ApiError, ApiResult, ErrorCode, FieldProblem};

/// The text of header `name`, if present; a 400 `VALIDATION_ERROR` naming it when it is not
/// visible ASCII.
pub fn text_header<'a>(headers: &'a HeaderMap, name: &str) -> ApiResult<Option<&'a str>> {
    match headers.get(name) {
        None => Ok(None),
        // Visible ASCII and spaces (`Bearer <key>`): `to_str` also lets a tab through.
        Some(value) if value.as_bytes().iter().all(|b| (b' '..=b'~').contains(b)) => {
            Ok(value.to_str().ok())
        }
        Some(_) => Err(ApiError::invalid_field(
            &header_label(name),
            "must be visible ASCII text",
        )),
    }
}

/// `idempotency-key` → `Idempotency-Key`, as the SPEC names headers.
fn header_label(name: &str) -> String {
    name.split('-')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// Request bodies above this are refused with 413 (SPEC §1).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

#[derive(Clone)]
pub struct ApiRequest {
    pub method: Method,
    pub path: String,
    /// The route's `{name}` segments, percent-decoded.
    pub path_params: HashMap<String, String>,
    /// The raw query string (without `?`).
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Who called: set by the authorizer (Lambda) or the in-process auth (local server).
    pub caller: Option<Caller>,
    /// Why there is no caller when it is not a plain 401 (the keys table was unreachable).
    pub auth_failure: Option<ApiError>,
    /// The address the request came from (API Gateway's `sourceIp`; the peer locally).
    pub source_ip: Option<String>,
}

/// Without headers, query or body: they carry keys, trigger signatures and customer data.
impl std::fmt::Debug for ApiRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("caller", &self.caller)
            .finish_non_exhaustive()
    }
}

impl ApiRequest {
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            path_params: HashMap::new(),
            query: None,
            headers: HeaderMap::new(),
            body: Bytes::new(),
            caller: None,
            auth_failure: None,
            source_ip: None,
        }
    }

    /// The authenticated caller; 401 when there is none (503 when keys could not be read).
    pub fn caller(&self) -> ApiResult<&Caller> {
        self.caller.as_ref().ok_or_else(|| {
            self.auth_failure
                .clone()
                .unwrap_or_else(ApiError::unauthorized)
        })
    }

    /// The caller of a write: public keys may only read (403).
    pub fn writer(&self) -> ApiResult<&Caller> {
        let caller = self.caller()?;
        match caller.kind {
            KeyKind::Private => Ok(caller),
            KeyKind::Public => Err(ApiError::forbidden(
                "Public keys can only read; use a private key (sk_…) to write",
            )),
        }
    }

    /// A path parameter; empty when absent (which no id matches, so it ends as 404).
    pub fn path_param(&self, name: &str) -> &str {
        self.path_params
            .get(name)
            .map(String::as_str)
            .unwrap_or_default()
    }

    /// A header's text; 400 naming the header when it is there but not visible ASCII (SPEC §1:
    /// never silently ignored).
    pub fn header(&self, name: &str) -> ApiResult<Option<&str>> {
        text_header(&self.headers, name)
    }

    /// The query parameters, refusing any not in `allowed` and any given twice.
    pub fn query_params(&self, allowed: &[&str]) -> ApiResult<QueryParams> {
        let mut params = HashMap::new();
        let mut problems = Vec::new();
        for (name, value) in
            form_urlencoded::parse(self.query.as_deref().unwrap_or_default().as_bytes())
        {
            if !allowed.contains(&name.as_ref()) {
                problems.push(FieldProblem::new(name.as_ref(), "unknown query parameter"));
            } else if params.insert(name.to_string(), value.to_string()).is_some() {
                problems.push(FieldProblem::new(name.as_ref(), "given more than once"));
            }
        }
        if problems.is_empty() {
            Ok(QueryParams(params))
        } else {
            Err(ApiError::validation(problems))
        }
    }

    /// The body as a JSON object (create and update routes).
    pub fn json_object(&self) -> ApiResult<Map<String, Value>> {
        self.check_body()?;
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::invalid_json(
                "The request body must be a JSON object",
            ));
        }
        parse_object(&self.body)
    }

    /// The body of an action route: empty means `{}`.
    pub fn json_object_or_empty(&self) -> ApiResult<Map<String, Value>> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Map::new());
        }
        self.check_body()?;
        parse_object(&self.body)
    }

    fn check_body(&self) -> ApiResult<()> {
        if self.body.len() > MAX_BODY_BYTES {
            return Err(ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("The request body is over {} KiB", MAX_BODY_BYTES / 1024),
            ));
        }
        let content_type = self
            .header(header::CONTENT_TYPE.as_str())?
            .unwrap_or_default();
        if !is_json_media_type(content_type) {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "The request body must be sent as Content-Type: application/json",
            ));
        }
        Ok(())
    }
}

/// `application/json`, `application/json; charset=utf-8`, or a `+json` type.
fn is_json_media_type(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn parse_object(body: &[u8]) -> ApiResult<Map<String, Value>> {
    // serde_json refuses invalid UTF-8 and nesting deeper than 128 levels, so neither can panic
    // or overflow the stack.
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::invalid_json(
            "The request body must be a JSON object",
        )),
        Err(err) => Err(ApiError::invalid_json(format!(
            "The request body is not valid JSON: {err}"
        ))),
    }
}

/// Query parameters after [`ApiRequest::query_params`] checked their names.
#[derive(Debug, Default)]
pub struct QueryParams(HashMap<String, String>);

impl QueryParams {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// `next_page_token`; an empty one (a client's first request, `?next_page_token=`) means
    /// the first page.
    pub fn page_token(&self) -> Option<&str> {
        self.get("next_page_token")
            .filter(|token| !token.is_empty())
    }

    /// An integer parameter within `range`, or `default` when absent.
    pub fn integer(
        &self,
        name: &str,
        range: std::ops::RangeInclusive<u32>,
        default: u32,
    ) -> ApiResult<u32> {
        match self.get(name) {
            None => Ok(default),
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|n| range.contains(n))
                .ok_or_else(|| {
                    ApiError::invalid_field(
                        name,
                        format!(
                            "must be a whole number from {} to {}",
                            range.start(),
                            range.end()
                        ),
                    )
                }),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ApiResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl ApiResponse {
    pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Self {
        let body = serde_json::to_vec(value).expect("API values serialize");
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Self {
            status,
            headers,
            body: body.into(),
        }
    }

    pub fn ok<T: Serialize>(value: &T) -> Self {
        Self::json(StatusCode::OK, value)
    }

    /// A single resource: its body, with an `ETag` derived from exactly that body.
    pub fn resource<T: Serialize>(status: StatusCode, value: &T) -> Self {
        let response = Self::json(status, value);
        let etag = etag_of_bytes(&response.body);
        response.with_header(header::ETAG, &etag)
    }

    /// The answer of a `DELETE`.
    pub fn message(text: impl Into<String>) -> Self {
        Self::ok(&serde_json::json!({ "message": text.into() }))
    }

    pub fn with_header(mut self, name: header::HeaderName, value: &str) -> Self {
        if let Ok(value) = HeaderValue::from_str(value) {
            self.headers.insert(name, value);
        }
        self
    }

    pub fn error(err: &ApiError) -> Self {
        let mut response = Self::json(err.status(), &err.body());
        if let Some(seconds) = err.retry_after {
            response = response.with_header(header::RETRY_AFTER, &seconds.to_string());
        }
        response
    }
}

/// The one place a handler's result becomes a response.
pub fn render(result: ApiResult<ApiResponse>) -> ApiResponse {
    match result {
        Ok(response) => response,
        Err(err) => {
            if err.code == ErrorCode::Internal {
                tracing::error!(error = %err.message, "internal error");
            }
            ApiResponse::error(&err)
        }
    }
}

/// The `ETag` of a representation: a digest of its exact bytes.
pub fn etag_of_bytes(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    format!("\"{}\"", crate::ids::to_hex(&digest[..12]))
}

pub fn etag_of<T: Serialize>(value: &T) -> String {
    etag_of_bytes(&serde_json::to_vec(value).expect("API values serialize"))
}

/// `If-Match`: absent passes; `*` or any listed tag equal to `current` passes; else 412.
pub fn check_if_match(if_match: Option<&str>, current: &str) -> ApiResult<()> {
    let Some(if_match) = if_match else {
        return Ok(());
    };
    let matches = if_match
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == current);
    if matches {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::PreconditionFailed,
            "If-Match does not match the current ETag; read the resource again",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_body(content_type: Option<&str>, body: &[u8]) -> ApiRequest {
        let mut request = ApiRequest::new(Method::POST, "/v1/flows");
        if let Some(content_type) = content_type {
            request.headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_str(content_type).unwrap(),
            );
        }
        request.body = Bytes::copy_from_slice(body);
        request
    }

    #[test]
    fn json_media_types_are_recognised() {
        assert!(is_json_media_type("application/json"));
        assert!(is_json_media_type("Application/JSON; charset=utf-8"));
        assert!(is_json_media_type("application/merge-patch+json"));
        assert!(!is_json_media_type("text/plain"));
        assert!(!is_json_media_type(""));
    }

    #[test]
    fn bad_bodies_get_their_own_codes() {
        let code = |request: ApiRequest| request.json_object().unwrap_err().code;
        assert_eq!(
            code(with_body(Some("text/plain"), b"{}")),
            ErrorCode::UnsupportedMediaType
        );
        assert_eq!(
            code(with_body(Some("application/json"), b"[1]")),
            ErrorCode::InvalidJson
        );
        assert_eq!(
            code(with_body(Some("application/json"), b"{\"a\":")),
            ErrorCode::InvalidJson
        );
        assert_eq!(
            code(with_body(Some("application/json"), b"{\"a\":\"\xff\"}")),
            ErrorCode::InvalidJson
        );
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(
            code(with_body(
                Some("application/json"),
                format!("{{\"a\":{deep}}}").as_bytes()
            )),
            ErrorCode::InvalidJson
        );
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(
            code(with_body(Some("application/json"), &big)),
            ErrorCode::PayloadTooLarge
        );
    }

    #[test]
    fn if_match_accepts_star_lists_and_weak_tags() {
        assert!(check_if_match(None, "\"a\"").is_ok());
        assert!(check_if_match(Some("*"), "\"a\"").is_ok());
        assert!(check_if_match(Some("\"b\", W/\"a\""), "\"a\"").is_ok());
        assert_eq!(
            check_if_match(Some("\"b\""), "\"a\"").unwrap_err().code,
            ErrorCode::PreconditionFailed
        );
    }
}
