//! What the black-box tests share: a local server on a free port over any store, one fresh
//! organization per test (so tests never see each other's data), and a small HTTP client.
#![allow(dead_code)]

pub mod binary;
pub mod clock;
pub mod counting;
pub mod faults;
pub mod fixtures;
pub mod load;
pub mod receiver;
pub mod recording_sender;
pub mod wiring;

use std::sync::{Arc, OnceLock};

use flowline::compose::{self, Scheduling, Storage};
use flowline_core::App;
use flowline_core::auth::KeyKind;
use flowline_core::config::Config;
use flowline_core::ids;
use flowline_core::ratelimit::{Limit, Limits};
use flowline_core::scheduler::in_process::InProcessScheduler;
use flowline_core::scheduler::{DispatchJob, Job};
use jiff::Timestamp;
use serde_json::Value;

use flowline_fault_proxy::FaultProxy;

use self::clock::TestClock;

pub const SIGNING_KEY: &[u8] = b"test signing key, 32 bytes long!";

/// Budgets no test reaches (the rate-limit tests set their own).
pub const UNLIMITED: Limits = Limits {
    organization: Limit::new(1e9, 1e9),
    trigger: Limit::new(1e9, 1e9),
    bad_signature: Limit::new(1e9, 1e9),
};

/// What the server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `FLOWLINE_STORE=memory`: in-memory store, in-process scheduler.
    Memory,
    /// The local default: the persistent store in a fresh data directory of its own,
    /// in-process scheduler.
    Persistent,
    /// The cloud's shape on the emulator `scripts/test` starts (`AWS_ENDPOINT_URL`): DynamoDB
    /// and EventBridge Scheduler (which never fires: tests fire schedules themselves).
    DynamoDb,
}

/// Runs each named `async fn(Backend)` test once per store: `memory::name`,
/// `persistent::name`, `dynamodb::name`.
#[macro_export]
macro_rules! on_every_store {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Memory).await
                }
            )*
        }
        mod persistent {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Persistent).await
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::DynamoDb).await
                }
            )*
        }
    };
}

/// A plain HTTP client for the tests (with the process's TLS provider, as reqwest needs one).
pub fn http_client() -> reqwest::Client {
    flowline_adapters::webhook_http::install_tls_provider();
    reqwest::Client::new()
}

/// Test logs through `RUST_LOG` (captured per test).
pub fn init_test_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// `at(2026-11-21T14:15:22)` → that second, in UTC.
pub fn parse_at_expression(expression: &str) -> Timestamp {
    let inner = expression
        .strip_prefix("at(")
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{expression} is an at() expression"));
    format!("{inner}Z")
        .parse()
        .unwrap_or_else(|err| panic!("{expression}: {err}"))
}

/// A schedule of this test process's group, read back from the emulator; `None` only when the
/// emulator says it does not exist.
pub async fn read_schedule(
    name: &str,
) -> Option<aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput> {
    use aws_sdk_scheduler::error::ProvideErrorMetadata;
    let client = aws_sdk_scheduler::Client::new(&emulator_config().await);
    match client
        .get_schedule()
        .name(name)
        .group_name(scheduler_settings().group)
        .send()
        .await
    {
        Ok(schedule) => Some(schedule),
        Err(err) if err.code() == Some("ResourceNotFoundException") => None,
        Err(err) => panic!(
            "GetSchedule {name}: {}",
            aws_sdk_scheduler::error::DisplayErrorContext(err)
        ),
    }
}

/// The names of every schedule of this test process's group.
pub async fn schedule_names() -> Vec<String> {
    let client = aws_sdk_scheduler::Client::new(&emulator_config().await);
    let listed = client
        .list_schedules()
        .group_name(scheduler_settings().group)
        .send()
        .await
        .unwrap_or_else(|err| {
            panic!(
                "ListSchedules: {}",
                aws_sdk_scheduler::error::DisplayErrorContext(err)
            )
        });
    listed
        .schedules()
        .iter()
        .filter_map(|schedule| schedule.name().map(str::to_owned))
        .collect()
}

