//! Real processes for end-to-end tests: the replay venues and `fixd` nodes, each a child process
//! of the test on loopback ports it picks itself, in its own temporary directory. Children are
//! killed when their handle drops, so a failing test leaves nothing running.

use std::future::IntoFuture;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::devchain::DevChain;
use alloy::primitives::{Address, B256, U256};
use alloy::providers::Provider;
use alloy::sol_types::SolEvent;
use fixd_node::chain::SettlementOracle;
use fixd_proto::replay::ReplayClock;
use fixd_proto::types::genesis::ProtocolParams;
use fixd_proto::types::settlement::MethodologyParams;
use serde_json::Value;

pub use crate::process::Proc;

/// The `fixd` binary under test: `FIXD_BIN`, else `fixd` beside the directory of the running
/// test executable (`target/<profile>/fixd`, which cargo builds for the binary crate's tests).
pub fn fixd_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("FIXD_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test executable's path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>");
    let path = profile_dir.join("fixd");
    assert!(
        path.exists(),
        "no fixd binary at {}: run the end-to-end tests from the `fixd` package (cargo nextest run -p fixd), \
         which builds it, or point FIXD_BIN at one",
        path.display()
    );
    path
}

/// A command running the `fixd` binary under test.
pub fn fixd() -> Command {
    Command::new(fixd_bin())
}

/// Unix seconds now.
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// Spawns a test child whose output lines the test sees; panics with the name if it cannot.
pub fn spawn(name: &str, cmd: Command) -> Proc {
    Proc::piped(name, cmd).unwrap_or_else(|e| panic!("cannot start {name}: {e}"))
}

/// The URL printed after `listening on ` in a line.
fn url_in(line: &str) -> String {
    let at = line.find("http://").unwrap_or_else(|| panic!("no URL in {line:?}"));
    line[at..].split_whitespace().next().unwrap().to_owned()
}

/// The replay venues, as a process (alive as long as this handle).
#[derive(Debug)]
pub struct Replay {
    _proc: Proc,
    pub url: String,
}

impl Replay {
    /// Starts the replay venues with replay instant `replay_start` playing at `wall_start`.
    pub fn start(clock: ReplayClock, faults: &[&str]) -> Replay {
        let proc = spawn("replay", replay_command(clock, faults, "127.0.0.1:0"));
        let url = url_in(&proc.wait_for_line("listening on", Duration::from_secs(30)));
        Replay { _proc: proc, url }
    }
}

/// `fixd replay-venues` on `listen` with `clock` and venue `faults` (`--fault` specs).
pub fn replay_command(clock: ReplayClock, faults: &[&str], listen: &str) -> Command {
    let mut cmd = fixd();
    cmd.args(["replay-venues", "--listen", listen])
        .args(["--replay-start", &iso(clock.replay_start)])
        .args(["--wall-start", &clock.wall_start.to_string()])
        .args(["--speed", &clock.speed.to_string()]);
    for f in faults {
        cmd.args(["--fault", f]);
    }
    cmd
}

/// RFC 3339 UTC of unix seconds (`YYYY-MM-DDTHH:MM:SSZ`).
pub fn iso(unix: u64) -> String {
    fixd_proto::calendar::rfc3339_utc(unix * 1000, 0)
}

/// A member's directory: keys, member.toml, config.toml.
#[derive(Debug)]
pub struct MemberDir {
    pub dir: PathBuf,
}

impl MemberDir {
    /// The member's public entry, as `fixd init` wrote it.
    pub fn member(&self) -> fixd_proto::types::genesis::Member {
        toml::from_str(&std::fs::read_to_string(self.dir.join("member.toml")).unwrap()).unwrap()
    }

    pub fn eth_address(&self) -> Address {
        self.member().eth_address
    }
}

/// Creates a member with `fixd init`.
pub fn init_member(root: &Path, name: &str) -> MemberDir {
    init_member_listening(root, name, 9000)
}

