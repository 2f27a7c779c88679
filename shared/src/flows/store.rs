//! How flows live in the table (see `docs/table-design.md`):
//!
//! | item | pk | sk |
//! |---|---|---|
//! | head (summaries, listing) | `ORG#<org>#FLOW#<slug>` | `HEAD` |
//! | version | `ORG#<org>#FLOW#<slug>` | `V#<version, 8 digits>` |
//! | numeric id → slug | `FLOW_ID#<id>` | `FLOW_ID` |
//! | list entry (8 per flow) | `ORG#<org>#FLOWS#<filters>` | `<modified ms, 13 digits>#<slug>` |
//! | count (8 shards per org and filter set) | `ORG#<org>#COUNT#FLOWS#<filters>#<shard 0-7>` | `COUNT` |
//! | id counter | `COUNTER` | `FLOW_ID` |
//!
//! A flow is listed under every combination of its current version's status, channel type and
//! type with "any" (2³ = 8 entries), so each filtered list is one `Query` of one partition, newest
//! change first, and its `total_records` is one counter, kept in [`COUNT_SHARDS`] items (each
//! flow moves the one its slug picks, the total is their sum), so concurrent changes to many
//! flows of one organization neither queue on one hot item nor conflict in their transactions. Every change writes the head, the
//! versions, the entries and the counters in one transaction, conditional on the head's revision.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use super::model::{ChannelType, FlowHead, FlowStatus, FlowType, FlowVersion, Listing, serde_name};
pub use crate::store::Loaded;
use crate::store::{Expect, Key, Query, SortRange, StoreError, Table, Write, load, split_page};

/// Numeric flow ids stay exactly representable in JSON numbers (SPEC §1).
pub const MAX_FLOW_ID: u64 = (1 << 53) - 1;

fn flow_pk(organization_id: &str, slug: &str) -> String {
    format!("ORG#{organization_id}#FLOW#{slug}")
}

pub fn head_key(organization_id: &str, slug: &str) -> Key {
    Key::new(flow_pk(organization_id, slug), "HEAD")
}

pub fn version_key(organization_id: &str, slug: &str, version: u32) -> Key {
    Key::new(flow_pk(organization_id, slug), format!("V#{version:08}"))
}

fn id_key(id: u64) -> Key {
    Key::new(format!("FLOW_ID#{id}"), "FLOW_ID")
}

fn counter_key() -> Key {
    Key::new("COUNTER", "FLOW_ID")
}

/// The filters of a flow list; `None` means any.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowFilters {
    pub status: Option<FlowStatus>,
    pub channel_type: Option<ChannelType>,
    pub flow_type: Option<FlowType>,
}

impl FlowFilters {
    fn name(&self) -> String {
        let part = |value: Option<String>| value.unwrap_or_else(|| "*".to_owned());
        format!(
            "s={}|c={}|t={}",
            part(self.status.map(|s| s.as_str().to_owned())),
            part(self.channel_type.as_ref().map(serde_name)),
            part(self.flow_type.as_ref().map(serde_name)),
        )
    }

    /// Every filter set a flow listed by `listing` matches.
    fn all_matching(listing: &Listing) -> Vec<Self> {
        let mut all = Vec::with_capacity(8);
        for status in [None, Some(listing.status)] {
            for channel_type in [None, Some(listing.channel_type)] {
                for flow_type in [None, Some(listing.flow_type)] {
                    all.push(Self {
                        status,
                        channel_type,
                        flow_type,
                    });
                }
            }
        }
        all
    }
}

fn list_pk(organization_id: &str, filters: &FlowFilters) -> String {
    format!("ORG#{organization_id}#FLOWS#{}", filters.name())
}

/// Items each flow count is spread over.
pub const COUNT_SHARDS: u32 = 8;

fn count_key(organization_id: &str, filters: &FlowFilters, shard: u32) -> Key {
    Key::new(
        format!(
            "ORG#{organization_id}#COUNT#FLOWS#{}#{shard}",
            filters.name()
        ),
        "COUNT",
    )
}

