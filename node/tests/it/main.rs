//! fixd-node integration tests: real `fixd` processes on loopback.

mod cli;
mod contract;
mod harness;
mod observation;
