//! `fixd-bench`: the system harness. It starts real `fixd` processes (the release build beside
//! this binary, or `FIXD_BIN`), anvil and the replay venues, measures them and prints a table.
//! `scripts/bench.sh` builds both in release and runs it; `BENCHMARKS.md` holds a run's figures.
//!
//! Every figure is a ratio against a baseline measured in the same run, or an absolute figure
//! printed with the machine it ran on.
//!
//! - **api**: requests per second and latency of `GET /v1/settlements/{id}` (scheduled,
//!   certified and published) and `GET /v1/status` on one node of a four-member committee, at
//!   `--connections` keep-alive connections, against a trivial axum handler serving a body of
//!   the same bytes (`fixd-bench serve`, a process of its own) under the same load.
//! - **latency**: at each committee size of `--nodes`, `--settlements` settlements maturing
//!   `--per-second` a second, from q observations held to the certificate on every node, and
//!   from the certificate to a confirmed publication (see `latency.rs`).
//! - **burst**: `--burst` settlements maturing in one second on four members: until all are
//!   certified and published on every node, peak RSS and store size; then node-0 restarted on
//!   its data directory, every settlement settled in it: serving, following, memory.
//! - **restart**: `--stored` settlements on a member, the first page of its list under load,
//!   and the time from spawning it again to serving and to following the network
//!   (`restart.rs`).

// Figures for people to read: rates, percentiles and ratios are floating point.
#![allow(clippy::float_arithmetic)]

mod latency;
mod restart;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};
use fixd_testkit::harness::{Devnet, Scheduled, short_maturity};
use fixd_testkit::process::Proc;

#[derive(Debug, Parser)]
#[command(name = "fixd-bench", about = "fixd's system benchmark harness: real processes, a table of figures")]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Seconds of load per endpoint and as many of its baseline, in turns of a second.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrent keep-alive connections of the load generator.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// The challenge window of the API section's settlement, seconds: long enough to load its
    /// certified view, the scheduled one and the status before it closes.
    #[arg(long, default_value_t = 40)]
    challenge_secs: u64,
    /// The sections to run.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Section::Api, Section::Latency, Section::Burst, Section::Restart])]
    sections: Vec<Section>,
    /// Committee sizes of the latency section.
    #[arg(long, value_delimiter = ',', default_values_t = [4, 7, 16, 31])]
    nodes: Vec<usize>,
    /// Settlements per committee size in the latency section.
    #[arg(long, default_value_t = 20)]
    settlements: usize,
    /// Settlements maturing in each second of the latency section.
    #[arg(long, default_value_t = 1)]
    per_second: usize,
    /// The challenge window of the latency and burst sections' settlements, seconds.
    #[arg(long, default_value_t = 10)]
    latency_challenge_secs: u64,
    /// The first round's length (the genesis `round_timeout_secs`) in the latency and burst
    /// sections, seconds: 8 by default, the short protocol of the tests; the genesis default,
    /// which production runs, is 60.
    #[arg(long, default_value_t = fixd_testkit::harness::short_protocol().round_timeout_secs)]
    round_timeout_secs: u64,
    /// A member's publishing turn (the genesis `publish_timeout_secs`) in the latency and burst
    /// sections, seconds: 15 by default, the short protocol of the tests; the genesis default is
    /// 120. A batch of reports waits half a turn for its co-signers.
    #[arg(long, default_value_t = fixd_testkit::harness::short_protocol().publish_timeout_secs)]
    publish_timeout_secs: u64,
    /// Expiry bursts: settlements maturing in the same second on four members, one run each;
    /// each ends with node-0 restarted on its data directory, every settlement settled in it.
    #[arg(long, value_delimiter = ',', default_values_t = [1000])]
    burst: Vec<usize>,
    /// The members' `observer.max_running_decisions` in the burst section: how many decisions
    /// run at once, the rest starting in waves as these decide.
    #[arg(long, default_value_t = fixd_node::settlements::MAX_RUNNING_DECISIONS)]
    max_running_decisions: usize,
    /// Settlements node-0 holds in the restart section (at most its api.max_scheduled, 10,000).
    #[arg(long, default_value_t = 10_000)]
    stored: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Section {
    Api,
    Latency,
    Burst,
    Restart,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The API baseline: serve the bytes of FILE as JSON on every path, on a free loopback port
    /// (printed as `listening on http://…`), until killed.
    Serve {
        #[arg(long)]
        body: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // reqwest needs a TLS provider even for plain http; an error means one is installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match args.command {
        Some(Command::Serve { body }) => runtime.block_on(serve(body)),
        None => {
            println!("# fixd-bench on {}", machine());
            if args.sections.contains(&Section::Api) {
                let rows = api(&runtime, &args)?;
                print_api(&rows, args.connections);
            }
            if args.sections.contains(&Section::Latency) {
                let mut rows = Vec::new();
                for &n in &args.nodes {
                    anyhow::ensure!((4..=100).contains(&n), "--nodes takes committee sizes from 4 to 100");
                    rows.push(latency::run(&runtime, &args, n, args.settlements, args.per_second, false)?);
                }
                print_latency(&rows, args.latency_challenge_secs);
            }
            if args.sections.contains(&Section::Burst) {
                let mut rows = Vec::new();
                for &count in &args.burst {
                    rows.push(latency::run(&runtime, &args, 4, count, count, true)?);
                }
                print_burst(&rows);
            }
            if args.sections.contains(&Section::Restart) {
                let row = restart::run(&runtime, &args)?;
                print_restart(&row, args.connections);
            }
            Ok(())
        }
    }
}

