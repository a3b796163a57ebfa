//! `wme states validate` and `wme states run` through the real binary: output on stdout, messages
//! on stderr and the documented exit codes.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::{Value, json};

const FIRMWARE_UPGRADE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../statemachine/firmware_upgrade.asl.json"
);

const SUBSTITUTIONS: [&str; 3] = [
    "SendUspCommandFunctionArn=arn:aws:lambda:local:000000000000:function:send",
    "AwaitDeviceEventFunctionArn=arn:aws:lambda:local:000000000000:function:await",
    "UpdateJobExecutionFunctionArn=arn:aws:lambda:local:000000000000:function:update",
];

fn wme(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wme"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("the wme binary runs")
}

/// Writes a definition into this test binary's scratch directory and returns its path.
fn definition_file(name: &str, definition: &Value) -> String {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cli_states_{name}.json"));
    std::fs::write(&path, definition.to_string()).expect("scratch file is writable");
    path.to_str().expect("utf-8 path").to_string()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("utf-8 stdout")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("utf-8 stderr")
}

fn stdout_json(output: &Output) -> Value {
    serde_json::from_str(&stdout(output)).expect("stdout is one JSON document")
}

fn validate_with_substitutions(extra: &[&str]) -> Output {
    let mut args = vec!["states", "validate", FIRMWARE_UPGRADE];
    for substitution in SUBSTITUTIONS {
        args.extend(["--substitute", substitution]);
    }
    args.extend(extra);
    wme(&args)
}

#[test]
fn the_firmware_upgrade_definition_is_valid_with_its_three_substitutions() {
    let output = validate_with_substitutions(&[]);

    assert_eq!(stdout(&output), format!("{FIRMWARE_UPGRADE}: valid\n"));
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
}

