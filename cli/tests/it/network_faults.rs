//! Real network faults (issue 17): every `fixd` node, anvil and the replay venues run in network
//! namespaces of their own on one bridge (`fixd_testkit::netns`), and links between them are
//! cut and made to lose packets with nftables. These tests need root, `ip`, `tc` and `nft`
//! (scripts/install-tools.sh); without them they fail and say why. Delay and reordering
//! (`NetLab::netem`, `tc netem`) need a kernel with CONFIG_NET_SCH_NETEM, which this project's
//! machine lacks: no test here relies on them.

use std::time::{Duration, Instant};

use fixd_proto::types::settlement::SettlementSpec;
use fixd_testkit::netns::{Host, LabDevnet, NetLab};
use serde_json::Value;

use crate::harness::{Scheduled, short_maturity, short_protocol};

/// How long round `round` lasts when nothing happens, with `round_timeout_secs` = `t`: the
/// propose, prevote and precommit timeouts (t/2, t/4, t/4), each growing by t/4 a round
/// (`fixd_decision::tendermint::Timeouts`).
fn round_length(t: Duration, round: u32) -> Duration {
    t + (t * 3 / 4) * round
}

/// A four-member lab devnet on anvil for a settlement whose short window closes 20 s from now.
fn lab_devnet() -> (SettlementSpec, LabDevnet) {
    lab_devnet_of(4)
}

/// [`lab_devnet`] with `n` members.
fn lab_devnet_of(n: usize) -> (SettlementSpec, LabDevnet) {
    let (clock, spec) = short_maturity();
    let settlements = [Scheduled { maturity: spec.maturity, params: spec.params }];
    let devnet = LabDevnet::prepare(n, clock, &settlements, &short_protocol())
        .unwrap_or_else(|e| panic!("cannot make the network lab: {e}"));
    (spec, devnet)
}

