//! `DELETE /v1/flows/{flow}`: Archive: a slug archives every version, a numeric id that version.

use flowline_core::flows::{FlowRef, service};
use flowline_core::{ApiRequest, ApiResponse, ApiResult, App};

pub async fn handle(app: &App, request: ApiRequest) -> ApiResult<ApiResponse> {
    let caller = request.writer()?;
    // This route takes no query parameters, and unknown ones are refused (SPEC §1).
    request.query_params(&[])?;
    let reference = FlowRef::parse(request.path_param("flow"))?;
    Ok(ApiResponse::message(
        service::archive_flow(app, caller, &reference).await?,
    ))
}
