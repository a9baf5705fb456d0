//! fixd-node (overview written once the crate is complete).

pub mod api;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod genesis;
pub mod keys;
pub mod logging;
pub mod node;
pub mod observer;
pub mod replay;
pub mod store;
pub mod venues;
