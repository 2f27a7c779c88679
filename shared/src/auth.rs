//! API keys: `pk_…` (public: reads) and `sk_…` (private: everything), each of one organization.
//! Only the SHA-256 of a key is stored, in the keys table (item `KEY#<hash>`), with its
//! organization, kind and name; an index item per organization lists them for the admin command.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use jiff::Timestamp;

use crate::error::{ApiError, ApiResult};
use crate::ratelimit::{Budget, Limit, RateLimiter};
use crate::store::{Expect, Key, Query, SortRange, StoreError, Table, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    Public,
    Private,
}

impl KeyKind {
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Public => "pk_",
            Self::Private => "sk_",
        }
    }

    pub fn of_key(key: &str) -> Option<Self> {
        if key.starts_with("pk_") {
            Some(Self::Public)
        } else if key.starts_with("sk_") {
            Some(Self::Private)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Private => "private",
        }
    }
}

/// Who is calling: what the authorizer hands to every route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub organization_id: String,
    pub kind: KeyKind,
    pub key_name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredKey {
    pub organization_id: String,
    pub kind: KeyKind,
    pub name: String,
    pub hash_prefix: String,
    pub created_at: String,
    #[serde(default)]
    pub revoked_at: Option<String>,
}

pub fn hash_key(key: &str) -> String {
    crate::ids::sha256_hex(key.as_bytes())
}

/// The key in an `Authorization` header: `Bearer <key>` or the bare key.
pub fn key_from_header(authorization: &str) -> Option<&str> {
    let value = authorization.trim();
    let key = match value.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        Some(_) => return None,
        None => value,
    };
    (KeyKind::of_key(key).is_some() && key.len() <= 200).then_some(key)
}

/// The keys table, for the authorizer, the local server and the admin command. It also keeps
/// each organization's own request budget, when it has one (`ORG#<org>#LIMITS` / `LIMITS`).
#[derive(Clone)]
pub struct KeyStore {
    table: Arc<dyn Table>,
    /// Organizations' budgets as last read, and when: read again after [`LIMIT_CACHE`].
    limits: Arc<std::sync::Mutex<LimitCache>>,
}

/// Organization → its own budget (if any) and when it was read.
type LimitCache = std::collections::HashMap<String, (Option<Limit>, Timestamp)>;

/// How long an organization's budget is used before it is read again: a change reaches every
/// process within a minute, and a request costs no extra read.
const LIMIT_CACHE: jiff::SignedDuration = jiff::SignedDuration::from_mins(1);

fn limits_key(organization_id: &str) -> Key {
    Key::new(format!("ORG#{organization_id}#LIMITS"), "LIMITS")
}

#[derive(Serialize, Deserialize)]
struct StoredLimit {
    per_second: f64,
    burst: f64,
}

fn key_item(hash: &str) -> Key {
    Key::new(format!("KEY#{hash}"), "KEY")
}

fn organization_keys(organization_id: &str) -> String {
    format!("ORG#{organization_id}#KEYS")
}

impl KeyStore {
    pub fn new(table: Arc<dyn Table>) -> Self {
        Self {
            table,
            limits: Arc::default(),
        }
    }

    /// The organization's own budget, if it has one (else the deployment's applies).
    pub async fn organization_limit(
        &self,
        organization_id: &str,
        now: Timestamp,
    ) -> Result<Option<Limit>, StoreError> {
        let cached = self
            .limits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(organization_id)
            .copied();
        if let Some((limit, read_at)) = cached
            && now.duration_since(read_at) < LIMIT_CACHE
        {
            return Ok(limit);
        }
        let limit = match self.table.get(&limits_key(organization_id)).await? {
            Some(item) => {
                let stored: StoredLimit = item.decode()?;
                Some(Limit::new(stored.per_second, stored.burst))
            }
            None => None,
        };
        self.limits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(organization_id.to_owned(), (limit, now));
        Ok(limit)
    }

    /// Sets (or with `None`, removes) the organization's own budget.
    pub async fn set_organization_limit(
        &self,
        organization_id: &str,
        limit: Option<Limit>,
    ) -> Result<(), StoreError> {
        let key = limits_key(organization_id);
        let write = match limit {
            Some(limit) => Write::put(
                key,
                &StoredLimit {
                    per_second: limit.per_second,
                    burst: limit.burst,
                },
                Expect::Anything,
            )?,
            None => Write::Delete {
                key,
                expect: Expect::Anything,
            },
        };
        self.table.write(vec![write]).await?;
        self.limits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(organization_id);
        Ok(())
    }

    /// Spends a request of `caller`'s organization's budget (its own, or the deployment's).
    pub async fn admit(
        &self,
        limiter: &RateLimiter,
        caller: &Caller,
        now: Timestamp,
    ) -> ApiResult<()> {
        let budget = Budget::Organization(caller.organization_id.clone());
        let limit = match self.organization_limit(&caller.organization_id, now).await {
            Ok(limit) => limit.unwrap_or(limiter.limits().organization),
            // Unreadable: the deployment's budget still applies.
            Err(err) => {
                tracing::warn!(%err, "could not read an organization's budget");
                limiter.limits().organization
            }
        };
        limiter.admit_with(&budget, limit, now).await
    }

