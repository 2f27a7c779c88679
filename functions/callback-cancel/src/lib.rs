//! `POST /v1/callbacks/{id}/cancel`: `scheduled` → `cancelled` (the schedule is deleted); already cancelled: unchanged.

use flowline_core::callbacks::service;
use flowline_core::http::StatusCode;
use flowline_core::{ApiRequest, ApiResponse, ApiResult, App};

pub async fn handle(app: &App, request: ApiRequest) -> ApiResult<ApiResponse> {
    let caller = request.writer()?;
    request.query_params(&[])?;
    let body = request.json_object_or_empty()?;
    let callback = service::cancel(app, caller, request.path_param("id"), body).await?;
    Ok(ApiResponse::resource(StatusCode::OK, &callback))
}
