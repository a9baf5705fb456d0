//! The `fixd` command line: definitions only. `main.rs` dispatches.

use std::net::SocketAddr;
use std::path::PathBuf;

use alloy_primitives::Address;
use clap::{Args, Parser, Subcommand};
use fixd_node::node::RunArgs;
use fixd_testkit::devnet::DevnetArgs;
use fixd_testkit::replay::ReplayArgs;

/// fixd: a node of the maturity-settlement oracle network.
///
/// A committee of fixd nodes observes ETH-USD trades around an option's maturity, agrees on one
/// settlement value, holds it open to bonded disputes, and publishes it to an Ethereum contract.
#[derive(Debug, Parser)]
#[command(name = "fixd", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a member's keys, its public member.toml and a starter config.toml in a directory.
    Init(InitArgs),
    /// Build a genesis file from the members' member.toml files and the chain settings.
    Genesis(GenesisArgs),
    /// Run a node.
    Run(RunCommand),
    /// Serve replayed ETH-USD trades in the real response shapes of Coinbase, Kraken, Bitstamp
    /// and Gemini on one loopback port, for tests and the devnet.
    ReplayVenues(ReplayArgs),
    /// Run a whole network on this machine: anvil with the SettlementOracle, the replay venues
    /// and a committee of nodes, settling a replayed maturity end to end; watch each phase and
    /// get the published value, its transaction and how to read it from the contract.
    Devnet(DevnetArgs),
    /// Query or schedule settlements through a node's API.
    ///
    /// Exit codes: 0 done; 1 failed (node unreachable, refused, bad input); 3 no such settlement.
    #[command(subcommand)]
    Settlement(SettlementCommand),
    /// Dispute a certified value: escrow a bond and submit the signed dispute in one step, or
    /// list a settlement's disputes.
    ///
    /// Exit codes: 0 accepted (or listed); 1 refused or failed, with the node's reason;
    /// 3 no such settlement.
    #[command(subcommand)]
    Dispute(DisputeCommand),
    /// Rule on an escalated dispute as the genesis arbitrator: sign the ruling (EIP-712) and
    /// submit it. Exit codes: 0 accepted; 1 refused or failed; 3 no such settlement.
    Arbitrate(ArbitrateArgs),
    /// The P/N split of 1 ETH on-chain, in the PNVault: create a series (a settlement and a
    /// strike), split ETH into P and N, merge them back, redeem after publication, and show what
    /// 1 P and 1 N pay.
    ///
    /// Exit codes: 0 done; 1 refused (with the vault's reason) or failed; 3 no such series.
    #[command(subcommand)]
    Pn(PnCommand),
    /// Show the public part of a member's keys.
    Keys(KeysArgs),
    /// Check a proof bundle offline: every signature, the committee, the quorum, and the value
    /// recomputed from the signed observations. Needs no network. Exit code 0 when it verifies,
    /// 1 with the reason when it does not.
    Verify(VerifyArgs),
}

/// `fixd run`: the node's flags, and in a test build (cargo feature `byzantine`) the Byzantine
/// strategies of `fixd_testkit::byzantine`.
#[derive(Debug, Args)]
pub struct RunCommand {
    #[command(flatten)]
    pub node: RunArgs,
    #[command(flatten)]
    pub byzantine: fixd_testkit::byzantine::ByzantineArgs,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Directory to create the keys and config in (created if missing; keys are never overwritten).
    #[arg(long)]
    pub dir: PathBuf,
    /// The member's name in the genesis, e.g. node-0.
    #[arg(long)]
    pub name: String,
    /// libp2p listen address to advertise in member.toml (repeatable).
    #[arg(long = "listen", default_value = "/ip4/127.0.0.1/tcp/9000")]
    pub listen: Vec<String>,
    /// API listen address written into the starter config.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub api_listen: SocketAddr,
}

