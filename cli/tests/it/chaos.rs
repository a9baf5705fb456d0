//! Chaos across real processes (issue 17): seeded runs of a committee of seven `fixd` nodes,
//! anvil and the replay venues, with two faulty members (strategies from the seed), two SIGKILLs
//! of honest members at random moments in every phase, each restarted on its own data directory,
//! a partition of the committee in two, healed seconds later, and in half the runs a bonded
//! dispute filed with a member the seed picks. After each run a checker reads every node's store
//! and the chain: no honest member signed two messages for one slot, honest members signed one
//! final report, one publication, by the hard deadline, of a value in the honest range, and
//! every bond conserved to the wei.
//!
//! Each run prints one `injected: <fault>` line per fault (strategy, kill with its phase,
//! partition with its sides, dispute), which `scripts/chaos.sh` counts over a campaign.
//!
//! Each run prints its schedule and the command that replays it:
//! `FIXD_CHAOS_SEED=<seed> cargo nextest run -p fixd --no-capture chaos::replay_one_seed`.
//! `scripts/chaos.sh N` runs N more seeds. Every node, anvil and the venues run in network
//! namespaces of their own (`fixd_testkit::netns`), so a partition is a real cut (nftables).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use std::thread::JoinHandle;

use alloy::primitives::{B256, U256};
use fixd_proto::signing::PublicKey;
use fixd_proto::types::genesis::ProtocolParams;
use fixd_testkit::chaos::checker;
use fixd_testkit::chaos::crash::Progress;
use fixd_testkit::chaos::schedule::{Fault, Schedule, Shape, phase_at};
use serde_json::Value;

use fixd_testkit::netns::LabDevnet;

use crate::harness::{Scheduled, TestChain, short_maturity};

/// The shape of a CI run: n = 7 (f = 2), two kills and a partition within 24 s of maturity (the
/// settlement is published about 20 s after it).
const SHAPE: Shape = Shape { n: 7, kills: 2, partitions: 1, horizon_ms: 24_000, window_ms: 10_000 };

/// Short windows: 6 s rounds, a 10 s challenge window (6 s once reopened after a review), 15 s
/// publishing turns, 2 confirmations, and a hard deadline 240 s after maturity (the crash runs'
/// too).
pub(crate) fn params() -> ProtocolParams {
    ProtocolParams {
        round_timeout_secs: 6,
        challenge_period_secs: 10,
        reopened_challenge_period_secs: 6,
        publish_timeout_secs: 15,
        confirmations: 2,
        hard_deadline_secs: 240,
        ..ProtocolParams::default()
    }
}

/// The disputer's dispute id in every run.
pub(crate) const DISPUTE_ID: B256 = B256::repeat_byte(0xd1);

/// What happens at a moment of the run.
#[derive(Debug)]
enum Action {
    Kill(usize),
    Restart(usize),
    Partition(Vec<Vec<usize>>),
    Heal,
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    u64::try_from(since.as_millis()).unwrap()
}

/// The schedule's kills, restarts, partitions and heals in time order (ms after maturity), each
/// announced with the phase it is timed for (a kill's `injected:` line gives the phase the
/// killed node's store shows).
fn actions(schedule: &Schedule, grace_ms: u64) -> Vec<(u64, Action)> {
    let window_ms = params().challenge_period_secs * 1000;
    let mut actions: Vec<(u64, Action)> = Vec::new();
    for (_, strategy) in &schedule.byzantine {
        println!("injected: byzantine {}", strategy.flag().unwrap_or("silent"));
    }
    for fault in &schedule.faults {
        let phase = phase_at(fault.at_ms(), grace_ms, window_ms);
        match fault {
            Fault::Kill { member, at_ms, down_ms } => {
                println!("scheduled: kill node-{member} in the {phase}");
                actions.push((*at_ms, Action::Kill(*member)));
                actions.push((at_ms + down_ms, Action::Restart(*member)));
            }
            Fault::Partition { groups, at_ms, heal_ms } => {
                let sides: Vec<String> = groups.iter().map(|g| g.len().to_string()).collect();
                println!("injected: partition {} in the {phase} {groups:?}", sides.join("/"));
                actions.push((*at_ms, Action::Partition(groups.clone())));
                actions.push((at_ms + heal_ms, Action::Heal));
            }
        }
    }
    actions.sort_by_key(|(at, _)| *at);
    actions
}