async fn delete_schedule(name: &str) {
    let client = aws_sdk_scheduler::Client::new(&emulator_config().await);
    client
        .delete_schedule()
        .name(name)
        .group_name(scheduler_settings().group)
        .send()
        .await
        .unwrap_or_else(|err| {
            panic!(
                "DeleteSchedule {name}: {}",
                aws_sdk_scheduler::error::DisplayErrorContext(err)
            )
        });
}

/// Runs `work` with a deadline `budget` from now, as a request or invocation runs.
pub async fn within_budget<F: std::future::Future>(
    budget: std::time::Duration,
    work: F,
) -> F::Output {
    flowline_core::deadline::within(tokio::time::Instant::now() + budget, work).await
}

/// Waits for `condition` to hold, checking every few milliseconds, for at most `within` — for
/// work the server finishes after answering. Never a fixed sleep: it returns as soon as the
/// condition holds, and fails the test (with `what`) if it never does.
pub async fn eventually<T, F, Fut>(what: &str, within: std::time::Duration, mut condition: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(value) = condition().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {within:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// The emulator's SDK configuration; fails loudly when the suite runs without it.
pub async fn emulator_config() -> aws_config::SdkConfig {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "DynamoDB/Scheduler tests need the emulator: run ./scripts/test (it installs and starts it)"
    );
    // The configuration every Flowline process uses: timeouts and retries included.
    flowline_adapters::sdk::load().await
}

/// The SDK configuration of Flowline's processes, aimed at `proxy` instead of the emulator.
pub async fn proxied_config(proxy: &FaultProxy) -> aws_config::SdkConfig {
    flowline_adapters::sdk::defaults()
        .endpoint_url(proxy.url())
        .load()
        .await
}

/// Table names of this test process, so runs never share state.
pub fn table_names() -> &'static (String, String) {
    static NAMES: OnceLock<(String, String)> = OnceLock::new();
    NAMES.get_or_init(|| {
        let run = ids::random_token(8);
        (
            format!("flowline-test-{run}"),
            format!("flowline-test-keys-{run}"),
        )
    })
}

/// A persistent store in a fresh data directory. The directory is removed at once: the open
/// database keeps its (unlinked) file until the tables are dropped, so no test leaves anything
/// behind, whatever way it ends.
pub fn fresh_data_dir_storage() -> Storage {
    let directory = tempfile::tempdir().expect("a temporary directory");
    Storage::persistent(directory.path()).expect("the data directory opens")
}

pub async fn storage(backend: Backend) -> Storage {
    match backend {
        Backend::Memory => Storage::Memory,
        Backend::Persistent => fresh_data_dir_storage(),
        Backend::DynamoDb => {
            let sdk = emulator_config().await;
            let (table, keys_table) = table_names().clone();
            Storage::DynamoDb {
                client: aws_sdk_dynamodb::Client::new(&sdk),
                table,
                keys_table,
            }
        }
    }
}

/// Tables of one test server only: the emulator copies a whole table for every transaction,
/// so small tables keep it fast.
pub async fn own_storage(backend: Backend) -> Storage {
    match backend {
        Backend::Memory => Storage::Memory,
        Backend::Persistent => fresh_data_dir_storage(),
        Backend::DynamoDb => {
            let sdk = emulator_config().await;
            let run = ids::random_token(10);
            Storage::DynamoDb {
                client: aws_sdk_dynamodb::Client::new(&sdk),
                table: format!("flowline-test-{run}"),
                keys_table: format!("flowline-test-keys-{run}"),
            }
        }
    }
}

/// Fresh tables (main, keys) on `backend`, for tests that assemble their own app.
pub async fn tables(
    backend: Backend,
) -> (
    Arc<dyn flowline_core::store::Table>,
    Arc<dyn flowline_core::store::Table>,
) {
    use flowline_adapters::dynamodb::DynamoTable;
    use flowline_core::store::memory::MemoryTable;
    match own_storage(backend).await {
        Storage::Memory => (Arc::new(MemoryTable::new()), Arc::new(MemoryTable::new())),
        Storage::Persistent(store) => (Arc::new(store.main()), Arc::new(store.keys())),
        Storage::DynamoDb {
            client,
            table,
            keys_table,
        } => {
            let main = DynamoTable::new(client.clone(), table);
            let keys = DynamoTable::new(client, keys_table);
            main.ensure_exists().await.expect("table");
            keys.ensure_exists().await.expect("table");
            (Arc::new(main), Arc::new(keys))
        }
    }
}

