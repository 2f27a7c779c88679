//! Which function crate serves a route: the local server's stand-in for API Gateway's
//! integrations. The names are those of `flowline_core::routes::ROUTES`.

use flowline_core::{ApiError, ApiRequest, ApiResponse, ApiResult, App};

pub async fn call(app: &App, function: &str, request: ApiRequest) -> ApiResult<ApiResponse> {
    match function {
        "flow-create" => flow_create::handle(app, request).await,
        "flow-list" => flow_list::handle(app, request).await,
        "flow-validate" => flow_validate::handle(request).await,
        "flow-get" => flow_get::handle(app, request).await,
        "flow-update" => flow_update::handle(app, request).await,
        "flow-delete" => flow_delete::handle(app, request).await,
        "flow-versions-list" => flow_versions_list::handle(app, request).await,
        "flow-version-create" => flow_version_create::handle(app, request).await,
        "flow-publish" => flow_publish::handle(app, request).await,
        "flow-callback-list" => flow_callback_list::handle(app, request).await,
        "flow-callback-create" => flow_callback_create::handle(app, request).await,
        "flow-callback-get" => flow_callback_get::handle(app, request).await,
        "flow-callback-update" => flow_callback_update::handle(app, request).await,
        "flow-callback-delete" => flow_callback_delete::handle(app, request).await,
        "hook-trigger" => hook_trigger::handle(app, request).await,
        "callback-create" => callback_create::handle(app, request).await,
        "callback-list" => callback_list::handle(app, request).await,
        "callback-get" => callback_get::handle(app, request).await,
        "callback-update" => callback_update::handle(app, request).await,
        "callback-cancel" => callback_cancel::handle(app, request).await,
        "callback-bulk-cancel" => callback_bulk_cancel::handle(app, request).await,
        "callback-outcome" => callback_outcome::handle(app, request).await,
        "callback-dispatch" => callback_dispatch::handle(app, request).await,
        "webhook-create" => webhook_create::handle(app, request).await,
        "webhook-list" => webhook_list::handle(app, request).await,
        "webhook-get" => webhook_get::handle(app, request).await,
        "webhook-update" => webhook_update::handle(app, request).await,
        "webhook-delete" => webhook_delete::handle(app, request).await,
        "webhook-rotate-secret" => webhook_rotate_secret::handle(app, request).await,
        "webhook-deliveries-list" => webhook_deliveries_list::handle(app, request).await,
        "webhook-delivery-get" => webhook_delivery_get::handle(app, request).await,
        "webhook-delivery-redeliver" => webhook_delivery_redeliver::handle(app, request).await,
        "webhook-recover" => webhook_recover::handle(app, request).await,
        "suppression-put" => suppression_put::handle(app, request).await,
        "suppression-list" => suppression_list::handle(app, request).await,
        "suppression-get" => suppression_get::handle(app, request).await,
        "suppression-delete" => suppression_delete::handle(app, request).await,
        other => {
            tracing::error!(
                function = other,
                "a route names a function the local server does not have"
            );
            Err(ApiError::internal())
        }
    }
}