/// The count item a flow moves: always the same for one flow, spread over flows.
fn count_shard(slug: &str) -> u32 {
    slug.bytes().fold(0u32, |hash, b| {
        hash.wrapping_mul(31).wrapping_add(u32::from(b))
    }) % COUNT_SHARDS
}

#[derive(Serialize, Deserialize)]
struct ListEntry {
    slug: String,
    version: u32,
}

#[derive(Serialize, Deserialize)]
struct IdEntry {
    organization_id: String,
    slug: String,
    version: u32,
}

fn list_entries(organization_id: &str, head: &FlowHead) -> BTreeMap<Key, ListEntry> {
    let sort = format!("{:013}#{}", head.listing.modified_ms.max(0), head.slug);
    FlowFilters::all_matching(&head.listing)
        .into_iter()
        .map(|filters| {
            let key = Key::new(list_pk(organization_id, &filters), sort.clone());
            (
                key,
                ListEntry {
                    slug: head.slug.clone(),
                    version: head.listing.version,
                },
            )
        })
        .collect()
}

pub async fn load_head(
    table: &dyn Table,
    organization_id: &str,
    slug: &str,
) -> Result<Option<Loaded<FlowHead>>, StoreError> {
    load(table, &head_key(organization_id, slug)).await
}

pub async fn load_version(
    table: &dyn Table,
    organization_id: &str,
    slug: &str,
    version: u32,
) -> Result<Option<Loaded<FlowVersion>>, StoreError> {
    load(table, &version_key(organization_id, slug, version)).await
}

/// The slug and version of a numeric id, if it is this organization's.
pub async fn resolve_id(
    table: &dyn Table,
    organization_id: &str,
    id: u64,
) -> Result<Option<(String, u32)>, StoreError> {
    let Some(item) = table.get(&id_key(id)).await? else {
        return Ok(None);
    };
    let entry: IdEntry = item.decode()?;
    Ok((entry.organization_id == organization_id).then_some((entry.slug, entry.version)))
}

/// A fresh numeric id, unique across every organization (one atomic counter).
pub async fn next_flow_id(table: &dyn Table) -> Result<u64, StoreError> {
    let id = table.increment(&counter_key(), 1, None).await?;
    u64::try_from(id)
        .ok()
        .filter(|id| (1..=MAX_FLOW_ID).contains(id))
        .ok_or_else(|| StoreError::Corrupt(format!("flow id counter is at {id}")))
}

/// One change to a flow, written atomically.
pub struct FlowChange {
    /// The head as read (absent for a new flow); the write requires it unchanged.
    pub before: Option<Loaded<FlowHead>>,
    pub head: FlowHead,
    /// Versions to write, each with the revision it was read at (`None`: new).
    pub versions: Vec<(FlowVersion, Option<u64>)>,
    /// Other writes of the same transaction (the change's lifecycle event).
    pub also: Vec<Write>,
}

