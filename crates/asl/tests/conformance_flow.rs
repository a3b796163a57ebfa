//! Conformance: Choice rules, Map (ItemsPath, Parameters/ItemSelector, the Map context
//! object) and Parallel, with the developer guide's examples and stated results. The guide's
//! `ChoiceStateX` example is in `states.rs`.

mod common;
mod conformance;

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};

use common::*;
use conformance::{Func, engine_with};

/// Runs a Choice state with one rule leading to "FirstMatchState" and a Default, and returns
/// the name of the state it chose (or the execution's error).
async fn choose(rule: Value, input: Value) -> String {
    let mut rule = rule;
    rule["Next"] = json!("FirstMatchState");
    let machine = json!({"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [rule], "Default": "DefaultState"},
        "FirstMatchState": {"Type": "Pass", "Result": "FirstMatchState", "End": true},
        "DefaultState": {"Type": "Pass", "Result": "DefaultState", "End": true}
    }});
    match conformance::outcome(run(&engine(), &machine, input).await) {
        Ok(state) => state.as_str().unwrap().to_string(),
        Err((error, _)) => error,
    }
}

#[tokio::test]
async fn choice_rule_numeric_equals() {
    let rule = json!({"Variable": "$.foo", "NumericEquals": 1});
    assert_eq!(
        choose(rule.clone(), json!({"foo": 1})).await,
        "FirstMatchState"
    );
    assert_eq!(choose(rule, json!({"foo": 2})).await, "DefaultState");
}

#[tokio::test]
async fn choice_rule_string_equals() {
    let rule = json!({"Variable": "$.foo", "StringEquals": "MyString"});
    assert_eq!(
        choose(rule.clone(), json!({"foo": "MyString"})).await,
        "FirstMatchState"
    );
    assert_eq!(
        choose(rule, json!({"foo": "mystring"})).await,
        "DefaultState"
    );
}

#[tokio::test]
async fn choice_rule_string_greater_than_compares_like_java_compare_to() {
    let rule = json!({"Variable": "$.foo", "StringGreaterThan": "MyStringABC"});
    assert_eq!(
        choose(rule.clone(), json!({"foo": "MyStringABD"})).await,
        "FirstMatchState"
    );
    assert_eq!(
        choose(rule.clone(), json!({"foo": "MyStringABC"})).await,
        "DefaultState"
    );
    // Upper case sorts before lower case.
    assert_eq!(
        choose(rule, json!({"foo": "MyStringAB"})).await,
        "DefaultState"
    );
}

#[tokio::test]
async fn choice_rule_timestamp_equals() {
    let rule = json!({"Variable": "$.foo", "TimestampEquals": "2001-01-01T12:00:00Z"});
    assert_eq!(
        choose(rule.clone(), json!({"foo": "2001-01-01T12:00:00Z"})).await,
        "FirstMatchState"
    );
    assert_eq!(
        choose(rule, json!({"foo": "2001-01-01T12:00:01Z"})).await,
        "DefaultState"
    );
}

#[tokio::test]
async fn numeric_comparison_does_not_match_a_string_value() {
    let rule = json!({"Variable": "$.foo", "NumericEquals": 1});
    assert_eq!(choose(rule, json!({"foo": "1"})).await, "DefaultState");
}

#[tokio::test]
async fn a_timestamp_field_can_be_matched_by_string_equals() {
    let rule = json!({"Variable": "$.foo", "StringEquals": "2016-08-18T17:33:00Z"});
    assert_eq!(
        choose(rule, json!({"foo": "2016-08-18T17:33:00Z"})).await,
        "FirstMatchState"
    );
}

#[tokio::test]
async fn choice_rule_string_matches_with_a_wildcard() {
    let rule = json!({"Variable": "$.foo", "StringMatches": "log-*.txt"});
    assert_eq!(
        choose(rule.clone(), json!({"foo": "log-2024-01-01.txt"})).await,
        "FirstMatchState"
    );
    assert_eq!(
        choose(rule, json!({"foo": "log-1.csv"})).await,
        "DefaultState"
    );
}

