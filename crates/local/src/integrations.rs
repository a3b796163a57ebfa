//! The service integrations the local engine offers to state machines: `lambda:invoke` (with
//! `.waitForTaskToken`) on the local functions, and the AWS SDK integrations for the IoT registry
//! (`aws-sdk:iot:searchIndex`, `describeThing`, `updateThing`) on the local registry, each
//! answering in the shape and with the error names Step Functions uses.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};
use wme_asl::{TaskCall, TaskFailure, TaskHandler};
use wme_workflow::ports::{CallbackError, TaskCallbacks};

use crate::fleet_query::QueryError;
use crate::functions::Functions;
use crate::registry::{Registry, RegistryError};

/// The `lambda:invoke` resource.
pub const LAMBDA_INVOKE: &str = "arn:aws:states:::lambda:invoke";
/// Fleet-index search.
pub const IOT_SEARCH_INDEX: &str = "arn:aws:states:::aws-sdk:iot:searchIndex";
/// Thing description.
pub const IOT_DESCRIBE_THING: &str = "arn:aws:states:::aws-sdk:iot:describeThing";
/// Thing update.
pub const IOT_UPDATE_THING: &str = "arn:aws:states:::aws-sdk:iot:updateThing";

/// Invokes local functions for `arn:aws:states:::lambda:invoke`.
pub struct LambdaInvoke {
    /// The functions.
    pub functions: Arc<Functions>,
}

fn failure(error: &str, cause: impl Into<String>) -> TaskFailure {
    TaskFailure {
        error: error.into(),
        cause: cause.into(),
    }
}

/// The function name in a `FunctionName` parameter: a name, a partial or a full ARN, with or
/// without a version qualifier.
pub fn function_name(parameter: &str) -> &str {
    match parameter.split_once(":function:") {
        Some((_, rest)) => rest.split(':').next().unwrap_or(rest),
        None => parameter.split(':').next().unwrap_or(parameter),
    }
}

#[async_trait]
impl TaskHandler for LambdaInvoke {
    async fn invoke(&self, call: TaskCall) -> Result<Value, TaskFailure> {
        let Some(name) = call.parameters.get("FunctionName").and_then(Value::as_str) else {
            return Err(failure(
                "States.Runtime",
                format!(
                    "state `{}`: lambda:invoke needs a string FunctionName",
                    call.state_name
                ),
            ));
        };
        let payload = call
            .parameters
            .get("Payload")
            .cloned()
            .unwrap_or_else(|| json!({}));
        match self.functions.invoke(function_name(name), payload).await {
            Ok(output) => {
                Ok(json!({"ExecutedVersion": "$LATEST", "Payload": output, "StatusCode": 200}))
            }
            Err(e) => {
                let cause = json!({"errorType": e.error_type, "errorMessage": e.message});
                Err(failure(&e.error_type, cause.to_string()))
            }
        }
    }
}

/// The IoT registry SDK integrations.
pub struct IotRegistry {
    /// The registry.
    pub registry: Arc<Registry>,
}

#[async_trait]
impl TaskHandler for IotRegistry {
    async fn invoke(&self, call: TaskCall) -> Result<Value, TaskFailure> {
        let base = call
            .resource
            .split(".waitForTaskToken")
            .next()
            .unwrap_or(&call.resource);
        match base {
            IOT_SEARCH_INDEX => self.search_index(&call.parameters),
            IOT_DESCRIBE_THING => self.describe_thing(&call.parameters),
            IOT_UPDATE_THING => self.update_thing(&call.parameters),
            other => Err(failure(
                "States.Runtime",
                format!("unsupported resource `{other}`"),
            )),
        }
    }
}

