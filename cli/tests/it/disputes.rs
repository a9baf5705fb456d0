//! Disputes across real processes (issue 7): four `fixd` nodes, the replay venues and a real
//! anvil with the `SettlementOracle`. Bonds are escrowed on-chain with `postBond`, disputes are
//! signed with EIP-712 and submitted over HTTP (and with `fixd dispute submit`), the committee
//! reviews them against the venues' history, and the contract pays the outcomes.

use std::time::Duration;

use alloy::primitives::{Address, B256};
use alloy::signers::local::PrivateKeySigner;
use fixd_proto::eip712::{SignedDispute, domain, sign_typed};
use fixd_proto::replay::ReplayClock;
use fixd_proto::types::dispute::{Dispute, DisputeReason};
use fixd_proto::types::genesis::ProtocolParams;
use fixd_proto::types::settlement::{Index, SettlementSpec};
use serde_json::Value;

use crate::harness::{Devnet, Scheduled, TestChain, fixd, now, short_params};

const ETH: u128 = 1_000_000_000_000_000_000;

/// Short windows: 6 s rounds and 5 s skew (so the dispute machine lags the clock by 11 s), a
/// 45 s challenge window reopened for 30 s after a review, 15 s publishing turns.
fn params() -> ProtocolParams {
    ProtocolParams {
        round_timeout_secs: 6,
        max_clock_skew_secs: 5,
        challenge_period_secs: 45,
        reopened_challenge_period_secs: 30,
        publish_timeout_secs: 15,
        confirmations: 2,
        ..ProtocolParams::default()
    }
}

fn setup(faults: &[&str]) -> (SettlementSpec, Devnet) {
    setup_with(faults, &params(), None)
}

fn setup_with(
    faults: &[&str],
    params: &ProtocolParams,
    arbitrator: Option<Address>,
) -> (SettlementSpec, Devnet) {
    let wall_start = now() + 8;
    let clock = ReplayClock { replay_start: 1_749_740_400, wall_start, speed: 60 };
    let maturity = wall_start + 60;
    let spec = SettlementSpec { index: Index::EthUsd, maturity, params: short_params(3) };
    let settlements = [Scheduled { maturity, params: spec.params }];
    let devnet = Devnet::prepare_on_chain_with(4, clock, &settlements, params, faults, arbitrator);
    (spec, devnet)
}

/// A dispute of `spec`'s certified proposal, signed by `signer` (normally the disputer).
pub(crate) fn signed_dispute(
    chain: &TestChain,
    spec: &SettlementSpec,
    proposal_hash: B256,
    dispute_id: B256,
    bond: (B256, u128),
    disputer: Address,
    signer: &PrivateKeySigner,
) -> String {
    let dispute = Dispute {
        settlement_id: spec.id(),
        dispute_id,
        proposal_hash,
        claimed_value: None,
        reason: DisputeReason::BadData,
        evidence: String::new(),
        bond_wei: bond.1,
        bond_tx: bond.0,
        disputer,
    };
    let signature = sign_typed(signer, &domain(chain.dev.chain_id, chain.dev.contract), &dispute);
    serde_json::to_string(&SignedDispute { dispute, signature }).unwrap()
}

fn disputes_path(spec: &SettlementSpec) -> String {
    format!("/v1/settlements/{}/disputes", spec.id())
}

