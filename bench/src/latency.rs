//! The latency section: a committee of n members on anvil settles `--settlements` settlements
//! maturing `--per-second` a second, and the harness follows every node's `/v1/events` stream,
//! stamping each event as it arrives (on loopback, within a millisecond of its sending).
//!
//! - **q observations held → certificate**: for each settlement and node, from the moment the
//!   q-th member signed its observation (the q-th `observed` event of the committee) to that
//!   node's `certified` event. The gossip of the q-th observation to the node is inside the
//!   figure, so it is an upper bound of the node's own time from holding q to certifying.
//! - **certificate → confirmed publication**: for each settlement, from its first `certified`
//!   event to its first `published` one (the node saw the value on-chain with the genesis'
//!   confirmations). It holds the challenge window; **final → published** leaves it out.
//!
//! Correctness is checked, never timings: every settlement certified and published on every
//! node, one value on every node, and that value in the contract.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alloy_primitives::{B256, U256};
use anyhow::Context;
use fixd_proto::types::genesis::ProtocolParams;
use fixd_proto::types::settlement::{MethodologyParams, SettlementSpec};
use fixd_proto::value::Wad;
use fixd_testkit::harness::{Devnet, Scheduled, short_maturity};

/// The events the section stamps.
const KINDS: [&str; 4] = ["observed", "certified", "final", "published"];

/// What one committee size measured.
pub struct LatencyRow {
    pub n: usize,
    pub settlements: usize,
    /// q observations held → certificate, one sample per (settlement, node), milliseconds.
    pub to_certificate: Vec<f64>,
    /// First certificate → first confirmed publication, per settlement, milliseconds.
    pub to_publication: Vec<f64>,
    /// First `final` → first confirmed publication, per settlement, milliseconds.
    pub final_to_publication: Vec<f64>,
    /// From the first maturity to every settlement published on every node (seen within 0.2 s).
    pub total: Duration,
    /// Distinct windows among the settlements, and the most HTTP requests node-0 sent to one
    /// venue (`fixd_venue_requests_total`): a fetch is shared by a window's settlements.
    pub windows: usize,
    pub venue_requests: u64,
    /// From the first maturity to every settlement certified on every node.
    pub all_certified: Duration,
    /// The largest peak resident memory of a node (`VmHWM`), and the largest data directory,
    /// in MiB, read once everything is published.
    pub peak_rss_mib: f64,
    pub store_mib: f64,
    /// The distinct transactions that published the settlements (a batch publishes many).
    pub transactions: usize,
    /// With `restart`: node-0 stopped once everything is published and started again on its
    /// data directory (every settlement settled in it).
    pub restart: Option<Restarted>,
    /// With `restart` (the burst section): the most decisions node-0 ran at once and the most
    /// that waited to start (`fixd_decisions_running`, `fixd_decisions_waiting`, read every
    /// 0.2 s until all are published).
    pub most_running: u64,
    pub most_waiting: u64,
}

/// A member's restart on a data directory: spawn → its API answering (serving), → its status
/// naming every peer (following the network), and its peak resident memory in its first seconds.
pub struct Restarted {
    pub serving: Duration,
    pub following: Duration,
    pub rss_mib: f64,
    /// Drivers it built from its store by then (`fixd_drivers_built_total`): none, every
    /// settlement being settled.
    pub drivers: u64,
}

/// The settlement specs: `count` of them, `per_second` maturing each second from `first`; those
/// sharing a second differ in their largest allowed venue deviation, so each has its own id.
pub fn burst_specs(first: &SettlementSpec, count: usize, per_second: usize) -> Vec<SettlementSpec> {
    (0..count)
        .map(|k| SettlementSpec {
            index: first.index,
            maturity: first.maturity + (k / per_second.max(1)) as u64,
            params: MethodologyParams {
                max_venue_deviation_bp: first.params.max_venue_deviation_bp + (k % per_second.max(1)) as u32,
                ..first.params
            },
        })
        .collect()
}

