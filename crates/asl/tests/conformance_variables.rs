//! Conformance: workflow variables (`Assign`, `$name` references) in JSONPath states, with the
//! examples of the developer guide's "Passing data between states with variables" page and of
//! the Amazon States Language specification's "State Machine Variables", "Using Assign",
//! "Choice State" and "Fallback states" sections, each with the result the text states. Where an
//! example is written in JSONata, it is translated to the JSONPath form the same text defines
//! (`"name.$": "$path"`).

mod common;
mod conformance;

use std::collections::HashMap;

use serde_json::{Value, json};

use common::*;
use conformance::{Func, engine_with, outcome};
use wme_asl::{EventDetails, LoadError, ValidationError};

const API: &str = "arn:aws:states:::test:api";

/// Runs a machine on `input` and returns its output or `(error, cause)`.
async fn run_machine(machine: Value, input: Value) -> Result<Value, (String, String)> {
    outcome(run(&engine(), &machine, input).await)
}

/// The `assignedVariables` of every exit of state `name`, in order.
fn assigned_by(engine: &wme_asl::Engine, arn: &str, name: &str) -> Vec<HashMap<String, String>> {
    let history = engine.history(arn).unwrap();
    history
        .iter()
        .filter_map(|e| match &e.details {
            EventDetails::StateExited {
                name: n, assigned, ..
            } if n == name => Some(
                assigned
                    .as_deref()
                    .map(|a| a.assigned_variables.clone().into_iter().collect())
                    .unwrap_or_default(),
            ),
            _ => None,
        })
        .collect()
}

fn load_problems(machine: Value) -> Vec<(String, String)> {
    let engine = engine();
    match engine.create_state_machine("m", &machine.to_string(), &HashMap::new()) {
        Err(LoadError::Invalid(errors)) => errors
            .into_iter()
            .map(|ValidationError { pointer, message }| (pointer, message))
            .collect(),
        other => panic!("expected validation errors, got {other:?}"),
    }
}

/// Guide, "States that support variables": the `Assign` object of the page, referenced later
/// as `$productName` and so on.
#[tokio::test]
async fn assigned_values_are_referenced_with_a_dollar_sign_in_later_states() {
    let machine = json!({"StartAt": "Store", "States": {
        "Store": {"Type": "Pass", "Assign": {
            "productName": "product1", "count": 42, "available": true
        }, "Next": "Use"},
        "Use": {"Type": "Pass", "Parameters": {
            "name.$": "$productName", "count.$": "$count", "available.$": "$available"
        }, "End": true}
    }});
    assert_eq!(
        run_machine(machine, json!({})).await,
        Ok(json!({"name": "product1", "count": 42, "available": true}))
    );
}

/// Guide, "Evaluation order in an assign field": starting values `$x=3, $a=6`; the field
/// `{"x": $a, "nextX": $x}` ends with `$x=6, $nextX=3`.
#[tokio::test]
async fn all_expressions_of_an_assign_field_are_evaluated_before_any_assignment() {
    let machine = json!({"StartAt": "Start", "States": {
        "Start": {"Type": "Pass", "Assign": {"x": 3, "a": 6}, "Next": "Swap"},
        "Swap": {"Type": "Pass", "Assign": {"x.$": "$a", "nextX.$": "$x"}, "Next": "Show"},
        "Show": {"Type": "Pass", "Parameters": {"x.$": "$x", "nextX.$": "$nextX"}, "End": true}
    }});
    assert_eq!(
        run_machine(machine, json!({})).await,
        Ok(json!({"x": 6, "nextX": 3}))
    );
}

/// Guide, same section: "If `$x` had not been previously assigned, the example would fail
/// because `$x` would be undefined."
#[tokio::test]
async fn the_evaluation_order_example_fails_when_x_was_never_assigned() {
    let machine = json!({"StartAt": "Start", "States": {
        "Start": {"Type": "Pass", "Assign": {"a": 6}, "Next": "Swap"},
        "Swap": {"Type": "Pass", "Assign": {"x.$": "$a", "nextX.$": "$x"}, "End": true}
    }});
    let (error, cause) = run_machine(machine, json!({})).await.unwrap_err();
    assert_eq!(error, "States.Runtime");
    assert_eq!(
        cause,
        "An error occurred while executing the state 'Swap' (entered at the event id #4). the \
         variable 'x' read by the path '$x' in the field \"nextX.$\" in Assign has no value: no \
         state of its scope has assigned it before this state"
    );
}

