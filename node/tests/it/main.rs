//! fixd-node integration tests: real `fixd` processes on loopback.

mod certification;
mod cli;
mod contract;
mod harness;
mod observation;
