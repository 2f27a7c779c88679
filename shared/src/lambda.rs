//! The Lambda side of every HTTP function: turn the API Gateway (HTTP API, payload v2) event
//! into an [`ApiRequest`] (the authorizer's context becomes the [`Caller`]), run the route's
//! handler, and render its result. A function's `main` is:
//!
//! ```ignore
//! let app = flowline_core::lambda::start().await?;
//! flowline_core::lambda::run_http(|request| flow_get::handle(&app, request)).await
//! ```

use std::collections::HashMap;
use std::future::Future;

use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt, service_fn};

use crate::app::App;
use crate::auth::{Caller, KeyKind};
use crate::error::ApiResult;
use crate::http::{ApiRequest, ApiResponse, render};

pub use lambda_http::Error;

/// Names of the authorizer context entries (see `functions/authorizer`).
pub mod context {
    pub const ORGANIZATION_ID: &str = "organization_id";
    pub const KEY_KIND: &str = "key_kind";
    pub const KEY_NAME: &str = "key_name";
    /// Set (to `unavailable`) when the authorizer could not read the keys table.
    pub const AUTH_ERROR: &str = "auth_error";
}

/// JSON logs, filtered by `RUST_LOG` (default `info`).
pub fn init_tracing() {
    crate::logging::init(true);
}

/// Start-up of an HTTP function: logging, then the app from the environment.
pub async fn start() -> Result<std::sync::Arc<App>, Error> {
    init_tracing();
    App::for_lambda().await.map_err(|err| {
        tracing::error!(error = %err, "start-up failed");
        Error::from(err.to_string())
    })
}

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
    Fut: Future<Output = Result<R, crate::ApiError>> + Send,
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

/// A 503 when the authorizer says the keys table was unreachable.
fn auth_failure_of(context: &RequestContext) -> Option<crate::ApiError> {
    let RequestContext::ApiGatewayV2(context) = context else {
        return None;
    };
    let fields = &context.authorizer.as_ref()?.fields;
    (fields.get(context::AUTH_ERROR)?.as_str()? == "unavailable").then(crate::ApiError::unavailable)
}

/// The keys table of the authorizer (`FLOWLINE_KEYS_TABLE`): all it needs, so it starts fast.
pub async fn start_authorizer() -> Result<crate::auth::KeyStore, Error> {
    init_tracing();
    let table = std::env::var(crate::app::env::KEYS_TABLE)
        .map_err(|_| Error::from(format!("{} is not set", crate::app::env::KEYS_TABLE)))?;
    let sdk_config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_dynamodb::Client::new(&sdk_config);
    let table = crate::store::dynamodb::DynamoTable::new(client, table);
    Ok(crate::auth::KeyStore::new(std::sync::Arc::new(table)))
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
