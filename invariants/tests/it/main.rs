//! The integration tests of `fixd-invariants`: the invariant run itself, and scenarios that pin
//! down what the run relies on (the digest, EIP-7702 delegation, payees in every mode).

mod run;
mod scenarios;
