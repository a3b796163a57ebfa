//! The JobsCreateJob Lambda: builds the IoT clients once, then serves invocations.

use wme_aws::IotJobs;
use wme_lambda::lambda_runtime::{self, Error, LambdaEvent, service_fn};
use wme_lambda::{clients, init_tracing, sdk_config};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let config = sdk_config().await;
    let jobs = IotJobs::new(
        clients::iot(&config),
        clients::iot_jobs_data_regional(&config),
    );
    let jobs = &jobs;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            wme_fn_create_job::handle(jobs, event.payload).await
        },
    ))
    .await
}
