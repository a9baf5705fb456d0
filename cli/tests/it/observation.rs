//! Observations across real processes: the replay venues and one `fixd` node, with a settlement
//! maturing about a minute after start on short window parameters (a 60 s window in 12
//! partitions of 5 s; the replay plays one market minute per wall second, so the window holds
//! the hour 15:00–16:00 UTC of 2025-06-12).

use std::time::Duration;

use fixd_proto::methodology::{clean_trades, compute, trade_digest};
use fixd_proto::replay::{PROFILES, ReplayClock, fixture_bars, replay};
use fixd_proto::signing::Signed;
use fixd_proto::types::observation::{Computation, NoValueReason, NodeValue, Observation};
use fixd_proto::types::settlement::{Index, MethodologyParams, SettlementSpec};
use fixd_proto::types::venue::{Trade, Venue};
use serde_json::Value;

use crate::harness::{
    MemberDir, Node, Replay, Scheduled, build_genesis, init_member, now, with_committee, write_config,
};

/// 2025-06-12 15:00:00 UTC: the replay starts an hour before the fixture's maturity.
const REPLAY_START: u64 = 1_749_740_400;

/// One market minute per wall second.
const SPEED: u32 = 60;

/// A one-member committee in a temporary directory.
struct Setup {
    _root: tempfile::TempDir,
    member: MemberDir,
    genesis: std::path::PathBuf,
    network_id: alloy_primitives::B256,
}

fn setup() -> Setup {
    let root = tempfile::tempdir().unwrap();
    let member = init_member(root.path(), "node-0");
    // A genesis needs four members; only node-0 runs: observing needs no quorum.
    let genesis = build_genesis(root.path(), &with_committee(root.path(), &member));
    let network_id = fixd_node::genesis::load(&genesis).unwrap().network_id();
    Setup { _root: root, member, genesis, network_id }
}

/// A clock whose replay of 15:00 starts a few seconds from now, and the settlement maturing at
/// replay 16:00.
fn clock_and_maturity() -> (ReplayClock, u64) {
    let wall_start = now() + 3;
    (ReplayClock { replay_start: REPLAY_START, wall_start, speed: SPEED }, wall_start + 60)
}

/// One member with the replay venues and one settlement on short windows in its config: the
/// setup, the clock, the venues (kept running), the spec and the config's path.
fn one_settlement() -> (Setup, ReplayClock, Replay, SettlementSpec, std::path::PathBuf) {
    let s = setup();
    let (clock, maturity) = clock_and_maturity();
    let replay = Replay::start(clock, &[]);
    let spec = spec(maturity, crate::harness::short_params(3));
    let config =
        write_config(&s.member, &s.genesis, &replay.url, &[Scheduled { maturity, params: spec.params }]);
    (s, clock, replay, spec, config)
}

fn spec(maturity: u64, params: MethodologyParams) -> SettlementSpec {
    SettlementSpec { index: Index::EthUsd, maturity, params }
}

/// What the venues serve without faults, on the wall clock: computed here from the fixture,
/// independently of the replay server. Bitstamp reports whole seconds only (its `date` field),
/// so its times are floored to the second, as the real venue's would be.
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

/// Waits until the node has stored its observation of `spec`, and returns it with the view.
fn observed(node: &Node, spec: &SettlementSpec) -> (Signed<Observation>, Value) {
    let path = format!("/v1/settlements/{}", spec.id());
    let view = node.wait_for(&path, Duration::from_secs(150), |v| !v["observation"].is_null());
    let observation: Signed<Observation> = serde_json::from_value(view["observation"].clone()).unwrap();
    (observation, view)
}

fn deviation_bp(a: &NodeValue, b: &NodeValue) -> u128 {
    let (a, b) = (a.value().unwrap().raw(), b.value().unwrap().raw());
    a.abs_diff(b) * 10_000 / b
}

#[test]
fn a_node_signs_exactly_what_the_methodology_gives() {
    let (s, clock, _replay, spec, config) = one_settlement();
    let node = Node::start("node-0", &config);

    let (observation, view) = observed(&node, &spec);
    assert_eq!(observation.verify(&s.network_id), Ok(()), "the observation's signature verifies");
    let trades = wall_trades(&clock);
    let expected = compute(&spec, &trades).unwrap();
    println!("expected {:?}; observed {:?}", expected.value, observation.payload.computation.value);
    assert_eq!(observation.payload.computation, expected);
    assert_eq!(observation.payload.trade_digest, trade_digest(&clean_trades(&spec, &trades)));
    assert!(matches!(expected.value, NodeValue::Value(_)), "the fault-free window yields a value");
    assert_eq!(view["signed"][0]["kind"], "observation");
    assert_eq!(view["signed"][0]["hash"], serde_json::to_value(observation.hash()).unwrap());
}