pub async fn scheduling(backend: Backend) -> Scheduling {
    match backend {
        Backend::Memory | Backend::Persistent => Scheduling::InProcess,
        Backend::DynamoDb => {
            let sdk = emulator_config().await;
            Scheduling::EventBridge {
                client: aws_sdk_scheduler::Client::new(&sdk),
                settings: scheduler_settings(),
            }
        }
    }
}

/// The schedule group of this test process, and ARNs like the template's.
pub fn scheduler_settings() -> flowline_adapters::eventbridge::EventBridgeSettings {
    flowline_adapters::eventbridge::EventBridgeSettings {
        group: format!(
            "flowline-test-{}",
            &table_names().0["flowline-test-".len()..]
        ),
        dispatch_function_arn: "arn:aws:lambda:us-east-1:123456789012:function:flowline-dispatch"
            .to_owned(),
        role_arn: "arn:aws:iam::123456789012:role/flowline-scheduler".to_owned(),
        dead_letter_arn: Some(
            "arn:aws:sqs:us-east-1:123456789012:flowline-dispatch-dlq".to_owned(),
        ),
    }
}

pub struct TestServer {
    pub base: String,
    pub app: Arc<App>,
    pub client: reqwest::Client,
    pub backend: Backend,
    /// The application's clock: tests move it instead of sleeping.
    pub clock: Arc<TestClock>,
    /// The in-process timers (the scheduler on memory and persistent; "dispatch now" on all).
    pub timers: Arc<InProcessScheduler>,
    /// The relay that hands out the outbox (abort it to leave events in the outbox, as a
    /// crash between commit and delivery would).
    pub relay: tokio::task::AbortHandle,
}

