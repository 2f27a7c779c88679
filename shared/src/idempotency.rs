//! `Idempotency-Key` on create routes (SPEC §1): per organization and route, for 24 hours.
//! The first request claims the key (a conditional put), does the work, then records which
//! resource it created. A repeat with the same body answers that resource again with
//! `Idempotent-Replayed: true`; with another body, 409 `IDEMPOTENCY_KEY_REUSED`. Failures release
//! the claim, so error answers are not remembered.
//!
//! The record keeps the created resource's id, not the response bytes: a flow's answer can be
//! larger than a DynamoDB item may be. The replay renders that resource again.

use std::future::Future;

use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::app::App;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::http::{ApiRequest, ApiResponse};
use crate::store::{Expect, Item, Key, StoreError, Write};

pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
const RECORD_LIFETIME_SECONDS: i64 = 24 * 60 * 60;
/// A claim older than this belongs to a request that died (API routes time out at 30 s).
const CLAIM_LEASE_MS: i64 = 60_000;

/// What a create route made: its response and the id to render it again from.
pub struct Created {
    pub response: ApiResponse,
    pub resource_id: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    body_hash: String,
    /// Whose claim this is. Two requests racing for one key in the same millisecond would
    /// otherwise write the very same record, and a store that takes a conditional put finding
    /// exactly its own item for an earlier attempt of it that landed (the DynamoDB adapter does)
    /// would let both believe they won.
    #[serde(default)]
    claim: String,
    /// Set once the work succeeded.
    resource_id: Option<String>,
    status: Option<u16>,
    claimed_until_ms: i64,
    /// When the record stops answering (to the millisecond; the item's TTL, in seconds, lets
    /// DynamoDB remove it some time after). Records written before it existed have only
    /// `expires_at` (seconds).
    #[serde(default)]
    expires_at_ms: i64,
    #[serde(default, skip_serializing)]
    expires_at: Option<i64>,
}

impl Record {
    fn expires_at_ms(&self) -> i64 {
        self.expires_at
            .map_or(self.expires_at_ms, |seconds| seconds * 1000)
    }

    /// The item's `ttl` (epoch seconds), rounded up: never before the record expires.
    fn ttl(&self) -> i64 {
        (self.expires_at_ms() + 999).div_euclid(1000)
    }
}

/// A stable digest of a parsed JSON body: object keys sorted at every level.
fn body_hash(body: &Map<String, Value>) -> String {
    fn write_object(map: &Map<String, Value>, out: &mut Vec<u8>) {
        let mut keys: Vec<&String> = map.keys().collect();
        keys.sort();
        out.push(b'{');
        for key in keys {
            serde_json::to_writer(&mut *out, key).expect("strings serialize");
            out.push(b':');
            write(&map[key], out);
            out.push(b',');
        }
        out.push(b'}');
    }
    fn write(value: &Value, out: &mut Vec<u8>) {
        match value {
            Value::Object(map) => write_object(map, out),
            Value::Array(items) => {
                out.push(b'[');
                for item in items {
                    write(item, out);
                    out.push(b',');
                }
                out.push(b']');
            }
            scalar => serde_json::to_writer(&mut *out, scalar).expect("scalars serialize"),
        }
    }
    let mut canonical = Vec::new();
    write_object(body, &mut canonical);
    crate::ids::sha256_hex(&canonical)
}

