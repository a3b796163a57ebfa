//! `wme states run --db` and `wme executions list|describe|history` through the real binary:
//! what one process stores, another reads back, with the documented output and exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn wme(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wme"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("the wme binary runs")
}

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cli_executions_{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory is writable");
    dir
}

fn write_definition(dir: &Path, definition: &Value) -> String {
    let path = dir.join("definition.json");
    std::fs::write(&path, definition.to_string()).expect("scratch file is writable");
    text(&path)
}

fn text(path: &Path) -> String {
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

/// Pass adds a result, Wait (one second, run 100 times faster), then a Choice succeeds when the
/// input names a device and fails otherwise.
fn pass_wait_choice() -> Value {
    json!({
        "StartAt": "Prepare",
        "States": {
            "Prepare": {"Type": "Pass", "Result": {"version": 2}, "ResultPath": "$.target",
                        "Next": "Pause"},
            "Pause": {"Type": "Wait", "Seconds": 1, "Next": "Decide"},
            "Decide": {"Type": "Choice", "Default": "Refuse", "Choices": [
                {"Variable": "$.device", "IsPresent": true, "Next": "Done"}
            ]},
            "Done": {"Type": "Succeed"},
            "Refuse": {"Type": "Fail", "Error": "Upgrade.Refused", "Cause": "no device given"}
        }
    })
}

/// Runs the definition with `--db` in `dir`; returns the store's path and the run's output.
fn run_stored(dir: &Path, definition: &Value, input: &str) -> (String, Output) {
    let file = write_definition(dir, definition);
    let db = text(&dir.join("wme.db"));
    let args = [
        "states",
        "run",
        &file,
        "--input",
        input,
        "--time-scale",
        "0.01",
        "--db",
        &db,
    ];
    let run = wme(&args);
    (db, run)
}

fn only_execution(db: &str) -> Value {
    let list = stdout_json(&wme(&["executions", "list", "--db", db, "--json"]));
    let list = list.as_array().expect("list --json is an array");
    assert_eq!(list.len(), 1, "one execution stored: {list:?}");
    list[0].clone()
}

#[test]
fn a_stored_run_is_listed_described_and_its_history_read_back() {
    let dir = scratch("succeeded");
    let (db, run) = run_stored(&dir, &pass_wait_choice(), r#"{"device":"d1"}"#);
    assert_eq!(
        stdout(&run),
        "{\"device\":\"d1\",\"target\":{\"version\":2}}\n"
    );
    assert!(run.status.success(), "{}", stderr(&run));

    let execution = only_execution(&db);
    let name = execution["name"].as_str().unwrap().to_string();
    assert_eq!(execution["status"], "SUCCEEDED");
    assert_eq!(
        execution["stateMachineArn"],
        "arn:aws:states:local:000000000000:stateMachine:wme-states-run"
    );

    let list = wme(&["executions", "list", "--db", &db]);
    let line = stdout(&list);
    let fields: Vec<&str> = line.trim_end().split(' ').collect();
    assert_eq!(fields.len(), 5, "{line}");
    assert_eq!(fields[..3], [name.as_str(), "SUCCEEDED", "wme-states-run"]);
    assert_eq!(fields[3], execution["startDate"]);
    assert_eq!(fields[4], execution["stopDate"]);

    let described = stdout_json(&wme(&[
        "executions",
        "describe",
        "--db",
        &db,
        &name,
        "--json",
    ]));
    assert_eq!(
        described["output"],
        json!({"device": "d1", "target": {"version": 2}})
    );
    assert_eq!(described["input"], json!({"device": "d1"}));
    assert_eq!(described["error"], Value::Null);
    assert_eq!(described, execution);

    let history = wme(&["executions", "history", "--db", &db, &name]);
    let types: Vec<String> = stdout(&history)
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let fields: Vec<&str> = line.split(' ').collect();
            assert_eq!(fields[0], (i + 1).to_string(), "{line}");
            fields[2].to_string()
        })
        .collect();
    assert_eq!(
        types,
        [
            "ExecutionStarted",
            "PassStateEntered",
            "PassStateExited",
            "WaitStateEntered",
            "WaitStateExited",
            "ChoiceStateEntered",
            "ChoiceStateExited",
            "SucceedStateEntered",
            "SucceedStateExited",
            "ExecutionSucceeded",
        ]
    );
}