/// A callback's schedule as the scheduler holds it: when it fires and what it hands dispatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledJob {
    pub at: Timestamp,
    pub job: Job,
}

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, true).await
    }

    /// A server on `storage`: for a persistent store, one another server used before it (a
    /// restart, within the test process).
    pub async fn start_on(storage: Storage, backend: Backend) -> Self {
        let scheduling = scheduling(backend).await;
        Self::launch(
            backend,
            storage,
            scheduling,
            true,
            flowline_core::deadline::HTTP_BUDGET,
            UNLIMITED,
        )
        .await
    }

    /// A server whose `allow_private_targets` is as given (`start` allows them, so tests can
    /// use a loopback receiver; `false` is the cloud's setting).
    pub async fn start_with(backend: Backend, allow_private_targets: bool) -> Self {
        let (storage, scheduling) = (own_storage(backend).await, scheduling(backend).await);
        Self::launch(
            backend,
            storage,
            scheduling,
            allow_private_targets,
            flowline_core::deadline::HTTP_BUDGET,
            UNLIMITED,
        )
        .await
    }

    /// A server with the request budgets `limits` (the others have none to speak of, so a test
    /// making many requests quickly is not refused).
    pub async fn start_with_limits(backend: Backend, limits: Limits) -> Self {
        let (storage, scheduling) = (own_storage(backend).await, scheduling(backend).await);
        Self::launch(
            backend,
            storage,
            scheduling,
            true,
            flowline_core::deadline::HTTP_BUDGET,
            limits,
        )
        .await
    }

    /// A server on DynamoDB and EventBridge Scheduler whose every AWS call goes through a
    /// fault proxy in front of the emulator, each request given `budget`.
    pub async fn start_proxied(budget: std::time::Duration) -> (Self, FaultProxy) {
        let upstream = std::env::var("AWS_ENDPOINT_URL").expect("the emulator (scripts/test)");
        let proxy = FaultProxy::start(&upstream).await;
        let sdk = proxied_config(&proxy).await;
        let run = ids::random_token(10);
        let storage = Storage::DynamoDb {
            client: aws_sdk_dynamodb::Client::new(&sdk),
            table: format!("flowline-test-{run}"),
            keys_table: format!("flowline-test-keys-{run}"),
        };
        let scheduling = Scheduling::EventBridge {
            client: aws_sdk_scheduler::Client::new(&sdk),
            settings: scheduler_settings(),
        };
        let server = Self::launch(
            Backend::DynamoDb,
            storage,
            scheduling,
            true,
            budget,
            UNLIMITED,
        )
        .await;
        (server, proxy)
    }

    async fn launch(
        backend: Backend,
        storage: Storage,
        scheduling: Scheduling,
        allow_private_targets: bool,
        request_budget: std::time::Duration,
        limits: Limits,
    ) -> Self {
        init_test_logs();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let config = Config {
            public_base_url: base.clone(),
            allow_private_targets,
            request_budget,
            limits,
        };
        let clock = Arc::new(TestClock::default());
        let local = compose::build_with_clock(
            storage,
            scheduling,
            SIGNING_KEY,
            config,
            true,
            clock.clone(),
        )
        .await
        .expect("app builds");
        let served = local.app.clone();
        tokio::spawn(async move {
            flowline::server::serve(listener, served, std::future::pending())
                .await
                .expect("server runs");
        });
        Self {
            base,
            app: local.app,
            client: http_client(),
            backend,
            clock,
            timers: local.timers,
            relay: local.relay,
        }
    }

    /// Serves an app built by the test itself (custom adapters, no in-process timers) on
    /// `clock`.
    pub async fn serve(app: Arc<App>, backend: Backend, clock: Arc<TestClock>) -> Self {
        let timers = Arc::new(InProcessScheduler::new(clock.clone()));
        init_test_logs();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let served = app.clone();
        tokio::spawn(async move {
            flowline::server::serve(listener, served, std::future::pending())
                .await
                .expect("server runs");
        });
        // Its table does not signal: the relay finds the outbox's work by looking each second.
        let relay = flowline_core::webhooks::relay::spawn(
            Arc::downgrade(&app),
            Arc::new(tokio::sync::Notify::new()),
        )
        .abort_handle();
        Self {
            base,
            app,
            client: http_client(),
            backend,
            clock,
            timers,
            relay,
        }
    }

    /// The schedule of `callback_id`, as the scheduler holds it, or `None` when there is none:
    /// the in-process timer, or the EventBridge schedule read back from the emulator (its
    /// `at()` expression, group and input). Any other failure to read it fails the test.
    pub async fn schedule_of(&self, callback_id: &str) -> Option<ScheduledJob> {
        match self.backend {
            Backend::Memory | Backend::Persistent => {
                self.timers.armed_at(callback_id).map(|at| ScheduledJob {
                    at,
                    // The timer runs the callback's own job; only its time is observable.
                    job: Job::Dispatch(DispatchJob {
                        callback_id: callback_id.to_owned(),
                        organization_id: String::new(),
                    }),
                })
            }
            Backend::DynamoDb => {
                let schedule = read_schedule(callback_id).await?;
                let expression = schedule.schedule_expression().expect("an expression");
                assert_eq!(schedule.schedule_expression_timezone(), Some("UTC"));
                let input = schedule
                    .target()
                    .and_then(|target| target.input())
                    .expect("the schedule's target has an input");
                Some(ScheduledJob {
                    at: parse_at_expression(expression),
                    job: serde_json::from_str(input).expect("the input is a dispatch job"),
                })
            }
        }
    }

    /// Lets the callback's schedule fire as the cloud would: the clock moves to the schedule's
    /// time; an in-process timer then fires by itself, an EventBridge schedule (which the
    /// emulator never fires) is deleted (`ActionAfterCompletion: DELETE`) and its input handed
    /// to the `dispatch` handler. Answers the time it fired at.
    pub async fn fire_schedule(&self, callback_id: &str) -> Timestamp {
        let scheduled = self
            .schedule_of(callback_id)
            .await
            .unwrap_or_else(|| panic!("{callback_id} has a schedule"));
        self.clock.advance_to(scheduled.at);
        if self.backend == Backend::DynamoDb {
            // As EventBridge Scheduler does with `ActionAfterCompletion: DELETE`: the schedule is
            // gone once its (asynchronous) invocation is handed to Lambda, before dispatch runs —
            // so a dispatch that arms the callback again (a calling window) makes a new one.
            delete_schedule(callback_id).await;
            dispatch::handle(&self.app, scheduled.job)
                .await
                .expect("dispatch runs");
        }
        scheduled.at
    }

    /// A fresh organization with a private and a public key.
    pub async fn org(&self) -> Org {
        let id = ids::new_id("org_", 0);
        let now = "2026-01-01T00:00:00.000Z";
        let (sk, _) = self
            .app
            .keys
            .create(&id, KeyKind::Private, "test-private", now)
            .await
            .expect("key");
        let (pk, _) = self
            .app
            .keys
            .create(&id, KeyKind::Public, "test-public", now)
            .await
            .expect("key");
        Org {
            id,
            sk,
            pk,
            base: self.base.clone(),
            client: self.client.clone(),
        }
    }

    /// A request with no key at all.
    pub fn anonymous(&self, method: reqwest::Method, path: &str) -> Call {
        Call {
            builder: self.client.request(method, format!("{}{path}", self.base)),
        }
    }
}

