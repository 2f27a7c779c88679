//! What each function costs in calls to AWS, held to a budget: every function runs once on its
//! `events/<function>.json` fixture, on an application wired as its `main` wires it
//! (tests/common/wiring.rs), with the store wrapped in `MeteredTable` (calls by kind) over an
//! [`AccessLog`] (the items each call touched, and their sizes), and counting scheduler,
//! invoker and webhook-sender ports. Once on the in-memory store, once on DynamoDB (the
//! emulator): the adapter must not add calls the core did not ask for.
//!
//! The budgets below are what each function does on its fixture, exactly, with the reason; a
//! function that does more or less fails (a budget that is only a ceiling stops saying what a
//! route costs), and so does one that reads an item it has itself just written (it knows it).
//!
//! `FLOWLINE_COSTS_REPORT=path.json` also writes the measured table (BENCHMARKS.md's "cost per
//! route", through benches/run), with DynamoDB capacity units estimated from item sizes.
//!
//! The scheduler and invoker ports only count: a schedule is not armed and "dispatch now" is
//! not run, as in the cloud the `dispatch` function they start runs elsewhere (it is measured
//! on its own, the test playing EventBridge Scheduler). Likewise the table's stream: outbox
//! items wait until the test hands them to the `deliver` function (measured once, on its
//! fixture; otherwise unmeasured, before the sweeper, which would nudge items left waiting).

mod common;

use std::sync::{Arc, Mutex};

use common::Backend;
use common::counting::{
    AccessLog, Capacity, CountingInvoker, CountingScheduler, CountingSender, PortCalls,
    PortCounters, capacity, rereads, single_writes,
};
use common::fixtures::*;
use common::receiver::{Receiver, Reply};
use common::wiring::Rig;
use flowline_adapters::webhook_http::HttpSender;
use flowline_core::ApiRequest;
use flowline_core::auth::{KeyKind, KeyStore};
use flowline_core::config::Config;
use flowline_core::deadline::HTTP_BUDGET;
use flowline_core::http::render;
use flowline_core::jobs::JobDone;
use flowline_core::ratelimit::{Limits, RateLimiter};
use flowline_core::scheduler::Job;
use flowline_core::store::metered::{MeteredTable, StoreCalls};
use flowline_core::store::{Expect, Key, Query, Write};
use flowline_core::time::{Clock, ManualClock};
use flowline_core::webhooks::{outbox, worker};
use flowline_lambda::authorizer::Authorizer;
use flowline_lambda::stream::StreamBatch;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

const SIGNING_KEY: &[u8] = b"test signing key, 32 bytes long!";
/// The `callback-create` fixture's `scheduled_at`.
const FIXTURE_SCHEDULED_AT: &str = "2026-11-21T16:30:00Z";
/// The delivery the delivery routes' fixtures name.
const FIXTURE_DELIVERY: &str = "del_00VbcKJZ4mPq8Rt2Vx6Yb9c";

/// The calls of each kind a function makes on its fixture.
#[derive(Debug, Clone, Copy)]
struct Budget {
    /// `GetItem`.
    get: u64,
    /// `BatchGetItem` requests.
    batch_get: u64,
    /// `Query` requests.
    query: u64,
    /// Single-item writes (`PutItem`/`DeleteItem`/`UpdateItem`) and `TransactWriteItems`.
    write: u64,
    /// Of those, transactions.
    transactions: u64,
    /// Items written, over all writes.
    write_items: u64,
    /// Counter `UpdateItem … ADD`.
    increment: u64,
    /// EventBridge Scheduler calls (create, update, delete).
    scheduler: u64,
    /// Lambda `Invoke`.
    invoke: u64,
    /// Webhook POSTs.
    post: u64,
}

impl Budget {
    /// The limits that are not zero, e.g. `get 2, query 1`.
    fn text(&self) -> String {
        let limits = [
            ("get", self.get),
            ("batch_get", self.batch_get),
            ("query", self.query),
            ("write", self.write),
            ("transactions", self.transactions),
            ("write_items", self.write_items),
            ("increment", self.increment),
            ("scheduler", self.scheduler),
            ("invoke", self.invoke),
            ("post", self.post),
        ];
        let set: Vec<String> = limits
            .iter()
            .filter(|(_, limit)| *limit > 0)
            .map(|(name, limit)| format!("{name} {limit}"))
            .collect();
        if set.is_empty() {
            "nothing".to_owned()
        } else {
            set.join(", ")
        }
    }
}

const NOTHING: Budget = Budget {
    get: 0,
    batch_get: 0,
    query: 0,
    write: 0,
    transactions: 0,
    write_items: 0,
    increment: 0,
    scheduler: 0,
    invoke: 0,
    post: 0,
};

