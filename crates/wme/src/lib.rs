//! The `wme` command's library side: campaigns against the local platform with simulated
//! devices, shared by `wme demo` and the end-to-end tests.

pub mod campaign;
