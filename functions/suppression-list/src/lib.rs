//! `GET /v1/suppressions`: List the do-not-call list in number order (expired entries left out), paginated by `limit`.

use flowline_core::suppressions;
use flowline_core::{ApiRequest, ApiResponse, ApiResult, App};

pub async fn handle(app: &App, request: ApiRequest) -> ApiResult<ApiResponse> {
    let caller = request.caller()?;
    let query = request.query_params(&["limit", "next_page_token"])?;
    let limit = query.integer("limit", 1..=100, 25)?;
    let list = suppressions::list(app, caller, limit, query.page_token()).await?;
    Ok(ApiResponse::ok(&list))
}