/// The trivial handler: the same bytes on every path.
async fn serve(body: PathBuf) -> anyhow::Result<()> {
    let bytes =
        axum::body::Bytes::from(std::fs::read(&body).with_context(|| format!("read {}", body.display()))?);
    let app = axum::Router::new().fallback(move || {
        let bytes = bytes.clone();
        async move { ([(axum::http::header::CONTENT_TYPE, "application/json")], bytes) }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

/// One endpoint's figures against its baseline's.
struct ApiRow {
    what: String,
    bytes: usize,
    fixd: Load,
    trivial: Load,
}

/// What a load run measured.
#[derive(Default)]
struct Load {
    requests: usize,
    errors: usize,
    elapsed: Duration,
    /// Sorted latencies, microseconds.
    latencies: Vec<u32>,
}

impl Load {
    /// Adds another run's figures (its latencies merged in order).
    fn add(&mut self, other: Load) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.elapsed += other.elapsed;
        self.latencies.extend(other.latencies);
        self.latencies.sort_unstable();
    }

    fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        let Some(last) = self.latencies.len().checked_sub(1) else { return f64::NAN };
        let at = ((last as f64) * p).round() as usize;
        f64::from(self.latencies[at]) / 1000.0
    }
}

fn api(runtime: &tokio::runtime::Runtime, args: &Args) -> anyhow::Result<Vec<ApiRow>> {
    let (clock, spec) = short_maturity();
    let later = Scheduled { maturity: spec.maturity + 86_400, params: spec.params };
    let scheduled_id = fixd_proto::types::settlement::SettlementSpec {
        index: spec.index,
        maturity: later.maturity,
        params: later.params,
    }
    .id();
    let protocol = fixd_proto::types::genesis::ProtocolParams {
        challenge_period_secs: args.challenge_secs,
        ..fixd_testkit::harness::short_protocol()
    };
    eprintln!("api: starting four members on anvil; the settlement matures in about 20 s");
    let settlements = [Scheduled { maturity: spec.maturity, params: spec.params }, later];
    let mut devnet = Devnet::prepare_on_chain(4, clock, &settlements, &protocol);
    for i in 0..4 {
        devnet.start_node_with_env(i, &[("RUST_LOG", "info")]);
    }
    let api = devnet.node(0).api.clone();
    let id = spec.id();
    let settlement = format!("{api}/v1/settlements/{id}");
    let status_of = |v: &serde_json::Value| v["status"].as_str().unwrap_or_default().to_owned();
    let mut rows = Vec::new();
    devnet.node(0).wait_for(&format!("/v1/settlements/{id}"), Duration::from_secs(120), |v| {
        status_of(v) == "certified"
    });
    rows.push(measure(runtime, args, "settlement, certified", &settlement)?);
    rows.push(measure(
        runtime,
        args,
        "settlement, scheduled",
        &format!("{api}/v1/settlements/{scheduled_id}"),
    )?);
    rows.push(measure(runtime, args, "status", &format!("{api}/v1/status"))?);
    devnet.node(0).wait_for(&format!("/v1/settlements/{id}"), Duration::from_secs(180), |v| {
        status_of(v) == "published"
    });
    rows.push(measure(runtime, args, "settlement, published", &settlement)?);
    Ok(rows)
}

/// Loads `url` and the trivial handler serving its bytes in turns of a second, `args.seconds`
/// each, so that both see the machine alike: on this shared VM the baseline alone swung from
/// 25,000 to 54,000 requests/s between two five-second runs, which moved the ratio more than
/// fixd did.
fn measure(runtime: &tokio::runtime::Runtime, args: &Args, what: &str, url: &str) -> anyhow::Result<ApiRow> {
    let body = runtime.block_on(async { reqwest::get(url).await?.error_for_status()?.bytes().await })?;
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(file.path(), &body)?;
    let mut cmd = std::process::Command::new(std::env::current_exe()?);
    cmd.arg("serve").arg("--body").arg(file.path());
    let baseline = Proc::piped("trivial", cmd)?;
    let line = baseline.wait_for_line("listening on", Duration::from_secs(10));
    let base_url = line.split_whitespace().last().context("the baseline's address")?.to_owned();
    eprintln!("api: {what} ({} bytes)", body.len());
    let (mut fixd, mut trivial) = (Load::default(), Load::default());
    for _ in 0..args.seconds.max(1) {
        fixd.add(runtime.block_on(load(url, args.connections, Duration::from_secs(1))));
        trivial.add(runtime.block_on(load(
            &format!("{base_url}/same"),
            args.connections,
            Duration::from_secs(1),
        )));
    }
    anyhow::ensure!(fixd.errors == 0, "{what}: {} requests to fixd failed", fixd.errors);
    Ok(ApiRow { what: what.to_owned(), bytes: body.len(), fixd, trivial })
}

/// `connections` tasks, each with its own keep-alive connection, requesting `url` back to back
/// for `duration`.
async fn load(url: &str, connections: usize, duration: Duration) -> Load {
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let url = url.to_owned();
            tokio::spawn(async move {
                let client = reqwest::Client::builder().pool_max_idle_per_host(1).build().expect("a client");
                let (mut latencies, mut errors) = (Vec::new(), 0_usize);
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    let ok = match client.get(&url).send().await {
                        Ok(response) => response.status().is_success() && response.bytes().await.is_ok(),
                        Err(_) => false,
                    };
                    if ok {
                        latencies.push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX));
                    } else {
                        errors += 1;
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (l, e) = task.await.expect("a load task");
        latencies.extend(l);
        errors += e;
    }
    let elapsed = start.elapsed();
    latencies.sort_unstable();
    Load { requests: latencies.len(), errors, elapsed, latencies }
}

fn print_api(rows: &[ApiRow], connections: usize) {
    println!();
    println!("## API, {connections} connections");
    println!();
    println!(
        "| endpoint | body | fixd req/s | fixd p50 | fixd p99 | trivial req/s | trivial p99 | fixd / trivial |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        println!(
            "| {} | {} B | {:.0} | {:.2} ms | {:.2} ms | {:.0} | {:.2} ms | {:.1}% |",
            row.what,
            row.bytes,
            row.fixd.per_second(),
            row.fixd.percentile_ms(0.5),
            row.fixd.percentile_ms(0.99),
            row.trivial.per_second(),
            row.trivial.percentile_ms(0.99),
            100.0 * row.fixd.per_second() / row.trivial.per_second(),
        );
    }
}