/// Each function's calls on its fixture, and why it needs them. Where the code does more than
/// the function needs, the budget is what it does today and the reason says `EXCESS:` what
/// should go, and where (BENCHMARKS.md lists them): a budget that holds is not a claim that the
/// function is as cheap as it could be.
///
/// Shapes that recur:
/// - The idempotency protocol: a GetItem of the key's record, a claim (PutItem) before the work
///   and the answer (PutItem) after it.
/// - A flow is listed in 8 lists (status × channel × type, each filtered or `*`), sorted by
///   when it was modified, each with a count (`total_records`) spread over 8 items: a flow
///   write rewrites head and version, moves its 8 entries (delete + put) and, when its status
///   changes, adds to 8 counts.
/// - A callback is in 8 lists (status × session × flow), 4 of which name its status, each list
///   spread over 4 shards (a page is 4 Queries, merged), and in the due index while scheduled
///   or dispatching: a status change rewrites the callback, moves its due entry (gone, or to
///   the dispatcher's lease) and moves those 4 entries.
/// - A lifecycle event is one outbox item in the transaction of the change it reports: no
///   route reads the endpoints for it. The `deliver` function fans it out (measured here once,
///   on its fixture).
/// - A dispatch sends `callback.dispatch` to the endpoints subscribed (one Query), oldest
///   first until one takes it, and logs what it sent: the event (PutItem), and per endpoint
///   tried a delivery (GetItem, then one transaction: the delivery and its 4 list entries).
///   An endpoint's health is written only when it starts failing or recovers (not here).
fn budget(function: &str) -> (Budget, &'static str) {
    const LISTS: u64 = 8;
    const MOVED: u64 = 2 * LISTS; // each entry deleted and put again
    const OUTBOX: u64 = 1; // a lifecycle event, in the transaction of its change
    const NUMBER_ENTRY: u64 = 1; // a scheduled callback's entry under its number (SPEC §7)
    // callback, due entry, 8 list entries, number entry
    const CALLBACK_NEW: u64 = 1 + 1 + 8 + NUMBER_ENTRY + OUTBOX;
    const CALLBACK_MOVED: u64 = 1 + 1 + 2 * 4; // callback, due entry gone, 4 entries moved
    const UNSCHEDULED: u64 = CALLBACK_MOVED + NUMBER_ENTRY; // and its number entry gone
    const TAKEN: u64 = UNSCHEDULED + 1; // and a due entry at the lease's end
    const DELIVERY: u64 = 1 + 4; // a delivery and its 4 list entries
    const SLOT: u64 = 2; // a try holds one of the endpoint's in-flight slots: put, then delete
    const DISPATCH_ITEMS: u64 = TAKEN + CALLBACK_MOVED + OUTBOX + 1 + DELIVERY + SLOT;
    match function {
        "authorizer" => (
            Budget { get: 2, ..NOTHING },
            "the key's hash (keys table); the organization's own request budget, if any (read \
             once a minute per sandbox: this one is fresh). Spending the budget adds to a shared \
             window (UpdateItem ADD) at most once a second per sandbox, never on its first \
             request",
        ),
        "flow-validate" => (NOTHING, "validation only: no table access"),
        "flow-create" => (
            Budget {
                get: 1,
                write: 3,
                transactions: 1,
                write_items: 2 + 3 + LISTS + LISTS,
                increment: 1,
                ..NOTHING
            },
            "idempotency (GetItem, claim, answer); the next numeric id (counter ADD); one \
             transaction: head, version 1, the id's claim, 8 list entries, 8 list counts",
        ),
        "flow-get" => (
            Budget { get: 2, ..NOTHING },
            "the head (which version is current), then that version",
        ),
        "flow-list" => (
            Budget {
                batch_get: 2,
                query: 1,
                ..NOTHING
            },
            "one page of the filter's list (Query); its flows' heads and current versions (one \
             BatchGetItem); the list's count, spread over 8 items (total_records, one \
             BatchGetItem)",
        ),
        "flow-update" => (
            Budget {
                get: 2,
                write: 1,
                transactions: 1,
                write_items: 2 + MOVED,
                ..NOTHING
            },
            "head and current version; one transaction: version, head, 8 list entries moved",
        ),
        "flow-publish" => (
            Budget {
                get: 3,
                write: 1,
                transactions: 1,
                write_items: 2 + MOVED + LISTS + OUTBOX,
                ..NOTHING
            },
            "head and the draft; one transaction: version, head, 8 list entries moved, 8 list \
             counts (DRAFT −1, ACTIVE +1), flow.published (outbox). EXCESS: the draft is read \
             twice, as the current version and as the version to publish \
             (shared/src/flows/service.rs:499, then :538; get 2 would do)",
        ),
        "flow-version-create" => (
            Budget {
                get: 5,
                write: 1,
                transactions: 1,
                write_items: 3 + LISTS,
                increment: 1,
                ..NOTHING
            },
            "head and the active version to copy; the next numeric id (counter ADD); one \
             transaction: new draft, its id claim, head, 8 list entries. EXCESS: head and version \
             are read again after the id is taken (flows/service.rs:422, :436), the version a \
             third time to list it (:149) (get 2 would do); the 8 list entries are written \
             again unchanged, the listing being the active version's (flows/store.rs:241 puts \
             every entry, where callbacks' `reindex` skips unchanged ones; write_items 3 would \
             do)",
        ),
        "flow-versions-list" => (
            Budget {
                get: 2,
                query: 1,
                ..NOTHING
            },
            "the head (the flow exists), one Query of its versions. EXCESS: the current \
             version is read too, and not used (flows/service.rs:679; get 1 would do)",
        ),
        "flow-delete" => (
            Budget {
                get: 3,
                write: 1,
                transactions: 1,
                write_items: 1 + 2 + MOVED + LISTS,
                ..NOTHING
            },
            "head and each of its 2 versions (each archived on its revision); one transaction: \
             head, both versions, 8 list entries moved, 8 list counts",
        ),
        "webhook-create" => (
            Budget {
                get: 2,
                write: 3,
                transactions: 1,
                write_items: 2 + 2,
                ..NOTHING
            },
            "idempotency (GetItem, claim, answer); the organization's endpoint count (at most \
             20); one transaction: the endpoint and the count",
        ),
        "webhook-get" => (Budget { get: 1, ..NOTHING }, "the endpoint"),
        "webhook-list" => (
            Budget {
                query: 1,
                ..NOTHING
            },
            "one Query of the organization's endpoints",
        ),
        "webhook-update" => (
            Budget {
                get: 1,
                write: 1,
                write_items: 1,
                ..NOTHING
            },
            "read, then one conditional PutItem on its revision",
        ),
        "webhook-rotate-secret" => (
            Budget {
                get: 1,
                write: 1,
                write_items: 1,
                ..NOTHING
            },
            "read, then one conditional PutItem on its revision (the new secret, the old one \
             kept for 24 hours)",
        ),
        "webhook-delete" => (
            Budget {
                get: 2,
                write: 1,
                transactions: 1,
                write_items: 2,
                ..NOTHING
            },
            "the endpoint and the count; one transaction: the endpoint deleted on its revision, \
             the count",
        ),
        "webhook-deliveries-list" => (
            Budget {
                get: 1,
                batch_get: 1,
                query: 4,
                ..NOTHING
            },
            "the endpoint (the caller's); one page of the filter's list: its 4 shards (4 \
             Queries, merged), then those deliveries (one BatchGetItem)",
        ),
        "webhook-delivery-get" => (
            Budget { get: 3, ..NOTHING },
            "the endpoint (the caller's), the delivery, the event as sent (its payload)",
        ),
        "webhook-delivery-redeliver" => (
            Budget {
                get: 2,
                write: 1,
                write_items: 1,
                ..NOTHING
            },
            "the endpoint (the caller's, not disabled), the delivery; one outbox item (the \
             deliver function makes the try)",
        ),
        "webhook-recover" => (
            Budget {
                get: 1,
                query: 4,
                write: 1,
                write_items: 1,
                ..NOTHING
            },
            "the endpoint (the caller's, not disabled); the window of its failed list, 4 shards \
             (4 Queries); one outbox item per failed delivery found, one write per 100 (here \
             1)",
        ),
        "suppression-put" => (
            Budget {
                get: 1,
                write: 1,
                write_items: 1,
                ..NOTHING
            },
            "the number's item (If-Match; a replace keeps created_at and source); one PutItem, \
             conditional on its absence or revision",
        ),
        "suppression-get" => (
            Budget { get: 1, ..NOTHING },
            "the number's item (the do-not-call check costs the same)",
        ),
        "suppression-list" => (
            Budget {
                query: 1,
                ..NOTHING
            },
            "one Query of the organization's suppressions, in number order",
        ),
        "suppression-delete" => (
            Budget {
                get: 1,
                write: 1,
                write_items: 1,
                ..NOTHING
            },
            "the number's item (404 unless in force); one DeleteItem on its revision",
        ),
        "callback-create" => (
            Budget {
                get: 4,
                write: 3,
                transactions: 1,
                write_items: 2 + CALLBACK_NEW,
                scheduler: 1,
                ..NOTHING
            },
            "idempotency (GetItem, claim, answer); flow head and active version (the pinned \
             version, the from number, the policies); the number's do-not-call entry; \
             CreateSchedule; one transaction: callback, due entry, 8 list entries, number entry, \
             callback.scheduled (outbox)",
        ),
        "callback-get" => (Budget { get: 1, ..NOTHING }, "the callback"),
        "callback-list" => (
            Budget {
                query: 4,
                batch_get: 1,
                ..NOTHING
            },
            "one page of the filter's list: its 4 shards (4 Queries, merged), then those \
             callbacks (one BatchGetItem)",
        ),
        "callback-update" => (
            Budget {
                get: 1,
                write: 1,
                transactions: 1,
                write_items: 3,
                scheduler: 1,
                ..NOTHING
            },
            "read; one transaction: callback, old due entry deleted, new one put; \
             UpdateSchedule",
        ),
        "callback-cancel" => (
            Budget {
                get: 1,
                write: 1,
                transactions: 1,
                write_items: UNSCHEDULED + OUTBOX,
                scheduler: 1,
                ..NOTHING
            },
            "read; one transaction: callback, due entry deleted, 4 list entries moved, number \
             entry deleted, callback.cancelled (outbox); DeleteSchedule",
        ),
        "callback-dispatch" => (
            Budget {
                get: 4,
                query: 1,
                write: 4 + SLOT,
                transactions: 3,
                write_items: DISPATCH_ITEMS,
                scheduler: 1,
                post: 1,
                ..NOTHING
            },
            "read; take it (one transaction: callback, 4 list entries moved, number entry \
             deleted, due entry moved to the lease's end); DeleteSchedule; flow head and pinned \
             version (its calling window); the number's do-not-call entry; the endpoints \
             (Query); POST callback.dispatch to the first, which takes it (in one of its 10 \
             in-flight slots: PutItem, DeleteItem); record the outcome \
             (one transaction: callback, due entry deleted, 4 list entries moved, \
             callback.dispatched); log the delivery (the event, then the delivery in one \
             transaction, written as new: only a dispatch taken over after its lease finds one \
             and reads it)",
        ),
        "dispatch" => (
            Budget {
                get: 4,
                query: 1,
                write: 4 + SLOT,
                transactions: 3,
                write_items: DISPATCH_ITEMS,
                post: 1,
                ..NOTHING
            },
            "as callback-dispatch without DeleteSchedule (a fired schedule deletes itself)",
        ),
        "sweeper" => (
            Budget {
                get: 32 + 32,
                query: 16 + 32 + 32,
                invoke: 1,
                ..NOTHING
            },
            "the outbox's 16 shards (a Query each: nothing left waiting); each of the 32 \
             callback due shards and 32 delivery-retry due shards: where the last sweep stopped \
             (GetItem) and what is due (Query); the overdue callback handed to dispatch (one \
             Invoke; its dispatch is dispatch's cost). EXCESS: the 64 cursors are read one by \
             one (shared/src/sweeper.rs:175; one BatchGetItem of 64 keys would do, for the same \
             read units)",
        ),
        "deliver" => (
            Budget {
                get: 2,
                query: 1,
                write: 3 + SLOT,
                transactions: 1,
                write_items: 1 + DELIVERY + 1 + SLOT,
                post: 1,
                ..NOTHING
            },
            "the record's outbox item (still there: not handled yet); the subscribers (Query); \
             the event as sent (PutItem); the delivery (GetItem: not made yet); POST to the one \
             subscriber, which takes it, in one of its 10 in-flight slots (PutItem, DeleteItem); one transaction: the delivery and its 4 list entries; \
             the outbox item deleted on its revision. A failed try would add the retry's \
             CreateSchedule (and its backlog and retry entries)",
        ),
        "flow-callback-create" => (
            Budget {
                get: 1,
                write: 1,
                transactions: 1,
                write_items: 2,
                ..NOTHING
            },
            "the flow's head (it exists); one transaction: trigger and its entry in the flow",
        ),
        "flow-callback-get" => (
            Budget {
                get: 1,
                query: 1,
                ..NOTHING
            },
            "the flow's head (it exists, not deleted), then the trigger's partition (the trigger \
             and its last use, one Query)",
        ),
        "flow-callback-list" => (
            Budget {
                get: 1,
                query: 1,
                batch_get: 1,
                ..NOTHING
            },
            "the flow's head, one page of its triggers (Query), those triggers and their last \
             uses (BatchGetItem)",
        ),
        "flow-callback-update" => (
            Budget {
                get: 1,
                query: 1,
                write: 1,
                write_items: 1,
                ..NOTHING
            },
            "the flow's head and the trigger's partition, then one conditional PutItem",
        ),
        "flow-callback-delete" => (
            Budget {
                get: 1,
                query: 1,
                write: 1,
                transactions: 1,
                write_items: 3,
                ..NOTHING
            },
            "the flow's head and the trigger's partition; one transaction deleting the trigger, \
             its entry in the flow and its last use",
        ),
        "hook-trigger" => (
            Budget {
                get: 4,
                write: 2,
                transactions: 1,
                write_items: CALLBACK_NEW + 1 + 1,
                scheduler: 1,
                ..NOTHING
            },
            "the trigger (its signature), flow head and active version, the number's \
             do-not-call entry; CreateSchedule; one transaction as callback-create's, with a check that the trigger is unchanged; the \
             trigger's last use (PutItem)",
        ),
        "callback-outcome" => (
            Budget {
                get: 2,
                write: 1,
                transactions: 1,
                write_items: 1 + OUTBOX,
                ..NOTHING
            },
            "the callback; its pinned version (the retry policy and window); one transaction: \
             the callback (the outcome, its attempt), callback.outcome (outbox). No retry here \
             (the flow allows one attempt), so no schedule",
        ),
        "callback-bulk-cancel" => (
            Budget {
                get: 1,
                query: 4,
                write: 1,
                transactions: 1,
                write_items: UNSCHEDULED + OUTBOX,
                scheduler: 1,
                ..NOTHING
            },
            "the session's scheduled list, 4 shards (4 Queries, merged); per callback found \
             (here 1), as callback-cancel: read, one transaction (callback, due entry deleted, \
             4 list entries moved, number entry deleted, callback.cancelled), DeleteSchedule",
        ),
        other => panic!("no budget for {other}: add one, with its reason"),
    }
}

