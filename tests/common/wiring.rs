//! Applications wired as the Lambda functions wire theirs: what a function's `main` asks of
//! `flowline_lambda::Cloud`, read from its source, built on embedded parts. A handler run on
//! [`Rig::wired`] fails as it would in the cloud if its route needs a port its `main` forgot.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use flowline_core::App;
use flowline_core::config::Config;
use flowline_core::scheduler::in_process::InProcessScheduler;
use flowline_core::scheduler::{DispatchInvoker, Scheduler};
use flowline_core::store::Table;
use flowline_core::store::memory::MemoryTable;
use flowline_core::time::Clock;
use flowline_core::webhooks::sender::WebhookSender;

/// The ports a function's `main` wires into its application: its `Cloud` builder calls.
pub fn wiring(function: &str) -> BTreeSet<&'static str> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("functions")
        .join(function)
        .join("src/main.rs");
    let main = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path:?}: {err}"));
    [
        "with_page_tokens",
        "with_scheduler",
        "with_dispatch_invoker",
        "with_webhooks",
    ]
    .into_iter()
    .filter(|call| main.contains(&format!(".{call}(")))
    .collect()
}

/// One set of tables, one clock, one timer wheel and one sender, shared by every function's
/// application, as the cloud's functions share a table and a schedule group.
pub struct Rig {
    store: Arc<dyn Table>,
    keys: Arc<dyn Table>,
    clock: Arc<dyn Clock>,
    timers: Arc<InProcessScheduler>,
    /// What a function that wires the scheduler (the invoker) gets: the timers, unless a test
    /// put something in front of them ([`Rig::with_ports`]).
    scheduler: Arc<dyn Scheduler>,
    invoker: Arc<dyn DispatchInvoker>,
    sender: Arc<dyn WebhookSender>,
    config: Config,
    signing_key: Vec<u8>,
    /// Every port wired (what the local server runs); the timers run their jobs on it, as
    /// EventBridge Scheduler runs them on the dispatch function.
    full: Arc<App>,
}

impl Rig {
    pub fn new(
        clock: Arc<dyn Clock>,
        sender: Arc<dyn WebhookSender>,
        config: Config,
        signing_key: &[u8],
    ) -> Self {
        Self::on_tables(
            Arc::new(MemoryTable::new()),
            Arc::new(MemoryTable::new()),
            clock,
            sender,
            config,
            signing_key,
        )
    }

    /// The same on tables of the test's choosing (e.g. DynamoDB on the emulator, or tables
    /// that count their calls).
    pub fn on_tables(
        store: Arc<dyn Table>,
        keys: Arc<dyn Table>,
        clock: Arc<dyn Clock>,
        sender: Arc<dyn WebhookSender>,
        config: Config,
        signing_key: &[u8],
    ) -> Self {
        let timers = Arc::new(InProcessScheduler::new(clock.clone()));
        let full = App::builder(store.clone(), keys.clone(), config.clone())
            .clock(clock.clone())
            .in_process(timers.clone())
            .sender(sender.clone())
            .signing_key(signing_key)
            .build();
        Self {
            store,
            keys,
            clock,
            scheduler: timers.clone(),
            invoker: timers.clone(),
            timers,
            sender,
            config,
            signing_key: signing_key.to_vec(),
            full,
        }
    }

    /// Puts `scheduler` and `invoker` where the functions that wire them get the timers (the
    /// full application keeps the timers).
    pub fn with_ports(
        mut self,
        scheduler: Arc<dyn Scheduler>,
        invoker: Arc<dyn DispatchInvoker>,
    ) -> Self {
        self.scheduler = scheduler;
        self.invoker = invoker;
        self
    }

    /// The application `function`'s `main` builds: the shared tables and clock, and only the
    /// ports it wires.
    pub fn wired(&self, function: &str) -> Arc<App> {
        let wired = wiring(function);
        let mut builder = App::builder(self.store.clone(), self.keys.clone(), self.config.clone())
            .clock(self.clock.clone());
        if wired.contains("with_page_tokens") {
            builder = builder.signing_key(&self.signing_key);
        }
        if wired.contains("with_scheduler") {
            builder = builder.scheduler(self.scheduler.clone());
        }
        if wired.contains("with_dispatch_invoker") {
            builder = builder.invoker(self.invoker.clone());
        }
        if wired.contains("with_webhooks") {
            builder = builder.sender(self.sender.clone());
        }
        builder.build()
    }

    /// Every port wired.
    pub fn full(&self) -> &Arc<App> {
        &self.full
    }

    /// The timers the scheduler ports share.
    pub fn timers(&self) -> &Arc<InProcessScheduler> {
        &self.timers
    }
}
