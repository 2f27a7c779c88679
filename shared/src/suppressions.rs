//! The do-not-call list (SPEC §7): numbers an organization must not be called back on, for
//! good or until `expires_at`. Operators keep it through `/v1/suppressions/{number}`; an
//! `opt_out` outcome adds to it ([`put_write`], in the outcome's own transaction); creating a
//! callback and dispatching one ask [`in_force`].
//!
//! Table layout: one item per organization and number, partition `ORG#<org>#SUPP`, sort key =
//! the number (E.164), so the check is one `GetItem`, the list is one `Query` in number order,
//! and a number is suppressed at most once (a `PUT` replaces). An item with `expires_at` also
//! carries the table's `ttl`, so DynamoDB removes it some time after it ends; until then (and
//! for ever on the local stores, which sweep nothing) it is still read, so every read here
//! treats an item whose `expires_at` has passed as absent.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::app::App;
use crate::auth::Caller;
use crate::concurrency::optimistic;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::fields::{Field, FieldReader};
use crate::http::{check_if_match, etag_of};
use crate::page::{PageScope, PageTokens};
use crate::store::{Expect, Item, Key, Query, SortRange, StoreError, Write};
use crate::time::rfc3339;
use crate::validate::is_e164;

/// `source` of a suppression made through the API.
pub const SOURCE_API: &str = "api";
/// `source` of a suppression an `opt_out` outcome made.
pub fn opt_out_source(callback_id: &str) -> String {
    format!("opt_out:{callback_id}")
}

/// At most this many characters of `reason`.
pub const MAX_REASON_CHARS: usize = 500;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suppression {
    pub number: String,
    pub reason: Option<String>,
    /// Who suppressed the number: `api`, or `opt_out:<callback id>`.
    pub source: String,
    /// When the number was suppressed; a `PUT` over a suppression in force keeps it.
    #[serde(with = "rfc3339")]
    pub created_at: Timestamp,
    #[serde(with = "rfc3339::option")]
    pub expires_at: Option<Timestamp>,
}

impl Suppression {
    /// Whether it still holds at `now` (it ends at `expires_at` exactly).
    pub fn in_force_at(&self, now: Timestamp) -> bool {
        self.expires_at.is_none_or(|expires| now < expires)
    }

    /// Its `ETag`: that of its JSON, as `GET` and `PUT` answer it.
    pub fn etag(&self) -> String {
        etag_of(self)
    }
}

/// `GET /v1/suppressions`: one page, in number order.
#[derive(Debug, Serialize)]
pub struct SuppressionList {
    pub suppressions: Vec<Suppression>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

fn partition(organization_id: &str) -> String {
    format!("ORG#{organization_id}#SUPP")
}

pub fn key(organization_id: &str, number: &str) -> Key {
    Key::new(partition(organization_id), number)
}

fn not_found(number: &str) -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        format!("{number} is not on the do-not-call list"),
    )
}

/// The number of a path: E.164, its `+` URL-encoded (`%2B15551234567`) or not.
pub fn parse_number(from_path: &str) -> ApiResult<String> {
    let number = match from_path.get(..3) {
        Some(prefix) if prefix.eq_ignore_ascii_case("%2B") => format!("+{}", &from_path[3..]),
        _ => from_path.to_owned(),
    };
    if is_e164(&number) {
        Ok(number)
    } else {
        Err(ApiError::invalid_field(
            "number",
            "must be an E.164 phone number like +15551234567 (in a path: %2B15551234567)",
        ))
    }
}

/// The stored suppression of `number` (in force or not) and its revision.
async fn stored(
    app: &App,
    organization_id: &str,
    number: &str,
) -> Result<Option<(Suppression, u64)>, StoreError> {
    match app.store.get(&key(organization_id, number)).await? {
        Some(item) => Ok(Some((item.decode()?, item.rev))),
        None => Ok(None),
    }
}

/// The organization's suppression of `number` in force at `now` (an expired one is none).
pub async fn in_force(
    app: &App,
    organization_id: &str,
    number: &str,
    now: Timestamp,
) -> ApiResult<Option<Suppression>> {
    Ok(stored(app, organization_id, number)
        .await?
        .map(|(suppression, _)| suppression)
        .filter(|suppression| suppression.in_force_at(now)))
}

