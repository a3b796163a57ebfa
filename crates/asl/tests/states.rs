//! Pass, Choice, Wait, Succeed, Fail, Parallel and Map states, the context object, execution
//! timeouts, time_scale and history, with examples from the Step Functions developer guide.

mod common;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;
use wme_asl::{ExecutionEvent, ExecutionStatus};

use common::*;

#[tokio::test(start_paused = true)]
async fn pass_with_result_and_result_path() {
    let machine = json!({"StartAt": "P", "States": {"P": {
        "Type": "Pass", "Result": {"x-datum": 0.381018, "y-datum": 622.2269926397355},
        "ResultPath": "$.coords", "End": true
    }}});
    let done = run(&engine(), &machine, json!({"georefOf": "Home"})).await;
    assert_eq!(
        done.output,
        Some(
            json!({"georefOf": "Home", "coords": {"x-datum": 0.381018, "y-datum": 622.2269926397355}})
        )
    );
}

#[tokio::test(start_paused = true)]
async fn pass_parameters_can_read_the_context_object() {
    let machine = json!({"StartAt": "P", "States": {"P": {
        "Type": "Pass",
        "Parameters": {"id.$": "$$.Execution.Id", "name.$": "$$.Execution.Name", "state.$": "$$.State.Name",
                       "sm.$": "$$.StateMachine.Name", "input.$": "$$.Execution.Input", "role.$": "$$.Execution.RoleArn",
                       "start.$": "$$.Execution.StartTime", "entered.$": "$$.State.EnteredTime"},
        "End": true
    }}});
    let engine = engine();
    let arn = create(&engine, &machine);
    let exec = engine
        .start_execution(&arn, Some("run-7"), json!({"a": 1}))
        .await
        .unwrap();
    let done = engine.wait_for_execution(&exec).await.unwrap();
    let out = done.output.unwrap();
    assert_eq!(out["id"], json!(exec));
    assert_eq!(
        exec,
        "arn:aws:states:local:000000000000:execution:test:run-7"
    );
    assert_eq!(out["name"], "run-7");
    assert_eq!(out["state"], "P");
    assert_eq!(out["sm"], "test");
    assert_eq!(out["input"], json!({"a": 1}));
    assert_eq!(
        out["role"],
        "arn:aws:iam::000000000000:role/wme-local-states"
    );
    let start = out["start"].as_str().unwrap();
    assert!(start.ends_with('Z') && start.len() == 24, "{start}");
    assert_eq!(out["entered"].as_str().unwrap().len(), 24);
}

fn choice_machine() -> Value {
    json!({
        "StartAt": "ChoiceStateX",
        "States": {
            "ChoiceStateX": {
                "Type": "Choice",
                "Choices": [
                    {"Not": {"Variable": "$.type", "StringEquals": "Private"}, "Next": "Public"},
                    {"Variable": "$.value", "NumericEquals": 0, "Next": "ValueIsZero"},
                    {"And": [
                        {"Variable": "$.value", "NumericGreaterThanEquals": 20},
                        {"Variable": "$.value", "NumericLessThan": 30}
                    ], "Next": "ValueInTwenties"}
                ],
                "Default": "DefaultState"
            },
            "Public": {"Type": "Pass", "Result": "Public", "End": true},
            "ValueIsZero": {"Type": "Pass", "Result": "ValueIsZero", "End": true},
            "ValueInTwenties": {"Type": "Pass", "Result": "ValueInTwenties", "End": true},
            "DefaultState": {"Type": "Fail", "Error": "DefaultStateError", "Cause": "No Matches!"}
        }
    })
}

#[tokio::test(start_paused = true)]
async fn developer_guide_choice_example_routes_each_input() {
    let engine = engine();
    let cases = [
        (json!({"type": "Public", "value": 1}), Some(json!("Public"))),
        (
            json!({"type": "Private", "value": 0}),
            Some(json!("ValueIsZero")),
        ),
        (
            json!({"type": "Private", "value": 25}),
            Some(json!("ValueInTwenties")),
        ),
    ];
    for (input, expected) in cases {
        let done = run(&engine, &choice_machine(), input.clone()).await;
        assert_eq!(done.output, expected, "{input}");
    }
    let done = run(
        &engine,
        &choice_machine(),
        json!({"type": "Private", "value": 35}),
    )
    .await;
    assert_eq!(done.status, ExecutionStatus::Failed);
    assert_eq!(done.error.as_deref(), Some("DefaultStateError"));
    assert_eq!(done.cause.as_deref(), Some("No Matches!"));
}

