//! The harness's devnet inside a [`NetLab`]: each member, anvil and the replay venues is a host
//! of its own, so a test can cut, delay or drop any link between them. Members listen for
//! libp2p on their lab address (the genesis names it), reach anvil and the venues at theirs,
//! and serve their API on their own loopback, which the test reaches through a [`Forward`].
//!
//! ```text
//!   venues 10.77.o.1:8900   anvil 10.77.o.2:8545   node-i 10.77.o.(3+i):9000 (libp2p)
//!        ▲ Forward                ▲ Forward               ▲ Forward to its API (127.0.0.1:0)
//!   venues_url              chain.rpc               node(i).api            (the test's loopback)
//! ```

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use fixd_proto::replay::ReplayClock;
use fixd_proto::types::genesis::{Committee, ProtocolParams};

use super::NetLabError;
use super::forward::Forward;
use super::lab::{Host, NetLab};
use crate::harness::{
    MemberDir, Node, Scheduled, TestChain, anvil_path, build_genesis_on, init_member_at, node_command,
    replay_command, write_config_full,
};
use crate::process::Proc;

/// The libp2p port of every member, on its lab address.
pub const P2P_PORT: u16 = 9000;
/// anvil's RPC port, on its lab address.
pub const ANVIL_PORT: u16 = 8545;
/// The replay venues' port, on their lab address.
pub const VENUES_PORT: u16 = 8900;

/// `n` members, anvil (a block a second, the oracle deployed for the committee) and the replay
/// venues, each a host of one lab; the nodes publish to anvil. Dropping it stops every process,
/// then deletes the lab.
#[derive(Debug)]
pub struct LabDevnet {
    nodes: Vec<Option<LabNode>>,
    configs: Vec<PathBuf>,
    /// The chain; its `rpc` is the test's forward to anvil.
    pub chain: TestChain,
    _venues_proc: Proc,
    /// The replay venues as the test reaches them (a forward): `/_replay/...` switches faults.
    pub venues_url: String,
    /// The replay venues' clock.
    pub clock: ReplayClock,
    /// Member `i`'s host.
    pub members: Vec<Host>,
    /// anvil's host.
    pub anvil: Host,
    /// The replay venues' host.
    pub venues: Host,
    _forwards: [Forward; 2],
    root: tempfile::TempDir,
    /// The lab, for faults; declared last so that it is dropped after every process in it.
    pub lab: NetLab,
}

/// A running node and the test's forward to its API.
#[derive(Debug)]
struct LabNode {
    node: Node,
    _api: Forward,
}

impl LabDevnet {
    /// Makes the lab, starts anvil and the venues in it and sets up `n` members scheduling
    /// `settlements` with protocol `params`, starting no node.
    pub fn prepare(
        n: usize,
        clock: ReplayClock,
        settlements: &[Scheduled],
        params: &ProtocolParams,
    ) -> Result<LabDevnet, NetLabError> {
        LabDevnet::prepare_with(n, clock, settlements, params, &[])
    }

    /// [`LabDevnet::prepare`] with replay-venue faults (`fixd replay-venues --fault`).
    pub fn prepare_with(
        n: usize,
        clock: ReplayClock,
        settlements: &[Scheduled],
        params: &ProtocolParams,
        faults: &[&str],
    ) -> Result<LabDevnet, NetLabError> {
        let mut lab = NetLab::new()?;
        let venues = lab.add_host("venues")?;
        let anvil = lab.add_host("anvil")?;
        let members = (0..n).map(|i| lab.add_host(&format!("node-{i}"))).collect::<Result<Vec<_>, _>>()?;
        let root = tempfile::tempdir().expect("a temporary directory");
        let dirs: Vec<MemberDir> = members
            .iter()
            .enumerate()
            .map(|(i, &h)| {
                init_member_at(
                    root.path(),
                    &format!("node-{i}"),
                    &format!("/ip4/{}/tcp/{P2P_PORT}", lab.ip(h)),
                )
            })
            .collect();
        let params_file = root.path().join("params.toml");
        std::fs::write(&params_file, toml::to_string(params).expect("params serialise"))
            .expect("the params file is written");

        let (chain, anvil_forward) = start_chain(&lab, anvil, &dirs)?;
        let venues_proc =
            lab.spawn(venues, "replay", replay_command(clock, faults, &format!("0.0.0.0:{VENUES_PORT}")))?;
        venues_proc.wait_for_line("listening on", Duration::from_secs(30));
        let venues_forward = lab.forward(venues, VENUES_PORT)?;

        let genesis = build_genesis_on(root.path(), &dirs, Some(&params_file), Some(&chain.dev), None);
        let venues_lab_url = format!("http://{}:{VENUES_PORT}", lab.ip(venues));
        let rpc_lab_url = format!("http://{}:{ANVIL_PORT}", lab.ip(anvil));
        let configs = dirs
            .iter()
            .map(|m| write_config_full(m, &genesis, &venues_lab_url, settlements, &[], Some(&rpc_lab_url)))
            .collect();
        Ok(LabDevnet {
            nodes: (0..n).map(|_| None).collect(),
            configs,
            chain,
            _venues_proc: venues_proc,
            venues_url: venues_forward.url(),
            clock,
            members,
            anvil,
            venues,
            _forwards: [anvil_forward, venues_forward],
            root,
            lab,
        })
    }

