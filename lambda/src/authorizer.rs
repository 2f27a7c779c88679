//! The API Gateway Lambda authorizer's side of authentication: what it hands the routes in the
//! request context, under which names (`http.rs` reads them back into a `Caller`).

use flowline_core::auth::KeyStore;
use flowline_core::error::ErrorCode;
use flowline_core::ratelimit::RateLimiter;
use jiff::Timestamp;

/// Names of the authorizer context entries (see `functions/authorizer`).
pub mod context {
    pub const ORGANIZATION_ID: &str = "organization_id";
    pub const KEY_KIND: &str = "key_kind";
    pub const KEY_NAME: &str = "key_name";
    /// Set when there is no caller for another reason than a missing or unknown key:
    /// [`UNAVAILABLE`] (the keys table could not be read: 503) or [`INVALID_HEADER`]
    /// (`Authorization` is not text: 400).
    pub const AUTH_ERROR: &str = "auth_error";
    pub const UNAVAILABLE: &str = "unavailable";
    pub const INVALID_HEADER: &str = "invalid_authorization_header";
    /// The organization is over its request budget: 429, after `retry_after` seconds.
    pub const RATE_LIMITED: &str = "rate_limited";
    pub const RETRY_AFTER: &str = "retry_after";
}

/// What the authorizer function works with: the keys table, and the organizations' request
/// budgets (it sees every request that carries a key, so it is where they are spent).
pub struct Authorizer {
    pub keys: KeyStore,
    pub limiter: RateLimiter,
}

/// The context for an `Authorization` header that is not visible ASCII.
pub fn invalid_authorization_context() -> serde_json::Map<String, serde_json::Value> {
    let mut fields = serde_json::Map::new();
    fields.insert(
        context::AUTH_ERROR.to_owned(),
        context::INVALID_HEADER.into(),
    );
    fields
}

/// What the API Gateway authorizer hands to the routes: the caller's organization, key kind
/// and key name; nothing for a missing, unknown or revoked key (the route then answers the
/// SPEC's 401); `auth_error` when the keys could not be read (the route answers 503) or the
/// organization is over its budget (429).
///
/// The authorizer always allows: HTTP APIs cannot shape a denial's body, and the SPEC fixes
/// that body, so the routes render it.
pub async fn authorizer_context(
    authorizer: &Authorizer,
    authorization: Option<&str>,
) -> serde_json::Map<String, serde_json::Value> {
    let mut fields = serde_json::Map::new();
    match authorizer.keys.authenticate(authorization).await {
        Ok(caller) => {
            let now = Timestamp::now();
            if let Err(err) = authorizer
                .keys
                .admit(&authorizer.limiter, &caller, now)
                .await
            {
                fields.insert(context::AUTH_ERROR.to_owned(), context::RATE_LIMITED.into());
                fields.insert(
                    context::RETRY_AFTER.to_owned(),
                    err.retry_after.unwrap_or(1).into(),
                );
                return fields;
            }
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
        Err(_) => {}
    }
    fields
}
