//! How callbacks live in the table (see `docs/table-design.md`):
//!
//! | item | pk | sk |
//! |---|---|---|
//! | callback | `ORG#<org>#CB#<id>` | `CALLBACK` |
//! | list entry (4 or 8 per callback) | `ORG#<org>#CBS#s=<status>#sess=<session>#f=<flow>#<shard 0-3>` | `<id>` |
//! | due entry (while scheduled/dispatching) | `DUE#<shard 0-31>` | `<due ms, 13 digits>#<id>` |
//! | number entry (while scheduled) | `ORG#<org>#CBNUM#<to_number>` | `<id>` |
//! | number's uniqueness item (`dedupe`, while scheduled/dispatching) | `ORG#<org>#NUMBER#<to_number>` | `ACTIVE` |
//!
//! List entries exist for every combination of the filters `status`, `source_session_id` and
//! `flow` with "any" (`*`), so each filtered list is a `Query` of its partitions; ids sort by
//! creation time, so newest first is a descending query. Each filter set is spread over
//! [`LIST_SHARDS`] partitions by the callback's id, so an organization creating and
//! dispatching hundreds of callbacks a second stays far under DynamoDB's 1,000 write units a
//! second per partition; a page reads the newest `limit + 1` of each and merges them (ids are
//! unique and ordered, so the merge is exact and a page ends at one id across all of them).
//!
//! The due entry says when the sweeper must look at the callback: 2 minutes after
//! `scheduled_at`, or when a dispatcher's lease runs out. It is spread over [`DUE_SHARDS`]
//! partitions shared by every organization (see docs/table-design.md for the arithmetic).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::model::{Callback, CallbackStatus, StoredCallback};
use crate::scheduler::DispatchJob;
use crate::store::{
    Entries, Expect, Key, Loaded, Query, SortRange, StoreError, Table, Write, merged_page, reindex,
    shard_of,
};
use crate::webhooks::EventType;
use crate::webhooks::outbox;

/// Partitions of the due index: at 1,000 creates and 1,000 dispatches a second platform-wide,
/// each takes about 250 write units a second (docs/table-design.md).
pub const DUE_SHARDS: u32 = 32;
/// Partitions of each callback list.
pub const LIST_SHARDS: u32 = 4;
/// The sweeper takes over a scheduled callback this late (SPEC §4: "more than 2 minutes").
pub const SWEEP_GRACE_MS: i64 = 2 * 60 * 1000;

fn item_key(organization_id: &str, id: &str) -> Key {
    Key::new(format!("ORG#{organization_id}#CB#{id}"), "CALLBACK")
}

/// The filters of a callback list; `None` means any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallbackFilters {
    pub status: Option<CallbackStatus>,
    pub source_session_id: Option<String>,
    pub flow: Option<String>,
}

fn list_pk(organization_id: &str, filters: &CallbackFilters, shard: u32) -> String {
    // Session ids are the caller's text: encoded so no value can imitate the separators.
    let session = filters
        .source_session_id
        .as_ref()
        .map_or_else(|| "*".to_owned(), |s| URL_SAFE_NO_PAD.encode(s));
    format!(
        "ORG#{organization_id}#CBS#s={}#sess={session}#f={}#{shard}",
        filters.status.map_or("*", CallbackStatus::as_str),
        filters.flow.as_deref().unwrap_or("*"),
    )
}

/// The scheduled callbacks to a number (bulk cancel by `to_number`, an opt-out's cascade).
fn number_pk(organization_id: &str, number: &str) -> String {
    format!("ORG#{organization_id}#CBNUM#{number}")
}

/// The item a callback created under `dedupe: one_active_per_number` holds while active: put
/// on condition that it is absent, so of concurrent creates to one number exactly one wins.
fn uniqueness_key(organization_id: &str, number: &str) -> Key {
    Key::new(format!("ORG#{organization_id}#NUMBER#{number}"), "ACTIVE")
}

#[derive(Debug, Serialize, Deserialize)]
struct NumberHolder {
    callback_id: String,
}