/// One function's run.
#[derive(Debug, Clone, serde::Serialize)]
struct Measured {
    function: String,
    store: StoreCalls,
    /// Calls to the API keys table (only the authorizer reads it).
    keys: StoreCalls,
    ports: PortCalls,
    capacity: Capacity,
    /// Items read, over all reads.
    items_read: u64,
    /// Single-item writes by kind (`put` is PutItem, `delete` DeleteItem).
    single_writes: std::collections::BTreeMap<&'static str, u64>,
    #[serde(skip)]
    rereads: Vec<Key>,
}

struct Bench {
    backend: Backend,
    rig: Rig,
    clock: Arc<ManualClock>,
    receiver: Receiver,
    metered: Arc<MeteredTable>,
    log: Arc<AccessLog>,
    keys_metered: Arc<MeteredTable>,
    keys_log: Arc<AccessLog>,
    ports: Arc<PortCounters>,
    measured: Mutex<Vec<Measured>>,
}

struct Snapshot {
    store: StoreCalls,
    keys: StoreCalls,
    ports: PortCalls,
    log: usize,
    keys_log: usize,
}

impl Bench {
    async fn new(backend: Backend) -> Self {
        let (store, keys) = common::tables(backend).await;
        let log = Arc::new(AccessLog::new(store));
        let metered = Arc::new(MeteredTable::new(log.clone()));
        let keys_log = Arc::new(AccessLog::new(keys));
        let keys_metered = Arc::new(MeteredTable::new(keys_log.clone()));
        let ports = Arc::new(PortCounters::default());
        let clock = Arc::new(ManualClock::new(recorded_at("callback-create")));
        let sender = Arc::new(CountingSender {
            inner: Arc::new(HttpSender::new(true)),
            counters: ports.clone(),
        });
        let config = Config {
            public_base_url: "https://api.flowline.example.com".to_owned(),
            allow_private_targets: true,
            request_budget: HTTP_BUDGET,
            limits: common::UNLIMITED,
        };
        let rig = Rig::on_tables(
            metered.clone(),
            keys_metered.clone(),
            clock.clone(),
            sender,
            config,
            SIGNING_KEY,
        );
        let scheduler = Arc::new(CountingScheduler {
            counters: ports.clone(),
        });
        let invoker = Arc::new(CountingInvoker {
            counters: ports.clone(),
        });
        let rig = rig.with_ports(scheduler, invoker);
        Self {
            backend,
            rig,
            clock,
            receiver: Receiver::start().await,
            metered,
            log,
            keys_metered,
            keys_log,
            ports,
            measured: Mutex::new(Vec::new()),
        }
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            store: self.metered.calls(),
            keys: self.keys_metered.calls(),
            ports: self.ports.calls(),
            log: self.log.mark(),
            keys_log: self.keys_log.mark(),
        }
    }

    fn record(&self, function: &str, before: Snapshot) {
        let accesses = self.log.since(before.log);
        let mut all = accesses.clone();
        all.extend(self.keys_log.since(before.keys_log));
        if std::env::var_os("FLOWLINE_COSTS_TRACE").is_some() {
            eprintln!("== {function}");
            for access in &all {
                eprintln!("   {access:?}");
            }
        }
        let store = self.metered.calls().since(&before.store);
        let keys = self.keys_metered.calls().since(&before.keys);
        self.measured.lock().unwrap().push(Measured {
            function: function.to_owned(),
            store,
            keys,
            ports: self.ports.calls().since(&before.ports),
            capacity: capacity(&all),
            items_read: store.get + store.get_many_keys + store.query_items + keys.get,
            single_writes: single_writes(&accesses),
            rereads: rereads(&accesses),
        });
    }

    /// Runs an HTTP function on `request` without measuring it (setting the scene).
    async fn given(&self, function: &str, request: ApiRequest) -> Value {
        let response =
            render(flowline::functions::call(&self.rig.wired(function), function, request).await);
        let body = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        assert!(
            response.status.is_success(),
            "{function}: {} {body}",
            response.status
        );
        body
    }

    /// Runs an HTTP function on `request`, measured; it must succeed. Its JSON answer.
    async fn run(&self, function: &str, request: ApiRequest) -> Value {
        serde_json::from_slice(&self.run_raw(function, request).await).unwrap_or(Value::Null)
    }

    /// The same, answering the body as it is (hook-trigger answers in the trigger's format).
    async fn run_raw(&self, function: &str, request: ApiRequest) -> bytes::Bytes {
        // Time moves between requests, as it does (a flow's list entries are sorted by when it
        // was modified: an update in the same millisecond as the create would cost less).
        self.clock.advance(SignedDuration::from_secs(1));
        let before = self.snapshot();
        let response =
            render(flowline::functions::call(&self.rig.wired(function), function, request).await);
        self.record(function, before);
        assert!(
            response.status.is_success(),
            "{:?} {function}: {} {}",
            self.backend,
            response.status,
            String::from_utf8_lossy(&response.body)
        );
        response.body
    }

    fn move_clock_to(&self, at: Timestamp) {
        self.clock.advance(at.duration_since(self.clock.now()));
    }

    /// A new callback of `slug` from the `callback-create` fixture (its own idempotency key),
    /// due at `at` (the fixture's `scheduled_at` when `None`).
    async fn callback(&self, slug: &str, n: usize, at: Option<&str>) -> String {
        let mut replacements = vec![(FIXTURE_FLOW, slug)];
        if let Some(at) = at {
            replacements.push((FIXTURE_SCHEDULED_AT, at));
        }
        let request = with_idempotency_key(
            event_with("callback-create", &replacements),
            &format!("costs-callback-{n}"),
        );
        let body = self.given("callback-create", request).await;
        body["id"].as_str().expect("an id").to_owned()
    }

    /// Plays the table's stream, unmeasured: every outbox item is handed to the `deliver`
    /// function's worker, which removes it (in the cloud it would have been handed out within
    /// seconds of its write, so the sweeper finds none to nudge).
    async fn play_stream(&self) {
        let app = self.rig.wired("deliver");
        for shard in 0..outbox::SHARDS {
            let items = app
                .store
                .query(&Query::partition(outbox::shard_pk(shard)))
                .await
                .expect("the outbox");
            for item in items {
                let outboxed = outbox::decode(&item).expect("an outbox item");
                worker::handle(&app, &item.key, outboxed)
                    .await
                    .expect("handed out");
            }
        }
    }

    /// The `deliver` fixture as the stream hands it over, with its outbox item in the table
    /// (where the change that queued it put it), as tests/handlers.rs's `outbox_fixture`.
    async fn outbox_fixture(&self) -> StreamBatch {
        let batch: StreamBatch =
            serde_json::from_str(&fixture_text("deliver")).expect("a stream batch");
        for record in flowline_lambda::stream::outbox_records(batch.clone()) {
            let item = record.item.expect("the fixture reads");
            self.rig
                .full()
                .store
                .write(vec![Write::Put {
                    key: item.key,
                    doc: item.doc,
                    expect: Expect::Absent,
                    expires_at: item.expires_at,
                }])
                .await
                .expect("the outbox item");
        }
        batch
    }

    /// Every function once on its fixture, in an order that gives each what it needs.
    async fn every_function(&self) {
        let ids = |body: &Value, field: &str| body[field].as_str().expect(field).to_owned();
        self.receiver.default_reply(Reply::session("sess_costs"));

        // Flows.
        let flow = self.run("flow-create", event("flow-create")).await;
        let slug = ids(&flow, "slug");
        let on_flow = |function: &str| event_with(function, &[(FIXTURE_FLOW, &slug)]);
        self.run("flow-validate", event("flow-validate")).await;
        self.run("flow-get", on_flow("flow-get")).await;
        self.run("flow-list", event("flow-list")).await;
        self.run("flow-update", on_flow("flow-update")).await;
        // The organization's first endpoint (of the callback events only), at the receiver.
        let webhook = self
            .given(
                "webhook-create",
                with_idempotency_key(
                    event_with(
                        "webhook-create",
                        &[(FIXTURE_WEBHOOK_URL, &self.receiver.url)],
                    ),
                    "costs-webhook-0",
                ),
            )
            .await;
        let webhook_id = ids(&webhook, "id");
        self.run("flow-publish", on_flow("flow-publish")).await;
        self.run("flow-version-create", on_flow("flow-version-create"))
            .await;
        self.run("flow-versions-list", on_flow("flow-versions-list"))
            .await;

        // Webhook endpoints: the fixture's own (the second, also at the receiver), then the
        // first one.
        self.run(
            "webhook-create",
            event_with(
                "webhook-create",
                &[(FIXTURE_WEBHOOK_URL, &self.receiver.url)],
            ),
        )
        .await;
        let on_webhook = |function: &str| event_with(function, &[(FIXTURE_WEBHOOK, &webhook_id)]);
        self.run("webhook-get", on_webhook("webhook-get")).await;
        self.run("webhook-list", event("webhook-list")).await;
        self.run("webhook-update", on_webhook("webhook-update"))
            .await;
        self.run("webhook-rotate-secret", on_webhook("webhook-rotate-secret"))
            .await;

        // Callbacks.
        let created = self
            .run(
                "callback-create",
                event_with("callback-create", &[(FIXTURE_FLOW, &slug)]),
            )
            .await;
        let id = ids(&created, "id");
        let on_callback =
            |function: &str, id: &str| event_with(function, &[(FIXTURE_CALLBACK, id)]);
        self.run("callback-get", on_callback("callback-get", &id))
            .await;
        self.run("callback-list", on_flow("callback-list")).await;
        self.run("callback-update", on_callback("callback-update", &id))
            .await;
        self.run("callback-cancel", on_callback("callback-cancel", &id))
            .await;
        let now = self.callback(&slug, 1, None).await;
        self.run("callback-dispatch", on_callback("callback-dispatch", &now))
            .await;
        self.run("callback-outcome", on_callback("callback-outcome", &now))
            .await;
        // The fixture's session has one scheduled callback left: this one.
        self.callback(&slug, 4, Some("2026-11-21T17:30:00Z")).await;
        self.run("callback-bulk-cancel", event("callback-bulk-cancel"))
            .await;

        // Trigger URLs.
        let trigger = self
            .run("flow-callback-create", on_flow("flow-callback-create"))
            .await;
        let trigger_id = ids(&trigger, "id");
        let on_trigger = |function: &str| {
            event_with(
                function,
                &[(FIXTURE_FLOW, &slug), (FIXTURE_TRIGGER, &trigger_id)],
            )
        };
        self.run("flow-callback-get", on_trigger("flow-callback-get"))
            .await;
        self.run("flow-callback-list", on_flow("flow-callback-list"))
            .await;
        let rotated = self
            .run("flow-callback-update", on_trigger("flow-callback-update"))
            .await;
        let url = ids(&rotated, "url");
        let signature = url.split("signature=").nth(1).expect("a signature");
        let xml = self
            .run_raw(
                "hook-trigger",
                event_with(
                    "hook-trigger",
                    &[
                        (FIXTURE_TRIGGER, &trigger_id),
                        (FIXTURE_SIGNATURE, signature),
                    ],
                ),
            )
            .await;
        let xml = String::from_utf8_lossy(&xml);
        let triggered = xml
            .split("<id>")
            .nth(1)
            .and_then(|rest| rest.split("</id>").next())
            .expect("the XML answer names the callback")
            .to_owned();
        self.run("flow-callback-delete", on_trigger("flow-callback-delete"))
            .await;

        // The scheduler's target (for the trigger URL's callback) and the sweeper (for one whose
        // schedule was lost), once both are overdue.
        let lost = self.callback(&slug, 2, None).await;
        let at: Timestamp = FIXTURE_SCHEDULED_AT.parse().unwrap();
        self.move_clock_to(at + SignedDuration::from_mins(3));
        let job: Job =
            serde_json::from_str(&fixture_text("dispatch").replace(FIXTURE_CALLBACK, &triggered))
                .expect("a job");
        let before = self.snapshot();
        let done = dispatch::handle(&self.rig.wired("dispatch"), job)
            .await
            .expect("dispatch");
        self.record("dispatch", before);
        let JobDone::Dispatch { status, .. } = done else {
            panic!("not a dispatch: {done:?}");
        };
        assert_eq!(status.as_deref(), Some("dispatched"));
        self.play_stream().await;
        let before = self.snapshot();
        let report = sweeper::handle(&self.rig.wired("sweeper"), fixture_json("sweeper"))
            .await
            .expect("sweep");
        self.record("sweeper", before);
        assert_eq!(
            (report.examined, report.handed_off, report.nudged),
            (1, 1, 0),
            "the sweeper hands {lost} to dispatch, and nothing else"
        );

        // The outbox's reader: the fixture's callback.scheduled, to the first endpoint.
        self.given(
            "webhook-update",
            event_with(
                "webhook-update",
                &[
                    (FIXTURE_WEBHOOK, &webhook_id),
                    (
                        r#"\"callback.cancelled\"]"#,
                        r#"\"callback.cancelled\", \"callback.scheduled\"]"#,
                    ),
                ],
            ),
        )
        .await;
        let batch = self.outbox_fixture().await;
        let before = self.snapshot();
        let answer = deliver::handle(&self.rig.wired("deliver"), batch)
            .await
            .expect("deliver");
        self.record("deliver", before);
        assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
        assert_eq!(self.receiver.of_type("callback.scheduled").len(), 1);

        // The delivery log, over a failed delivery: a dispatch the first endpoint refuses (a
        // final 400) and the second takes.
        let refused = self.callback(&slug, 3, Some("2026-11-21T18:00:00Z")).await;
        self.receiver.script([Reply::status(400)]);
        let dispatched = self
            .given(
                "callback-dispatch",
                on_callback("callback-dispatch", &refused),
            )
            .await;
        assert_eq!(dispatched["status"], "dispatched");
        let log = self
            .run(
                "webhook-deliveries-list",
                on_webhook("webhook-deliveries-list"),
            )
            .await;
        let deliveries = log["deliveries"].as_array().expect("deliveries");
        assert_eq!(deliveries.len(), 1, "{log}");
        let delivery_id = ids(&deliveries[0], "id");
        let on_delivery = |function: &str| {
            event_with(
                function,
                &[
                    (FIXTURE_WEBHOOK, &webhook_id),
                    (FIXTURE_DELIVERY, &delivery_id),
                ],
            )
        };
        self.run("webhook-delivery-get", on_delivery("webhook-delivery-get"))
            .await;
        self.run(
            "webhook-delivery-redeliver",
            on_delivery("webhook-delivery-redeliver"),
        )
        .await;
        // The fixture's window (the day before) ends today, after the failure.
        let recovered = self
            .run(
                "webhook-recover",
                event_with(
                    "webhook-recover",
                    &[
                        (FIXTURE_WEBHOOK, &webhook_id),
                        ("2026-11-21T09:00:00Z", "2026-11-21T23:00:00Z"),
                    ],
                ),
            )
            .await;
        assert_eq!(recovered, json!({"queued": 1}));

        // The do-not-call list: the fixture's number suppressed, read, listed, taken off.
        self.run("suppression-put", event("suppression-put")).await;
        self.run("suppression-get", event("suppression-get")).await;
        self.run("suppression-list", event("suppression-list"))
            .await;
        self.run("suppression-delete", event("suppression-delete"))
            .await;

        // Deletes last.
        self.run("webhook-delete", on_webhook("webhook-delete"))
            .await;
        self.run("flow-delete", on_flow("flow-delete")).await;

        // The authorizer, on a live key, as its `main` wires it: a fresh sandbox (the
        // organization's own budget not yet cached), budgets shared through the keys table.
        let (key, _) = self
            .rig
            .full()
            .keys
            .create(
                "org_0Q7fGk2LmZp4Xc8RtYb1Nv",
                KeyKind::Private,
                "crm-integration",
                "2026-11-02T09:00:00.000Z",
            )
            .await
            .expect("a key");
        let mut request = fixture_json("authorizer");
        let bearer = format!("Bearer {key}");
        request["headers"]["authorization"] = json!(bearer);
        request["identitySource"] = json!([bearer]);
        let authorizer = Authorizer {
            keys: KeyStore::new(self.keys_metered.clone()),
            limiter: RateLimiter::shared(Limits::default(), self.keys_metered.clone()),
        };
        let before = self.snapshot();
        let response = authorizer::handle(
            &authorizer,
            serde_json::from_value(request).expect("an authorizer request"),
        )
        .await;
        self.record("authorizer", before);
        assert!(
            response.context.contains_key("organization_id"),
            "the key is live: {:?}",
            response.context
        );
    }
}