/// Specification, "Assigning State Machine Variables": `make`, `model` and `year` assigned in
/// FirstState make SecondState's output `"2006 Infiniti G35"`.
#[tokio::test]
async fn the_specification_car_example_outputs_2006_infiniti_g35() {
    let machine = json!({"StartAt": "FirstState", "States": {
        "FirstState": {"Type": "Pass", "Assign": {
            "make": "Infiniti", "model": "G35", "year": 2006
        }, "Next": "SecondState"},
        "SecondState": {"Type": "Pass", "Parameters": {
            "text.$": "States.Format('{} {} {}', $year, $make, $model)"
        }, "OutputPath": "$.text", "End": true}
    }});
    assert_eq!(
        run_machine(machine, json!({})).await,
        Ok(json!("2006 Infiniti G35"))
    );
}

/// Specification, same section: with `x` equal to 5 on state entry, `{"x": 42, "newOrOld": $x}`
/// assigns 42 to `x` and 5 to `newOrOld`.
#[tokio::test]
async fn a_variable_read_in_the_field_that_assigns_it_gives_its_old_value() {
    let machine = json!({"StartAt": "Setup", "States": {
        "Setup": {"Type": "Pass", "Assign": {"x": 5}, "Next": "Assigning"},
        "Assigning": {"Type": "Pass", "Assign": {"x": 42, "newOrOld.$": "$x"}, "Next": "Referencing"},
        "Referencing": {"Type": "Pass", "Parameters": {"x.$": "$x", "newOrOld.$": "$newOrOld"}, "End": true}
    }});
    assert_eq!(
        run_machine(machine, json!({})).await,
        Ok(json!({"x": 42, "newOrOld": 5}))
    );
}

/// Specification, "Variable Scope": `outer` is assigned at the top level and by the Map state
/// itself; the iterations read it (state "End" outputs `hello`), and the state after the Map
/// sees the Map's own assignment (`2`).
#[tokio::test]
async fn the_specification_scope_example_reads_outer_variables_in_iterations() {
    let machine = json!({"StartAt": "Get Greeting", "States": {
        "Get Greeting": {"Type": "Pass", "Assign": {"outer": "hello"}, "Next": "Greet Everyone"},
        "Greet Everyone": {"Type": "Map", "ItemProcessor": {"StartAt": "Begin", "States": {
            "Begin": {"Type": "Pass", "Assign": {"inner": "world", "hi.$": "$outer"}, "Next": "End"},
            "End": {"Type": "Succeed", "OutputPath": "$hi"}
        }}, "Assign": {"outer": 2}, "Next": "Goodbye"},
        "Goodbye": {"Type": "Succeed", "OutputPath": "$outer"}
    }});
    let engine = engine();
    let arn = create(&engine, &machine);
    let exec = engine
        .start_execution(&arn, None, json!([1, 2]))
        .await
        .unwrap();
    let done = engine.wait_for_execution(&exec).await.unwrap();
    assert_eq!(outcome(done), Ok(json!(2)));
    let history = engine.history(&exec).unwrap();
    let end_outputs: Vec<Value> = history
        .iter()
        .filter_map(|e| match &e.details {
            EventDetails::StateExited { name, output, .. } if name == "End" => {
                Some(output.to_value())
            }
            _ => None,
        })
        .collect();
    assert_eq!(end_outputs, [json!("hello"), json!("hello")]);
}

/// Specification, same section: "State "Begin" can reference `outer`, but since it is in the
/// inner scope, it cannot assign it."
#[test]
fn an_iteration_cannot_assign_a_variable_of_the_outer_scope() {
    let machine = json!({"StartAt": "Get Greeting", "States": {
        "Get Greeting": {"Type": "Pass", "Assign": {"outer": "hello"}, "Next": "Greet Everyone"},
        "Greet Everyone": {"Type": "Map", "ItemProcessor": {"StartAt": "Begin", "States": {
            "Begin": {"Type": "Pass", "Assign": {"outer": "world"}, "End": true}
        }}, "End": true}
    }});
    assert_eq!(
        load_problems(machine),
        [(
            "/States/Greet Everyone/ItemProcessor/States/Begin/Assign/outer".to_string(),
            "variable \"outer\" is assigned in an enclosing scope (at \
             /States/Get Greeting/Assign/outer); a Parallel branch or Map iteration may read it \
             but not assign it"
                .to_string()
        )]
    );
}

