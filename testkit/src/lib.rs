//! # fixd-testkit
//!
//! Everything fixd needs to run a network on one machine, and nothing `fixd run` uses: child
//! processes that die with their owner, the replay venues, the dev chain (anvil with anvil's
//! dev key), the `fixd devnet` supervisor and the end-to-end test harness. The `fixd` binary
//! exposes `fixd devnet` and `fixd replay-venues` from here (the compose file runs them); the
//! node's own code never reaches this crate.
//!
//! ```text
//!   fixd devnet ──▶ devnet::run ──▶ process::Proc × (anvil, fixd replay-venues, fixd run × n)
//!        │                              │
//!        │          devchain::setup ◀───┘ deploy SettlementOracle, committee, fund members
//!        ▼
//!   watches node-0's API (devnet::progress) ──▶ summary: value, tx, getSettlement
//!
//!   tests ──▶ harness::{Devnet, Node, Replay, TestChain} ──▶ the same processes, on free ports
//!   fixd replay-venues ──▶ replay::ReplayServer (axum, the venues' real response shapes)
//! ```
//!
//! Modules: [`process`] (child processes), [`replay`] (the replay venues), [`devchain`] (anvil
//! setup), [`devnet`] (`fixd devnet`), [`harness`] (end-to-end tests), [`rpc_recorder`] (a
//! JSON-RPC proxy that counts a node's calls), [`byzantine`] (`fixd run --byzantine`: faulty
//! members' strategies, with the cargo feature `byzantine` only), [`netns`] (real network faults:
//! nodes, anvil and the venues in network namespaces, with cuts, partitions, netem and loss).

pub mod byzantine;
pub mod chaos;
pub mod devchain;
pub mod devnet;
pub mod harness;
pub mod netns;
pub mod process;
pub mod replay;
pub mod rpc_recorder;