/// Where each run differs from its budget, and the re-reads of what it wrote.
fn check(measured: &[Measured]) -> Vec<String> {
    let mut off = Vec::new();
    for m in measured {
        let (limit, why) = budget(&m.function);
        let s = &m.store;
        let k = &m.keys;
        let p = &m.ports;
        for (what, used, allowed) in [
            ("GetItem", s.get + k.get, limit.get),
            ("BatchGetItem", s.get_many + k.get_many, limit.batch_get),
            ("Query", s.query + k.query, limit.query),
            ("writes", s.write + k.write, limit.write),
            (
                "transactions",
                s.transactions + k.transactions,
                limit.transactions,
            ),
            (
                "items written",
                s.write_items + k.write_items,
                limit.write_items,
            ),
            (
                "counter updates",
                s.increment + k.increment,
                limit.increment,
            ),
            ("scheduler calls", p.scheduler(), limit.scheduler),
            ("Lambda invokes", p.invoke, limit.invoke),
            ("webhook POSTs", p.post, limit.post),
        ] {
            if used != allowed {
                let fix = if used > allowed {
                    "over: remove the waste, or raise the budget with its reason"
                } else {
                    "under: lower the budget (and its EXCESS note, if that was the waste)"
                };
                off.push(format!(
                    "{}: {used} {what}, budget {allowed}; {fix} ({why})",
                    m.function
                ));
            }
        }
        if !m.rereads.is_empty() {
            off.push(format!(
                "{}: re-read what it had just written: {:?}",
                m.function, m.rereads
            ));
        }
    }
    off
}

