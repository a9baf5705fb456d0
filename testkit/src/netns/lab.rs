//! The lab itself: its namespaces, veth pairs and bridge, the processes started in its hosts,
//! and the faults on its links. Every change is one `ip`, `nft` or `tc` command run inside a
//! namespace of the lab; the text of each comes from [`super::plan`].

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use super::NetLabError;
use super::forward::{self, Forward};
use super::plan::{self, BRIDGE, HOST_IFACE, Link, Names, Netem, Subnet};
use crate::process::Proc;

/// A host of a lab: a network namespace with one link to the lab's bridge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Host(usize);

impl Host {
    /// Its place in the lab, in the order hosts were added (its address is `.index+1`).
    pub fn index(self) -> usize {
        self.0
    }
}

/// A set of network namespaces on one bridge, deleted when dropped. See the [module
/// docs](super) for the picture.
#[derive(Debug)]
pub struct NetLab {
    tools: Tools,
    names: Names,
    subnet: Subnet,
    bridge_made: bool,
    hosts: Vec<HostEntry>,
    faults: Mutex<Faults>,
}

#[derive(Debug)]
struct HostEntry {
    name: String,
    ns: String,
    ip: Ipv4Addr,
}

/// The faults in force, so that heals undo exactly what was done.
#[derive(Debug, Default)]
struct Faults {
    cuts: BTreeSet<(usize, usize)>,
    netem: BTreeSet<usize>,
}

/// Where the commands a lab runs are.
#[derive(Debug)]
struct Tools {
    ip: PathBuf,
    tc: PathBuf,
    nft: PathBuf,
}

impl Tools {
    fn find() -> Result<Tools, NetLabError> {
        Ok(Tools {
            ip: find_tool("ip", "iproute2")?,
            tc: find_tool("tc", "iproute2")?,
            nft: find_tool("nft", "nftables")?,
        })
    }
}

/// `tool` on PATH, or in /usr/sbin or /sbin (often not on a non-login PATH).
fn find_tool(tool: &'static str, package: &'static str) -> Result<PathBuf, NetLabError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
        .ok_or(NetLabError::MissingTool { tool, package })
}

impl NetLab {
    /// Makes an empty lab: checks for root and the tools, removes labs left behind by killed
    /// test processes, picks a free subnet and makes the bridge namespace.
    pub fn new() -> Result<NetLab, NetLabError> {
        let uid = nix::unistd::geteuid().as_raw();
        if uid != 0 {
            return Err(NetLabError::NotRoot { uid });
        }
        let tools = Tools::find()?;
        let existing = list_namespaces(&tools.ip)?;
        remove_stale_labs(&tools.ip, &existing);
        let taken: BTreeSet<u8> = existing.iter().filter_map(|n| plan::parse_ns(n)).map(|(o, _)| o).collect();
        static LABS: AtomicU32 = AtomicU32::new(0);
        let pid = std::process::id();
        let start = pid.wrapping_mul(37).wrapping_add(LABS.fetch_add(1, Ordering::SeqCst)) % 256;
        let start = u8::try_from(start).expect("below 256");
        let octet = plan::free_octet(start, &taken).ok_or(NetLabError::NoFreeSubnet)?;
        let mut lab = NetLab {
            tools,
            names: Names::new(octet, pid),
            subnet: Subnet::new(octet),
            bridge_made: false,
            hosts: Vec::new(),
            faults: Mutex::default(),
        };
        let bridge_ns = lab.names.bridge_ns();
        lab.run_ip("make the lab's bridge namespace", &["netns", "add", &bridge_ns])?;
        lab.bridge_made = true;
        lab.run_ip("make the lab's bridge", &["-n", &bridge_ns, "link", "add", BRIDGE, "type", "bridge"])?;
        lab.run_ip("bring the lab's bridge up", &["-n", &bridge_ns, "link", "set", BRIDGE, "up"])?;
        Ok(lab)
    }

