//! `DELETE /v1/webhooks/{id}`: Delete an endpoint.

use flowline_core::webhooks;
use flowline_core::{ApiRequest, ApiResponse, ApiResult, App};

pub async fn handle(app: &App, request: ApiRequest) -> ApiResult<ApiResponse> {
    let caller = request.writer()?;
    request.query_params(&[])?;
    Ok(ApiResponse::message(
        webhooks::delete(app, caller, request.path_param("id")).await?,
    ))
}