/// Runs one committee of `n` through `count` settlements, under `args`' challenge window,
/// round and publishing turn; with `restart` (the burst section), the members run at most
/// `--max-running-decisions` decisions at once, node-0's waves are read as they go, and node-0
/// is restarted at the end.
pub fn run(
    runtime: &tokio::runtime::Runtime,
    args: &crate::Args,
    n: usize,
    count: usize,
    per_second: usize,
    restart: bool,
) -> anyhow::Result<LatencyRow> {
    let (clock, first) = short_maturity();
    // Larger committees take longer to start: the first settlement matures after they are up.
    let lead = 10 + n as u64 / 2;
    let first = SettlementSpec { maturity: first.maturity + lead, ..first };
    let specs = burst_specs(&first, count, per_second);
    let scheduled: Vec<Scheduled> =
        specs.iter().map(|s| Scheduled { maturity: s.maturity, params: s.params }).collect();
    let protocol = ProtocolParams {
        challenge_period_secs: args.latency_challenge_secs,
        round_timeout_secs: args.round_timeout_secs,
        publish_timeout_secs: args.publish_timeout_secs,
        ..fixd_testkit::harness::short_protocol()
    };
    let q = 2 * n / 3 + 1;
    eprintln!("latency: n = {n} (q = {q}), {count} settlements, the first maturing in {} s", lead + 20);
    let mut devnet = Devnet::prepare_on_chain(n, clock, &scheduled, &protocol);
    if restart {
        devnet.set_observer("max_running_decisions", &args.max_running_decisions.to_string());
    }
    for i in 0..n {
        devnet.start_node_with_env(i, &[("RUST_LOG", "warn")]);
    }
    let stamps: Arc<Mutex<Stamps>> = Arc::default();
    let _streams: Vec<_> =
        (0..n).map(|i| runtime.spawn(follow(devnet.node(i).api.clone(), i, stamps.clone()))).collect();

    let ids: Vec<B256> = specs.iter().map(SettlementSpec::id).collect();
    let last_maturity = specs.last().map_or(first.maturity, |s| s.maturity);
    let deadline = Instant::now()
        + Duration::from_secs(
            last_maturity.saturating_sub(fixd_testkit::harness::now())
                + 240
                + 10 * n as u64
                + count as u64 / 2,
        );
    let mut reported = 0;
    let mut all_certified = None;
    let mut last_count = Instant::now();
    let (mut most_running, mut most_waiting) = (0, 0);
    loop {
        if restart {
            let api = &devnet.node(0).api;
            // A node too busy to answer in time is read at the next turn.
            if let (Ok(running), Ok(waiting)) = (
                metric(runtime, api, "fixd_decisions_running "),
                metric(runtime, api, "fixd_decisions_waiting "),
            ) {
                most_running = most_running.max(running);
                most_waiting = most_waiting.max(waiting);
            }
        }
        let done = {
            let stamps = stamps.lock().expect("stamps");
            if let Some(bad) = &stamps.failure {
                anyhow::bail!("n = {n}: {bad}");
            }
            let everywhere = |kind| {
                ids.iter().filter(|id| (0..n).all(|i| stamps.at.contains_key(&(**id, i, kind)))).count()
            };
            if all_certified.is_none() && everywhere("certified") == ids.len() {
                all_certified = Some(since(first.maturity));
                eprintln!("latency: n = {n}: all {count} certified on every node");
            }
            everywhere("published")
        };
        // Under a burst a slow event stream can lag behind and lose events; every node's own
        // count of published settlements then ends the wait.
        if done == ids.len()
            || (last_count.elapsed() >= COUNT_EVERY && published_everywhere(runtime, &devnet, n, count))
        {
            break;
        }
        if last_count.elapsed() >= COUNT_EVERY {
            last_count = Instant::now();
        }
        if done >= reported + count.div_ceil(4) {
            eprintln!("latency: n = {n}: {done} of {count} published on every node");
            reported = done;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "n = {n}: {done} of {count} settlements published on every node before the deadline; node logs: \
             RUST_LOG=info in bench-logs"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let total = since(first.maturity);
    let all_certified = all_certified.unwrap_or(total);
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    let (mut peak_rss_mib, mut store_mib) = (0.0_f64, 0.0_f64);
    for i in 0..n {
        peak_rss_mib = peak_rss_mib.max(mib(peak_rss(devnet.node(i).proc.child.id())?));
        store_mib = store_mib.max(mib(crate::restart::dir_size(&devnet.data_dir(i))));
    }
    let transactions = check_agreement(&devnet, n, &ids)?;
    let mut windows: Vec<(u64, u64)> = specs.iter().map(|s| (s.window_start(), s.maturity)).collect();
    windows.sort_unstable();
    windows.dedup();
    let venue_requests = venue_requests(runtime, &devnet.node(0).api)?;
    let stamps = stamps.lock().expect("stamps");
    let mut row = LatencyRow {
        n,
        settlements: count,
        to_certificate: Vec::new(),
        to_publication: Vec::new(),
        final_to_publication: Vec::new(),
        total,
        windows: windows.len(),
        venue_requests,
        all_certified,
        peak_rss_mib,
        store_mib,
        transactions,
        restart: None,
        most_running,
        most_waiting,
    };
    let mut unstamped = 0;
    for id in &ids {
        let times = |kind: &str| -> Vec<Instant> {
            let mut t: Vec<Instant> =
                (0..n).filter_map(|i| stamps.at.get(&(*id, i, kind)).copied()).collect();
            t.sort();
            t
        };
        let observed = times("observed");
        let (Some(&held), Some(&certified), Some(&final_), Some(&published)) = (
            observed.get(q - 1),
            times("certified").first(),
            times("final").first(),
            times("published").first(),
        ) else {
            unstamped += 1;
            continue;
        };
        for i in 0..n {
            if let Some(certified) = stamps.at.get(&(*id, i, "certified")) {
                row.to_certificate.push(millis(certified.saturating_duration_since(held)));
            }
        }
        row.to_publication.push(millis(published.saturating_duration_since(certified)));
        row.final_to_publication.push(millis(published.saturating_duration_since(final_)));
    }
    if unstamped > 0 {
        eprintln!(
            "latency: n = {n}: {unstamped} of {count} settlements lack an event of some phase (an event stream \
             lagged and lost it); their latencies are left out, their outcome was checked on every node"
        );
    }
    for v in [&mut row.to_certificate, &mut row.to_publication, &mut row.final_to_publication] {
        v.sort_by(f64::total_cmp);
    }
    drop(stamps);
    if restart {
        row.restart = Some(restart_settled(runtime, &mut devnet, n, &ids)?);
    }
    Ok(row)
}

/// Once node-0 holds no driver and parks no settlement (every publication 64 blocks deep:
/// until then a published one is parked, see `fixd_node::settlements`), stops it and starts it
/// again on its data directory: how long until it serves and follows the network, its memory
/// and the drivers it built in its first 10 s, and whether it still shows every settlement
/// published.
fn restart_settled(
    runtime: &tokio::runtime::Runtime,
    devnet: &mut Devnet,
    n: usize,
    ids: &[B256],
) -> anyhow::Result<Restarted> {
    // Every publication as deep as it is read for: node-0 holds no driver, parks nothing.
    let deadline = Instant::now() + Duration::from_secs(300);
    let api = &devnet.node(0).api;
    while metric(runtime, api, "fixd_drivers ")? + metric(runtime, api, "fixd_settlements_parked ")? > 0 {
        anyhow::ensure!(Instant::now() < deadline, "node-0 still holds drivers 5 minutes after publishing");
        std::thread::sleep(Duration::from_secs(1));
    }
    let (serving, following) = crate::restart::restart_node_0(devnet, n);
    let node = devnet.node(0);
    // Its first ticks pass over every stored settlement; the memory after them.
    std::thread::sleep(Duration::from_secs(10));
    let rss_mib = peak_rss(node.proc.child.id())? as f64 / (1024.0 * 1024.0);
    let drivers = metric(runtime, &node.api, "fixd_drivers_built_total ")?;
    for id in ids {
        let (code, view) = node.get(&format!("/v1/settlements/{id}"));
        anyhow::ensure!(
            code == 200 && view["status"] == "published",
            "node-0 after its restart: settlement {id} is {} (HTTP {code})",
            view["status"]
        );
    }
    Ok(Restarted { serving, following, rss_mib, drivers })
}

/// Wall time since a unix second.
fn since(unix: u64) -> Duration {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    now.saturating_sub(Duration::from_secs(unix))
}

/// A process's peak resident memory, bytes (`VmHWM` in `/proc/<pid>/status`).
fn peak_rss(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .context("VmHWM in /proc/<pid>/status")?;
    Ok(kib * 1024)
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Every node shows every settlement published with the same value, and the contract holds it,
/// published once. The number of distinct transactions that published them.
fn check_agreement(devnet: &Devnet, n: usize, ids: &[B256]) -> anyhow::Result<usize> {
    let chain = devnet.chain.as_ref().context("the devnet has a chain")?;
    let mut transactions = std::collections::BTreeSet::new();
    for id in ids {
        let (on_chain, _, status) = chain.get_settlement(*id);
        anyhow::ensure!(status == 1, "settlement {id} is not published on-chain");
        let publications = chain.publications(*id);
        anyhow::ensure!(publications.len() == 1, "settlement {id} published {} times", publications.len());
        transactions.extend(publications);
        for i in 0..n {
            let (code, view) = devnet.node(i).get(&format!("/v1/settlements/{id}"));
            anyhow::ensure!(code == 200, "node-{i}: settlement {id}: HTTP {code}");
            let value = view["value"].as_str().context("a certified value")?;
            let value = Wad::parse(value).map_err(|e| anyhow::anyhow!("node-{i}: value {value}: {e}"))?;
            anyhow::ensure!(
                view["status"] == "published" && U256::from(value.raw()) == on_chain,
                "node-{i}: settlement {id} is {} with {value}, the contract holds {on_chain}",
                view["status"]
            );
        }
    }
    Ok(transactions.len())
}

/// How often the wait reads every node's count of published settlements.
const COUNT_EVERY: Duration = Duration::from_secs(5);

/// Whether every node's `/metrics` counts `count` settlements published (or more).
fn published_everywhere(runtime: &tokio::runtime::Runtime, devnet: &Devnet, n: usize, count: usize) -> bool {
    (0..n).all(|i| {
        let url = format!("{}/metrics", devnet.node(i).api);
        let text = runtime.block_on(async { reqwest::get(&url).await?.error_for_status()?.text().await });
        text.ok()
            .and_then(|text| {
                text.lines()
                    .find(|l| l.starts_with("fixd_settlements{status=\"published\"}"))
                    .and_then(|l| l.split_whitespace().last()?.parse::<usize>().ok())
            })
            .is_some_and(|published| published >= count)
    })
}

/// The most requests the node sent to one venue, from its `/metrics`.
fn venue_requests(runtime: &tokio::runtime::Runtime, api: &str) -> anyhow::Result<u64> {
    metric(runtime, api, "fixd_venue_requests_total{")
}

/// The largest value among the node's `/metrics` lines that start with `prefix`.
fn metric(runtime: &tokio::runtime::Runtime, api: &str, prefix: &str) -> anyhow::Result<u64> {
    let url = format!("{api}/metrics");
    let text = runtime.block_on(async { reqwest::get(&url).await?.error_for_status()?.text().await })?;
    let most = text
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.split_whitespace().last()?.parse::<u64>().ok())
        .max();
    most.with_context(|| format!("{prefix} in /metrics"))
}

/// Event stamps: `(settlement, node, kind)` → first arrival.
#[derive(Default)]
struct Stamps {
    at: HashMap<(B256, usize, &'static str), Instant>,
    /// A `failed` or `conflict` event, or a stream that broke.
    failure: Option<String>,
}

/// Follows node `i`'s event stream (reconnecting until the node answers), stamping each event.
async fn follow(api: String, i: usize, stamps: Arc<Mutex<Stamps>>) {
    let client = reqwest::Client::new();
    let mut response = loop {
        match client.get(format!("{api}/v1/events")).send().await {
            Ok(r) if r.status().is_success() => break r,
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    let mut buffer = String::new();
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) | Err(_) => {
                stamps
                    .lock()
                    .expect("stamps")
                    .failure
                    .get_or_insert(format!("node-{i}'s event stream ended"));
                return;
            }
        };
        let now = Instant::now();
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            stamp(&event, i, now, &stamps);
        }
    }
}

/// Records one server-sent event: `event: <kind>` and `data: <json>` lines.
fn stamp(event: &str, i: usize, now: Instant, stamps: &Mutex<Stamps>) {
    let field = |name: &str| event.lines().find_map(|l| l.strip_prefix(name)).map(str::trim);
    let Some(kind) = field("event:") else { return };
    let Some(data) = field("data:").and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok()) else {
        return;
    };
    let Some(id) = data["settlement_id"].as_str().and_then(|s| s.parse::<B256>().ok()) else { return };
    let mut stamps = stamps.lock().expect("stamps");
    if matches!(kind, "failed" | "conflict") {
        stamps.failure.get_or_insert(format!("node-{i}: settlement {id}: {kind} {data}"));
        return;
    }
    if let Some(kind) = KINDS.iter().find(|k| **k == kind) {
        stamps.at.entry((id, i, kind)).or_insert(now);
    }
}
