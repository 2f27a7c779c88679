//! `POST /v1/webhooks/{id}/recover`: Try again every `failed` delivery of the endpoint created between `since` and `until` (default now); 202 with `{"queued": n}`.

use flowline_core::http::StatusCode;
use flowline_core::webhooks::deliveries;
use flowline_core::{ApiRequest, ApiResponse, ApiResult, App};

pub async fn handle(app: &App, request: ApiRequest) -> ApiResult<ApiResponse> {
    let caller = request.writer()?;
    request.query_params(&[])?;
    let body = request.json_object()?;
    let recovered = deliveries::recover(app, caller, request.path_param("id"), body).await?;
    Ok(ApiResponse::json(StatusCode::ACCEPTED, &recovered))
}
