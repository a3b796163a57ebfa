//! Errors as ASL sees them: a name that `Retry`/`Catch` match and a human-readable cause.
//!
//! The predefined names are those of the Amazon States Language; matching follows AWS Step
//! Functions: `States.ALL` matches every error except the terminal ones (`States.Runtime`,
//! `States.DataLimitExceeded`), and `States.TaskFailed` matches the same set minus `States.Timeout`.

use serde_json::{Value, json};

pub const ALL: &str = "States.ALL";
pub const TIMEOUT: &str = "States.Timeout";
pub const HEARTBEAT_TIMEOUT: &str = "States.HeartbeatTimeout";
pub const TASK_FAILED: &str = "States.TaskFailed";
pub const RUNTIME: &str = "States.Runtime";
pub const DATA_LIMIT_EXCEEDED: &str = "States.DataLimitExceeded";
pub const RESULT_PATH_MATCH_FAILURE: &str = "States.ResultPathMatchFailure";
pub const PARAMETER_PATH_FAILURE: &str = "States.ParameterPathFailure";
pub const INTRINSIC_FAILURE: &str = "States.IntrinsicFailure";
pub const NO_CHOICE_MATCHED: &str = "States.NoChoiceMatched";
pub const BRANCH_FAILED: &str = "States.BranchFailed";
pub const PERMISSIONS: &str = "States.Permissions";
pub const ITEM_READER_FAILED: &str = "States.ItemReaderFailed";
pub const EXCEED_TOLERATED_FAILURE_THRESHOLD: &str = "States.ExceedToleratedFailureThreshold";

/// An error raised while running a state: what `Retry`/`Catch` see and what a failed
/// execution reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatesError {
    pub error: String,
    pub cause: String,
}

impl StatesError {
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            cause: cause.into(),
        }
    }

    pub fn runtime(cause: impl Into<String>) -> Self {
        Self::new(RUNTIME, cause)
    }

    pub fn intrinsic(cause: impl Into<String>) -> Self {
        Self::new(INTRINSIC_FAILURE, cause)
    }

    /// Terminal errors end the execution whatever the state's `Retry` and `Catch` say.
    pub fn is_terminal(&self) -> bool {
        self.error == RUNTIME || self.error == DATA_LIMIT_EXCEEDED
    }

    /// The error output a `Catch` hands to its `ResultPath`.
    pub fn to_output(&self) -> Value {
        json!({ "Error": self.error, "Cause": self.cause })
    }
}

impl std::fmt::Display for StatesError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.cause)
    }
}

/// Whether an `ErrorEquals` list matches `error`. As the Step Functions guide defines them,
/// `States.Timeout` covers a task that ran past TimeoutSeconds or missed its heartbeat, and
/// `States.TaskFailed` matches every known error but `States.Timeout` itself (the guide excludes
/// only that name, so a missed heartbeat matches both).
pub fn error_equals_matches(error_equals: &[String], error: &StatesError) -> bool {
    if error.is_terminal() {
        return false;
    }
    let timed_out = error.error == TIMEOUT || error.error == HEARTBEAT_TIMEOUT;
    error_equals.iter().any(|name| match name.as_str() {
        ALL => true,
        TIMEOUT => timed_out,
        TASK_FAILED => error.error != TIMEOUT,
        other => other == error.error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn states_all_matches_custom_and_predefined_errors() {
        let all = names(&[ALL]);
        assert!(error_equals_matches(
            &all,
            &StatesError::new("MyError", "x")
        ));
        assert!(error_equals_matches(&all, &StatesError::new(TIMEOUT, "x")));
    }

    #[test]
    fn states_all_does_not_match_terminal_errors() {
        let all = names(&[ALL, RUNTIME]);
        assert!(!error_equals_matches(&all, &StatesError::runtime("x")));
        assert!(!error_equals_matches(
            &all,
            &StatesError::new(DATA_LIMIT_EXCEEDED, "x")
        ));
    }

    #[test]
    fn task_failed_matches_everything_but_timeout() {
        let tf = names(&[TASK_FAILED]);
        assert!(error_equals_matches(
            &tf,
            &StatesError::new("Lambda.Unknown", "x")
        ));
        assert!(error_equals_matches(
            &tf,
            &StatesError::new(HEARTBEAT_TIMEOUT, "x")
        ));
        assert!(!error_equals_matches(&tf, &StatesError::new(TIMEOUT, "x")));
    }

    #[test]
    fn named_errors_match_exactly_and_case_sensitively() {
        let list = names(&["Custom.Error"]);
        assert!(error_equals_matches(
            &list,
            &StatesError::new("Custom.Error", "")
        ));
        assert!(!error_equals_matches(
            &list,
            &StatesError::new("custom.error", "")
        ));
    }
}
