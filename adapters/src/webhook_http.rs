//! The webhook sender: one HTTP POST per attempt, with reqwest. Targets are checked again at
//! connect time: the client resolves names through [`PublicOnlyResolver`], which answers only
//! public addresses, literal addresses are checked before connecting, and redirects are answers,
//! never followed — so neither a changed DNS answer nor a redirect reaches inside.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use flowline_core::webhooks::sender::{Attempt, MAX_ANSWER_BYTES, WebhookSender};
use flowline_core::webhooks::target;

/// Makes the AWS SDK's crypto provider (aws-lc-rs) the process's default for rustls, which
/// reqwest builds its TLS configuration with: one TLS and crypto stack per process. Any reqwest
/// client of the process needs it; calling it again changes nothing.
pub fn install_tls_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

pub struct HttpSender {
    /// Built on the first delivery: most functions never deliver, and loading TLS roots is
    /// start-up time they should not pay.
    client: std::sync::OnceLock<reqwest::Client>,
    allow_private: bool,
}

impl HttpSender {
    pub fn new(allow_private: bool) -> Self {
        Self {
            client: std::sync::OnceLock::new(),
            allow_private,
        }
    }

    fn client(&self) -> &reqwest::Client {
        self.client.get_or_init(|| {
            install_tls_provider();
            let mut builder = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .user_agent(concat!("Flowline-Webhooks/", env!("CARGO_PKG_VERSION")));
            if !self.allow_private {
                builder = builder.dns_resolver(std::sync::Arc::new(PublicOnlyResolver));
            }
            builder.build().expect("the webhook HTTP client builds")
        })
    }
}