#[tokio::test]
async fn choice_rule_is_present_and_is_null() {
    let present = json!({"Variable": "$.foo", "IsPresent": true});
    assert_eq!(
        choose(present.clone(), json!({"foo": null})).await,
        "FirstMatchState"
    );
    assert_eq!(choose(present, json!({"bar": 1})).await, "DefaultState");
    let null = json!({"Variable": "$.foo", "IsNull": true});
    assert_eq!(choose(null, json!({"foo": null})).await, "FirstMatchState");
}

#[tokio::test]
async fn choice_rule_comparing_two_paths() {
    let rule = json!({"Variable": "$.foo", "NumericLessThanEqualsPath": "$.bar"});
    assert_eq!(
        choose(rule.clone(), json!({"foo": 3, "bar": 3})).await,
        "FirstMatchState"
    );
    assert_eq!(
        choose(rule, json!({"foo": 4, "bar": 3})).await,
        "DefaultState"
    );
}

#[tokio::test]
async fn choice_example_input_value_22_goes_to_value_in_twenties() {
    let rules = json!([
        {"Not": {"Variable": "$.type", "StringEquals": "Private"}, "Next": "Public"},
        {"Variable": "$.value", "NumericEquals": 0, "Next": "ValueIsZero"},
        {"And": [
            {"Variable": "$.value", "NumericGreaterThanEquals": 20},
            {"Variable": "$.value", "NumericLessThan": 30}
        ], "Next": "ValueInTwenties"}
    ]);
    let machine = json!({"StartAt": "ChoiceStateX", "States": {
        "ChoiceStateX": {"Type": "Choice", "Choices": rules, "Default": "DefaultState"},
        "Public": {"Type": "Pass", "Result": "Public", "End": true},
        "ValueIsZero": {"Type": "Pass", "Result": "ValueIsZero", "End": true},
        "ValueInTwenties": {"Type": "Pass", "Result": "ValueInTwenties", "End": true},
        "DefaultState": {"Type": "Fail", "Cause": "No Matches!"}
    }});
    let done = run(&engine(), &machine, json!({"type": "Private", "value": 22})).await;
    assert_eq!(done.output, Some(json!("ValueInTwenties")));
}

#[tokio::test]
async fn choice_on_a_missing_variable_fails_the_execution() {
    // "If the state input doesn't contain the $.type field, the execution fails."
    let rule = json!({"Not": {"Variable": "$.type", "StringEquals": "Private"}});
    assert_eq!(choose(rule, json!({"value": 22})).await, "States.Runtime");
}

const SHIP_VAL: &str = "arn:aws:lambda:us-east-1:123456789012:function:ship-val";

fn shipment() -> Value {
    json!({
        "ship-date": "2016-03-14T01:59:00Z",
        "detail": {
            "delivery-partner": "UQS",
            "shipped": [
                {"prod": "R31", "dest-code": 9511, "quantity": 1344},
                {"prod": "S39", "dest-code": 9511, "quantity": 40},
                {"prod": "R31", "dest-code": 9833, "quantity": 12},
                {"prod": "R40", "dest-code": 9860, "quantity": 887},
                {"prod": "R40", "dest-code": 9511, "quantity": 1220}
            ]
        }
    })
}

/// Stands in for the guide's `ship-val` Lambda: marks what it validated.
fn ship_val() -> Arc<Func> {
    Func::new(|item| Ok(json!({"validated": item})))
}

fn validate_all(extra: Value) -> Value {
    let mut state = json!({
        "Type": "Map",
        "InputPath": "$.detail",
        "ItemsPath": "$.shipped",
        "MaxConcurrency": 0,
        "Iterator": {"StartAt": "Validate", "States": {
            "Validate": {"Type": "Task", "Resource": SHIP_VAL, "End": true}
        }},
        "ResultPath": "$.detail.shipped",
        "End": true
    });
    for (key, value) in extra.as_object().unwrap() {
        state[key] = value.clone();
    }
    json!({"StartAt": "Validate-All", "States": {"Validate-All": state}})
}

