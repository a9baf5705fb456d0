//! `fixd`: the thin binary. Parses the command line and hands over to `fixd_node`.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use fixd_node::cli::{Cli, Command};
use fixd_node::commands;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // One TLS provider for reqwest and libp2p; an error only means one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Init(args) => commands::init(&args),
        Command::Genesis(args) => commands::genesis(&args),
        Command::Keys(args) => commands::keys(&args),
        Command::Verify(args) => commands::verify(&args),
        Command::Run(args) => runtime()?.block_on(commands::run(args)),
        Command::ReplayVenues(args) => runtime()?.block_on(commands::replay_venues(args)),
        Command::Devnet(args) => runtime()?.block_on(fixd_node::devnet::run(args)),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")
}
