//! `PUT /v1/webhooks/{id}`: Change an endpoint's `url`, `events`, `status`, `description`. Honours `If-Match`.

use flowline_core::http::StatusCode;
use flowline_core::webhooks;
use flowline_core::{ApiRequest, ApiResponse, ApiResult, App};

pub async fn handle(app: &App, request: ApiRequest) -> ApiResult<ApiResponse> {
    let caller = request.writer()?;
    request.query_params(&[])?;
    let body = request.json_object()?;
    let endpoint = webhooks::update(
        app,
        caller,
        request.path_param("id"),
        body,
        request.text_header("If-Match")?,
    )
    .await?;
    Ok(ApiResponse::resource(StatusCode::OK, &endpoint))
}