/// Guide, "Variable scope": branches and iterations "do not have access to variable values from
/// other concurrent branches". A branch reading what its sibling assigned finds no value.
#[tokio::test]
async fn a_parallel_branch_cannot_read_a_variable_assigned_in_another_branch() {
    let machine = json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "Branches": [
        {"StartAt": "A", "States": {"A": {"Type": "Pass", "Assign": {"mine": 1}, "End": true}}},
        {"StartAt": "B", "States": {
            "B": {"Type": "Wait", "Seconds": 0, "Next": "C"},
            "C": {"Type": "Pass", "Parameters": {"v.$": "$mine"}, "End": true}
        }}
    ], "End": true}}});
    let (error, cause) = run_machine(machine, json!({})).await.unwrap_err();
    assert_eq!(error, "States.Runtime");
    assert!(
        cause.contains("the variable 'mine' read by the path '$mine'"),
        "{cause}"
    );
}

/// Guide, "Variable scope": "When a Parallel or Map state completes, all of their variables will
/// go out of scope."
#[tokio::test]
async fn variables_of_an_iteration_go_out_of_scope_when_the_map_completes() {
    let machine = json!({"StartAt": "M", "States": {
        "M": {"Type": "Map", "ItemProcessor": {"StartAt": "I", "States": {
            "I": {"Type": "Pass", "Assign": {"inner": 1}, "End": true}
        }}, "Next": "After"},
        "After": {"Type": "Pass", "Parameters": {"v.$": "$inner"}, "End": true}
    }});
    let (error, cause) = run_machine(machine, json!([1])).await.unwrap_err();
    assert_eq!(error, "States.Runtime");
    assert!(
        cause.starts_with("An error occurred while executing the state 'After'"),
        "{cause}"
    );
}

/// Guide, "Variable scope": "the `Assign` field in a `Catch` can assign values to variables in
/// the outer scope, that is, the scope in which the Parallel/Map state exists."
#[tokio::test]
async fn a_catch_on_a_parallel_state_assigns_in_the_scope_of_the_parallel_state() {
    let machine = json!({"StartAt": "P", "States": {
        "P": {"Type": "Parallel", "Branches": [
            {"StartAt": "Boom", "States": {"Boom": {"Type": "Fail", "Error": "Oops", "Cause": "bad"}}}
        ], "Catch": [{"ErrorEquals": ["States.ALL"], "Assign": {"failure.$": "$.Error"}, "Next": "After"}],
        "Next": "After"},
        "After": {"Type": "Pass", "Parameters": {"failure.$": "$failure"}, "End": true}
    }});
    assert_eq!(
        run_machine(machine, json!({})).await,
        Ok(json!({"failure": "Oops"}))
    );
}

/// Guide, "Assign field in ASL": "You cannot assign a value to a part of a variable" —
/// `{"x.y": 42}` and `{"x[2]": 42}` are refused.
#[test]
fn a_part_of_a_variable_cannot_be_assigned() {
    let machine = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Assign": {
        "x.y": 42, "x[2]": 42
    }, "End": true}}});
    let problems = load_problems(machine);
    let pointers: Vec<&str> = problems.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(pointers, ["/States/P/Assign/x.y", "/States/P/Assign/x[2]"]);
    assert_eq!(
        problems[0].1,
        "variable name \"x.y\" contains '.'; names hold only Unicode letters, digits and \
         connectors (ID_Continue), and a part of a variable cannot be assigned"
    );
}

