//! `PATCH /v1/callbacks/{id}`: Change a `scheduled` callback (time, numbers, texts, metadata); the schedule moves with it. Honours `If-Match`.

use flowline_core::callbacks::service;
use flowline_core::http::StatusCode;
use flowline_core::{ApiRequest, ApiResponse, ApiResult, App};

pub async fn handle(app: &App, request: ApiRequest) -> ApiResult<ApiResponse> {
    let caller = request.writer()?;
    request.query_params(&[])?;
    let body = request.json_object()?;
    let callback = service::update(
        app,
        caller,
        request.path_param("id"),
        body,
        request.text_header("If-Match")?,
    )
    .await?;
    Ok(ApiResponse::resource(StatusCode::OK, &callback))
}