/// Starts every member and waits until each is connected to all the others, so that later
/// cuts sever links in use, not links never made.
fn start_connected(devnet: &mut LabDevnet) {
    let n = devnet.members.len();
    for i in 0..n {
        devnet.start_node(i);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for i in 0..n {
        while member_peers(devnet, i) < n - 1 {
            assert!(Instant::now() < deadline, "node-{i} did not connect to the other members");
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// Waits until `spec`'s observations are due, plus `after`.
fn until_observations_due(spec: &SettlementSpec, after: Duration) {
    let due = Duration::from_secs(spec.maturity + spec.params.grace_secs) + after;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    std::thread::sleep(due.saturating_sub(now));
}

/// The highest round node `i` has signed a proposal or vote in (0 before any).
fn signed_round(devnet: &LabDevnet, i: usize, spec: &SettlementSpec) -> u32 {
    let (_, view) = devnet.node(i).get(&format!("/v1/settlements/{}", spec.id()));
    let signed = view["signed"].as_array().cloned().unwrap_or_default();
    let in_rounds = signed.iter().filter(|r| r["kind"] != "observation" && r["decision"] == "value");
    in_rounds.filter_map(|r| r["round"].as_u64()).max().map_or(0, |r| r as u32)
}

/// The member that leads round 0 of `spec`.
fn round_zero_leader(devnet: &LabDevnet, spec: &SettlementSpec) -> usize {
    let genesis = fixd_node::genesis::load(&devnet.genesis_and_keys(0).0).unwrap();
    genesis.committee().leader(&spec.id(), 0)
}

fn certified(v: &Value) -> bool {
    v["status"] == "certified" || v["status"] == "published"
}

/// Waits until every running node shows `spec` certified, and checks they show one value.
fn all_certify_one_value(devnet: &LabDevnet, spec: &SettlementSpec, timeout: Duration) -> Value {
    let path = format!("/v1/settlements/{}", spec.id());
    let views: Vec<Value> = devnet.running().map(|n| n.wait_for(&path, timeout, certified)).collect();
    for (i, v) in views.iter().enumerate() {
        assert_eq!(v["value"], views[0]["value"], "member {i} certified the same value");
    }
    views[0].clone()
}

/// The members node `i` is connected to, from its status.
fn member_peers(devnet: &LabDevnet, i: usize) -> usize {
    let (_, status) = devnet.node(i).get("/v1/status");
    status["peers"].as_array().map_or(0, |peers| peers.iter().filter(|p| p["member"].is_string()).count())
}

/// The lab's own faults, without `fixd`: a probe connection between hosts shows that a cut
/// drops both ways and touches no other link, that a partition cuts exactly between its
/// sides, that 100% loss drops everything, and that every heal restores the link.
#[test]
fn the_lab_cuts_partitions_and_heals_links_both_ways() {
    let mut lab = NetLab::new().unwrap_or_else(|e| panic!("cannot make the network lab: {e}"));
    let [a, b, c] = ["a", "b", "c"].map(|name| lab.add_host(name).unwrap_or_else(|e| panic!("{e}")));
    let _listeners: Vec<_> = [a, b, c].iter().map(|&h| lab.listen(h, 7000).unwrap()).collect();
    let reaches = |from: Host, to: Host| lab.connect(from, to, 7000, Duration::from_millis(600)).is_ok();
    let links = || [(a, b), (b, a), (a, c), (c, a), (b, c), (c, b)].map(|(x, y)| reaches(x, y));
    assert_eq!(links(), [true; 6], "a fresh lab connects every host");

    lab.cut(a, b).unwrap();
    assert_eq!(links(), [false, false, true, true, true, true], "a cut drops a-b both ways, nothing else");
    assert_eq!(lab.cuts(), vec![(a, b)]);
    lab.heal(a, b).unwrap();
    assert_eq!(links(), [true; 6], "healed");

    lab.partition(&[&[a], &[b, c]]).unwrap();
    assert_eq!(links(), [false, false, false, false, true, true], "a alone, b and c together");
    lab.heal_all().unwrap();
    assert_eq!(links(), [true; 6], "all healed");
    assert!(lab.cuts().is_empty());

    lab.isolate(c).unwrap();
    assert_eq!(links(), [true, true, false, false, false, false], "c isolated");
    lab.heal_all().unwrap();

    lab.packet_loss(a, 100).unwrap();
    assert!(!reaches(a, b) && !reaches(c, a), "a drops every packet it sends or receives");
    lab.packet_loss(a, 0).unwrap();
    assert_eq!(links(), [true; 6], "loss cleared");
}

/// A member cut off from every other host (members, anvil, venues) from before maturity until
/// after the others certify does not block them: three of four are a quorum. While cut off it
/// certifies nothing; once healed it catches up to the same certificate.
#[test]
fn a_member_cut_off_during_the_proposal_does_not_block_the_others_and_catches_up() {
    let (spec, mut devnet) = lab_devnet();
    let cut_off = (round_zero_leader(&devnet, &spec) + 1) % 4;
    for i in 0..4 {
        devnet.start_node(i);
    }
    // Live connections first, so that the cut severs links in use, not links never made.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while member_peers(&devnet, cut_off) < 3 {
        assert!(std::time::Instant::now() < deadline, "node-{cut_off} did not connect to the other members");
        std::thread::sleep(Duration::from_millis(250));
    }
    devnet.lab.isolate(devnet.members[cut_off]).unwrap();
    println!("node-{cut_off} cut off from every host before maturity");

    let path = format!("/v1/settlements/{}", spec.id());
    let others: Vec<usize> = (0..4).filter(|&i| i != cut_off).collect();
    let views: Vec<Value> =
        others.iter().map(|&i| devnet.node(i).wait_for(&path, Duration::from_secs(150), certified)).collect();
    for v in &views {
        assert_eq!(v["value"], views[0]["value"], "the three certify one value");
    }
    let (_, alone) = devnet.node(cut_off).get(&path);
    assert!(!certified(&alone), "node-{cut_off} cannot certify while cut off: {alone}");
    println!(
        "the other three certified {}; node-{cut_off} waits: {}",
        views[0]["value"], alone["waiting_for"]
    );

    devnet.lab.heal_all().unwrap();
    let caught_up = devnet.node(cut_off).wait_for(&path, Duration::from_secs(60), certified);
    assert_eq!(caught_up["value"], views[0]["value"], "the same value after the heal");
    assert_eq!(
        caught_up["certificate"]["proposal"], views[0]["certificate"]["proposal"],
        "the same certified proposal"
    );
}

/// 20% of the round-0 leader's packets dropped each way (nftables): all four certify one value.
#[test]
fn a_leader_losing_a_fifth_of_its_packets_still_certifies() {
    let (spec, mut devnet) = lab_devnet();
    let leader = round_zero_leader(&devnet, &spec);
    devnet.lab.packet_loss(devnet.members[leader], 20).unwrap_or_else(|e| panic!("{e}"));
    for i in 0..4 {
        devnet.start_node(i);
    }
    let v = all_certify_one_value(&devnet, &spec, Duration::from_secs(150));
    println!(
        "with 20% loss on leader node-{leader}, certified {} in round {}",
        v["value"], v["certificate"]["proposal"]["payload"]["round"]
    );
}

/// Seven members split 4 / 3 from before the observations are due until two rounds have timed
/// out. Neither side holds a quorum (5 of 7): the side of three certifies nothing (nor does the
/// side of four). Healed, all seven certify one value within two round timeouts of the heal
/// (of the round they had reached).
#[test]
fn a_four_three_split_during_the_proposal_certifies_nothing_on_the_side_of_three_and_all_certify_soon_after_the_heal()
 {
    let (spec, mut devnet) = lab_devnet_of(7);
    let leader = round_zero_leader(&devnet, &spec);
    start_connected(&mut devnet);
    // The round-0 leader on the side of four, so that a proposal is made and cannot reach five.
    let four: Vec<usize> = (0..4).map(|k| (leader + k) % 7).collect();
    let three: Vec<usize> = (0..7).filter(|i| !four.contains(i)).collect();
    let due = spec.maturity + spec.params.grace_secs;
    assert!(crate::harness::now() < due, "the members connected only after the observations were due");
    devnet.partition_members(&[four.clone(), three.clone()]).unwrap();
    println!("split {four:?} / {three:?} before the observations are due");

    let t = Duration::from_secs(short_protocol().round_timeout_secs);
    until_observations_due(&spec, round_length(t, 0) + round_length(t, 1) + Duration::from_secs(1));
    let path = format!("/v1/settlements/{}", spec.id());
    for i in 0..7 {
        let (_, v) = devnet.node(i).get(&path);
        assert!(!certified(&v), "node-{i} certified without a quorum: {v}");
    }
    let round = (0..7).map(|i| signed_round(&devnet, i, &spec)).max().unwrap();
    devnet.lab.heal_all().unwrap();
    let healed = Instant::now();
    println!("nothing certified on either side; healed in round {round}");

    let v = all_certify_one_value(&devnet, &spec, Duration::from_secs(120));
    let took = healed.elapsed();
    let bound = round_length(t, round) * 2;
    println!(
        "all seven certified {} in round {} {took:?} after the heal (bound: two rounds of {:?})",
        v["value"],
        v["certificate"]["round"],
        round_length(t, round)
    );
    assert!(took <= bound, "certified {took:?} after the heal, beyond two round timeouts ({bound:?})");
}

/// The round-0 leader is cut off from every host the moment its store shows its proposal. The
/// other three (a quorum of four) certify one value without it, whether or not its proposal got
/// out; healed, it holds the same certificate (on loopback the votes may reach it before the
/// cut, which takes the test some milliseconds), and the value is published once.
#[test]
fn the_leader_isolated_right_after_it_proposes_does_not_stop_the_others_and_catches_up() {
    let (spec, mut devnet) = lab_devnet();
    let leader = round_zero_leader(&devnet, &spec);
    start_connected(&mut devnet);
    let path = format!("/v1/settlements/{}", spec.id());
    let proposed = |v: &Value| {
        v["signed"].as_array().is_some_and(|s| s.iter().any(|r| r["kind"] == "proposal" && r["round"] == 0))
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, v) = devnet.node(leader).get(&path);
        if proposed(&v) {
            break;
        }
        assert!(Instant::now() < deadline, "node-{leader} never proposed: {v}");
        std::thread::sleep(Duration::from_millis(20));
    }
    devnet.lab.isolate(devnet.members[leader]).unwrap();
    println!("node-{leader} isolated right after it proposed");

    let others: Vec<usize> = (0..4).filter(|&i| i != leader).collect();
    let views: Vec<Value> =
        others.iter().map(|&i| devnet.node(i).wait_for(&path, Duration::from_secs(120), certified)).collect();
    for v in &views {
        assert_eq!(v["certificate"]["proposal"], views[0]["certificate"]["proposal"], "one certificate");
    }
    let (_, alone) = devnet.node(leader).get(&path);
    if certified(&alone) {
        assert_eq!(alone["certificate"]["proposal"], views[0]["certificate"]["proposal"], "one certificate");
    }
    let proposal = &views[0]["certificate"]["proposal"]["payload"];
    println!(
        "the other three certified {} (round {} proposal); node-{leader} while cut off: {}",
        views[0]["value"], proposal["round"], alone["status"]
    );

    devnet.lab.heal_all().unwrap();
    let caught_up = devnet.node(leader).wait_for(&path, Duration::from_secs(60), certified);
    assert_eq!(
        caught_up["certificate"]["proposal"], views[0]["certificate"]["proposal"],
        "the same certificate"
    );
    let published: Vec<Value> = (0..4)
        .map(|i| devnet.node(i).wait_for(&path, Duration::from_secs(120), |v| v["status"] == "published"))
        .collect();
    assert!(published.iter().all(|v| v["value"] == views[0]["value"]), "one value published");
    assert_eq!(devnet.chain.publications(spec.id()).len(), 1, "published once");
}

/// anvil is cut off from the first publisher only, from certification on. Its turn passes
/// without a publication; the next member publishes, once; healed, the first publisher sees
/// that publication and sends none of its own.
#[test]
fn anvil_unreachable_from_the_publisher_only_is_published_by_the_next_member_once() {
    let (spec, mut devnet) = lab_devnet();
    start_connected(&mut devnet);
    let path = format!("/v1/settlements/{}", spec.id());
    let certified_view = devnet.node(0).wait_for(&path, Duration::from_secs(120), certified);
    let genesis = fixd_node::genesis::load(&devnet.genesis_and_keys(0).0).unwrap();
    let round = certified_view["certificate"]["round"].as_u64().expect("the certificate's round") as u32;
    let publisher = genesis.committee().leader(&spec.id(), round);
    devnet.lab.cut(devnet.members[publisher], devnet.anvil).unwrap();
    println!("anvil cut off from node-{publisher}, the first publisher (round {round} leader)");

    let next = (publisher + 1) % 4;
    let others: Vec<usize> = (0..4).filter(|&i| i != publisher).collect();
    let views: Vec<Value> = others
        .iter()
        .map(|&i| devnet.node(i).wait_for(&path, Duration::from_secs(150), |v| v["status"] == "published"))
        .collect();
    let by = views[0]["publication"]["publisher"].as_str().unwrap().to_lowercase();
    assert_eq!(by, genesis.members[next].eth_address.to_string().to_lowercase(), "node-{next} published");
    let (_, cut) = devnet.node(publisher).get(&path);
    assert_ne!(cut["status"], "published", "node-{publisher} cannot see the chain: {cut}");

    devnet.lab.heal(devnet.members[publisher], devnet.anvil).unwrap();
    let seen =
        devnet.node(publisher).wait_for(&path, Duration::from_secs(60), |v| v["status"] == "published");
    assert_eq!(seen["value"], views[0]["value"]);
    // Its own turn is long over and the chain holds the report: it sends nothing.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(devnet.chain.publications(spec.id()).len(), 1, "published once");
    println!("node-{next} published; node-{publisher} saw it after the heal and sent nothing");
}