/// Guide, "Variable name syntax": Unicode identifiers (ID_Start, then ID_Continue) of at most
/// 80 characters; specification: "A state MUST NOT assign a value to "states"".
#[tokio::test]
async fn variable_names_are_unicode_identifiers_of_at_most_80_characters() {
    let long = "n".repeat(81);
    let mut assign = serde_json::Map::new();
    for name in ["größe", "名前", "x1", "1x", "states", long.as_str()] {
        assign.insert(name.to_string(), json!(1));
    }
    let machine =
        json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Assign": assign, "End": true}}});
    let mut pointers: Vec<String> = load_problems(machine).into_iter().map(|(p, _)| p).collect();
    pointers.sort();
    assert_eq!(
        pointers,
        [
            "/States/P/Assign/1x".to_string(),
            format!("/States/P/Assign/{long}"),
            "/States/P/Assign/states".to_string()
        ]
    );

    let machine = json!({"StartAt": "P", "States": {
        "P": {"Type": "Pass", "Assign": {"größe": 1, "名前": 2}, "Next": "Q"},
        "Q": {"Type": "Pass", "Parameters": {"a.$": "$größe", "b.$": "$名前"}, "End": true}
    }});
    assert_eq!(
        run_machine(machine, json!({})).await,
        Ok(json!({"a": 1, "b": 2}))
    );
}

/// Guide, "Limits": "you could assign X and Y to 128KiB, but you could not assign both X and Y
/// to 256KiB in the same `Assign` field."
#[tokio::test]
async fn one_assign_field_holds_at_most_256_kib() {
    let machine = |chars: usize| {
        let value = "v".repeat(chars);
        json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Assign": {
            "X": value, "Y": value
        }, "Result": "done", "End": true}}})
    };
    // A string of n characters is n + 2 bytes of JSON.
    let kib_128 = 128 * 1024 - 2;
    assert_eq!(
        run_machine(machine(kib_128), json!({})).await,
        Ok(json!("done"))
    );
    let kib_256 = 256 * 1024 - 2;
    let (error, cause) = run_machine(machine(kib_256), json!({})).await.unwrap_err();
    assert_eq!(error, "States.DataLimitExceeded");
    assert_eq!(
        cause,
        "the values of one Assign field have 524288 bytes (at variable 'Y'), more than the \
         262144 allowed"
    );
}

/// Guide, "Limits": "The maximum size of a single variable is 256Kib".
#[tokio::test]
async fn one_variable_holds_at_most_256_kib() {
    let machine = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Assign": {
        "big": "v".repeat(256 * 1024 - 1)
    }, "End": true}}});
    let (error, cause) = run_machine(machine, json!({})).await.unwrap_err();
    assert_eq!(error, "States.DataLimitExceeded");
    assert_eq!(
        cause,
        "the value assigned to variable 'big' has 262145 bytes, more than the 262144 allowed for \
         one variable"
    );
}

/// Guide, "Limits": "The total size of all stored variables cannot exceed 10MiB per execution."
/// Forty variables of 255 KiB fit; a forty-first does not.
#[tokio::test]
async fn an_execution_holds_at_most_10_mib_of_variables() {
    let chunk = "v".repeat(255 * 1024);
    let mut states = serde_json::Map::new();
    for i in 0..41 {
        let next = if i == 40 {
            json!({"End": true})
        } else {
            json!({"Next": format!("S{}", i + 1)})
        };
        let mut state = json!({"Type": "Pass", "Assign": {format!("v{i}"): chunk}, "Result": i});
        state
            .as_object_mut()
            .unwrap()
            .extend(next.as_object().unwrap().clone());
        states.insert(format!("S{i}"), state);
    }
    let machine = json!({"StartAt": "S0", "States": states});
    let (error, cause) = run_machine(machine, json!({})).await.unwrap_err();
    assert_eq!(error, "States.DataLimitExceeded");
    assert_eq!(
        cause,
        "assigning v40 would bring the variables of this execution to 10706002 bytes, more than \
         the 10485760 allowed"
    );
}