#[tokio::test(start_paused = true)]
async fn choice_without_match_or_default_fails_with_no_choice_matched() {
    let machine = json!({"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [{"Variable": "$.v", "BooleanEquals": true, "Next": "S"}]},
        "S": {"Type": "Succeed"}
    }});
    let done = run(&engine(), &machine, json!({"v": false})).await;
    assert_eq!(done.error.as_deref(), Some("States.NoChoiceMatched"));
}

#[tokio::test(start_paused = true)]
async fn fail_state_reads_error_and_cause_from_paths_and_intrinsics() {
    let machine = json!({"StartAt": "F", "States": {"F": {
        "Type": "Fail", "ErrorPath": "$.code", "CausePath": "States.Format('device {} failed', $.device)"
    }}});
    let done = run(
        &engine(),
        &machine,
        json!({"code": "Upgrade.Failed", "device": "d9"}),
    )
    .await;
    assert_eq!(done.error.as_deref(), Some("Upgrade.Failed"));
    assert_eq!(done.cause.as_deref(), Some("device d9 failed"));
}

#[tokio::test(start_paused = true)]
async fn wait_seconds_and_timestamps() {
    let machine = json!({"StartAt": "W1", "States": {
        "W1": {"Type": "Wait", "Seconds": 10, "Next": "W2"},
        "W2": {"Type": "Wait", "SecondsPath": "$.delay", "Next": "W3"},
        "W3": {"Type": "Wait", "Timestamp": "2001-01-01T00:00:00Z", "End": true}
    }});
    let started = Instant::now();
    let done = run(&engine(), &machine, json!({"delay": 5})).await;
    assert_eq!(done.output, Some(json!({"delay": 5})));
    assert_eq!(started.elapsed(), Duration::from_secs(15));
}

#[tokio::test(start_paused = true)]
async fn wait_timestamp_path_waits_until_that_time() {
    let engine = engine();
    let machine = json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "TimestampPath": "$.at", "End": true}}});
    let at = (chrono::Utc::now() + chrono::Duration::seconds(3600))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let started = Instant::now();
    run(&engine, &machine, json!({"at": at})).await;
    let waited = started.elapsed().as_secs();
    assert!((3598..=3600).contains(&waited), "{waited}");
}

#[tokio::test(start_paused = true)]
async fn time_scale_shrinks_every_timer() {
    let engine = engine_with_scale(0.01);
    let script = Script::new(vec![fail("E", ""), Ok(json!("ok"))]);
    engine.register(SCRIPT, script.clone());
    let machine = json!({"StartAt": "W", "States": {
        "W": {"Type": "Wait", "Seconds": 100, "Next": "T"},
        "T": {"Type": "Task", "Resource": SCRIPT, "Retry": [{"ErrorEquals": ["E"], "IntervalSeconds": 300}], "End": true}
    }});
    let started = Instant::now();
    let done = run(&engine, &machine, json!({})).await;
    assert_eq!(done.output, Some(json!("ok")));
    assert_eq!(started.elapsed(), Duration::from_secs(4));
}

#[tokio::test(start_paused = true)]
async fn execution_timeout_ends_the_execution_as_timed_out() {
    let engine = engine();
    let machine = json!({"TimeoutSeconds": 60, "StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": true}}});
    let done = run(&engine, &machine, json!({})).await;
    assert_eq!(done.status, ExecutionStatus::TimedOut);
    assert_eq!(done.error.as_deref(), Some("States.Timeout"));
    assert_eq!(
        (done.stop_date.unwrap() - done.start_date).num_seconds(),
        60
    );
}

