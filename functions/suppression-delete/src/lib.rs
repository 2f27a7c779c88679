//! `DELETE /v1/suppressions/{number}`: Take a number off the do-not-call list.

use flowline_core::suppressions;
use flowline_core::{ApiRequest, ApiResponse, ApiResult, App};

pub async fn handle(app: &App, request: ApiRequest) -> ApiResult<ApiResponse> {
    let caller = request.writer()?;
    request.query_params(&[])?;
    let number = suppressions::parse_number(request.path_param("number"))?;
    suppressions::delete(app, caller, &number).await?;
    Ok(ApiResponse::message(format!(
        "{number} is off the do-not-call list"
    )))
}
