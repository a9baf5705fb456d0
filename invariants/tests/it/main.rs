//! The integration tests of `fixd-invariants`: the oracle's invariant run, the vault's property
//! run, and scenarios that pin down what the runs rely on (the digest, EIP-7702 delegation,
//! payees in every mode).

mod run;
mod scenarios;
mod support;
mod vault;
