//! HTTP for the local server: match the route (404/405 in the error shape), read the body
//! (413 past the limit), authenticate as the authorizer would, and call the route's handler.
//! `GET /openapi.yaml` answers the API contract, without a key.

use std::future::Future;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use flowline_core::error::ErrorCode;
use flowline_core::http::{MAX_BODY_BYTES, render, text_header};
use flowline_core::routes::{Access, RouteMatch, match_route};
use flowline_core::{ApiError, ApiRequest, ApiResponse, App};
use http::{Method, header};

/// The API contract, served by the local server as a convenience (it is no API route).
const OPENAPI_YAML: &str = include_str!("../openapi.yaml");

/// Serves `app` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = axum::Router::new().fallback(handle).with_state(app);
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn handle(State(app): State<Arc<App>>, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    if parts.method == Method::GET && path == "/openapi.yaml" {
        return ([(header::CONTENT_TYPE, "application/yaml")], OPENAPI_YAML).into_response();
    }
    let answer = match match_route(&parts.method, &path) {
        RouteMatch::NotFound => ApiResponse::error(&ApiError::new(
            ErrorCode::NotFound,
            format!("No route for {path}"),
        )),
        RouteMatch::MethodNotAllowed { allowed } => {
            let allow: Vec<&str> = allowed.iter().map(|m| m.as_str()).collect();
            let err = ApiError::new(
                ErrorCode::MethodNotAllowed,
                format!("{} is not allowed on {path}", parts.method),
            );
            ApiResponse::error(&err).with_header(header::ALLOW, &allow.join(", "))
        }
        RouteMatch::Found { route, params } => {
            let body = match axum::body::to_bytes(body, MAX_BODY_BYTES + 1).await {
                Ok(body) => body,
                Err(_) => {
                    let err = ApiError::new(
                        ErrorCode::PayloadTooLarge,
                        format!("The request body is over {} KiB", MAX_BODY_BYTES / 1024),
                    );
                    return to_response(ApiResponse::error(&err));
                }
            };
            let caller = match route.access {
                Access::Open => None,
                Access::ApiKey => {
                    let caller = match text_header(&parts.headers, "Authorization") {
                        Ok(authorization) => app.keys.authenticate(authorization).await,
                        Err(err) => Err(err),
                    };
                    match caller {
                        Ok(caller) => Some(caller),
                        Err(err) => return to_response(ApiResponse::error(&err)),
                    }
                }
            };
            let request = ApiRequest {
                method: parts.method,
                path,
                path_params: params,
                query: parts.uri.query().map(str::to_owned),
                headers: parts.headers,
                body,
                caller,
                auth_failure: None,
            };
            render(crate::functions::call(&app, route.function, request).await)
        }
    };
    to_response(answer)
}

fn to_response(answer: ApiResponse) -> Response {
    (answer.status, answer.headers, Body::from(answer.body)).into_response()
}
