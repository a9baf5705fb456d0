//! A hostile venue against a real `fixd` node (issue 15, acceptance 5): Kraken answers every
//! request with a 32 MiB page of tiny trades (the replay venues' `flood` fault). The node's
//! memory stays within the written bound per fetch ([`fixd_node::venues::FETCH_MEMORY_BOUND`]),
//! its observation is made from the other three venues, and its settlement view names Kraken
//! as left out, with the reason.
//!
//! The replay clock is set so that the settlement's window has already played when the node
//! starts, and its maturity is a few seconds away: the test takes seconds, not the window.

use std::time::{Duration, Instant};

use fixd_node::venues::{FETCH_MEMORY_BOUND, MAX_BODY_BYTES};
use fixd_proto::methodology::compute;
use fixd_proto::replay::{PROFILES, ReplayClock, fixture_bars, replay};
use fixd_proto::signing::Signed;
use fixd_proto::types::observation::{NodeValue, Observation};
use fixd_proto::types::settlement::{Index, SettlementSpec};
use fixd_proto::types::venue::{Trade, Venue};

use crate::harness::{
    Node, Replay, Scheduled, build_genesis, init_member, now, short_params, with_committee, write_config,
};

/// 2025-06-12 15:00:00 UTC.
const REPLAY_START: u64 = 1_749_740_400;

/// A kB figure of `/proc/<pid>/status` (`VmRSS`, `VmHWM`), in bytes.
fn proc_status_bytes(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field}"));
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

/// Bytes as MiB with one decimal, in integers (the workspace forbids float arithmetic).
fn mib(bytes: u64) -> String {
    format!("{}.{}", bytes >> 20, ((bytes & ((1 << 20) - 1)) * 10) >> 20)
}

/// What the venues serve on the wall clock (Bitstamp's times floored to the second).
fn wall_trades(clock: &ReplayClock) -> Vec<Trade> {
    replay(&fixture_bars(), &PROFILES)
        .iter()
        .filter_map(|t| clock.to_wall(t))
        .map(|mut t| {
            if t.venue == Venue::Bitstamp {
                t.time_ms -= t.time_ms % 1000;
            }
            t
        })
        .collect()
}

#[test]
fn a_venue_flooding_tiny_trades_is_left_out_within_the_memory_bound() {
    let started = Instant::now();
    let root = tempfile::tempdir().unwrap();
    let member = init_member(root.path(), "node-0");
    let genesis = build_genesis(root.path(), &with_committee(root.path(), &member));

    // Replay 15:00 played 55 s ago at one market minute per second: the window (M − 60, M]
    // with M 5 s from now has all but its last seconds out already.
    let wall_start = now() - 55;
    let clock = ReplayClock { replay_start: REPLAY_START, wall_start, speed: 60 };
    let maturity = wall_start + 60;
    // A page just under the node's body cap, so that it is read whole and refused by its rows.
    let flood = format!("kraken=flood:{}", MAX_BODY_BYTES - 64);
    let replay = Replay::start(clock, &[&flood]);
    let spec = SettlementSpec { index: Index::EthUsd, maturity, params: short_params(3) };
    let config = write_config(&member, &genesis, &replay.url, &[Scheduled { maturity, params: spec.params }]);

    let node = Node::start("node-0", &config);
    let pid = node.proc.child.id();
    let resting_rss = proc_status_bytes(pid, "VmRSS");
    let resting_hwm = proc_status_bytes(pid, "VmHWM");

    let path = format!("/v1/settlements/{}", spec.id());
    let view = node.wait_for(&path, Duration::from_secs(40), |v| !v["observation"].is_null());
    let peak = proc_status_bytes(pid, "VmHWM");
    let rss = proc_status_bytes(pid, "VmRSS");
    let bound = resting_hwm + FETCH_MEMORY_BOUND as u64;
    println!(
        "node RSS at rest {} MiB (peak {} MiB); after the flooded fetch: peak {} MiB, now {} MiB; \
         bound: resting peak + {} MiB = {} MiB; the peak grew by {} MiB",
        mib(resting_rss),
        mib(resting_hwm),
        mib(peak),
        mib(rss),
        mib(FETCH_MEMORY_BOUND as u64),
        mib(bound),
        mib(peak - resting_hwm),
    );
    assert!(peak <= bound, "peak RSS {} MiB is over the bound {} MiB", mib(peak), mib(bound));

    // The observation is made from the other venues: exactly what the methodology gives on them.
    let observation: Signed<Observation> = serde_json::from_value(view["observation"].clone()).unwrap();
    let others: Vec<Trade> = wall_trades(&clock).into_iter().filter(|t| t.venue != Venue::Kraken).collect();
    assert_eq!(observation.payload.computation, compute(&spec, &others).unwrap());
    assert!(matches!(observation.payload.computation.value, NodeValue::Value(_)), "{view}");
    let venues: Vec<Venue> = observation.payload.computation.venues.iter().map(|v| v.venue).collect();
    assert_eq!(venues, [Venue::Coinbase, Venue::Bitstamp, Venue::Gemini]);

    // The view names Kraken as left out, with why.
    let left_out = view["left_out"].as_array().unwrap_or_else(|| panic!("no left_out: {view}"));
    assert_eq!(left_out.len(), 1, "{left_out:?}");
    assert_eq!(left_out[0]["venue"], "kraken");
    assert_eq!(left_out[0]["reason"], "malformed");
    let detail = left_out[0]["detail"].as_str().unwrap();
    assert!(detail.contains("more than 100000 trades"), "{detail}");
    println!("left out: {}", left_out[0]);

    // And the node serves on.
    assert_eq!(node.get("/v1/health").0, 200);
    println!("done in {:?}", started.elapsed());
}