pub struct Org {
    pub id: String,
    pub sk: String,
    pub pk: String,
    pub base: String,
    pub client: reqwest::Client,
}

impl Org {
    /// A request with the private key.
    pub fn call(&self, method: reqwest::Method, path: &str) -> Call {
        self.with_key(&self.sk, method, path)
    }

    /// A request with the public key.
    pub fn public(&self, method: reqwest::Method, path: &str) -> Call {
        self.with_key(&self.pk, method, path)
    }

    pub fn with_key(&self, key: &str, method: reqwest::Method, path: &str) -> Call {
        let builder = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key);
        Call { builder }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.call(reqwest::Method::GET, path).send().await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(reqwest::Method::POST, path)
            .json(&body)
            .send()
            .await
    }

    pub async fn put(&self, path: &str, body: Value) -> Answer {
        self.call(reqwest::Method::PUT, path)
            .json(&body)
            .send()
            .await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Answer {
        self.call(reqwest::Method::PATCH, path)
            .json(&body)
            .send()
            .await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.call(reqwest::Method::DELETE, path).send().await
    }
}

pub struct Call {
    builder: reqwest::RequestBuilder,
}

impl Call {
    pub fn json(self, body: &Value) -> Self {
        Self {
            builder: self.builder.json(body),
        }
    }

    pub fn header(self, name: &str, value: &str) -> Self {
        Self {
            builder: self.builder.header(name, value),
        }
    }

    /// A raw body sent without any content type.
    pub fn body(self, body: impl Into<reqwest::Body>) -> Self {
        Self {
            builder: self.builder.body(body),
        }
    }

    /// A raw body with a content type of our choosing.
    pub fn raw(self, content_type: &str, body: impl Into<reqwest::Body>) -> Self {
        Self {
            builder: self.builder.header("content-type", content_type).body(body),
        }
    }

    pub async fn send(self) -> Answer {
        let response = self
            .builder
            .send()
            .await
            .expect("request reaches the server");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            text,
            body,
        }
    }
}

#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the status, showing the body when it differs.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Value {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        &self.body
    }

    /// Asserts an error answer in the SPEC's shape with this status and code.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) -> &Value {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        assert_eq!(
            self.body["code"], code,
            "unexpected code; body: {}",
            self.text
        );
        assert!(
            self.body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "error message missing: {}",
            self.text
        );
        &self.body
    }

    /// The `field`s named in a validation error's details.
    pub fn detail_fields(&self) -> Vec<String> {
        self.body["details"]
            .as_array()
            .map(|details| {
                details
                    .iter()
                    .filter_map(|d| d["field"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}
