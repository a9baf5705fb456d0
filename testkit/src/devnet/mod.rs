//! `fixd devnet`: a whole network on this machine, settling a replayed maturity end to end.
//!
//! ```text
//!   fixd devnet ── anvil (--block-time 1) ◀── deploy SettlementOracle, set committee, fund members
//!        │
//!        ├── fixd replay-venues   (2025-06-12 15:00-16:00 UTC, an hour of market a minute)
//!        ├── fixd run × n         (members in <dir>/node-i, one config each)
//!        └── watches node-0's API: window → observations → certificate → challenge → published
//! ```
//!
//! Every child is a real process running the same `fixd` commands an operator runs (and the
//! docker compose file runs); their logs go to `<dir>/logs/`. The devnet ends on Ctrl-C, or
//! after publication with `--exit-after-publish`, and stops every child either way.

mod pn;
mod progress;

use std::path::{Path, PathBuf};
use std::time::Duration;

use alloy::primitives::Address;
use alloy::sol_types::SolCall;
use anyhow::{Context, bail};
use fixd_proto::types::genesis::ProtocolParams;
use fixd_proto::types::settlement::{Index, MethodologyParams, SettlementSpec};
use serde_json::Value;

use crate::process::Proc;

use fixd_node::chain::SettlementOracle;
use fixd_node::chain::consumers::series_id;
use fixd_node::keys::Keys;

pub use pn::{ANVIL_HOLDER_KEY, PnSummary};
pub use progress::{Phase, read as read_phase};

/// The file that marks a directory as a devnet's, so that a rerun may wipe it.
const MARKER: &str = ".fixd-devnet";

/// The devnet's methodology: a 60 s window in 12 partitions of 5 s, computed 5 s after maturity.
pub fn methodology() -> MethodologyParams {
    MethodologyParams {
        window_secs: 60,
        partitions: 12,
        grace_secs: 5,
        min_venues: 3,
        min_partitions: 9,
        max_venue_deviation_bp: 500,
        two_venue_agreement_bp: 50,
        max_two_venue_partitions: 3,
    }
}

/// The devnet's protocol: rounds of 10 s, a challenge window of `challenge_secs`, publishing
/// turns of 15 s, 2 confirmations.
pub fn protocol(challenge_secs: u64) -> ProtocolParams {
    ProtocolParams {
        round_timeout_secs: 10,
        challenge_period_secs: challenge_secs,
        reopened_challenge_period_secs: challenge_secs,
        publish_timeout_secs: 15,
        confirmations: 2,
        ..ProtocolParams::default()
    }
}

/// The ports the devnet uses.
#[derive(Clone, Copy, Debug)]
struct Ports {
    chain: u16,
    venues: u16,
    api: u16,
    p2p: u16,
}

impl Ports {
    fn resolve(args: &DevnetArgs) -> anyhow::Result<Ports> {
        if !args.free_ports {
            return Ok(Ports {
                chain: args.chain_port,
                venues: args.venues_port,
                api: args.api_port,
                p2p: args.p2p_port,
            });
        }
        // Runs of free ports: anvil and venues alone, APIs and p2p one per node.
        let free = |run: u16| -> anyhow::Result<u16> {
            crate::process::free_ports(run)
                .with_context(|| format!("found no run of {run} free loopback ports"))
        };
        let n = args.nodes;
        Ok(Ports { chain: free(1)?, venues: free(1)?, api: free(n)?, p2p: free(n)? })
    }
}

/// Spawns one child of the devnet, its output in `log`.
fn spawn(name: &str, program: &Path, args: &[String], log: &Path) -> anyhow::Result<Proc> {
    let mut cmd = std::process::Command::new(program);
    cmd.args(args);
    Proc::logged(name, cmd, log).with_context(|| format!("cannot start {name} ({})", program.display()))
}

/// Clears `dir` if it is a previous devnet's, refuses if it holds anything else.
fn prepare_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        let empty = std::fs::read_dir(dir)?.next().is_none();
        if !empty && !dir.join(MARKER).exists() {
            bail!("{} exists and is not a devnet directory; choose another with --dir", dir.display());
        }
        std::fs::remove_dir_all(dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir.join("logs"))?;
    std::fs::write(dir.join(MARKER), "made by fixd devnet; deleted by the next run\n")?;
    Ok(())
}

