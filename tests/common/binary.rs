//! The real `flowline` binary (`cargo run`'s), started as a user starts it: none of the
//! developer's `FLOWLINE_*` settings, a free port, and a data directory the test names (the
//! default store is the persistent one, and `.flowline` in the working directory is nobody's
//! business in a test).

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

/// The binary, with none of the developer's `FLOWLINE_*` settings.
pub fn command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_flowline"));
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("FLOWLINE_")) {
        command.env_remove(name);
    }
    command
}

/// A running server; killed (if still running) when dropped.
pub struct Binary {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// What it printed on stdout up to "listening on", then on as it runs.
    output: Arc<Mutex<Vec<String>>>,
}

impl Binary {
    /// Starts the binary on `data_dir` with `env` and waits until it listens. Panics with what
    /// it said if it stops instead.
    pub fn start(data_dir: &Path, env: &[(&str, &str)]) -> Self {
        let mut command = command();
        command
            .env("FLOWLINE_ADDR", "127.0.0.1:0")
            .env("FLOWLINE_DATA_DIR", data_dir)
            .env("RUST_LOG", "warn");
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut lines = Vec::new();
        let base = loop {
            let mut line = String::new();
            if stdout.read_line(&mut line).expect("read stdout") == 0 {
                let mut stderr = String::new();
                let _ = child
                    .stderr
                    .take()
                    .expect("stderr")
                    .read_to_string(&mut stderr);
                let _ = child.wait();
                panic!("the server stopped before listening: {lines:#?}\n{stderr}");
            }
            let line = line.trim_end().to_owned();
            let listening = line
                .split_once("listening on ")
                .map(|(_, url)| url.to_owned());
            lines.push(line);
            if let Some(url) = listening {
                break url;
            }
        };
        // Read on as it runs: a full pipe would stop the server at its next line.
        let output = Arc::new(Mutex::new(lines));
        let more = output.clone();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                more.lock().unwrap().push(line);
            }
        });
        Self {
            child,
            base,
            output,
        }
    }

    /// Every line it printed on stdout so far.
    pub fn lines(&self) -> Vec<String> {
        self.output.lock().unwrap().clone()
    }

    /// The text after `label` on the line that has it (e.g. a printed key).
    pub fn printed(&self, label: &str) -> Option<String> {
        self.lines().iter().find_map(|line| {
            line.split_once(label)
                .map(|(_, rest)| rest.trim().to_owned())
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9`: gone at once, whatever it was doing.
    pub fn kill(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reaped");
    }

    /// A polite stop (SIGTERM, as a service manager sends): it finishes and closes its data
    /// directory cleanly. Answers whether it exited successfully.
    pub fn stop(mut self) -> bool {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM runs");
        assert!(sent.success(), "SIGTERM delivered");
        self.child.wait().expect("it exits").success()
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
