//! `GET /v1/flows/{flow}`: One flow: a slug (its current version, or `?version=N`) or a numeric id (that version).

use flowline_core::flows::FlowRef;
use flowline_core::flows::service;
use flowline_core::http::StatusCode;
use flowline_core::{ApiError, ApiRequest, ApiResponse, ApiResult, App};

pub async fn handle(app: &App, request: ApiRequest) -> ApiResult<ApiResponse> {
    let caller = request.caller()?;
    let query = request.query_params(&["version"])?;
    let reference = FlowRef::parse(request.path_param("flow"))?;
    let version = match query.get("version") {
        None => None,
        Some(_) if matches!(reference, FlowRef::Id(_)) => {
            return Err(ApiError::invalid_field(
                "version",
                "applies to a slug; a numeric id is already one version",
            ));
        }
        Some(_) => Some(query.integer("version", 1..=u32::MAX, 1)?),
    };
    let flow = service::get_flow(app, caller, &reference, version).await?;
    Ok(ApiResponse::resource(StatusCode::OK, &flow))
}
