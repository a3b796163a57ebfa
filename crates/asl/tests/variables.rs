//! Workflow variables through the engine: scopes of Parallel branches and Map iterations,
//! Catch and Choice-rule assignments, variables in every kind of path field, the errors for
//! variables without a value, load-time checks with their JSON pointers, the execution-wide size
//! limit and the `assignedVariables` of state-exited events.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;
use wme_asl::{AssignedVariablesDetails, EventDetails, ExecutionStatus, LoadError};

use common::*;

async fn output_of(engine: &wme_asl::Engine, machine: Value, input: Value) -> Value {
    let done = run(engine, &machine, input).await;
    assert_eq!(
        done.status,
        ExecutionStatus::Succeeded,
        "{:?}: {:?}",
        done.error,
        done.cause
    );
    done.output.unwrap()
}

async fn failure_of(machine: Value, input: Value) -> (String, String) {
    let done = run(&engine(), &machine, input).await;
    assert_eq!(done.status, ExecutionStatus::Failed, "{:?}", done.output);
    (done.error.unwrap(), done.cause.unwrap())
}

fn load_problems(machine: Value) -> Vec<(String, String)> {
    let result = engine().create_state_machine("m", &machine.to_string(), &HashMap::new());
    match result {
        Err(LoadError::Invalid(errors)) => {
            let mut found: Vec<_> = errors.into_iter().map(|e| (e.pointer, e.message)).collect();
            found.sort();
            found
        }
        other => panic!("expected validation errors, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn each_map_iteration_keeps_its_own_values_while_iterations_interleave() {
    let machine = json!({"StartAt": "M", "States": {"M": {"Type": "Map", "ItemProcessor": {
        "StartAt": "Keep", "States": {
            "Keep": {"Type": "Pass", "Assign": {"mine.$": "$.n"}, "Next": "Sleep"},
            "Sleep": {"Type": "Wait", "SecondsPath": "$.delay", "Next": "Show"},
            "Show": {"Type": "Pass", "Parameters": {"mine.$": "$mine"}, "End": true}
        }}, "End": true}}});
    let items = json!([{"n": "a", "delay": 3}, {"n": "b", "delay": 1}, {"n": "c", "delay": 2}]);
    assert_eq!(
        output_of(&engine(), machine, items).await,
        json!([{"mine": "a"}, {"mine": "b"}, {"mine": "c"}])
    );
}

#[tokio::test]
async fn sibling_branches_may_use_the_same_name_without_seeing_each_other() {
    let branch = |value: i64| {
        json!({"StartAt": format!("Set{value}"), "States": {
            format!("Set{value}"): {"Type": "Pass", "Assign": {"x": value}, "Next": format!("Get{value}")},
            format!("Get{value}"): {"Type": "Pass", "OutputPath": "$x", "End": true}
        }})
    };
    let machine = json!({"StartAt": "P", "States": {"P": {
        "Type": "Parallel", "Branches": [branch(1), branch(2)],
        "Assign": {"both.$": "$", "first.$": "$[0]"}, "Next": "Show"
    }, "Show": {"Type": "Pass", "Parameters": {"both.$": "$both", "first.$": "$first"}, "End": true}}});
    assert_eq!(
        output_of(&engine(), machine, json!({})).await,
        json!({"both": [1, 2], "first": 1})
    );
}

#[tokio::test]
async fn nested_inner_blocks_read_every_enclosing_scope() {
    let machine = json!({"StartAt": "Top", "States": {
        "Top": {"Type": "Pass", "Assign": {"top": "t"}, "Next": "P"},
        "P": {"Type": "Parallel", "Branches": [{"StartAt": "Mid", "States": {
            "Mid": {"Type": "Pass", "Assign": {"mid": "m", "items": [1, 2]}, "Next": "M"},
            "M": {"Type": "Map", "ItemsPath": "$items", "ItemProcessor": {"StartAt": "Leaf", "States": {
                "Leaf": {"Type": "Pass", "Parameters": {
                    "item.$": "$", "top.$": "$top", "mid.$": "$mid"
                }, "End": true}
            }}, "End": true}
        }}], "OutputPath": "$[0]", "End": true}
    }});
    assert_eq!(
        output_of(&engine(), machine, json!({})).await,
        json!([
            {"item": 1, "top": "t", "mid": "m"},
            {"item": 2, "top": "t", "mid": "m"}
        ])
    );
}

#[tokio::test]
async fn map_items_path_item_selector_and_max_concurrency_path_read_variables() {
    let machine = json!({"StartAt": "Setup", "States": {
        "Setup": {"Type": "Pass", "Assign": {"list": [10, 20], "tag": "t", "limit": 1}, "Next": "M"},
        "M": {"Type": "Map", "ItemsPath": "$list", "MaxConcurrencyPath": "$limit",
            "ItemSelector": {"value.$": "$$.Map.Item.Value", "tag.$": "$tag", "in.$": "$.x"},
            "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": true}}},
            "End": true}
    }});
    assert_eq!(
        output_of(&engine(), machine, json!({"x": 1})).await,
        json!([
            {"value": 10, "tag": "t", "in": 1},
            {"value": 20, "tag": "t", "in": 1}
        ])
    );
}

