//! The job-status updater Lambda: builds the IoT clients once, then serves invocations.

use wme_aws::IotJobs;
use wme_lambda::lambda_runtime::{self, Error, LambdaEvent, service_fn};
use wme_lambda::{Settings, clients, init_tracing, sdk_config};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let settings = Settings::from_env()?;
    let config = sdk_config().await;
    let jobs_data = clients::iot_jobs_data(&config, settings.iot_jobs_endpoint.as_deref()).await?;
    let jobs = IotJobs::new(clients::iot(&config), jobs_data);
    let jobs = &jobs;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            wme_fn_update_job_execution::handle(jobs, event.payload).await
        },
    ))
    .await
}
