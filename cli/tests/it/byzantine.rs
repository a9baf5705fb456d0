//! Byzantine members as real processes (issue 17): four `fixd` nodes on a real anvil, one of
//! them started with `fixd run --byzantine <strategy>` (the round-0 leader, so that it does the
//! most harm). For each strategy the honest three certify and publish one value, inside the
//! range of their own observations, exactly once; no honest member signed two different
//! messages for one slot (read from every store after the run); and the fault was seen (its
//! log line, and what the honest stores hold).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use alloy::primitives::{B256, U256};
use fixd_node::store::{SledStore, Store};
use fixd_proto::gossip::GossipMessage;
use fixd_proto::signing::PublicKey;
use fixd_proto::types::certificate::DecisionId;
use fixd_proto::types::genesis::{Genesis, ProtocolParams};
use fixd_proto::types::observation::NodeValue;
use fixd_proto::types::settlement::SettlementSpec;
use fixd_proto::value::Wad;
use serde_json::Value;

use crate::harness::{Devnet, Scheduled, short_maturity, short_protocol};

const N: usize = 4;

/// What a finished run left: the settlement, the stopped devnet and every member's store.
struct Run {
    spec: SettlementSpec,
    genesis: Genesis,
    /// The committee's size.
    n: usize,
    /// The first faulty member (the round-0 leader).
    byzantine: usize,
    /// Every faulty member: the leaders of rounds 0, 1, ... (or the next member free).
    faulty: Vec<usize>,
    /// The value on chain.
    published: Wad,
    /// The names of the final report's signers, as the first honest member shows them.
    report_signers: Vec<String>,
    /// Every member's store, in member order, opened once all were stopped.
    stores: Vec<SledStore>,
    /// Holds the directories the stores live in.
    _devnet: Devnet,
}

impl Run {
    fn byzantine_key(&self) -> PublicKey {
        self.genesis.members[self.byzantine].ed25519
    }

    fn honest(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.n).filter(|i| !self.faulty.contains(i))
    }

    /// The Byzantine member's messages of one kind that honest member `i` holds.
    fn held_from_byzantine(&self, i: usize) -> Vec<GossipMessage> {
        self.held_from(self.byzantine, i)
    }

    /// Faulty member `faulty`'s messages of one kind that honest member `i` holds.
    fn held_from(&self, faulty: usize, i: usize) -> Vec<GossipMessage> {
        let id = self.spec.id();
        let store = &self.stores[i];
        let me = self.genesis.members[faulty].ed25519;
        let votes = store.votes(&id).unwrap().into_iter().map(GossipMessage::Vote);
        let reports = store.report_signatures(&id).unwrap().into_iter().map(GossipMessage::ReportSignature);
        let proposals = store.proposals(&id).unwrap().into_iter().map(GossipMessage::proposal);
        votes.chain(reports).chain(proposals).filter(|m| *m.signer() == me).collect()
    }
}

/// Runs a settlement with the round-0 leader started with `fixd run --byzantine <args>`, the
/// others honest; returns once it is published and every member is stopped.
fn run(byzantine_args: &[&str], wait_for: &str) -> Run {
    run_with(&short_protocol(), byzantine_args, |_, _, _| Vec::new(), wait_for)
}

/// [`run_committee`] of [`N`] members, one of them faulty.
fn run_with(
    params: &ProtocolParams,
    byzantine_args: &[&str],
    during: impl FnOnce(&mut Devnet, &SettlementSpec, usize) -> Vec<usize>,
    wait_for: &str,
) -> Run {
    run_committee(N, &[byzantine_args], params, during, wait_for)
}

