//! What each function costs in calls to AWS, held to a budget: every function runs once on its
//! `events/<function>.json` fixture, on an application wired as its `main` wires it
//! (tests/common/wiring.rs), with the store wrapped in `MeteredTable` (calls by kind) over an
//! [`AccessLog`] (the items each call touched, and their sizes), and counting scheduler,
//! invoker and webhook-sender ports. Once on the in-memory store, once on DynamoDB (the
//! emulator): the adapter must not add calls the core did not ask for.
//!
//! The budgets below are what each route must do, with the reason; a route that does more
//! fails, and so does one that reads an item it has itself just written (it knows it).
//!
//! `FLOWLINE_COSTS_REPORT=path.json` also writes the measured table (BENCHMARKS.md's "cost per
//! route", through benches/run), with DynamoDB capacity units estimated from item sizes.
//!
//! The scheduler port here is the in-process one behind a counter (schedule calls are counted
//! where the core makes them, whatever fills the port); "dispatch now" is counted and not run,
//! as in the cloud the invoked `dispatch` function runs elsewhere (it is measured on its own).

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
use flowline_core::auth::KeyKind;
use flowline_core::config::Config;
use flowline_core::http::render;
use flowline_core::scheduler::DispatchJob;
use flowline_core::store::Key;
use flowline_core::store::metered::{MeteredTable, StoreCalls};
use flowline_core::time::{Clock, ManualClock};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

const SIGNING_KEY: &[u8] = b"test signing key, 32 bytes long!";

/// At most this many calls of each kind.
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

