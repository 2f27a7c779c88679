//! `GET /v1/webhooks`: List endpoints, newest first, paginated by `limit`.

use flowline_core::webhooks;
use flowline_core::{ApiRequest, ApiResponse, ApiResult, App};

pub async fn handle(app: &App, request: ApiRequest) -> ApiResult<ApiResponse> {
    let caller = request.caller()?;
    let query = request.query_params(&["limit", "next_page_token"])?;
    let limit = query.integer("limit", 1..=100, 25)?;
    let page = webhooks::list(app, caller, limit, query.page_token()).await?;
    let mut body = serde_json::json!({ "webhooks": page.items });
    if let Some(token) = page.next_page_token {
        body["next_page_token"] = token.into();
    }
    Ok(ApiResponse::ok(&body))
}