pub async fn commit(
    table: &dyn Table,
    organization_id: &str,
    change: FlowChange,
) -> Result<(), StoreError> {
    let FlowChange {
        before,
        head,
        versions,
        also,
    } = change;
    let mut writes = Vec::new();
    let head_expect = before
        .as_ref()
        .map_or(Expect::Absent, |b| Expect::Revision(b.rev));
    writes.push(Write::put(
        head_key(organization_id, &head.slug),
        &head,
        head_expect,
    )?);
    for (version, rev) in &versions {
        let key = version_key(organization_id, &version.slug, version.version);
        match rev {
            Some(rev) => writes.push(Write::put(key, version, Expect::Revision(*rev))?),
            None => {
                writes.push(Write::put(key, version, Expect::Absent)?);
                let entry = IdEntry {
                    organization_id: organization_id.to_owned(),
                    slug: version.slug.clone(),
                    version: version.version,
                };
                writes.push(Write::put(id_key(version.id), &entry, Expect::Absent)?);
            }
        }
    }

    let old_entries = before
        .as_ref()
        .map(|b| list_entries(organization_id, &b.value))
        .unwrap_or_default();
    let new_entries = list_entries(organization_id, &head);
    for key in old_entries
        .keys()
        .filter(|key| !new_entries.contains_key(*key))
    {
        writes.push(Write::Delete {
            key: key.clone(),
            expect: Expect::Anything,
        });
    }
    for (key, entry) in &new_entries {
        writes.push(Write::put(key.clone(), entry, Expect::Anything)?);
    }

    let old_filters: HashSet<String> = before
        .as_ref()
        .map(|b| FlowFilters::all_matching(&b.value.listing))
        .unwrap_or_default()
        .iter()
        .map(FlowFilters::name)
        .collect();
    let new_filters: HashSet<String> = FlowFilters::all_matching(&head.listing)
        .iter()
        .map(FlowFilters::name)
        .collect();
    if let Some(before) = &before {
        for filters in FlowFilters::all_matching(&before.value.listing) {
            if !new_filters.contains(&filters.name()) {
                writes.push(Write::Add {
                    key: count_key(organization_id, &filters, count_shard(&head.slug)),
                    delta: -1,
                });
            }
        }
    }
    for filters in FlowFilters::all_matching(&head.listing) {
        if !old_filters.contains(&filters.name()) {
            writes.push(Write::Add {
                key: count_key(organization_id, &filters, count_shard(&head.slug)),
                delta: 1,
            });
        }
    }
    writes.extend(also);
    table.write(writes).await
}

/// One page of a flow list: the heads and current versions, and the position after it.
pub struct FlowPage {
    /// Each flow with its position in the list (what a page token continues after).
    pub flows: Vec<(String, FlowHead, FlowVersion)>,
    pub next: Option<String>,
}

pub async fn list_page(
    table: &dyn Table,
    organization_id: &str,
    filters: &FlowFilters,
    after: Option<String>,
    limit: usize,
) -> Result<FlowPage, StoreError> {
    let query = Query {
        pk: list_pk(organization_id, filters),
        range: SortRange::All,
        after,
        descending: true,
        limit: limit + 1,
    };
    let (entries, next) = split_page(table.query(&query).await?, limit);
    let positions: Vec<String> = entries.iter().map(|item| item.key.sk.clone()).collect();
    let entries: Vec<ListEntry> = entries
        .iter()
        .map(|item| item.decode())
        .collect::<Result<_, _>>()?;
    let mut keys = Vec::with_capacity(entries.len() * 2);
    for entry in &entries {
        keys.push(head_key(organization_id, &entry.slug));
        keys.push(version_key(organization_id, &entry.slug, entry.version));
    }
    let items = table.get_many(&keys).await?;
    let mut flows = Vec::with_capacity(entries.len());
    for (pair, position) in items.chunks(2).zip(positions) {
        // An entry whose flow changed between the two reads is skipped rather than shown stale.
        if let [Some(head), Some(version)] = pair {
            flows.push((position, head.decode()?, version.decode()?));
        }
    }
    Ok(FlowPage { flows, next })
}

pub async fn count(
    table: &dyn Table,
    organization_id: &str,
    filters: &FlowFilters,
) -> Result<u64, StoreError> {
    let keys: Vec<Key> = (0..COUNT_SHARDS)
        .map(|shard| count_key(organization_id, filters, shard))
        .collect();
    let total: i64 = table
        .get_many(&keys)
        .await?
        .iter()
        .flatten()
        .map(|item| item.count)
        .sum();
    Ok(total.max(0) as u64)
}

/// Versions of a flow, highest first.
pub async fn versions_page(
    table: &dyn Table,
    organization_id: &str,
    slug: &str,
    after: Option<String>,
    limit: usize,
) -> Result<(Vec<(String, FlowVersion)>, Option<String>), StoreError> {
    let query = Query {
        pk: flow_pk(organization_id, slug),
        range: SortRange::Prefix("V#".to_owned()),
        after,
        descending: true,
        limit: limit + 1,
    };
    let (items, next) = split_page(table.query(&query).await?, limit);
    let versions = items
        .iter()
        .map(|item| item.decode().map(|version| (item.key.sk.clone(), version)))
        .collect::<Result<_, _>>()?;
    Ok((versions, next))
}