#[tokio::test(start_paused = true)]
async fn wait_seconds_path_and_task_timeout_seconds_path_read_variables() {
    let engine = engine();
    let mut calls = callback_handler(&engine);
    let machine = json!({"StartAt": "Setup", "States": {
        "Setup": {"Type": "Pass", "Assign": {"delay": 5, "timeout": 7}, "Next": "Sleep"},
        "Sleep": {"Type": "Wait", "SecondsPath": "$delay", "Next": "Hold"},
        "Hold": {"Type": "Task", "Resource": format!("{CALLBACK}.waitForTaskToken"),
            "TimeoutSecondsPath": "$timeout", "End": true}
    }});
    let start = Instant::now();
    let arn = create(&engine, &machine);
    let exec = engine.start_execution(&arn, None, json!({})).await.unwrap();
    calls.recv().await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    let done = engine.wait_for_execution(&exec).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(12));
    assert_eq!(done.error.as_deref(), Some("States.Timeout"));
}

#[tokio::test]
async fn a_catch_assign_replaces_the_state_assign_and_sees_the_error_output() {
    let engine = engine();
    engine.register(
        SCRIPT,
        Script::new(vec![fail("Device.Offline", "no answer")]),
    );
    let machine = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": SCRIPT, "Assign": {"ok": true},
            "Catch": [{"ErrorEquals": ["Device.Offline"], "ResultPath": "$.error",
                "Assign": {"failure.$": "$", "name.$": "$.Error"}, "Next": "Report"}],
            "End": true},
        "Report": {"Type": "Pass", "Parameters": {
            "input.$": "$", "failure.$": "$failure", "name.$": "$name"
        }, "Next": "Ok"},
        "Ok": {"Type": "Pass", "Parameters": {"ok.$": "$ok"}, "End": true}
    }});
    let done = run(&engine, &machine, json!({"device": "d1"})).await;
    assert_eq!(done.error.as_deref(), Some("States.Runtime"));
    let history = engine.history(&done.execution_arn).unwrap();
    let report = history.iter().find_map(|e| match &e.details {
        EventDetails::StateExited { name, output, .. } if name == "Report" => {
            Some(output.to_value())
        }
        _ => None,
    });
    let error = json!({"Error": "Device.Offline", "Cause": "no answer"});
    assert_eq!(
        report,
        Some(json!({
            "input": {"device": "d1", "error": error},
            "failure": error,
            "name": "Device.Offline"
        }))
    );
    assert!(
        done.cause.unwrap().contains("the variable 'ok'"),
        "the state's own Assign did not run"
    );
}

