//! The cloud composition root: which adapters fill the application's ports in a Lambda
//! function. Each function's `main` says what it uses and nothing more, e.g.
//!
//! ```ignore
//! let app = Cloud::from_env().await?.app();                                  // flow-get
//! let app = Cloud::from_env().await?.with_page_tokens()?.app();              // flow-list
//! let app = Cloud::from_env().await?.with_scheduler()?.with_dispatch_invoker()?.with_webhooks().app();
//! ```
//!
//! so a read-only route neither builds nor needs the configuration of a scheduler it never
//! calls (tests/template.rs keeps this wiring and each function's IAM permissions in step).
//! Everything comes from the environment the SAM template sets; anything missing stops the
//! start with a message, never a silent default.

use std::sync::Arc;

use flowline_adapters::dynamodb::DynamoTable;
use flowline_adapters::eventbridge::{EventBridgeScheduler, EventBridgeSettings};
use flowline_adapters::lambda_invoke::LambdaInvoker;
use flowline_adapters::webhook_http::HttpSender;
use flowline_core::App;
use flowline_core::app::AppBuilder;
use flowline_core::auth::KeyStore;
use flowline_core::ratelimit::RateLimiter;

use crate::authorizer::Authorizer;
use flowline_core::config::{
    self, Config, DEFAULT_KEYS_TABLE, DEFAULT_SCHEDULE_GROUP, DEFAULT_TABLE, StartupError, env,
};
use flowline_core::time::SystemClock;

/// A function's application under construction.
pub struct Cloud {
    sdk: aws_config::SdkConfig,
    app: AppBuilder,
}

/// Logs a start-up failure once, in the function's log format, before it stops the start.
fn reported<T>(result: Result<T, StartupError>) -> Result<T, StartupError> {
    result.inspect_err(|err| tracing::error!(error = %err, "start-up failed"))
}

fn table(variable: &str, default: &str) -> String {
    config::var(variable).unwrap_or_else(|| default.to_owned())
}

impl Cloud {
    /// Logging, the AWS configuration, and the main and keys tables on DynamoDB.
    pub async fn from_env() -> Result<Self, StartupError> {
        crate::logging::init();
        let public_base_url = reported(
            config::public_base_url_from_env().ok_or(StartupError::Missing(env::PUBLIC_BASE_URL)),
        )?;
        let limits = reported(config::limits_from_env())?;
        let sdk = flowline_adapters::sdk::load().await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
        let store = DynamoTable::new(dynamodb.clone(), table(env::TABLE, DEFAULT_TABLE));
        let keys = DynamoTable::new(dynamodb, table(env::KEYS_TABLE, DEFAULT_KEYS_TABLE));
        let config = Config {
            public_base_url,
            allow_private_targets: false,
            request_budget: flowline_core::deadline::HTTP_BUDGET,
            limits,
        };
        let store: Arc<dyn flowline_core::store::Table> = Arc::new(store);
        // Request budgets, shared by every sandbox through the table (the authorizer spends the
        // organizations'; a trigger URL's is spent where it is called).
        let limiter = RateLimiter::shared(limits, store.clone());
        Ok(Self {
            sdk,
            app: App::builder(store, Arc::new(keys), config).limiter(limiter),
        })
    }

    /// The signing key (`FLOWLINE_SIGNING_KEY`), for the page tokens of list routes.
    pub fn with_page_tokens(mut self) -> Result<Self, StartupError> {
        let key = reported(
            config::signing_key_from_env()
                .and_then(|key| key.ok_or(StartupError::Missing(env::SIGNING_KEY))),
        )?;
        self.app = self.app.signing_key(&key);
        Ok(self)
    }

    /// EventBridge Scheduler: the schedule group, and the target, role and dead-letter queue
    /// every schedule is made with.
    pub fn with_scheduler(mut self) -> Result<Self, StartupError> {
        let settings = reported((|| {
            Ok(EventBridgeSettings {
                group: config::var(env::SCHEDULE_GROUP)
                    .unwrap_or_else(|| DEFAULT_SCHEDULE_GROUP.to_owned()),
                dispatch_function_arn: config::required(env::DISPATCH_FUNCTION_ARN)?,
                role_arn: config::required(env::SCHEDULER_ROLE_ARN)?,
                dead_letter_arn: config::var(env::DISPATCH_DLQ_ARN),
            })
        })())?;
        let client = aws_sdk_scheduler::Client::new(&self.sdk);
        self.app = self.app.scheduler(Arc::new(EventBridgeScheduler::new(
            client,
            settings,
            Arc::new(SystemClock),
        )));
        Ok(self)
    }

    /// "Dispatch now": asynchronous invocations of the dispatch function.
    pub fn with_dispatch_invoker(mut self) -> Result<Self, StartupError> {
        let arn = reported(config::required(env::DISPATCH_FUNCTION_ARN))?;
        let client = aws_sdk_lambda::Client::new(&self.sdk);
        self.app = self.app.invoker(Arc::new(LambdaInvoker::new(client, arn)));
        Ok(self)
    }

    /// Webhook deliveries over HTTPS, to public addresses only.
    pub fn with_webhooks(mut self) -> Self {
        self.app = self.app.sender(Arc::new(HttpSender::new(false)));
        self
    }

    pub fn app(self) -> Arc<App> {
        self.app.build()
    }
}

/// The authorizer's application: the keys table (`FLOWLINE_KEYS_TABLE`) and the
/// organizations' request budgets, whose shared windows live in the same table — all it needs,
/// so it starts fast.
pub async fn authorizer_from_env() -> Result<Authorizer, StartupError> {
    crate::logging::init();
    let table_name = reported(config::required(env::KEYS_TABLE))?;
    let limits = reported(config::limits_from_env())?;
    let sdk = flowline_adapters::sdk::load().await;
    let table: Arc<dyn flowline_core::store::Table> = Arc::new(DynamoTable::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        table_name,
    ));
    Ok(Authorizer {
        keys: KeyStore::new(table.clone()),
        limiter: RateLimiter::shared(limits, table),
    })
}
