//! Conformance: the developer guide's and the ASL specification's examples for input and
//! output processing (paths, InputPath, Parameters, ResultPath, OutputPath) and the context
//! object, each with the result the documentation states. The guide's `$.lambda` example,
//! its ResultSelector example and `ResultPath: null` are in `input_output.rs`.

mod common;
mod conformance;

use std::sync::Arc;

use serde_json::{Value, json};

use common::*;
use conformance::{Func, engine_with, pass_parameters, pass_state};

const HELLO: &str = "arn:aws:states:::test:hello";

/// The guide's "Creating a Lambda State Machine" function: greets `$.who`.
fn hello_engine() -> Arc<wme_asl::Engine> {
    let hello = Func::new(|input| {
        Ok(json!(format!(
            "Hello, {}!",
            input["who"].as_str().unwrap_or_default()
        )))
    });
    engine_with(HELLO, hello)
}

fn hello_machine(result_path: Option<&str>) -> Value {
    let mut state = json!({"Type": "Task", "Resource": HELLO, "End": true});
    if let Some(path) = result_path {
        state["ResultPath"] = json!(path);
    }
    json!({"StartAt": "HelloWorld", "States": {"HelloWorld": state}})
}

fn tutorial_input() -> Value {
    json!({
        "comment": "This is a test of the input and output of a Task state.",
        "details": "Default example",
        "who": "AWS Step Functions"
    })
}

#[tokio::test]
async fn reference_paths_select_single_nodes() {
    let input = json!({"foo": 123, "bar": ["a", "b", "c"], "car": {"cdr": true}});
    let out = pass_parameters(
        json!({"foo.$": "$.foo", "bar.$": "$.bar", "cdr.$": "$.car.cdr"}),
        input,
    )
    .await
    .unwrap();
    assert_eq!(
        out,
        json!({"foo": 123, "bar": ["a", "b", "c"], "cdr": true})
    );
}

#[tokio::test]
async fn input_path_can_yield_a_selection_of_values() {
    let out = pass_state(json!({"InputPath": "$.a[0:2]"}), json!({"a": [1, 2, 3, 4]})).await;
    assert_eq!(out, Ok(json!([1, 2])));
}

#[tokio::test]
async fn input_path_selects_a_portion_of_the_input() {
    let input = json!({
        "comment": "Example for InputPath.",
        "dataset1": {"val1": 1, "val2": 2, "val3": 3},
        "dataset2": {"val1": "a", "val2": "b", "val3": "c"}
    });
    let out = pass_state(json!({"InputPath": "$.dataset2"}), input).await;
    assert_eq!(out, Ok(json!({"val1": "a", "val2": "b", "val3": "c"})));
}

#[tokio::test]
async fn parameters_mix_static_values_and_paths() {
    let input = json!({
        "comment": "Example for Parameters.",
        "product": {
            "details": {"color": "blue", "size": "small", "material": "cotton"},
            "availability": "in stock",
            "sku": "2317",
            "cost": "$23"
        }
    });
    let parameters = json!({
        "comment": "Selecting what I care about.",
        "MyDetails": {
            "size.$": "$.product.details.size",
            "exists.$": "$.product.availability",
            "StaticValue": "foo"
        }
    });
    let out = pass_parameters(parameters, input).await;
    assert_eq!(
        out,
        Ok(json!({
            "comment": "Selecting what I care about.",
            "MyDetails": {"size": "small", "exists": "in stock", "StaticValue": "foo"}
        }))
    );
}

fn numbers_machine(output_path: &str) -> Value {
    json!({"StartAt": "Add", "States": {"Add": {
        "Type": "Task", "Resource": HELLO,
        "InputPath": "$.numbers", "ResultPath": "$.sum", "OutputPath": output_path,
        "End": true
    }}})
}

fn adder() -> Arc<Func> {
    Func::new(|n| {
        Ok(json!(
            n["val1"].as_i64().unwrap() + n["val2"].as_i64().unwrap()
        ))
    })
}

#[tokio::test]
async fn input_path_result_path_and_output_path_numbers_to_add() {
    let add = adder();
    let engine = engine_with(HELLO, add.clone());
    let input = json!({"title": "Numbers to add", "numbers": {"val1": 3, "val2": 4}});
    let done = run(&engine, &numbers_machine("$"), input).await;
    assert_eq!(add.inputs(), [json!({"val1": 3, "val2": 4})]);
    assert_eq!(
        done.output,
        Some(json!({"title": "Numbers to add", "numbers": {"val1": 3, "val2": 4}, "sum": 7}))
    );
}

#[tokio::test]
async fn output_path_can_select_just_the_result() {
    let engine = engine_with(HELLO, adder());
    let input = json!({"numbers": {"val1": 3, "val2": 4}});
    let done = run(&engine, &numbers_machine("$.sum"), input).await;
    assert_eq!(done.output, Some(json!(7)));
}

