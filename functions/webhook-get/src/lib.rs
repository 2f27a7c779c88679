//! `GET /v1/webhooks/{id}`: One endpoint (without its secret).

use flowline_core::http::StatusCode;
use flowline_core::webhooks;
use flowline_core::{ApiRequest, ApiResponse, ApiResult, App};

pub async fn handle(app: &App, request: ApiRequest) -> ApiResult<ApiResponse> {
    let caller = request.caller()?;
    request.query_params(&[])?;
    let endpoint = webhooks::get(app, caller, request.path_param("id")).await?;
    Ok(ApiResponse::resource(StatusCode::OK, &endpoint))
}
