//! Loading definitions: substitutions, validation with JSON pointers, unsupported features.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::json;
use wme_asl::{LoadError, ValidationError};

use common::*;

fn problems(engine: &wme_asl::Engine, definition: serde_json::Value) -> Vec<(String, String)> {
    match engine.create_state_machine("m", &definition.to_string(), &HashMap::new()) {
        Err(LoadError::Invalid(errors)) => errors
            .into_iter()
            .map(|ValidationError { pointer, message }| (pointer, message))
            .collect(),
        other => panic!("expected validation errors, got {other:?}"),
    }
}

#[test]
fn substitutions_are_applied_before_parsing() {
    let engine = engine();
    engine.register(ECHO, Arc::new(Echo));
    let definition = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "${EchoArn}", "End": true}}});
    let subs = HashMap::from([("EchoArn".to_string(), ECHO.to_string())]);
    let arn = engine
        .create_state_machine("m", &definition.to_string(), &subs)
        .unwrap();
    assert_eq!(arn, "arn:aws:states:local:000000000000:stateMachine:m");
}

#[test]
fn unresolved_substitution_is_named() {
    let definition = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "${Missing}", "End": true}}});
    let found = problems(&engine(), definition);
    assert_eq!(
        found,
        [(
            "/States/T/Resource".to_string(),
            "unresolved substitution ${Missing}: no definition substitution named \"Missing\""
                .to_string()
        )]
    );
}

#[test]
fn task_without_handler_is_rejected_naming_state_and_resource() {
    let definition = json!({"StartAt": "Publish", "States": {"Publish": {
        "Type": "Task", "Resource": "arn:aws:states:::aws-sdk:iot:publish.waitForTaskToken", "End": true
    }}});
    let found = problems(&engine(), definition);
    assert_eq!(
        found,
        [(
            "/States/Publish/Resource".to_string(),
            "state \"Publish\" uses resource \"arn:aws:states:::aws-sdk:iot:publish.waitForTaskToken\", but no handler is registered for \"arn:aws:states:::aws-sdk:iot:publish\"".to_string()
        )]
    );
}

#[test]
fn every_problem_is_reported_with_its_pointer() {
    let definition = json!({
        "StartAt": "A",
        "Bogus": 1,
        "States": {
            "A": {"Type": "Pass", "Next": "Nowhere", "ResultPath": "$.a[*]"},
            "B": {"Type": "Pass", "End": true, "Seconds": 3},
            "C": {"Type": "Choice", "Choices": [{"Variable": "$.x", "NumericEquals": "1", "Next": "B"}]},
            "D": {"Type": "Wait", "Seconds": 1},
            "E": {"Type": "Pass", "Parameters": {"x.$": "States.Nope()"}, "End": true},
            "F": {"Type": "Task", "Resource": ECHO, "End": true,
                  "Retry": [{"ErrorEquals": ["States.ALL", "X"]}, {"ErrorEquals": ["Y"]}]}
        }
    });
    let engine = engine();
    engine.register(ECHO, Arc::new(Echo));
    let mut found = problems(&engine, definition);
    found.sort();
    let expected: Vec<(String, String)> = [
        ("/Bogus", "field \"Bogus\" is not valid in the top level of a state machine"),
        ("/States/A/Next", "\"Nowhere\" is not a state in this block"),
        ("/States/A/ResultPath", "invalid path \"$.a[*]\": a reference path may only contain field names and array indexes"),
        ("/States/B", "state \"B\" is not reachable from StartAt \"A\""),
        ("/States/B/Seconds", "field \"Seconds\" is not valid in a Pass state"),
        ("/States/C", "state \"C\" is not reachable from StartAt \"A\""),
        ("/States/C/Choices/0/NumericEquals", "\"NumericEquals\" must be a number, got \"1\""),
        ("/States/D", "a state needs \"Next\" or \"End\": true"),
        ("/States/D", "state \"D\" is not reachable from StartAt \"A\""),
        ("/States/E", "state \"E\" is not reachable from StartAt \"A\""),
        ("/States/E/Parameters/x.$", "invalid intrinsic function \"States.Nope()\": unknown function States.Nope at character 0"),
        ("/States/F", "state \"F\" is not reachable from StartAt \"A\""),
        ("/States/F/Retry/0/ErrorEquals", "\"States.ALL\" must appear alone in \"ErrorEquals\""),
        ("/States/F/Retry/0/ErrorEquals", "a retrier or catcher with \"States.ALL\" must be the last one"),
    ]
    .iter()
    .map(|(p, m)| (p.to_string(), m.to_string()))
    .collect();
    assert_eq!(found, expected);
}

#[test]
fn load_error_display_lists_all_problems() {
    let definition = json!({"StartAt": "X", "States": {"A": {"Type": "Succeed"}}});
    let err = engine()
        .create_state_machine("m", &definition.to_string(), &HashMap::new())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid state machine definition (1 problem(s)):\n  /StartAt: StartAt names \"X\", which is not a state in this block"
    );
}

#[test]
fn jsonata_is_refused_clearly() {
    let definition = json!({"QueryLanguage": "JSONata", "StartAt": "A", "States": {"A": {"Type": "Pass", "Output": "{% 1 %}", "End": true}}});
    let found = problems(&engine(), definition);
    assert_eq!(
        found,
        [
            (
                "/QueryLanguage".to_string(),
                "QueryLanguage JSONata is not supported; use JSONPath".to_string()
            ),
            (
                "/States/A/Output".to_string(),
                "field \"Output\" belongs to the JSONata query language, which is not supported"
                    .to_string()
            ),
        ]
    );
}

#[test]
fn distributed_map_is_refused_clearly() {
    let definition = json!({"StartAt": "M", "States": {"M": {"Type": "Map", "End": true,
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                          "StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}}}});
    let found = problems(&engine(), definition);
    assert_eq!(
        found,
        [(
            "/States/M/ItemProcessor/ProcessorConfig/Mode".to_string(),
            "distributed Map (Mode DISTRIBUTED) is not supported by this engine; use Mode INLINE"
                .to_string()
        )]
    );
}

#[test]
fn nested_blocks_are_validated_with_their_pointers() {
    let definition = json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": [
        {"StartAt": "X", "States": {"X": {"Type": "Pass", "Next": "Y"}}}
    ]}}});
    let found = problems(&engine(), definition);
    assert_eq!(
        found,
        [(
            "/States/P/Branches/0/States/X/Next".to_string(),
            "\"Y\" is not a state in this block".to_string()
        )]
    );
}

#[test]
fn malformed_json_is_reported() {
    let err = engine()
        .create_state_machine("m", "{", &HashMap::new())
        .unwrap_err();
    assert!(matches!(err, LoadError::Json(_)));
}

#[test]
fn engine_futures_are_send_so_servers_can_spawn_them() {
    fn assert_send<T: Send>(_: &T) {}
    let engine = engine();
    let start = engine.start_execution("arn", None, json!({}));
    assert_send(&start);
    let wait = engine.wait_for_execution("arn");
    assert_send(&wait);
    fn assert_sync<T: Send + Sync>() {}
    assert_sync::<wme_asl::Engine>();
}
