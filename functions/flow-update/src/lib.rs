//! `PUT /v1/flows/{flow}`: Partial update of one version (a slug: the current one). Honours `If-Match`.

use flowline_core::flows::{self, FlowRef, service};
use flowline_core::http::StatusCode;
use flowline_core::{ApiRequest, ApiResponse, ApiResult, App};

pub async fn handle(app: &App, request: ApiRequest) -> ApiResult<ApiResponse> {
    let caller = request.writer()?;
    // This route takes no query parameters, and unknown ones are refused (SPEC §1).
    request.query_params(&[])?;
    let reference = FlowRef::parse(request.path_param("flow"))?;
    let fields = flows::read_flow_body(request.json_object()?, false)?;
    let if_match = request.text_header("If-Match")?;
    let flow = service::update_flow(app, caller, &reference, fields, if_match).await?;
    Ok(ApiResponse::resource(StatusCode::OK, &flow))
}
