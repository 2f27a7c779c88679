//! The README's walkthrough ("Try it") works as written: its shell blocks run, in order, in one
//! bash session against one fresh server — the real binary, started with the environment the
//! README's `cargo run` line sets — and every `curl` in them must answer 2xx, or the status its
//! comment names (`# → 409`). `jq -e` checks in the blocks fail the run when an answer is not
//! what the README says. Needs bash, curl, jq and python3, as the README does.

mod common;

use std::process::{Command, Stdio};

use common::binary::Binary;

const README: &str = include_str!("../README.md");
/// What the README's commands name, replaced by the test's own free addresses.
const README_SERVER: &str = "http://127.0.0.1:3000";
const README_RECEIVER_PORT: &str = "8088";
const LIMIT_SECONDS: u32 = 180;

/// The `sh` blocks of the README's "Try it" section, in order.
fn walkthrough_blocks() -> Vec<String> {
    let start = README
        .find("\n## Try it")
        .expect("README has a Try it section");
    let section = &README[start + 1..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let mut blocks = Vec::new();
    let mut rest = section;
    while let Some(open) = rest.find("```sh\n") {
        rest = &rest[open + "```sh\n".len()..];
        let close = rest.find("```").expect("a closed block");
        blocks.push(rest[..close].to_owned());
        rest = &rest[close..];
    }
    blocks
}

/// The `NAME=value` settings in front of the block's `cargo run`.
fn server_environment(block: &str) -> Vec<(String, String)> {
    let command = block.replace("\\\n", " ");
    let line = command
        .lines()
        .find(|line| line.contains("cargo run"))
        .expect("the server block runs cargo run");
    line.split_whitespace()
        .take_while(|word| *word != "cargo")
        .map(|word| {
            let (name, value) = word.split_once('=').expect("NAME=value before cargo run");
            (name.to_owned(), value.to_owned())
        })
        .collect()
}

/// The blocks as one bash script: `curl` wrapped so that its status is checked against the
/// line's `# → NNN` (else 2xx), each answer's body still on stdout for the pipes after it.
fn script(blocks: &[String], base: &str, receiver_port: u16, scratch: &str) -> String {
    let mut script = format!(
        r#"set -euo pipefail
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
__expect() {{ echo "$1" >"{scratch}/expect"; }}
curl() {{
  local expected status
  expected=$(cat "{scratch}/expect" 2>/dev/null || echo 2xx)
  rm -f "{scratch}/expect"
  status=$(command curl -o "{scratch}/body" -w '%{{http_code}}' "$@") || {{ echo "README: curl $* did not connect" >&2; return 1; }}
  cat "{scratch}/body"
  echo "$status $*" >>"{scratch}/statuses"
  case "$expected" in
    2xx) [[ "$status" == 2?? ]] ;;
    *) [[ "$status" == "$expected" ]] ;;
  esac || {{ echo "README: curl $* answered $status, not $expected: $(cat "{scratch}/body")" >&2; return 1; }}
}}
"#
    );
    for block in blocks {
        for line in block.lines() {
            let line = line
                .replace(README_SERVER, base)
                .replace(README_RECEIVER_PORT, &receiver_port.to_string());
            match line.split_once("# → ") {
                Some((_, status)) => {
                    let status = status.trim();
                    assert!(
                        status.len() == 3 && status.bytes().all(|b| b.is_ascii_digit()),
                        "README: `# → {status}` is not a status"
                    );
                    script.push_str(&format!("__expect {status}; {line}\n"));
                }
                None => {
                    script.push_str(&line);
                    script.push('\n');
                }
            }
        }
    }
    script.push_str("echo README-WALKTHROUGH-DONE\n");
    script
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

#[test]
fn the_readme_walkthrough_runs_start_to_finish_with_one_server_start() {
    let blocks = walkthrough_blocks();
    let (server, rest) = blocks.split_first().expect("the walkthrough has blocks");
    assert!(
        rest.iter().all(|block| !block.contains("cargo run")),
        "the walkthrough starts the server once"
    );
    let environment = server_environment(server);
    let environment: Vec<(&str, &str)> = environment
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    let data_dir = tempfile::tempdir().expect("a data directory");
    let binary = Binary::start(data_dir.path(), &environment);
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let scratch_path = scratch.path().to_str().expect("a text path");
    let script = script(rest, &binary.base, free_port(), scratch_path);

    // coreutils' timeout bounds the run: a walkthrough that hangs (a dispatch that never comes)
    // fails instead of blocking the suite.
    let output = Command::new("timeout")
        .arg(LIMIT_SECONDS.to_string())
        .arg("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .output()
        .expect("bash runs");
    let status = output.status;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let statuses = std::fs::read_to_string(scratch.path().join("statuses")).unwrap_or_default();
    assert!(
        status.success() && stdout.contains("README-WALKTHROUGH-DONE"),
        "the README's walkthrough failed ({status}; 124: it ran over {LIMIT_SECONDS} s).\n--- requests:\n{statuses}\n--- stdout:\n{stdout}\n--- stderr:\n{stderr}"
    );
    let requests = statuses.lines().count();
    let curls: usize = rest
        .iter()
        .map(|block| block.matches("curl ").count())
        .sum();
    assert!(
        requests >= curls,
        "{requests} requests answered, the README has {curls} curl commands"
    );
}