/// Creates a member with `fixd init`, advertising a libp2p port on loopback.
pub fn init_member_listening(root: &Path, name: &str, p2p_port: u16) -> MemberDir {
    init_member_at(root, name, &format!("/ip4/127.0.0.1/tcp/{p2p_port}"))
}

/// Creates a member with `fixd init`, advertising the libp2p multiaddr `listen` (a lab host's
/// address, for example).
pub fn init_member_at(root: &Path, name: &str, listen: &str) -> MemberDir {
    let dir = root.join(name);
    let out =
        fixd().args(["init", "--dir"]).arg(&dir).args(["--name", name, "--listen", listen]).output().unwrap();
    assert!(out.status.success(), "fixd init failed: {}", String::from_utf8_lossy(&out.stderr));
    MemberDir { dir }
}

/// `member` and the three more members a genesis needs at least (`node-1` .. `node-3`, keys
/// only), for tests that run one node and need no quorum.
pub fn with_committee(root: &Path, member: &MemberDir) -> Vec<MemberDir> {
    let others =
        (1..fixd_proto::types::genesis::MIN_MEMBERS).map(|i| init_member(root, &format!("node-{i}")));
    std::iter::once(MemberDir { dir: member.dir.clone() }).chain(others).collect()
}

/// Builds a genesis with `fixd genesis` from the members' member.toml files.
pub fn build_genesis(root: &Path, members: &[MemberDir]) -> PathBuf {
    build_genesis_with(root, members, None)
}

/// [`build_genesis`] with protocol parameters from a TOML file.
pub fn build_genesis_with(root: &Path, members: &[MemberDir], params: Option<&Path>) -> PathBuf {
    build_genesis_on(root, members, params, None, None)
}

/// [`build_genesis_with`] naming a chain: its id and the oracle's address.
pub fn build_genesis_on(
    root: &Path,
    members: &[MemberDir],
    params: Option<&Path>,
    chain: Option<&DevChain>,
    arbitrator: Option<Address>,
) -> PathBuf {
    let path = root.join("genesis.toml");
    let mut cmd = fixd();
    cmd.arg("genesis").arg("--out").arg(&path);
    if let Some(chain) = chain {
        cmd.args(["--chain-id", &chain.chain_id.to_string(), "--contract", &chain.contract.to_string()]);
        cmd.args(["--contract-block", &chain.contract_block.to_string()]);
    }
    if let Some(params) = params {
        cmd.arg("--params").arg(params);
    }
    if let Some(arbitrator) = arbitrator {
        cmd.args(["--arbitrator", &arbitrator.to_string()]);
    }
    for m in members {
        cmd.arg("--member").arg(m.dir.join("member.toml"));
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "fixd genesis failed: {}", String::from_utf8_lossy(&out.stderr));
    path
}

/// A settlement to schedule through the config.
#[derive(Debug)]
pub struct Scheduled {
    pub maturity: u64,
    pub params: MethodologyParams,
}

/// A replay starting 8 s from now at 60× speed, and a settlement of it whose 12 s window (12
/// partitions of a minute of replayed trades each) closes 20 s from now, observed 3 s later: for
/// the end-to-end tests of what happens after maturity, which then wait 20 s rather than 68 s.
pub fn short_maturity() -> (ReplayClock, fixd_proto::types::settlement::SettlementSpec) {
    let wall_start = now() + 8;
    let clock = ReplayClock { replay_start: 1_749_740_400, wall_start, speed: 60 };
    let params = MethodologyParams {
        window_secs: 12,
        partitions: 12,
        grace_secs: 3,
        min_venues: 3,
        min_partitions: 9,
        max_venue_deviation_bp: 500,
        two_venue_agreement_bp: 50,
        max_two_venue_partitions: 3,
    };
    let index = fixd_proto::types::settlement::Index::EthUsd;
    (clock, fixd_proto::types::settlement::SettlementSpec { index, maturity: wall_start + 12, params })
}

