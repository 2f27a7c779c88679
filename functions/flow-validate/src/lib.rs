//! `POST /v1/flows/validate`: Dry run of a create body: `{valid, problems}`; stores nothing.

use flowline_core::flows;
use flowline_core::{ApiRequest, ApiResponse, ApiResult};

/// Needs no application: validation only, no table.
pub async fn handle(request: ApiRequest) -> ApiResult<ApiResponse> {
    request.writer()?;
    // This route takes no query parameters, and unknown ones are refused (SPEC §1).
    request.query_params(&[])?;
    let body = request.json_object()?;
    let (_, problems) = flows::read_flow_fields(body, true);
    Ok(ApiResponse::ok(
        &serde_json::json!({ "valid": problems.is_empty(), "problems": problems }),
    ))
}
