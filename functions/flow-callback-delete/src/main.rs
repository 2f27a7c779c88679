#[tokio::main]
async fn main() -> Result<(), flowline_core::lambda::Error> {
    let app = flowline_core::lambda::start().await?;
    flowline_core::lambda::run_http(|request| flow_callback_delete::handle(&app, request)).await
}