#[derive(Debug, Args)]
pub struct GenesisArgs {
    /// A member's member.toml, as written by `fixd init` (repeat once per member, in order).
    #[arg(long = "member", required = true)]
    pub members: Vec<PathBuf>,
    /// Network label.
    #[arg(long, default_value = "fixd-devnet")]
    pub network: String,
    /// Chain id of the chain the SettlementOracle lives on.
    #[arg(long, default_value_t = 31337)]
    pub chain_id: u64,
    /// Address of the SettlementOracle contract.
    #[arg(long, default_value_t = Address::ZERO)]
    pub contract: Address,
    /// The block the contract was deployed in: nodes read its logs from there on, in chunks.
    #[arg(long, default_value_t = 0)]
    pub contract_block: u64,
    /// Address of the arbitrator of escalated disputes.
    #[arg(long, default_value_t = Address::ZERO)]
    pub arbitrator: Address,
    /// TOML file with protocol parameters ([params] of the genesis); defaults otherwise.
    #[arg(long)]
    pub params: Option<PathBuf>,
    /// Where to write the genesis (.toml or .json).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The proof bundle (JSON), as served by GET /v1/settlements/{id}/proof.
    pub bundle: PathBuf,
    /// The network id you trust (0x + 64 hex digits); without it, the bundle's own genesis is
    /// trusted and its network id is printed for you to compare.
    #[arg(long)]
    pub network_id: Option<alloy_primitives::B256>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct KeysArgs {
    /// The keys directory.
    #[arg(long)]
    pub dir: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ApiArgs {
    /// The node's API.
    #[arg(long, env = "FIXD_API", default_value = "http://127.0.0.1:8080")]
    pub api: String,
    /// Print the API's JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum SettlementCommand {
    /// List the settlements the node knows, optionally only those in one status.
    List {
        /// scheduled, observed, certified, final or published.
        #[arg(long)]
        status: Option<String>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Show one settlement: status, timings, value, certificate, final report, publication.
    Show {
        /// The settlement id (0x + 64 hex digits).
        id: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Schedule a settlement of ETH-USD at a maturity (an admin act: pass the node's admin
    /// token, or call a loopback node whose config sets api.admin_loopback_without_token, as the
    /// devnet's do).
    Schedule {
        /// Maturity, unix seconds UTC.
        #[arg(long)]
        maturity: u64,
        /// Window length, seconds (CME CF-style default: 3600).
        #[arg(long, default_value_t = 3600)]
        window_secs: u64,
        /// Partitions of the window (default 12).
        #[arg(long, default_value_t = 12)]
        partitions: u16,
        /// Seconds after maturity at which members compute (default 120).
        #[arg(long, default_value_t = 120)]
        grace_secs: u64,
        /// The admin token (api.admin_token of the node's config).
        #[arg(long, env = "FIXD_ADMIN_TOKEN")]
        token: Option<String>,
        #[command(flatten)]
        api: ApiArgs,
    },
}

/// Where an Ethereum private key comes from. It is never printed.
#[derive(Debug, Args)]
pub struct EthKeyArgs {
    /// A file holding the hex private key.
    #[arg(long)]
    pub key_file: Option<PathBuf>,
    /// The environment variable holding the hex private key (when no --key-file).
    #[arg(long, default_value = "FIXD_ETH_KEY")]
    pub key_env: String,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)]
pub enum DisputeCommand {
    /// Escrow the bond with postBond, wait for its confirmations, sign the dispute with the
    /// same key and submit it to the node; print the node's answer.
    Submit(SubmitArgs),
    /// Show a settlement's dispute state: phase, deadline, required bond and every dispute.
    List {
        /// The settlement id (0x + 64 hex digits).
        #[arg(long)]
        settlement: String,
        #[command(flatten)]
        api: ApiArgs,
    },
}

#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The settlement id (0x + 64 hex digits).
    #[arg(long)]
    pub settlement: String,
    /// miscomputed, bad_data, missing_data or other.
    #[arg(long)]
    pub reason: String,
    /// Evidence text or links (at most 4096 bytes).
    #[arg(long)]
    pub evidence: Option<String>,
    /// The value the disputer believes is right (decimal).
    #[arg(long)]
    pub claimed_value: Option<String>,
    /// The bond in wei; default: the bond the settlement requires now.
    #[arg(long)]
    pub bond: Option<u128>,
    /// The dispute id (0x + 64 hex); default: derived from the settlement, the key and the time.
    #[arg(long)]
    pub dispute_id: Option<String>,
    /// JSON-RPC endpoint of the chain in the genesis, to escrow the bond.
    #[arg(long, env = "FIXD_RPC_URL", default_value = "http://127.0.0.1:8545")]
    pub rpc_url: String,
    /// How long to wait for the bond's receipt and confirmations, seconds.
    #[arg(long, default_value_t = 60)]
    pub timeout_secs: u64,
    #[command(flatten)]
    pub key: EthKeyArgs,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct ArbitrateArgs {
    /// The settlement id (0x + 64 hex digits).
    #[arg(long)]
    pub settlement: String,
    /// The dispute of the arbitration round ruled on.
    #[arg(long)]
    pub dispute: String,
    /// The value that stands (decimal).
    #[arg(long)]
    pub value: String,
    /// Uphold the dispute (the disputer is paid); without it, the dispute is rejected.
    #[arg(long)]
    pub upheld: bool,
    #[command(flatten)]
    pub key: EthKeyArgs,
    #[command(flatten)]
    pub api: ApiArgs,
}

/// Where the vault is and how to reach its chain.
#[derive(Debug, Args)]
pub struct VaultArgs {
    /// The PNVault's address (the devnet prints it, and writes it to devnet/env as VAULT).
    #[arg(long, env = "FIXD_VAULT")]
    pub vault: Address,
    /// JSON-RPC endpoint of the vault's chain.
    #[arg(long, env = "FIXD_RPC_URL", default_value = "http://127.0.0.1:8545")]
    pub rpc_url: String,
    /// How long to wait for a transaction's receipt, seconds.
    #[arg(long, default_value_t = 60)]
    pub timeout_secs: u64,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// A series: by its id, or by the maturity and strike it was created with.
#[derive(Debug, Args)]
pub struct SeriesArgs {
    /// The series id (0x + 64 hex digits), as `fixd pn create` printed it.
    #[arg(long, conflicts_with_all = ["maturity", "strike"], required_unless_present = "maturity")]
    pub series: Option<String>,
    /// The maturity of the series' settlement, unix seconds UTC (with --strike).
    #[arg(long, requires = "strike")]
    pub maturity: Option<u64>,
    /// The series' strike, USD per ETH (decimal; with --maturity).
    #[arg(long, requires = "maturity")]
    pub strike: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum PnCommand {
    /// Create the series of the ETH-USD settlement maturing at --maturity with strike --strike
    /// (anyone may, once per series, before publication); print its id and tokens.
    Create {
        /// Maturity, unix seconds UTC: the settlement is the one the vault's reader names for it.
        #[arg(long)]
        maturity: u64,
        /// Strike S, USD per ETH (decimal, e.g. 2450 or 2450.5).
        #[arg(long)]
        strike: String,
        #[command(flatten)]
        vault: VaultArgs,
        #[command(flatten)]
        key: EthKeyArgs,
    },
    /// Split --amount ETH into as many P and N of a series (before publication).
    Split(PnAmountArgs),
    /// Merge --amount P and as many N back into ETH (at any time).
    Merge(PnAmountArgs),
    /// Redeem P and N for ETH once the settlement is published; default: every P and N the key
    /// holds.
    Redeem {
        #[command(flatten)]
        series: SeriesArgs,
        /// P to redeem (decimal); default: all the key holds.
        #[arg(long)]
        p: Option<String>,
        /// N to redeem (decimal); default: all the key holds.
        #[arg(long)]
        n: Option<String>,
        #[command(flatten)]
        vault: VaultArgs,
        #[command(flatten)]
        key: EthKeyArgs,
    },
    /// Show a series: its settlement's status, its tokens and collateral, and what 1 P and 1 N
    /// pay once published (or would pay at the certified value, with --api).
    Show {
        #[command(flatten)]
        series: SeriesArgs,
        /// Also show this address's P and N.
        #[arg(long)]
        holder: Option<Address>,
        /// A node's API, to show the settlement's status before publication.
        #[arg(long, env = "FIXD_API")]
        api: Option<String>,
        #[command(flatten)]
        vault: VaultArgs,
    },
}

/// `fixd pn split` and `fixd pn merge`.
#[derive(Debug, Args)]
pub struct PnAmountArgs {
    #[command(flatten)]
    pub series: SeriesArgs,
    /// ETH to split, or P and N each to merge (decimal, e.g. 1 or 0.25).
    #[arg(long)]
    pub amount: String,
    #[command(flatten)]
    pub vault: VaultArgs,
    #[command(flatten)]
    pub key: EthKeyArgs,
}
