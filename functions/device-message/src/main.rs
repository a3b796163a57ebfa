//! The device-message Lambda: builds the DynamoDB, Step Functions and IoT Data clients once, then
//! serves the IoT rule's invocations.

use wme_aws::{DynamoTokenStore, IotDataChannel, SfnCallbacks};
use wme_lambda::lambda_runtime::{self, Error, LambdaEvent, service_fn};
use wme_lambda::{Settings, clients, init_tracing, sdk_config};
use wme_workflow::device_message::DeviceMessagePorts;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let settings = Settings::from_env()?;
    let table = settings.require_token_table()?;
    let config = sdk_config().await;
    let dynamodb = clients::dynamodb(&config);
    let iot_data = clients::iot_data(&config, settings.iot_data_endpoint.as_deref()).await?;
    let tokens = DynamoTokenStore::new(dynamodb.clone(), table, settings.token_ttl);
    let callbacks = SfnCallbacks::new(clients::sfn(&config));
    let devices = IotDataChannel::new(iot_data, dynamodb, table);
    let ports = DeviceMessagePorts {
        tokens: &tokens,
        callbacks: &callbacks,
        devices: &devices,
    };
    let (ports, controller) = (&ports, &settings.controller);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            wme_fn_device_message::handle(ports, controller, event.payload).await
        },
    ))
    .await
}
