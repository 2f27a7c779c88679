//! The local default store as a user meets it: the real binary on a data directory, stopped
//! (politely, or with `kill -9`) and started again on it, keeps everything it answered for, arms
//! its timers again, and shares the directory with no other server.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::binary::{self, Binary};
use common::receiver::{Receiver, Reply};
use common::{Backend, Org, TestServer};
use flowline::compose::Storage;
use flowline_adapters::redb::RedbStore;
use flowline_core::App;
use flowline_core::callbacks::model::CallbackStatus;
use flowline_core::callbacks::store as callbacks;
use flowline_core::jobs::{RearmReport, rearm};
use flowline_core::scheduler::in_process::InProcessScheduler;
use flowline_core::store::metered::MeteredTable;
use flowline_core::time::format_timestamp;
use flowline_core::webhooks::deliveries;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

/// Loopback webhook targets (the test receiver), and budgets no burst reaches.
const ENV: &[(&str, &str)] = &[
    ("FLOWLINE_ALLOW_PRIVATE_TARGETS", "1"),
    ("FLOWLINE_RATE_LIMIT", "1000000/1000000"),
];

/// The organization and keys a server printed on the first start of its data directory.
fn printed_organization(server: &Binary) -> Org {
    let printed = |label: &str| {
        server
            .printed(label)
            .unwrap_or_else(|| panic!("no {label:?} in {:#?}", server.lines()))
    };
    Org {
        id: printed("Organization "),
        sk: printed("private key (writes):"),
        pk: printed("public key (reads):"),
        base: server.base.clone(),
        client: common::http_client(),
    }
}

/// The same organization and keys, on a server started again.
fn on(org: &Org, server: &Binary) -> Org {
    Org {
        id: org.id.clone(),
        sk: org.sk.clone(),
        pk: org.pk.clone(),
        base: server.base.clone(),
        client: org.client.clone(),
    }
}

fn in_seconds(seconds: i64) -> String {
    format_timestamp(Timestamp::now() + SignedDuration::from_secs(seconds))
}

/// A flow with an ACTIVE version, ready for callbacks.
async fn published_flow(org: &Org) -> String {
    let created = org
        .post(
            "/v1/flows",
            json!({"name": "Renewal call", "data": {"greeting": "Hello"},
                   "entry_points": [{"entry_number": "+15550001111", "entry_language": "en-US"}]}),
        )
        .await;
    let slug = created.expect(201)["slug"].as_str().unwrap().to_owned();
    org.post(&format!("/v1/flows/{slug}/publish"), json!({}))
        .await
        .expect(200);
    slug
}