/// Every running node lists exactly these dispute ids.
fn every_node_lists(devnet: &Devnet, spec: &SettlementSpec, ids: &[B256]) {
    for node in devnet.running() {
        let (code, state) = node.get(&disputes_path(spec));
        assert_eq!(code, 200, "{state}");
        let listed: Vec<B256> = state["disputes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| serde_json::from_value(d["dispute_id"].clone()).unwrap())
            .collect();
        assert_eq!(listed, ids, "{}: {state}", node.proc.name);
    }
}

/// Runs `fixd dispute submit --json` with `disputer`'s key against `api`; its printed JSON.
fn submit_with_cli(
    api: &str,
    chain: &TestChain,
    spec: &SettlementSpec,
    disputer: &PrivateKeySigner,
    extra: &[&str],
) -> Value {
    let out = fixd()
        .args(["dispute", "submit", "--json", "--api", api, "--rpc-url", &chain.rpc])
        .args(["--settlement", &spec.id().to_string(), "--reason", "bad_data"])
        .args(extra)
        .env("FIXD_ETH_KEY", hex::encode(disputer.to_bytes()))
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "fixd dispute submit: {printed}\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(&printed).unwrap()
}

/// `fixd_disputes_total{outcome}` from a node's `/metrics`, parsed as Prometheus text.
fn disputes_total(node: &crate::harness::Node, outcome: &str) -> u64 {
    crate::counter(node, "fixd_disputes_total", &[("outcome", outcome)])
}

fn expect_refusal(answer: (u16, Value), status: u16, code: &str) {
    assert_eq!((answer.0, answer.1["error"].as_str()), (status, Some(code)), "{}", answer.1);
    assert!(answer.1["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", answer.1);
}

#[test]
fn a_dispute_of_a_correct_value_is_rejected_and_forfeits_its_bond_and_bad_disputes_store_nothing() {
    let (spec, mut devnet) = setup(&[]);
    for i in 0..4 {
        devnet.start_node(i);
    }
    let chain = devnet.chain.as_ref().unwrap();
    let path = format!("/v1/settlements/{}", spec.id());
    devnet.node(1).wait_for(&path, Duration::from_secs(150), |v| v["status"] == "certified");
    let (_, state) = devnet.node(1).get(&disputes_path(&spec));
    assert_eq!(state["phase"], "challenge", "{state}");
    let proposal_hash: B256 = serde_json::from_value(state["certified"]["proposal_hash"].clone()).unwrap();
    let bond: u128 = state["required_bond_wei"].as_str().unwrap().parse().unwrap();
    assert_eq!(bond, params().min_bond_wei);
    let deadline = state["deadline"].as_u64().unwrap();
    let disputer = chain.funded_key(0x71, 10 * ETH);
    let stranger = chain.funded_key(0x72, ETH);
    let (pool0, burned0, balance0) = chain.money();
    let node = devnet.node(1);
    let post = |body: &str| node.post(&disputes_path(&spec), body);
    let sign = |id: u8, bond: (B256, u128), signer: &PrivateKeySigner| {
        signed_dispute(chain, &spec, proposal_hash, B256::repeat_byte(id), bond, disputer.address(), signer)
    };

    // Bad disputes, each refused with its reason, and none stored anywhere.
    expect_refusal(post("{\"dispute\": "), 400, "bad_json");
    let elsewhere = SettlementSpec { maturity: spec.maturity + 1, ..spec.clone() };
    let foreign = signed_dispute(
        chain,
        &elsewhere,
        proposal_hash,
        B256::repeat_byte(1),
        (B256::ZERO, bond),
        disputer.address(),
        &disputer,
    );
    expect_refusal(node.post(&disputes_path(&elsewhere), &foreign), 404, "unknown_settlement");
    let escrowed = chain.post_bond(&disputer, spec.id(), B256::repeat_byte(2), bond);
    expect_refusal(post(&sign(2, (escrowed.0, bond), &stranger)), 422, "bad_signature");
    expect_refusal(post(&sign(3, (B256::repeat_byte(0x99), bond), &disputer)), 422, "bond_not_found");
    let transfer = chain.plain_transfer(&disputer);
    expect_refusal(post(&sign(4, (transfer, bond), &disputer)), 422, "bond_not_escrowed");
    let short = chain.post_bond(&disputer, spec.id(), B256::repeat_byte(5), bond - 1);
    std::thread::sleep(Duration::from_secs(3)); // two confirmations
    expect_refusal(post(&sign(5, (short.0, bond - 1), &disputer)), 422, "bond_too_small");
    every_node_lists(&devnet, &spec, &[]);

    // A good dispute through the CLI, with an odd bond so the split has a remainder.
    let good = B256::repeat_byte(6);
    let (bond_arg, id_arg) = ((bond + 1).to_string(), good.to_string());
    let submitted =
        submit_with_cli(&node.api, chain, &spec, &disputer, &["--bond", &bond_arg, "--dispute-id", &id_arg]);
    assert_eq!(submitted["http_status"], 202, "{submitted}");
    assert_eq!(submitted["answer"]["dispute_round"], 1);
    let good_tx: B256 = serde_json::from_value(submitted["bond_tx"].clone()).unwrap();
    let replay = sign(6, (good_tx, bond + 1), &disputer);
    expect_refusal(post(&replay), 409, "duplicate_dispute");
    // Gossiped, and its bond checked again on node-3's own RPC.
    devnet.node(3).wait_for(&disputes_path(&spec), Duration::from_secs(30), |s| {
        s["disputes"].as_array().is_some_and(|d| d.len() == 1)
    });
    expect_refusal(devnet.node(3).post(&disputes_path(&spec), &replay), 409, "duplicate_dispute");
    every_node_lists(&devnet, &spec, &[good]);

    // The review decides (rejected), and the window reopens on the same value. A dispute whose
    // bond comes after the window closed, but before publication, is refused.
    let state = node.wait_for(&disputes_path(&spec), Duration::from_secs(120), |s| {
        s["disputes"][0]["status"] == "rejected"
    });
    let reopened = state["deadline"].as_u64().unwrap();
    assert!(reopened >= deadline, "a review never shortens the window: {reopened} < {deadline}");
    while now() < reopened {
        std::thread::sleep(Duration::from_millis(200));
    }
    let late = chain.post_bond(&disputer, spec.id(), B256::repeat_byte(7), bond);
    std::thread::sleep(Duration::from_secs(3)); // two confirmations
    expect_refusal(post(&sign(7, (late.0, bond), &disputer)), 422, "window_closed");
    every_node_lists(&devnet, &spec, &[good]);
    let balance_before = chain.balance(disputer.address());

    // The review found the certified value right: published as certified.
    let views: Vec<Value> = devnet
        .running()
        .map(|n| n.wait_for(&path, Duration::from_secs(200), |v| v["status"] == "published"))
        .collect();
    let certified_round = views[0]["certificate"]["proposal"]["payload"]["round"].clone();
    let forfeit = bond + 1;
    for v in &views {
        assert_eq!(v["final_report"]["report"]["round"], certified_round, "the first certificate stands");
        let outcomes = v["final_report"]["report"]["outcomes"].as_array().unwrap();
        assert_eq!(outcomes.len(), 1, "only the accepted dispute has an outcome: {outcomes:?}");
        let o = &outcomes[0];
        let wei = |k: &str| o[k].as_str().unwrap().parse::<u128>().unwrap();
        assert_eq!(serde_json::from_value::<B256>(o["dispute_id"].clone()).unwrap(), good);
        assert_eq!((wei("refund"), wei("reward")), (0, 0), "{o}");
        assert_eq!(wei("pooled"), forfeit / 2);
        assert_eq!(wei("burned"), forfeit - forfeit / 2);
    }
    for node in devnet.running() {
        let (_, state) = node.get(&disputes_path(&spec));
        assert_eq!(state["disputes"][0]["status"], "rejected", "{state}");
        assert_eq!(state["phase"], "final");
    }
    let (pool1, burned1, balance1) = chain.money();
    assert_eq!(pool1 - pool0, forfeit / 2, "the pool takes half");
    assert_eq!(burned1 - burned0, forfeit - forfeit / 2, "the rest is burned");
    assert_eq!(chain.escrow(spec.id(), good), (Address::ZERO, 0), "the escrow is settled");
    assert_eq!(chain.balance(disputer.address()), balance_before, "a forfeit bond pays nothing back");
    // Still escrowed: the refused disputes' bonds (2: bad signature, 5: one wei short, 7: late).
    let refused = bond + (bond - 1) + bond;
    assert_eq!(balance1, pool1 + burned1 + refused, "escrow + pool + burn = balance, to the wei");
    assert_eq!(balance1 - balance0, forfeit + refused, "the contract gained exactly the four bonds");
    for (id, amount) in [(2u8, bond), (5, bond - 1), (7, bond)] {
        let before = chain.balance(disputer.address());
        let gas = chain.reclaim(&disputer, spec.id(), B256::repeat_byte(id));
        assert_eq!(chain.balance(disputer.address()), before + amount - gas, "reclaim {id} returns the bond");
    }
    let (pool2, burned2, balance2) = chain.money();
    assert_eq!(balance2, pool2 + burned2, "nothing left in escrow");
    // node-1 answered every submission above: one accepted, eight refused (bad JSON, unknown
    // settlement, bad signature, no bond, no escrow, bond too small, the replay, too late).
    let (accepted, refused) = (disputes_total(node, "accepted"), disputes_total(node, "refused"));
    assert_eq!((accepted, refused), (1, 8), "fixd_disputes_total on node-1");
    assert_eq!(disputes_total(devnet.node(2), "rejected"), 1, "every member counts the rejected review");
    let (_, state) = devnet.node(0).get(&disputes_path(&spec));
    let ledger = &state["ledger"];
    println!("ledger {ledger}; pool {pool0} -> {pool2}, burned {burned0} -> {burned2}");
}

/// The settlement value of `spec` computed here, from the replay tape as the venues serve it at
/// `wall_now_ms` with `faults`: an independent check of what the committee certifies.
fn value_on_the_tape(
    spec: &SettlementSpec,
    clock: ReplayClock,
    faults: &[&str],
    wall_now_ms: u64,
) -> fixd_proto::value::Wad {
    use fixd_proto::types::venue::Venue;
    use fixd_testkit::replay::{FaultSpec, venue_trades};
    let specs: Vec<FaultSpec> =
        faults.iter().map(|f| FaultSpec::parse(f, clock.wall_start).unwrap()).collect();
    let window = fixd_node::observer::window_ms(spec);
    let trades: Vec<_> = [Venue::Coinbase, Venue::Kraken, Venue::Bitstamp, Venue::Gemini]
        .into_iter()
        .flat_map(|venue| {
            let faults: Vec<_> = specs.iter().filter(|s| s.venue == venue).map(|s| s.fault.clone()).collect();
            venue_trades(&clock, venue, &faults, wall_now_ms, window)
        })
        .collect();
    let computed = fixd_proto::methodology::compute(spec, &trades).unwrap();
    computed.value.value().expect("the tape gives a value")
}

#[test]
fn a_trade_bust_is_disputed_upheld_and_the_corrected_value_published_with_the_bond_and_reward_paid() {
    // Two of four venues show a 2% spike every replay minute of the window, until 75 s after the
    // replay starts (after the observations); from then on their history no longer shows it.
    let faults = ["coinbase=bust:1.02:+0:+75:+75", "kraken=bust:1.02:+0:+75:+75"];
    let (spec, mut devnet) = setup(&faults);
    let clock = devnet.clock;
    let busted_at = clock.wall_start + 75;
    let live = value_on_the_tape(&spec, clock, &faults, (busted_at - 1) * 1000);
    let corrected = value_on_the_tape(&spec, clock, &[], busted_at * 1000);
    assert!(
        fixd_dispute::review::beyond_tolerance(live, corrected, params().dispute_tolerance_bp),
        "the bust must move the value beyond tolerance: live {live}, corrected {corrected}"
    );
    for i in 0..4 {
        devnet.start_node(i);
    }
    let chain = devnet.chain.as_ref().unwrap();
    chain.fund_pool(ETH);
    let path = format!("/v1/settlements/{}", spec.id());
    let certified = devnet.node(2).wait_for(&path, Duration::from_secs(150), |v| v["status"] == "certified");
    let certified_value: fixd_proto::value::Wad = serde_json::from_value(certified["value"].clone()).unwrap();
    assert_eq!(certified_value, live, "the committee certified what the live feeds showed");
    let disputer = chain.funded_key(0x81, 10 * ETH);
    while now() < busted_at {
        std::thread::sleep(Duration::from_millis(200));
    }
    let balance0 = chain.balance(disputer.address());
    let evidence = ["--evidence", "coinbase and kraken busted the spikes"];
    let submitted = submit_with_cli(&devnet.node(2).api, chain, &spec, &disputer, &evidence);
    let bond: u128 = submitted["bond_wei"].as_str().unwrap().parse().unwrap();
    let gas: u128 = submitted["bond_gas_wei"].as_str().unwrap().parse().unwrap();
    assert_eq!(bond, params().min_bond_wei, "--bond defaults to the required bond");
    let dispute_id: B256 = serde_json::from_value(submitted["dispute_id"].clone()).unwrap();
    assert_eq!(chain.balance(disputer.address()), balance0 - bond - gas);

    let views: Vec<Value> = devnet
        .running()
        .map(|n| n.wait_for(&path, Duration::from_secs(240), |v| v["status"] == "published"))
        .collect();
    let (on_chain, _, status) = chain.get_settlement(spec.id());
    assert_eq!(
        (on_chain, status),
        (alloy::primitives::U256::from(corrected.raw()), 1),
        "the corrected value is on-chain"
    );
    for v in &views {
        let report = &v["final_report"]["report"];
        assert_eq!(
            serde_json::from_value::<fixd_proto::value::Wad>(report["value"].clone()).unwrap(),
            corrected
        );
        let o = &report["outcomes"][0];
        let wei = |k: &str| o[k].as_str().unwrap().parse::<u128>().unwrap();
        assert_eq!(serde_json::from_value::<B256>(o["dispute_id"].clone()).unwrap(), dispute_id);
        assert_eq!(
            (wei("refund"), wei("reward"), wei("pooled"), wei("burned")),
            (bond, bond / 2, 0, 0),
            "{o}"
        );
    }
    for node in devnet.running() {
        let (_, state) = node.get(&disputes_path(&spec));
        assert_eq!(state["disputes"][0]["status"], "upheld", "{state}");
        let review = &state["reviews"][0];
        let reviewed: fixd_proto::value::Wad = serde_json::from_value(review["value"].clone()).unwrap();
        assert_eq!(reviewed, corrected, "the review recomputed the corrected trades: {state}");
        assert_eq!(review["votes"].as_array().unwrap().len(), 3, "exactly q review votes");
    }
    // The proof bundle follows the decision in force: the review's certificate of the corrected
    // value, which `fixd verify` checks offline against the trusted network.
    let (status, bundle) = devnet.node(1).get(&format!("{path}/proof"));
    assert_eq!(status, 200, "{bundle}");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), bundle.to_string()).unwrap();
    let network_id = bundle["genesis"].clone();
    let network_id =
        serde_json::from_value::<fixd_proto::types::genesis::Genesis>(network_id).unwrap().network_id();
    let out = fixd()
        .args(["verify", "--json", "--network-id", &alloy::primitives::hex::encode_prefixed(network_id)])
        .arg(file.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let verified: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        serde_json::from_value::<fixd_proto::value::Wad>(verified["value"].clone()).unwrap(),
        corrected
    );
    assert!(verified["source"].get("review").is_some(), "{verified}");
    // The contract pushed bond + reward straight to the disputer (nothing left to withdraw).
    assert_eq!(chain.credits(disputer.address()), 0);
    let after_escrow = balance0 - bond - gas;
    assert_eq!(
        chain.balance(disputer.address()),
        after_escrow + bond + bond / 2,
        "bond + reward paid at publication"
    );
    let (pool, burned, balance) = chain.money();
    assert_eq!((pool, burned), (ETH - bond / 2, 0), "the reward came out of the pool");
    assert_eq!(balance, pool, "nothing escrowed or credited is left");
}

