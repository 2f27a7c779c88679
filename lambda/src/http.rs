//! The Lambda side of every HTTP function: turn the API Gateway (HTTP API, payload v2) event
//! into an [`ApiRequest`] (the authorizer's context becomes the [`Caller`]), run the route's
//! handler, and render its result; and the same for non-HTTP events (scheduler input, sweeper
//! tick, authorizer request).

use std::collections::HashMap;
use std::future::Future;

use flowline_core::auth::{Caller, KeyKind};
use flowline_core::error::ApiResult;
use flowline_core::http::{ApiRequest, ApiResponse, render};
use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt, service_fn};

use crate::Error;
use crate::authorizer::context;

/// Serves `handler` as this Lambda function's HTTP handler.
pub async fn run_http<F, Fut>(handler: F) -> Result<(), Error>
where
    F: Fn(ApiRequest) -> Fut + Sync,
    Fut: Future<Output = ApiResult<ApiResponse>> + Send,
{
    let handler = &handler;
    lambda_http::run(service_fn(move |event: lambda_http::Request| {
        let request = api_request(event);
        async move { Ok::<_, Error>(lambda_response(render(handler(request).await))) }
    }))
    .await
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

/// Serves `handler` for a non-HTTP event (the scheduler's input, the sweeper's tick). An `Err`
/// fails the invocation, so the caller (EventBridge Scheduler) retries it.
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
            handler(event.payload)
                .await
                .map_err(|err| Error::from(format!("{}: {}", err.code.as_str(), err.message)))
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
    }
}

/// A 503 when the authorizer says the keys table was unreachable, a 400 when `Authorization`
/// was not text.
fn auth_failure_of(context: &RequestContext) -> Option<flowline_core::ApiError> {
    let RequestContext::ApiGatewayV2(context) = context else {
        return None;
    };
    let fields = &context.authorizer.as_ref()?.fields;
    match fields.get(context::AUTH_ERROR)?.as_str()? {
        context::UNAVAILABLE => Some(flowline_core::ApiError::unavailable()),
        context::NOT_TEXT => Some(flowline_core::http::not_text("Authorization")),
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
