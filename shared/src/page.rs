//! Page tokens: opaque, signed (HMAC-SHA256 with the signing key), bound to the organization,
//! the list and its filters, valid for 24 hours. A token carries only the position after which
//! the next page starts, so a page costs one query of `page size + 1` items.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ApiResult};

pub const PAGE_TOKEN_LIFETIME_SECONDS: i64 = 24 * 60 * 60;

/// What a token is bound to: the list, the organization and the filters (in a fixed order).
#[derive(Debug, Clone)]
pub struct PageScope {
    pub list: &'static str,
    pub organization_id: String,
    pub filters: Vec<(&'static str, String)>,
}

impl PageScope {
    pub fn new(list: &'static str, organization_id: &str) -> Self {
        Self {
            list,
            organization_id: organization_id.to_owned(),
            filters: Vec::new(),
        }
    }

    pub fn filter(mut self, name: &'static str, value: Option<&str>) -> Self {
        self.filters
            .push((name, value.unwrap_or_default().to_owned()));
        self
    }

    fn organization_tag(&self) -> String {
        tag(&[self.organization_id.as_str()])
    }

    fn filters_tag(&self) -> String {
        let mut parts = vec![self.list];
        for (name, value) in &self.filters {
            parts.push(name);
            parts.push(value);
        }
        tag(&parts)
    }
}

/// A short digest that binds without revealing.
fn tag(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    URL_SAFE_NO_PAD.encode(&hasher.finalize()[..12])
}

#[derive(Serialize, Deserialize)]
struct Payload {
    /// Organization tag.
    o: String,
    /// List and filters tag.
    f: String,
    /// Position: the sort key of the last item of the previous page.
    p: String,
    /// Expiry, unix milliseconds.
    e: i64,
}

#[derive(Clone)]
pub struct PageTokens {
    key: std::sync::Arc<[u8]>,
}

impl std::fmt::Debug for PageTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PageTokens { key: <redacted> }")
    }
}

impl PageTokens {
    pub fn new(signing_key: &[u8]) -> Self {
        Self {
            key: signing_key.into(),
        }
    }

    fn mac(&self, payload: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(b"flowline-page-token-v1.");
        mac.update(payload);
        mac
    }

    pub fn issue(&self, scope: &PageScope, position: &str, now: Timestamp) -> String {
        let payload = Payload {
            o: scope.organization_tag(),
            f: scope.filters_tag(),
            p: position.to_owned(),
            e: now.as_millisecond() + PAGE_TOKEN_LIFETIME_SECONDS * 1000,
        };
        let payload = serde_json::to_vec(&payload).expect("payload serializes");
        let signature = self.mac(&payload).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(signature)
        )
    }

    /// The position a token continues from, or the reason it is refused.
    pub fn open(&self, token: &str, scope: &PageScope, now: Timestamp) -> ApiResult<String> {
        let tampered =
            || ApiError::invalid_page_token("The page token is malformed or was tampered with");
        let (payload, signature) = token.split_once('.').ok_or_else(tampered)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| tampered())?;
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| tampered())?;
        // Constant-time comparison inside verify_slice.
        self.mac(&payload)
            .verify_slice(&signature)
            .map_err(|_| tampered())?;
        let payload: Payload = serde_json::from_slice(&payload).map_err(|_| tampered())?;
        if payload.o != scope.organization_tag() {
            return Err(ApiError::invalid_page_token(
                "The page token belongs to another organization",
            ));
        }
        if payload.f != scope.filters_tag() {
            return Err(ApiError::invalid_page_token(
                "The page token was issued for another list or other filters; repeat the filters of the first page",
            ));
        }
        if now.as_millisecond() >= payload.e {
            return Err(ApiError::invalid_page_token(
                "The page token has expired (tokens last 24 hours)",
            ));
        }
        Ok(payload.p)
    }
}

/// Lambda answers at most 6 MB: a list page ends early once its items pass this (flows carry
/// up to 200 KiB of YAML, twice), and its token continues after the last item it kept.
pub const MAX_PAGE_BYTES: usize = 5 * 1024 * 1024;

/// Keeps `(position, item)`s in order while their JSON stays within `max_bytes` (always at
/// least one). Answers the kept items and, when some were cut, the position of the last kept.
pub fn within_budget<T: Serialize>(
    items: Vec<(String, T)>,
    max_bytes: usize,
) -> (Vec<T>, Option<String>) {
    let total = items.len();
    let mut kept = Vec::with_capacity(total);
    let mut used = 0;
    let mut last_position = None;
    for (position, item) in items {
        let size = serde_json::to_vec(&item).map_or(0, |bytes| bytes.len());
        if !kept.is_empty() && used + size > max_bytes {
            break;
        }
        used += size;
        kept.push(item);
        last_position = Some(position);
    }
    let cut = (kept.len() < total).then_some(last_position).flatten();
    (kept, cut)
}

/// One page of a list.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_page_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(org: &str, status: Option<&str>) -> PageScope {
        PageScope::new("flows", org).filter("status", status)
    }

    #[test]
    fn a_page_ends_early_at_its_byte_budget() {
        let items: Vec<(String, String)> =
            (0..5).map(|i| (format!("p{i}"), "x".repeat(98))).collect();
        let (kept, cut) = within_budget(items.clone(), 250);
        assert_eq!((kept.len(), cut.as_deref()), (2, Some("p1")));
        let (kept, cut) = within_budget(items.clone(), 10_000);
        assert_eq!((kept.len(), cut), (5, None));
        let (kept, cut) = within_budget(items, 1);
        assert_eq!(
            (kept.len(), cut.as_deref()),
            (1, Some("p0")),
            "never an empty page"
        );
    }

    #[test]
    fn a_token_opens_in_its_own_scope() {
        let tokens = PageTokens::new(b"0123456789abcdef0123456789abcdef");
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let token = tokens.issue(&scope("org_a", Some("ACTIVE")), "pos-1", now);
        assert_eq!(
            tokens
                .open(&token, &scope("org_a", Some("ACTIVE")), now)
                .unwrap(),
            "pos-1"
        );
    }

    #[test]
    fn each_refusal_says_why() {
        let tokens = PageTokens::new(b"0123456789abcdef0123456789abcdef");
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let token = tokens.issue(&scope("org_a", None), "pos", now);
        let message = |token: &str, scope: PageScope, at: Timestamp| {
            tokens.open(token, &scope, at).unwrap_err().message
        };
        assert!(message(&token, scope("org_b", None), now).contains("another organization"));
        assert!(message(&token, scope("org_a", Some("DRAFT")), now).contains("other filters"));
        let later = Timestamp::from_second(1_800_000_000 + PAGE_TOKEN_LIFETIME_SECONDS).unwrap();
        assert!(message(&token, scope("org_a", None), later).contains("expired"));
        let mut forged = token.clone();
        forged.insert(3, 'x');
        assert!(message(&forged, scope("org_a", None), now).contains("tampered"));
        assert!(message("garbage", scope("org_a", None), now).contains("tampered"));
        let other_key = PageTokens::new(b"another key, another key, another");
        assert!(other_key.open(&token, &scope("org_a", None), now).is_err());
    }
}