/// Where member `i` listens and is reached: all on loopback with its own ports, or (with
/// `--containers`) one host per member named `node-{i}`, the venues at `venues`, the same ports.
#[derive(Clone, Debug)]
struct Layout {
    api_listen: String,
    /// What the node binds for libp2p.
    p2p_listen: String,
    /// What the genesis tells the others to dial.
    p2p_advertise: String,
    /// What a user on this machine (or the compose network) calls.
    api_url: String,
}

impl Layout {
    fn of(i: usize, ports: &Ports, containers: bool) -> Layout {
        let (api, p2p) =
            if containers { (ports.api, ports.p2p) } else { (ports.api + i as u16, ports.p2p + i as u16) };
        if containers {
            Layout {
                api_listen: format!("0.0.0.0:{api}"),
                p2p_listen: format!("/ip4/0.0.0.0/tcp/{p2p}"),
                p2p_advertise: format!("/dns4/node-{i}/tcp/{p2p}"),
                api_url: format!("http://node-{i}:{api}"),
            }
        } else {
            Layout {
                api_listen: format!("127.0.0.1:{api}"),
                p2p_listen: format!("/ip4/127.0.0.1/tcp/{p2p}"),
                p2p_advertise: format!("/ip4/127.0.0.1/tcp/{p2p}"),
                api_url: format!("http://127.0.0.1:{api}"),
            }
        }
    }
}

/// One member's config.
fn node_config(layout: &Layout, venues: &str, rpc: &str, maturity: u64) -> String {
    let p = methodology();
    let (api, p2p) = (&layout.api_listen, &layout.p2p_listen);
    let mut text = format!(
        "# Written by fixd devnet.\ndata_dir = \"data\"\ngenesis = \"../genesis.toml\"\nkeys_dir = \".\"\n\n\
         [api]\nlisten = \"{api}\"\n# The devnet's machine is yours: schedule from it without a token.\n\
         admin_loopback_without_token = true\n\n[observer]\ntick = \"250ms\"\n\n\
         [p2p]\nlisten = [\"{p2p}\"]\ndial_interval = \"1s\"\n\n\
         [chain]\nrpc_url = \"{rpc}\"\npoll_interval = \"500ms\"\nrpc_timeout = \"3s\"\n\n"
    );
    for venue in ["coinbase", "kraken", "bitstamp", "gemini"] {
        text += &format!("[venues.{venue}]\nbase_url = \"{venues}\"\nmin_interval = \"0s\"\n\n");
    }
    text += &crate::harness::settlement_toml(maturity, &p);
    text
}

