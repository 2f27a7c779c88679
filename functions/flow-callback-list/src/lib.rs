//! `GET /v1/flows/{flow}/callbacks`: The flow's trigger URLs (signatures masked), newest first, paginated by `limit`.

use flowline_core::flow_callbacks;
use flowline_core::{ApiRequest, ApiResponse, ApiResult, App};

pub async fn handle(app: &App, request: ApiRequest) -> ApiResult<ApiResponse> {
    let caller = request.caller()?;
    let query = request.query_params(&["limit", "next_page_token"])?;
    let limit = query.integer("limit", 1..=100, 25)?;
    let list = flow_callbacks::list(
        app,
        caller,
        request.path_param("flow"),
        limit,
        query.page_token(),
    )
    .await?;
    Ok(ApiResponse::ok(&list))
}