fn sorted(mut values: Vec<Value>) -> Vec<Value> {
    values.sort_by_key(|v| v.to_string());
    values
}

#[tokio::test]
async fn map_state_example_runs_the_iterator_once_per_item() {
    let ship = ship_val();
    let engine = engine_with(SHIP_VAL, ship.clone());
    let done = run(&engine, &validate_all(json!({})), shipment()).await;
    let items = shipment()["detail"]["shipped"].as_array().unwrap().clone();
    assert_eq!(sorted(ship.inputs()), sorted(items.clone()));
    let mut expected = shipment();
    expected["detail"]["shipped"] =
        Value::Array(items.into_iter().map(|i| json!({"validated": i})).collect());
    assert_eq!(done.output, Some(expected));
}

#[tokio::test]
async fn map_state_example_with_parameters_adds_the_courier() {
    let ship = ship_val();
    let engine = engine_with(SHIP_VAL, ship.clone());
    let parameters = json!({"Parameters": {
        "parcel.$": "$$.Map.Item.Value",
        "courier.$": "$.delivery-partner"
    }});
    let done = run(&engine, &validate_all(parameters), shipment()).await;
    let items = shipment()["detail"]["shipped"].as_array().unwrap().clone();
    let inputs: Vec<Value> = items
        .iter()
        .map(|i| json!({"parcel": i, "courier": "UQS"}))
        .collect();
    assert_eq!(sorted(ship.inputs()), sorted(inputs.clone()));
    let mut expected = shipment();
    expected["detail"]["shipped"] = Value::Array(
        inputs
            .into_iter()
            .map(|i| json!({"validated": i}))
            .collect(),
    );
    assert_eq!(done.output, Some(expected));
}