    /// Adds a host called `name` (a-z, 0-9, '-'): its namespace, its veth pair to the bridge,
    /// its address and its nftables ruleset (no faults yet).
    pub fn add_host(&mut self, name: &str) -> Result<Host, NetLabError> {
        let index = self.hosts.len();
        let ip = self.subnet.host_ip(index)?;
        let cidr = self.subnet.host_cidr(index)?;
        let ns = self.names.host_ns(name)?;
        let what = |step: &str| format!("{step} of lab host {name}");
        self.run_ip(&what("the namespace"), &["netns", "add", &ns])?;
        self.hosts.push(HostEntry { name: name.to_owned(), ns: ns.clone(), ip });
        let bridge_ns = self.names.bridge_ns();
        let port = plan::bridge_port(index);
        let link: [&str; 12] = [
            "-n", &bridge_ns, "link", "add", &port, "type", "veth", "peer", "name", HOST_IFACE, "netns", &ns,
        ];
        self.run_ip(&what("the veth pair"), &link)?;
        self.run_ip(&what("the bridge port"), &["-n", &bridge_ns, "link", "set", &port, "master", BRIDGE])?;
        self.run_ip(&what("the bridge port"), &["-n", &bridge_ns, "link", "set", &port, "up"])?;
        self.run_ip(&what("the address"), &["-n", &ns, "addr", "add", &cidr, "dev", HOST_IFACE])?;
        self.run_ip(&what("the link"), &["-n", &ns, "link", "set", HOST_IFACE, "up"])?;
        self.run_ip(&what("the loopback"), &["-n", &ns, "link", "set", "lo", "up"])?;
        let host = Host(index);
        self.nft(host, &what("the nftables ruleset"), &plan::host_ruleset())?;
        Ok(host)
    }

    /// Every host, in the order they were added.
    pub fn hosts(&self) -> impl Iterator<Item = Host> + use<> {
        (0..self.hosts.len()).map(Host)
    }

    /// The host's address on the lab's bridge.
    pub fn ip(&self, host: Host) -> Ipv4Addr {
        self.entry(host).ip
    }

    /// The host's name, as given to [`NetLab::add_host`].
    pub fn name(&self, host: Host) -> &str {
        &self.entry(host).name
    }

    /// The host's network namespace (`ip netns exec <it> ...`).
    pub fn namespace(&self, host: Host) -> &str {
        &self.entry(host).ns
    }

    /// The file of the host's namespace, for `setns`.
    pub fn namespace_path(&self, host: Host) -> PathBuf {
        Path::new("/run/netns").join(self.namespace(host))
    }

    fn entry(&self, host: Host) -> &HostEntry {
        self.hosts.get(host.0).unwrap_or_else(|| panic!("{host:?} is not a host of this lab"))
    }

    /// `cmd` (program, arguments, environment and directory) run inside the host's namespace.
    pub fn command(&self, host: Host, cmd: Command) -> Command {
        let mut wrapped = Command::new(&self.tools.ip);
        wrapped.args([OsStr::new("netns"), OsStr::new("exec"), OsStr::new(self.namespace(host))]);
        wrapped.arg(cmd.get_program()).args(cmd.get_args());
        for (key, value) in cmd.get_envs() {
            match value {
                Some(value) => wrapped.env(key, value),
                None => wrapped.env_remove(key),
            };
        }
        if let Some(dir) = cmd.get_current_dir() {
            wrapped.current_dir(dir);
        }
        wrapped
    }

    /// Starts `cmd` inside the host's namespace as a test child called `name` (its output lines
    /// forwarded, its process group killed on drop). `ip netns exec` execs the program, so the
    /// child is the program itself.
    pub fn spawn(&self, host: Host, name: &str, cmd: Command) -> Result<Proc, NetLabError> {
        let wrapped = self.command(host, cmd);
        let command = describe(&wrapped);
        Proc::piped(name, wrapped).map_err(|source| NetLabError::Spawn {
            what: format!("{name} in lab host {}", self.name(host)),
            command,
            source,
        })
    }

    /// A loopback port of the test that reaches `port` on the host's own loopback.
    pub fn forward(&self, host: Host, port: u16) -> Result<Forward, NetLabError> {
        let target = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        Forward::start(self.namespace_path(host), target)
            .map_err(|source| NetLabError::Forward { ns: self.namespace(host).to_owned(), source })
    }

    /// A TCP listener on the host's lab address, as a process in the host would have (for
    /// probes: whether a link carries traffic).
    pub fn listen(&self, host: Host, port: u16) -> std::io::Result<TcpListener> {
        let addr = SocketAddr::from((self.ip(host), port));
        forward::in_namespace(&self.namespace_path(host), || TcpListener::bind(addr))
    }

