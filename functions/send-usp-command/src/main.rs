//! The USP command sender Lambda: builds the S3, DynamoDB and IoT Data clients once, then serves
//! invocations.

use wme_aws::{DynamoTokenStore, IotDataChannel, S3Artifacts};
use wme_lambda::lambda_runtime::{self, Error, LambdaEvent, service_fn};
use wme_lambda::{Settings, clients, init_tracing, sdk_config};
use wme_workflow::send_command::SendCommandPorts;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let settings = Settings::from_env()?;
    let table = settings.require_token_table()?;
    let bucket = settings.require_firmware_bucket()?;
    let config = sdk_config().await;
    let dynamodb = clients::dynamodb(&config);
    let iot_data = clients::iot_data(&config, settings.iot_data_endpoint.as_deref()).await?;
    let tokens = DynamoTokenStore::new(dynamodb.clone(), table, settings.token_ttl);
    let devices = IotDataChannel::new(iot_data, dynamodb, table);
    let artifacts = S3Artifacts::new(clients::s3(&config), bucket, settings.download_url_ttl);
    let ports = SendCommandPorts {
        tokens: &tokens,
        devices: &devices,
        artifacts: &artifacts,
    };
    let (ports, controller) = (&ports, &settings.controller);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            wme_fn_send_usp_command::handle(ports, controller, event.payload).await
        },
    ))
    .await
}
