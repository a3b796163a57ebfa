//! End-to-end tests of the embedded broker: real rumqttc clients (and a few raw packets) over
//! TCP on 127.0.0.1, each test with its own broker on a free port.

mod access;
mod clients;
mod lifecycle;
mod protocol;
mod scale;
