//! Real network faults for end-to-end tests: every host (a `fixd` node, anvil, the replay
//! venues) runs in a Linux network namespace of its own, wired to one bridge, and the test
//! cuts, heals, partitions, delays and drops the links between them with the kernel's own
//! tools: nftables for cuts and random loss, `tc netem` for delay, jitter, loss and reordering.
//!
//! ```text
//!   root namespace (untouched)          fxl<o>-<pid>-br: the lab's bridge namespace
//!   the test process ──Forward──┐          ┌────────────── br0 ──────────────┐
//!   127.0.0.1:<port>            │          h0              h1        ...      hN
//!                               │          │ veth          │ veth             │ veth
//!                               └─setns─▶ eth0 10.77.o.1  eth0 10.77.o.2     eth0 10.77.o.N+1
//!                                  lo      fxl<o>-<pid>-venues  -anvil  ...   -node-K
//!                                          nft table inet fixd_lab: set cut, loss_in/loss_out
//!                                          tc qdisc netem on eth0 (and on hN: both ways)
//! ```
//!
//! Nothing is added to the root namespace: the bridge lives in a namespace of the lab's own,
//! and the test reaches a host's loopback ports (a node's API, anvil's RPC) through a
//! [`Forward`], a loopback port of the test whose connections are made from inside the host's
//! namespace. Traffic therefore only ever flows on loopback and inside namespaces the test made.
//!
//! A [`NetLab`] needs root and `ip`, `tc` (iproute2) and `nft` (nftables); without them it
//! fails with what to run (`scripts/install-tools.sh`), never skipping. Dropping it deletes its
//! namespaces (also while a test panics); a lab left by a killed test process is removed by the
//! next lab that starts. [`LabDevnet`] is the harness's devnet inside a lab.
//!
//! Modules: [`plan`] (addresses, names, rule text: pure), `lab` (the namespaces and faults),
//! `forward` (the test's way in), `devnet` (members, anvil and venues as hosts).

mod devnet;
mod forward;
mod lab;
pub mod plan;

pub use devnet::{ANVIL_PORT, LabDevnet, P2P_PORT, VENUES_PORT};
pub use forward::Forward;
pub use lab::{Host, NetLab};
pub use plan::Netem;

/// Why a lab, a host in it or a fault could not be made.
#[derive(Debug, thiserror::Error)]
pub enum NetLabError {
    #[error(
        "network namespaces need root, and this test runs as uid {uid}: run the end-to-end tests \
         as root (CI does), e.g. `sudo -E cargo nextest run -p fixd network_faults`"
    )]
    NotRoot { uid: u32 },
    #[error(
        "`{tool}` is not installed (searched PATH, /usr/sbin and /sbin): run scripts/install-tools.sh, \
         which installs the Debian package {package}"
    )]
    MissingTool { tool: &'static str, package: &'static str },
    #[error(
        "this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM; `tc` said: {stderr}): load it with \
         `modprobe sch_netem` or run on a kernel built with it; NetLab::packet_loss drops packets \
         with nftables instead"
    )]
    NoNetem { stderr: String },
    #[error("{what} failed: `{command}` exited with {status}: {stderr}")]
    Command { what: String, command: String, status: String, stderr: String },
    #[error("cannot run `{command}` for {what}: {source}")]
    Spawn { what: String, command: String, source: std::io::Error },
    #[error("host name {name:?}: use 1 to {max} of a-z, 0-9 and '-' (and not \"br\")")]
    BadHostName { name: String, max: usize },
    #[error("a lab holds at most {max} hosts (one /24): split the test across labs")]
    TooManyHosts { max: usize },
    #[error("every lab subnet 10.77.0-255.0/24 is in use: delete stale namespaces (`ip netns list`)")]
    NoFreeSubnet,
    #[error("bad fault: {0}")]
    BadFault(String),
    #[error("forwarding a loopback port into namespace {ns}: {source}")]
    Forward { ns: String, source: std::io::Error },
}