fn parallel_machine() -> Value {
    json!({"StartAt": "P", "States": {
        "P": {
            "Type": "Parallel",
            "Branches": [
                {"StartAt": "A", "States": {"A": {"Type": "Wait", "Seconds": 5, "Next": "A2"}, "A2": {"Type": "Pass", "Parameters": {"branch": "a", "v.$": "$.v"}, "End": true}}},
                {"StartAt": "B", "States": {"B": {"Type": "Pass", "Result": "b", "End": true}}}
            ],
            "ResultSelector": {"first.$": "$[0]", "second.$": "$[1]"},
            "ResultPath": "$.results",
            "Next": "Done"
        },
        "Done": {"Type": "Succeed"}
    }})
}

#[tokio::test(start_paused = true)]
async fn parallel_runs_branches_concurrently_and_collects_results_in_order() {
    let started = Instant::now();
    let done = run(&engine(), &parallel_machine(), json!({"v": 1})).await;
    assert_eq!(
        done.output,
        Some(json!({"v": 1, "results": {"first": {"branch": "a", "v": 1}, "second": "b"}}))
    );
    assert_eq!(started.elapsed(), Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn parallel_fails_with_the_error_of_the_failing_branch_and_can_catch_it() {
    let engine = engine();
    engine.register(SCRIPT, Script::new(vec![fail("Branch.Broke", "oops")]));
    let mut machine = json!({"StartAt": "P", "States": {
        "P": {"Type": "Parallel", "Branches": [
            {"StartAt": "Slow", "States": {"Slow": {"Type": "Wait", "Seconds": 100, "End": true}}},
            {"StartAt": "Bad", "States": {"Bad": {"Type": "Task", "Resource": SCRIPT, "End": true}}}
        ], "End": true}
    }});
    let started = Instant::now();
    let done = run(&engine, &machine, json!({})).await;
    assert_eq!(done.status, ExecutionStatus::Failed);
    assert_eq!(done.error.as_deref(), Some("Branch.Broke"));
    assert_eq!(
        started.elapsed(),
        Duration::ZERO,
        "the other branch is cancelled"
    );

    machine["States"]["P"]["Catch"] =
        json!([{"ErrorEquals": ["Branch.Broke"], "ResultPath": "$.err", "Next": "Handled"}]);
    machine["States"]["P"]
        .as_object_mut()
        .unwrap()
        .remove("End");
    machine["States"]["P"]["Next"] = json!("Done");
    machine["States"]["Done"] = json!({"Type": "Succeed"});
    machine["States"]["Handled"] = json!({"Type": "Pass", "End": true});
    machine["States"]["P"]["Catch"][0]["Next"] = json!("Handled");
    machine["States"]["P"]["Next"] = json!("Done");
    let done = run(&engine, &machine, json!({"k": 1})).await;
    assert_eq!(
        done.output,
        Some(json!({"k": 1, "err": {"Error": "Branch.Broke", "Cause": "oops"}}))
    );
}

#[tokio::test(start_paused = true)]
async fn map_runs_each_item_with_item_selector_and_concurrency_limit() {
    let machine = json!({"StartAt": "M", "States": {"M": {
        "Type": "Map",
        "ItemsPath": "$.devices",
        "MaxConcurrency": 2,
        "ItemSelector": {"device.$": "$$.Map.Item.Value", "index.$": "$$.Map.Item.Index", "fw.$": "$.firmware"},
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "INLINE"},
            "StartAt": "Work",
            "States": {"Work": {"Type": "Wait", "Seconds": 10, "End": true}}
        },
        "ResultPath": "$.results",
        "End": true
    }}});
    let started = Instant::now();
    let input = json!({"devices": ["a", "b", "c"], "firmware": "2.0"});
    let done = run(&engine(), &machine, input).await;
    assert_eq!(
        done.output.unwrap()["results"],
        json!([
            {"device": "a", "index": 0, "fw": "2.0"},
            {"device": "b", "index": 1, "fw": "2.0"},
            {"device": "c", "index": 2, "fw": "2.0"}
        ])
    );
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(20),
        "two rounds with MaxConcurrency 2"
    );
}