#[tokio::test]
async fn only_the_matched_choice_rule_assigns() {
    let machine = json!({"StartAt": "Setup", "States": {
        "Setup": {"Type": "Pass", "Assign": {"count": 3, "limit": 2}, "Next": "C"},
        "C": {"Type": "Choice", "Choices": [
            {"Variable": "$count", "NumericLessThanPath": "$limit", "Assign": {"low": true}, "Next": "Low"},
            {"Variable": "$count", "NumericGreaterThanPath": "$limit", "Assign": {"high": "yes"}, "Next": "High"}
        ], "Default": "Low", "Assign": {"low": "default"}},
        "Low": {"Type": "Pass", "OutputPath": "$low", "End": true},
        "High": {"Type": "Pass", "Parameters": {"high.$": "$high"}, "Next": "Low"}
    }});
    let (error, cause) = failure_of(machine.clone(), json!({})).await;
    assert_eq!(error, "States.Runtime");
    assert!(
        cause.starts_with("An error occurred while executing the state 'Low'"),
        "neither the first rule's nor the state's Assign ran: {cause}"
    );
}

#[tokio::test]
async fn is_present_on_a_variable_without_a_value_is_an_error_not_false() {
    let machine = json!({"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [
            {"Variable": "$maybe", "IsPresent": false, "Next": "Done"}
        ]},
        "Done": {"Type": "Succeed"}
    }});
    let (error, cause) = failure_of(machine, json!({})).await;
    assert_eq!(error, "States.Runtime");
    assert_eq!(
        cause,
        "An error occurred while executing the state 'C' (entered at the event id #2). the \
         variable 'maybe' read by the path '$maybe' in a choice rule has no value: no state of \
         its scope has assigned it before this state"
    );
    let machine = json!({"StartAt": "Setup", "States": {
        "Setup": {"Type": "Pass", "Assign": {"maybe": {}}, "Next": "C"},
        "C": {"Type": "Choice", "Choices": [
            {"Variable": "$maybe.field", "IsPresent": false, "Next": "Done"}
        ]},
        "Done": {"Type": "Succeed"}
    }});
    assert_eq!(
        output_of(&engine(), machine, json!({"in": 1})).await,
        json!({"in": 1})
    );
}

#[tokio::test]
async fn an_unassigned_variable_in_input_path_fails_with_states_runtime() {
    let machine = json!({"StartAt": "P", "States": {"P": {
        "Type": "Pass", "InputPath": "$nothing.here", "End": true
    }}});
    assert_eq!(
        failure_of(machine, json!({})).await,
        (
            "States.Runtime".to_string(),
            "An error occurred while executing the state 'P' (entered at the event id #2). the \
             variable 'nothing' read by the path '$nothing.here' in InputPath has no value: no \
             state of its scope has assigned it before this state"
                .to_string()
        )
    );
}

#[tokio::test]
async fn a_path_into_an_assigned_variable_that_names_nothing_says_so() {
    let machine = json!({"StartAt": "Setup", "States": {
        "Setup": {"Type": "Pass", "Assign": {"order": {"id": 1}}, "Next": "P"},
        "P": {"Type": "Pass", "Parameters": {"total.$": "$order.total"}, "End": true}
    }});
    let (error, cause) = failure_of(machine, json!({})).await;
    assert_eq!(error, "States.Runtime");
    assert_eq!(
        cause,
        "An error occurred while executing the state 'P' (entered at the event id #4). the \
         JSONPath \"$order.total\" specified for the field \"total.$\" in Parameters could not be \
         found in the variable 'order' {\"id\":1}"
    );
}

#[tokio::test]
async fn a_fail_state_reads_error_and_cause_from_variables() {
    let machine = json!({"StartAt": "Setup", "States": {
        "Setup": {"Type": "Pass", "Assign": {"err": "Upgrade.Rejected", "why": "battery low"}, "Next": "F"},
        "F": {"Type": "Fail", "ErrorPath": "$err", "CausePath": "States.Format('device said: {}', $why)"}
    }});
    assert_eq!(
        failure_of(machine, json!({})).await,
        (
            "Upgrade.Rejected".to_string(),
            "device said: battery low".to_string()
        )
    );
}