#[async_trait]
impl WebhookSender for HttpSender {
    async fn post(
        &self,
        url: &str,
        headers: Vec<(&'static str, String)>,
        body: Bytes,
        timeout: Duration,
    ) -> Attempt {
        let parsed = match target::check_url_form(url, self.allow_private) {
            Ok(parsed) => parsed,
            Err(message) => return Attempt::Failed(format!("refused target: {message}")),
        };
        // The resolver guards names; literal addresses never reach it.
        if !self.allow_private
            && let Some(host) = parsed.host_str()
            && let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse()
            && !target::is_public_ip(ip)
        {
            return Attempt::Failed("refused target: non-public address".to_owned());
        }
        let mut request = self
            .client()
            .post(parsed)
            .timeout(timeout)
            .header("content-type", "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) if err.is_timeout() => return Attempt::Failed("timeout".to_owned()),
            Err(err) if err.is_connect() => return Attempt::Failed("connection failed".to_owned()),
            Err(_) => return Attempt::Failed("request failed".to_owned()),
        };
        let status = response.status().as_u16();
        let mut body = Vec::new();
        let mut response = response;
        loop {
            match tokio::time::timeout(timeout, response.chunk()).await {
                Ok(Ok(Some(chunk))) if body.len() + chunk.len() <= MAX_ANSWER_BYTES => {
                    body.extend_from_slice(&chunk)
                }
                // An answer too long, too slow or broken still counts by its status.
                _ => break,
            }
        }
        Attempt::Answered {
            status,
            body: body.into(),
        }
    }
}

/// The delivery client's resolver: answers only public addresses (or refuses the host).
pub struct PublicOnlyResolver;

impl reqwest::dns::Resolve for PublicOnlyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses = target::resolve(&host, 0).await?;
            if addresses.is_empty()
                || addresses
                    .iter()
                    .any(|addr| !target::is_public_ip(addr.ip()))
            {
                let refused: Box<dyn std::error::Error + Send + Sync> =
                    format!("{host} resolves to a non-public address").into();
                return Err(refused);
            }
            let addrs: reqwest::dns::Addrs = Box::new(addresses.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A loopback listener that counts the connections it accepts and answers every request
    /// with `reply` (a raw HTTP/1.1 response).
    struct Listener {
        port: u16,
        connections: Arc<AtomicUsize>,
    }

    impl Listener {
        async fn start(reply: String) -> Self {
            let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = socket.local_addr().unwrap().port();
            let connections = Arc::new(AtomicUsize::new(0));
            let counted = connections.clone();
            tokio::spawn(async move {
                while let Ok((mut stream, _)) = socket.accept().await {
                    counted.fetch_add(1, Ordering::SeqCst);
                    let reply = reply.clone();
                    tokio::spawn(async move {
                        read_request(&mut stream).await;
                        let _ = stream.write_all(reply.as_bytes()).await;
                        let _ = stream.shutdown().await;
                    });
                }
            });
            Self { port, connections }
        }

        fn connections(&self) -> usize {
            self.connections.load(Ordering::SeqCst)
        }
    }

    /// Reads one request (head and `Content-Length` body), or until the peer stops sending.
    async fn read_request(stream: &mut tokio::net::TcpStream) {
        let mut seen = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let read = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut chunk)).await;
            let Ok(Ok(n)) = read else { return };
            if n == 0 {
                return;
            }
            seen.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&seen);
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|line| {
                        let (name, value) = line.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if seen.len() >= end + 4 + length {
                    return;
                }
            }
        }
    }

    fn ok_reply() -> String {
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}".to_owned()
    }

    async fn post(sender: &HttpSender, url: &str) -> Attempt {
        sender
            .post(
                url,
                vec![("webhook-id", "evt_test".to_owned())],
                Bytes::from_static(b"{}"),
                Duration::from_secs(5),
            )
            .await
    }

    /// Gives a connection that should not happen the time to happen anyway.
    async fn settle() {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    #[tokio::test]
    async fn a_guarded_sender_refuses_loopback_without_connecting() {
        let listener = Listener::start(ok_reply()).await;
        let sender = HttpSender::new(false);
        for url in [
            format!("http://127.0.0.1:{}/hook", listener.port),
            format!("https://127.0.0.1:{}/hook", listener.port),
            format!("https://localhost:{}/hook", listener.port),
            format!("https://[::ffff:127.0.0.1]:{}/hook", listener.port),
            format!("https://2130706433:{}/hook", listener.port),
        ] {
            let outcome = post(&sender, &url).await;
            assert!(matches!(outcome, Attempt::Failed(_)), "{url}: {outcome:?}");
        }
        settle().await;
        assert_eq!(listener.connections(), 0, "no connection was even opened");
    }

    #[tokio::test]
    async fn an_allowing_sender_reaches_loopback() {
        let listener = Listener::start(ok_reply()).await;
        let sender = HttpSender::new(true);
        let outcome = post(&sender, &format!("http://127.0.0.1:{}/hook", listener.port)).await;
        assert_eq!(
            outcome,
            Attempt::Answered {
                status: 200,
                body: Bytes::from_static(b"{}")
            }
        );
        assert_eq!(listener.connections(), 1);

        // Over https the plain listener cannot complete a handshake, but it was reached.
        let outcome = post(
            &sender,
            &format!("https://127.0.0.1:{}/hook", listener.port),
        )
        .await;
        assert!(matches!(outcome, Attempt::Failed(_)), "{outcome:?}");
        settle().await;
        assert_eq!(listener.connections(), 2);
    }

    #[tokio::test]
    async fn redirects_are_answers_not_followed() {
        let elsewhere = Listener::start(ok_reply()).await;
        let redirecting = Listener::start(format!(
            "HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:{}/inside\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            elsewhere.port
        ))
        .await;
        let sender = HttpSender::new(true);
        let outcome = post(
            &sender,
            &format!("http://127.0.0.1:{}/hook", redirecting.port),
        )
        .await;
        assert!(
            matches!(outcome, Attempt::Answered { status: 302, .. }),
            "{outcome:?}"
        );
        settle().await;
        assert_eq!(redirecting.connections(), 1);
        assert_eq!(elsewhere.connections(), 0, "the redirect was not followed");
    }

    #[tokio::test]
    async fn the_delivery_resolver_refuses_local_names() {
        use reqwest::dns::{Name, Resolve};
        use std::str::FromStr;

        for host in ["localhost", "localhost.", "127.0.0.1", "::1"] {
            let resolved = PublicOnlyResolver
                .resolve(Name::from_str(host).unwrap())
                .await;
            assert!(resolved.is_err(), "{host} was resolved");
        }
        // A public address passes (a literal, so no DNS is asked).
        let resolved = PublicOnlyResolver
            .resolve(Name::from_str("93.184.216.34").unwrap())
            .await
            .expect("a public address resolves");
        let addresses: Vec<SocketAddr> = resolved.collect();
        assert_eq!(addresses.len(), 1);
        assert_eq!(addresses[0].ip().to_string(), "93.184.216.34");
    }
}
