//! The webhook delivery policy of SPEC §4 (Dispatch, step 3), in virtual time: the core runs
//! in-process on tokio's paused clock with a sender that answers from a script and records when
//! each attempt started and the timeout it was given. Pauses, timeouts and the 25 s bound are
//! then asserted exactly, never measured on the wall clock. (Which endpoint answers what, over
//! HTTP and on both stores, is in tests/spec_rules.rs.)

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::recording_sender::{RecordingSender, SenderReply, SentPost};
use flowline_core::App;
use flowline_core::auth::{Caller, KeyKind};
use flowline_core::callbacks::{Callback, CallbackStatus, dispatch, input, service};
use flowline_core::config::Config;
use flowline_core::flows::{self, FlowRef};
use flowline_core::scheduler::in_process::InProcessScheduler;
use flowline_core::store::memory::MemoryTable;
use flowline_core::time::{Clock, ManualClock, format_timestamp};
use flowline_core::webhooks::delivery::{Delivered, Event, deliver};
use flowline_core::webhooks::{self, Endpoint, EventType};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};

const ORGANIZATION: &str = "org_0Q7fGk2LmZp4Xc8RtYb1Nv";
const ENDPOINT_A: &str = "https://a.agents.example.com/dispatch";
const ENDPOINT_B: &str = "https://b.agents.example.com/dispatch";
const ENDPOINT_C: &str = "https://c.agents.example.com/dispatch";

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

fn secs(seconds: u64) -> Duration {
    Duration::from_secs(seconds)
}

fn object(value: Value) -> Map<String, Value> {
    value.as_object().expect("an object").clone()
}

/// The core on in-memory tables, a clock that stands still until the test moves it, and the
/// recording sender.
struct Core {
    app: Arc<App>,
    sender: Arc<RecordingSender>,
    clock: Arc<ManualClock>,
    caller: Caller,
}

impl Core {
    fn new() -> Self {
        Self::on(Arc::new(MemoryTable::new()))
    }

    /// The core on `store`.
    fn on(store: Arc<dyn flowline_core::store::Table>) -> Self {
        let clock = Arc::new(ManualClock::new(
            "2026-11-21T14:00:00Z".parse().expect("a timestamp"),
        ));
        let sender = RecordingSender::new();
        let config = Config {
            public_base_url: "https://flowline.example.com".to_owned(),
            // The sender is a fake: no URL is resolved or connected to.
            allow_private_targets: true,
            request_budget: flowline_core::deadline::HTTP_BUDGET,
            limits: common::UNLIMITED,
        };
        let app = App::builder(store, Arc::new(MemoryTable::new()), config)
            .clock(clock.clone())
            .in_process(Arc::new(InProcessScheduler::new(clock.clone())))
            .sender(sender.clone())
            .signing_key(common::SIGNING_KEY)
            .build();
        Self {
            app,
            sender,
            clock,
            caller: Caller {
                organization_id: ORGANIZATION.to_owned(),
                kind: KeyKind::Private,
                key_name: "test-private".to_owned(),
            },
        }
    }

    /// Registers `url` for `events`, a second after the previous registration (endpoints are
    /// ordered by age).
    async fn endpoint(&self, url: &str, events: &[&str]) -> Endpoint {
        self.clock.advance(SignedDuration::from_secs(1));
        let view = webhooks::create(
            &self.app,
            &self.caller,
            object(json!({"url": url, "events": events})),
        )
        .await
        .expect("endpoint created");
        webhooks::subscribers(&self.app, ORGANIZATION, EventType::CallbackDispatch)
            .await
            .expect("subscribers")
            .into_iter()
            .chain(
                webhooks::subscribers(&self.app, ORGANIZATION, EventType::CallbackFailed)
                    .await
                    .expect("subscribers"),
            )
            .find(|endpoint| endpoint.id == view.id)
            .expect("the endpoint is subscribed")
    }

    /// A scheduled callback (an hour ahead) of a published flow.
    async fn callback(&self) -> Callback {
        let flow = flows::service::create_flow(
            &self.app,
            &self.caller,
            flows::read_flow_body(
                object(json!({"name": "Delivery policy", "data": {"greeting": "Hello"}})),
                true,
            )
            .expect("a flow body"),
        )
        .await
        .expect("flow created");
        flows::service::publish(
            &self.app,
            &self.caller,
            &FlowRef::Slug(flow.slug.clone()),
            Map::new(),
        )
        .await
        .expect("published");
        let now = self.clock.now();
        let body = json!({
            "flow": flow.slug,
            "to_number": "+15557654321",
            "scheduled_at": format_timestamp(now + SignedDuration::from_hours(1)),
        });
        let new = input::read_new_callback(object(body), None, now).expect("a callback body");
        service::create(&self.app, ORGANIZATION, new)
            .await
            .expect("callback created")
    }

