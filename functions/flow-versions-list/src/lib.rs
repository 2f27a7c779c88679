//! `GET /v1/flows/{flow}/versions`: Every version of a flow, highest first, paginated.

use flowline_core::flows::{FlowRef, service};
use flowline_core::{ApiRequest, ApiResponse, ApiResult, App};

pub async fn handle(app: &App, request: ApiRequest) -> ApiResult<ApiResponse> {
    let caller = request.caller()?;
    let query = request.query_params(&["page_size", "next_page_token"])?;
    let reference = FlowRef::parse(request.path_param("flow"))?;
    let page_size = query.integer("page_size", 1..=100, 30)?;
    let list =
        service::list_versions(app, caller, &reference, page_size, query.page_token()).await?;
    Ok(ApiResponse::ok(&list))
}
