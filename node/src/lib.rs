//! # fixd-node
//!
//! The `fixd` daemon and CLI. The pure rules live in `fixd-proto` (methodology, signatures) and
//! `fixd-dispute` (challenge windows and bonds); this crate carries events in and actions out:
//! keys and config on disk, the sled store, venue adapters over HTTP, the replay venues, the
//! observation producer and the HTTP API.
//!
//! ```text
//!   venues (HTTP) ──▶ venues::VenueAdapter ──▶ observer ──sign──▶ store (sled) ──▶ api (axum)
//!        ▲                                        │                   ▲
//!   replay::ReplayServer (tests, devnet)          └── methodology ────┘ (fixd-proto)
//! ```
//!
//! Modules: [`cli`] and [`commands`] (the command line), [`node`] (start, tasks, shutdown),
//! [`chain`] (the SettlementOracle contract),
//! [`config`], [`keys`], [`genesis`], [`store`], [`venues`], [`replay`], [`observer`], [`api`],
//! [`consensus`] (certification rounds), [`publication`] (challenge window, final report,
//! publishing turns), [`network`] (libp2p gossip and catch-up), [`events`],
//! [`clock`], [`logging`].

pub mod api;
pub mod certifier;
pub mod chain;
pub mod cli;
pub mod client;
pub mod clock;
pub mod commands;
pub mod config;
pub mod consensus;
pub mod devnet;
pub mod dispute_client;
pub mod events;
pub mod genesis;
pub mod keys;
pub mod logging;
pub mod metrics;
pub mod network;
pub mod node;
pub mod observer;
pub mod publication;
pub mod replay;
pub mod store;
pub mod venues;