fn table(measured: &[Measured]) -> String {
    let mut out = String::from(
        "function              get batch query write tx items incr sched invoke post  rcu~  wcu~\n",
    );
    for m in measured {
        let (s, p) = (&m.store, &m.ports);
        let k = &m.keys;
        out.push_str(&format!(
            "{:21} {:>3} {:>5} {:>5} {:>5} {:>2} {:>5} {:>4} {:>5} {:>6} {:>4} {:>5} {:>5}\n",
            m.function,
            s.get + k.get,
            s.get_many,
            s.query,
            s.write,
            s.transactions,
            s.write_items,
            s.increment,
            p.scheduler(),
            p.invoke,
            p.post,
            m.capacity.rcu,
            m.capacity.wcu
        ));
    }
    out
}

async fn costs_on(backend: Backend) -> Vec<Measured> {
    let bench = Bench::new(backend).await;
    bench.every_function().await;
    let measured = bench.measured.lock().unwrap().clone();
    eprintln!("{backend:?}:\n{}", table(&measured));
    let off = check(&measured);
    assert!(
        off.is_empty(),
        "{backend:?}: off budget:\n{}",
        off.join("\n")
    );
    measured
}

/// Every function of functions/ is measured.
fn assert_every_function(measured: &[Measured]) {
    let mut functions: Vec<String> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/functions"))
            .expect("functions/")
            .map(|entry| entry.expect("entry").file_name().into_string().unwrap())
            .collect();
    functions.sort();
    let mut seen: Vec<String> = measured.iter().map(|m| m.function.clone()).collect();
    seen.sort();
    assert_eq!(seen, functions, "each function measured once");
}