#[tokio::test(start_paused = true)]
async fn the_assign_of_a_retried_task_comes_from_the_attempt_that_succeeded() {
    let engine = engine();
    engine.register(
        SCRIPT,
        Script::new(vec![fail("Busy", "1"), Ok(json!({"v": "second"}))]),
    );
    let machine = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": SCRIPT,
            "Retry": [{"ErrorEquals": ["Busy"], "IntervalSeconds": 1}],
            "Assign": {"value.$": "$.v", "retries.$": "$$.State.RetryCount"}, "Next": "Show"},
        "Show": {"Type": "Pass", "Parameters": {"value.$": "$value", "retries.$": "$retries"}, "End": true}
    }});
    assert_eq!(
        output_of(&engine, machine, json!({})).await,
        json!({"value": "second", "retries": 1})
    );
}

/// A state-exited event's name, `assignedVariables` and `assignedVariablesDetails`.
type Exited = (
    String,
    Option<BTreeMap<String, String>>,
    Option<AssignedVariablesDetails>,
);

#[tokio::test]
async fn state_exited_events_carry_the_assigned_values_as_json_text() {
    let engine = engine();
    let machine = json!({"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Assign": {
            "s": "text", "n": 4.3, "b": true, "nothing": null, "o": {"k": [1, "two"]}, "in.$": "$.x"
        }, "Next": "B"},
        "B": {"Type": "Pass", "Assign": {}, "Next": "C"},
        "C": {"Type": "Pass", "End": true}
    }});
    let done = run(&engine, &machine, json!({"x": {"y": 1}})).await;
    let history = engine.history(&done.execution_arn).unwrap();
    let exits: Vec<Exited> = history
        .iter()
        .filter_map(|e| match &e.details {
            EventDetails::StateExited { name, assigned, .. } => Some((
                name.clone(),
                assigned.as_deref().map(|a| a.assigned_variables.clone()),
                assigned.as_deref().map(|a| a.assigned_variables_details),
            )),
            _ => None,
        })
        .collect();
    let expected: BTreeMap<String, String> = [
        ("s", "\"text\""),
        ("n", "4.3"),
        ("b", "true"),
        ("nothing", "null"),
        ("o", "{\"k\":[1,\"two\"]}"),
        ("in", "{\"y\":1}"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(
        exits,
        [
            (
                "A".to_string(),
                Some(expected),
                Some(AssignedVariablesDetails { truncated: false })
            ),
            ("B".to_string(), None, None),
            ("C".to_string(), None, None)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn the_execution_limit_counts_the_variables_of_concurrent_iterations_only_while_they_run() {
    // 45 iterations each hold 255 KiB: one at a time they fit, all at once they pass 10 MiB.
    let machine = |concurrency: u64| {
        json!({"StartAt": "Items", "States": {
            "Items": {"Type": "Pass", "Parameters": {"items.$": "States.ArrayRange(1, 45, 1)"}, "Next": "M"},
            "M": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": concurrency,
                "ItemProcessor": {"StartAt": "Hold", "States": {
                    "Hold": {"Type": "Pass", "Assign": {"chunk": "v".repeat(255 * 1024)}, "Next": "Sleep"},
                    "Sleep": {"Type": "Wait", "Seconds": 1, "End": true}
                }}, "ResultPath": null, "End": true}
        }})
    };
    let one_at_a_time = run(&engine(), &machine(1), json!({})).await;
    assert_eq!(one_at_a_time.status, ExecutionStatus::Succeeded);
    let (error, cause) = failure_of(machine(0), json!({})).await;
    assert_eq!(error, "States.DataLimitExceeded");
    assert_eq!(
        cause,
        "assigning chunk would bring the variables of this execution to 10706002 bytes, more \
         than the 10485760 allowed"
    );
}

#[test]
fn assign_problems_are_reported_with_their_pointers_everywhere_assign_is_allowed() {
    let machine = json!({"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [
            {"Variable": "$.a", "IsPresent": true, "Assign": {"bad name": 1}, "Next": "T"},
            {"Not": {"Variable": "$.a", "IsNull": true, "Assign": {"x": 1}}, "Next": "T"}
        ], "Default": "T", "Assign": "not an object"},
        "T": {"Type": "Task", "Resource": SCRIPT, "Assign": {"ok": 1, "ok.$": "$.a"},
            "Catch": [{"ErrorEquals": ["States.ALL"], "Assign": {"states": 1}, "Next": "S"}],
            "Next": "S"},
        "S": {"Type": "Succeed", "Assign": {"x": 1}}
    }});
    let engine = engine();
    engine.register(SCRIPT, Script::new(vec![Ok(json!(1))]));
    let problems = match engine.create_state_machine("m", &machine.to_string(), &HashMap::new()) {
        Err(LoadError::Invalid(errors)) => {
            let mut found: Vec<_> = errors.into_iter().map(|e| (e.pointer, e.message)).collect();
            found.sort();
            found
        }
        other => panic!("{other:?}"),
    };
    let expected = [
        (
            "/States/C/Assign",
            "\"Assign\" must be a JSON object, got \"not an object\"",
        ),
        (
            "/States/C/Choices/0/Assign/bad name",
            "variable name \"bad name\" contains ' '; names hold only Unicode letters, digits and \
             connectors (ID_Continue), and a part of a variable cannot be assigned",
        ),
        (
            "/States/C/Choices/1/Not/Assign",
            "\"Assign\" is only allowed in top-level choice rules",
        ),
        (
            "/States/S/Assign",
            "field \"Assign\" is not valid in a Succeed state",
        ),
        (
            "/States/T/Assign/ok.$",
            "variable \"ok\" is assigned twice in this \"Assign\" field",
        ),
        (
            "/States/T/Catch/0/Assign/states",
            "\"states\" is a reserved variable name and cannot be assigned or referenced",
        ),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(p, m)| (p.to_string(), m.to_string()))
        .collect();
    assert_eq!(problems, expected);
}