/// Short protocol windows for end-to-end tests: 8 s rounds, a 10 s challenge window, 15 s
/// publishing turns, 2 confirmations.
pub fn short_protocol() -> ProtocolParams {
    ProtocolParams {
        round_timeout_secs: 8,
        challenge_period_secs: 10,
        publish_timeout_secs: 15,
        confirmations: 2,
        ..ProtocolParams::default()
    }
}

/// Short devnet parameters: a 60 s window in 12 partitions of 5 s, computed 5 s after maturity.
pub fn short_params(min_venues: u16) -> MethodologyParams {
    MethodologyParams {
        window_secs: 60,
        partitions: 12,
        grace_secs: 5,
        min_venues,
        min_partitions: 9,
        max_venue_deviation_bp: 500,
        two_venue_agreement_bp: 50,
        max_two_venue_partitions: 3,
    }
}

/// A `[[settlements]]` entry of a node config: the maturity and every methodology parameter.
pub fn settlement_toml(maturity: u64, params: &MethodologyParams) -> String {
    let params = toml::to_string(params).expect("methodology parameters serialize to TOML");
    format!("[[settlements]]\nmaturity = {maturity}\n[settlements.params]\n{params}")
}

/// Writes a node config pointing every venue at `venues_url`.
pub fn write_config(
    member: &MemberDir,
    genesis: &Path,
    venues_url: &str,
    settlements: &[Scheduled],
) -> PathBuf {
    write_config_listening(member, genesis, venues_url, settlements, &["/ip4/127.0.0.1/tcp/0"])
}

/// [`write_config`] with explicit libp2p listen addresses (empty: the member's genesis ones).
pub fn write_config_listening(
    member: &MemberDir,
    genesis: &Path,
    venues_url: &str,
    settlements: &[Scheduled],
    p2p_listen: &[&str],
) -> PathBuf {
    write_config_full(member, genesis, venues_url, settlements, p2p_listen, None)
}

