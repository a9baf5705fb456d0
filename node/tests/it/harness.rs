//! Real processes for end-to-end tests: the replay venues and `fixd` nodes, each a child process
//! of the test on loopback ports it picks itself, in its own temporary directory. Children are
//! killed when their handle drops, so a failing test leaves nothing running.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fixd_proto::replay::ReplayClock;
use fixd_proto::types::genesis::ProtocolParams;
use fixd_proto::types::settlement::MethodologyParams;
use serde_json::Value;

/// The `fixd` binary under test.
pub fn fixd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_fixd"))
}

/// Unix seconds now.
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// A child process that is killed on drop, with its output lines collected.
pub struct Proc {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    pub name: String,
}

impl Proc {
    /// Spawns `cmd`, forwarding stdout and stderr lines (prefixed with `name`) to the test's
    /// output and to [`Proc::wait_for_line`].
    pub fn spawn(name: &str, mut cmd: Command) -> Proc {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let (tx, lines) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            let name = name.to_owned();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    eprintln!("[{name}] {line}");
                    let _ = tx.send(line);
                }
            });
        }
        Proc { child, lines, name: name.to_owned() }
    }

    /// Waits for an output line containing `needle` and returns it.
    pub fn wait_for_line(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!("{}: no line containing {needle:?} within {timeout:?}", self.name),
            }
        }
    }

    /// SIGKILL, no chance to flush.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The URL printed after `listening on ` in a line.
fn url_in(line: &str) -> String {
    let at = line.find("http://").unwrap_or_else(|| panic!("no URL in {line:?}"));
    line[at..].split_whitespace().next().unwrap().to_owned()
}

/// The replay venues, as a process (alive as long as this handle).
pub struct Replay {
    _proc: Proc,
    pub url: String,
}

impl Replay {
    /// Starts the replay venues with replay instant `replay_start` playing at `wall_start`.
    pub fn start(clock: ReplayClock, faults: &[&str]) -> Replay {
        let mut cmd = fixd();
        cmd.args(["replay-venues", "--listen", "127.0.0.1:0"])
            .args(["--replay-start", &iso(clock.replay_start)])
            .args(["--wall-start", &clock.wall_start.to_string()])
            .args(["--speed", &clock.speed.to_string()]);
        for f in faults {
            cmd.args(["--fault", f]);
        }
        let proc = Proc::spawn("replay", cmd);
        let url = url_in(&proc.wait_for_line("listening on", Duration::from_secs(30)));
        Replay { _proc: proc, url }
    }
}

/// RFC 3339 UTC of unix seconds (`YYYY-MM-DDTHH:MM:SSZ`).
pub fn iso(unix: u64) -> String {
    fixd_proto::calendar::rfc3339_utc(unix * 1000, 0)
}

/// A member's directory: keys, member.toml, config.toml.
pub struct MemberDir {
    pub dir: PathBuf,
}

/// Creates a member with `fixd init`.
pub fn init_member(root: &Path, name: &str) -> MemberDir {
    init_member_listening(root, name, 9000)
}

/// Creates a member with `fixd init`, advertising a libp2p port on loopback.
pub fn init_member_listening(root: &Path, name: &str, p2p_port: u16) -> MemberDir {
    let dir = root.join(name);
    let listen = format!("/ip4/127.0.0.1/tcp/{p2p_port}");
    let out = fixd()
        .args(["init", "--dir"])
        .arg(&dir)
        .args(["--name", name, "--listen", &listen])
        .output()
        .unwrap();
    assert!(out.status.success(), "fixd init failed: {}", String::from_utf8_lossy(&out.stderr));
    MemberDir { dir }
}

/// Builds a genesis with `fixd genesis` from the members' member.toml files.
pub fn build_genesis(root: &Path, members: &[MemberDir]) -> PathBuf {
    build_genesis_with(root, members, None)
}

/// [`build_genesis`] with protocol parameters from a TOML file.
pub fn build_genesis_with(root: &Path, members: &[MemberDir], params: Option<&Path>) -> PathBuf {
    let path = root.join("genesis.toml");
    let mut cmd = fixd();
    cmd.arg("genesis").arg("--out").arg(&path);
    if let Some(params) = params {
        cmd.arg("--params").arg(params);
    }
    for m in members {
        cmd.arg("--member").arg(m.dir.join("member.toml"));
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "fixd genesis failed: {}", String::from_utf8_lossy(&out.stderr));
    path
}

/// A settlement to schedule through the config.
pub struct Scheduled {
    pub maturity: u64,
    pub params: MethodologyParams,
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
    }
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
    let mut text = format!(
        "data_dir = \"data\"\ngenesis = {genesis:?}\nkeys_dir = \".\"\n\n[api]\nlisten = \"127.0.0.1:0\"\n\n\
         [observer]\ntick = \"250ms\"\n\n[p2p]\nlisten = {p2p_listen:?}\ndial_interval = \"1s\"\n\n"
    );
    for venue in ["coinbase", "kraken", "bitstamp", "gemini"] {
        text += &format!(
            "[venues.{venue}]\nbase_url = {venues_url:?}\ntimeout = \"2s\"\nretries = 1\nbackoff = \"100ms\"\nmin_interval = \"0s\"\n\n"
        );
    }
    for s in settlements {
        let p = &s.params;
        text += &format!(
            "[[settlements]]\nmaturity = {}\n[settlements.params]\nwindow_secs = {}\npartitions = {}\ngrace_secs = {}\n\
             min_venues = {}\nmin_partitions = {}\nmax_venue_deviation_bp = {}\n\n",
            s.maturity,
            p.window_secs,
            p.partitions,
            p.grace_secs,
            p.min_venues,
            p.min_partitions,
            p.max_venue_deviation_bp
        );
    }
    let path = member.dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A running `fixd run`.
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
        let mut cmd = fixd();
        cmd.args(["run", "--config"]).arg(config).env("RUST_LOG", "info,fixd_node=debug");
        cmd.envs(env.iter().copied());
        let proc = Proc::spawn(name, cmd);
        let api = url_in(&proc.wait_for_line("API listening on", Duration::from_secs(30)));
        Node { proc, api }
    }

    /// GET a JSON document from the node's API.
    pub fn get(&self, path: &str) -> (u16, Value) {
        http::get_json(&format!("{}{path}", self.api))
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
}

/// A free loopback TCP port (free when asked; the caller binds it soon after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A local network: the replay venues and `n` real `fixd` nodes gossiping over libp2p on
/// loopback, each in its own directory with its own ports.
pub struct Devnet {
    nodes: Vec<Option<Node>>,
    configs: Vec<PathBuf>,
    _replay: Replay,
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
        let root = tempfile::tempdir().unwrap();
        let members: Vec<MemberDir> =
            (0..n).map(|i| init_member_listening(root.path(), &format!("node-{i}"), free_port())).collect();
        let params_file = root.path().join("params.toml");
        std::fs::write(&params_file, toml::to_string(params).unwrap()).unwrap();
        let genesis = build_genesis_with(root.path(), &members, Some(&params_file));
        let replay = Replay::start(clock, &[]);
        let configs = members
            .iter()
            .map(|m| write_config_listening(m, &genesis, &replay.url, settlements, &[]))
            .collect();
        Devnet { nodes: (0..n).map(|_| None).collect(), configs, _replay: replay, root }
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
}