fn print_latency(rows: &[latency::LatencyRow], challenge_secs: u64) {
    println!();
    println!("## Latency ({challenge_secs} s challenge windows, 2 confirmations of 1 s blocks)");
    println!();
    println!(
        "| n | settlements | q observations → certificate p50 | p99 | certificate → published p50 | p99 | \
         final → published p50 | p99 | first maturity → all published | windows | requests to one venue | \
         publication transactions |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let pct = |v: &[f64], p: f64| {
        let Some(last) = v.len().checked_sub(1) else { return f64::NAN };
        v[((last as f64) * p).round() as usize]
    };
    for row in rows {
        println!(
            "| {} | {} | {:.0} ms | {:.0} ms | {:.2} s | {:.2} s | {:.2} s | {:.2} s | {:.1} s | {} | {} | {} |",
            row.n,
            row.settlements,
            pct(&row.to_certificate, 0.5),
            pct(&row.to_certificate, 0.99),
            pct(&row.to_publication, 0.5) / 1000.0,
            pct(&row.to_publication, 0.99) / 1000.0,
            pct(&row.final_to_publication, 0.5) / 1000.0,
            pct(&row.final_to_publication, 0.99) / 1000.0,
            row.total.as_secs_f64(),
            row.windows,
            row.venue_requests,
            row.transactions,
        );
    }
}