    /// Starts (or restarts, on the same data directory) node `i` in its host.
    pub fn start_node(&mut self, i: usize) -> &Node {
        self.start_node_with(i, &[], &[])
    }

    /// Starts node `i` with extra `fixd run` flags and environment variables.
    pub fn start_node_with(&mut self, i: usize, args: &[&str], env: &[(&str, &str)]) -> &Node {
        let name = format!("node-{i}");
        let host = self.members[i];
        let mut node = Node::launch(&name, self.lab.command(host, node_command(&self.configs[i], args, env)));
        let port = reqwest::Url::parse(&node.api)
            .ok()
            .and_then(|url| url.port())
            .unwrap_or_else(|| panic!("{name}: no port in its API URL {}", node.api));
        let api = self.lab.forward(host, port).unwrap_or_else(|e| panic!("{name}: {e}"));
        node.api = api.url();
        self.nodes[i] = Some(LabNode { node, _api: api });
        self.node(i)
    }

    /// Stops node `i` with SIGKILL.
    pub fn stop_node(&mut self, i: usize) {
        self.nodes[i] = None;
    }

    /// A running node; its `api` is the test's forward.
    pub fn node(&self, i: usize) -> &Node {
        self.nodes[i].as_ref().map(|n| &n.node).unwrap_or_else(|| panic!("node-{i} is not running"))
    }

    /// The running nodes.
    pub fn running(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().flatten().map(|n| &n.node)
    }

    /// Whether node `i` is running.
    pub fn is_running(&self, i: usize) -> bool {
        self.nodes[i].is_some()
    }

    /// The genesis file and node `i`'s keys directory.
    pub fn genesis_and_keys(&self, i: usize) -> (PathBuf, PathBuf) {
        let keys = self.configs[i].parent().expect("a member directory").to_owned();
        (self.root.path().join("genesis.toml"), keys)
    }

    /// Splits the members into `groups` (member indices) that cannot reach each other; anvil,
    /// the venues and members in no group keep all their links.
    pub fn partition_members(&self, groups: &[Vec<usize>]) -> Result<(), NetLabError> {
        let hosts: Vec<Vec<Host>> =
            groups.iter().map(|g| g.iter().map(|&i| self.members[i]).collect()).collect();
        let sides: Vec<&[Host]> = hosts.iter().map(Vec::as_slice).collect();
        self.lab.partition(&sides)
    }
}

/// Starts anvil in its host on every address of it, forwards the test to it, and deploys the
/// oracle for the members with the committee's quorum as threshold.
fn start_chain(lab: &NetLab, anvil: Host, dirs: &[MemberDir]) -> Result<(TestChain, Forward), NetLabError> {
    let mut cmd = Command::new(anvil_path());
    cmd.args(["--host", "0.0.0.0", "--port", &ANVIL_PORT.to_string(), "--block-time", "1"]);
    let proc = lab.spawn(anvil, "anvil", cmd)?;
    proc.wait_for_line("Listening on", Duration::from_secs(30));
    let forward = lab.forward(anvil, ANVIL_PORT)?;
    let committee = Committee::new(dirs.iter().map(MemberDir::member).collect());
    let addresses: Vec<_> = dirs.iter().map(MemberDir::eth_address).collect();
    Ok((TestChain::deploy(proc, forward.url(), &addresses, committee.q()), forward))
}
