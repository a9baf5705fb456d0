//! End-to-end tests of the `fixd` binary: real `fixd` processes on loopback, a real anvil with
//! the real contract, and the replay venues, driven through the test kit's harness.

use fixd_testkit::harness;

mod certification;
mod chain_service;
mod cli;
mod contract;
mod devnet;
mod disputes;
mod docker;
mod observation;
mod publication;
