//! `fixd`: the binary. Parses the command line and hands over to `fixd_node` (the node, keys,
//! genesis, verification), to the HTTP clients here (`fixd settlement`, `fixd dispute`,
//! `fixd arbitrate`), to the vault client (`fixd pn`), or to the test kit (`fixd devnet`, `fixd replay-venues`).
//!
//! ```text
//!   fixd <command> ─ cli::Cli (clap) ─▶ commands::{init, genesis, keys, verify, run}  ─▶ fixd_node
//!                                    ├▶ client / dispute_client (reqwest, alloy)   ─▶ a node's API
//!                                    ├▶ pn_client (alloy)                          ─▶ the PNVault
//!                                    └▶ devnet, replay-venues                       ─▶ fixd_testkit
//! ```

mod cli;
mod client;
mod commands;
mod dispute_client;
mod pn_client;

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use cli::{Cli, Command};
use client::{NOT_FOUND_EXIT, Outcome};

/// The allocator: jemalloc, as reth and Lighthouse run. With glibc's malloc an expiry burst of
/// 10,000 settlements kept 363 MiB a node resident, with jemalloc 253 (BENCHMARKS.md). Its
/// options are set where it is built (`.cargo/config.toml`).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static JEMALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // One TLS provider for reqwest and libp2p; an error only means one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match run(cli) {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::NotFound) => ExitCode::from(NOT_FOUND_EXIT),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let done = |result: anyhow::Result<()>| result.map(|()| Outcome::Done);
    match cli.command {
        Command::Init(args) => done(commands::init(&args)),
        Command::Genesis(args) => done(commands::genesis(&args)),
        Command::Keys(args) => done(commands::keys(&args)),
        Command::Verify(args) => done(commands::verify(&args)),
        Command::Run(args) => done(runtime()?.block_on(commands::run(args))),
        Command::ReplayVenues(args) => done(runtime()?.block_on(commands::replay_venues(args))),
        Command::Devnet(args) => done(runtime()?.block_on(fixd_testkit::devnet::run(args))),
        Command::Settlement(command) => {
            if let cli::SettlementCommand::Show { id, .. } = &command {
                client::check_id(id)?;
            }
            runtime()?.block_on(client::settlement(command))
        }
        Command::Dispute(command) => runtime()?.block_on(dispute_client::dispute(command)),
        Command::Arbitrate(args) => runtime()?.block_on(dispute_client::arbitrate(args)),
        Command::Pn(command) => runtime()?.block_on(pn_client::pn(command)),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")
}