/// Files dispute [`DISPUTE_ID`] through `api` with `fixd dispute submit`, on its own thread so
/// that the faults keep their times: the CLI's JSON answer, or why it failed.
pub(crate) fn file_dispute(
    api: String,
    rpc: String,
    settlement: B256,
    key: String,
) -> JoinHandle<Result<Value, String>> {
    std::thread::spawn(move || {
        let out = crate::harness::fixd()
            .args(["dispute", "submit", "--json", "--api", &api, "--rpc-url", &rpc])
            .args(["--settlement", &settlement.to_string(), "--reason", "bad_data"])
            .args(["--dispute-id", &DISPUTE_ID.to_string()])
            .env("FIXD_ETH_KEY", key)
            .output()
            .map_err(|e| e.to_string())?;
        let printed = String::from_utf8_lossy(&out.stdout);
        match serde_json::from_str(&printed) {
            Ok(answer) if out.status.success() => Ok(answer),
            _ => Err(format!("{printed} {}", String::from_utf8_lossy(&out.stderr))),
        }
    })
}

/// Runs seed `seed` and checks it; panics with what broke.
fn run(seed: u64) {
    let schedule = Schedule::from_seed(seed, SHAPE);
    println!("chaos {schedule}");
    println!("replay: {}", schedule.replay_command());
    let (clock, spec) = short_maturity();
    let settlements = [Scheduled { maturity: spec.maturity, params: spec.params }];
    let mut devnet = LabDevnet::prepare(SHAPE.n, clock, &settlements, &params())
        .unwrap_or_else(|e| panic!("the network lab: {e}"));
    for member in 0..SHAPE.n {
        match schedule.strategy(member) {
            None => {
                devnet.start_node(member);
            }
            Some(strategy) => {
                if let Some(flag) = strategy.flag() {
                    devnet.start_node_with(member, &["--byzantine", flag], &[]);
                }
            }
        }
    }
    let disputer = devnet.chain.funded_key(0xd5, 10u128.pow(19));
    let genesis = fixd_node::genesis::load(&devnet.genesis_and_keys(0).0).unwrap();
    let money_before = devnet.chain.money();
    let honest: Vec<usize> = (0..SHAPE.n).filter(|m| schedule.is_honest(*m)).collect();
    let path = format!("/v1/settlements/{}", spec.id());

    // The faults at their times from maturity, and the dispute once the value is certified.
    let mut pending = actions(&schedule, spec.params.grace_secs * 1000).into_iter().peekable();
    let maturity_ms = spec.maturity * 1000;
    let mut certified_at: Option<Instant> = None;
    let mut filing: Option<JoinHandle<Result<Value, String>>> = None;
    let mut last_poll = Instant::now();
    loop {
        while let Some((_, action)) = pending.next_if(|(at_ms, _)| maturity_ms + at_ms <= now_ms()) {
            match action {
                Action::Kill(member) => {
                    devnet.stop_node(member);
                    let store = devnet.genesis_and_keys(member).1.join("data/store");
                    let own = genesis.members[member].ed25519;
                    let store =
                        fixd_node::store::SledStore::open(&store).expect("the killed node's store opens");
                    let phase =
                        Progress::read(&store, &spec.id(), &own).unwrap().phase(params().confirmations);
                    println!("injected: kill in the {phase} (node-{member})");
                }
                Action::Restart(member) => {
                    devnet.start_node(member);
                }
                Action::Partition(groups) => {
                    devnet.partition_members(&groups).expect("the partition is made")
                }
                Action::Heal => devnet.lab.heal_all().expect("the partition heals"),
            }
        }
        if let (Some(plan), None) = (schedule.dispute, &filing) {
            if certified_at.is_none() && last_poll.elapsed() > Duration::from_millis(300) {
                last_poll = Instant::now();
                let certified = honest.iter().filter(|m| devnet.is_running(**m)).any(|m| {
                    let (_, v) = devnet.node(*m).get(&path);
                    v["status"] == "certified" || v["status"] == "published" || v["status"] == "final"
                });
                certified_at = certified.then(Instant::now);
            }
            let due =
                certified_at.is_some_and(|at| at.elapsed() >= Duration::from_millis(plan.after_certified_ms));
            // A member down at that moment cannot take it: the next running one does.
            let via = (0..SHAPE.n).map(|k| (plan.via + k) % SHAPE.n).find(|m| devnet.is_running(*m));
            if let (true, Some(via)) = (due, via) {
                let strategy = schedule.strategy(via).and_then(|s| s.flag()).unwrap_or("honest");
                println!("injected: dispute via a {strategy} member (node-{via})");
                let key = hex::encode(disputer.to_bytes());
                filing = Some(file_dispute(
                    devnet.node(via).api.clone(),
                    devnet.chain.rpc.clone(),
                    spec.id(),
                    key,
                ));
            }
        }
        if pending.peek().is_none() && (schedule.dispute.is_none() || filing.is_some()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let filed = filing.map(|f| f.join().expect("the dispute thread"));
    println!("dispute: {filed:?}");

    // Every honest member shows the publication.
    let started = Instant::now();
    let views: Vec<Value> = honest
        .iter()
        .map(|m| devnet.node(*m).wait_for(&path, Duration::from_secs(240), |v| v["status"] == "published"))
        .collect();
    println!("published on every honest member {:?} after the faults", started.elapsed());
    for v in &views {
        assert_eq!(v["value"], views[0]["value"], "one value: {schedule}");
    }

    // The chain: one publication, by the hard deadline; every bond balances.
    let chain = &devnet.chain;
    let publications = chain.publications(spec.id());
    assert_eq!(publications.len(), 1, "exactly one publication: {publications:?}; {schedule}");
    let (on_chain, published_at, status) = chain.get_settlement(spec.id());
    assert_eq!(status, 1);
    let hard_deadline = spec.maturity + params().hard_deadline_secs;
    assert!(
        published_at <= hard_deadline,
        "published at {published_at}, after the hard deadline {hard_deadline}"
    );
    check_bonds(chain, spec.id(), money_before, &disputer, filed.as_ref(), &schedule);

    // The stores, once every process has stopped.
    let honest_keys: BTreeSet<PublicKey> = honest.iter().map(|m| genesis.members[*m].ed25519).collect();
    let store_dirs: Vec<std::path::PathBuf> =
        (0..SHAPE.n).map(|m| devnet.genesis_and_keys(m).1.join("data/store")).collect();
    for member in 0..SHAPE.n {
        devnet.stop_node(member);
    }
    let held: Vec<checker::Held> = store_dirs
        .iter()
        .filter(|dir| dir.exists())
        .map(|dir| {
            let store = fixd_node::store::SledStore::open(dir).unwrap();
            checker::read(&store, &spec.id()).unwrap()
        })
        .collect();
    let equivocations = checker::honest_equivocations(&honest_keys, &held);
    assert!(equivocations.is_empty(), "honest equivocation: {equivocations:?}; {schedule}");
    let reports = checker::honest_final_reports(&honest_keys, &held);
    assert_eq!(reports.len(), 1, "honest members signed {} final reports; {schedule}", reports.len());
    let (low, high) = checker::honest_range(&honest_keys, &held).expect("honest observations");
    let published = U256::from(low.raw()) <= on_chain && on_chain <= U256::from(high.raw());
    assert!(published, "published {on_chain}, outside the honest range [{low}, {high}]; {schedule}");
    println!("seed {seed}: published {on_chain} in [{low}, {high}]; no honest equivocation; one report");
}

/// Every wei the disputer paid the contract is accounted for: the contract's balance is its
/// pool, what it burned, what it credited and the bond still escrowed, and it grew by exactly
/// the bond. A bond the committee's report did not settle (a dispute that reached it late) is
/// reclaimed whole.
pub(crate) fn check_bonds(
    chain: &TestChain,
    settlement: B256,
    (pool0, burned0, balance0): (u128, u128, u128),
    disputer: &alloy::signers::local::PrivateKeySigner,
    filed: Option<&Result<Value, String>>,
    schedule: &dyn std::fmt::Display,
) {
    let (pool, burned, balance) = chain.money();
    let (_, escrowed) = chain.escrow(settlement, DISPUTE_ID);
    let credited = chain.credits(disputer.address());
    assert_eq!(balance, pool + burned + escrowed + credited, "every bond conserved to the wei; {schedule}");
    let paid = match filed {
        Some(Ok(answer)) => answer["bond_wei"].as_str().and_then(|w| w.parse::<u128>().ok()).unwrap_or(0),
        // The CLI failed (its member died under it): whatever it escrowed is still there.
        Some(Err(_)) | None => escrowed,
    };
    assert_eq!(balance - balance0, paid, "the contract gained exactly the bond; {schedule}");
    assert!(pool >= pool0 && burned >= burned0, "nothing left the pool or the burn");
    let accepted = filed.is_some_and(|f| f.as_ref().is_ok_and(|a| a["http_status"] == 202));
    println!(
        "bonds: paid {paid}, pooled {}, burned {}, credited {credited}, escrowed {escrowed} (accepted: {accepted})",
        pool - pool0,
        burned - burned0
    );
    if escrowed > 0 {
        let before = chain.balance(disputer.address());
        let gas = chain.reclaim(disputer, settlement, DISPUTE_ID);
        assert_eq!(chain.balance(disputer.address()), before + escrowed - gas, "the bond comes back whole");
        let (pool, burned, balance) = chain.money();
        assert_eq!(balance, pool + burned + credited, "nothing left in escrow; {schedule}");
    }
}

/// The seed of `FIXD_CHAOS_SEED`, or seed 1: the command every failing run prints.
#[test]
fn replay_one_seed() {
    let seed =
        std::env::var("FIXD_CHAOS_SEED").map_or(1, |s| s.parse().expect("FIXD_CHAOS_SEED is a number"));
    run(seed);
}

/// Found by the campaign: a dispute accepted by a faulty member while it was cut off, relayed as
/// two honest members restarted. They got the relay by catch-up, late, before its bond check
/// let them hold it, so they dropped the review votes that came with it, never counted it, and
/// the review of the other three could not reach five without them: published only at the hard
/// deadline. Fixed in the settlement driver (a member asks for a catch-up once it holds a new
/// relay: `driver::tests::a_member_that_gets_a_relay_after_its_review_votes_asks_for_them_and_joins_the_review`).
#[test]
fn seed_1004_a_dispute_relayed_while_two_members_restart() {
    run(1004);
}

/// Seeded runs, each its own test: with `replay_one_seed` (seed 1), twenty in CI.
macro_rules! seeds {
    ($($name:ident = $seed:literal),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                run($seed);
            }
        )*
    };
}

seeds!(
    seed_2 = 2,
    seed_3 = 3,
    seed_4 = 4,
    seed_5 = 5,
    seed_6 = 6,
    seed_7 = 7,
    seed_8 = 8,
    seed_9 = 9,
    seed_10 = 10,
    seed_11 = 11,
    seed_12 = 12,
    seed_13 = 13,
    seed_14 = 14,
    seed_15 = 15,
    seed_16 = 16,
    seed_17 = 17,
    seed_18 = 18,
    seed_19 = 19,
    seed_20 = 20,
);