    /// A TCP connection from inside host `from` to `port` on host `to`'s lab address, or the
    /// error after `timeout` (a cut link drops the SYN: the connection times out).
    pub fn connect(&self, from: Host, to: Host, port: u16, timeout: Duration) -> std::io::Result<TcpStream> {
        let addr = SocketAddr::from((self.ip(to), port));
        forward::in_namespace(&self.namespace_path(from), || TcpStream::connect_timeout(&addr, timeout))
    }

    /// Cuts the link between `a` and `b`, both ways: each drops every packet from and to the
    /// other. Cutting a cut link does nothing.
    pub fn cut(&self, a: Host, b: Host) -> Result<(), NetLabError> {
        let mut faults = self.faults.lock().unwrap_or_else(PoisonError::into_inner);
        let pair = (a.0.min(b.0), a.0.max(b.0));
        if a == b || faults.cuts.contains(&pair) {
            return Ok(());
        }
        self.set_link(a, b, Link::Cut)?;
        faults.cuts.insert(pair);
        Ok(())
    }

    /// Heals the link between `a` and `b` (nothing if it is not cut).
    pub fn heal(&self, a: Host, b: Host) -> Result<(), NetLabError> {
        let mut faults = self.faults.lock().unwrap_or_else(PoisonError::into_inner);
        let pair = (a.0.min(b.0), a.0.max(b.0));
        if !faults.cuts.contains(&pair) {
            return Ok(());
        }
        self.set_link(a, b, Link::Heal)?;
        faults.cuts.remove(&pair);
        Ok(())
    }

    /// Cuts `host` off from every other host of the lab.
    pub fn isolate(&self, host: Host) -> Result<(), NetLabError> {
        for other in self.hosts().filter(|&h| h != host) {
            self.cut(host, other)?;
        }
        Ok(())
    }

    /// Splits the hosts into `groups` that cannot reach each other (links inside a group, and
    /// those of hosts in no group, stay as they are). Adds to the cuts already in force.
    pub fn partition(&self, groups: &[&[Host]]) -> Result<(), NetLabError> {
        let indices: Vec<Vec<usize>> = groups.iter().map(|g| g.iter().map(|h| h.0).collect()).collect();
        let sides: Vec<&[usize]> = indices.iter().map(Vec::as_slice).collect();
        for (a, b) in plan::partition_cuts(&sides)? {
            self.cut(Host(a), Host(b))?;
        }
        Ok(())
    }

    /// Heals every cut link.
    pub fn heal_all(&self) -> Result<(), NetLabError> {
        let mut faults = self.faults.lock().unwrap_or_else(PoisonError::into_inner);
        let hosts: BTreeSet<usize> = faults.cuts.iter().flat_map(|&(a, b)| [a, b]).collect();
        for host in hosts {
            self.nft(Host(host), "healing every cut", &plan::heal_all_rule())?;
        }
        faults.cuts.clear();
        Ok(())
    }

    /// The links cut now, each once (lower host first).
    pub fn cuts(&self) -> Vec<(Host, Host)> {
        let faults = self.faults.lock().unwrap_or_else(PoisonError::into_inner);
        faults.cuts.iter().map(|&(a, b)| (Host(a), Host(b))).collect()
    }

    /// Puts `tc netem` on the host's link, both ways (on its `eth0` and on its bridge port),
    /// replacing any netem already there. Fails with [`NetLabError::NoNetem`] on a kernel
    /// without netem.
    pub fn netem(&self, host: Host, netem: &Netem) -> Result<(), NetLabError> {
        let mut faults = self.faults.lock().unwrap_or_else(PoisonError::into_inner);
        for (ns, iface) in self.link_ends(host) {
            let args = plan::netem_args(&iface, netem)?;
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            self.tc(&ns, &format!("netem on lab host {}", self.name(host)), &args)?;
        }
        faults.netem.insert(host.0);
        Ok(())
    }

    /// Takes netem off the host's link (nothing if it has none).
    pub fn clear_netem(&self, host: Host) -> Result<(), NetLabError> {
        let mut faults = self.faults.lock().unwrap_or_else(PoisonError::into_inner);
        if !faults.netem.contains(&host.0) {
            return Ok(());
        }
        for (ns, iface) in self.link_ends(host) {
            let what = format!("clearing netem on lab host {}", self.name(host));
            self.tc(&ns, &what, &["qdisc", "del", "dev", &iface, "root"])?;
        }
        faults.netem.remove(&host.0);
        Ok(())
    }

