//! A dry run stores and reads nothing, so this function builds no `Cloud`: it neither links
//! the DynamoDB client nor loads the AWS configuration at start (its template entry has no
//! permissions; tests/template.rs keeps the two in step).

#[tokio::main]
async fn main() -> Result<(), flowline_lambda::Error> {
    flowline_lambda::logging::init();
    flowline_lambda::run_http(flow_validate::handle).await
}