/// Guide, "Using variables in JSONPath states": variables work in any field that accepts a
/// JSONPath (InputPath, Parameters, OutputPath, ...), including intrinsic function arguments
/// (`States.Format('The order number is {}', $order.number)`), and `$order.numItems` reads into
/// a variable.
#[tokio::test]
async fn variables_are_read_in_paths_fields_and_intrinsic_arguments() {
    let machine = json!({"StartAt": "Store", "States": {
        "Store": {"Type": "Pass", "Assign": {"order": {"box": {"w": 2}}}, "Next": "Out"},
        "Out": {"Type": "Pass", "OutputPath": "$order.box", "End": true}
    }});
    assert_eq!(run_machine(machine, json!({})).await, Ok(json!({"w": 2})));

    let machine = json!({"StartAt": "Store", "States": {
        "Store": {"Type": "Pass", "Assign": {"order": {"number": 17, "numItems": 3, "box": {"w": 2}}},
            "Next": "Use"},
        "Use": {"Type": "Pass", "InputPath": "$order.box", "Parameters": {
            "text.$": "States.Format('The order number is {}', $order.number)",
            "items.$": "$order.numItems",
            "width.$": "$.w"
        }, "End": true}
    }});
    assert_eq!(
        run_machine(machine, json!({})).await,
        Ok(json!({"text": "The order number is 17", "items": 3, "width": 2}))
    );
}

/// Guide, same section: "Variables cannot be used in `ResultPath`."
#[test]
fn result_path_cannot_reference_a_variable() {
    let machine = json!({"StartAt": "P", "States": {"P": {
        "Type": "Pass", "ResultPath": "$x.y", "End": true
    }}});
    assert_eq!(
        load_problems(machine),
        [(
            "/States/P/ResultPath".to_string(),
            "invalid path \"$x.y\": a reference path cannot address the variable $x; variables \
             are assigned with \"Assign\""
                .to_string()
        )]
    );
}

/// Guide, "Assigning variables in JSONPath": in a Task state, `$` in `Assign` is the API result
/// (`products.$: $.order..product`, `orderTotal.$: $.order.total`), not the state input.
#[tokio::test]
async fn a_task_assigns_from_its_result() {
    let api = Func::new(|_| {
        Ok(json!({"order": {"total": 30, "lines": [{"product": "a"}, {"product": "b"}]}}))
    });
    let engine = engine_with(API, api);
    let machine = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": API, "Assign": {
            "products.$": "$.order..product",
            "orderTotal.$": "$.order.total"
        }, "ResultPath": null, "Next": "Show"},
        "Show": {"Type": "Pass", "Parameters": {"p.$": "$products", "t.$": "$orderTotal", "in.$": "$"},
            "End": true}
    }});
    let done = run(&engine, &machine, json!({"order": "the input"})).await;
    assert_eq!(
        outcome(done),
        Ok(json!({"p": ["a", "b"], "t": 30, "in": {"order": "the input"}}))
    );
}

/// Guide, same section: the example `Assign` with a nested object, a path into the result, an
/// intrinsic reading `$customer.name` and a context path, as a Task state.
#[tokio::test]
async fn the_guide_jsonpath_assign_example_mixes_values_paths_intrinsics_and_context() {
    let api = Func::new(|_| Ok(json!({"order": {"items": [1, 2]}, "result": {"code": 200}})));
    let engine = engine_with(API, api);
    let machine = json!({"StartAt": "Customer", "States": {
        "Customer": {"Type": "Pass", "Assign": {"customer": {"name": "Ana"}}, "Next": "T"},
        "T": {"Type": "Task", "Resource": API, "Assign": {
            "details": {"status": "SUCCESS", "lineItems.$": "$.order.items"},
            "resultCode.$": "$.result.code",
            "message.$": "States.Format('Hello {}', $customer.name)",
            "startTime.$": "$$.Execution.StartTime"
        }, "End": true}
    }});
    let arn = create(&engine, &machine);
    let exec = engine.start_execution(&arn, None, json!({})).await.unwrap();
    let done = engine.wait_for_execution(&exec).await.unwrap();
    let assigned = assigned_by(&engine, &exec, "T").remove(0);
    assert_eq!(
        assigned["details"],
        r#"{"lineItems":[1,2],"status":"SUCCESS"}"#
    );
    assert_eq!(assigned["resultCode"], "200");
    assert_eq!(assigned["message"], "\"Hello Ana\"");
    let start_time: String = serde_json::from_str(&assigned["startTime"]).unwrap();
    let start_time = chrono::DateTime::parse_from_rfc3339(&start_time).unwrap();
    assert_eq!(
        start_time.timestamp_millis(),
        done.start_date.timestamp_millis()
    );
}

