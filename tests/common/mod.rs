//! What the black-box tests share: a local server on a free port over either store, one fresh
//! organization per test (so tests never see each other's data), and a small HTTP client.
#![allow(dead_code)]

pub mod counting;
pub mod fixtures;
pub mod receiver;
pub mod wiring;

use std::sync::{Arc, OnceLock};

use flowline::compose::{self, Scheduling, Storage};
use flowline_core::App;
use flowline_core::auth::KeyKind;
use flowline_core::config::Config;
use flowline_core::ids;
use serde_json::Value;

pub const SIGNING_KEY: &[u8] = b"test signing key, 32 bytes long!";

/// What the server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The local default: in-memory store, in-process scheduler.
    Memory,
    /// The cloud's shape on the emulator `scripts/test` starts (`AWS_ENDPOINT_URL`): DynamoDB
    /// and EventBridge Scheduler (which never fires: tests fire schedules themselves).
    DynamoDb,
}

/// Runs each named `async fn(Backend)` test once per store: `memory::name`, `dynamodb::name`.
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

/// The emulator's SDK configuration; fails loudly when the suite runs without it.
pub async fn emulator_config() -> aws_config::SdkConfig {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "DynamoDB/Scheduler tests need the emulator: run ./scripts/test (it installs and starts it)"
    );
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
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

pub async fn storage(backend: Backend) -> Storage {
    match backend {
        Backend::Memory => Storage::Memory,
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
        Backend::Memory => Scheduling::InProcess,
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
}

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, true).await
    }

    /// A server whose `allow_private_targets` is as given (`start` allows them, so tests can
    /// use a loopback receiver; `false` is the cloud's setting).
    pub async fn start_with(backend: Backend, allow_private_targets: bool) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let config = Config {
            public_base_url: base.clone(),
            allow_private_targets,
        };
        let app = compose::build(
            own_storage(backend).await,
            scheduling(backend).await,
            SIGNING_KEY,
            config,
            true,
        )
        .await
        .expect("app builds");
        let served = app.clone();
        tokio::spawn(async move {
            flowline::server::serve(listener, served, std::future::pending())
                .await
                .expect("server runs");
        });
        Self {
            base,
            app,
            client: http_client(),
            backend,
        }
    }

    /// Serves an app built by the test itself (custom adapters).
    pub async fn serve(app: Arc<App>, backend: Backend) -> Self {
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
        Self {
            base,
            app,
            client: http_client(),
            backend,
        }
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