    /// The caller behind an `Authorization` header; 401 for anything but a live key.
    pub async fn authenticate(&self, authorization: Option<&str>) -> ApiResult<Caller> {
        let key = authorization
            .and_then(key_from_header)
            .ok_or_else(ApiError::unauthorized)?;
        let hash = hash_key(key);
        let item = self
            .table
            .get(&key_item(&hash))
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        let stored: StoredKey = item.decode()?;
        // The prefix says the kind; a stored kind that disagrees means a forged or broken record.
        if stored.revoked_at.is_some() || KeyKind::of_key(key) != Some(stored.kind) {
            return Err(ApiError::unauthorized());
        }
        Ok(Caller {
            organization_id: stored.organization_id,
            kind: stored.kind,
            key_name: stored.name,
        })
    }

    /// Stores a key (by hash). Registering the same key again with the same owner is a no-op.
    pub async fn register(
        &self,
        key: &str,
        organization_id: &str,
        name: &str,
        created_at: &str,
    ) -> Result<StoredKey, StoreError> {
        let kind = KeyKind::of_key(key)
            .ok_or_else(|| StoreError::Corrupt("keys start with pk_ or sk_".into()))?;
        let hash = hash_key(key);
        let stored = StoredKey {
            organization_id: organization_id.to_owned(),
            kind,
            name: name.to_owned(),
            hash_prefix: hash[..8].to_owned(),
            created_at: created_at.to_owned(),
            revoked_at: None,
        };
        let index = Key::new(
            organization_keys(organization_id),
            format!("{name}#{}", &hash[..8]),
        );
        let writes = vec![
            Write::put(key_item(&hash), &stored, Expect::Absent)?,
            Write::put(
                index,
                &serde_json::json!({ "hash": hash }),
                Expect::Anything,
            )?,
        ];
        match self.table.write(writes).await {
            Err(StoreError::ConditionFailed) => {
                let existing: StoredKey = self
                    .table
                    .get(&key_item(&hash))
                    .await?
                    .ok_or(StoreError::ConditionFailed)?
                    .decode()?;
                if existing.organization_id == organization_id {
                    Ok(existing)
                } else {
                    Err(StoreError::Corrupt(
                        "that key already belongs to another organization".into(),
                    ))
                }
            }
            Err(err) => Err(err),
            Ok(()) => Ok(stored),
        }
    }

    /// Creates a new random key; the plaintext is returned once and never stored.
    pub async fn create(
        &self,
        organization_id: &str,
        kind: KeyKind,
        name: &str,
        created_at: &str,
    ) -> Result<(String, StoredKey), StoreError> {
        let key = format!("{}{}", kind.prefix(), crate::ids::random_token(40));
        let stored = self
            .register(&key, organization_id, name, created_at)
            .await?;
        Ok((key, stored))
    }

    pub async fn list(&self, organization_id: &str) -> Result<Vec<StoredKey>, StoreError> {
        let mut query = Query::partition(organization_keys(organization_id));
        query.range = SortRange::All;
        query.limit = 1000;
        let index = self.table.query(&query).await?;
        let keys: Vec<Key> = index
            .iter()
            .filter_map(|item| item.doc.get("hash").and_then(|h| h.as_str()).map(key_item))
            .collect();
        let items = self.table.get_many(&keys).await?;
        items
            .into_iter()
            .flatten()
            .map(|item| item.decode())
            .collect()
    }

    /// Revokes the organization's key whose hash starts with `hash_prefix` (as `list` shows).
    pub async fn revoke(
        &self,
        organization_id: &str,
        hash_prefix: &str,
        revoked_at: &str,
    ) -> Result<bool, StoreError> {
        let mut query = Query::partition(organization_keys(organization_id));
        query.limit = 1000;
        let matching: Vec<String> = self
            .table
            .query(&query)
            .await?
            .iter()
            .filter_map(|index| {
                index
                    .doc
                    .get("hash")
                    .and_then(|h| h.as_str())
                    .map(str::to_owned)
            })
            .filter(|hash| hash_prefix.len() >= 8 && hash.starts_with(hash_prefix))
            .collect();
        // A prefix that names two keys names neither: revoking the wrong one would be worse.
        let [hash] = matching.as_slice() else {
            return Ok(false);
        };
        let Some(item) = self.table.get(&key_item(hash)).await? else {
            return Ok(false);
        };
        let mut stored: StoredKey = item.decode()?;
        stored.revoked_at = Some(revoked_at.to_owned());
        self.table
            .write(vec![Write::put(
                key_item(hash),
                &stored,
                Expect::Revision(item.rev),
            )?])
            .await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_and_bare_keys_are_read() {
        assert_eq!(key_from_header("Bearer sk_abc"), Some("sk_abc"));
        assert_eq!(key_from_header("bearer   pk_abc "), Some("pk_abc"));
        assert_eq!(key_from_header("sk_abc"), Some("sk_abc"));
        assert_eq!(key_from_header("Basic sk_abc"), None);
        assert_eq!(key_from_header("Bearer xx_abc"), None);
        assert_eq!(key_from_header(""), None);
    }
}
