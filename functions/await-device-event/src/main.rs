//! The event waiter Lambda: builds the DynamoDB and Step Functions clients once, then serves
//! invocations.

use wme_aws::{DynamoTokenStore, SfnCallbacks};
use wme_lambda::lambda_runtime::{self, Error, LambdaEvent, service_fn};
use wme_lambda::{Settings, clients, init_tracing, sdk_config};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let settings = Settings::from_env()?;
    let table = settings.require_token_table()?;
    let config = sdk_config().await;
    let tokens = DynamoTokenStore::new(clients::dynamodb(&config), table, settings.token_ttl);
    let callbacks = SfnCallbacks::new(clients::sfn(&config));
    let (tokens, callbacks) = (&tokens, &callbacks);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            wme_fn_await_device_event::handle(tokens, callbacks, event.payload).await
        },
    ))
    .await
}
