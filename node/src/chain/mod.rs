//! The Ethereum side of fixd: the `SettlementOracle` contract (DESIGN sections 5.5, 6 and 7).
//!
//! ```text
//!   FinalReport (fixd-proto) ── to_sol ──▶ contract::SettlementOracle::FinalReport ──┐
//!   members' EIP-712 signatures ── ordered_signatures (ascending signer) ────────────┴─▶ publish
//! ```
//!
//! [`contract`] holds the bindings, generated at build time from the committed artifact
//! `contracts/out/SettlementOracle.json` (which `contracts/build.mjs` compiles with the pinned
//! solc), the conversions from the proto types and a [`deploy`] helper. [`consumers`] binds and
//! deploys what reads settlements: the P/N vault and the read adapters. [`service`] is the one
//! task that sends this member's transactions and reads the contract's state.

pub mod consumers;
pub mod contract;
pub mod reader;
pub mod redact;
pub mod service;

use std::time::Duration;

use alloy::primitives::B256;

pub use contract::{SettlementOracle, deploy, ordered_signatures, packed_batch, report_to_sol};
pub use fixd_proto::types::report::BatchError;
pub use reader::{BondError, ChainReader};
pub use service::{ChainCommand, ChainHandle, ChainService, ChainStatus, ChainUpdate};

/// Why a chain operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("contract call failed: {0}")]
    Contract(#[from] alloy::contract::Error),
    #[error("waiting for the transaction failed: {0}")]
    Pending(#[from] alloy::providers::PendingTransactionError),
    #[error(
        "no receipt within {0:?}; check that the RPC endpoint is mining (a dev chain started with \
         --no-mining needs blocks) and raise the timeout for a slow chain"
    )]
    ReceiptTimeout(Duration),
    #[error("transaction {0} reverted; repeat it as an eth_call at its block to read the custom error")]
    Reverted(B256),
    #[error("deployment {0} created no contract")]
    NoContract(B256),
    #[error("dev chain setup failed: {0}; is anvil running at the RPC URL?")]
    Setup(String),
}