/// Each function's budget on its fixture, and why it needs that much. Where the code does more
/// than the route needs, the budget allows what it does today and the reason says `EXCESS:`
/// what should go (BENCHMARKS.md lists them): a budget that passes is not a claim that the
/// route is as cheap as it could be.
///
/// Shapes that recur: the idempotency protocol is a GetItem of the key's record, a claim
/// (PutItem) before the work and the answer (PutItem) after it. A flow is listed in 8 lists
/// (status × channel × type, each filtered or `*`), sorted by when it was modified, each with a
/// count (`total_records`): a flow write rewrites head and version, moves its 8 entries
/// (delete + put) and, when its status changes, adds to the 8 counts. A callback is in 8 lists
/// (status × session × flow), 4 of which name its status, and in the due index: a status change
/// rewrites the callback, deletes its due entry and moves those 4 entries. Lifecycle events
/// find their subscribers with one Query of the organization's endpoints.
fn budget(function: &str) -> (Budget, &'static str) {
    const LISTS: u64 = 8;
    const MOVED: u64 = 2 * LISTS; // each entry deleted and put again
    const CALLBACK_NEW: u64 = 1 + 1 + 8; // callback, due entry, 8 list entries
    const CALLBACK_MOVED: u64 = 1 + 1 + 2 * 4; // callback, due entry gone, 4 entries moved
    match function {
        "authorizer" => (
            Budget { get: 1, ..NOTHING },
            "one GetItem of the key's hash in the keys table",
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
                get: 1,
                batch_get: 1,
                query: 1,
                ..NOTHING
            },
            "one page of the filter's list (Query), its flows' heads and current versions (one \
             BatchGetItem), the list's count (total_records, one GetItem)",
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
                query: 1,
                write: 1,
                transactions: 1,
                write_items: 2 + MOVED + LISTS,
                ..NOTHING
            },
            "head and the draft; one transaction: version, head, 8 list entries moved, 8 list \
             counts (DRAFT −1, ACTIVE +1); flow.published's subscribers (Query). \
             EXCESS: the draft is read twice (get 2 would do)",
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
             transaction: new draft, its id claim, head, 8 list entries rewritten. EXCESS: head and \
             version are read again after the id is taken, the version a third time (get 2 \
             would do)",
        ),
        "flow-versions-list" => (
            Budget {
                get: 2,
                query: 1,
                ..NOTHING
            },
            "the head (the flow exists), one Query of its versions. EXCESS: the current \
             version is read too (get 1 would do)",
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
                get: 1,
                write: 3,
                write_items: 3,
                ..NOTHING
            },
            "idempotency (GetItem, claim, answer); the endpoint (PutItem)",
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
        "webhook-delete" => (
            Budget {
                get: 1,
                write: 1,
                write_items: 1,
                ..NOTHING
            },
            "read, then one conditional DeleteItem",
        ),
        "callback-create" => (
            Budget {
                get: 3,
                query: 1,
                write: 3,
                transactions: 1,
                write_items: 2 + CALLBACK_NEW,
                scheduler: 1,
                ..NOTHING
            },
            "idempotency (GetItem, claim, answer); flow head and active version (the pinned \
             version, the from number); CreateSchedule; one transaction: callback, due entry, \
             8 list entries; callback.scheduled's subscribers (Query; none subscribe here)",
        ),
        "callback-get" => (Budget { get: 1, ..NOTHING }, "the callback"),
        "callback-list" => (
            Budget {
                query: 1,
                batch_get: 1,
                ..NOTHING
            },
            "one page of the filter's list (Query), then those callbacks (one BatchGetItem)",
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
                query: 1,
                write: 1,
                transactions: 1,
                write_items: CALLBACK_MOVED,
                scheduler: 1,
                post: 1,
                ..NOTHING
            },
            "read; one transaction: callback, due entry deleted, 4 list entries moved; \
             DeleteSchedule; callback.cancelled to its one subscriber (Query + POST)",
        ),
        "callback-dispatch" => (
            Budget {
                get: 3,
                query: 2,
                write: 2,
                transactions: 2,
                write_items: 2 * CALLBACK_MOVED + 1,
                scheduler: 1,
                post: 3,
                ..NOTHING
            },
            "read; take it (one transaction, with a lease in the due index); DeleteSchedule; flow head and pinned version; \
             the endpoints (Query); POST callback.dispatch to the first; record the outcome \
             (one transaction); callback.dispatched to its 2 subscribers (2 POSTs). EXCESS: the \
             endpoints are queried again for the lifecycle event (query 1 would do)",
        ),
        "dispatch" => (
            Budget {
                get: 3,
                query: 2,
                write: 2,
                transactions: 2,
                write_items: 2 * CALLBACK_MOVED + 1,
                post: 3,
                ..NOTHING
            },
            "as callback-dispatch without DeleteSchedule (a fired schedule deletes itself). \
             EXCESS: the endpoints are queried twice (query 1 would do)",
        ),
        "sweeper" => (
            Budget {
                get: 3,
                query: 8 + 2,
                write: 2,
                transactions: 2,
                write_items: 2 * CALLBACK_MOVED + 1,
                post: 3,
                ..NOTHING
            },
            "one Query per due-index shard (8), then one dispatch (as dispatch) of the overdue \
             callback. EXCESS: as dispatch's",
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
            Budget { get: 2, ..NOTHING },
            "the flow's head (it exists, not deleted), then the trigger",
        ),
        "flow-callback-list" => (
            Budget {
                get: 1,
                query: 1,
                batch_get: 1,
                ..NOTHING
            },
            "the flow's head, one page of its triggers (Query), those triggers (BatchGetItem)",
        ),
        "flow-callback-update" => (
            Budget {
                get: 2,
                write: 1,
                write_items: 1,
                ..NOTHING
            },
            "the flow's head and the trigger, then one conditional PutItem",
        ),
        "flow-callback-delete" => (
            Budget {
                get: 2,
                write: 1,
                transactions: 1,
                write_items: 2,
                ..NOTHING
            },
            "the flow's head and the trigger; one transaction deleting it and its entry",
        ),
        "hook-trigger" => (
            Budget {
                get: 3,
                query: 1,
                write: 2,
                transactions: 1,
                write_items: CALLBACK_NEW + 1,
                scheduler: 1,
                ..NOTHING
            },
            "the trigger (its signature), flow head and active version; CreateSchedule; one \
             transaction as callback-create's; subscribers (Query); the trigger's use recorded \
             (PutItem)",
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
            inner: rig.timers().clone(),
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

    /// A new callback of `slug` from the `callback-create` fixture (its own idempotency key).
    async fn callback(&self, slug: &str, n: usize) -> String {
        let request = with_idempotency_key(
            event_with("callback-create", &[(FIXTURE_FLOW, slug)]),
            &format!("costs-callback-{n}"),
        );
        let body = self.given("callback-create", request).await;
        body["id"].as_str().expect("an id").to_owned()
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
        // An endpoint (of the callback events only): flow.published looks it up, sends nothing.
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

        // Webhook endpoints: the fixture's own, then the one above.
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
        let now = self.callback(&slug, 1).await;
        self.run("callback-dispatch", on_callback("callback-dispatch", &now))
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
        let lost = self.callback(&slug, 2).await;
        let at: Timestamp = "2026-11-21T16:30:00Z".parse().unwrap();
        self.move_clock_to(at + SignedDuration::from_mins(3));
        let job: DispatchJob =
            serde_json::from_str(&fixture_text("dispatch").replace(FIXTURE_CALLBACK, &triggered))
                .expect("a job");
        let before = self.snapshot();
        let done = dispatch::handle(&self.rig.wired("dispatch"), job)
            .await
            .expect("dispatch");
        self.record("dispatch", before);
        assert_eq!(done.status.as_deref(), Some("dispatched"));
        let before = self.snapshot();
        let report = sweeper::handle(&self.rig.wired("sweeper"), fixture_json("sweeper"))
            .await
            .expect("sweep");
        self.record("sweeper", before);
        assert_eq!(report.dispatched, 1, "the sweeper dispatched {lost}");

        // Deletes last.
        self.run("webhook-delete", on_webhook("webhook-delete"))
            .await;
        self.run("flow-delete", on_flow("flow-delete")).await;

        // The authorizer, on a live key.
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
        let keys = flowline_core::auth::KeyStore::new(self.keys_metered.clone());
        let before = self.snapshot();
        let response = authorizer::handle(
            &keys,
            serde_json::from_value(request).expect("an authorizer request"),
        )
        .await;
        self.record("authorizer", before);
        assert!(!response.context.is_empty(), "the key is live");
    }
}

fn check(measured: &[Measured]) -> Vec<String> {
    let mut over = Vec::new();
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
            if used > allowed {
                over.push(format!(
                    "{}: {used} {what}, budget {allowed} ({why})",
                    m.function
                ));
            }
        }
        if !m.rereads.is_empty() {
            over.push(format!(
                "{}: re-read what it had just written: {:?}",
                m.function, m.rereads
            ));
        }
    }
    over
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
    let over = check(&measured);
    assert!(
        over.is_empty(),
        "{backend:?}: over budget:\n{}",
        over.join("\n")
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
