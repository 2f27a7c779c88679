//! The fault proxy as a process, for scripts and out-of-process tests:
//!
//! ```sh
//! flowline-fault-proxy --upstream http://127.0.0.1:PORT [--listen 127.0.0.1:0]
//! ```
//!
//! prints `export FAULT_PROXY_URL=http://127.0.0.1:PORT` as its first line, then serves the
//! proxy and its control API (`/__proxy/`, see the library's docs) until killed.
//! `--upstream` defaults to `$AWS_ENDPOINT_URL`.

use std::io::Write;
use std::net::SocketAddr;

use flowline_fault_proxy::FaultProxy;

const USAGE: &str = "usage: flowline-fault-proxy --upstream http://HOST:PORT [--listen ADDR:PORT]";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut upstream = std::env::var("AWS_ENDPOINT_URL").ok();
    let mut listen = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match (flag.as_str(), args.next()) {
            ("--upstream", Some(url)) => upstream = Some(url),
            ("--listen", Some(address)) => {
                listen = address.parse().unwrap_or_else(|_| exit(USAGE));
            }
            _ => exit(USAGE),
        }
    }
    let upstream = upstream.unwrap_or_else(|| exit(USAGE));
    let proxy = FaultProxy::start_on(listen, &upstream)
        .await
        .unwrap_or_else(|error| exit(&format!("flowline-fault-proxy: {error}")));
    let mut stdout = std::io::stdout();
    // Scripts read the first line (and may stop reading there), so it goes out at once.
    let _ = writeln!(stdout, "export FAULT_PROXY_URL={}", proxy.url());
    let _ = stdout.flush();
    let _ = tokio::signal::ctrl_c().await;
}

fn exit(message: &str) -> ! {
    eprintln!("{message}");
    std::process::exit(2)
}