    fn event(&self) -> Event {
        Event::new(
            EventType::CallbackDispatch,
            None,
            self.clock.now(),
            json!({"callback": {}}),
        )
    }

    /// The `callback.dispatch` attempts so far, as (endpoint, start since the first one,
    /// timeout).
    fn dispatch_attempts(&self) -> Vec<(String, Duration, Duration)> {
        let posts: Vec<SentPost> = self.sender.posts_of("callback.dispatch");
        let first = posts.first().map_or(Duration::ZERO, |post| post.at);
        posts
            .into_iter()
            .map(|post| (post.url, post.at - first, post.timeout))
            .collect()
    }
}

/// The last failure of a delivery that got no 2xx (`None`: it got one).
fn refused(outcome: &Delivered) -> Option<String> {
    outcome
        .accepted
        .is_none()
        .then(|| outcome.last_failure.clone())
}

fn starts(attempts: &[(String, Duration, Duration)]) -> Vec<Duration> {
    attempts.iter().map(|(_, at, _)| *at).collect()
}

#[tokio::test(start_paused = true)]
async fn an_endpoint_is_tried_three_times_half_a_second_then_one_second_apart() {
    let core = Core::new();
    let endpoint = core.endpoint(ENDPOINT_A, &["callback.dispatch"]).await;
    core.sender
        .default_reply(ENDPOINT_A, SenderReply::status(503));
    let deadline = core.sender.deadline_in(secs(25));
    let outcome = deliver(&core.app, &endpoint, &core.event(), deadline).await;
    assert_eq!(refused(&outcome), Some("503".to_owned()));
    let attempts = core.dispatch_attempts();
    assert_eq!(starts(&attempts), [ms(0), ms(500), ms(1500)]);
}

#[tokio::test(start_paused = true)]
async fn each_attempt_is_given_five_seconds_and_a_silent_one_ends_there() {
    let core = Core::new();
    let endpoint = core.endpoint(ENDPOINT_A, &["callback.dispatch"]).await;
    core.sender.default_reply(ENDPOINT_A, SenderReply::Silence);
    let deadline = core.sender.deadline_in(secs(25));
    let outcome = deliver(&core.app, &endpoint, &core.event(), deadline).await;
    assert_eq!(refused(&outcome), Some("timeout".to_owned()));
    let attempts = core.dispatch_attempts();
    let timeouts: Vec<Duration> = attempts.iter().map(|(_, _, timeout)| *timeout).collect();
    assert_eq!(timeouts, [secs(5), secs(5), secs(5)]);
    // Each silent attempt runs its 5 s, then the pause: 0, 5 + 0.5, 10.5 + 1.
    assert_eq!(starts(&attempts), [ms(0), ms(5500), ms(11_500)]);
}

#[tokio::test(start_paused = true)]
async fn request_timeout_too_many_requests_and_server_errors_are_retried() {
    for status in [408, 429, 500, 502, 503, 504] {
        let core = Core::new();
        let endpoint = core.endpoint(ENDPOINT_A, &["callback.dispatch"]).await;
        core.sender
            .default_reply(ENDPOINT_A, SenderReply::status(status));
        let deadline = core.sender.deadline_in(secs(25));
        let outcome = deliver(&core.app, &endpoint, &core.event(), deadline).await;
        assert_eq!(refused(&outcome), Some(status.to_string()));
        assert_eq!(core.dispatch_attempts().len(), 3, "{status} is retried");
    }
}

#[tokio::test(start_paused = true)]
async fn other_4xx_answers_are_not_retried() {
    for status in [400, 401, 403, 404, 405, 409, 410, 413, 422] {
        let core = Core::new();
        let endpoint = core.endpoint(ENDPOINT_A, &["callback.dispatch"]).await;
        core.sender
            .default_reply(ENDPOINT_A, SenderReply::status(status));
        let deadline = core.sender.deadline_in(secs(25));
        let outcome = deliver(&core.app, &endpoint, &core.event(), deadline).await;
        assert_eq!(refused(&outcome), Some(status.to_string()));
        assert_eq!(core.dispatch_attempts().len(), 1, "{status} is final");
    }
}