fn print_burst(rows: &[latency::LatencyRow]) {
    println!();
    println!("## Expiry burst: settlements maturing in one second, four members");
    println!();
    println!(
        "| settlements | all certified on every node | all published on every node | requests to one venue | \
         publication transactions | peak RSS of a node | store of a node | decisions running at once, \
         most | waiting to start, most |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        println!(
            "| {} | {:.1} s | {:.1} s | {} | {} | {:.0} MiB | {:.0} MiB | {} | {} |",
            row.settlements,
            row.all_certified.as_secs_f64(),
            row.total.as_secs_f64(),
            row.venue_requests,
            row.transactions,
            row.peak_rss_mib,
            row.store_mib,
            row.most_running,
            row.most_waiting,
        );
    }
    println!();
    println!("Times are from the maturity; observations are made 3 s after it (the grace period).");
    println!(
        "Decisions (first value and final report) run at most --max-running-decisions at once on \
         each member; the rest wait and start in waves (node-0's gauges, read every 0.2 s)."
    );
    println!();
    println!(
        "Then node-0 is stopped and started again on its data directory, every settlement settled in it:"
    );
    println!();
    println!(
        "| settlements stored | serving | following the network | peak RSS in its first 10 s | drivers built from the store |"
    );
    println!("|---:|---:|---:|---:|---:|");
    for row in rows {
        if let Some(r) = &row.restart {
            println!(
                "| {} | {:.0} ms | {:.0} ms | {:.0} MiB | {} |",
                row.settlements,
                r.serving.as_secs_f64() * 1e3,
                r.following.as_secs_f64() * 1e3,
                r.rss_mib,
                r.drivers
            );
        }
    }
}

fn print_restart(row: &restart::RestartRow, connections: usize) {
    println!();
    println!("## Restart with {} settlements stored", row.stored);
    println!();
    println!("| what | figure |");
    println!("|---|---:|");
    println!(
        "| scheduling them through the admin API, 16 at a time | {:.1} s |",
        row.scheduling.as_secs_f64()
    );
    let page = &row.first_page;
    println!(
        "| first page of `GET /v1/settlements` ({} B), {connections} connections | {:.0} req/s, p99 {:.2} ms; trivial handler {:.0} req/s: {:.1}% |",
        page.bytes,
        page.fixd.per_second(),
        page.fixd.percentile_ms(0.99),
        page.trivial.per_second(),
        100.0 * page.fixd.per_second() / page.trivial.per_second(),
    );
    println!("| spawn → API serving | {:.0} ms |", row.serving.as_secs_f64() * 1000.0);
    println!(
        "| spawn → following the network (3 peers connected) | {:.0} ms |",
        row.following.as_secs_f64() * 1000.0
    );
    println!("| store | {:.1} MiB |", row.store_mib);
}

/// The CPU model and core count, for the figures that are absolute.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned()))
        .unwrap_or_else(|| "an unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    format!("{model}, {cores} cores")
}