#[test]
fn the_json_history_has_the_shape_of_get_execution_history() {
    let dir = scratch("history_json");
    let (db, _) = run_stored(&dir, &pass_wait_choice(), r#"{"device":"d1"}"#);
    let arn = only_execution(&db)["executionArn"]
        .as_str()
        .unwrap()
        .to_string();

    let events = stdout_json(&wme(&[
        "executions",
        "history",
        "--db",
        &db,
        &arn,
        "--json",
    ]));
    let events = events.as_array().expect("an array of events");

    assert_eq!(events.len(), 10);
    for (i, event) in events.iter().enumerate() {
        assert_eq!(event["id"], i + 1);
        assert_eq!(event["previousEventId"], i);
        assert!(event["timestamp"].is_string(), "{event}");
    }
    assert_eq!(events[0]["type"], "ExecutionStarted");
    assert_eq!(
        events[0]["executionStartedEventDetails"]["input"],
        r#"{"device":"d1"}"#
    );
    assert_eq!(events[1]["type"], "PassStateEntered");
    assert_eq!(
        events[1]["stateEnteredEventDetails"],
        json!({"name": "Prepare", "input": r#"{"device":"d1"}"#})
    );
    assert_eq!(events[9]["type"], "ExecutionSucceeded");
    assert_eq!(
        events[9]["executionSucceededEventDetails"],
        json!({"output": r#"{"device":"d1","target":{"version":2}}"#})
    );
}

#[test]
fn a_failed_run_is_stored_with_its_error_and_cause() {
    let dir = scratch("failed");
    let (db, run) = run_stored(&dir, &pass_wait_choice(), r#"{"devices":[]}"#);
    assert_eq!(run.status.code(), Some(1));

    let execution = only_execution(&db);
    assert_eq!(execution["status"], "FAILED");
    assert_eq!(execution["error"], "Upgrade.Refused");
    assert_eq!(execution["cause"], "no device given");
    assert_eq!(execution["output"], Value::Null);

    let name = execution["name"].as_str().unwrap();
    let described = wme(&["executions", "describe", "--db", &db, name]);
    let text = stdout(&described);
    assert!(text.contains("\nstatus: FAILED\n"), "{text}");
    assert!(
        text.contains("\nerror: Upgrade.Refused\ncause: no device given\n"),
        "{text}"
    );
    let history = stdout(&wme(&["executions", "history", "--db", &db, name]));
    assert!(
        history.trim_end().ends_with(" ExecutionFailed"),
        "{history}"
    );
}

#[test]
fn runs_accumulate_in_one_store_newest_first() {
    let dir = scratch("two_runs");
    let (db, _) = run_stored(&dir, &pass_wait_choice(), r#"{"device":"a"}"#);
    run_stored(&dir, &pass_wait_choice(), r#"{"device":"b"}"#);

    let list = stdout_json(&wme(&["executions", "list", "--db", &db, "--json"]));
    let inputs: Vec<&Value> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["input"])
        .collect();
    assert_eq!(inputs, [&json!({"device": "b"}), &json!({"device": "a"})]);
}

#[test]
fn an_unknown_execution_exits_1_naming_it_and_the_store() {
    let dir = scratch("unknown");
    let (db, _) = run_stored(&dir, &pass_wait_choice(), "{}");

    for command in ["describe", "history"] {
        let output = wme(&["executions", command, "--db", &db, "no-such-run"]);
        assert_eq!(output.status.code(), Some(1));
        assert_eq!(
            stderr(&output),
            format!("error: no execution `no-such-run` in {db}\n")
        );
        assert_eq!(stdout(&output), "");
    }
}

#[test]
fn a_missing_store_exits_2_and_is_not_created() {
    let dir = scratch("missing");
    let db = text(&dir.join("absent.db"));

    let output = wme(&["executions", "list", "--db", &db]);

    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains(&format!("execution store {db} does not exist")));
    assert!(!Path::new(&db).exists());
}

#[test]
fn a_file_that_is_not_a_database_exits_2_naming_it() {
    let dir = scratch("not_a_database");
    let db = dir.join("notes.db");
    std::fs::write(&db, "these are notes, not SQLite").unwrap();
    let db = text(&db);

    let output = wme(&["executions", "describe", "--db", &db, "x"]);

    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(message.starts_with(&format!("error: cannot open the execution store {db}")));
    assert!(message.contains("not a database"), "{message}");
}

#[test]
fn a_killed_run_reads_back_as_running_with_its_history_unchanged() {
    let dir = scratch("running");
    let file = write_definition(
        &dir,
        &json!({"StartAt": "Long", "States": {"Long": {"Type": "Wait", "Seconds": 3600, "Next": "After"},
                "After": {"Type": "Pass", "End": true}}}),
    );
    let db = text(&dir.join("wme.db"));
    let mut child = spawn_run(&file, &db);
    let deadline = Instant::now() + Duration::from_secs(30);
    let running = wait_until_stored_running(&db, deadline);
    child.kill().expect("the run can be killed");
    child.wait().unwrap();
    let name = running["name"].as_str().unwrap().to_string();
    let before = stdout(&wme(&["executions", "history", "--db", &db, &name]));

    let again = only_execution(&db);
    let after = stdout(&wme(&["executions", "history", "--db", &db, &name]));

    assert_eq!(again["status"], "RUNNING");
    assert_eq!(again["stopDate"], Value::Null);
    assert_eq!(before, after);
    assert!(before.trim_end().ends_with(" WaitStateEntered"), "{before}");
}

/// Starts `wme states run FILE --db DB` in the background.
fn spawn_run(file: &str, db: &str) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_wme"))
        .args(["states", "run", file, "--db", db])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the wme binary starts")
}

/// Reads the store until it holds a running execution that entered its Wait state.
fn wait_until_stored_running(db: &str, deadline: Instant) -> Value {
    loop {
        let output = wme(&["executions", "list", "--db", db, "--json"]);
        let list = serde_json::from_slice::<Value>(&output.stdout).unwrap_or_default();
        if let Some(execution) = list.as_array().and_then(|list| list.first()) {
            let name = execution["name"].as_str().unwrap_or_default();
            let history = stdout(&wme(&["executions", "history", "--db", db, name]));
            if history.contains(" WaitStateEntered") {
                return execution.clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "the running execution never showed up in {db}"
        );
        std::thread::yield_now();
    }
}

#[test]
fn a_second_run_on_a_store_in_use_is_refused_while_readers_still_read_it() {
    let dir = scratch("in_use");
    let file = write_definition(
        &dir,
        &json!({"StartAt": "Long", "States": {"Long": {"Type": "Wait", "Seconds": 3600, "Next": "After"},
                "After": {"Type": "Pass", "End": true}}}),
    );
    let db = text(&dir.join("wme.db"));
    let mut first = spawn_run(&file, &db);
    let running = wait_until_stored_running(&db, Instant::now() + Duration::from_secs(30));

    let second = wme(&["states", "run", &file, "--db", &db]);
    let listed = wme(&["executions", "list", "--db", &db, "--json"]);
    first.kill().expect("the first run can be killed");
    first.wait().unwrap();

    assert_eq!(second.status.code(), Some(2), "{}", stderr(&second));
    assert!(
        stderr(&second).contains(&format!(
            "the execution store {db} is in use by another process"
        )),
        "{}",
        stderr(&second)
    );
    assert_eq!(listed.status.code(), Some(0), "{}", stderr(&listed));
    assert_eq!(stdout_json(&listed)[0]["name"], running["name"]);
}
