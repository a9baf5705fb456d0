//! The restart section: a member of a four-member committee holding `--stored` settlements
//! (scheduled through its admin API, maturing from tomorrow on), the first page of its
//! settlement list under load against the trivial handler, then a restart on the same data
//! directory: the time from spawning the process to its API answering (serving), and to its
//! status naming its three peers (following the network).

use std::time::{Duration, Instant};

use anyhow::Context;
use fixd_proto::types::genesis::ProtocolParams;
use fixd_testkit::harness::{Devnet, short_maturity, short_params};

/// What the section measured.
pub struct RestartRow {
    pub stored: usize,
    /// Scheduling them, through the admin API.
    pub scheduling: Duration,
    /// The first page of `GET /v1/settlements` under load, against the trivial handler.
    pub first_page: crate::ApiRow,
    /// Spawn → API answering, and → three peers connected.
    pub serving: Duration,
    pub following: Duration,
    /// The restarted node's data directory, MiB.
    pub store_mib: f64,
}

pub fn run(runtime: &tokio::runtime::Runtime, args: &crate::Args) -> anyhow::Result<RestartRow> {
    let (clock, _) = short_maturity();
    let mut devnet = Devnet::prepare(4, clock, &[], &ProtocolParams::default());
    for i in 0..4 {
        devnet.start_node_with_env(i, &[("RUST_LOG", "warn")]);
    }
    let api = devnet.node(0).api.clone();
    let stored = args.stored;
    eprintln!("restart: scheduling {stored} settlements on node-0");
    let started = Instant::now();
    runtime.block_on(schedule(&api, stored))?;
    let scheduling = started.elapsed();
    let first_page =
        crate::measure(runtime, args, "settlement list, first page", &format!("{api}/v1/settlements"))?;

    let (serving, following) = restart_node_0(&mut devnet, 4);
    let node = devnet.node(0);
    let (code, list) = node.get(&format!("/v1/settlements?limit={}", fixd_node::api::page::MAX_LIMIT));
    anyhow::ensure!(
        code == 200 && list["settlements"].as_array().is_some_and(|s| !s.is_empty()),
        "the restarted node lists no settlement: HTTP {code}"
    );
    let store_mib = dir_size(&devnet.data_dir(0)) as f64 / (1024.0 * 1024.0);
    Ok(RestartRow { stored, scheduling, first_page, serving, following, store_mib })
}

/// Stops node-0 of a committee of `n` and starts it again on its data directory: spawn → its
/// API answering (serving), and → its status naming its `n − 1` peers (following).
pub fn restart_node_0(devnet: &mut Devnet, n: usize) -> (Duration, Duration) {
    devnet.stop_node(0);
    eprintln!("restart: node-0 stopped; starting it again on its data directory");
    let spawned = Instant::now();
    devnet.start_node_with_env(0, &[("RUST_LOG", "warn")]);
    let serving = spawned.elapsed();
    devnet.node(0).wait_for("/v1/status", Duration::from_secs(120), |status| {
        status["peers"].as_array().is_some_and(|peers| peers.len() == n - 1)
    });
    (serving, spawned.elapsed())
}

/// The bytes of every file under `dir`.
pub(crate) fn dir_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir).into_iter().flatten().flatten().fold(0, |sum, entry| match entry.metadata() {
        Ok(m) if m.is_dir() => sum + dir_size(&entry.path()),
        Ok(m) => sum + m.len(),
        Err(_) => sum,
    })
}

/// Schedules `count` settlements on the node at `api`, maturing a second apart from tomorrow,
/// sixteen requests at a time.
async fn schedule(api: &str, count: usize) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let tomorrow = fixd_testkit::harness::now() + 86_400;
    let url = format!("{api}/v1/settlements");
    let mut next = 0usize;
    while next < count {
        let batch: Vec<_> = (next..count.min(next + 16))
            .map(|k| {
                let body = serde_json::json!({ "maturity": tomorrow + k as u64, "params": short_params(3) });
                let request = client.post(&url).json(&body).send();
                async move {
                    let response = request.await?;
                    let status = response.status();
                    let text = response.text().await?;
                    anyhow::ensure!(
                        status.as_u16() == 201,
                        "scheduling settlement {k}: HTTP {status}: {text}"
                    );
                    Ok(())
                }
            })
            .collect();
        next += batch.len();
        for result in futures::future::join_all(batch).await {
            result.context("scheduling through the admin API")?;
        }
    }
    Ok(())
}