/// The callback holding `number`'s uniqueness item, if any.
pub async fn number_holder(
    table: &dyn Table,
    organization_id: &str,
    number: &str,
) -> Result<Option<String>, StoreError> {
    match table.get(&uniqueness_key(organization_id, number)).await? {
        Some(item) => Ok(Some(item.decode::<NumberHolder>()?.callback_id)),
        None => Ok(None),
    }
}

/// The writes that move the uniqueness item from `before` to `after`: released on every
/// transition out of scheduled/dispatching (and from an old number), taken — on condition
/// that nobody holds it — on the way in.
fn uniqueness_writes(
    before: Option<&StoredCallback>,
    after: &StoredCallback,
) -> Result<Vec<Write>, StoreError> {
    let organization_id = &after.callback.organization_id;
    let held = before.filter(|b| b.holds_number_now());
    let holds = after.holds_number_now();
    let same_number = held.is_some_and(|b| b.callback.to_number == after.callback.to_number);
    let mut writes = Vec::new();
    if let Some(before) = held
        && !(holds && same_number)
    {
        writes.push(Write::Delete {
            key: uniqueness_key(organization_id, &before.callback.to_number),
            expect: Expect::Anything,
        });
    }
    if holds && !same_number {
        let holder = NumberHolder {
            callback_id: after.callback.id.clone(),
        };
        writes.push(Write::put(
            uniqueness_key(organization_id, &after.callback.to_number),
            &holder,
            Expect::Absent,
        )?);
    }
    Ok(writes)
}

fn due_pk(shard: u32) -> String {
    format!("DUE#{shard}")
}

#[derive(Debug, Serialize, Deserialize)]
struct DueEntry {
    organization_id: String,
    callback_id: String,
    /// The callback is `dispatching`: the entry's time is its lease's end, not `scheduled_at`
    /// plus the sweeper's grace. Written only when true, so a scheduled callback's entry is as
    /// it always was.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    leased: bool,
}

/// When the sweeper must next look at a callback, if ever.
fn due_ms(stored: &StoredCallback) -> Option<i64> {
    match stored.callback.status {
        CallbackStatus::Scheduled => {
            Some(stored.callback.scheduled_at.as_millisecond() + SWEEP_GRACE_MS)
        }
        CallbackStatus::Dispatching => stored.lease_until_ms,
        _ => None,
    }
}

fn entries(stored: &StoredCallback) -> Entries {
    let callback = &stored.callback;
    let mut entries = Entries::new();
    let sessions = match &callback.source_session_id {
        Some(session) => vec![None, Some(session.clone())],
        None => vec![None],
    };
    for status in [None, Some(callback.status)] {
        for source_session_id in &sessions {
            for flow in [None, Some(callback.flow.clone())] {
                let filters = CallbackFilters {
                    status,
                    source_session_id: source_session_id.clone(),
                    flow,
                };
                let pk = list_pk(
                    &callback.organization_id,
                    &filters,
                    shard_of(&callback.id, LIST_SHARDS),
                );
                entries.insert(Key::new(pk, &callback.id), serde_json::json!({}));
            }
        }
    }
    if callback.status == CallbackStatus::Scheduled {
        let pk = number_pk(&callback.organization_id, &callback.to_number);
        entries.insert(Key::new(pk, &callback.id), serde_json::json!({}));
    }
    if let Some(due) = due_ms(stored) {
        let key = Key::new(
            due_pk(shard_of(&callback.id, DUE_SHARDS)),
            format!("{:013}#{}", due.max(0), callback.id),
        );
        let entry = DueEntry {
            organization_id: callback.organization_id.clone(),
            callback_id: callback.id.clone(),
            leased: callback.status == CallbackStatus::Dispatching,
        };
        entries.insert(
            key,
            serde_json::to_value(entry).expect("due entries serialize"),
        );
    }
    entries
}

pub async fn load(
    table: &dyn Table,
    organization_id: &str,
    id: &str,
) -> Result<Option<Loaded<StoredCallback>>, StoreError> {
    crate::store::load(table, &item_key(organization_id, id)).await
}

