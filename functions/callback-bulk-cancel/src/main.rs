use flowline_lambda::Cloud;

#[tokio::main]
async fn main() -> Result<(), flowline_lambda::Error> {
    let app = Cloud::from_env().await?.with_scheduler()?.app();
    flowline_lambda::run_http(|request| callback_bulk_cancel::handle(&app, request)).await
}