#[tokio::test(start_paused = true)]
async fn map_iteration_failure_fails_the_map_unless_tolerated() {
    let iterator = json!({"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [{"Variable": "$", "NumericGreaterThan": 2, "Next": "Bad"}], "Default": "Ok"},
        "Bad": {"Type": "Fail", "Error": "Too.Big"},
        "Ok": {"Type": "Pass", "End": true}
    }});
    let mut machine = json!({"StartAt": "M", "States": {"M": {"Type": "Map", "Iterator": iterator, "End": true}}});
    let engine = engine();
    let done = run(&engine, &machine, json!([1, 2, 3, 4])).await;
    assert_eq!(done.error.as_deref(), Some("Too.Big"));

    machine["States"]["M"]["ToleratedFailureCount"] = json!(2);
    let done = run(&engine, &machine, json!([1, 2, 3, 4])).await;
    assert_eq!(
        done.output,
        Some(json!([1, 2, {"Error": "Too.Big", "Cause": ""}, {"Error": "Too.Big", "Cause": ""}]))
    );
    machine["States"]["M"]["ToleratedFailureCount"] = json!(1);
    let done = run(&engine, &machine, json!([1, 2, 3, 4])).await;
    assert_eq!(
        done.error.as_deref(),
        Some("States.ExceedToleratedFailureThreshold")
    );
    machine["States"]["M"]["ToleratedFailurePercentage"] = json!(50);
    machine["States"]["M"]
        .as_object_mut()
        .unwrap()
        .remove("ToleratedFailureCount");
    let done = run(&engine, &machine, json!([1, 2, 3, 4])).await;
    assert_eq!(done.status, ExecutionStatus::Succeeded);
}

#[tokio::test(start_paused = true)]
async fn history_records_states_tasks_and_the_outcome() {
    let engine = engine();
    engine.register(ECHO, Arc::new(Echo));
    let machine = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": ECHO, "Parameters": {"x.$": "$.x"}, "Next": "P"},
        "P": {"Type": "Pass", "End": true}
    }});
    let arn = create(&engine, &machine);
    let exec = engine
        .start_execution(&arn, None, json!({"x": 1}))
        .await
        .unwrap();
    engine.wait_for_execution(&exec).await.unwrap();
    let history = engine.history(&exec).unwrap();
    let types: Vec<String> = history.iter().map(|e| e.event_type()).collect();
    assert_eq!(
        types,
        [
            "ExecutionStarted",
            "TaskStateEntered",
            "TaskScheduled",
            "TaskStarted",
            "TaskSucceeded",
            "TaskStateExited",
            "PassStateEntered",
            "PassStateExited",
            "ExecutionSucceeded"
        ]
    );
    let ids: Vec<u64> = history.iter().map(|e| e.id).collect();
    assert_eq!(ids, (1..=9).collect::<Vec<_>>());
    assert!(
        matches!(&history[2].details, wme_asl::EventDetails::TaskScheduled { parameters, .. } if parameters == &json!({"x": 1}))
    );
}

#[tokio::test(start_paused = true)]
async fn subscribers_see_started_and_finished() {
    let engine = engine();
    let mut events = engine.subscribe();
    let machine = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}});
    let done = run(&engine, &machine, json!({})).await;
    let arn = done.execution_arn;
    assert_eq!(
        events.recv().await.unwrap(),
        ExecutionEvent::Started { arn: arn.clone() }
    );
    assert_eq!(
        events.recv().await.unwrap(),
        ExecutionEvent::Finished {
            arn,
            status: ExecutionStatus::Succeeded
        }
    );
}

#[tokio::test(start_paused = true)]
async fn same_name_and_input_while_running_returns_the_same_execution() {
    let engine = engine();
    let machine =
        json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 5, "End": true}}});
    let arn = create(&engine, &machine);
    let first = engine
        .start_execution(&arn, Some("x"), json!({"a": 1}))
        .await
        .unwrap();
    let again = engine
        .start_execution(&arn, Some("x"), json!({"a": 1}))
        .await
        .unwrap();
    assert_eq!(first, again);
    let other = engine
        .start_execution(&arn, Some("x"), json!({"a": 2}))
        .await
        .unwrap_err();
    assert!(matches!(
        other,
        wme_asl::StartError::ExecutionAlreadyExists(_)
    ));
    let missing = engine
        .start_execution("arn:nope", None, json!({}))
        .await
        .unwrap_err();
    assert_eq!(
        missing.to_string(),
        "state machine does not exist: arn:nope"
    );
}
