//! `GET /v1/suppressions/{number}`: The number's entry on the do-not-call list, while in force.

use flowline_core::http::StatusCode;
use flowline_core::suppressions;
use flowline_core::{ApiRequest, ApiResponse, ApiResult, App};

pub async fn handle(app: &App, request: ApiRequest) -> ApiResult<ApiResponse> {
    let caller = request.caller()?;
    request.query_params(&[])?;
    let suppression = suppressions::get(app, caller, request.path_param("number")).await?;
    Ok(ApiResponse::resource(StatusCode::OK, &suppression))
}