/// [`write_config_listening`] with a `[chain]` section publishing to `rpc_url`.
pub fn write_config_full(
    member: &MemberDir,
    genesis: &Path,
    venues_url: &str,
    settlements: &[Scheduled],
    p2p_listen: &[&str],
    rpc_url: Option<&str>,
) -> PathBuf {
    let mut text = format!(
        "data_dir = \"data\"\ngenesis = {genesis:?}\nkeys_dir = \".\"\n\n[api]\nlisten = \"127.0.0.1:0\"\nadmin_loopback_without_token = true\n\n\
         [observer]\ntick = \"250ms\"\n\n[p2p]\nlisten = {p2p_listen:?}\ndial_interval = \"1s\"\n\n"
    );
    if let Some(url) = rpc_url {
        text += &format!(
            "[chain]\nrpc_url = {url:?}\npoll_interval = \"500ms\"\nrpc_timeout = \"2s\"\nreplace_after = \"10s\"\nmax_backoff = \"2s\"\n\n"
        );
    }
    for venue in ["coinbase", "kraken", "bitstamp", "gemini"] {
        text += &format!(
            "[venues.{venue}]\nbase_url = {venues_url:?}\ntimeout = \"2s\"\nretries = 1\nbackoff = \"100ms\"\nmin_interval = \"0s\"\n\n"
        );
    }
    for s in settlements {
        text += &settlement_toml(s.maturity, &s.params);
        text += "\n";
    }
    let path = member.dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A running `fixd run`.
#[derive(Debug)]
pub struct Node {
    pub proc: Proc,
    pub api: String,
}

impl Node {
    pub fn start(name: &str, config: &Path) -> Node {
        Node::start_with_env(name, config, &[])
    }

    /// [`Node::start`] with extra environment variables (test faults).
    pub fn start_with_env(name: &str, config: &Path, env: &[(&str, &str)]) -> Node {
        Node::start_with(name, config, &[], env)
    }

    /// [`Node::start`] with extra `fixd run` flags (`--byzantine`, in the tests' build) and
    /// environment variables.
    pub fn start_with(name: &str, config: &Path, args: &[&str], env: &[(&str, &str)]) -> Node {
        Node::launch(name, node_command(config, args, env))
    }

    /// Spawns `cmd` (a [`node_command`], perhaps wrapped to run elsewhere) and waits for its API.
    pub fn launch(name: &str, cmd: Command) -> Node {
        let proc = spawn(name, cmd);
        let api = url_in(&proc.wait_for_line("API listening on", Duration::from_secs(30)));
        Node { proc, api }
    }

    /// GET a JSON document from the node's API.
    pub fn get(&self, path: &str) -> (u16, Value) {
        http::get_json(&format!("{}{path}", self.api))
    }

    /// POST a body (sent as JSON, whatever it holds) to the node's API.
    pub fn post(&self, path: &str, body: &str) -> (u16, Value) {
        http::post_json(&format!("{}{path}", self.api), body)
    }

    /// Polls `path` until `done` holds, or panics after `timeout`.
    pub fn wait_for(&self, path: &str, timeout: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let (status, body) = self.get(path);
            if status == 200 && done(&body) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "{}: {path} not ready within {timeout:?}; last: {status} {body}",
                self.proc.name
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// `fixd run --config <config>` with extra flags and environment variables, logging at debug.
pub fn node_command(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = fixd();
    cmd.args(["run", "--config"]).arg(config).args(args).env("RUST_LOG", "info,fixd_node=debug");
    cmd.envs(env.iter().copied());
    cmd
}

/// Blocking HTTP for the harness, so tests need no async runtime of their own.
pub mod http {
    use std::time::Duration;

    use serde_json::Value;

    fn client() -> reqwest::blocking::Client {
        // reqwest needs a TLS provider even for plain http; an error means one is installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().unwrap()
    }

    /// GET a URL; the body as JSON (or as a JSON string when it is not JSON).
    pub fn get_json(url: &str) -> (u16, Value) {
        let response = client().get(url).send().unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let status = response.status().as_u16();
        let text = response.text().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// POST `body` with `Content-Type: application/json`; the answer as JSON.
    pub fn post_json(url: &str, body: &str) -> (u16, Value) {
        let response = client()
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        let status = response.status().as_u16();
        let text = response.text().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }
}

/// A free loopback port, TCP and UDP (see [`crate::process::free_ports`]).
pub fn free_port() -> u16 {
    crate::process::free_ports(1).expect("a free loopback port below the ephemeral range")
}

/// A local network: the replay venues and `n` real `fixd` nodes gossiping over libp2p on
/// loopback, each in its own directory with its own ports.
#[derive(Debug)]
pub struct Devnet {
    nodes: Vec<Option<Node>>,
    configs: Vec<PathBuf>,
    _replay: Replay,
    /// The chain the nodes publish to, when started with one.
    pub chain: Option<TestChain>,
    /// The replay venues' clock.
    pub clock: ReplayClock,
    root: tempfile::TempDir,
}

impl Devnet {
    /// Starts the replay venues and `n` members that schedule `settlements`.
    pub fn start(n: usize, clock: ReplayClock, settlements: &[Scheduled]) -> Devnet {
        let mut devnet = Devnet::prepare(n, clock, settlements, &ProtocolParams::default());
        for i in 0..n {
            devnet.start_node(i);
        }
        devnet
    }

    /// Sets up `n` members with protocol `params` and the replay venues, starting no node.
    pub fn prepare(
        n: usize,
        clock: ReplayClock,
        settlements: &[Scheduled],
        params: &ProtocolParams,
    ) -> Devnet {
        Devnet::prepare_inner(n, clock, settlements, params, None, &[], None)
    }

    /// [`Devnet::prepare`] with replay-venue faults (`fixd replay-venues --fault`).
    pub fn prepare_with_faults(
        n: usize,
        clock: ReplayClock,
        settlements: &[Scheduled],
        params: &ProtocolParams,
        faults: &[&str],
    ) -> Devnet {
        Devnet::prepare_inner(n, clock, settlements, params, None, faults, None)
    }

    /// [`Devnet::prepare`] with a real anvil (a block a second) on which the oracle is
    /// deployed for this committee, and every node publishing to it.
    pub fn prepare_on_chain(
        n: usize,
        clock: ReplayClock,
        settlements: &[Scheduled],
        params: &ProtocolParams,
    ) -> Devnet {
        Devnet::prepare_inner(n, clock, settlements, params, Some(&[]), &[], None)
    }

    /// [`Devnet::prepare_on_chain`] with replay-venue faults (`fixd replay-venues --fault`)
    /// and the genesis arbitrator.
    pub fn prepare_on_chain_with(
        n: usize,
        clock: ReplayClock,
        settlements: &[Scheduled],
        params: &ProtocolParams,
        faults: &[&str],
        arbitrator: Option<Address>,
    ) -> Devnet {
        Devnet::prepare_inner(n, clock, settlements, params, Some(&[]), faults, arbitrator)
    }

    /// [`Devnet::prepare_on_chain`] on an anvil that keeps no historical state
    /// (`--prune-history`: a call at any block but the latest fails), stricter than an RPC
    /// provider's node that keeps its last 128 blocks.
    pub fn prepare_on_pruned_chain(
        n: usize,
        clock: ReplayClock,
        settlements: &[Scheduled],
        params: &ProtocolParams,
    ) -> Devnet {
        Devnet::prepare_inner(n, clock, settlements, params, Some(&["--prune-history"]), &[], None)
    }

    fn prepare_inner(
        n: usize,
        clock: ReplayClock,
        settlements: &[Scheduled],
        params: &ProtocolParams,
        anvil_args: Option<&[&str]>,
        faults: &[&str],
        arbitrator: Option<Address>,
    ) -> Devnet {
        let root = tempfile::tempdir().unwrap();
        let members: Vec<MemberDir> =
            (0..n).map(|i| init_member_listening(root.path(), &format!("node-{i}"), free_port())).collect();
        let params_file = root.path().join("params.toml");
        std::fs::write(&params_file, toml::to_string(params).unwrap()).unwrap();
        let chain = anvil_args.map(|args| {
            let addresses: Vec<_> = members.iter().map(MemberDir::eth_address).collect();
            TestChain::start_with(&addresses, 2 * ((n - 1) / 3) + 1, args)
        });
        let genesis = build_genesis_on(
            root.path(),
            &members,
            Some(&params_file),
            chain.as_ref().map(|c| &c.dev),
            arbitrator,
        );
        let replay = Replay::start(clock, faults);
        let rpc = chain.as_ref().map(|c| c.rpc.clone());
        let configs = members
            .iter()
            .map(|m| write_config_full(m, &genesis, &replay.url, settlements, &[], rpc.as_deref()))
            .collect();
        Devnet { nodes: (0..n).map(|_| None).collect(), configs, _replay: replay, chain, clock, root }
    }

    /// Sets `key = value` (TOML) in the `[observer]` table of every member's config, before
    /// the members start.
    pub fn set_observer(&self, key: &str, value: &str) {
        for config in &self.configs {
            let text = std::fs::read_to_string(config).expect("a member's config");
            let text = text.replacen("[observer]\n", &format!("[observer]\n{key} = {value}\n"), 1);
            std::fs::write(config, text).expect("a member's config is writable");
        }
    }

    /// Node `i`'s data directory (its sled store and keys' neighbours).
    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.configs[i].parent().expect("a config sits in its member's directory").join("data")
    }

    /// Starts (or restarts, on the same data directory) node `i`.
    pub fn start_node(&mut self, i: usize) -> &Node {
        self.nodes[i] = Some(Node::start(&format!("node-{i}"), &self.configs[i]));
        self.node(i)
    }

    /// Starts node `i` with extra environment variables.
    pub fn start_node_with_env(&mut self, i: usize, env: &[(&str, &str)]) -> &Node {
        self.nodes[i] = Some(Node::start_with_env(&format!("node-{i}"), &self.configs[i], env));
        self.node(i)
    }

    /// Starts node `i` with extra `fixd run` flags, e.g. `["--byzantine", "equivocate"]`.
    pub fn start_node_with_args(&mut self, i: usize, args: &[&str]) -> &Node {
        self.nodes[i] = Some(Node::start_with(&format!("node-{i}"), &self.configs[i], args, &[]));
        self.node(i)
    }

    /// The genesis file and node `i`'s keys directory.
    pub fn genesis_and_keys(&self, i: usize) -> (PathBuf, PathBuf) {
        let keys = self.configs[i].parent().unwrap().to_owned();
        (self.root.path().join("genesis.toml"), keys)
    }

    /// Stops node `i` with SIGKILL.
    pub fn stop_node(&mut self, i: usize) {
        self.nodes[i] = None;
    }

    /// A running node.
    pub fn node(&self, i: usize) -> &Node {
        self.nodes[i].as_ref().unwrap_or_else(|| panic!("node-{i} is not running"))
    }

    /// The running nodes.
    pub fn running(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().flatten()
    }

    /// Whether node `i` is running.
    pub fn is_running(&self, i: usize) -> bool {
        self.nodes[i].is_some()
    }
}

/// The anvil binary: `FIXD_ANVIL` or `.tools/bin/anvil` (installed by
/// `scripts/install-tools.sh`). A missing anvil fails the test with the fix; it never skips it.
pub fn anvil_path() -> PathBuf {
    let path = crate::process::anvil_path(None);
    assert!(
        path.exists(),
        "anvil not found at {}: run scripts/install-tools.sh (installs the pinned @foundry-rs/anvil \
         into .tools/), or point FIXD_ANVIL at an anvil 1.7.1 binary",
        path.display()
    );
    path
}

/// A real anvil process mining a block every second, with the oracle deployed for a committee.
#[derive(Debug)]
pub struct TestChain {
    pub proc: Proc,
    pub rpc: String,
    pub dev: DevChain,
    runtime: tokio::runtime::Runtime,
}

impl TestChain {
    /// Starts anvil on a free port, deploys the oracle for `members` with `threshold`, and
    /// gives each member 10 ETH for gas.
    pub fn start(members: &[Address], threshold: usize) -> TestChain {
        TestChain::start_with(members, threshold, &[])
    }

    /// [`TestChain::start`] with more anvil arguments.
    pub fn start_with(members: &[Address], threshold: usize, anvil_args: &[&str]) -> TestChain {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let port = free_port();
        let mut cmd = Command::new(anvil_path());
        cmd.args(["--host", "127.0.0.1", "--port", &port.to_string(), "--block-time", "1"]).args(anvil_args);
        let proc = spawn("anvil", cmd);
        proc.wait_for_line("Listening on", Duration::from_secs(30));
        TestChain::deploy(proc, format!("http://127.0.0.1:{port}"), members, threshold)
    }

    /// Takes a running anvil (`proc`, answering at `rpc`) and deploys the oracle on it as
    /// [`TestChain::start`] does.
    pub fn deploy(proc: Proc, rpc: String, members: &[Address], threshold: usize) -> TestChain {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let dev = runtime
            .block_on(crate::devchain::setup(
                &rpc,
                members,
                threshold,
                fixd_proto::types::genesis::ProtocolParams::default().reward_bp,
                10 * 10u128.pow(18),
                Duration::from_secs(30),
            ))
            .expect("the oracle deploys on anvil");
        TestChain { proc, rpc, dev, runtime }
    }

    /// `getSettlement(id)` read straight from the contract: (value, publishedAt, status).
    pub fn get_settlement(&self, id: B256) -> (U256, u64, u8) {
        let provider = crate::devchain::dev_provider(&self.rpc).unwrap();
        let oracle = SettlementOracle::new(self.dev.contract, provider);
        let s = self
            .runtime
            .block_on(oracle.getSettlement(id).call().into_future())
            .expect("getSettlement answers");
        (s.value, s.publishedAt, s.status)
    }

    /// The transactions of every `ReportPublished` event for `id`.
    pub fn publications(&self, id: B256) -> Vec<B256> {
        let provider = crate::devchain::dev_provider(&self.rpc).unwrap();
        let filter = alloy::rpc::types::Filter::new()
            .address(self.dev.contract)
            .event_signature(SettlementOracle::ReportPublished::SIGNATURE_HASH)
            .topic1(id)
            .from_block(0u64);
        let logs = self.runtime.block_on(provider.get_logs(&filter)).expect("eth_getLogs answers");
        logs.iter().map(|l| l.transaction_hash.expect("mined logs have a transaction")).collect()
    }

    /// A raw JSON-RPC call (anvil's `evm_*` controls among them); its `result`.
    pub fn rpc(&self, method: &str, params: Value) -> Value {
        self.rpc_result(method, params).unwrap_or_else(|error| panic!("{method}: {error}"))
    }

    /// A JSON-RPC call to anvil: its result, or its error object.
    pub fn rpc_result(&self, method: &str, params: Value) -> Result<Value, Value> {
        let body = serde_json::json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
        let answer: Value = client.post(&self.rpc).json(&body).send().unwrap().json().unwrap();
        match answer.get("error") {
            Some(error) => Err(error.clone()),
            None => Ok(answer["result"].clone()),
        }
    }

    /// The chain's head block number.
    pub fn block_number(&self) -> u64 {
        let head = self.rpc("eth_blockNumber", serde_json::json!([]));
        u64::from_str_radix(head.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
    }

    /// A fresh key (from `seed`) holding `wei`, sent from the deployer's dev account.
    pub fn funded_key(&self, seed: u8, wei: u128) -> alloy::signers::local::PrivateKeySigner {
        use alloy::network::TransactionBuilder;
        let key = alloy::signers::local::PrivateKeySigner::from_bytes(&B256::repeat_byte(seed)).unwrap();
        let provider = crate::devchain::dev_provider(&self.rpc).unwrap();
        let tx = alloy::rpc::types::TransactionRequest::default()
            .with_to(key.address())
            .with_value(U256::from(wei));
        self.runtime.block_on(async {
            let receipt = provider.send_transaction(tx).await.unwrap().get_receipt().await.unwrap();
            assert!(receipt.status(), "funding {} failed", key.address());
        });
        key
    }

    fn oracle_as(
        &self,
        key: &alloy::signers::local::PrivateKeySigner,
    ) -> SettlementOracle::SettlementOracleInstance<alloy::providers::DynProvider> {
        let provider = alloy::providers::ProviderBuilder::new()
            .wallet(alloy::network::EthereumWallet::from(key.clone()))
            .connect_http(self.rpc.parse().unwrap())
            .erased();
        SettlementOracle::new(self.dev.contract, provider)
    }

    /// Escrows `wei` from `key` for (settlement, dispute): the transaction and the wei it paid
    /// in gas.
    pub fn post_bond(
        &self,
        key: &alloy::signers::local::PrivateKeySigner,
        s: B256,
        d: B256,
        wei: u128,
    ) -> (B256, u128) {
        let oracle = self.oracle_as(key);
        self.runtime.block_on(async {
            let pending =
                oracle.postBond(s, d).value(U256::from(wei)).send().await.expect("postBond is sent");
            let receipt = pending.get_receipt().await.expect("postBond is mined");
            assert!(receipt.status(), "postBond reverted");
            (receipt.transaction_hash, u128::from(receipt.gas_used) * receipt.effective_gas_price)
        })
    }

    /// `reclaimBond(s, d)` from `key`: the wei it paid in gas.
    pub fn reclaim(&self, key: &alloy::signers::local::PrivateKeySigner, s: B256, d: B256) -> u128 {
        let oracle = self.oracle_as(key);
        self.runtime.block_on(async {
            let pending = oracle.reclaimBond(s, d).send().await.expect("reclaimBond is sent");
            let receipt = pending.get_receipt().await.expect("reclaimBond is mined");
            assert!(receipt.status(), "reclaimBond reverted");
            u128::from(receipt.gas_used) * receipt.effective_gas_price
        })
    }

    /// A plain ETH transfer from `key` to itself: a transaction that escrows nothing.
    pub fn plain_transfer(&self, key: &alloy::signers::local::PrivateKeySigner) -> B256 {
        use alloy::network::TransactionBuilder;
        let provider = alloy::providers::ProviderBuilder::new()
            .wallet(alloy::network::EthereumWallet::from(key.clone()))
            .connect_http(self.rpc.parse().unwrap());
        let tx =
            alloy::rpc::types::TransactionRequest::default().with_to(key.address()).with_value(U256::from(1));
        self.runtime.block_on(async {
            let receipt = provider.send_transaction(tx).await.unwrap().get_receipt().await.unwrap();
            receipt.transaction_hash
        })
    }

    /// `fundPool()` with `wei` from the deployer.
    pub fn fund_pool(&self, wei: u128) {
        let provider = crate::devchain::dev_provider(&self.rpc).unwrap();
        let oracle = SettlementOracle::new(self.dev.contract, provider);
        self.runtime.block_on(async {
            let receipt =
                oracle.fundPool().value(U256::from(wei)).send().await.unwrap().get_receipt().await.unwrap();
            assert!(receipt.status(), "fundPool reverted");
        });
    }

    /// What the contract has credited to `who` (payouts not yet withdrawn), wei.
    pub fn credits(&self, who: Address) -> u128 {
        let provider = crate::devchain::dev_provider(&self.rpc).unwrap();
        let oracle = SettlementOracle::new(self.dev.contract, provider);
        self.runtime.block_on(oracle.credits(who).call().into_future()).unwrap().to::<u128>()
    }

    /// (pool, totalBurned, contract balance), wei.
    pub fn money(&self) -> (u128, u128, u128) {
        let provider = crate::devchain::dev_provider(&self.rpc).unwrap();
        let oracle = SettlementOracle::new(self.dev.contract, provider.clone());
        self.runtime.block_on(async {
            let pool = oracle.pool().call().await.unwrap();
            let burned = oracle.totalBurned().call().await.unwrap();
            let balance = provider.get_balance(self.dev.contract).await.unwrap();
            (pool.to::<u128>(), burned.to::<u128>(), balance.to::<u128>())
        })
    }

    /// `getEscrow(s, d)`: (disputer, amount).
    pub fn escrow(&self, s: B256, d: B256) -> (Address, u128) {
        let provider = crate::devchain::dev_provider(&self.rpc).unwrap();
        let oracle = SettlementOracle::new(self.dev.contract, provider);
        let e = self.runtime.block_on(oracle.getEscrow(s, d).call().into_future()).unwrap();
        (e.disputer, e.amount.to::<u128>())
    }

    pub fn balance(&self, who: Address) -> u128 {
        let provider = crate::devchain::dev_provider(&self.rpc).unwrap();
        self.runtime.block_on(provider.get_balance(who).into_future()).unwrap().to::<u128>()
    }

    /// SIGSTOP: the RPC endpoint stops answering (connections hang) and no blocks are mined.
    pub fn pause(&self) {
        signal(&self.proc, "-STOP");
    }

    /// SIGCONT after [`TestChain::pause`].
    pub fn resume(&self) {
        signal(&self.proc, "-CONT");
    }
}

fn signal(proc: &Proc, sig: &str) {
    let status = Command::new("kill").arg(sig).arg(proc.child.id().to_string()).status().unwrap();
    assert!(status.success(), "kill {sig} {} failed", proc.name);
}
