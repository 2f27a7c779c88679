//! `GET /v1/callbacks/{id}`: One callback.

use flowline_core::callbacks::service;
use flowline_core::http::StatusCode;
use flowline_core::{ApiRequest, ApiResponse, ApiResult, App};

pub async fn handle(app: &App, request: ApiRequest) -> ApiResult<ApiResponse> {
    let caller = request.caller()?;
    request.query_params(&[])?;
    let callback = service::get(app, caller, request.path_param("id")).await?;
    Ok(ApiResponse::resource(StatusCode::OK, &callback))
}