async fn schedule(org: &Org, flow: &str, at: &str) -> Value {
    org.post(
        "/v1/callbacks",
        json!({"flow": flow, "to_number": "+15557654321", "scheduled_at": at}),
    )
    .await
    .expect(201)
    .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_flows_callbacks_endpoints_and_keys() {
    // Its public address stays the same across the restart (the port it listens on need not):
    // trigger URLs and code snippets are made on it.
    let public = "http://flowline.example";
    let env = [ENV, &[("FLOWLINE_PUBLIC_BASE_URL", public)]].concat();
    let data_dir = tempfile::tempdir().unwrap();
    let server = Binary::start(data_dir.path(), &env);
    let org = printed_organization(&server);
    let flow = published_flow(&org).await;
    let other_flow = published_flow(&org).await;
    let webhook = org
        .post(
            "/v1/webhooks",
            json!({"url": "http://127.0.0.1:9/hooks", "events": ["callback.dispatch"]}),
        )
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let callback = schedule(&org, &flow, &in_seconds(86_400)).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let trigger = org
        .post(
            &format!("/v1/flows/{flow}/callbacks"),
            json!({"format": "json", "description": "CRM"}),
        )
        .await
        .expect(201)
        .clone();
    let trigger_path = trigger["url"]
        .as_str()
        .unwrap()
        .strip_prefix(public)
        .expect("a trigger URL on the public base")
        .to_owned();
    let page = org.get("/v1/flows?page_size=1").await.expect(200).clone();
    let token = page["next_page_token"].as_str().expect("a second page");
    let paths = [
        format!("/v1/flows/{flow}"),
        format!("/v1/flows/{other_flow}/versions"),
        "/v1/flows".to_owned(),
        format!("/v1/webhooks/{webhook}"),
        "/v1/webhooks".to_owned(),
        format!("/v1/callbacks/{callback}"),
        "/v1/callbacks".to_owned(),
        format!("/v1/flows/{flow}/callbacks"),
        format!("/v1/flows?page_size=1&next_page_token={token}"),
    ];
    let mut before = BTreeMap::new();
    for path in &paths {
        before.insert(path.clone(), org.get(path).await.expect(200).clone());
    }
    assert!(server.stop(), "a polite stop exits cleanly");

    let again = Binary::start(data_dir.path(), &env);
    let said = again.lines();
    assert!(
        said.iter()
            .any(|line| line == &format!("Organization {}", org.id)),
        "it says which organization it serves: {said:#?}"
    );
    assert!(
        said.iter()
            .any(|line| line.contains("flowline-admin -- --data-dir")),
        "and how to make another key: {said:#?}"
    );
    assert!(
        !said.iter().any(|line| line.contains(&org.sk)
            || line.contains(&org.pk)
            || line.contains(" key (")),
        "no key is printed again: {said:#?}"
    );
    let org = on(&org, &again);
    for path in &paths {
        assert_eq!(
            org.get(path).await.expect(200),
            &before[path],
            "{path} after the restart"
        );
    }
    // Both keys still work, each for what it may do; so does the trigger URL.
    org.public(reqwest::Method::GET, "/v1/flows")
        .send()
        .await
        .expect(200);
    org.post("/v1/flows", json!({"name": "After the restart"}))
        .await
        .expect(201);
    org.client
        .post(format!("{}{trigger_path}", org.base))
        .json(&json!({"to_number": "+15557654321"}))
        .send()
        .await
        .map(|answer| assert_eq!(answer.status(), 201))
        .expect("the trigger URL answers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_scheduled_before_a_restart_is_dispatched_after_it_exactly_once() {
    let receiver = Receiver::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    let server = Binary::start(data_dir.path(), ENV);
    let org = printed_organization(&server);
    let flow = published_flow(&org).await;
    org.post(
        "/v1/webhooks",
        json!({"url": receiver.url, "events": ["callback.dispatch"]}),
    )
    .await
    .expect(201);
    // One falls due while no server runs, one after the next start.
    let overdue = schedule(&org, &flow, &in_seconds(2)).await;
    let later = schedule(&org, &flow, &in_seconds(8)).await;
    assert!(server.stop());
    let overdue_at: Timestamp = overdue["scheduled_at"].as_str().unwrap().parse().unwrap();
    common::eventually(
        "the first callback's time passes with no server",
        Duration::from_secs(10),
        || async { (Timestamp::now() > overdue_at).then_some(()) },
    )
    .await;
    assert!(
        receiver.deliveries().is_empty(),
        "nothing was delivered before the restart"
    );

    let again = Binary::start(data_dir.path(), ENV);
    assert!(
        again.lines().contains(
            &"Waiting: 2 callbacks scheduled, 0 dispatching, 0 webhook retries (timers armed again)".to_owned()
        ),
        "{:#?}",
        again.lines()
    );
    let org = on(&org, &again);
    for callback in [&overdue, &later] {
        let id = callback["id"].as_str().unwrap();
        let dispatched = common::eventually(
            "the callback is dispatched after the restart",
            Duration::from_secs(20),
            || async {
                let body = org
                    .get(&format!("/v1/callbacks/{id}"))
                    .await
                    .expect(200)
                    .clone();
                (body["status"] == "dispatched").then_some(body)
            },
        )
        .await;
        let attempted: Timestamp = dispatched["attempted_at"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let scheduled: Timestamp = callback["scheduled_at"].as_str().unwrap().parse().unwrap();
        assert!(attempted >= scheduled, "never early: {dispatched}");
    }
    let mut deliveries: BTreeMap<String, usize> = BTreeMap::new();
    for delivery in receiver.of_type("callback.dispatch") {
        let id = delivery.json["data"]["callback"]["id"].as_str().unwrap();
        *deliveries.entry(id.to_owned()).or_default() += 1;
    }
    let expected: BTreeMap<String, usize> = [&overdue, &later]
        .iter()
        .map(|callback| (callback["id"].as_str().unwrap().to_owned(), 1))
        .collect();
    assert_eq!(deliveries, expected, "each delivered exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_a_data_directory_refuses_to_start() {
    let data_dir = tempfile::tempdir().unwrap();
    let first = Binary::start(data_dir.path(), &[]);
    let second = binary::command()
        .env("FLOWLINE_ADDR", "127.0.0.1:0")
        .env("FLOWLINE_DATA_DIR", data_dir.path())
        .output()
        .expect("the binary runs");
    assert!(!second.status.success());
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(
        said.contains("is in use by another process")
            && said.contains(&data_dir.path().display().to_string()),
        "{said}"
    );
    // The first is unharmed, and once it stops the directory is free again.
    let answer = common::http_client()
        .get(format!("{}/openapi.yaml", first.base))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert!(first.stop());
    Binary::start(data_dir.path(), &[]);
}

/// Every item of a list (following `next_page_token`), checking that every page but the last is
/// full: a list entry whose record is missing would leave a short page.
async fn list_all(org: &Org, path: &str, field: &str, size_param: &str) -> Vec<Value> {
    let separator = if path.contains('?') { '&' } else { '?' };
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page_path = match &token {
            Some(token) => format!("{path}{separator}{size_param}=100&next_page_token={token}"),
            None => format!("{path}{separator}{size_param}=100"),
        };
        let page = org.get(&page_path).await.expect(200).clone();
        let items = page[field].as_array().unwrap().clone();
        token = page["next_page_token"].as_str().map(str::to_owned);
        if token.is_some() {
            assert_eq!(items.len(), 100, "a full page before the last of {path}");
        }
        all.extend(items);
        if token.is_none() {
            return all;
        }
    }
}

fn ids(items: &[Value], field: &str) -> BTreeSet<String> {
    items
        .iter()
        .map(|item| item[field].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_in_a_burst_of_writes_loses_no_answered_write_and_half_applies_none() {
    let data_dir = tempfile::tempdir().unwrap();
    let server = Binary::start(data_dir.path(), ENV);
    let org = printed_organization(&server);
    let flow = published_flow(&org).await;
    let tomorrow = in_seconds(86_400);

    // Writers creating callbacks (a record and its list and due entries in one transaction) and
    // flows (a head, a version, list entries and counters in one transaction), as fast as the
    // server answers, until it is gone.
    let answered_callbacks = Arc::new(Mutex::new(Vec::new()));
    let answered_flows = Arc::new(Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..16)
        .map(|writer| {
            let (org, flow, tomorrow) = (on(&org, &server), flow.clone(), tomorrow.clone());
            let (callbacks, flows) = (answered_callbacks.clone(), answered_flows.clone());
            tokio::spawn(async move {
                for n in 0.. {
                    let (path, body) = if n % 4 == 3 {
                        ("/v1/flows", json!({"name": format!("Burst {writer}-{n}")}))
                    } else {
                        (
                            "/v1/callbacks",
                            json!({"flow": flow, "to_number": "+15557654321", "scheduled_at": tomorrow}),
                        )
                    };
                    let sent = org
                        .client
                        .post(format!("{}{path}", org.base))
                        .bearer_auth(&org.sk)
                        .json(&body)
                        .send()
                        .await;
                    // The server is gone (refused, or cut off mid-answer): this writer is done.
                    let Ok(answer) = sent else { return };
                    let status = answer.status().as_u16();
                    let Ok(body) = answer.json::<Value>().await else {
                        return;
                    };
                    assert_eq!(status, 201, "{body}");
                    match path {
                        "/v1/flows" => flows.lock().unwrap().push(body["slug"].as_str().unwrap().to_owned()),
                        _ => callbacks.lock().unwrap().push(body["id"].as_str().unwrap().to_owned()),
                    }
                }
            })
        })
        .collect();
    common::eventually(
        "the burst is under way",
        Duration::from_secs(60),
        || async { (answered_callbacks.lock().unwrap().len() >= 300).then_some(()) },
    )
    .await;
    server.kill();
    for writer in writers {
        writer.await.unwrap();
    }
    let answered_callbacks = answered_callbacks.lock().unwrap().clone();
    let mut answered_flows = answered_flows.lock().unwrap().clone();
    answered_flows.push(flow.clone());

    let again = Binary::start(data_dir.path(), ENV);
    let org = on(&org, &again);

    // Every callback answered 201 is there, and each is whole: in the unfiltered list and in
    // every filtered one (each list entry is written in the record's transaction).
    let listed = list_all(&org, "/v1/callbacks", "callbacks", "limit").await;
    let all = ids(&listed, "id");
    assert_eq!(all.len(), listed.len(), "no callback listed twice");
    for path in [
        "/v1/callbacks?status=scheduled".to_owned(),
        format!("/v1/callbacks?flow={flow}"),
        format!("/v1/callbacks?status=scheduled&flow={flow}"),
    ] {
        let filtered = list_all(&org, &path, "callbacks", "limit").await;
        assert_eq!(
            ids(&filtered, "id"),
            all,
            "{path} agrees with the whole list"
        );
    }
    for id in &answered_callbacks {
        assert!(all.contains(id), "answered callback {id} is listed");
    }
    for id in &all {
        let callback = org
            .get(&format!("/v1/callbacks/{id}"))
            .await
            .expect(200)
            .clone();
        assert_eq!(callback["status"], "scheduled", "{callback}");
    }
    // …and every one of them has its timer again (the due index is whole too).
    let waiting = format!(
        "Waiting: {} callbacks scheduled, 0 dispatching, 0 webhook retries (timers armed again)",
        all.len()
    );
    assert!(again.lines().contains(&waiting), "{:#?}", again.lines());

    // Every flow answered 201 is there, and the flow count is the number of flows.
    let page = org.get("/v1/flows?page_size=1").await.expect(200).clone();
    let flows = list_all(&org, "/v1/flows", "flows", "page_size").await;
    let slugs = ids(&flows, "slug");
    assert_eq!(
        page["total_records"],
        json!(flows.len()),
        "the count agrees"
    );
    assert_eq!(slugs.len(), flows.len());
    for slug in &answered_flows {
        assert!(slugs.contains(slug), "answered flow {slug} is listed");
        org.get(&format!("/v1/flows/{slug}")).await.expect(200);
    }
    assert!(
        answered_callbacks.len() >= 300 && all.len() >= answered_callbacks.len(),
        "{} answered, {} kept",
        answered_callbacks.len(),
        all.len()
    );
}

/// The same data directory, served by a new application in this process: what a restart sees.
async fn restarted(store: &Arc<RedbStore>) -> TestServer {
    TestServer::start_on(Storage::Persistent(store.clone()), Backend::Persistent).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatch_cut_off_by_a_crash_is_taken_again_when_its_lease_ends() {
    let data_dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RedbStore::open(data_dir.path()).unwrap());
    let first = restarted(&store).await;
    let org = first.org().await;
    let receiver = Receiver::start().await;
    org.post(
        "/v1/webhooks",
        json!({"url": receiver.url, "events": ["callback.dispatch"]}),
    )
    .await
    .expect(201);
    let flow = published_flow(&org).await;
    let id = schedule(&org, &flow, &in_seconds(60)).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A dispatcher took it (as dispatch does: `dispatching`, with a lease) and died.
    let table = store.main();
    let before = callbacks::load(&table, &org.id, &id)
        .await
        .unwrap()
        .unwrap();
    let mut taken = before.value.clone();
    let lease_until = Timestamp::now() + SignedDuration::from_mins(5);
    taken.callback.status = CallbackStatus::Dispatching;
    taken.callback.attempted_at = Some(Timestamp::now());
    taken.lease_until_ms = Some(lease_until.as_millisecond());
    taken.dispatch_event_id = Some("evt_cut_off".to_owned());
    callbacks::save(&table, Some(&before), &taken, &[])
        .await
        .unwrap();

    let second = restarted(&store).await;
    let report = rearm(&second.app).await.unwrap();
    assert_eq!(
        report,
        RearmReport {
            scheduled: 0,
            dispatching: 1,
            retries: 0,
        }
    );
    let at = second
        .timers
        .armed_at(&id)
        .expect("a timer for the lease's end");
    assert_eq!(at.as_millisecond(), lease_until.as_millisecond());
    assert!(
        receiver.deliveries().is_empty(),
        "nothing before the lease ends"
    );

    second.clock.advance_to(lease_until);
    let delivered = receiver
        .wait_for("callback.dispatch", 1, Duration::from_secs(10))
        .await;
    assert_eq!(delivered.len(), 1);
    assert_eq!(
        delivered[0].headers["webhook-id"], "evt_cut_off",
        "the same dispatch, taken over: the receiver can tell a repeat"
    );
    let org = Org {
        base: second.base.clone(),
        ..org
    };
    common::eventually(
        "the callback is dispatched",
        Duration::from_secs(10),
        || async {
            let body = org
                .get(&format!("/v1/callbacks/{id}"))
                .await
                .expect(200)
                .clone();
            (body["status"] == "dispatched").then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arming_timers_again_reads_only_the_due_index() {
    let data_dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RedbStore::open(data_dir.path()).unwrap());
    let first = restarted(&store).await;
    let org = first.org().await;
    let flow = published_flow(&org).await;
    let mut waiting = BTreeMap::new();
    for n in 0..12 {
        let callback = schedule(&org, &flow, &in_seconds(3_600 + n)).await;
        let id = callback["id"].as_str().unwrap().to_owned();
        // Two in three are cancelled: they wait for nothing, and no start reads them.
        if n % 3 == 0 {
            let at: Timestamp = callback["scheduled_at"].as_str().unwrap().parse().unwrap();
            waiting.insert(id, at);
        } else {
            org.post(&format!("/v1/callbacks/{id}/cancel"), json!({}))
                .await
                .expect(200);
        }
    }
    for n in 0..20 {
        org.post("/v1/flows", json!({"name": format!("Flow {n}")}))
            .await
            .expect(201);
    }

    let metered = Arc::new(MeteredTable::new(Arc::new(store.main())));
    let clock = Arc::new(common::clock::TestClock::default());
    let timers = Arc::new(InProcessScheduler::new(clock.clone()));
    let app: Arc<App> = App::builder(
        metered.clone(),
        Arc::new(store.keys()),
        first.app.config.clone(),
    )
    .clock(clock)
    .in_process(timers.clone())
    .build();
    let report = rearm(&app).await.unwrap();
    assert_eq!(report.scheduled, waiting.len());
    for (id, at) in &waiting {
        assert_eq!(timers.armed_at(id), Some(*at), "{id}");
    }
    assert_eq!(timers.pending(), waiting.len());
    let calls = metered.calls();
    assert_eq!(
        (calls.query, calls.query_items, calls.get_many, calls.get),
        (
            u64::from(callbacks::DUE_SHARDS + deliveries::DUE_SHARDS),
            waiting.len() as u64,
            0,
            0
        ),
        "one query per shard of both due indexes, reading their entries and nothing else: \
         {calls:?}"
    );
    assert_eq!(calls.writes(), 0);
}

/// A webhook delivery waiting for its retry when the server stops is tried after the restart,
/// at its time, with the same `webhook-id`: the retry's timer is armed again from the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_retry_waiting_at_a_restart_is_tried_after_it() {
    let data_dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RedbStore::open(data_dir.path()).unwrap());
    let first = restarted(&store).await;
    // The first server's time stands still: its timer for the retry never fires.
    first.clock.freeze();
    let org = first.org().await;
    let flow = published_flow(&org).await;
    let receiver = Receiver::start().await;
    receiver.script([Reply::status(500)]);
    let endpoint = org
        .post(
            "/v1/webhooks",
            json!({"url": receiver.url, "events": ["callback.scheduled"]}),
        )
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    schedule(&org, &flow, &in_seconds(3_600)).await;
    let wait = Duration::from_secs(10);
    let next_try: Timestamp = common::eventually("the failed try is recorded", wait, || async {
        let page = org
            .get(&format!(
                "/v1/webhooks/{endpoint}/deliveries?status=pending"
            ))
            .await
            .expect(200)
            .clone();
        page["deliveries"][0]["next_attempt_at"]
            .as_str()?
            .parse()
            .ok()
    })
    .await;
    first.relay.abort();
    drop(first);

    let second = restarted(&store).await;
    let report = rearm(&second.app).await.unwrap();
    assert_eq!(report.retries, 1, "{report:?}");
    assert_eq!(receiver.deliveries().len(), 1, "nothing before its time");
    second
        .clock
        .advance_to(next_try + SignedDuration::from_millis(1));
    let tries = receiver.wait_for("callback.scheduled", 2, wait).await;
    assert_eq!(tries.len(), 2);
    assert!(!tries[0].accepted() && tries[1].accepted());
    assert_eq!(tries[1].webhook_id(), tries[0].webhook_id());
}