impl IotRegistry {
    fn search_index(&self, params: &Value) -> Result<Value, TaskFailure> {
        let index = params
            .get("IndexName")
            .and_then(Value::as_str)
            .unwrap_or("AWS_Things");
        if index != "AWS_Things" {
            return Err(failure(
                "Iot.ResourceNotFoundException",
                format!("index `{index}` does not exist; the local registry indexes AWS_Things"),
            ));
        }
        let query = required_str(params, "QueryString")?;
        let max = params
            .get("MaxResults")
            .and_then(Value::as_u64)
            .unwrap_or(500) as usize;
        let things = self.registry.search(query, max).map_err(|e| match e {
            RegistryError::InvalidQuery(QueryError::UnsupportedField { .. }) => {
                failure("Iot.InvalidQueryException", e.to_string())
            }
            other => failure("Iot.InvalidQueryException", other.to_string()),
        })?;
        let things: Vec<Value> = things.iter().map(|t| t.search_result()).collect();
        Ok(json!({"Things": things, "ThingGroups": []}))
    }

    fn describe_thing(&self, params: &Value) -> Result<Value, TaskFailure> {
        let name = required_str(params, "ThingName")?;
        let thing = self.registry.describe_thing(name).map_err(not_found)?;
        Ok(json!({
            "ThingName": thing.name,
            "Attributes": thing.attributes,
            "Version": thing.version,
        }))
    }

    fn update_thing(&self, params: &Value) -> Result<Value, TaskFailure> {
        let name = required_str(params, "ThingName")?;
        let attributes = params
            .pointer("/AttributePayload/Attributes")
            .and_then(Value::as_object)
            .ok_or_else(|| {
                failure(
                    "Iot.InvalidRequestException",
                    "AttributePayload.Attributes is required",
                )
            })?;
        let merge = params
            .pointer("/AttributePayload/Merge")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if !merge {
            return Err(failure(
                "Iot.InvalidRequestException",
                "the local registry supports AttributePayload.Merge = true only",
            ));
        }
        let mut values = BTreeMap::new();
        for (key, value) in attributes {
            let Some(text) = value.as_str() else {
                return Err(failure(
                    "Iot.InvalidRequestException",
                    format!("attribute `{key}` must be a string, got {value}"),
                ));
            };
            values.insert(key.clone(), text.to_string());
        }
        self.registry
            .merge_attributes(name, &values)
            .map_err(not_found)?;
        Ok(json!({}))
    }
}

fn required_str<'a>(params: &'a Value, field: &str) -> Result<&'a str, TaskFailure> {
    params.get(field).and_then(Value::as_str).ok_or_else(|| {
        failure(
            "Iot.InvalidRequestException",
            format!("`{field}` is required and must be a string"),
        )
    })
}

fn not_found(e: RegistryError) -> TaskFailure {
    failure("Iot.ResourceNotFoundException", e.to_string())
}

/// The engine's task callbacks behind the workflow's port.
pub struct EngineCallbacks {
    /// The engine.
    pub engine: Arc<wme_asl::Engine>,
}

fn callback_error(e: wme_asl::CallbackError) -> CallbackError {
    match e {
        wme_asl::CallbackError::InvalidToken(t) => CallbackError::InvalidToken(t),
        wme_asl::CallbackError::TaskDoesNotExist(t) => CallbackError::TaskDoesNotExist(t),
        wme_asl::CallbackError::TaskTimedOut(t) => CallbackError::TaskTimedOut(t),
        wme_asl::CallbackError::InvalidOutput(t) => CallbackError::Unavailable(t),
    }
}

#[async_trait]
impl TaskCallbacks for EngineCallbacks {
    async fn send_task_success(&self, token: &str, output: Value) -> Result<(), CallbackError> {
        self.engine
            .send_task_success(token, output)
            .map_err(callback_error)
    }

    async fn send_task_failure(
        &self,
        token: &str,
        error: &str,
        cause: &str,
    ) -> Result<(), CallbackError> {
        self.engine
            .send_task_failure(token, error, cause)
            .map_err(callback_error)
    }

    async fn send_task_heartbeat(&self, token: &str) -> Result<(), CallbackError> {
        self.engine
            .send_task_heartbeat(token)
            .map_err(callback_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_name_accepts_names_and_arns() {
        assert_eq!(function_name("SendUspCommand"), "SendUspCommand");
        assert_eq!(
            function_name("arn:aws:lambda:local:000000000000:function:SendUspCommand"),
            "SendUspCommand"
        );
        assert_eq!(
            function_name("arn:aws:lambda:local:000000000000:function:SendUspCommand:$LATEST"),
            "SendUspCommand"
        );
    }
}