/// Guide, same section: "In `Choice` and `Wait` state, `$` refers to the effective input, which
/// is the value after `InputPath` has been applied to the state input. For `Pass`, `$` refers to
/// the result, whether generated by the `Result` field or the `InputPath`/`Parameters` fields."
#[tokio::test]
async fn dollar_in_assign_is_the_effective_input_or_the_result_by_state_type() {
    let machine = json!({"StartAt": "W", "States": {
        "W": {"Type": "Wait", "Seconds": 0, "InputPath": "$.inner", "Assign": {"wait.$": "$"}, "Next": "C"},
        "C": {"Type": "Choice", "InputPath": "$.deeper", "Choices": [
            {"Variable": "$.n", "NumericEquals": 1, "Assign": {"choice.$": "$"}, "Next": "R"}
        ]},
        "R": {"Type": "Pass", "Result": {"r": 1}, "Assign": {"result.$": "$"}, "Next": "PP"},
        "PP": {"Type": "Pass", "InputPath": "$.r", "Parameters": {"p.$": "$"}, "Assign": {"params.$": "$"},
            "Next": "Show"},
        "Show": {"Type": "Pass", "Parameters": {
            "wait.$": "$wait", "choice.$": "$choice", "result.$": "$result", "params.$": "$params"
        }, "End": true}
    }});
    let input = json!({"inner": {"deeper": {"n": 1}}});
    assert_eq!(
        run_machine(machine, input).await,
        Ok(json!({
            "wait": {"deeper": {"n": 1}},
            "choice": {"n": 1},
            "result": {"r": 1},
            "params": {"p": 1}
        }))
    );
}

/// The guide's JSONPath diagram: `Assign` runs beside `ResultSelector`, on the raw result, so
/// it sees what ResultSelector drops.
#[tokio::test]
async fn a_task_assign_sees_the_raw_result_not_the_result_selector_output() {
    let api = Func::new(|_| Ok(json!({"kept": 1, "dropped": 2})));
    let engine = engine_with(API, api);
    let machine = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": API, "ResultSelector": {"kept.$": "$.kept"},
            "Assign": {"dropped.$": "$.dropped"}, "Next": "Show"},
        "Show": {"Type": "Pass", "Parameters": {"selected.$": "$", "dropped.$": "$dropped"}, "End": true}
    }});
    assert_eq!(
        outcome(run(&engine, &machine, json!({})).await),
        Ok(json!({"selected": {"kept": 1}, "dropped": 2}))
    );
}

/// Specification, "JSONPath Choice Rules": the DispatchEvent example. With input
/// `{"type": "Private", "value": 22}` the second rule matches and `range` becomes "twenties";
/// when no rule matches, the state's own `Assign` makes it "default".
#[tokio::test]
async fn the_specification_dispatch_event_choice_assigns_range() {
    let machine = || {
        json!({"StartAt": "DispatchEvent", "States": {
            "DispatchEvent": {"Type": "Choice", "Choices": [
                {"Not": {"Variable": "$.type", "StringEquals": "Private"}, "Next": "Public"},
                {"And": [
                    {"Variable": "$.value", "IsPresent": true},
                    {"Variable": "$.value", "IsNumeric": true},
                    {"Variable": "$.value", "NumericGreaterThanEquals": 20},
                    {"Variable": "$.value", "NumericLessThan": 30}
                ], "Assign": {"range": "twenties"}, "Next": "ValueInTwenties"},
                {"Variable": "$.rating", "NumericGreaterThanPath": "$.auditThreshold", "Next": "StartAudit"}
            ], "Default": "RecordEvent", "Assign": {"range": "default"}},
            "Public": {"Type": "Pass", "Result": "Public", "End": true},
            "ValueInTwenties": {"Type": "Pass", "Parameters": {"state": "ValueInTwenties", "range.$": "$range"}, "End": true},
            "StartAudit": {"Type": "Pass", "Result": "StartAudit", "End": true},
            "RecordEvent": {"Type": "Pass", "Parameters": {"state": "RecordEvent", "range.$": "$range"}, "End": true}
        }})
    };
    assert_eq!(
        run_machine(machine(), json!({"type": "Private", "value": 22})).await,
        Ok(json!({"state": "ValueInTwenties", "range": "twenties"}))
    );
    assert_eq!(
        run_machine(
            machine(),
            json!({"type": "Private", "value": 50, "rating": 1, "auditThreshold": 2})
        )
        .await,
        Ok(json!({"state": "RecordEvent", "range": "default"}))
    );
}