#[tokio::test]
async fn output_path_null_sends_an_empty_object() {
    let out = pass_state(json!({"OutputPath": null}), json!({"a": 1})).await;
    assert_eq!(out, Ok(json!({})));
}

#[tokio::test]
async fn result_path_default_replaces_the_input_with_the_result() {
    let engine = hello_engine();
    let done = run(&engine, &hello_machine(None), tutorial_input()).await;
    assert_eq!(done.output, Some(json!("Hello, AWS Step Functions!")));
    let done = run(&engine, &hello_machine(Some("$")), tutorial_input()).await;
    assert_eq!(done.output, Some(json!("Hello, AWS Step Functions!")));
}

#[tokio::test]
async fn result_path_includes_the_result_with_the_input() {
    let done = run(
        &hello_engine(),
        &hello_machine(Some("$.taskresult")),
        tutorial_input(),
    )
    .await;
    let mut expected = tutorial_input();
    expected["taskresult"] = json!("Hello, AWS Step Functions!");
    assert_eq!(done.output, Some(expected));
}

#[tokio::test]
async fn result_path_inserts_the_result_as_a_child_node() {
    let input = json!({
        "comment": "An input comment.",
        "strings": {"string1": "foo", "string2": "bar", "string3": "baz"},
        "who": "AWS Step Functions"
    });
    let machine = hello_machine(Some("$.strings.lambdaresult"));
    let done = run(&hello_engine(), &machine, input).await;
    assert_eq!(
        done.output,
        Some(json!({
            "comment": "An input comment.",
            "strings": {
                "string1": "foo", "string2": "bar", "string3": "baz",
                "lambdaresult": "Hello, AWS Step Functions!"
            },
            "who": "AWS Step Functions"
        }))
    );
}

#[tokio::test]
async fn result_path_updates_an_existing_node() {
    let done = run(
        &hello_engine(),
        &hello_machine(Some("$.comment")),
        tutorial_input(),
    )
    .await;
    let mut expected = tutorial_input();
    expected["comment"] = json!("Hello, AWS Step Functions!");
    assert_eq!(done.output, Some(expected));
}

#[tokio::test]
async fn result_path_in_a_catch_keeps_the_input_with_the_error() {
    let engine = engine_with(HELLO, Script::new(vec![fail("Error here", "details")]));
    let machine = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": HELLO, "End": true,
              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "NextTask", "ResultPath": "$.error"}]},
        "NextTask": {"Type": "Pass", "End": true}
    }});
    let done = run(&engine, &machine, json!({"foo": "bar"})).await;
    assert_eq!(
        done.output,
        Some(json!({"foo": "bar", "error": {"Error": "Error here", "Cause": "details"}}))
    );
}

#[tokio::test]
async fn context_object_execution_id_in_nested_parameters() {
    let engine = engine_with(ECHO, Arc::new(Echo));
    let machine = json!({"StartAt": "Order Flight Ticket Queue", "States": {
        "Order Flight Ticket Queue": {
            "Type": "Task", "Resource": ECHO,
            "Parameters": {
                "QueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/flight-purchase",
                "MessageBody": {"From": "YVR", "To": "SEA", "Execution.$": "$$.Execution.Id"}
            },
            "End": true
        }
    }});
    let done = run(&engine, &machine, json!({})).await;
    assert_eq!(
        done.output,
        Some(json!({
            "QueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/flight-purchase",
            "MessageBody": {"From": "YVR", "To": "SEA", "Execution": done.execution_arn}
        }))
    );
}

#[tokio::test]
async fn context_object_has_the_documented_format() {
    let engine = engine();
    let machine = json!({"StartAt": "Test", "States": {"Test": {
        "Type": "Pass", "Parameters": {"context.$": "$$"}, "End": true
    }}});
    let arn = create(&engine, &machine);
    let exec = engine
        .start_execution(&arn, Some("executionName"), json!({"key": "value"}))
        .await
        .unwrap();
    let done = engine.wait_for_execution(&exec).await.unwrap();
    let context = &done.output.unwrap()["context"];
    assert_eq!(context["Execution"]["Id"], json!(exec));
    assert_eq!(context["Execution"]["Input"], json!({"key": "value"}));
    assert_eq!(context["Execution"]["Name"], "executionName");
    assert_eq!(context["State"]["Name"], "Test");
    assert_eq!(context["State"]["RetryCount"], 0);
    assert_eq!(context["StateMachine"]["Id"], json!(arn));
    assert_eq!(context["StateMachine"]["Name"], "test");
    for time in [
        &context["Execution"]["StartTime"],
        &context["State"]["EnteredTime"],
    ] {
        let text = time.as_str().expect("an ISO 8601 string");
        assert!(chrono::DateTime::parse_from_rfc3339(text).is_ok(), "{text}");
    }
}