#[test]
fn an_inner_scope_may_not_assign_a_name_its_enclosing_scopes_assign_anywhere() {
    let machine = json!({"StartAt": "P", "States": {
        "P": {"Type": "Parallel", "Branches": [
            {"StartAt": "M", "States": {"M": {"Type": "Map", "ItemProcessor": {"StartAt": "Deep", "States": {
                "Deep": {"Type": "Pass", "Assign": {"total": 1, "depth": 2}, "End": true}
            }}, "Assign": {"depth": 1}, "End": true}}},
            {"StartAt": "Other", "States": {"Other": {"Type": "Pass", "Assign": {"depth": 0}, "End": true}}}
        ], "Catch": [{"ErrorEquals": ["States.ALL"], "Assign": {"total": 0}, "Next": "Later"}], "Next": "Later"},
        "Later": {"Type": "Pass", "End": true}
    }});
    assert_eq!(
        load_problems(machine),
        [
            (
                "/States/P/Branches/0/States/M/ItemProcessor/States/Deep/Assign/depth".to_string(),
                "variable \"depth\" is assigned in an enclosing scope (at \
                 /States/P/Branches/0/States/M/Assign/depth); a Parallel branch or Map iteration \
                 may read it but not assign it"
                    .to_string()
            ),
            (
                "/States/P/Branches/0/States/M/ItemProcessor/States/Deep/Assign/total".to_string(),
                "variable \"total\" is assigned in an enclosing scope (at \
                 /States/P/Catch/0/Assign/total); a Parallel branch or Map iteration may read it \
                 but not assign it"
                    .to_string()
            )
        ]
    );
}

#[test]
fn references_to_the_reserved_states_variable_are_refused_at_load() {
    let machine = json!({"StartAt": "P", "States": {"P": {
        "Type": "Pass", "Parameters": {"in.$": "$states.input"}, "End": true
    }}});
    assert_eq!(
        load_problems(machine),
        [(
            "/States/P/Parameters/in.$".to_string(),
            "invalid path \"$states.input\": \"states\" is a reserved variable name and cannot be \
             assigned or referenced"
                .to_string()
        )]
    );
}
