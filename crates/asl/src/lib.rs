//! `wme_asl`: a local Amazon States Language engine that behaves like AWS Step Functions
//! (Standard workflows, JSONPath query language).
//!
//! Layers, each usable on its own:
//! - [`definition`]: parse and validate ASL JSON into a [`definition::StateMachine`];
//! - [`path`], [`template`], [`intrinsic`], [`choice`], [`io`]: JSONPath, payload templates,
//!   intrinsic functions, Choice rules and input/output processing, all pure functions;
//! - [`variables`], [`assign`]: workflow variables (names, scopes, limits) and the `Assign`
//!   field that sets them;
//! - [`runtime`]: the [`Engine`] that runs executions on tokio, calls registered
//!   [`TaskHandler`]s, handles task-token callbacks and records history; in memory
//!   ([`Engine::new`]) or durable in a SQLite file ([`Engine::open`], [`Engine::resume`]).

pub mod assign;
pub mod choice;
pub mod definition;
pub mod error;
pub mod intrinsic;
pub mod io;
pub mod nesting;
pub mod path;
pub mod runtime;
pub mod template;
pub mod variables;

pub use definition::{IntegrationPattern, LoadError, ValidationError};
pub use error::StatesError;
pub use runtime::{
    AssignedVariables, AssignedVariablesDetails, CallbackError, Engine, EngineConfig, EventDetails,
    ExecutionDescription, ExecutionEvent, ExecutionStatus, HistoryEvent, Payload, StartError,
    StopError, StoreError, TaskCall, TaskFailure, TaskHandler, validate_definition,
};