/// Runs `create` at most once per `Idempotency-Key`; `replay` renders an earlier result.
pub async fn create_once<C, CF, R, RF>(
    app: &App,
    request: &ApiRequest,
    caller: &Caller,
    route: &str,
    body: &Map<String, Value>,
    create: C,
    replay: R,
) -> ApiResult<ApiResponse>
where
    C: FnOnce() -> CF,
    CF: Future<Output = ApiResult<Created>>,
    R: FnOnce(String) -> RF,
    RF: Future<Output = ApiResult<ApiResponse>>,
{
    let Some(idempotency_key) = request.header(IDEMPOTENCY_HEADER)? else {
        return create().await.map(|created| created.response);
    };
    if idempotency_key.is_empty() || idempotency_key.len() > 255 {
        return Err(ApiError::invalid_field(
            "Idempotency-Key",
            "must be 1 to 255 characters",
        ));
    }
    let key_hash: String = crate::ids::sha256_hex(idempotency_key.as_bytes());
    // Spread over 16 partitions by the key's hash: an organization's idempotent creates never
    // crowd one partition.
    let record_key = Key::new(
        format!(
            "ORG#{}#IDEMPOTENCY#{}",
            caller.organization_id,
            &key_hash[..1]
        ),
        format!("{route}#{key_hash}"),
    );
    let body_hash = body_hash(body);

    let claim_rev = claim(app, &record_key, &body_hash).await?;
    let claim_rev = match claim_rev {
        Claim::Claimed(rev) => rev,
        Claim::Replay {
            resource_id,
            status,
        } => {
            let mut response = replay(resource_id).await.map_err(|err| match err.code {
                ErrorCode::NotFound => ApiError::new(
                    ErrorCode::NotFound,
                    "The resource created with this Idempotency-Key has been deleted since",
                ),
                _ => err,
            })?;
            response.status = status;
            return Ok(response.with_header(http::HeaderName::from_static(REPLAYED_HEADER), "true"));
        }
    };

    match create().await {
        Ok(created) if created.response.status.is_success() => {
            let now = app.clock.now();
            let record = Record {
                body_hash,
                claim: String::new(),
                resource_id: Some(created.resource_id.clone()),
                status: Some(created.response.status.as_u16()),
                claimed_until_ms: 0,
                expires_at_ms: now.as_millisecond() + RECORD_LIFETIME_SECONDS * 1000,
                expires_at: None,
            };
            let write = Write::Put {
                key: record_key,
                doc: serde_json::to_value(&record).map_err(|_| ApiError::internal())?,
                expect: Expect::Revision(claim_rev),
                expires_at: Some(record.ttl()),
            };
            if let Err(err) = app.store.write(vec![write]).await {
                // The resource exists; only the memory of it failed. Answer the success.
                tracing::warn!(%err, "could not record an idempotent result");
            }
            Ok(created.response)
        }
        other => {
            let release = Write::Delete {
                key: record_key,
                expect: Expect::Revision(claim_rev),
            };
            if let Err(err) = app.store.write(vec![release]).await {
                tracing::warn!(%err, "could not release an idempotency claim");
            }
            other.map(|created| created.response)
        }
    }
}

enum Claim {
    Claimed(u64),
    Replay {
        resource_id: String,
        status: StatusCode,
    },
}

async fn claim(app: &App, record_key: &Key, body_hash: &str) -> ApiResult<Claim> {
    // Two rounds: a lost race to claim is followed by one more read of the winner's record.
    for _ in 0..2 {
        let now = app.clock.now();
        let existing: Option<(Item, Record)> = match app.store.get(record_key).await? {
            Some(item) => {
                let record: Record = item.decode()?;
                Some((item, record))
            }
            None => None,
        };
        let expect = match &existing {
            None => Expect::Absent,
            Some((item, record)) if record.expires_at_ms() <= now.as_millisecond() => {
                Expect::Revision(item.rev)
            }
            Some((item, record)) => {
                if record.body_hash != body_hash {
                    return Err(ApiError::new(
                        ErrorCode::IdempotencyKeyReused,
                        "This Idempotency-Key was used with another request body",
                    ));
                }
                if let (Some(resource_id), Some(status)) = (&record.resource_id, record.status) {
                    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::CREATED);
                    return Ok(Claim::Replay {
                        resource_id: resource_id.clone(),
                        status,
                    });
                }
                if record.claimed_until_ms > now.as_millisecond() {
                    return Err(ApiError::conflict(
                        "A request with this Idempotency-Key is still in progress; retry shortly",
                    ));
                }
                Expect::Revision(item.rev)
            }
        };
        let record = Record {
            body_hash: body_hash.to_owned(),
            claim: crate::ids::random_token(16),
            resource_id: None,
            status: None,
            claimed_until_ms: now.as_millisecond() + CLAIM_LEASE_MS,
            expires_at_ms: now.as_millisecond() + RECORD_LIFETIME_SECONDS * 1000,
            expires_at: None,
        };
        let write = Write::Put {
            key: record_key.clone(),
            doc: serde_json::to_value(&record).map_err(|_| ApiError::internal())?,
            expect,
            expires_at: Some(record.ttl()),
        };
        match app.store.write(vec![write]).await {
            Ok(()) => {
                let rev = match expect {
                    Expect::Revision(rev) => rev + 1,
                    _ => 1,
                };
                return Ok(Claim::Claimed(rev));
            }
            Err(StoreError::ConditionFailed) => continue,
            Err(err) => return Err(err.into()),
        }
    }
    Err(ApiError::conflict(
        "A request with this Idempotency-Key is still in progress; retry shortly",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bodies_compare_as_parsed_json() {
        let a = json!({"name": "x", "data": {"b": 1, "a": [1, 2]}});
        let b: Value =
            serde_json::from_str(r#"{ "data": {"a": [1,2], "b": 1}, "name": "x" }"#).unwrap();
        let c = json!({"name": "x", "data": {"b": 1, "a": [2, 1]}});
        let hash = |v: &Value| body_hash(v.as_object().unwrap());
        assert_eq!(hash(&a), hash(&b));
        assert_ne!(hash(&a), hash(&c));
    }
}