/// Runs a settlement with `n` members, faulty member k (the leader of round k, or the next
/// member free) started with `fixd run --byzantine <faulty[k]>`, with protocol `params`;
/// `during` is called once every node is started (with the devnet, the settlement and the
/// first faulty member's index), before waiting for `wait_for` in that member's log, and
/// returns the honest members it stopped, which are not waited for.
fn run_committee(
    n: usize,
    faulty_args: &[&[&str]],
    params: &ProtocolParams,
    during: impl FnOnce(&mut Devnet, &SettlementSpec, usize) -> Vec<usize>,
    wait_for: &str,
) -> Run {
    let (clock, spec) = short_maturity();
    let settlements = [Scheduled { maturity: spec.maturity, params: spec.params }];
    let mut devnet = Devnet::prepare_on_chain(n, clock, &settlements, params);
    let genesis = fixd_node::genesis::load(&devnet.genesis_and_keys(0).0).unwrap();
    let mut faulty: Vec<usize> = Vec::new();
    for round in 0..faulty_args.len() {
        let mut member = genesis.committee().leader(&spec.id(), round as u32);
        while faulty.contains(&member) {
            member = (member + 1) % n;
        }
        faulty.push(member);
    }
    for i in 0..n {
        match faulty.iter().position(|&f| f == i) {
            Some(k) => {
                let mut args = vec!["--byzantine"];
                args.extend_from_slice(faulty_args[k]);
                devnet.start_node_with_args(i, &args);
                println!("node-{i} runs --byzantine {}", faulty_args[k].join(" "));
            }
            None => {
                devnet.start_node(i);
            }
        }
    }
    let byzantine = faulty[0];
    let down = during(&mut devnet, &spec, byzantine);
    let line = devnet.node(byzantine).proc.wait_for_line(wait_for, Duration::from_secs(200));
    println!("node-{byzantine}: {line}");

    let path = format!("/v1/settlements/{}", spec.id());
    let views: Vec<Value> = (0..n)
        .filter(|&i| !faulty.contains(&i) && !down.contains(&i))
        .map(|i| devnet.node(i).wait_for(&path, Duration::from_secs(200), |v| v["status"] == "published"))
        .collect();
    let value = views[0]["value"].clone();
    let tx = views[0]["publication"]["tx_hash"].clone();
    for v in &views {
        assert_eq!(v["value"], value, "every honest member certified the same value");
        assert_eq!(v["final_report"]["report"]["value"], value, "the final report carries it");
        assert_eq!(v["publication"]["tx_hash"], tx, "every honest member shows the same transaction");
        assert_eq!(v["publication"]["confirmed"], true, "{}", v["publication"]);
    }
    let published: Wad = serde_json::from_value(value).unwrap();
    let chain = devnet.chain.as_ref().unwrap();
    let (on_chain, _, status) = chain.get_settlement(spec.id());
    assert_eq!((on_chain, status), (U256::from(published.raw()), 1), "getSettlement returns the value");
    let logs = chain.publications(spec.id());
    assert_eq!(logs.len(), 1, "exactly one publication on chain: {logs:?}");
    let report_signers = views[0]["final_report"]["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["member"].as_str().unwrap_or_default().to_owned())
        .collect();
    for i in 0..n {
        devnet.stop_node(i);
    }
    let stores = (0..n)
        .map(|i| SledStore::open(&devnet.genesis_and_keys(i).1.join("data").join("store")).unwrap())
        .collect();
    let run = Run { spec, genesis, n, byzantine, faulty, published, report_signers, stores, _devnet: devnet };
    check_honest(&run);
    println!("published {published} in {tx}; the honest members stayed safe");
    run
}

/// What every run must show, whatever the strategy: the value lies in the range of the honest
/// members' observations; no honest member signed two different messages for one slot (in
/// any store); equivocation evidence names only the Byzantine member.
fn check_honest(run: &Run) {
    let id = run.spec.id();
    let honest: BTreeSet<PublicKey> = run.honest().map(|i| run.genesis.members[i].ed25519).collect();
    // Each honest member's value, from whichever store holds its observation.
    let values: BTreeMap<PublicKey, Wad> = run
        .stores
        .iter()
        .flat_map(|store| store.observations(&id).unwrap())
        .filter(|o| honest.contains(&o.signer))
        .filter_map(|o| match o.payload.computation.value {
            NodeValue::Value(v) => Some((o.signer, v)),
            NodeValue::NoValue(_) => None,
        })
        .collect();
    assert!(values.len() >= 2, "the honest observations: {values:?}");
    let (low, high) = (values.values().min().unwrap(), values.values().max().unwrap());
    assert!(
        *low <= run.published && run.published <= *high,
        "published {} outside the honest range [{low}, {high}]",
        run.published
    );
    // Every message an honest member signed, as any store holds it, by slot.
    let mut slots: BTreeMap<String, BTreeSet<B256>> = BTreeMap::new();
    for store in &run.stores {
        let observations = store.observations(&id).unwrap().into_iter().map(GossipMessage::Observation);
        let proposals = store.proposals(&id).unwrap().into_iter().map(GossipMessage::proposal);
        let votes = store.votes(&id).unwrap().into_iter().map(GossipMessage::Vote);
        let reports = store.report_signatures(&id).unwrap().into_iter().map(GossipMessage::ReportSignature);
        for m in observations.chain(proposals).chain(votes).chain(reports) {
            if honest.contains(m.signer()) {
                let slot = format!(
                    "{:?} {:?} {:?} {} {:?}",
                    m.signer(),
                    m.kind(),
                    m.decision(),
                    m.round(),
                    m.step()
                );
                slots.entry(slot).or_default().insert(m.hash());
            }
        }
    }
    for (slot, hashes) in &slots {
        assert_eq!(
            hashes.len(),
            1,
            "an honest member signed {} different messages for slot {slot}",
            hashes.len()
        );
    }
    for i in run.honest() {
        for evidence in run.stores[i].equivocations(&id).unwrap() {
            assert!(
                !honest.contains(evidence.signer()),
                "node-{i} holds equivocation evidence against an honest member: {evidence:?}"
            );
        }
    }
    println!("{} honest slots, one message each; value in [{low}, {high}]", slots.len());
}

#[test]
fn an_equivocating_member_is_caught_and_the_honest_value_is_published() {
    let run = run(&["equivocate"], "byzantine equivocate: gossiping a second");
    let network_id = run.genesis.network_id();
    let mut caught = 0;
    for i in run.honest() {
        for evidence in run.stores[i].equivocations(&run.spec.id()).unwrap() {
            evidence.check(&network_id).expect("the evidence verifies on its own");
            println!("node-{i} holds evidence: {:?} round {}", evidence.kind(), evidence.round());
            caught += 1;
        }
    }
    assert!(caught >= 1, "no honest member kept evidence of the equivocation");
}

#[test]
fn a_member_withholding_its_votes_and_report_signature_does_not_stop_publication() {
    let run = run(&["withhold"], "byzantine withhold: signing votes");
    for i in run.honest() {
        let held = run.held_from_byzantine(i);
        let sent: Vec<_> = held
            .iter()
            .filter(|m| matches!(m, GossipMessage::Vote(_) | GossipMessage::ReportSignature(_)))
            .collect();
        assert!(sent.is_empty(), "node-{i} holds what the withholder never sent: {sent:?}");
    }
    // It did sign them: its own store holds its votes.
    let id = run.spec.id();
    let own = run.stores[run.byzantine].votes(&id).unwrap();
    assert!(own.iter().any(|v| v.signer == run.byzantine_key()), "the withholder signed no vote");
    let name = &run.genesis.members[run.byzantine].name;
    assert!(!run.report_signers.contains(name), "the report carries the withholder's signature");
}

#[test]
fn a_member_showing_its_votes_to_one_member_only_does_not_stop_publication() {
    let run = run(&["partial"], "byzantine partial: gossiping no votes");
    let shown = (run.byzantine + 1) % N;
    let votes = |i: usize| -> BTreeSet<B256> {
        run.held_from_byzantine(i)
            .iter()
            .filter(|m| matches!(m, GossipMessage::Vote(_)))
            .map(|m| m.hash())
            .collect()
    };
    // A vote the others hold came from the shown member's store (its catch-up answers), never
    // from the Byzantine member itself.
    for i in run.honest().filter(|&i| i != shown) {
        let extra: Vec<_> = votes(i).difference(&votes(shown)).copied().collect();
        assert!(extra.is_empty(), "node-{i} holds votes the shown member never had: {extra:?}");
    }
    println!("node-{shown}, the one member shown its votes, holds {} of them", votes(shown).len());
}

/// With one honest member down, the quorum needs the Byzantine member's votes, which it shows
/// only to one member: they reach the others through that member's store (catch-up), and the
/// value is certified with them and published.
#[test]
fn a_member_showing_its_votes_to_one_member_only_is_caught_up_through_that_member() {
    let mut stopped = 0;
    let stop_one = |devnet: &mut Devnet, _: &SettlementSpec, byzantine: usize| {
        stopped = (byzantine + 2) % N;
        devnet.stop_node(stopped);
        println!("node-{stopped} stopped: the quorum needs node-{byzantine}'s votes");
        vec![stopped]
    };
    let run = run_with(&short_protocol(), &["partial"], stop_one, "byzantine partial: gossiping no votes");
    let shown = (run.byzantine + 1) % N;
    let votes =
        |i: usize| run.held_from_byzantine(i).iter().filter(|m| matches!(m, GossipMessage::Vote(_))).count();
    println!("node-{shown} (shown) holds {} of its votes; the others {:?}", votes(shown), {
        run.honest().map(|i| (i, votes(i))).collect::<Vec<_>>()
    });
    assert!(votes(shown) > 0, "node-{shown} was shown no vote");
    let certificate = run.stores[shown].certificate(&run.spec.id()).unwrap().unwrap();
    assert!(
        certificate.votes.iter().any(|e| e.signer == run.byzantine_key()),
        "the certificate holds no precommit of node-{}",
        run.byzantine
    );
    assert!(stopped != run.byzantine && stopped != shown);
}

#[test]
fn a_leader_proposing_a_wrong_value_is_refused_and_the_median_is_published() {
    let run = run(&["wrong-value"], "byzantine wrong-value: proposing");
    // The candidates it built for the value (not a report's, nor another leader's re-proposed).
    let wrong: Vec<Wad> = run
        .honest()
        .flat_map(|i| run.held_from_byzantine(i))
        .filter_map(|m| match m {
            GossipMessage::Proposal(p)
                if p.payload.decision() == DecisionId::Value
                    && p.payload.proposal.signer == run.byzantine_key() =>
            {
                Some(p.payload.proposal.payload.value)
            }
            _ => None,
        })
        .collect();
    assert!(!wrong.is_empty(), "no honest member received the wrong proposal");
    assert!(wrong.iter().all(|v| *v != run.published), "the wrong value {wrong:?} was published");
    let certificate = run.stores[run.honest().next().unwrap()].certificate(&run.spec.id()).unwrap().unwrap();
    assert_ne!(certificate.proposal.signer, run.byzantine_key(), "the certified proposal is the liar's");
    println!("refused {wrong:?}; certified in round {}", certificate.round);
}

#[test]
fn a_member_flooding_far_future_rounds_does_not_stop_publication() {
    use fixd_decision::consensus::max_held_per_member;
    let run = run(&["flood"], "byzantine flood: flooding");
    let id = run.spec.id();
    for i in run.honest() {
        let votes = run.stores[i].votes(&id).unwrap();
        let flooded = votes.iter().filter(|v| v.signer == run.byzantine_key()).count() as u64;
        let honest_round = votes
            .iter()
            .filter(|v| v.signer != run.byzantine_key())
            .map(|v| v.payload.round)
            .max()
            .unwrap_or(0);
        let bound = max_held_per_member(honest_round);
        assert!(flooded <= bound, "node-{i} holds {flooded} of the flooder's votes, over the bound {bound}");
    }
}

#[test]
fn a_member_signing_reports_for_another_value_is_not_counted() {
    let run = run(&["foreign-reports"], "byzantine foreign-reports: signing a report of");
    let name = &run.genesis.members[run.byzantine].name;
    assert!(!run.report_signers.contains(name), "the published report carries the foreign signature");
    let foreign: Vec<Wad> = run
        .honest()
        .flat_map(|i| run.held_from_byzantine(i))
        .filter_map(|m| match m {
            GossipMessage::ReportSignature(s) => Some(s.payload.report.value),
            _ => None,
        })
        .collect();
    assert!(!foreign.is_empty(), "no honest member received the foreign report signature");
    assert!(
        foreign.iter().all(|v| *v != run.published),
        "a signature of the decided report leaked: {foreign:?}"
    );
    println!("the honest members hold the foreign signatures {foreign:?} and published {}", run.published);
}

#[test]
fn a_member_releasing_disputes_late_has_them_held_as_late_and_the_value_is_published() {
    // A 45 s challenge window: room to file a dispute with the Byzantine member, and for its
    // release LATE_RELEASE later, before the window closes.
    let params = ProtocolParams { challenge_period_secs: 45, max_clock_skew_secs: 5, ..short_protocol() };
    let file_dispute = |devnet: &mut Devnet, spec: &SettlementSpec, byzantine: usize| {
        let node = devnet.node(byzantine);
        let path = format!("/v1/settlements/{}", spec.id());
        node.wait_for(&path, Duration::from_secs(200), |v| v["status"] == "certified");
        let chain = devnet.chain.as_ref().unwrap();
        let disputer = chain.funded_key(0x17, 10u128.pow(19));
        let out = crate::harness::fixd()
            .args(["dispute", "submit", "--json", "--api", &node.api, "--rpc-url", &chain.rpc])
            .args(["--settlement", &spec.id().to_string(), "--reason", "bad_data"])
            .env("FIXD_ETH_KEY", hex::encode(disputer.to_bytes()))
            .output()
            .unwrap();
        let printed = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "fixd dispute submit: {printed}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        println!("filed with node-{byzantine}: {printed}");
        Vec::new()
    };
    let run = run_with(&params, &["late-disputes"], file_dispute, "byzantine late-disputes: holding");
    let id = run.spec.id();
    for i in run.honest() {
        let late = run.stores[i].late_relays(&id).unwrap();
        let disputes = run.stores[i].disputes(&id).unwrap();
        println!("node-{i}: {} relays, {} held as late", disputes.len(), late.len());
        assert!(!late.is_empty(), "node-{i} did not hold the late relay as late");
        assert!(disputes.iter().all(|d| late.contains(&d.hash())), "node-{i} counts a late relay as timely");
    }
    let certificate = run.stores[run.honest().next().unwrap()].certificate(&id).unwrap().unwrap();
    assert_eq!(certificate.proposal.payload.value, run.published, "the certified value stands");
}

/// Seven members, f = 2 faulty, each combining strategies: one equivocates, proposes a wrong
/// value as round-0 leader and signs reports for another value; the other withholds its votes
/// and report signature and floods far-future rounds. The five honest members still publish
/// the honest value once.
#[test]
fn seven_members_with_two_faulty_ones_combining_strategies_publish_the_honest_value() {
    let faulty: &[&[&str]] = &[&["equivocate,wrong-value,foreign-reports"], &["withhold,flood"]];
    let run =
        run_committee(7, faulty, &short_protocol(), |_, _, _| Vec::new(), "byzantine wrong-value: proposing");
    let (liar, withholder) = (run.faulty[0], run.faulty[1]);
    let network_id = run.genesis.network_id();
    let liar_key = run.genesis.members[liar].ed25519;
    let evidence: Vec<_> = run
        .honest()
        .flat_map(|i| run.stores[i].equivocations(&run.spec.id()).unwrap())
        .filter(|e| *e.signer() == liar_key)
        .collect();
    assert!(!evidence.is_empty(), "no honest member kept evidence against node-{liar}");
    assert!(evidence.iter().all(|e| e.check(&network_id).is_ok()));
    for i in run.honest() {
        let sent: Vec<_> = run
            .held_from(withholder, i)
            .into_iter()
            .filter(|m| matches!(m, GossipMessage::Vote(_) | GossipMessage::ReportSignature(_)))
            .collect();
        // Flooded far-future votes are not its votes of the settlement's rounds.
        assert!(
            sent.iter().all(|m| m.round() >= 1_000),
            "node-{i} holds what node-{withholder} withheld: {sent:?}"
        );
    }
    for faulty in [liar, withholder] {
        let name = &run.genesis.members[faulty].name;
        assert!(!run.report_signers.contains(name), "the report carries node-{faulty}'s signature");
    }
    println!("{} pieces of evidence against node-{liar}; node-{withholder} withheld", evidence.len());
}

/// `fixd run --help` documents `--byzantine` in this (the tests') build; an unknown strategy is
/// refused with the list. The release build has no such flag (`cli::the_release_binary_...`).
#[test]
fn fixd_run_documents_byzantine_in_the_test_build_and_refuses_unknown_strategies() {
    let out = crate::harness::fixd().args(["run", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for word in ["--byzantine", "equivocate", "withhold", "foreign-reports", "--byzantine-shows-to"] {
        assert!(help.contains(word), "`fixd run --help` lacks {word}:\n{help}");
    }
    let out = crate::harness::fixd()
        .args(["run", "--config", "/nonexistent.toml", "--byzantine", "lie"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("invalid value 'lie'") && err.contains("equivocate"), "{err}");
}

/// Sixteen settlements maturing in the same second, and a member that signs every batch with each
/// report 1% off (and every report likewise): the honest members never count its batch
/// signatures (they sign only batches of the reports they signed themselves), publish every
/// settlement once with the value they agree on, and still batch (fewer transactions than
/// settlements).
#[test]
fn a_member_signing_batches_of_other_values_leaves_every_settlement_published_alike_in_batches() {
    let (clock, first) = short_maturity();
    let specs: Vec<SettlementSpec> = (0..16u32)
        .map(|k| SettlementSpec {
            params: fixd_proto::types::settlement::MethodologyParams {
                max_venue_deviation_bp: first.params.max_venue_deviation_bp + k,
                ..first.params
            },
            ..first.clone()
        })
        .collect();
    let scheduled: Vec<Scheduled> =
        specs.iter().map(|s| Scheduled { maturity: s.maturity, params: s.params }).collect();
    let mut devnet = Devnet::prepare_on_chain(N, clock, &scheduled, &short_protocol());
    let byzantine = 0;
    devnet.start_node_with_args(byzantine, &["--byzantine", "foreign-reports"]);
    for i in 1..N {
        devnet.start_node(i);
    }
    let line = devnet
        .node(byzantine)
        .proc
        .wait_for_line("byzantine foreign-reports: signing a batch of", Duration::from_secs(200));
    println!("node-{byzantine}: {line}");
    let chain = devnet.chain.as_ref().unwrap();
    let mut transactions = BTreeSet::new();
    for spec in &specs {
        let path = format!("/v1/settlements/{}", spec.id());
        let views: Vec<Value> = (1..N)
            .map(|i| devnet.node(i).wait_for(&path, Duration::from_secs(200), |v| v["status"] == "published"))
            .collect();
        for v in &views {
            assert_eq!(v["value"], views[0]["value"], "one value on every honest member");
            assert_eq!(v["publication"]["tx_hash"], views[0]["publication"]["tx_hash"]);
        }
        let value: Wad = serde_json::from_value(views[0]["value"].clone()).unwrap();
        let (on_chain, _, status) = chain.get_settlement(spec.id());
        assert_eq!((on_chain, status), (U256::from(value.raw()), 1), "the contract holds the agreed value");
        let logs = chain.publications(spec.id());
        assert_eq!(logs.len(), 1, "published once: {logs:?}");
        transactions.extend(logs);
    }
    println!("{} settlements published in {} transactions", specs.len(), transactions.len());
    assert!(transactions.len() < specs.len(), "no batch: {} transactions", transactions.len());
}