/// Writes `after` (new, or replacing `before` only if unchanged since read) with its entries
/// and, in the same transaction, the lifecycle events `events` about it (the outbox: a change
/// that commits has its events, one that fails has none). Answers the revision written.
pub async fn save(
    table: &dyn Table,
    before: Option<&Loaded<StoredCallback>>,
    after: &StoredCallback,
    events: &[EventType],
) -> Result<u64, StoreError> {
    save_with(table, before, after, events, Vec::new()).await
}

/// [`save`], with `also` (writes of other items that belong to the change) in the same
/// transaction.
pub async fn save_with(
    table: &dyn Table,
    before: Option<&Loaded<StoredCallback>>,
    after: &StoredCallback,
    events: &[EventType],
    also: Vec<Write>,
) -> Result<u64, StoreError> {
    let key = item_key(&after.callback.organization_id, &after.callback.id);
    let (expect, rev) = match before {
        Some(before) => (Expect::Revision(before.rev), before.rev + 1),
        None => (Expect::Absent, 1),
    };
    let now = after.callback.updated_at;
    let organization_id = &after.callback.organization_id;
    let mut record = after.clone();
    let mut outboxed = Vec::new();
    if let Some(before) = before {
        // Only a new record can wait for its announcement; its first change makes it.
        record.unannounced = false;
        if before.value.unannounced {
            outboxed.push(outbox::event(
                organization_id,
                EventType::CallbackScheduled,
                before.value.callback.event_data(),
                now,
            )?);
        }
    }
    for event in events {
        outboxed.push(outbox::event(
            organization_id,
            *event,
            record.callback.event_data(),
            now,
        )?);
    }
    let mut writes = vec![Write::put(key, &record, expect)?];
    let old = before.map(|b| entries(&b.value)).unwrap_or_default();
    writes.extend(reindex(&old, &entries(&record)));
    writes.extend(uniqueness_writes(before.map(|b| &b.value), &record)?);
    writes.extend(outboxed);
    writes.extend(also);
    table.write(writes).await?;
    Ok(rev)
}

/// Writes a new callback with its entries and its events, on condition that `guards` hold, in
/// one transaction.
pub async fn save_guarded(
    table: &dyn Table,
    new: &StoredCallback,
    events: &[EventType],
    guards: Vec<Write>,
) -> Result<u64, StoreError> {
    let key = item_key(&new.callback.organization_id, &new.callback.id);
    let mut writes = vec![Write::put(key, new, Expect::Absent)?];
    writes.extend(reindex(&Entries::new(), &entries(new)));
    writes.extend(uniqueness_writes(None, new)?);
    for event in events {
        writes.push(outbox::event(
            &new.callback.organization_id,
            *event,
            new.callback.event_data(),
            new.callback.created_at,
        )?);
    }
    writes.extend(guards);
    table.write(writes).await?;
    Ok(1)
}

/// Removes a callback that never got its schedule (creation rolled back).
pub async fn remove(table: &dyn Table, stored: &Loaded<StoredCallback>) -> Result<(), StoreError> {
    let callback = &stored.value.callback;
    let mut writes = vec![Write::Delete {
        key: item_key(&callback.organization_id, &callback.id),
        expect: Expect::Revision(stored.rev),
    }];
    writes.extend(reindex(&entries(&stored.value), &Entries::new()));
    if stored.value.holds_number_now() {
        writes.push(Write::Delete {
            key: uniqueness_key(&callback.organization_id, &callback.to_number),
            expect: Expect::Anything,
        });
    }
    table.write(writes).await
}

/// Ids of `scheduled` callbacks, newest first, one page after `after`: to `number` when given,
/// else those matching the list filters (`source_session_id`, `flow`), whose `scheduled` list
/// is read. With a number, the other filters are for the caller to check on each callback.
pub async fn scheduled_ids(
    table: &dyn Table,
    organization_id: &str,
    number: Option<&str>,
    filters: &CallbackFilters,
    after: Option<String>,
    limit: usize,
) -> Result<(Vec<String>, Option<String>), StoreError> {
    let pks = match number {
        Some(number) => vec![number_pk(organization_id, number)],
        None => {
            let filters = CallbackFilters {
                status: Some(CallbackStatus::Scheduled),
                ..filters.clone()
            };
            (0..LIST_SHARDS)
                .map(|shard| list_pk(organization_id, &filters, shard))
                .collect()
        }
    };
    let (entries, next) = merged_page(table, pks, SortRange::All, after, limit).await?;
    Ok((
        entries.into_iter().map(|entry| entry.key.sk).collect(),
        next,
    ))
}

