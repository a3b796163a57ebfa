//! Input and output processing end to end, with the developer guide's examples.

mod common;

use std::sync::Arc;

use serde_json::json;
use wme_asl::ExecutionStatus;

use common::*;

#[tokio::test(start_paused = true)]
async fn input_path_result_path_and_output_path_example() {
    let engine = engine();
    engine.register(
        SCRIPT,
        Script::new(vec![Ok(json!("Hello, AWS Step Functions!"))]),
    );
    let machine = json!({"StartAt": "HelloWorld", "States": {"HelloWorld": {
        "Type": "Task", "Resource": SCRIPT,
        "InputPath": "$.lambda", "ResultPath": "$.data.lambdaresult", "OutputPath": "$.data",
        "End": true
    }}});
    let input = json!({
        "comment": "An input comment.",
        "data": {"val1": 23, "val2": 17},
        "extra": "foo",
        "lambda": {"who": "AWS Step Functions"}
    });
    let done = run(&engine, &machine, input).await;
    assert_eq!(
        done.output,
        Some(json!({"val1": 23, "val2": 17, "lambdaresult": "Hello, AWS Step Functions!"}))
    );
}

#[tokio::test(start_paused = true)]
async fn handler_receives_the_input_after_input_path_and_parameters() {
    let engine = engine();
    let script = Script::new(vec![Ok(json!({}))]);
    engine.register(SCRIPT, script.clone());
    let machine = json!({"StartAt": "T", "States": {"T": {
        "Type": "Task", "Resource": SCRIPT, "InputPath": "$.lambda",
        "Parameters": {"greeting.$": "States.Format('Hello, {}!', $.who)", "fixed": [1, {"k.$": "$.who"}]},
        "End": true
    }}});
    run(
        &engine,
        &machine,
        json!({"lambda": {"who": "AWS Step Functions"}}),
    )
    .await;
    let calls = script.calls.lock().unwrap();
    assert_eq!(
        calls[0].1.parameters,
        json!({"greeting": "Hello, AWS Step Functions!", "fixed": [1, {"k": "AWS Step Functions"}]})
    );
}

#[tokio::test(start_paused = true)]
async fn result_selector_example_from_the_guide() {
    let engine = engine();
    let result = json!({
        "resourceType": "elasticmapreduce",
        "resource": "createCluster.sync",
        "output": {
            "SdkHttpMetadata": {"HttpStatusCode": 200},
            "SdkResponseMetadata": {"RequestId": "1234-5678-9012"},
            "ClusterId": "AKIAIOSFODNN7EXAMPLE"
        }
    });
    engine.register(SCRIPT, Script::new(vec![Ok(result)]));
    let machine = json!({"StartAt": "T", "States": {"T": {
        "Type": "Task", "Resource": format!("{SCRIPT}.sync"),
        "ResultSelector": {"ClusterId.$": "$.output.ClusterId", "ResourceType.$": "$.resourceType"},
        "ResultPath": "$.EMROutput",
        "End": true
    }}});
    let done = run(&engine, &machine, json!({"cluster": "c"})).await;
    assert_eq!(
        done.output,
        Some(
            json!({"cluster": "c", "EMROutput": {"ClusterId": "AKIAIOSFODNN7EXAMPLE", "ResourceType": "elasticmapreduce"}})
        )
    );
}

#[tokio::test(start_paused = true)]
async fn result_path_null_keeps_the_original_input() {
    let engine = engine();
    engine.register(ECHO, Arc::new(Echo));
    let machine = json!({"StartAt": "T", "States": {"T": {
        "Type": "Task", "Resource": ECHO, "Parameters": {"ignored": true}, "ResultPath": null, "End": true
    }}});
    let input =
        json!({"comment": "This is a test", "details": "Default example", "who": "Step Functions"});
    let done = run(&engine, &machine, input.clone()).await;
    assert_eq!(done.output, Some(input));
}

#[tokio::test(start_paused = true)]
async fn input_path_and_output_path_null_give_empty_objects() {
    let engine = engine();
    engine.register(ECHO, Arc::new(Echo));
    let machine = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": ECHO, "InputPath": null, "ResultPath": "$.r", "Next": "O"},
        "O": {"Type": "Pass", "OutputPath": null, "End": true}
    }});
    let done = run(&engine, &machine, json!({"a": 1})).await;
    assert_eq!(done.output, Some(json!({})));
    let history = engine.history(&done.execution_arn).unwrap();
    let exited: Vec<_> = history
        .iter()
        .filter(|e| e.event_type() == "TaskStateExited")
        .collect();
    assert!(
        matches!(&exited[0].details, wme_asl::EventDetails::StateExited { output, .. } if output == &json!({"a": 1, "r": {}}))
    );
}

#[tokio::test(start_paused = true)]
async fn result_path_into_a_non_object_fails_with_result_path_match_failure() {
    let engine = engine();
    engine.register(ECHO, Arc::new(Echo));
    let machine = json!({"StartAt": "T", "States": {"T": {
        "Type": "Task", "Resource": ECHO, "ResultPath": "$.name.first", "End": true
    }}});
    let done = run(&engine, &machine, json!({"name": "Ada"})).await;
    assert_eq!(done.status, ExecutionStatus::Failed);
    assert_eq!(done.error.as_deref(), Some("States.ResultPathMatchFailure"));
}

#[tokio::test(start_paused = true)]
async fn missing_input_path_fails_with_states_runtime() {
    let machine = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "InputPath": "$.nope", "End": true}}});
    let done = run(&engine(), &machine, json!({"a": 1})).await;
    assert_eq!(done.error.as_deref(), Some("States.Runtime"));
    assert_eq!(
        done.cause.as_deref(),
        Some(
            "An error occurred while executing the state 'P' (entered at the event id #2). Invalid path '$.nope' : No results for path in InputPath: the input was {\"a\":1}"
        )
    );
}

#[tokio::test(start_paused = true)]
async fn intrinsic_failure_fails_the_state_with_its_cause() {
    let machine = json!({"StartAt": "P", "States": {"P": {
        "Type": "Pass", "Parameters": {"n.$": "States.ArrayLength($.s)"}, "End": true
    }}});
    let done = run(&engine(), &machine, json!({"s": "text"})).await;
    assert_eq!(done.error.as_deref(), Some("States.IntrinsicFailure"));
    assert_eq!(
        done.cause.as_deref(),
        Some("States.ArrayLength: argument 1 must be an array, got a string")
    );
}

#[tokio::test(start_paused = true)]
async fn query_paths_in_parameters_return_arrays() {
    let machine = json!({"StartAt": "P", "States": {"P": {
        "Type": "Pass", "Parameters": {"ids.$": "$.items[*].id", "big.$": "$.items[?(@.size > 5)].id"}, "End": true
    }}});
    let input = json!({"items": [{"id": "a", "size": 3}, {"id": "b", "size": 9}]});
    let done = run(&engine(), &machine, input).await;
    assert_eq!(done.output, Some(json!({"ids": ["a", "b"], "big": ["b"]})));
}