/// Specification, "Choice State": "If a Choice Rule is chosen, the interpreter evaluates the
/// Choice Rule's "Assign" field, if any, and does not evaluate the state's top-level "Assign"
/// field." The third rule of DispatchEvent assigns nothing, so `range` keeps no value.
#[tokio::test]
async fn a_chosen_rule_without_assign_assigns_nothing_even_with_a_state_assign() {
    let machine = json!({"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [
            {"Variable": "$.rating", "NumericGreaterThanPath": "$.auditThreshold", "Next": "StartAudit"}
        ], "Default": "StartAudit", "Assign": {"range": "default"}},
        "StartAudit": {"Type": "Pass", "Parameters": {"range.$": "$range"}, "End": true}
    }});
    let (error, cause) = run_machine(machine, json!({"rating": 3, "auditThreshold": 2}))
        .await
        .unwrap_err();
    assert_eq!(error, "States.Runtime");
    assert!(cause.contains("the variable 'range'"), "{cause}");
}

/// Specification, "JSONPath Catchers": for any error but `java.lang.Exception`, "the variable
/// `hasError` will be assigned `true`, and the input to "EndMachine" will just be the Error
/// Output"; the state's own `Assign` is not evaluated.
#[tokio::test]
async fn the_specification_catcher_assigns_has_error_and_passes_the_error_output() {
    let api = Func::new(|_| {
        Err(wme_asl::TaskFailure::new(
            "Lambda.Unknown",
            "the function crashed",
        ))
    });
    let engine = engine_with(API, api);
    let machine = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": API, "Assign": {"hasError": false, "ran": true}, "Catch": [
            {"ErrorEquals": ["java.lang.Exception"], "ResultPath": "$.error-info", "Next": "RecoveryState"},
            {"ErrorEquals": ["States.ALL"], "Assign": {"hasError": true}, "Next": "EndMachine"}
        ], "End": true},
        "RecoveryState": {"Type": "Pass", "End": true},
        "EndMachine": {"Type": "Pass", "Parameters": {"hasError.$": "$hasError", "input.$": "$"}, "End": true}
    }});
    let arn = create(&engine, &machine);
    let exec = engine
        .start_execution(&arn, None, json!({"x": 1}))
        .await
        .unwrap();
    let done = engine.wait_for_execution(&exec).await.unwrap();
    assert_eq!(
        outcome(done),
        Ok(json!({
            "hasError": true,
            "input": {"Error": "Lambda.Unknown", "Cause": "the function crashed"}
        }))
    );
    let assigned = assigned_by(&engine, &exec, "T");
    assert_eq!(
        assigned,
        [HashMap::from([(
            "hasError".to_string(),
            "true".to_string()
        )])]
    );
}

/// Guide, "Evaluation order": "All variable references in Step Functions states use the values
/// as they were on state entry" — also in the state's own InputPath and OutputPath.
#[tokio::test]
async fn a_state_reads_its_entry_values_in_every_path_even_while_assigning() {
    let machine = json!({"StartAt": "S0", "States": {
        "S0": {"Type": "Pass", "Result": {"theQuestion": "what?"},
            "Assign": {"question.$": "$.theQuestion", "answer": 42}, "Next": "S1"},
        "S1": {"Type": "Pass", "InputPath": "$answer", "ResultPath": "$.theAnswer",
            "OutputPath": "$answer", "Assign": {"answer": "<omitted>"}, "Next": "S2"},
        "S2": {"Type": "Pass", "Parameters": {"in.$": "$", "answer.$": "$answer", "q.$": "$question"},
            "End": true}
    }});
    assert_eq!(
        run_machine(machine, json!({})).await,
        Ok(json!({"in": 42, "answer": "<omitted>", "q": "what?"}))
    );
}
