//! fixd-node integration tests: real `fixd` processes on loopback.

mod cli;
mod harness;
mod observation;