/// Flash crash on one venue; HTTP 500 and garbage on two others. Three settlements run side by
/// side on one node: one per fault set would need a replay server each, so the faults are set
/// once and the settlements differ in `min_venues`.
#[test]
fn faulty_venues_never_make_a_wrong_number() {
    let s = setup();
    let (clock, maturity) = clock_and_maturity();
    // Coinbase crashes 30% for ten market minutes (10 wall seconds) inside the window.
    let crash_from = maturity - 40;
    let crash = format!("coinbase=crash:30:{crash_from}:{}", crash_from + 10);
    let replay_crash = Replay::start(clock, &[&crash]);
    let replay_broken = Replay::start(clock, &["kraken=http500", "gemini=garbage"]);
    let crash_spec = spec(maturity, crate::harness::short_params(3));

    let s2 = setup();
    let two_venues = spec(maturity, crate::harness::short_params(2));
    let three_venues =
        spec(maturity + 1, MethodologyParams { grace_secs: 4, ..crate::harness::short_params(3) });

    let config = write_config(
        &s.member,
        &s.genesis,
        &replay_crash.url,
        &[Scheduled { maturity, params: crash_spec.params }],
    );
    let node = Node::start("node-crash", &config);
    let config2 = write_config(
        &s2.member,
        &s2.genesis,
        &replay_broken.url,
        &[
            Scheduled { maturity: two_venues.maturity, params: two_venues.params },
            Scheduled { maturity: three_venues.maturity, params: three_venues.params },
        ],
    );
    let node2 = Node::start("node-broken", &config2);

    let fault_free = compute(&crash_spec, &wall_trades(&clock)).unwrap();
    let (crashed, _) = observed(&node, &crash_spec);
    let bp = deviation_bp(&crashed.payload.computation.value, &fault_free.value);
    println!(
        "flash crash: {:?} vs fault-free {:?}: {bp} bp",
        crashed.payload.computation.value, fault_free.value
    );
    assert!(bp < 10, "a 30% flash crash on one venue moves the value by {bp} bp, more than 0.10%");

    // Kraken answers 500 and Gemini garbage: the node observes from Coinbase and Bitstamp.
    let survivors: Vec<Trade> = wall_trades(&clock)
        .into_iter()
        .filter(|t| matches!(t.venue, Venue::Coinbase | Venue::Bitstamp))
        .collect();
    let (from_two, _) = observed(&node2, &two_venues);
    assert_eq!(from_two.payload.computation, compute(&two_venues, &survivors).unwrap());
    let venues: Vec<Venue> = from_two.payload.computation.venues.iter().map(|v| v.venue).collect();
    assert_eq!(venues, vec![Venue::Coinbase, Venue::Bitstamp]);

    // With min_venues = 3, two venues are too few: the two-venue rule counts 3 partitions at
    // most, short of 9. "No value", with the reason, signed.
    let (too_few, _) = observed(&node2, &three_venues);
    assert_eq!(too_few.verify(&s2.network_id), Ok(()));
    let Computation { value, .. } = too_few.payload.computation;
    assert_eq!(value, NodeValue::NoValue(NoValueReason::TooFewPartitions { counted: 3, required: 9 }));
}

/// SIGKILL right after the node reports the observation stored; after a restart the
/// observation and its "signed" record are still there, and the node does not sign again.
#[test]
fn an_observation_survives_sigkill() {
    let (s, clock, _replay, spec, config) = one_settlement();
    let mut node = Node::start("node-0", &config);
    node.proc.wait_for_line("observation stored", Duration::from_secs(150));
    node.proc.kill();

    let node = Node::start("node-0-restarted", &config);
    let (status, view) = node.get(&format!("/v1/settlements/{}", spec.id()));
    assert_eq!(status, 200, "{view}");
    assert!(!view["observation"].is_null(), "{view}");
    let observation: Signed<Observation> = serde_json::from_value(view["observation"].clone()).unwrap();
    assert_eq!(observation.verify(&s.network_id), Ok(()));
    assert_eq!(view["signed"][0]["hash"], serde_json::to_value(observation.hash()).unwrap());
    assert_eq!(observation.payload.computation, compute(&spec, &wall_trades(&clock)).unwrap());
}

/// The node aborts after its observation's slot is on disk and before the observation is
/// (test fault `crash-after-observation-slot`). The restarted node finds the slot's hash with no
/// observation behind it, rebuilds the observation from its archived trades, signs the very
/// same bytes again (the slot takes them), and keeps serving.
#[test]
fn a_crash_between_the_slot_and_the_observation_is_healed_from_the_archive() {
    let (s, clock, _replay, spec, config) = one_settlement();
    let mut node =
        Node::start_with_env("node-0", &config, &[("FIXD_TEST_FAULT", "crash-after-observation-slot")]);
    node.proc.wait_for_line("test fault: crashing between the observation's slot", Duration::from_secs(150));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while node.proc.check_alive().is_ok() {
        assert!(std::time::Instant::now() < deadline, "the node did not crash");
        std::thread::sleep(Duration::from_millis(100));
    }

    let node = Node::start("node-0-restarted", &config);
    node.proc.wait_for_line("signed it again from the archive", Duration::from_secs(30));
    let path = format!("/v1/settlements/{}", spec.id());
    let view = node.wait_for(&path, Duration::from_secs(30), |v| !v["observation"].is_null());
    let observation: Signed<Observation> = serde_json::from_value(view["observation"].clone()).unwrap();
    assert_eq!(observation.verify(&s.network_id), Ok(()));
    assert_eq!(
        view["signed"][0]["hash"],
        serde_json::to_value(observation.hash()).unwrap(),
        "the slot's own"
    );
    assert_eq!(observation.payload.computation, compute(&spec, &wall_trades(&clock)).unwrap());
    assert_eq!(node.get("/v1/health").0, 200, "the node keeps serving");
}
