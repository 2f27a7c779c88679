//! The application: the ports every use case borrows (store, keys, scheduler, dispatch invoker,
//! webhook sender, clock, page tokens), bundled once per process — per Lambda sandbox, or once by
//! the local server — and borrowed by handlers. Which adapters fill the ports is decided by a
//! composition root (`flowline_lambda::Cloud` in the cloud, the root package locally), never here.
//!
//! A port a process does not wire stays [`Unwired`](crate::scheduler::Unwired): a read-only
//! route does not build, configure or link a scheduler it never calls.

use std::sync::{Arc, Weak};

use crate::auth::KeyStore;
use crate::config::Config;
use crate::error::{ApiError, ApiResult};
use crate::page::PageTokens;
use crate::ratelimit::RateLimiter;
use crate::scheduler::in_process::InProcessScheduler;
use crate::scheduler::{DispatchInvoker, JobRunner, Scheduler, Unwired};
use crate::store::Table;
use crate::time::{Clock, SystemClock};
use crate::webhooks::gate::EndpointGate;
use crate::webhooks::sender::{self, WebhookSender};

pub struct App {
    /// The main table: flows, callbacks, webhooks, idempotency records, counters.
    pub store: Arc<dyn Table>,
    pub keys: KeyStore,
    pub scheduler: Arc<dyn Scheduler>,
    /// "Dispatch now": hands a dispatch off to run within seconds.
    pub invoker: Arc<dyn DispatchInvoker>,
    pub sender: Arc<dyn WebhookSender>,
    /// At most 10 tries in flight per endpoint (in this process).
    pub endpoint_gate: EndpointGate,
    /// The request budgets of organizations and trigger URLs.
    pub limiter: RateLimiter,
    pub clock: Arc<dyn Clock>,
    pub config: Config,
    page_tokens: Option<PageTokens>,
}

impl App {
    /// An application on `store` and `keys`; every other port starts unwired.
    pub fn builder(store: Arc<dyn Table>, keys: Arc<dyn Table>, config: Config) -> AppBuilder {
        AppBuilder {
            store,
            keys,
            config,
            scheduler: Arc::new(Unwired),
            invoker: Arc::new(Unwired),
            sender: Arc::new(sender::Unwired),
            clock: Arc::new(SystemClock),
            signing_key: None,
            in_process: None,
            limiter: None,
        }
    }

    /// The page tokens of list routes (keyed by the signing key).
    pub fn page_tokens(&self) -> ApiResult<&PageTokens> {
        self.page_tokens.as_ref().ok_or_else(|| {
            tracing::error!("no signing key is wired into this process: it cannot page");
            ApiError::internal()
        })
    }
}

/// Assembles an [`App`] port by port.
pub struct AppBuilder {
    store: Arc<dyn Table>,
    keys: Arc<dyn Table>,
    config: Config,
    scheduler: Arc<dyn Scheduler>,
    invoker: Arc<dyn DispatchInvoker>,
    sender: Arc<dyn WebhookSender>,
    clock: Arc<dyn Clock>,
    signing_key: Option<Vec<u8>>,
    in_process: Option<Arc<InProcessScheduler>>,
    limiter: Option<RateLimiter>,
}

impl AppBuilder {
    /// Request budgets (default: the configuration's, kept in this process).
    pub fn limiter(mut self, limiter: RateLimiter) -> Self {
        self.limiter = Some(limiter);
        self
    }

    pub fn scheduler(mut self, scheduler: Arc<dyn Scheduler>) -> Self {
        self.scheduler = scheduler;
        self
    }

    pub fn invoker(mut self, invoker: Arc<dyn DispatchInvoker>) -> Self {
        self.invoker = invoker;
        self
    }

    /// Timers in this process: the in-process scheduler as scheduler and invoker, running its
    /// jobs on the application built.
    pub fn in_process(mut self, scheduler: Arc<InProcessScheduler>) -> Self {
        self.scheduler = scheduler.clone();
        self.invoker = scheduler.clone();
        self.in_process = Some(scheduler);
        self
    }

    /// The in-process scheduler as "dispatch now" only (schedules live elsewhere).
    pub fn in_process_invoker(mut self, scheduler: Arc<InProcessScheduler>) -> Self {
        self.invoker = scheduler.clone();
        self.in_process = Some(scheduler);
        self
    }

    pub fn sender(mut self, sender: Arc<dyn WebhookSender>) -> Self {
        self.sender = sender;
        self
    }

    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn signing_key(mut self, key: &[u8]) -> Self {
        self.signing_key = Some(key.to_vec());
        self
    }

    pub fn build(self) -> Arc<App> {
        let app = Arc::new(App {
            store: self.store,
            keys: KeyStore::new(self.keys),
            scheduler: self.scheduler,
            invoker: self.invoker,
            sender: self.sender,
            endpoint_gate: EndpointGate::default(),
            limiter: self
                .limiter
                .unwrap_or_else(|| RateLimiter::local(self.config.limits)),
            clock: self.clock,
            config: self.config,
            page_tokens: self.signing_key.map(|key| PageTokens::new(&key)),
        });
        if let Some(scheduler) = self.in_process {
            let runner: Weak<dyn JobRunner> = Arc::downgrade(&app) as Weak<App>;
            scheduler.attach(runner);
        }
        app
    }
}