#[tokio::test]
async fn map_item_selector_and_item_processor_work_like_parameters_and_iterator() {
    let ship = ship_val();
    let engine = engine_with(SHIP_VAL, ship.clone());
    let machine = json!({"StartAt": "Validate-All", "States": {"Validate-All": {
        "Type": "Map",
        "ItemsPath": "$.detail.shipped",
        "ItemSelector": {"parcel.$": "$$.Map.Item.Value", "courier.$": "$.detail.delivery-partner"},
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "INLINE"},
            "StartAt": "Validate",
            "States": {"Validate": {"Type": "Task", "Resource": SHIP_VAL, "End": true}}
        },
        "ResultPath": "$.detail.shipped",
        "End": true
    }}});
    let done = run(&engine, &machine, shipment()).await;
    let shipped = &done.output.unwrap()["detail"]["shipped"];
    assert_eq!(
        shipped[0],
        json!({"validated": {"parcel": {"prod": "R31", "dest-code": 9511, "quantity": 1344}, "courier": "UQS"}})
    );
    assert_eq!(shipped.as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn items_path_selects_which_array_to_iterate() {
    let machine = json!({"StartAt": "PiratesSay", "States": {"PiratesSay": {
        "Type": "Map",
        "ItemsPath": "$.ThingsPiratesSay",
        "Iterator": {"StartAt": "SayWord", "States": {"SayWord": {"Type": "Pass", "End": true}}},
        "End": true
    }}});
    let input = json!({
        "ThingsPiratesSay": [{"say": "Avast!"}, {"say": "Yar!"}, {"say": "Walk the Plank!"}],
        "ThingsGiantsSay": [{"say": "Fee!"}, {"say": "Fi!"}, {"say": "Fo!"}, {"say": "Fum!"}]
    });
    let done = run(&engine(), &machine, input).await;
    assert_eq!(
        done.output,
        Some(json!([{"say": "Avast!"}, {"say": "Yar!"}, {"say": "Walk the Plank!"}]))
    );
}

#[tokio::test]
async fn map_context_object_index_and_value() {
    let machine = json!({"StartAt": "ExampleMapState", "States": {"ExampleMapState": {
        "Type": "Map",
        "Parameters": {"ContextIndex.$": "$$.Map.Item.Index", "ContextValue.$": "$$.Map.Item.Value"},
        "Iterator": {"StartAt": "TestPass", "States": {"TestPass": {"Type": "Pass", "End": true}}},
        "End": true
    }}});
    let input = json!([{"who": "bob"}, {"who": "meg"}, {"who": "joe"}]);
    let done = run(&engine(), &machine, input).await;
    assert_eq!(
        done.output,
        Some(json!([
            {"ContextValue": {"who": "bob"}, "ContextIndex": 0},
            {"ContextValue": {"who": "meg"}, "ContextIndex": 1},
            {"ContextValue": {"who": "joe"}, "ContextIndex": 2}
        ]))
    );
}

#[tokio::test]
async fn map_max_concurrency_1_runs_items_in_order() {
    let order = Func::new(|item| Ok(item.clone()));
    let engine = engine_with(SHIP_VAL, order.clone());
    let machine = json!({"StartAt": "M", "States": {"M": {
        "Type": "Map", "MaxConcurrency": 1,
        "Iterator": {"StartAt": "V", "States": {"V": {"Type": "Task", "Resource": SHIP_VAL, "End": true}}},
        "End": true
    }}});
    let done = run(&engine, &machine, json!([3, 1, 2])).await;
    assert_eq!(order.inputs(), [json!(3), json!(1), json!(2)]);
    assert_eq!(done.output, Some(json!([3, 1, 2])));
}

const ADD: &str = "arn:aws:swf:us-east-1:123456789012:task:Add";
const SUBTRACT: &str = "arn:aws:swf:us-east-1:123456789012:task:Subtract";

#[tokio::test]
async fn parallel_fun_with_math_outputs_one_element_per_branch() {
    let engine = engine();
    let add = Func::new(|n| Ok(json!(n[0].as_i64().unwrap() + n[1].as_i64().unwrap())));
    let subtract = Func::new(|n| Ok(json!(n[0].as_i64().unwrap() - n[1].as_i64().unwrap())));
    engine.register(ADD, add.clone());
    engine.register(SUBTRACT, subtract.clone());
    let branch = |name: &str, resource: &str| json!({"StartAt": name, "States": {name: {"Type": "Task", "Resource": resource, "End": true}}});
    let machine = json!({"Comment": "Parallel Example.", "StartAt": "FunWithMath", "States": {
        "FunWithMath": {"Type": "Parallel", "End": true,
            "Branches": [branch("Add", ADD), branch("Subtract", SUBTRACT)]}
    }});
    let done = run(&engine, &machine, json!([3, 2])).await;
    assert_eq!(add.inputs(), [json!([3, 2])]);
    assert_eq!(subtract.inputs(), [json!([3, 2])]);
    assert_eq!(done.output, Some(json!([5, 1])));
}

#[tokio::test]
async fn parallel_output_array_can_be_placed_with_result_path() {
    let branch = |name: &str, result: &str| json!({"StartAt": name, "States": {name: {"Type": "Pass", "Result": result, "End": true}}});
    let machine = json!({"StartAt": "LookupCustomerInfo", "States": {
        "LookupCustomerInfo": {"Type": "Parallel", "End": true, "ResultPath": "$.lookups",
            "Branches": [branch("LookupAddress", "address"), branch("LookupPhone", "phone")]}
    }});
    let done = run(&engine(), &machine, json!({"customer": 7})).await;
    assert_eq!(
        done.output,
        Some(json!({"customer": 7, "lookups": ["address", "phone"]}))
    );
}

#[test]
fn a_parallel_branch_state_cannot_transition_outside_its_branch() {
    // "A state in one branch of a Parallel state must not have a Next field that targets a
    // field outside of that branch."
    let machine = json!({"StartAt": "P", "States": {
        "P": {"Type": "Parallel", "Next": "After", "Branches": [
            {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "After"}}}
        ]},
        "After": {"Type": "Succeed"}
    }});
    let err = engine()
        .create_state_machine("m", &machine.to_string(), &HashMap::new())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid state machine definition (1 problem(s)):\n  /States/P/Branches/0/States/A/Next: \"After\" is not a state in this block"
    );
}
