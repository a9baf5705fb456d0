//! fixd-node integration tests: real `fixd` processes on loopback.

mod harness;
mod observation;
