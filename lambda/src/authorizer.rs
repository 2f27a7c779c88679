//! The API Gateway Lambda authorizer's side of authentication: what it hands the routes in the
//! request context, under which names (`http.rs` reads them back into a `Caller`).

use flowline_core::auth::KeyStore;
use flowline_core::error::{ApiResult, ErrorCode};

/// Names of the authorizer context entries (see `functions/authorizer`).
pub mod context {
    pub const ORGANIZATION_ID: &str = "organization_id";
    pub const KEY_KIND: &str = "key_kind";
    pub const KEY_NAME: &str = "key_name";
    /// Set when there is no caller for another reason than a bad key: [`UNAVAILABLE`] (the
    /// keys table could not be read) or [`NOT_TEXT`] (`Authorization` is not visible ASCII).
    pub const AUTH_ERROR: &str = "auth_error";
    pub const UNAVAILABLE: &str = "unavailable";
    pub const NOT_TEXT: &str = "authorization_not_text";
}

/// What the API Gateway authorizer hands to the routes: the caller's organization, key kind
/// and key name; nothing for a missing, unknown or revoked key (the route then answers the
/// SPEC's 401); `auth_error` when the keys could not be read (the route answers 503) or the
/// header is not text (400).
///
/// The authorizer always allows: HTTP APIs cannot shape a denial's body, and the SPEC fixes
/// that body, so the routes render it.
pub async fn authorizer_context(
    keys: &KeyStore,
    authorization: ApiResult<Option<&str>>,
) -> serde_json::Map<String, serde_json::Value> {
    let mut fields = serde_json::Map::new();
    let caller = match authorization {
        Ok(authorization) => keys.authenticate(authorization).await,
        Err(err) => Err(err),
    };
    match caller {
        Ok(caller) => {
            fields.insert(
                context::ORGANIZATION_ID.to_owned(),
                caller.organization_id.into(),
            );
            fields.insert(context::KEY_KIND.to_owned(), caller.kind.as_str().into());
            fields.insert(context::KEY_NAME.to_owned(), caller.key_name.into());
        }
        Err(err) if err.code == ErrorCode::UpstreamUnavailable => {
            fields.insert(context::AUTH_ERROR.to_owned(), context::UNAVAILABLE.into());
        }
        Err(err) if err.code == ErrorCode::ValidationError => {
            fields.insert(context::AUTH_ERROR.to_owned(), context::NOT_TEXT.into());
        }
        Err(_) => {}
    }
    fields
}