/// Every other way a venue is left out, each named with its reason in the view: Kraken answers
/// HTTP 500, Gemini is slower than the node's timeout, and Bitstamp stops publishing a third of
/// the way into the window (so it trades in 4 of 12 partitions and the methodology drops it).
/// The node observes from Coinbase alone (`min_venues` 1).
#[test]
fn every_venue_left_out_is_named_with_its_reason() {
    let root = tempfile::tempdir().unwrap();
    let member = init_member(root.path(), "node-0");
    let genesis = build_genesis(root.path(), &with_committee(root.path(), &member));
    let wall_start = now() - 55;
    let clock = ReplayClock { replay_start: REPLAY_START, wall_start, speed: 60 };
    let maturity = wall_start + 60;
    let stale = format!("bitstamp=stale:{}", maturity - 40);
    let replay = Replay::start(clock, &["kraken=http500", "gemini=slow:3000", &stale]);
    let spec = SettlementSpec { index: Index::EthUsd, maturity, params: short_params(1) };
    // The harness gives every venue a 2 s timeout and one retry.
    let config = write_config(&member, &genesis, &replay.url, &[Scheduled { maturity, params: spec.params }]);
    let node = Node::start("node-0", &config);

    let path = format!("/v1/settlements/{}", spec.id());
    let view = node.wait_for(&path, Duration::from_secs(40), |v| !v["observation"].is_null());
    let observation: Signed<Observation> = serde_json::from_value(view["observation"].clone()).unwrap();
    assert!(matches!(observation.payload.computation.value, NodeValue::Value(_)), "{view}");

    let left_out = view["left_out"].as_array().unwrap_or_else(|| panic!("no left_out: {view}"));
    let reasons: Vec<(&str, &str, &serde_json::Value)> = left_out
        .iter()
        .map(|l| (l["venue"].as_str().unwrap(), l["reason"].as_str().unwrap(), &l["status"]))
        .collect();
    println!("left out: {}", serde_json::to_string_pretty(left_out).unwrap());
    assert_eq!(
        reasons,
        [
            ("kraken", "http_status", &serde_json::json!(500)),
            ("bitstamp", "too_few_partitions", &serde_json::Value::Null),
            ("gemini", "timeout", &serde_json::Value::Null),
        ]
    );
    assert!(left_out[1]["detail"].as_str().unwrap().contains("of 12 partitions"), "{}", left_out[1]);
    assert!(
        left_out[2]["detail"].as_str().unwrap().contains("raise venues.gemini.timeout"),
        "{}",
        left_out[2]
    );
}
