//! The proxy: HTTP/1.1 with keep-alive on both sides, each request forwarded, faulted, or both.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, HeaderMap, HeaderName};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::call::Call;
use crate::capacity;
use crate::control;
use crate::rules::{Fault, When};
use crate::state::State;
use crate::tokens::Repeat;
use crate::wire::{self, Answer};

pub(crate) struct Proxy {
    pub(crate) state: Arc<State>,
    /// `scheme://host:port` of the upstream, without a trailing slash.
    upstream: String,
    client: Client<HttpConnector, Full<Bytes>>,
    log: bool,
}

impl Proxy {
    pub(crate) fn new(upstream: &str, state: Arc<State>) -> Self {
        Self {
            state,
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            log: std::env::var_os("FAULT_PROXY_LOG").is_some(),
        }
    }

    pub(crate) async fn serve(self: Arc<Self>, listener: TcpListener) {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors, say: wait rather than spin.
                    eprintln!("fault-proxy: accept: {error}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(self.clone().connection(stream));
        }
    }

    async fn connection(self: Arc<Self>, stream: TcpStream) {
        let reset = Arc::new(AtomicBool::new(false));
        let io = TokioIo::new(ResettableStream {
            stream,
            reset: reset.clone(),
        });
        let service = service_fn(move |request| {
            let (proxy, reset) = (self.clone(), reset.clone());
            async move {
                // In its own task, so that a client giving up (a timeout) does not cancel a
                // forward under way: what reached the upstream is applied, as in AWS.
                match tokio::spawn(proxy.handle(request)).await {
                    Ok(Some(answer)) => Ok(answer),
                    Ok(None) | Err(_) => {
                        reset.store(true, Ordering::Relaxed);
                        Err(ConnectionReset)
                    }
                }
            }
        });
        // A service error makes hyper drop the connection without an answer.
        let _ = http1::Builder::new().serve_connection(io, service).await;
    }

    /// The answer to one request; `None` resets the connection.
    async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Option<Answer> {
        let (parts, body) = request.into_parts();
        let body = body.collect().await.ok()?.to_bytes();
        let path = parts.uri.path();
        if path.starts_with(control::PREFIX) {
            return Some(control::answer(&self.state, &parts.method, path, &body));
        }
        let call = Call::recognise(&parts.method, path, &parts.headers);
        let picked = self.state.pick(&call);
        if self.log {
            eprintln!(
                "fault-proxy: {} {} -> {}.{} {:?}",
                parts.method, parts.uri, call.service, call.operation, picked
            );
        }
        let Some((when, fault)) = picked else {
            return Some(self.forward(&call, parts, body).await);
        };
        let forwarded = match (when, &fault) {
            (When::Before, Fault::Delay { ms }) => {
                tokio::time::sleep(Duration::from_millis(*ms)).await;
                return Some(self.forward(&call, parts, body).await);
            }
            (When::Before, _) => None,
            (When::After, _) => Some(self.forward(&call, parts, body.clone()).await),
        };
        match fault {
            Fault::Delay { ms } => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                forwarded
            }
            Fault::Reset => None,
            Fault::TransactionCanceled { reason, item } => {
                Some(wire::transaction_canceled(&body, &reason, item))
            }
            Fault::Error {
                code,
                status,
                message,
            } => Some(wire::error(
                &call.service,
                &code,
                status,
                message.as_deref(),
            )),
            Fault::Status { status } => Some(wire::bare_status(status)),
        }
    }

    /// The upstream's answer to the request, buffered; a 502 when it cannot be reached.
    async fn forward(&self, call: &Call, parts: http::request::Parts, body: Bytes) -> Answer {
        match self.state.tokens.repeat(call, &body) {
            Some(Repeat::Applied(answer)) => {
                self.state.counts().of(call).forwarded += 1;
                return wire::json_answer(200, answer);
            }
            Some(Repeat::Mismatch) => {
                return wire::error(
                    "dynamodb",
                    "IdempotentParameterMismatchException",
                    None,
                    None,
                );
            }
            None => {}
        }
        let asked = capacity::ask(call, &body);
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let original = body.clone();
        let mut request = Request::builder()
            .method(parts.method)
            .uri(format!("{}{path}", self.upstream))
            .body(Full::new(asked.clone().unwrap_or(body)))
            .expect("a valid request");
        *request.headers_mut() = end_to_end(parts.headers);
        let answered = match self.client.request(request).await {
            Ok(response) => {
                let (parts, body) = response.into_parts();
                body.collect().await.map(|body| (parts, body.to_bytes()))
            }
            Err(error) => return self.unreachable(error),
        };
        let (mut parts, mut body) = match answered {
            Ok(answered) => answered,
            Err(error) => return self.unreachable(error),
        };
        if parts.status.is_success() {
            self.state.tokens.record(call, &original, &body);
        }
        let mut counts = self.state.counts();
        counts.of(call).forwarded += 1;
        if call.service == "dynamodb"
            && parts.status.is_success()
            && let Some(rewritten) = capacity::record(&mut counts, call, asked.is_some(), &body)
        {
            body = rewritten;
            // The checksum of a body the proxy changed would be wrong.
            parts.headers.remove("x-amz-crc32");
        }
        parts.headers = end_to_end(parts.headers);
        Response::from_parts(parts, Full::new(body))
    }

    fn unreachable(&self, error: impl std::fmt::Display) -> Answer {
        eprintln!("fault-proxy: upstream {}: {error}", self.upstream);
        Response::builder()
            .status(502)
            .header("content-type", "text/plain")
            .body(Full::new(Bytes::from(format!(
                "fault-proxy: upstream {} unreachable: {error}",
                self.upstream
            ))))
            .expect("a valid response")
    }
}

/// Headers without the hop-by-hop ones, which belong to each connection (the emulator closes
/// its connections; the client's stay open), and without a length hyper sets from the body.
fn end_to_end(mut headers: HeaderMap) -> HeaderMap {
    const HOP_BY_HOP: [&str; 8] = [
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
    ];
    for name in HOP_BY_HOP {
        headers.remove(HeaderName::from_static(name));
    }
    headers.remove("upgrade");
    headers.remove(CONTENT_LENGTH);
    headers
}

#[derive(Debug)]
struct ConnectionReset;

impl std::fmt::Display for ConnectionReset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection reset by a fault rule")
    }
}

impl std::error::Error for ConnectionReset {}

/// A client connection that, when told to, closes with `SO_LINGER` 0: the kernel then sends a
/// TCP RST rather than a FIN, as a crashed or overloaded front end does.
struct ResettableStream {
    stream: TcpStream,
    reset: Arc<AtomicBool>,
}

impl Drop for ResettableStream {
    fn drop(&mut self) {
        if self.reset.load(Ordering::Relaxed) {
            let _ = self.stream.set_zero_linger();
        }
    }
}

impl AsyncRead for ResettableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResettableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
