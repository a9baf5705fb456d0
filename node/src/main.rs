//! `fixd`: the thin binary. Parses the command line and hands over to `fixd_node`.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use fixd_node::cli::{Cli, Command};
use fixd_node::client::{NOT_FOUND_EXIT, Outcome};
use fixd_node::commands;

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
        Command::Devnet(args) => done(runtime()?.block_on(fixd_node::devnet::run(args))),
        Command::Settlement(command) => {
            if let fixd_node::cli::SettlementCommand::Show { id, .. } = &command {
                fixd_node::client::check_id(id)?;
            }
            runtime()?.block_on(fixd_node::client::settlement(command))
        }
        Command::Dispute(command) => runtime()?.block_on(fixd_node::dispute_client::dispute(command)),
        Command::Arbitrate(args) => runtime()?.block_on(fixd_node::dispute_client::arbitrate(args)),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")
}