fn report(backend: Backend, measured: &[Measured]) {
    let Ok(path) = std::env::var("FLOWLINE_COSTS_REPORT") else {
        return;
    };
    let rows: Vec<Value> = measured
        .iter()
        .map(|m| {
            let (limit, why) = budget(&m.function);
            let mut row = serde_json::to_value(m).expect("JSON");
            row["budget"] = json!(limit.text());
            row["budget_reason"] = json!(why);
            row
        })
        .collect();
    // One file per backend, next to the path given.
    let path = path.replace(".json", &format!(".{backend:?}.json").to_lowercase());
    std::fs::write(&path, serde_json::to_string_pretty(&rows).expect("JSON"))
        .unwrap_or_else(|err| panic!("{path}: {err}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_stays_within_its_budget_in_memory() {
    let measured = costs_on(Backend::Memory).await;
    assert_every_function(&measured);
    report(Backend::Memory, &measured);
}

/// On DynamoDB, and the adapter adds no call the core did not ask for: the same calls as in
/// memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_stays_within_its_budget_on_dynamodb() {
    let dynamodb = costs_on(Backend::DynamoDb).await;
    assert_every_function(&dynamodb);
    report(Backend::DynamoDb, &dynamodb);
    let memory = costs_on(Backend::Memory).await;
    for (m, d) in memory.iter().zip(&dynamodb) {
        assert_eq!(m.function, d.function);
        assert_eq!(
            (m.store, m.keys, m.ports),
            (d.store, d.keys, d.ports),
            "{}: memory, then DynamoDB",
            m.function
        );
    }
}
