//! `GET /` → `hello`, on FLOOR_ADDR (default 127.0.0.1:3900).
use axum::{Router, routing::get};

#[tokio::main]
async fn main() {
    let addr = std::env::var("FLOOR_ADDR").unwrap_or_else(|_| "127.0.0.1:3900".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    let app = Router::new().route("/", get(|| async { "hello" }));
    axum::serve(listener, app).await.expect("serve");
}