    /// Makes the host drop `percent` of the packets it sends and of those it receives on its
    /// link, at random, with nftables (works on kernels without netem); 0 clears it.
    pub fn packet_loss(&self, host: Host, percent: u8) -> Result<(), NetLabError> {
        let what = format!("{percent}% packet loss on lab host {}", self.name(host));
        self.nft(host, &what, &plan::loss_rules(percent)?)
    }

    /// (namespace, interface) of both ends of the host's link.
    fn link_ends(&self, host: Host) -> [(String, String); 2] {
        [
            (self.namespace(host).to_owned(), HOST_IFACE.to_owned()),
            (self.names.bridge_ns(), plan::bridge_port(host.0)),
        ]
    }

    fn set_link(&self, a: Host, b: Host, link: Link) -> Result<(), NetLabError> {
        let what = format!("{link:?} between lab hosts {} and {}", self.name(a), self.name(b));
        self.nft(a, &what, &plan::link_rule(link, self.ip(b)))?;
        self.nft(b, &what, &plan::link_rule(link, self.ip(a)))
    }

    fn run_ip(&self, what: &str, args: &[&str]) -> Result<String, NetLabError> {
        run(what, Command::new(&self.tools.ip).args(args), None)
    }

    /// Runs nft `rules` (a script) inside the host's namespace.
    fn nft(&self, host: Host, what: &str, rules: &str) -> Result<(), NetLabError> {
        let mut cmd = Command::new(&self.tools.ip);
        cmd.args(["netns", "exec", self.namespace(host)]).arg(&self.tools.nft).args(["-f", "-"]);
        run(what, &mut cmd, Some(rules)).map(drop)
    }

    fn tc(&self, ns: &str, what: &str, args: &[&str]) -> Result<String, NetLabError> {
        let mut cmd = Command::new(&self.tools.ip);
        cmd.args(["netns", "exec", ns]).arg(&self.tools.tc).args(args);
        run(what, &mut cmd, None).map_err(|e| match e {
            NetLabError::Command { stderr, .. } if stderr.contains("qdisc kind is unknown") => {
                NetLabError::NoNetem { stderr }
            }
            other => other,
        })
    }
}

impl Drop for NetLab {
    /// Deletes the hosts' namespaces, then the bridge's (their veth pairs go with them).
    /// Processes still inside keep a namespace alive, unnamed, until they exit.
    fn drop(&mut self) {
        let mut names: Vec<String> = self.hosts.iter().rev().map(|h| h.ns.clone()).collect();
        if self.bridge_made {
            names.push(self.names.bridge_ns());
        }
        for ns in names {
            if let Err(e) = self.run_ip("deleting a lab namespace", &["netns", "delete", &ns]) {
                eprintln!("network lab: {e}");
            }
        }
    }
}

/// The namespaces `ip netns list` shows.
fn list_namespaces(ip: &Path) -> Result<Vec<String>, NetLabError> {
    let out = run("listing network namespaces", Command::new(ip).args(["netns", "list"]), None)?;
    Ok(out.lines().filter_map(|l| l.split_whitespace().next()).map(str::to_owned).collect())
}

/// Deletes the namespaces of labs whose process is gone (a test killed before its drop).
fn remove_stale_labs(ip: &Path, existing: &[String]) {
    for ns in existing {
        let Some((_, pid)) = plan::parse_ns(ns) else { continue };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ =
                run("removing a stale lab namespace", Command::new(ip).args(["netns", "delete", ns]), None);
        }
    }
}

/// Runs `cmd` to completion (with `stdin` written to it), its stdout; an error naming `what`,
/// the command and its stderr if it fails.
fn run(what: &str, cmd: &mut Command, stdin: Option<&str>) -> Result<String, NetLabError> {
    let command = describe(cmd);
    let spawn_error = |source| NetLabError::Spawn { what: what.to_owned(), command: command.clone(), source };
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(spawn_error)?;
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("piped above");
        pipe.write_all(text.as_bytes()).map_err(spawn_error)?;
    }
    let out = child.wait_with_output().map_err(spawn_error)?;
    if !out.status.success() {
        return Err(NetLabError::Command {
            what: what.to_owned(),
            command,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A command line as a shell would show it (for errors).
fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
