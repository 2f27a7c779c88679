use flowline_lambda::Cloud;

#[tokio::main]
async fn main() -> Result<(), flowline_lambda::Error> {
    let app = Cloud::from_env().await?.app();
    flowline_lambda::run_http(|request| suppression_get::handle(&app, request)).await
}