/// One page of a callback list, newest first, and the position after it (merged over the
/// list's shards).
pub async fn list_page(
    table: &dyn Table,
    organization_id: &str,
    filters: &CallbackFilters,
    after: Option<String>,
    limit: usize,
) -> Result<(Vec<Callback>, Option<String>), StoreError> {
    let pks = (0..LIST_SHARDS)
        .map(|shard| list_pk(organization_id, filters, shard))
        .collect();
    let (entries, next) = merged_page(table, pks, SortRange::All, after, limit).await?;
    let keys: Vec<Key> = entries
        .iter()
        .map(|entry| item_key(organization_id, &entry.key.sk))
        .collect();
    let mut callbacks = Vec::with_capacity(keys.len());
    for item in table.get_many(&keys).await?.into_iter().flatten() {
        callbacks.push(item.decode::<StoredCallback>()?.callback);
    }
    Ok((callbacks, next))
}

/// Callbacks whose due time has passed, from one shard, oldest first, after `after` (a
/// position this answers with each job).
pub async fn due(
    table: &dyn Table,
    shard: u32,
    now_ms: i64,
    after: Option<String>,
    limit: usize,
) -> Result<Vec<(String, DispatchJob)>, StoreError> {
    // Strictly before now: "more than 2 minutes overdue" (SPEC §4), and a lease that has run
    // out. `~` sorts after every id character, so the bound takes everything due before now_ms.
    let query = Query {
        pk: due_pk(shard),
        range: SortRange::Between("0".to_owned(), format!("{:013}#~", (now_ms - 1).max(0))),
        after,
        descending: false,
        limit,
    };
    jobs(&table.query(&query).await?)
}

/// A callback the due index holds: `scheduled`, due at `at` (its `scheduled_at`, to the
/// millisecond), or `leased` by a dispatcher whose lease ends at `at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub job: DispatchJob,
    pub at: jiff::Timestamp,
    pub leased: bool,
}

/// Every callback waiting in one shard of the due index, whenever due, soonest first, after
/// `after` (a position this answers with each): what a process whose timers died with the last
/// one arms again. It reads the index alone, never the callbacks.
pub async fn waiting(
    table: &dyn Table,
    shard: u32,
    after: Option<String>,
    limit: usize,
) -> Result<Vec<(String, Waiting)>, StoreError> {
    let query = Query {
        pk: due_pk(shard),
        range: SortRange::All,
        after,
        descending: false,
        limit,
    };
    table
        .query(&query)
        .await?
        .iter()
        .map(|item| {
            let entry: DueEntry = item.decode()?;
            let corrupt = || StoreError::Corrupt(format!("due entry {}", item.key.sk));
            let due_ms = crate::store::due_ms_of(item)?;
            let at_ms = if entry.leased {
                due_ms
            } else {
                due_ms - SWEEP_GRACE_MS
            };
            let waiting = Waiting {
                job: DispatchJob {
                    callback_id: entry.callback_id,
                    organization_id: entry.organization_id,
                },
                at: jiff::Timestamp::from_millisecond(at_ms).map_err(|_| corrupt())?,
                leased: entry.leased,
            };
            Ok((item.key.sk.clone(), waiting))
        })
        .collect()
}

/// The jobs of due entries, each with its position in the shard.
fn jobs(items: &[crate::store::Item]) -> Result<Vec<(String, DispatchJob)>, StoreError> {
    items
        .iter()
        .map(|item| {
            let entry: DueEntry = item.decode()?;
            let job = DispatchJob {
                callback_id: entry.callback_id,
                organization_id: entry.organization_id,
            };
            Ok((item.key.sk.clone(), job))
        })
        .collect()
}