/// The write that suppresses a number (creates or replaces), for a caller's own transaction
/// (an `opt_out` outcome writes it with the callback's change; source `opt_out:<callback id>`).
/// Unconditional: whatever was there before, the number is suppressed after.
pub fn put_write(organization_id: &str, suppression: &Suppression) -> Result<Write, StoreError> {
    put_expecting(organization_id, suppression, Expect::Anything)
}

fn put_expecting(
    organization_id: &str,
    suppression: &Suppression,
    expect: Expect,
) -> Result<Write, StoreError> {
    let mut write = Write::put(
        key(organization_id, &suppression.number),
        suppression,
        expect,
    )?;
    if let Write::Put { expires_at, .. } = &mut write {
        *expires_at = suppression.expires_at.map(ttl_of);
    }
    Ok(write)
}

/// The item's `ttl` (epoch seconds): the second `expires` falls in, rounded up, so TTL never
/// removes a suppression still in force.
fn ttl_of(expires: Timestamp) -> i64 {
    let seconds = expires.as_second();
    if expires.subsec_nanosecond() > 0 {
        seconds + 1
    } else {
        seconds
    }
}

/// The fields of a `PUT` body, checked at `now`.
struct Fields {
    reason: Option<String>,
    expires_at: Option<Timestamp>,
}

fn read_fields(body: Map<String, Value>, now: Timestamp) -> ApiResult<Fields> {
    let mut fields = FieldReader::new(body);
    for name in ["number", "source", "created_at"] {
        fields.refuse(name, "is read-only");
    }
    let reason = fields.string("reason", MAX_REASON_CHARS).into_option();
    let expires_at = match fields.timestamp("expires_at") {
        Field::Set(at) if at <= now => {
            fields.problem("expires_at", "must be in the future");
            None
        }
        other => other.into_option(),
    };
    fields.finish()?;
    Ok(Fields { reason, expires_at })
}

/// `PUT /v1/suppressions/{number}`: suppresses the number, or replaces its suppression.
pub async fn put(
    app: &App,
    caller: &Caller,
    number_from_path: &str,
    body: Map<String, Value>,
) -> ApiResult<Suppression> {
    put_if_match(app, caller, number_from_path, body, None).await
}

/// [`put`] honouring `If-Match` (SPEC §1): it must match the suppression in force (so with
/// none in force, any `If-Match` fails).
///
/// A replace sets `reason` and `expires_at` to what the body says (absent: `null`) and keeps
/// `number`, `source` and `created_at`: the number has been suppressed since then, by that
/// source, without a gap. Over an expired suppression it starts anew (`source` `api`,
/// `created_at` now).
pub async fn put_if_match(
    app: &App,
    caller: &Caller,
    number_from_path: &str,
    body: Map<String, Value>,
    if_match: Option<&str>,
) -> ApiResult<Suppression> {
    let number = &parse_number(number_from_path)?;
    let now = app.clock.now();
    let fields = &read_fields(body, now)?;
    let organization_id = &caller.organization_id;
    optimistic(move || async move {
        let found = stored(app, organization_id, number).await?;
        let current = found.as_ref().filter(|(s, _)| s.in_force_at(now));
        match (current, if_match) {
            (Some((suppression, _)), _) => check_if_match(if_match, &suppression.etag())?,
            (None, Some(_)) => {
                return Err(ApiError::new(
                    ErrorCode::PreconditionFailed,
                    "If-Match does not match: the number is not suppressed",
                )
                .into());
            }
            (None, None) => {}
        }
        let suppression = Suppression {
            number: number.clone(),
            reason: fields.reason.clone(),
            source: current.map_or_else(|| SOURCE_API.to_owned(), |(s, _)| s.source.clone()),
            created_at: current.map_or(now, |(s, _)| s.created_at),
            expires_at: fields.expires_at,
        };
        let expect = found.map_or(Expect::Absent, |(_, rev)| Expect::Revision(rev));
        app.store
            .write(vec![put_expecting(organization_id, &suppression, expect)?])
            .await?;
        Ok(suppression)
    })
    .await
}

/// `GET /v1/suppressions/{number}`: 404 when none is in force.
pub async fn get(app: &App, caller: &Caller, number_from_path: &str) -> ApiResult<Suppression> {
    let number = parse_number(number_from_path)?;
    in_force(app, &caller.organization_id, &number, app.clock.now())
        .await?
        .ok_or_else(|| not_found(&number))
}