#[tokio::test(start_paused = true)]
async fn a_2xx_answer_ends_the_tries() {
    let core = Core::new();
    let endpoint = core.endpoint(ENDPOINT_A, &["callback.dispatch"]).await;
    core.sender.script(
        ENDPOINT_A,
        [
            SenderReply::status(429),
            SenderReply::ok_with(r#"{"session_id": "sess_second_try"}"#),
        ],
    );
    let deadline = core.sender.deadline_in(secs(25));
    let outcome = deliver(&core.app, &endpoint, &core.event(), deadline).await;
    assert_eq!(
        outcome.accepted,
        Some(r#"{"session_id": "sess_second_try"}"#.into())
    );
    assert_eq!(starts(&core.dispatch_attempts()), [ms(0), ms(500)]);
}

#[tokio::test(start_paused = true)]
async fn no_attempt_starts_at_the_deadline_and_the_last_one_gets_only_the_time_left() {
    // The third attempt would start at 1.5 s. With the deadline exactly there it never starts;
    // a millisecond later it starts with that millisecond as its timeout.
    for (deadline, expected) in [
        (ms(1500), vec![(ms(0), ms(1500)), (ms(500), ms(1000))]),
        (
            ms(1501),
            vec![(ms(0), ms(1501)), (ms(500), ms(1001)), (ms(1500), ms(1))],
        ),
    ] {
        let core = Core::new();
        let endpoint = core.endpoint(ENDPOINT_A, &["callback.dispatch"]).await;
        core.sender
            .default_reply(ENDPOINT_A, SenderReply::status(503));
        let deadline = core.sender.deadline_in(deadline);
        deliver(&core.app, &endpoint, &core.event(), deadline).await;
        let attempts: Vec<(Duration, Duration)> = core
            .dispatch_attempts()
            .into_iter()
            .map(|(_, at, timeout)| (at, timeout))
            .collect();
        assert_eq!(attempts, expected, "deadline {deadline:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_whole_dispatch_ends_at_25_seconds_whatever_the_endpoints_do() {
    let core = Core::new();
    for url in [ENDPOINT_A, ENDPOINT_B, ENDPOINT_C] {
        core.endpoint(url, &["callback.dispatch"]).await;
        core.sender.default_reply(url, SenderReply::Silence);
    }
    let callback = core.callback().await;
    let dispatched = dispatch::dispatch_now(&core.app, &core.caller, &callback.id)
        .await
        .expect("the dispatch runs");
    let attempts = core.dispatch_attempts();
    let first = core.sender.posts_of("callback.dispatch")[0].at;
    assert_eq!(
        attempts,
        [
            (ENDPOINT_A.to_owned(), ms(0), secs(5)),
            (ENDPOINT_A.to_owned(), ms(5500), secs(5)),
            (ENDPOINT_A.to_owned(), ms(11_500), secs(5)),
            (ENDPOINT_B.to_owned(), ms(16_500), secs(5)),
            // Only what is left of the 25 s.
            (ENDPOINT_B.to_owned(), ms(22_000), secs(3)),
        ],
        "the next endpoint at once, and nothing started at or after 25 s"
    );
    assert_eq!(
        core.sender.since_origin() - first,
        secs(25),
        "the dispatch answers when its 25 s are spent"
    );
    assert_eq!(dispatched.status, CallbackStatus::Failed);
    assert!(
        dispatched
            .failure_cause
            .as_deref()
            .is_some_and(|cause| cause.starts_with("WEBHOOK_FAILED: ")),
        "{:?}",
        dispatched.failure_cause
    );
}

#[tokio::test(start_paused = true)]
async fn the_next_endpoint_is_tried_at_once_when_one_gives_up() {
    let core = Core::new();
    core.endpoint(ENDPOINT_A, &["callback.dispatch"]).await;
    core.endpoint(ENDPOINT_B, &["callback.dispatch"]).await;
    core.sender
        .default_reply(ENDPOINT_A, SenderReply::status(503));
    core.sender.default_reply(
        ENDPOINT_B,
        SenderReply::ok_with(r#"{"session_id": "sess_from_b"}"#),
    );
    let callback = core.callback().await;
    let dispatched = dispatch::dispatch_now(&core.app, &core.caller, &callback.id)
        .await
        .expect("the dispatch runs");
    assert_eq!(dispatched.status, CallbackStatus::Dispatched);
    assert_eq!(
        dispatched.created_session_id.as_deref(),
        Some("sess_from_b")
    );
    assert_eq!(
        core.dispatch_attempts(),
        [
            (ENDPOINT_A.to_owned(), ms(0), secs(5)),
            (ENDPOINT_A.to_owned(), ms(500), secs(5)),
            (ENDPOINT_A.to_owned(), ms(1500), secs(5)),
            (ENDPOINT_B.to_owned(), ms(1500), secs(5)),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn attempted_at_is_when_the_dispatch_started_and_dispatched_at_when_it_ended() {
    let core = Core::new();
    core.endpoint(ENDPOINT_A, &["callback.dispatch"]).await;
    let callback = core.callback().await;
    let started: Timestamp = core.clock.now();
    // The endpoint takes a minute of the application's time to answer.
    let clock = core.clock.clone();
    core.sender
        .on_post(move |_| clock.advance(SignedDuration::from_mins(1)));
    let dispatched = dispatch::dispatch_now(&core.app, &core.caller, &callback.id)
        .await
        .expect("the dispatch runs");
    let sent = &core.sender.posts_of("callback.dispatch")[0].event["data"]["callback"];
    assert_eq!(sent["status"], "dispatching", "delivered while dispatching");
    assert_eq!(
        sent["attempted_at"],
        format_timestamp(started),
        "already attempted"
    );
    assert_eq!(dispatched.status, CallbackStatus::Dispatched);
    assert_eq!(dispatched.attempted_at, Some(started));
    assert_eq!(
        dispatched.dispatched_at,
        Some(started + SignedDuration::from_mins(1))
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_dispatch_keeps_when_it_was_attempted() {
    let core = Core::new();
    core.endpoint(ENDPOINT_A, &["callback.dispatch"]).await;
    core.sender
        .default_reply(ENDPOINT_A, SenderReply::status(400));
    let callback = core.callback().await;
    let started: Timestamp = core.clock.now();
    let clock = core.clock.clone();
    core.sender
        .on_post(move |_| clock.advance(SignedDuration::from_mins(1)));
    let failed = dispatch::dispatch_now(&core.app, &core.caller, &callback.id)
        .await
        .expect("the dispatch runs");
    assert_eq!(failed.status, CallbackStatus::Failed);
    assert_eq!(
        failed.failure_cause.as_deref(),
        Some(format!("WEBHOOK_FAILED: 400 from {ENDPOINT_A}").as_str())
    );
    assert_eq!(failed.attempted_at, Some(started));
    assert_eq!(failed.updated_at, started + SignedDuration::from_mins(1));
    assert_eq!(failed.dispatched_at, None);
}

#[tokio::test(start_paused = true)]
async fn a_slow_store_before_the_delivery_cannot_push_the_record_past_the_deadline() {
    let slow = Arc::new(common::faults::SlowTable::new(Arc::new(MemoryTable::new())));
    let core = Core::on(slow.clone());
    core.endpoint(ENDPOINT_A, &["callback.dispatch"]).await;
    core.sender.default_reply(ENDPOINT_A, SenderReply::Silence);
    let callback = core.callback().await;
    // Every read now takes 4 s: the reads before the delivery eat into the route's 28 s.
    slow.slow_reads(secs(4));
    let started = core.sender.since_origin();
    let failed = common::within_budget(
        flowline_core::deadline::HTTP_BUDGET,
        dispatch::dispatch_now(&core.app, &core.caller, &callback.id),
    )
    .await
    .expect("the dispatch runs");
    let took = core.sender.since_origin() - started;
    assert!(
        took <= flowline_core::deadline::HTTP_BUDGET,
        "answered within the route's time (virtual): {took:?}"
    );
    assert_eq!(failed.status, CallbackStatus::Failed);
    // Delivery stopped early enough to record the outcome: it is stored.
    slow.slow_reads(Duration::ZERO);
    let stored = service::get(&core.app, &core.caller, &callback.id)
        .await
        .expect("the callback");
    assert_eq!(stored.status, CallbackStatus::Failed);
    assert!(
        !core.dispatch_attempts().is_empty(),
        "it did try to deliver"
    );
}

/// The lifecycle event of the dispatch's end goes to the outbox, delivered after the answer:
/// a `callback.failed` subscriber that never answers cannot hold the synchronous route.
#[tokio::test(start_paused = true)]
async fn the_synchronous_dispatch_answers_within_25_seconds_whatever_event_subscribers_do() {
    let core = Core::new();
    for url in [ENDPOINT_A, ENDPOINT_B] {
        core.endpoint(url, &["callback.dispatch"]).await;
        core.sender.default_reply(url, SenderReply::Silence);
    }
    core.endpoint(ENDPOINT_C, &["callback.failed"]).await;
    core.sender.default_reply(ENDPOINT_C, SenderReply::Silence);
    let callback = core.callback().await;
    let failed = dispatch::dispatch_now(&core.app, &core.caller, &callback.id)
        .await
        .expect("the dispatch runs");
    assert_eq!(failed.status, CallbackStatus::Failed);
    let first = core.sender.posts_of("callback.dispatch")[0].at;
    let answered_after = core.sender.since_origin() - first;
    assert!(
        answered_after <= secs(25),
        "answered after {answered_after:?}"
    );
}