/// What the arbitrator does in [`escalate_to_the_arbitrator`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Arbitrator {
    /// Upholds the third dispute with the certified value plus one wei.
    Rules,
    /// Rules the same, but first submits the ruling to a member that relays it backdated by an
    /// hour (test fault `backdate-rulings`), then to an honest one.
    RulesThroughABackdatingMember,
    /// Stays silent: the hard deadline makes the certified value stand.
    Silent,
}

/// Two committee reviews reject two disputes (bonds b, then 2b), and a third dispute (4b) goes
/// to the arbitrator, who acts as `arbitrator` says.
fn escalate_to_the_arbitrator(mode: Arbitrator) {
    let ruling = mode != Arbitrator::Silent;
    let hard_deadline_secs = 130;
    let params = ProtocolParams { hard_deadline_secs, ..params() };
    let arbitrator = PrivateKeySigner::from_bytes(&B256::repeat_byte(0x94)).unwrap();
    let (spec, mut devnet) = setup_with(&[], &params, Some(arbitrator.address()));
    for i in 0..4 {
        if i == 0 && mode == Arbitrator::RulesThroughABackdatingMember {
            devnet.start_node_with_env(0, &[("FIXD_TEST_FAULT", "backdate-rulings")]);
        } else {
            devnet.start_node(i);
        }
    }
    let chain = devnet.chain.as_ref().unwrap();
    let path = format!("/v1/settlements/{}", spec.id());
    let certified = devnet.node(0).wait_for(&path, Duration::from_secs(150), |v| v["status"] == "certified");
    let v0: fixd_proto::value::Wad = serde_json::from_value(certified["value"].clone()).unwrap();
    let b = params.min_bond_wei;
    let node = devnet.node(0);
    let mut ids = Vec::new();
    for (k, seed) in [(1u32, 0x91u8), (2, 0x92)] {
        let disputer = chain.funded_key(seed, 10 * ETH);
        let answer = submit_with_cli(&node.api, chain, &spec, &disputer, &[]);
        assert_eq!(answer["http_status"], 202, "{answer}");
        assert_eq!(answer["answer"]["dispute_round"], k, "{answer}");
        let bond: u128 = answer["bond_wei"].as_str().unwrap().parse().unwrap();
        assert_eq!(bond, b << (k - 1), "round {k} needs twice the bond of the round before");
        ids.push(serde_json::from_value::<B256>(answer["dispute_id"].clone()).unwrap());
        let index = ids.len() - 1;
        node.wait_for(&disputes_path(&spec), Duration::from_secs(120), |s| {
            s["disputes"][index]["status"] == "rejected"
        });
    }
    // Round 3 is past max_rounds (2): the arbitrator's.
    let c = chain.funded_key(0x93, 10 * ETH);
    let answer = submit_with_cli(&node.api, chain, &spec, &c, &[]);
    assert_eq!(answer["answer"]["dispute_round"], 3, "{answer}");
    let c_bond: u128 = answer["bond_wei"].as_str().unwrap().parse().unwrap();
    assert_eq!(c_bond, 4 * b);
    let c_id: B256 = serde_json::from_value(answer["dispute_id"].clone()).unwrap();
    let state =
        node.wait_for(&disputes_path(&spec), Duration::from_secs(60), |s| s["phase"] == "arbitration");
    let hard_deadline = state["hard_deadline"].as_u64().unwrap();
    assert_eq!(hard_deadline, spec.maturity + hard_deadline_secs);
    let ruled = fixd_proto::value::Wad::from_raw(v0.raw() + 1);
    let arbitrate_at = |member: usize| {
        fixd()
            .args([
                "arbitrate",
                "--json",
                "--api",
                &devnet.node(member).api,
                "--settlement",
                &spec.id().to_string(),
            ])
            .args(["--dispute", &c_id.to_string(), "--value", &ruled.to_string(), "--upheld"])
            .env("FIXD_ETH_KEY", hex::encode(arbitrator.to_bytes()))
            .output()
            .unwrap()
    };
    let arbitrate = || arbitrate_at(1);
    let succeeded = |out: &std::process::Output| {
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    if mode == Arbitrator::RulesThroughABackdatingMember {
        succeeded(&arbitrate_at(0));
        devnet
            .node(0)
            .proc
            .wait_for_line("test fault: relaying the arbitrator's ruling backdated", Duration::from_secs(10));
        // The honest members hold the backdated relay as late: it counts for none of them.
        for i in 1..4 {
            devnet.node(i).proc.wait_for_line("outside the receipt bound", Duration::from_secs(30));
        }
        // The arbitrator's own submission to an honest member is not a duplicate of it.
        succeeded(&arbitrate());
    } else if ruling {
        succeeded(&arbitrate());
    } else {
        while now() <= hard_deadline {
            std::thread::sleep(Duration::from_millis(250));
        }
        let out = arbitrate();
        assert!(!out.status.success(), "a ruling after the hard deadline is refused");
        let printed: Value = serde_json::from_str(&String::from_utf8_lossy(&out.stdout)).unwrap();
        assert_eq!(
            (printed["http_status"].as_u64(), printed["answer"]["error"].as_str()),
            (Some(422), Some("too_late")),
            "{printed}"
        );
    }
    let views: Vec<Value> = devnet
        .running()
        .map(|n| n.wait_for(&path, Duration::from_secs(200), |v| v["status"] == "published"))
        .collect();
    let expected = if ruling { ruled } else { v0 };
    let (on_chain, _, _) = chain.get_settlement(spec.id());
    assert_eq!(on_chain, alloy::primitives::U256::from(expected.raw()), "the value on-chain");
    let (pool, burned, balance) = chain.money();
    for v in &views {
        let report = &v["final_report"]["report"];
        assert_eq!(
            serde_json::from_value::<fixd_proto::value::Wad>(report["value"].clone()).unwrap(),
            expected
        );
        let outcomes = report["outcomes"].as_array().unwrap();
        let wei = |i: usize, k: &str| outcomes[i][k].as_str().unwrap().parse::<u128>().unwrap();
        let split = |i: usize| (wei(i, "refund"), wei(i, "reward"), wei(i, "pooled"), wei(i, "burned"));
        assert_eq!(outcomes.len(), 3, "in filing order: {outcomes:?}");
        assert_eq!(split(0), (0, 0, b / 2, b - b / 2), "A forfeits b");
        assert_eq!(split(1), (0, 0, b, b), "B forfeits 2b");
        if ruling {
            // C's reward (half its bond, 2b) is capped by what the pool holds: 1.5b.
            assert_eq!(split(2), (4 * b, b / 2 + b, 0, 0), "C upheld");
            assert_eq!(pool, 0, "the reward emptied the pool");
        } else {
            assert_eq!(split(2), (4 * b, 0, 0, 0), "C unresolved: its bond back");
            assert_eq!(pool, b / 2 + b);
        }
    }
    assert_eq!(burned, (b - b / 2) + b);
    assert_eq!(balance, pool + burned, "every escrow settled, to the wei");
    let (_, state) = devnet.node(2).get(&disputes_path(&spec));
    let status = if ruling { "upheld" } else { "unresolved" };
    assert_eq!(state["disputes"][2]["status"], status, "{state}");
}

#[test]
fn two_reviews_then_the_arbitrator_rules_and_the_ruled_value_is_published() {
    escalate_to_the_arbitrator(Arbitrator::Rules);
}

/// A member relays the arbitrator's genuine ruling backdated by an hour, before arbitration
/// began. The honest members hold that relay as late (outside the receipt bound); the arbitrator
/// submits the ruling to an honest member too, and the real ruling decides: the ruled value is
/// published with the same bond outcomes.
#[test]
fn a_member_backdates_a_ruling_and_the_real_ruling_still_decides() {
    escalate_to_the_arbitrator(Arbitrator::RulesThroughABackdatingMember);
}

#[test]
fn a_silent_arbitrator_lets_the_hard_deadline_publish_the_last_certified_value() {
    escalate_to_the_arbitrator(Arbitrator::Silent);
}

#[test]
fn a_member_killed_right_after_its_review_vote_restarts_and_signs_the_same_final_report() {
    let faults = ["coinbase=bust:1.02:+0:+75:+75", "kraken=bust:1.02:+0:+75:+75"];
    let (spec, mut devnet) = setup(&faults);
    let busted_at = devnet.clock.wall_start + 75;
    for i in 0..3 {
        devnet.start_node(i);
    }
    devnet.start_node_with_env(3, &[("FIXD_TEST_FAULT", "stall-after-review-vote")]);
    // Held here, so that the devnet can restart a node while the chain is in use.
    let chain = &devnet.chain.take().unwrap();
    chain.fund_pool(ETH);
    let path = format!("/v1/settlements/{}", spec.id());
    devnet.node(0).wait_for(&path, Duration::from_secs(150), |v| v["status"] == "certified");
    let disputer = chain.funded_key(0xa1, 10 * ETH);
    while now() < busted_at {
        std::thread::sleep(Duration::from_millis(200));
    }
    let answer = submit_with_cli(&devnet.node(0).api, chain, &spec, &disputer, &[]);
    assert_eq!(answer["http_status"], 202, "{answer}");
    // node-3 signs and stores its review vote, then hangs before gossiping it: kill it there.
    devnet.node(3).proc.wait_for_line("stalling after the review vote", Duration::from_secs(90));
    let (_, before) = devnet.node(3).get(&path);
    let voted: Vec<Value> =
        before["signed"].as_array().unwrap().iter().filter(|r| r["kind"] == "review_vote").cloned().collect();
    assert_eq!(voted.len(), 1, "{before}");
    devnet.stop_node(3);
    std::thread::sleep(Duration::from_secs(5));
    devnet.start_node(3);

    let views: Vec<Value> = devnet
        .running()
        .map(|n| n.wait_for(&path, Duration::from_secs(240), |v| v["status"] == "published"))
        .collect();
    for v in &views[1..] {
        assert_eq!(v["final_report"]["report"], views[0]["final_report"]["report"], "one final report");
    }
    let restarted = &views[3];
    let after: Vec<&Value> =
        restarted["signed"].as_array().unwrap().iter().filter(|r| r["kind"] == "review_vote").collect();
    assert_eq!(after, voted.iter().collect::<Vec<_>>(), "the restarted member kept its one review vote");
    let node3 = devnet.node(3).get("/v1/status").1["node"]["name"].clone();
    assert_eq!(node3, "node-3");
    // Its signature of that same report reaches the others.
    devnet.node(0).wait_for(&path, Duration::from_secs(30), |v| {
        let signers = v["final_report"]["signatures"].as_array().cloned().unwrap_or_default();
        signers.iter().any(|s| s["member"] == node3)
    });
    assert_eq!(chain.publications(spec.id()).len(), 1, "published once");
}