/// `DELETE /v1/suppressions/{number}`: 404 when none is in force (an expired one is left to
/// its `ttl`).
pub async fn delete(app: &App, caller: &Caller, number_from_path: &str) -> ApiResult<()> {
    let number = &parse_number(number_from_path)?;
    let organization_id = &caller.organization_id;
    optimistic(move || async move {
        let now = app.clock.now();
        let Some((_, rev)) = stored(app, organization_id, number)
            .await?
            .filter(|(s, _)| s.in_force_at(now))
        else {
            return Err(not_found(number).into());
        };
        // On its revision: a PUT that replaced it meanwhile is not undone unseen.
        app.store
            .write(vec![Write::Delete {
                key: key(organization_id, number),
                expect: Expect::Revision(rev),
            }])
            .await?;
        Ok(())
    })
    .await
}

/// Queries a list page makes at most: expired items waiting for their `ttl` are skipped, and
/// a run of them longer than this many pages ends the page early (with a token to go on).
const MAX_QUERIES_PER_PAGE: usize = 4;

/// `GET /v1/suppressions`: those in force, in number order.
pub async fn list(
    app: &App,
    caller: &Caller,
    limit: u32,
    page_token: Option<&str>,
) -> ApiResult<SuppressionList> {
    let scope = PageScope::new("suppressions", &caller.organization_id);
    let tokens: &PageTokens = app.page_tokens()?;
    let now = app.clock.now();
    let mut after = page_token
        .map(|token| tokens.open(token, &scope, now))
        .transpose()?;
    let limit = limit as usize;
    let mut found: Vec<Suppression> = Vec::with_capacity(limit + 1);
    // Where the page ends when it is cut short by expired items.
    let mut examined_to = None;
    for _ in 0..MAX_QUERIES_PER_PAGE {
        let query = Query {
            pk: partition(&caller.organization_id),
            range: SortRange::All,
            after: after.clone(),
            descending: false,
            limit: limit + 1 - found.len(),
        };
        let items: Vec<Item> = app.store.query(&query).await?;
        let exhausted = items.len() < query.limit;
        for item in &items {
            let suppression: Suppression = item.decode()?;
            if suppression.in_force_at(now) {
                found.push(suppression);
            }
        }
        after = items.last().map(|item| item.key.sk.clone()).or(after);
        if exhausted || found.len() > limit {
            examined_to = None;
            break;
        }
        examined_to = after.clone();
    }
    let next = if found.len() > limit {
        found.truncate(limit);
        found.last().map(|s| s.number.clone())
    } else {
        examined_to
    };
    Ok(SuppressionList {
        suppressions: found,
        next_page_token: next.map(|position| tokens.issue(&scope, &position, now)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_numbers_are_e164_with_or_without_their_plus_encoded() {
        assert_eq!(parse_number("%2B15551234567").unwrap(), "+15551234567");
        assert_eq!(parse_number("%2b15551234567").unwrap(), "+15551234567");
        assert_eq!(parse_number("+15551234567").unwrap(), "+15551234567");
        for bad in [
            "15551234567",
            "%2B0555",
            "%2B1555x234567",
            "",
            "%2",
            "+1 555 123",
        ] {
            let err = parse_number(bad).unwrap_err();
            assert_eq!(err.details[0].field, "number", "{bad}");
        }
    }

    #[test]
    fn the_ttl_never_falls_before_the_expiry() {
        let whole: Timestamp = "2026-11-21T14:15:22Z".parse().unwrap();
        assert_eq!(ttl_of(whole), whole.as_second());
        let later: Timestamp = "2026-11-21T14:15:22.001Z".parse().unwrap();
        assert_eq!(ttl_of(later), whole.as_second() + 1);
    }

    #[test]
    fn a_suppression_ends_at_its_expiry() {
        let at: Timestamp = "2026-11-21T14:15:22Z".parse().unwrap();
        let suppression = Suppression {
            number: "+15551234567".to_owned(),
            reason: None,
            source: SOURCE_API.to_owned(),
            created_at: at,
            expires_at: Some(at + jiff::SignedDuration::from_secs(60)),
        };
        assert!(suppression.in_force_at(at + jiff::SignedDuration::from_secs(59)));
        assert!(!suppression.in_force_at(at + jiff::SignedDuration::from_secs(60)));
    }
}
