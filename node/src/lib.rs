//! # fixd-node
//!
//! The services of a fixd node. The pure rules live below it: `fixd-proto` (wire, signatures,
//! methodology), `fixd-dispute` (challenge windows and bonds) and `fixd-decision` (the
//! per-settlement machines). This crate carries events in and actions out: keys and config on
//! disk, the sled store, venue adapters over HTTP, libp2p gossip, the chain publisher, the HTTP
//! API and metrics. The `fixd` binary (`cli/`) starts it with [`node::start`].
//!
//! ```text
//!            ┌───────────────────── CancellationToken ──────────────────────┐
//!            ▼                                                              ▼
//!   observer ──own observation──▶ settlements ──▶ store (sled) ◀──(reads)── api (axum)
//!      │                            ▲   │  ▲                    events ──▶ /v1/events, metrics
//!      │           network ──gossip─┘   │  └── ChainUpdate ──┐
//!      │           (libp2p swarm)   ChainCommand ──▶ chain (alloy: the one sender)
//!      └──▶ venues (reqwest) ──▶ Coinbase, Kraken, Bitstamp, Gemini (or the replay venues)
//! ```
//!
//! | service | module | owns |
//! |---|---|---|
//! | observer | [`observer`] | fetching the window and computing this node's observation (the settlement service signs it) |
//! | network | [`network`] | the libp2p swarm: gossip, validation, catch-up |
//! | settlements | [`settlements`] | one `fixd-decision` driver per settlement; the one place that signs |
//! | chain | [`chain`] | this member's transactions and the contract reads |
//! | api | [`api`] | the HTTP API and `/metrics` |
//! | metrics | [`metrics`] | phase times from the event stream |
//!
//! Shared below the services: [`config`], [`keys`], [`genesis`], [`store`], [`venues`],
//! [`events`], [`clock`], [`logging`]; [`node`] starts and stops them, every task spawned through
//! [`tasks`]. [`test_faults`] are
//! no-ops unless the cargo feature `test-faults` is on (end-to-end tests only); `byzantine`
//! (the hook points of Byzantine members, for the same tests) exists only with the feature
//! `byzantine`.

pub mod api;
#[cfg(feature = "byzantine")]
pub mod byzantine;
pub mod chain;
pub mod clock;
pub mod config;
pub mod events;
pub mod genesis;
pub mod keys;
pub mod logging;
pub mod metrics;
pub mod network;
pub mod node;
pub mod observer;
pub mod settlements;
pub mod store;
pub mod tasks;
pub mod test_faults;
pub mod venues;
