//! fixd-node integration tests: real `fixd` processes on loopback.

mod certification;
mod chain_service;
mod cli;
mod contract;
mod devnet;
mod disputes;
mod docker;
mod harness;
mod observation;
mod publication;