#[test]
fn the_firmware_upgrade_definition_is_valid_in_json_output() {
    let output = validate_with_substitutions(&["--json"]);

    assert_eq!(stdout_json(&output), json!({"valid": true, "problems": []}));
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn the_firmware_upgrade_definition_without_substitutions_reports_each_placeholder_use() {
    let output = wme(&["states", "validate", FIRMWARE_UPGRADE, "--json"]);

    let unresolved = |pointer: &str, name: &str| {
        json!({
            "pointer": pointer,
            "message": format!(
                "unresolved substitution ${{{name}}}: no definition substitution named \"{name}\""
            ),
        })
    };
    let await_event = |branch: u32, state: &str| {
        unresolved(
            &format!(
                "/States/AwaitNotifications/Branches/{branch}/States/{state}/Parameters/FunctionName"
            ),
            "AwaitDeviceEventFunctionArn",
        )
    };
    let expected = json!({
        "valid": false,
        "problems": [
            await_event(0, "AwaitTransferComplete"),
            await_event(1, "AwaitOperationComplete"),
            await_event(2, "AwaitBoot"),
            unresolved(
                "/States/MarkInProgress/Parameters/FunctionName",
                "UpdateJobExecutionFunctionArn"
            ),
            unresolved(
                "/States/MarkJobExecution/Parameters/FunctionName",
                "UpdateJobExecutionFunctionArn"
            ),
            unresolved(
                "/States/SendDownload/Parameters/FunctionName",
                "SendUspCommandFunctionArn"
            ),
        ],
    });
    assert_eq!(stdout_json(&output), expected);
    assert_eq!(output.status.code(), Some(1));
}

fn several_problems() -> Value {
    json!({
        "StartAt": "Prepare",
        "States": {
            "Prepare": {"Type": "Pass", "Next": "Missing", "Retry": []},
            "Orphan": {"Type": "Succeed"},
            "Wait": {"Type": "Wait", "End": true}
        }
    })
}

#[test]
fn a_definition_with_several_problems_reports_each_with_its_pointer() {
    let file = definition_file("several_problems", &several_problems());

    let output = wme(&["states", "validate", &file]);

    let expected = [
        format!(
            "{file}#/States/Orphan: state \"Orphan\" is not reachable from StartAt \"Prepare\""
        ),
        format!("{file}#/States/Prepare/Next: \"Missing\" is not a state in this block"),
        format!("{file}#/States/Prepare/Retry: field \"Retry\" is not valid in a Pass state"),
        format!(
            "{file}#/States/Wait: a Wait state needs one of Seconds, SecondsPath, Timestamp or \
             TimestampPath"
        ),
        format!("{file}#/States/Wait: state \"Wait\" is not reachable from StartAt \"Prepare\""),
    ];
    assert_eq!(stdout(&output), expected.join("\n") + "\n");
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn a_definition_with_several_problems_reports_them_as_json() {
    let file = definition_file("several_problems_json", &several_problems());

    let output = wme(&["states", "validate", &file, "--json"]);

    let report = stdout_json(&output);
    assert_eq!(report["valid"], json!(false));
    let pointers: Vec<_> = report["problems"]
        .as_array()
        .expect("problems is an array")
        .iter()
        .map(|p| p["pointer"].as_str().expect("pointer is a string"))
        .collect();
    assert_eq!(
        pointers,
        [
            "/States/Orphan",
            "/States/Prepare/Next",
            "/States/Prepare/Retry",
            "/States/Wait",
            "/States/Wait"
        ]
    );
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn an_unresolved_placeholder_is_reported_beside_the_other_problems() {
    let definition = json!({
        "StartAt": "First",
        "States": {
            "First": {"Type": "Pass", "Next": "${NextState}"},
            "Second": {"Type": "Pass", "Result": "x", "ResultPath": "$$.bad", "End": true}
        }
    });
    let file = definition_file("placeholder_and_problems", &definition);

    let output = wme(&["states", "validate", &file, "--json"]);

    let pointers: Vec<_> = stdout_json(&output)["problems"]
        .as_array()
        .expect("problems is an array")
        .iter()
        .map(|p| {
            p["pointer"]
                .as_str()
                .expect("pointer is a string")
                .to_string()
        })
        .collect();
    assert_eq!(
        pointers,
        [
            "/States/First/Next",
            "/States/Second",
            "/States/Second/ResultPath"
        ]
    );
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn a_definition_that_is_not_json_is_a_start_up_error_naming_the_file() {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli_states_not_json.json");
    std::fs::write(&path, "{\"StartAt\": ").unwrap();
    let file = path.to_str().unwrap();

    let output = wme(&["states", "validate", file]);

    assert_eq!(
        stderr(&output),
        format!(
            "error: definition {file} is not valid JSON: EOF while parsing a value at line 1 column 12\n"
        )
    );
    assert_eq!(stdout(&output), "");
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn a_missing_definition_file_is_a_start_up_error_naming_the_file() {
    let file = concat!(
        env!("CARGO_TARGET_TMPDIR"),
        "/cli_states_does_not_exist.json"
    );

    let output = wme(&["states", "validate", file]);

    assert!(
        stderr(&output).starts_with(&format!("error: cannot read definition {file}: ")),
        "stderr: {}",
        stderr(&output)
    );
    assert_eq!(output.status.code(), Some(2));
}

fn pass_and_choice() -> Value {
    json!({
        "StartAt": "Shape",
        "States": {
            "Shape": {
                "Type": "Pass",
                "Parameters": {"device.$": "$.device", "attempt": 1},
                "ResultPath": "$.request",
                "Next": "Route"
            },
            "Route": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.version", "StringEquals": "1.2.3", "Next": "Current"}],
                "Default": "Outdated"
            },
            "Current": {
                "Type": "Pass",
                "Result": {"action": "none"},
                "ResultPath": "$.decision",
                "End": true
            },
            "Outdated": {
                "Type": "Pass",
                "Result": {"action": "upgrade"},
                "ResultPath": "$.decision",
                "OutputPath": "$.decision",
                "End": true
            }
        }
    })
}

#[test]
fn running_a_pass_and_choice_definition_prints_the_output_of_the_taken_branch() {
    let file = definition_file("pass_and_choice", &pass_and_choice());

    let current = wme(&[
        "states",
        "run",
        &file,
        "--input",
        r#"{"device": "d1", "version": "1.2.3"}"#,
    ]);
    let outdated = wme(&[
        "states",
        "run",
        &file,
        "--input",
        r#"{"device": "d2", "version": "1.2.1"}"#,
    ]);

    assert_eq!(
        stdout_json(&current),
        json!({
            "device": "d1",
            "version": "1.2.3",
            "request": {"device": "d1", "attempt": 1},
            "decision": {"action": "none"}
        })
    );
    assert_eq!(
        current.status.code(),
        Some(0),
        "stderr: {}",
        stderr(&current)
    );
    assert_eq!(stdout(&outdated), "{\"action\":\"upgrade\"}\n");
    assert_eq!(outdated.status.code(), Some(0));
}

#[test]
fn the_input_can_come_from_a_file() {
    let file = definition_file("pass_and_choice_input_file", &pass_and_choice());
    let input = definition_file("input", &json!({"device": "d3", "version": "0.9"}));

    let output = wme(&["states", "run", &file, "--input-file", &input]);

    assert_eq!(stdout(&output), "{\"action\":\"upgrade\"}\n");
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn a_fail_state_prints_its_error_and_cause_and_exits_1() {
    let definition = json!({
        "StartAt": "Check",
        "States": {
            "Check": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.ok", "BooleanEquals": true, "Next": "Done"}],
                "Default": "Broken"
            },
            "Done": {"Type": "Succeed"},
            "Broken": {
                "Type": "Fail",
                "Error": "Device.Broken",
                "Cause": "the device reported ok=false"
            }
        }
    });
    let file = definition_file("fail", &definition);

    let output = wme(&["states", "run", &file, "--input", r#"{"ok": false}"#]);

    assert_eq!(
        stdout_json(&output),
        json!({"error": "Device.Broken", "cause": "the device reported ok=false"})
    );
    assert_eq!(stdout(&output).lines().count(), 1);
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn a_wait_runs_at_the_given_time_scale() {
    let definition = json!({
        "StartAt": "Pause",
        "States": {"Pause": {"Type": "Wait", "Seconds": 3600, "End": true}}
    });
    let file = definition_file("wait", &definition);

    let output = wme(&[
        "states",
        "run",
        &file,
        "--input",
        "[1, 2]",
        "--time-scale",
        "0.0001",
    ]);

    assert_eq!(stdout(&output), "[1,2]\n");
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn an_execution_that_outlives_the_timeout_is_stopped_and_exits_1() {
    let definition = json!({
        "StartAt": "Pause",
        "States": {"Pause": {"Type": "Wait", "Seconds": 3600, "End": true}}
    });
    let file = definition_file("wait_too_long", &definition);

    let output = wme(&["states", "run", &file, "--timeout-secs", "1"]);

    assert_eq!(
        stdout_json(&output),
        json!({
            "error": "Wme.RunTimeout",
            "cause": "the execution did not finish within 1 second(s) (--timeout-secs)"
        })
    );
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn a_definition_with_a_task_is_refused_naming_the_state_and_resource() {
    let definition = json!({
        "StartAt": "Prepare",
        "States": {
            "Prepare": {"Type": "Pass", "Next": "Call"},
            "Call": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": true}
        }
    });
    let file = definition_file("task", &definition);

    let output = wme(&["states", "run", &file, "--input", "{}"]);

    assert_eq!(
        stderr(&output),
        format!(
            "error: {file} has Task states, which `wme states run` cannot run (it has no task \
             handlers; only Pass, Choice, Wait, Parallel, Map, Succeed and Fail run):\n  \
             state \"Call\" uses resource \"arn:aws:states:::lambda:invoke\"\n"
        )
    );
    assert_eq!(stdout(&output), "");
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn input_that_is_not_json_exits_2_naming_the_problem() {
    let file = definition_file("bad_input", &pass_and_choice());

    let output = wme(&["states", "run", &file, "--input", r#"{"device":"#]);

    assert_eq!(
        stderr(&output),
        "error: --input is not valid JSON: EOF while parsing a value at line 1 column 10\n"
    );
    assert_eq!(stdout(&output), "");
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn running_an_invalid_definition_exits_2_listing_its_problems() {
    let file = definition_file("run_invalid", &several_problems());

    let output = wme(&["states", "run", &file]);

    assert!(
        stderr(&output).starts_with(&format!(
            "error: {file} is not a valid definition:\n{file}#/States/Orphan: "
        )),
        "stderr: {}",
        stderr(&output)
    );
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn validate_checks_the_parameters_of_nested_executions_as_the_engine_does() {
    let file = definition_file(
        "nested_params",
        &json!({"StartAt": "T", "States": {"T": {
            "Type": "Task", "Resource": "arn:aws:states:::states:startExecution.sync",
            "Parameters": {"Input": {}, "Foo": 1}, "End": true}}}),
    );

    let output = wme(&["states", "validate", &file]);

    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    let text = stdout(&output);
    assert!(text.contains("/States/T/Parameters/Foo"), "{text}");
    assert!(text.contains("StateMachineArn"), "{text}");
}
