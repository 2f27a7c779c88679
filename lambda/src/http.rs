//! The Lambda side of every HTTP function: turn the API Gateway (HTTP API, payload v2) event
//! into an [`ApiRequest`] (the authorizer's context becomes the [`Caller`]), run the route's
//! handler, and render its result; and the same for non-HTTP events (scheduler input, sweeper
//! tick, authorizer request).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

use std::time::Duration;

use flowline_core::auth::{Caller, KeyKind};
use flowline_core::deadline;
use flowline_core::error::ApiResult;
use flowline_core::http::{ApiRequest, ApiResponse, render};
use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt, service_fn};
use tokio::time::Instant;

use crate::Error;
use crate::authorizer::context;

/// Serves `handler` as this Lambda function's HTTP handler, each request within API Gateway's
/// time (and the invocation's own), logged as one line ([`serve`]).
pub async fn run_http<F, Fut>(handler: F) -> Result<(), Error>
where
    F: Fn(ApiRequest) -> Fut + Sync,
    Fut: Future<Output = ApiResult<ApiResponse>> + Send,
{
    let handler = &handler;
    lambda_http::run(service_fn(move |event: lambda_http::Request| async move {
        Ok::<_, Error>(serve(handler, event).await)
    }))
    .await
}

/// Whether this sandbox has served nothing yet: its first invocation is a cold start.
static COLD: AtomicBool = AtomicBool::new(true);

fn cold_start() -> bool {
    COLD.swap(false, Ordering::Relaxed)
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// One API Gateway request: run `handler` within the time left and answer, then log the one
/// line an operator looks for — `"message": "request"` with the Lambda and API Gateway request
/// ids, the route, the caller's organization, the status (and error code), the latency, whether
/// it was a cold start and the X-Ray trace id.
pub async fn serve<F, Fut>(handler: &F, event: lambda_http::Request) -> lambda_http::Response<Body>
where
    F: Fn(ApiRequest) -> Fut + Sync,
    Fut: Future<Output = ApiResult<ApiResponse>> + Send,
{
    let started = Instant::now();
    let cold_start = cold_start();
    let lambda = event.lambda_context_ref();
    let budget = lambda
        .map_or(deadline::HTTP_BUDGET, |lambda| {
            invocation_budget(lambda.deadline)
        })
        .min(deadline::HTTP_BUDGET);
    let function_request_id = lambda.map(|lambda| lambda.request_id.clone());
    let xray_trace_id = lambda.and_then(|lambda| lambda.xray_trace_id.clone());
    let (api_request_id, route) = match event.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => {
            (context.request_id.clone(), context.route_key.clone())
        }
        _ => (None, None),
    };
    let request = api_request(event);
    let organization = request
        .caller
        .as_ref()
        .map(|caller| caller.organization_id.clone());
    let answer = deadline::within(Instant::now() + budget, handler(request)).await;
    let error_code = answer.as_ref().err().map(|err| err.code.as_str());
    let response = render(answer);
    tracing::info!(
        function_request_id,
        api_request_id,
        route,
        organization,
        status = response.status.as_u16(),
        error_code,
        latency_ms = elapsed_ms(started),
        cold_start,
        xray_trace_id,
        "request"
    );
    lambda_response(response)
}

/// What is left of the invocation (its `deadline`, epoch milliseconds) less a margin to answer
/// and log in: the work of an invocation never runs into the function's timeout.
fn invocation_budget(deadline_ms: u64) -> Duration {
    const MARGIN: Duration = Duration::from_secs(1);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64);
    Duration::from_millis(deadline_ms.saturating_sub(now_ms)).saturating_sub(MARGIN)
}

/// The [`Caller`] the authorizer put in the request context, if any.
fn caller_of(context: &RequestContext) -> Option<Caller> {
    let RequestContext::ApiGatewayV2(context) = context else {
        return None;
    };
    let fields = &context.authorizer.as_ref()?.fields;
    let text = |name: &str| fields.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    let kind = match text(context::KEY_KIND)?.as_str() {
        "private" => KeyKind::Private,
        "public" => KeyKind::Public,
        _ => return None,
    };
    Some(Caller {
        organization_id: text(context::ORGANIZATION_ID)?,
        kind,
        key_name: text(context::KEY_NAME)?,
    })
}

/// Serves `handler` for a non-HTTP event (the scheduler's input, the sweeper's tick), within
/// the invocation's time. An `Err` fails the invocation, so the caller (EventBridge Scheduler)
/// retries it.
pub async fn run_event<E, R, F, Fut>(handler: F) -> Result<(), Error>
where
    E: serde::de::DeserializeOwned + Send,
    R: serde::Serialize,
    F: Fn(E) -> Fut + Sync,
    Fut: Future<Output = Result<R, flowline_core::ApiError>> + Send,
{
    let handler = &handler;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<E>| async move {
            let started = Instant::now();
            let cold_start = cold_start();
            let budget = invocation_budget(event.context.deadline);
            let outcome = deadline::within(Instant::now() + budget, handler(event.payload)).await;
            // One line per invocation, as a request has (see `serve`).
            tracing::info!(
                function_request_id = %event.context.request_id,
                error_code = outcome.as_ref().err().map(|err| err.code.as_str()),
                latency_ms = elapsed_ms(started),
                cold_start,
                xray_trace_id = event.context.xray_trace_id,
                "invocation"
            );
            outcome.map_err(|err| Error::from(format!("{}: {}", err.code.as_str(), err.message)))
        },
    ))
    .await
}

pub fn api_request(event: lambda_http::Request) -> ApiRequest {
    let path_params: HashMap<String, String> = event
        .path_parameters()
        .iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    let context = event.request_context();
    let caller = caller_of(&context);
    let auth_failure = auth_failure_of(&context);
    let source_ip = match &context {
        RequestContext::ApiGatewayV2(context) => context.http.source_ip.clone(),
        _ => None,
    };
    let (parts, body) = event.into_parts();
    let body = match body {
        Body::Empty => bytes::Bytes::new(),
        Body::Text(text) => text.into(),
        Body::Binary(bytes) => bytes.into(),
        _ => bytes::Bytes::new(),
    };
    ApiRequest {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        path_params,
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers,
        body,
        caller,
        auth_failure,
        source_ip,
    }
}

/// Why the authorizer found no caller, when it is not a plain 401: the keys table was
/// unreachable (503), or `Authorization` was not text (400).
fn auth_failure_of(context: &RequestContext) -> Option<flowline_core::ApiError> {
    let RequestContext::ApiGatewayV2(context) = context else {
        return None;
    };
    let fields = &context.authorizer.as_ref()?.fields;
    match fields.get(context::AUTH_ERROR)?.as_str()? {
        context::UNAVAILABLE => Some(flowline_core::ApiError::unavailable()),
        context::RATE_LIMITED => Some(flowline_core::ApiError::rate_limited(
            "this organization",
            fields
                .get(context::RETRY_AFTER)
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(1),
        )),
        context::INVALID_HEADER => Some(flowline_core::ApiError::invalid_field(
            "Authorization",
            "must be visible ASCII text",
        )),
        _ => None,
    }
}

pub fn lambda_response(response: ApiResponse) -> lambda_http::Response<Body> {
    let mut built = lambda_http::Response::new(Body::Binary(response.body.to_vec()));
    if let Ok(text) = std::str::from_utf8(&response.body) {
        *built.body_mut() = Body::Text(text.to_owned());
    }
    *built.status_mut() = response.status;
    *built.headers_mut() = response.headers;
    built
}