/// Follows a node's event stream in a task, passing on the events of one settlement. The node
/// may not listen yet, or may restart: the task connects again until the devnet is done with
/// it (the receiver is dropped).
fn follow_events(
    url: String,
    settlement: alloy::primitives::B256,
) -> tokio::sync::mpsc::UnboundedReceiver<progress::StreamEvent> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        while !tx.is_closed() {
            let Ok(mut response) = client.get(&url).send().await else {
                tokio::time::sleep(Duration::from_millis(250)).await;
                continue;
            };
            let mut events = progress::Events::default();
            while let Ok(Some(chunk)) = response.chunk().await {
                for event in events.push(&String::from_utf8_lossy(&chunk)) {
                    let id = event.data["settlement_id"].as_str().and_then(|id| id.parse().ok());
                    if id == Some(settlement) && tx.send(event).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

async fn get_json(client: &reqwest::Client, url: &str) -> Option<Value> {
    let response = client.get(url).send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.json().await.ok()
}

/// What the devnet settled, printed at the end (and as JSON with `--json`).
#[derive(Debug, serde::Serialize)]
struct Summary {
    settlement_id: alloy::primitives::B256,
    value: String,
    tx_hash: String,
    block_number: u64,
    contract: Address,
    rpc_url: String,
    api: Vec<String>,
    get_settlement_calldata: String,
    on_chain_value: String,
    dir: PathBuf,
    /// The P/N series split before maturity and redeemed after publication.
    pn: PnSummary,
}

/// Runs the devnet. See the module docs.
pub async fn run(args: DevnetArgs) -> anyhow::Result<()> {
    let log = fixd_node::config::LogConfig { filter: "warn".into(), json: false };
    fixd_node::logging::init(&log, false);
    // Installed first, so that Ctrl-C at any moment stops the children instead of orphaning them.
    let mut stop = StopSignals::install()?;
    let started = std::time::Instant::now();
    let dir = std::path::absolute(&args.dir)?;
    prepare_dir(&dir)?;
    let ports = Ports::resolve(&args)?;
    let fixd = std::env::current_exe().context("cannot find the fixd binary itself")?;
    let mut display = progress::Display::new();
    let logs = dir.join("logs");

    // The chain: an anvil of our own, or the one at --rpc-url.
    let mut procs = Vec::new();
    let rpc = match &args.rpc_url {
        Some(url) => url.clone(),
        None => {
            let anvil = crate::process::anvil_path(args.anvil.as_deref());
            let chain_args: Vec<String> =
                ["--host", "127.0.0.1", "--port", &ports.chain.to_string(), "--block-time", "1"]
                    .map(String::from)
                    .to_vec();
            procs.push(spawn("anvil", &anvil, &chain_args, &logs.join("anvil.log")).with_context(|| {
                "anvil is needed: run scripts/install-tools.sh (installs the pinned @foundry-rs/anvil into \
                 .tools/) or pass --anvil PATH"
            })?);
            format!("http://127.0.0.1:{}", ports.chain)
        }
    };
    let provider = crate::devchain::dev_provider(&rpc)?;
    let mut up = false;
    for _ in 0..300 {
        use alloy::providers::Provider;
        if provider.get_chain_id().await.is_ok() {
            up = true;
            break;
        }
        for p in &mut procs {
            p.check_alive().map_err(anyhow::Error::msg)?;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !up {
        bail!("no chain answered on {rpc} within 30 s; see {}", logs.join("anvil.log").display());
    }

    // The committee, the contract and the genesis.
    let n = usize::from(args.nodes);
    let mut members = Vec::new();
    for i in 0..n {
        let keys = Keys::generate()?;
        let member_dir = dir.join(format!("node-{i}"));
        keys.write(&member_dir)?;
        let listen = vec![Layout::of(i, &ports, args.containers).p2p_advertise];
        members.push(keys.member(&format!("node-{i}"), listen));
    }
    let addresses: Vec<Address> = members.iter().map(|m| m.eth_address).collect();
    let quorum = fixd_proto::types::genesis::Committee::new(members.clone()).q();
    let reward_bp = ProtocolParams::default().reward_bp;
    let chain = crate::devchain::setup(
        &rpc,
        &addresses,
        quorum,
        reward_bp,
        10 * 10u128.pow(18),
        Duration::from_secs(30),
    )
    .await
    .context("setting up the dev chain")?;
    let consumers = pn::deploy(&provider, chain.contract, &methodology(), Duration::from_secs(30))
        .await
        .context("deploying the PNVault and the read adapters")?;
    display.milestone(&format!(
        "anvil on {rpc} (chain {}); SettlementOracle at {} for {n} members, threshold {quorum}; \
         PNVault at {}, Gamma adapter at {}",
        chain.chain_id, chain.contract, consumers.vault, consumers.gamma
    ));
    let arbitrator = crate::devchain::dev_key().address();
    let genesis = fixd_node::genesis::build(
        "fixd-devnet".into(),
        chain.chain_id,
        chain.contract,
        chain.contract_block,
        arbitrator,
        members,
        protocol(args.challenge_secs),
    )?;
    fixd_node::genesis::save(&dir.join("genesis.toml"), &genesis)?;

    // The market and the settlement: it matures when the replayed hour ends.
    let wall_start = fixd_node::clock::now() + args.lead_secs;
    let speed = 60;
    let maturity = wall_start + 3600 / speed;
    let spec = SettlementSpec { index: Index::EthUsd, maturity, params: methodology() };
    let strikes = pn::strikes(&args.replay_start)?;
    let (venues, venues_listen) = if args.containers {
        (format!("http://venues:{}", ports.venues), format!("0.0.0.0:{}", ports.venues))
    } else {
        (format!("http://127.0.0.1:{}", ports.venues), format!("127.0.0.1:{}", ports.venues))
    };
    let replay_args: Vec<String> = vec![
        "replay-venues".into(),
        "--listen".into(),
        venues_listen,
        "--replay-start".into(),
        args.replay_start.clone(),
        "--wall-start".into(),
        wall_start.to_string(),
        "--speed".into(),
        speed.to_string(),
    ];
    let mut apis = Vec::new();
    for i in 0..n {
        let layout = Layout::of(i, &ports, args.containers);
        let config = dir.join(format!("node-{i}/config.toml"));
        std::fs::write(&config, node_config(&layout, &venues, &rpc, maturity))?;
        apis.push(layout.api_url);
    }
    // What the other processes (or containers) need to join in, for scripts and compose.
    std::fs::write(dir.join("wall_start"), format!("{wall_start}\n"))?;
    let plan = serde_json::json!({
        "settlement_id": spec.id(), "maturity": maturity, "wall_start": wall_start, "speed": speed,
        "replay_start": args.replay_start, "rpc_url": rpc, "chain_id": chain.chain_id,
        "contract": chain.contract, "apis": apis, "venues": venues, "vault": consumers.vault,
        "reader": consumers.reader, "gamma_adapter": consumers.gamma,
    });
    std::fs::write(dir.join("devnet.json"), serde_json::to_string_pretty(&plan)?)?;
    // For a shell: `. devnet/env` sets what the README's commands use. FIXD_ETH_KEY is anvil's
    // public dev key, which holds ETH on the devnet's chain: enough to escrow a dispute's bond.
    std::fs::write(
        dir.join("env"),
        format!(
            "export API={} ID={} RPC={rpc} CONTRACT={} VAULT={} MATURITY={maturity} SERIES_BELOW={} \
             SERIES_ABOVE={} FIXD_ETH_KEY={}\n",
            apis[0],
            spec.id(),
            chain.contract,
            consumers.vault,
            series_id(spec.id(), strikes.0),
            series_id(spec.id(), strikes.1),
            crate::devchain::ANVIL_DEV_KEY
        ),
    )?;
    if args.setup_only {
        println!("{}", serde_json::to_string_pretty(&plan)?);
        eprintln!(
            "set up in {}; now start `fixd {}` and, for each member, `fixd run --config {}/node-<i>/config.toml`",
            dir.display(),
            replay_args.join(" "),
            dir.display()
        );
        return Ok(());
    }
    procs.push(spawn("replay venues", &fixd, &replay_args, &logs.join("replay-venues.log"))?);
    for i in 0..n {
        let config = dir.join(format!("node-{i}/config.toml"));
        let run_args = vec!["run".into(), "--config".into(), config.display().to_string()];
        procs.push(spawn(&format!("node-{i}"), &fixd, &run_args, &logs.join(format!("node-{i}.log")))?);
    }
    display.milestone(&format!(
        "{n} nodes (APIs {} .. {}), replay venues on {venues} playing {} at {speed}x; logs in {}",
        apis[0],
        apis[n - 1],
        args.replay_start,
        logs.display()
    ));
    display.milestone(&format!(
        "settlement {} matures at {maturity} (in {} s)",
        spec.id(),
        maturity - fixd_node::clock::now()
    ));
    let pn = pn::split(consumers, &rpc, maturity, strikes, Duration::from_secs(30))
        .await
        .context("splitting 1 ETH into the two P/N series")?;
    display.milestone(&format!(
        "P/N: 1 ETH split into P and N at strike {} and at strike {} by {}",
        strikes.0, strikes.1, pn.holder
    ));

    // Watch node-0 until published: its event stream moves the phases on, its settlement
    // view gives the countdowns.
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
    let path = format!("{}/v1/settlements/{}", apis[0], spec.id());
    let mut events = follow_events(format!("{}/v1/events", apis[0]), spec.id());
    let mut reached = Phase::Window;
    let give_up = tokio::time::Instant::now() + Duration::from_secs(args.timeout_secs);
    let view = loop {
        for p in &mut procs {
            p.check_alive().map_err(anyhow::Error::msg)?;
        }
        while let Ok(event) = events.try_recv() {
            display.milestone(&progress::milestone(&event));
            reached = reached.max(progress::phase_after(event.kind).unwrap_or(reached));
        }
        if let Some(view) = get_json(&client, &path).await {
            let (phase, line) = progress::read(&view, fixd_node::clock::now(), n);
            display.update(phase.max(reached), line);
            if phase == Phase::Published {
                break view;
            }
        }
        if tokio::time::Instant::now() >= give_up {
            display.finish();
            bail!(
                "not published within {} s; see the logs in {} and {path}",
                args.timeout_secs,
                logs.display()
            );
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
            () = stop.wait() => {
                display.finish();
                stop_all(procs).await;
                bail!("interrupted before publication");
            }
        }
    };
    display.finish();

    // Read it back from the contract, as anyone would.
    let id = spec.id();
    let value = fixd_proto::value::Wad::parse(view["value"].as_str().unwrap_or_default())
        .context("node-0's published view has no value")?;
    let pn = pn::redeem(&pn, &rpc, maturity, value, Duration::from_secs(30))
        .await
        .context("redeeming the P/N series after publication")?;
    let oracle = SettlementOracle::new(chain.contract, provider);
    let on_chain =
        oracle.getSettlement(id).call().await.context("reading getSettlement from the contract")?;
    let summary = Summary {
        settlement_id: id,
        value: view["value"].as_str().unwrap_or_default().to_owned(),
        tx_hash: view["publication"]["tx_hash"].as_str().unwrap_or_default().to_owned(),
        block_number: view["publication"]["block_number"].as_u64().unwrap_or_default(),
        contract: chain.contract,
        rpc_url: rpc.clone(),
        api: apis.clone(),
        get_settlement_calldata: format!(
            "0x{}",
            hex::encode(SettlementOracle::getSettlementCall { id }.abi_encode())
        ),
        on_chain_value: on_chain.value.to_string(),
        dir: dir.clone(),
        pn,
    };
    print_summary(&summary, &on_chain, started.elapsed(), args.json)?;

    if args.exit_after_publish {
        stop_all(procs).await;
        return Ok(());
    }
    eprintln!("\nthe devnet keeps running; Ctrl-C stops every node, the venues and anvil");
    stop.wait().await;
    stop_all(procs).await;
    Ok(())
}

/// SIGINT (Ctrl-C) and SIGTERM.
struct StopSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(StopSignals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    async fn wait(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

async fn stop_all(procs: Vec<Proc>) {
    // Nodes first, the venues and the chain last.
    let stopped = tokio::task::spawn_blocking(move || {
        for p in procs.into_iter().rev() {
            p.stop(Duration::from_secs(10));
        }
    });
    let _ = stopped.await;
    eprintln!("stopped every child process");
}

fn print_summary(
    s: &Summary,
    on_chain: &SettlementOracle::getSettlementReturn,
    elapsed: Duration,
    json: bool,
) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(s)?);
        return Ok(());
    }
    let call = format!(
        r#"curl -s -X POST -H 'content-type: application/json' --data '{{"jsonrpc":"2.0","id":1,"method":"eth_call","params":[{{"to":"{}","data":"{}"}},"latest"]}}' {}"#,
        s.contract, s.get_settlement_calldata, s.rpc_url
    );
    println!(
        "\nsettled in {:.0} s: ETH-USD {} (WAD {})\n\
         \n  settlement  {}\n  published   tx {} in block {}\n  contract    SettlementOracle at {} on {}\n\
         \n  getSettlement({}) read from the contract now:\n    value {}, publishedAt {}, status {} (1 = published)\n\
         \nread it from the contract yourself (the result is value, publishedAt, status as three 32-byte words):\n  {call}\n\
         \nquery the settlement API:\n  curl -s {}/v1/settlements/{}\n  curl -s {}/v1/settlements/{}/proof > proof.json && fixd verify proof.json\n\
         \nits disputes, and how to dispute a settlement while its window is open (README, disputer guide):\n  \
         fixd dispute list --api {} --settlement {}\n  \
         . {}/env && fixd dispute submit --api {} --rpc-url {} \
         --settlement <id> --reason bad_data\n\
         \nin another shell, `. {}/env` sets API, ID, RPC, CONTRACT, VAULT, MATURITY and SERIES_BELOW/ABOVE for the README's commands\n\
         \nnode data and logs: {}",
        elapsed.as_secs_f64(),
        s.value,
        s.on_chain_value,
        s.settlement_id,
        s.tx_hash,
        s.block_number,
        s.contract,
        s.rpc_url,
        s.settlement_id,
        on_chain.value,
        on_chain.publishedAt,
        on_chain.status,
        s.api[0],
        s.settlement_id,
        s.api[0],
        s.settlement_id,
        s.api[0],
        s.settlement_id,
        s.dir.display(),
        s.api[0],
        s.rpc_url,
        s.dir.display(),
        s.dir.display()
    );
    let value = fixd_proto::value::Wad::parse(&s.value)?;
    println!("{}", pn::lines(&s.pn, value));
    Ok(())
}

/// `fixd devnet`'s flags.
#[derive(Debug, clap::Args)]
pub struct DevnetArgs {
    /// Directory for the members' keys, configs, stores and logs. A previous devnet's is cleared
    /// first; any other non-empty directory is refused.
    #[arg(long, default_value = "devnet")]
    pub dir: PathBuf,
    /// Committee size: at least 4, so that one faulty member is tolerated; at most 100 (each
    /// member is a process with its own store; 31 publish on 2 cores).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(4..=100))]
    pub nodes: u16,
    /// The anvil binary; default: .tools/bin/anvil (scripts/install-tools.sh), else anvil on PATH.
    #[arg(long, env = "FIXD_ANVIL")]
    pub anvil: Option<PathBuf>,
    /// The market hour to replay (RFC 3339, UTC), shifted to start a few seconds from now and
    /// played at 60x: the settlement matures when the hour ends.
    #[arg(long, default_value = "2025-06-12T15:00:00Z")]
    pub replay_start: String,
    /// Length of the challenge window, seconds.
    #[arg(long, default_value_t = 20)]
    pub challenge_secs: u64,
    /// Stop everything and exit 0 once the value is published (for scripts and CI).
    #[arg(long)]
    pub exit_after_publish: bool,
    /// Give up (exit 1) if nothing is published within this many seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout_secs: u64,
    /// Print the final summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// anvil's JSON-RPC port.
    #[arg(long, default_value_t = 8545)]
    pub chain_port: u16,
    /// The replay venues' port.
    #[arg(long, default_value_t = 8900)]
    pub venues_port: u16,
    /// node-0's API port; node-i listens on this + i.
    #[arg(long, default_value_t = 8080)]
    pub api_port: u16,
    /// node-0's libp2p port; node-i listens on this + i.
    #[arg(long, default_value_t = 9000)]
    pub p2p_port: u16,
    /// Pick free loopback ports instead of the ones above (several devnets side by side).
    #[arg(long)]
    pub free_ports: bool,
    /// Use the dev chain at this JSON-RPC URL (an anvil: its first dev account deploys and
    /// funds) instead of starting anvil.
    #[arg(long)]
    pub rpc_url: Option<String>,
    /// Seconds from now until the replayed hour starts playing.
    #[arg(long, default_value_t = 6)]
    pub lead_secs: u64,
    /// Only set up: members, contract, genesis, configs, `devnet.json` and `wall_start` in
    /// --dir; start nothing else and exit (docker compose then runs each part).
    #[arg(long)]
    pub setup_only: bool,
    /// Lay the network out for containers: member i at host node-i, the venues at host venues,
    /// every service on its port on 0.0.0.0 (see docker/compose.yml).
    #[arg(long)]
    pub containers: bool,
}
