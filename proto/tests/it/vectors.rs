//! Test vectors under `proto/tests/vectors/`: each file is rebuilt here from fixed inputs and must
//! match the committed file byte for byte, and each committed vector is then checked the way a
//! client in another language would check it (decode, re-encode, verify, recompute).
//!
//! After an intended change of encoding, regenerate with
//! `FIXD_UPDATE_VECTORS=1 cargo nextest run -p fixd-proto vectors` and review the diff.

use std::path::PathBuf;

use alloy_primitives::{Address, B256, hex};
use alloy_signer_local::PrivateKeySigner;
use ed25519_dalek::SigningKey;
use fixd_proto::eip712::{self, EthSignature, TypedData};
use fixd_proto::encoding::{from_bcs, to_bcs};
use fixd_proto::signing::{Signable, Signed, signing_bytes};
use fixd_proto::types::certificate::{DecisionId, Proposal, ProposalSource, RoundProposal, Vote, VoteStep};
use fixd_proto::types::dispute::{ArbitratorRuling, Dispute, DisputeReason, ReviewVote};
use fixd_proto::types::genesis::{Genesis, Member, ProtocolParams};
use fixd_proto::types::observation::{
    Computation, Exclusion, NodeValue, Observation, Partition, VenueReport,
};
use fixd_proto::types::report::{BatchSignature, BondOutcome, FinalReport, FinalReportBatch};
use fixd_proto::types::settlement::{Index, MethodologyParams, SettlementSpec};
use fixd_proto::types::venue::Venue;
use fixd_proto::value::Wad;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

/// Compares `value` with the committed file, or writes it when `FIXD_UPDATE_VECTORS=1`.
pub fn pin(file: &str, value: &Value) {
    let path = vectors_dir().join(file);
    let text = serde_json::to_string_pretty(value).unwrap() + "\n";
    if std::env::var("FIXD_UPDATE_VECTORS").as_deref() == Ok("1") {
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run with FIXD_UPDATE_VECTORS=1 to create it", path.display()));
    assert!(
        committed == text,
        "{} differs from what the code produces; if the change is intended, regenerate with \
         FIXD_UPDATE_VECTORS=1 and review the diff",
        path.display()
    );
}

/// Reads a committed vector file.
pub fn load(file: &str) -> Value {
    let path = vectors_dir().join(file);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn w(s: &str) -> Wad {
    Wad::parse(s).unwrap()
}

pub fn hex_of(bytes: impl AsRef<[u8]>) -> String {
    hex::encode_prefixed(bytes)
}

pub fn bytes_of(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("valid hex")
}

fn network_id() -> B256 {
    genesis().network_id()
}

fn ed_key(i: u8) -> SigningKey {
    SigningKey::from_bytes(&[i; 32])
}

fn eth_key(i: u8) -> PrivateKeySigner {
    PrivateKeySigner::from_bytes(&B256::repeat_byte(i)).unwrap()
}

fn spec() -> SettlementSpec {
    SettlementSpec { index: Index::EthUsd, maturity: 1_749_744_000, params: MethodologyParams::default() }
}

fn genesis() -> Genesis {
    Genesis {
        network: "fixd-vectors".into(),
        chain_id: 31337,
        contract: Address::repeat_byte(0xcc),
        contract_block: 0,
        arbitrator: eth_key(0xa0).address(),
        members: (1..=4)
            .map(|i| Member {
                name: format!("node-{i}"),
                ed25519: fixd_proto::signing::PublicKey::of(&ed_key(i)),
                eth_address: eth_key(i).address(),
                listen: vec![format!("/ip4/127.0.0.1/tcp/{}", 9000 + u16::from(i))],
            })
            .collect(),
        params: ProtocolParams::default(),
    }
}

fn observation() -> Observation {
    let mut partitions = vec![Partition::counted(4, w("2601.125")); 12];
    partitions[3] = Partition::not_counted(1);
    partitions[7] = Partition { venues: 2, value: Some(w("2601.5")), two_venue: true };
    Observation {
        settlement_id: spec().id(),
        observed_at: 1_749_744_120,
        computation: Computation {
            partitions,
            venues: vec![
                VenueReport { venue: Venue::Coinbase, trades: 812, excluded: None },
                VenueReport { venue: Venue::Kraken, trades: 433, excluded: None },
                VenueReport {
                    venue: Venue::Bitstamp,
                    trades: 120,
                    excluded: Some(Exclusion::Deviation {
                        venue_median: w("2470"),
                        cross_venue_median: w("2601.5"),
                        deviation_bp: 505,
                    }),
                },
                VenueReport { venue: Venue::Gemini, trades: 301, excluded: None },
            ],
            value: NodeValue::Value(w("2601.125")),
        },
        trade_digest: B256::repeat_byte(0x0d),
    }
}

fn proposal() -> Proposal {
    Proposal {
        settlement_id: spec().id(),
        round: 0,
        value: w("2601.125"),
        source: ProposalSource::Observations,
        inputs: vec![B256::repeat_byte(1), B256::repeat_byte(2), B256::repeat_byte(3)],
        inputs_root: B256::repeat_byte(0x77),
        challenge_deadline: 1_749_751_320,
        proposed_at: 1_749_744_125,
    }
}

/// A precommit of round 1 for a candidate.
fn vote() -> Vote {
    Vote {
        settlement_id: spec().id(),
        decision: DecisionId::Value,
        round: 1,
        step: VoteStep::Precommit,
        proposal_hash: Some(B256::repeat_byte(0x99)),
    }
}

/// A prevote for nothing (nil) in round 2 of a dispute's review.
fn nil_prevote() -> Vote {
    Vote {
        settlement_id: spec().id(),
        decision: DecisionId::Review { dispute_id: B256::repeat_byte(0xd1) },
        round: 2,
        step: VoteStep::Prevote,
        proposal_hash: None,
    }
}

/// Round 1's leader re-proposes round 0's candidate with the prevotes of q members in round 0.
fn round_proposal() -> RoundProposal {
    let proposal = Signed::sign(&ed_key(2), &network_id(), proposal());
    let mut rp = RoundProposal { round: 1, pol_round: Some(0), proposal, polka: vec![] };
    let prevote = rp.polka_prevote().expect("a re-proposal");
    rp.polka = (1..=3).map(|k| fixd_proto::signing::endorse(&ed_key(k), &network_id(), &prevote)).collect();
    rp.polka.sort_by_key(|e| e.signer);
    rp
}

fn review_vote() -> ReviewVote {
    ReviewVote {
        settlement_id: spec().id(),
        dispute_id: B256::repeat_byte(0xd1),
        proposal_hash: B256::repeat_byte(0x99),
        median_recomputes: true,
        value: NodeValue::Value(w("2598.5")),
        trade_digest: B256::repeat_byte(0x0e),
    }
}

fn dispute() -> Dispute {
    Dispute {
        settlement_id: spec().id(),
        dispute_id: B256::repeat_byte(0xd1),
        proposal_hash: B256::repeat_byte(0x99),
        claimed_value: Some(w("2598.5")),
        reason: DisputeReason::BadData,
        evidence: "kraken busted the 15:52 prints".into(),
        bond_wei: 100_000_000_000_000_000,
        bond_tx: B256::repeat_byte(0xbb),
        disputer: eth_key(0xd0).address(),
    }
}

fn final_report() -> FinalReport {
    FinalReport {
        settlement_id: spec().id(),
        value: w("2598.5"),
        round: 1,
        outcomes: vec![BondOutcome {
            dispute_id: B256::repeat_byte(0xd1),
            disputer: eth_key(0xd0).address(),
            bond: 100_000_000_000_000_000,
            refund: 100_000_000_000_000_000,
            reward: 50_000_000_000_000_000,
            pooled: 0,
            burned: 0,
        }],
    }
}

/// Two reports signed at once: the pinned final report, and one with no disputes.
fn final_report_batch() -> FinalReportBatch {
    let plain = FinalReport {
        settlement_id: B256::repeat_byte(0x5e),
        value: w("2601.25"),
        round: 0,
        outcomes: vec![],
    };
    FinalReportBatch { reports: vec![final_report(), plain] }
}

/// A gossiped batch: reports without outcomes, in ascending settlement order.
fn batch_signature() -> BatchSignature {
    let report = |byte: u8, value: &str| FinalReport {
        settlement_id: B256::repeat_byte(byte),
        value: w(value),
        round: 0,
        outcomes: vec![],
    };
    let batch = FinalReportBatch { reports: vec![report(0x5d, "2598.5"), report(0x5e, "2601.25")] };
    assert_eq!(batch.check(), Ok(()));
    let g = genesis();
    let key = eth_key(1);
    let signature = eip712::sign_typed(&key, &eip712::domain(g.chain_id, g.contract), &batch);
    BatchSignature { batch, signer: key.address(), signature }
}

fn ruling() -> ArbitratorRuling {
    ArbitratorRuling {
        settlement_id: spec().id(),
        dispute_id: B256::repeat_byte(0xd1),
        value: w("2598.5"),
        upheld: true,
    }
}

fn signed_vector<T: Signable + Clone>(name: &str, signer: u8, payload: T) -> Value {
    let key = ed_key(signer);
    let signed = Signed::sign(&key, &network_id(), payload.clone());
    json!({
        "type": name,
        "tag": T::TAG,
        "network_id": network_id(),
        "secret_key": hex_of(key.to_bytes()),
        "public_key": signed.signer,
        "payload": payload,
        "payload_bcs": hex_of(to_bcs(&payload)),
        "signing_bytes": hex_of(signing_bytes(&network_id(), &payload)),
        "signature": signed.signature,
        "signed_bcs": hex_of(to_bcs(&signed)),
        "message_hash": signed.hash(),
    })
}

fn typed_vector<T: TypedData + Serialize>(name: &str, signer: u8, data: &T) -> Value {
    use alloy_sol_types::SolStruct;
    let g = genesis();
    let domain = eip712::domain(g.chain_id, g.contract);
    let key = eth_key(signer);
    json!({
        "type": name,
        "encode_type": T::Sol::eip712_encode_type(),
        "type_hash": data.to_sol().eip712_type_hash(),
        "data": data,
        "struct_hash": data.to_sol().eip712_hash_struct(),
        "digest": data.eip712_digest(&domain),
        "private_key": hex_of(B256::repeat_byte(signer)),
        "address": key.address(),
        "signature": eip712::sign_typed(&key, &domain, data),
    })
}

#[test]
fn signed_messages() {
    let vectors = json!({
        "about": "ed25519 signatures over BCS(tag) ‖ network_id ‖ BCS(payload); see README.md",
        "vectors": [
            signed_vector("observation", 1, observation()),
            signed_vector("proposal", 2, proposal()),
            signed_vector("round_proposal", 3, round_proposal()),
            signed_vector("vote", 3, vote()),
            signed_vector("nil_prevote", 3, nil_prevote()),
            signed_vector("review_vote", 4, review_vote()),
            signed_vector("batch_signature", 1, batch_signature()),
        ],
    });
    pin("signed_messages.json", &vectors);
}

/// Checks one committed signed-message vector as an independent client would.
fn check_signed<T: Signable + DeserializeOwned + Serialize + PartialEq + std::fmt::Debug + Clone>(v: &Value) {
    let payload: T = serde_json::from_value(v["payload"].clone()).unwrap();
    let bcs = bytes_of(&v["payload_bcs"]);
    assert_eq!(to_bcs(&payload), bcs, "{}: BCS", v["type"]);
    assert_eq!(from_bcs::<T>(&bcs).unwrap(), payload);
    let net: B256 = serde_json::from_value(v["network_id"].clone()).unwrap();
    assert_eq!(signing_bytes(&net, &payload), bytes_of(&v["signing_bytes"]));
    let signed: Signed<T> = from_bcs(&bytes_of(&v["signed_bcs"])).unwrap();
    assert_eq!(signed.payload, payload);
    assert_eq!(signed.verify(&net), Ok(()), "{}: signature", v["type"]);
    assert_eq!(serde_json::to_value(signed.hash()).unwrap(), v["message_hash"]);
    let secret: [u8; 32] = bytes_of(&v["secret_key"]).try_into().unwrap();
    // ed25519 is deterministic: the same key signs the same bytes the same way.
    assert_eq!(Signed::sign(&SigningKey::from_bytes(&secret), &net, payload), signed);
}

#[test]
fn committed_signed_messages_verify() {
    let file = load("signed_messages.json");
    let vectors = file["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 7);
    for v in vectors {
        match v["type"].as_str().unwrap() {
            "observation" => check_signed::<Observation>(v),
            "proposal" => check_signed::<Proposal>(v),
            "round_proposal" => check_signed::<RoundProposal>(v),
            "vote" | "nil_prevote" => check_signed::<Vote>(v),
            "review_vote" => check_signed::<ReviewVote>(v),
            "batch_signature" => check_signed::<BatchSignature>(v),
            other => panic!("unknown vector type {other}"),
        }
    }
}

#[test]
fn eip712() {
    let g = genesis();
    let domain = eip712::domain(g.chain_id, g.contract);
    let vectors = json!({
        "about": "EIP-712 typed data signed with secp256k1; see README.md",
        "domain": {
            "name": "fixd",
            "version": "1",
            "chain_id": g.chain_id,
            "verifying_contract": g.contract,
            "separator": domain.separator(),
        },
        "vectors": [
            typed_vector("final_report", 1, &final_report()),
            typed_vector("final_report_batch", 1, &final_report_batch()),
            typed_vector("dispute", 0xd0, &dispute()),
            typed_vector("arbitrator_ruling", 0xa0, &ruling()),
        ],
    });
    pin("eip712.json", &vectors);
}

fn check_typed<T: TypedData + DeserializeOwned>(v: &Value, domain: &alloy_sol_types::Eip712Domain) {
    let data: T = serde_json::from_value(v["data"].clone()).unwrap();
    assert_eq!(serde_json::to_value(data.eip712_digest(domain)).unwrap(), v["digest"], "{}", v["type"]);
    let signature: EthSignature = serde_json::from_value(v["signature"].clone()).unwrap();
    let address: Address = serde_json::from_value(v["address"].clone()).unwrap();
    assert_eq!(eip712::verify_typed(domain, &data, &signature, address), Ok(()));
}

#[test]
fn committed_eip712_vectors_recover() {
    let file = load("eip712.json");
    let d = &file["domain"];
    let domain = eip712::domain(
        d["chain_id"].as_u64().unwrap(),
        serde_json::from_value(d["verifying_contract"].clone()).unwrap(),
    );
    assert_eq!(serde_json::to_value(domain.separator()).unwrap(), d["separator"]);
    for v in file["vectors"].as_array().unwrap() {
        match v["type"].as_str().unwrap() {
            "final_report" => check_typed::<FinalReport>(v, &domain),
            "final_report_batch" => check_typed::<FinalReportBatch>(v, &domain),
            "dispute" => check_typed::<Dispute>(v, &domain),
            "arbitrator_ruling" => check_typed::<ArbitratorRuling>(v, &domain),
            other => panic!("unknown vector type {other}"),
        }
    }
}

#[test]
fn identities() {
    let vectors = json!({
        "about": "settlement_id = keccak256(BCS(spec)); network_id = keccak256(BCS(genesis))",
        "settlement": { "spec": spec(), "spec_bcs": hex_of(to_bcs(&spec())), "settlement_id": spec().id() },
        "genesis": {
            "genesis": genesis(),
            "genesis_bcs": hex_of(to_bcs(&genesis())),
            "network_id": genesis().network_id(),
            "n": 4, "f": genesis().committee().f(), "q": genesis().committee().q(),
            "leader_seed": alloy_primitives::keccak256(spec().id()),
            "leaders": (0..8).map(|r| genesis().committee().leader(&spec().id(), r)).collect::<Vec<_>>(),
        },
    });
    pin("identities.json", &vectors);
    let file = load("identities.json");
    let s: SettlementSpec = serde_json::from_value(file["settlement"]["spec"].clone()).unwrap();
    assert_eq!(serde_json::to_value(s.id()).unwrap(), file["settlement"]["settlement_id"]);
    let g: Genesis = serde_json::from_value(file["genesis"]["genesis"].clone()).unwrap();
    assert_eq!(serde_json::to_value(g.network_id()).unwrap(), file["genesis"]["network_id"]);
    // The leader rotation, from the file alone: (u128_be(seed[0..16]) + r) mod n, where seed is
    // keccak256 of the settlement id's 32 bytes.
    let id = bytes_of(&file["settlement"]["settlement_id"]);
    let seed = bytes_of(&file["genesis"]["leader_seed"]);
    assert_eq!(seed, alloy_primitives::keccak256(&id).to_vec());
    let n = g.members.len() as u128;
    let first = u128::from_be_bytes(seed[..16].try_into().unwrap()) % n;
    for (r, leader) in file["genesis"]["leaders"].as_array().unwrap().iter().enumerate() {
        assert_eq!(leader.as_u64().unwrap() as u128, (first + r as u128) % n, "round {r}");
    }
}

#[test]
fn values() {
    let cases = [
        "2434.34",
        "0.000001",
        "0.000000000000000001",
        "1500",
        "007.50",
        "340282366920938463463.374607431768211455",
        "",
        "-1",
        "+1",
        "1e3",
        "1.0000000000000000001",
        "340282366920938463463.374607431768211456",
        " 1",
        ".",
    ];
    let vectors: Vec<Value> = cases
        .iter()
        .map(|c| match Wad::parse(c) {
            Ok(v) => json!({ "input": c, "raw": v.raw().to_string(), "canonical": v.to_string() }),
            Err(e) => json!({ "input": c, "error": format!("{e:?}").split(['(', ' ', '{']).next().unwrap() }),
        })
        .collect();
    pin(
        "values.json",
        &json!({ "about": "Wad parsing: raw = value × 10^18 as a decimal integer", "vectors": vectors }),
    );
}

fn t(venue: Venue, id: &str, time_ms: u64, price: &str, size: &str) -> fixd_proto::types::venue::Trade {
    fixd_proto::types::venue::Trade { venue, id: id.into(), time_ms, price: w(price), size: w(size) }
}

/// A small hand-made case that exercises every rule: cleaning (zero size, outside the window,
/// a repeated id), the weighted median, a partition with too few venues, venue exclusion for
/// deviation, and the mean with its rounding.
fn methodology_case() -> (SettlementSpec, Vec<fixd_proto::types::venue::Trade>) {
    let spec = SettlementSpec {
        index: Index::EthUsd,
        maturity: 1_000_240,
        params: MethodologyParams {
            window_secs: 240,
            partitions: 4,
            grace_secs: 10,
            min_venues: 2,
            min_partitions: 3,
            max_venue_deviation_bp: 500,
            two_venue_agreement_bp: 50,
            max_two_venue_partitions: 3,
        },
    };
    // Partition k covers ((1_000_000 + 60k)·1000, (1_000_000 + 60(k+1))·1000] ms.
    let base = 1_000_000_000u64;
    let mut trades = vec![
        t(Venue::Coinbase, "1", base + 1, "2000", "1"),
        t(Venue::Coinbase, "2", base + 30_000, "2002", "3"),
        t(Venue::Coinbase, "2", base + 30_000, "9999", "3"), // repeated id: dropped
        t(Venue::Coinbase, "3", base + 70_000, "2004.5", "2"),
        t(Venue::Coinbase, "4", base + 130_000, "2001", "1"),
        t(Venue::Coinbase, "5", base + 200_000, "2003", "1"),
        t(Venue::Coinbase, "6", base + 240_000, "2003.25", "1"), // exactly M: kept
        t(Venue::Coinbase, "7", base + 240_001, "2500", "1"),    // after M: dropped
        t(Venue::Coinbase, "8", base, "1500", "1"),              // at M − W: dropped
        t(Venue::Kraken, "a", base + 10_000, "2001", "2"),
        t(Venue::Kraken, "b", base + 80_000, "2003", "1"),
        t(Venue::Kraken, "c", base + 90_000, "2005", "0"), // zero size: dropped
        t(Venue::Kraken, "d", base + 150_000, "2000.75", "4"),
        t(Venue::Kraken, "e", base + 230_000, "2004", "2"),
        t(Venue::Gemini, "x", base + 20_000, "2150", "1"), // 7% high: the venue is excluded
        t(Venue::Gemini, "y", base + 100_000, "2152", "1"),
        t(Venue::Gemini, "z", base + 160_000, "2149", "1"),
        t(Venue::Bitstamp, "q", base + 120_000, "2002", "1"), // trades in 1 of 4: excluded
    ];
    trades.reverse();
    (spec, trades)
}

/// The two-venue rule (issue 20) on small hand-made windows of 5 partitions of 60 s, with
/// `min_venues` 3, `min_partitions` 3, a tolerance of 50 bp and a cap of 2 partitions. Each
/// row is `(partition, venue, price)`: one trade of size 1 in the middle of the partition.
fn two_venue_cases() -> Vec<(&'static str, &'static str, SettlementSpec, Vec<fixd_proto::types::venue::Trade>)>
{
    use Venue::{Bitstamp as B, Coinbase as C, Gemini as G, Kraken as K};
    let spec = SettlementSpec {
        index: Index::EthUsd,
        maturity: 2_000_300,
        params: MethodologyParams {
            window_secs: 300,
            partitions: 5,
            grace_secs: 10,
            min_venues: 3,
            min_partitions: 3,
            max_venue_deviation_bp: 500,
            two_venue_agreement_bp: 50,
            max_two_venue_partitions: 2,
        },
    };
    let trades = |rows: &[(u64, Venue, &str)]| {
        rows.iter()
            .map(|&(k, venue, price)| t(venue, &format!("{k}"), (2_000_000 + 60 * k + 30) * 1000, price, "1"))
            .collect::<Vec<_>>()
    };
    // Partitions 0 to 3 with three venues; partition 4 with Coinbase and Kraken only.
    let three = |last_kraken: &'static str| {
        let mut rows = Vec::new();
        for k in 0..4 {
            rows.extend([(k, C, "2000"), (k, K, "2001"), (k, B, "2002")]);
        }
        rows.extend([(4, C, "2000"), (4, K, last_kraken)]);
        rows
    };
    let cap = [
        (0, C, "2000"),
        (0, K, "2001"),
        (0, B, "2002"),
        (0, G, "2003"),
        (1, C, "2000"),
        (1, K, "2004"),
        (2, B, "2002"),
        (2, G, "2003"),
        (3, C, "2000"),
        (3, K, "2006"),
        (4, C, "2000"),
        (4, K, "2001"),
        (4, B, "2002"),
        (4, G, "2003"),
    ];
    vec![
        (
            "inside_the_tolerance",
            "partition 4: Coinbase 2000 and Kraken 2009 are ⌈9 · 10000 / 2000⌉ = 45 bp apart, within 50: it counts \
             with ⌊(2000 + 2009) / 2⌋ = 2004.5, two_venue true",
            spec.clone(),
            trades(&three("2009")),
        ),
        (
            "outside_the_tolerance",
            "partition 4: Coinbase 2000 and Kraken 2011 are 55 bp apart, over 50: it does not count (venues 2, \
             value null); the four others do",
            spec.clone(),
            trades(&three("2011")),
        ),
        (
            "the_cap_reached",
            "partitions 1, 2 and 3 have two agreeing venues each (no venue trades in fewer than half the \
             partitions); the cap of 2 counts 1 and 2, the oldest, and not 3",
            spec,
            trades(&cap),
        ),
    ]
}

#[test]
fn methodology() {
    use fixd_proto::methodology::{clean_trades, compute, settlement_value, trade_digest};
    let (spec, trades) = methodology_case();
    let cleaned = clean_trades(&spec, &trades);
    let computation = compute(&spec, &trades).unwrap();
    let node_value_sets = [
        vec!["2000", "2001", "2002"],
        vec!["2000", "2001", "2002", "2003"],
        vec!["2000.000000000000000001", "2000.000000000000000004"],
        vec!["1", "2000", "2001", "2002", "340282366920938463463.374607431768211455"],
    ];
    let medians: Vec<Value> = node_value_sets
        .iter()
        .map(|set| {
            let values: Vec<Wad> = set.iter().map(|s| w(s)).collect();
            json!({ "node_values": set, "settlement_value": settlement_value(&values) })
        })
        .collect();
    let fixture = {
        let spec = SettlementSpec {
            index: Index::EthUsd,
            maturity: 1_749_744_000,
            params: MethodologyParams::default(),
        };
        let trades =
            fixd_proto::replay::replay(&fixd_proto::replay::fixture_bars(), &fixd_proto::replay::PROFILES);
        let cleaned = clean_trades(&spec, &trades);
        json!({
            "about": "proto/fixtures/ethusd_2025-06-12_1400_1800.csv spread over 4 venues as proto/src/replay.rs documents",
            "spec": spec,
            "trades_kept": cleaned.len(),
            "trade_digest": trade_digest(&cleaned),
            "computation": compute(&spec, &trades).unwrap(),
        })
    };
    pin(
        "methodology.json",
        &json!({
            "about": "DESIGN section 4 on fixed inputs; see README.md",
            "case": {
                "spec": spec,
                "trades": trades,
                "cleaned_trades": cleaned,
                "trade_digest": trade_digest(&cleaned),
                "computation": computation,
            },
            "settlement_medians": medians,
            "two_venue": two_venue_cases()
                .into_iter()
                .map(|(name, about, spec, trades)| json!({
                    "name": name, "about": about, "spec": spec, "trades": trades,
                    "computation": compute(&spec, &trades).unwrap(),
                }))
                .collect::<Vec<_>>(),
            "fixture": fixture,
        }),
    );
    let file = load("methodology.json");
    let spec: SettlementSpec = serde_json::from_value(file["case"]["spec"].clone()).unwrap();
    let trades: Vec<fixd_proto::types::venue::Trade> =
        serde_json::from_value(file["case"]["trades"].clone()).unwrap();
    assert_eq!(serde_json::to_value(compute(&spec, &trades).unwrap()).unwrap(), file["case"]["computation"]);
    // Each two-venue case, as an outside client checks it: recompute from the file.
    let cases = file["two_venue"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for case in cases {
        let spec: SettlementSpec = serde_json::from_value(case["spec"].clone()).unwrap();
        let trades: Vec<fixd_proto::types::venue::Trade> =
            serde_json::from_value(case["trades"].clone()).unwrap();
        let computation = compute(&spec, &trades).unwrap();
        assert_eq!(serde_json::to_value(&computation).unwrap(), case["computation"], "{}", case["name"]);
        let two_venue: Vec<bool> = computation.partitions.iter().map(|p| p.two_venue).collect();
        let expected = match case["name"].as_str().unwrap() {
            "inside_the_tolerance" => [false, false, false, false, true],
            "outside_the_tolerance" => [false; 5],
            _ => [false, true, true, false, false],
        };
        assert_eq!(two_venue, expected, "{}", case["name"]);
    }
}

#[test]
fn merkle() {
    use fixd_proto::merkle::{merkle_proof, merkle_root, verify_proof};
    let leaf = |i: u8| alloy_primitives::keccak256([i]);
    let cases: Vec<Value> = [0usize, 1, 2, 3, 5, 8]
        .iter()
        .map(|&n| {
            let leaves: Vec<B256> = (0..n as u8).map(leaf).collect();
            let root = merkle_root(&leaves);
            let proof = leaves.first().and_then(|l| merkle_proof(&leaves, l));
            if let (Some(p), Some(l)) = (&proof, leaves.first()) {
                assert!(verify_proof(&root, l, p));
            }
            json!({ "leaves": leaves, "root": root, "proof_of_first_leaf": proof })
        })
        .collect();
    pin(
        "merkle.json",
        &json!({ "about": "the tree of proto/src/merkle.rs; leaves are sorted and de-duplicated first", "vectors": cases }),
    );
}

#[test]
fn payouts() {
    use fixd_proto::payout::pn_split;
    let cases = [
        ("2500", "1500"),
        ("1500", "1500"),
        ("1000", "1500"),
        ("0", "1500"),
        ("3000", "0"),
        ("2434.34", "2000"),
        ("0.000000000000000001", "340282366920938463463.374607431768211455"),
        ("340282366920938463463.374607431768211455", "0.000000000000000001"),
        ("2750.867975958333333333", "2800"),
        ("2750.867975958333333333", "2500"),
    ];
    let vectors: Vec<Value> = cases
        .iter()
        .map(|(x, s)| {
            let (p, n) = pn_split(w(x), w(s));
            json!({ "x": x, "strike": s, "p": p, "n": n })
        })
        .collect();
    pin(
        "payouts.json",
        &json!({ "about": "p = 1 if x ≤ S else ⌊S·10^18/x⌋ / 10^18; n = 1 − p (ETH per 1 ETH)", "vectors": vectors }),
    );
}

/// A complete proof bundle of a 4-member committee (q = 3): what `fixd verify` checks offline.
#[test]
fn proof_bundle() {
    let bundle = crate::certify::fixture().bundle();
    let value = fixd_proto::certify::verify_bundle(&bundle).unwrap();
    pin("proof_bundle.json", &serde_json::to_value(&bundle).unwrap());
    let file: fixd_proto::certify::ProofBundle = serde_json::from_value(load("proof_bundle.json")).unwrap();
    assert_eq!(fixd_proto::certify::verify_bundle(&file), Ok(value));
}

/// `negative.json`: inputs that break exactly one verification rule each, with the error a
/// verifier must return. Built on the committee and bundle of `proof_bundle.json`.
mod negative {
    use alloy_primitives::B256;
    use ed25519_dalek::SigningKey;
    use fixd_proto::certify::{CertifyError, ProofBundle, Role, check_round_proposal, verify_bundle};
    use fixd_proto::encoding::{from_bcs, to_bcs};
    use fixd_proto::merkle::merkle_root;
    use fixd_proto::signing::{Endorsement, PublicKey, Signed, endorse};
    use fixd_proto::types::certificate::{
        Certificate, Proposal, ProposalSource, RoundProposal, Vote, VoteStep,
    };
    use fixd_proto::types::dispute::ReviewVote;
    use fixd_proto::types::genesis::{Genesis, GenesisError};
    use fixd_proto::types::observation::{NoValueReason, NodeValue, Observation};
    use fixd_proto::types::settlement::SettlementSpec;
    use fixd_proto::value::Wad;
    use serde::Serialize;
    use serde::de::DeserializeOwned;
    use serde_json::{Map, Value, json};

    use super::{bytes_of, hex_of, load, pin};
    use crate::certify::{Fixture, PROPOSED_AT, fixture, flip};

    const VERIFY_BUNDLE: &str = "verify_bundle";
    const CHECK_ROUND_PROPOSAL: &str = "check_round_proposal";
    /// The dispute the review cases review.
    const DISPUTE: B256 = B256::repeat_byte(0xd1);

    fn w(s: &str) -> Wad {
        Wad::parse(s).unwrap()
    }

    fn outsider() -> SigningKey {
        SigningKey::from_bytes(&[99; 32])
    }

    /// The ed25519 key of member `i`.
    fn pk(fx: &Fixture, i: usize) -> PublicKey {
        fx.committee.members()[i].ed25519
    }

    fn index(fx: &Fixture, key: &PublicKey) -> usize {
        fx.committee.index_of(key).expect("a member")
    }

    /// The variant name of an error, as `negative.json` records it.
    fn variant(e: &CertifyError) -> String {
        format!("{e:?}").split(['(', ' ', '{']).next().unwrap().to_string()
    }

    /// Signatures of `voters` over `vote`, sorted by signer.
    fn endorsements(fx: &Fixture, vote: &Vote, voters: &[usize]) -> Vec<Endorsement> {
        let mut all: Vec<Endorsement> =
            voters.iter().map(|&i| endorse(&fx.keys[i], &fx.network_id, vote)).collect();
        all.sort_by_key(|e| e.signer);
        all
    }

    /// The vote `{settlement, decision of the source, round, step, Some(hash)}` for a candidate.
    fn vote_for(proposal: &Signed<Proposal>, round: u32, step: VoteStep) -> Vote {
        Vote { step, ..Certificate { proposal: proposal.clone(), round, votes: vec![] }.precommit() }
    }

    /// A certificate of `proposal` in its own round with the precommits of `voters`.
    fn certificate(fx: &Fixture, proposal: Signed<Proposal>, voters: &[usize]) -> Certificate {
        let round = proposal.payload.round;
        let votes = endorsements(fx, &vote_for(&proposal, round, VoteStep::Precommit), voters);
        Certificate { proposal, round, votes }
    }

    /// The honest proposal of round 0 over `listed` observations, as the base bundle's.
    fn proposal_over(fx: &Fixture, listed: &[Signed<Observation>]) -> Proposal {
        let mut inputs: Vec<B256> = listed.iter().map(Signed::hash).collect();
        inputs.sort();
        let values: Vec<Wad> = listed.iter().filter_map(|o| o.payload.computation.value.value()).collect();
        Proposal {
            settlement_id: fx.spec.id(),
            round: 0,
            value: fixd_proto::methodology::settlement_value(&values).unwrap(),
            source: ProposalSource::Observations,
            inputs_root: merkle_root(&inputs),
            inputs,
            challenge_deadline: PROPOSED_AT + 7200,
            proposed_at: PROPOSED_AT,
        }
    }

    /// The round-0 leader's certificate over `listed`, precommitted by members 0, 1, 2.
    fn certificate_over(fx: &Fixture, listed: &[Signed<Observation>]) -> Certificate {
        certificate(fx, fx.sign(fx.leader(0), proposal_over(fx, listed)), &[0, 1, 2])
    }

    /// Member `member`'s review of [`DISPUTE`] against `contested`.
    fn review_vote(fx: &Fixture, member: usize, contested: B256, value: NodeValue) -> ReviewVote {
        ReviewVote {
            settlement_id: fx.spec.id(),
            dispute_id: DISPUTE,
            proposal_hash: contested,
            median_recomputes: false,
            value,
            trade_digest: B256::repeat_byte(0xe0 + member as u8),
        }
    }

    /// Members 0..=3 reviewed 2490.1, 2490.2, 2490.3, 2490.4.
    fn review_votes(fx: &Fixture, contested: B256) -> Vec<Signed<ReviewVote>> {
        (0..4)
            .map(|i| {
                let vote = review_vote(fx, i, contested, NodeValue::Value(w(&format!("2490.{}", i + 1))));
                Signed::sign(&fx.keys[i], &fx.network_id, vote)
            })
            .collect()
    }

    /// The round-0 leader's review certificate listing `listed`, precommitted by 0, 1, 2.
    fn review_certificate(fx: &Fixture, listed: &[Signed<ReviewVote>]) -> Certificate {
        let mut inputs: Vec<B256> = listed.iter().map(Signed::hash).collect();
        inputs.sort();
        let values: Vec<Wad> = listed.iter().filter_map(|v| v.payload.value.value()).collect();
        let proposal = Proposal {
            settlement_id: fx.spec.id(),
            round: 0,
            value: fixd_proto::methodology::settlement_value(&values).unwrap(),
            source: ProposalSource::Review { dispute_id: DISPUTE },
            inputs_root: merkle_root(&inputs),
            inputs,
            challenge_deadline: PROPOSED_AT + 9000 + 3600,
            proposed_at: PROPOSED_AT + 9000,
        };
        certificate(fx, fx.sign(fx.leader(0), proposal), &[0, 1, 2])
    }

    /// A round proposal signed with `key`.
    fn round_proposal(
        key: &SigningKey,
        fx: &Fixture,
        round: u32,
        pol_round: Option<u32>,
        proposal: &Signed<Proposal>,
        polka: Vec<Endorsement>,
    ) -> Signed<RoundProposal> {
        let rp = RoundProposal { round, pol_round, proposal: proposal.clone(), polka };
        Signed::sign(key, &fx.network_id, rp)
    }

    /// The prevotes of `voters` for `proposal` in `round`, sorted by signer.
    fn prevotes(fx: &Fixture, proposal: &Signed<Proposal>, round: u32, voters: &[usize]) -> Vec<Endorsement> {
        endorsements(fx, &vote_for(proposal, round, VoteStep::Prevote), voters)
    }

    /// One input field: its JSON and its BCS hex.
    fn field<T: Serialize>(name: &str, value: &T) -> (String, Value, Value) {
        (name.to_string(), serde_json::to_value(value).unwrap(), Value::String(hex_of(to_bcs(value))))
    }

    /// Runs a check the way an outside client would: a `verify_bundle` input replaces fields of
    /// the base bundle; a `check_round_proposal` input is checked against the base committee.
    fn run(base: &Value, check: &str, input: &Value) -> Result<Option<Wad>, CertifyError> {
        let bundle: ProofBundle = {
            let mut bundle = base.clone();
            if check == VERIFY_BUNDLE {
                for (k, v) in input.as_object().unwrap() {
                    assert!(bundle.get(k).is_some(), "{k} is not a bundle field");
                    bundle[k] = v.clone();
                }
            }
            serde_json::from_value(bundle).unwrap()
        };
        match check {
            VERIFY_BUNDLE => verify_bundle(&bundle).map(Some),
            CHECK_ROUND_PROPOSAL => {
                let rp: Signed<RoundProposal> =
                    serde_json::from_value(input["round_proposal"].clone()).unwrap();
                check_round_proposal(&bundle.genesis.committee(), &bundle.genesis.network_id(), &rp)
                    .map(|()| None)
            }
            other => panic!("unknown check {other}"),
        }
    }

    fn input_of(fields: Vec<(String, Value, Value)>) -> (Value, Value) {
        let mut input = Map::new();
        let mut bcs = Map::new();
        for (name, json, hex) in fields {
            input.insert(name.clone(), json);
            bcs.insert(name, hex);
        }
        (Value::Object(input), Value::Object(bcs))
    }

    struct Builder {
        base: Value,
        valid: Vec<Value>,
        cases: Vec<Value>,
    }

    impl Builder {
        /// An input that passes: a control for the cases built from it.
        fn valid(
            &mut self,
            name: &str,
            check: &str,
            fields: Vec<(String, Value, Value)>,
            value: Option<Wad>,
        ) {
            let (input, input_bcs) = input_of(fields);
            assert_eq!(run(&self.base, check, &input), Ok(value), "{name}");
            self.valid.push(json!({
                "name": name, "check": check, "input": input, "input_bcs": input_bcs, "value": value,
            }));
        }

        /// An input that breaks `rule` alone and must fail with `expected`.
        fn case(
            &mut self,
            name: &str,
            check: &str,
            rule: &str,
            fields: Vec<(String, Value, Value)>,
            expected: CertifyError,
        ) {
            let (input, input_bcs) = input_of(fields);
            assert_eq!(run(&self.base, check, &input), Err(expected.clone()), "{name}");
            assert!(self.cases.iter().all(|c| c["name"] != name), "{name} twice");
            self.cases.push(json!({
                "name": name,
                "check": check,
                "rule": rule,
                "input": input,
                "input_bcs": input_bcs,
                "error": { "variant": variant(&expected), "display": expected.to_string() },
            }));
        }
    }

    fn build() -> Value {
        let fx = fixture();
        let base = fx.bundle();
        let value = verify_bundle(&base).unwrap();
        let mut b = Builder { base: serde_json::to_value(&base).unwrap(), valid: vec![], cases: vec![] };
        let obs = &base.observations;
        let cert = &base.certificate;
        let candidate = &cert.proposal;
        let leader = fx.leader(0);
        let not_leader = (leader + 1) % 4;
        let stranger = outsider();
        let q = fx.committee.q();

        // Certificate votes.
        let mut c = cert.clone();
        c.votes.truncate(q - 1);
        b.case(
            "too_few_precommits",
            VERIFY_BUNDLE,
            "a certificate carries the precommits of at least q distinct members",
            vec![field("certificate", &c)],
            CertifyError::TooFewVotes { have: q - 1, need: q },
        );

        let mut c = cert.clone();
        let first = c.votes[0].signer;
        c.votes[0] = endorse(
            &fx.keys[index(&fx, &first)],
            &fx.network_id,
            &vote_for(candidate, cert.round + 1, VoteStep::Precommit),
        );
        b.case(
            "precommit_of_another_round",
            VERIFY_BUNDLE,
            "each vote signs the precommit of the certificate's round",
            vec![field("certificate", &c)],
            CertifyError::BadSignature { signer: first, role: Role::Voter },
        );

        let mut c = cert.clone();
        c.votes = prevotes(&fx, candidate, cert.round, &[0, 1, 2]);
        b.case(
            "prevotes_instead_of_precommits",
            VERIFY_BUNDLE,
            "each vote signs a precommit (step 1), not a prevote",
            vec![field("certificate", &c)],
            CertifyError::BadSignature { signer: c.votes[0].signer, role: Role::Voter },
        );

        let mut c = cert.clone();
        c.votes.reverse();
        b.case(
            "precommits_not_sorted",
            VERIFY_BUNDLE,
            "the votes are sorted by signer key, ascending",
            vec![field("certificate", &c)],
            CertifyError::VotesNotSorted,
        );

        let mut c = cert.clone();
        c.votes[2] = c.votes[1];
        b.case(
            "duplicate_voter",
            VERIFY_BUNDLE,
            "no member votes twice",
            vec![field("certificate", &c)],
            CertifyError::DuplicateMember { signer: c.votes[1].signer, role: Role::Voter },
        );

        let mut c = cert.clone();
        let foreign = endorse(&stranger, &fx.network_id, &cert.precommit());
        c.votes[2] = foreign;
        c.votes.sort_by_key(|e| e.signer);
        b.case(
            "non_member_voter",
            VERIFY_BUNDLE,
            "every voter is a committee member",
            vec![field("certificate", &c)],
            CertifyError::NotAMember { signer: foreign.signer, role: Role::Voter },
        );

        let later = fx.sign(fx.leader(1), Proposal { round: 1, ..candidate.payload.clone() });
        let c = Certificate {
            votes: endorsements(&fx, &vote_for(&later, 0, VoteStep::Precommit), &[0, 1, 2]),
            proposal: later,
            round: 0,
        };
        b.case(
            "certificate_round_before_proposal_round",
            VERIFY_BUNDLE,
            "the certificate's round is at or after its proposal's round",
            vec![field("certificate", &c)],
            CertifyError::CertificateBeforeProposal { round: 0, proposed: 1 },
        );

        // The proposal.
        let c = certificate(&fx, fx.sign(not_leader, candidate.payload.clone()), &[0, 1, 2]);
        b.case(
            "proposal_not_by_leader",
            VERIFY_BUNDLE,
            "the proposal is signed by leader(proposal.round)",
            vec![field("certificate", &c)],
            CertifyError::WrongLeader { round: 0, expected: pk(&fx, leader), got: pk(&fx, not_leader) },
        );

        let signed = Signed::sign(&stranger, &fx.network_id, candidate.payload.clone());
        let c = certificate(&fx, signed.clone(), &[0, 1, 2]);
        b.case(
            "proposal_by_non_member",
            VERIFY_BUNDLE,
            "the proposal is signed by a committee member",
            vec![field("certificate", &c)],
            CertifyError::NotAMember { signer: signed.signer, role: Role::Proposer },
        );

        let mut p = candidate.payload.clone();
        p.inputs.swap(0, 1);
        let c = certificate(&fx, fx.sign(leader, p), &[0, 1, 2]);
        b.case(
            "inputs_not_sorted",
            VERIFY_BUNDLE,
            "the proposal's inputs are strictly ascending (sorted, no repeats)",
            vec![field("certificate", &c)],
            CertifyError::InputsNotSorted,
        );

        let mut p = candidate.payload.clone();
        p.inputs_root = B256::repeat_byte(0xee);
        let c = certificate(&fx, fx.sign(leader, p), &[0, 1, 2]);
        b.case(
            "wrong_merkle_root",
            VERIFY_BUNDLE,
            "inputs_root is the Merkle root of the inputs",
            vec![field("certificate", &c)],
            CertifyError::WrongMerkleRoot {
                expected: candidate.payload.inputs_root,
                got: B256::repeat_byte(0xee),
            },
        );

        let mut p = candidate.payload.clone();
        p.value = w("2500.2");
        let c = certificate(&fx, fx.sign(leader, p), &[0, 1, 2]);
        b.case(
            "wrong_median",
            VERIFY_BUNDLE,
            "the proposal's value is the median of the listed observations' values (an even count: the \
             two middle values' mean, rounded down)",
            vec![field("certificate", &c)],
            CertifyError::WrongValue { proposed: w("2500.2"), recomputed: value },
        );

        let mut p = candidate.payload.clone();
        p.challenge_deadline = p.proposed_at - 1;
        let c = certificate(&fx, fx.sign(leader, p), &[0, 1, 2]);
        b.case(
            "deadline_before_proposal",
            VERIFY_BUNDLE,
            "challenge_deadline is not before proposed_at",
            vec![field("certificate", &c)],
            CertifyError::DeadlineBeforeProposal {
                proposed_at: PROPOSED_AT,
                challenge_deadline: PROPOSED_AT - 1,
            },
        );

        // The listed observations.
        let mut listed = obs.clone();
        for i in [2, 3] {
            let mut o = listed[i].payload.clone();
            for partition in &mut o.computation.partitions {
                partition.value = None;
                partition.two_venue = false;
            }
            o.computation.value =
                NodeValue::NoValue(NoValueReason::TooFewPartitions { counted: 0, required: 9 });
            listed[i] = Signed::sign(&fx.keys[index(&fx, &listed[i].signer)], &fx.network_id, o);
        }
        b.case(
            "too_few_observations_with_a_value",
            VERIFY_BUNDLE,
            "at least q listed observations carry a value (a no_value observation counts toward neither q nor \
             the median)",
            vec![field("observations", &listed), field("certificate", &certificate_over(&fx, &listed))],
            CertifyError::TooFewObservations { have: 2, need: q },
        );

        b.case(
            "listed_observation_missing",
            VERIFY_BUNDLE,
            "every input is the hash of a given signed observation",
            vec![field("observations", &obs[..3].to_vec())],
            CertifyError::UnknownInput(obs[3].hash()),
        );

        let mut listed = obs.clone();
        let mut o = listed[2].payload.clone();
        o.settlement_id = B256::repeat_byte(0x05);
        listed[2] = Signed::sign(&fx.keys[index(&fx, &listed[2].signer)], &fx.network_id, o);
        b.case(
            "observation_of_another_settlement",
            VERIFY_BUNDLE,
            "every listed observation is of the spec's settlement",
            vec![field("observations", &listed), field("certificate", &certificate_over(&fx, &listed))],
            CertifyError::ForeignObservation {
                signer: listed[2].signer,
                expected: fx.spec.id(),
                got: B256::repeat_byte(0x05),
            },
        );

        let mut listed = obs.clone();
        listed[3] = Signed::sign(&stranger, &fx.network_id, listed[3].payload.clone());
        b.case(
            "non_member_observer",
            VERIFY_BUNDLE,
            "every listed observation is signed by a committee member",
            vec![field("observations", &listed), field("certificate", &certificate_over(&fx, &listed))],
            CertifyError::NotAMember { signer: listed[3].signer, role: Role::Observer },
        );

        let mut listed = obs.clone();
        listed[3] = fx.observation(2, "2500.9");
        b.case(
            "duplicate_observer",
            VERIFY_BUNDLE,
            "no member has two listed observations",
            vec![field("observations", &listed), field("certificate", &certificate_over(&fx, &listed))],
            CertifyError::DuplicateMember { signer: listed[2].signer, role: Role::Observer },
        );

        // Signatures: one flipped bit each.
        let mut c = cert.clone();
        flip(&mut c.votes[1].signature, 0);
        b.case(
            "precommit_signature_bit_flipped",
            VERIFY_BUNDLE,
            "every vote's ed25519 signature verifies (strict) over BCS(tag) ‖ network_id ‖ BCS(precommit)",
            vec![field("certificate", &c)],
            CertifyError::BadSignature { signer: c.votes[1].signer, role: Role::Voter },
        );

        let mut c = cert.clone();
        flip(&mut c.proposal.signature, 0);
        b.case(
            "proposal_signature_bit_flipped",
            VERIFY_BUNDLE,
            "the proposal's signature verifies; it is checked before the votes (which, naming the hash of the \
             proposal as signed, no longer match either)",
            vec![field("certificate", &c)],
            CertifyError::BadSignature { signer: c.proposal.signer, role: Role::Proposer },
        );

        let mut listed = obs.clone();
        flip(&mut listed[1].signature, 0);
        b.case(
            "observation_signature_bit_flipped",
            VERIFY_BUNDLE,
            "every listed observation's signature verifies (the proposal lists the hash of the corrupted one)",
            vec![field("observations", &listed), field("certificate", &certificate_over(&fx, &listed))],
            CertifyError::BadSignature { signer: listed[1].signer, role: Role::Observer },
        );

        // The bundle's own fields.
        let mut spec: SettlementSpec = base.spec.clone();
        spec.maturity += 1;
        b.case(
            "spec_of_another_settlement",
            VERIFY_BUNDLE,
            "the certified proposal is for keccak256(BCS(spec))",
            vec![field("spec", &spec)],
            CertifyError::WrongSettlement { expected: spec.id(), got: fx.spec.id() },
        );

        let mut genesis: Genesis = base.genesis.clone();
        genesis.members[1].name = genesis.members[0].name.clone();
        b.case(
            "invalid_genesis",
            VERIFY_BUNDLE,
            "the genesis is valid: at least 4 members, distinct names, keys and addresses, max_rounds ≥ 1",
            vec![field("genesis", &genesis)],
            CertifyError::InvalidGenesis(GenesisError::DuplicateName(genesis.members[0].name.clone())),
        );

        let mut genesis: Genesis = base.genesis.clone();
        genesis.chain_id = 1;
        b.case(
            "another_network",
            VERIFY_BUNDLE,
            "signatures are over network_id = keccak256(BCS(genesis)); another genesis fails them all, the \
             proposal's first",
            vec![field("genesis", &genesis)],
            CertifyError::BadSignature { signer: candidate.signer, role: Role::Proposer },
        );

        // Review certificates: the value of an upheld dispute, from exactly q review votes.
        let contested = candidate.hash();
        let reviews = review_votes(&fx, contested);
        let review_cert = review_certificate(&fx, &reviews[..3]);
        b.valid(
            "review_certificate",
            VERIFY_BUNDLE,
            vec![field("certificate", &review_cert), field("review_votes", &reviews)],
            Some(w("2490.2")),
        );

        b.case(
            "review_lists_more_than_q_votes",
            VERIFY_BUNDLE,
            "a review certificate lists exactly q review votes",
            vec![field("certificate", &review_certificate(&fx, &reviews)), field("review_votes", &reviews)],
            CertifyError::ReviewVoteCount { have: 4, need: q },
        );

        let resign = |i: usize, vote: ReviewVote| Signed::sign(&fx.keys[i], &fx.network_id, vote);
        let mut listed = reviews[..3].to_vec();
        listed[1] = resign(1, review_vote(&fx, 1, contested, NodeValue::NoValue(NoValueReason::NoVenues)));
        b.case(
            "review_vote_without_value",
            VERIFY_BUNDLE,
            "every listed review vote carries a value",
            vec![field("certificate", &review_certificate(&fx, &listed)), field("review_votes", &listed)],
            CertifyError::ReviewVoteWithoutValue { signer: listed[1].signer },
        );

        let mut listed = reviews[..3].to_vec();
        listed[1] = resign(1, review_vote(&fx, 1, B256::repeat_byte(0xc1), NodeValue::Value(w("2490.2"))));
        b.case(
            "review_votes_of_different_proposals",
            VERIFY_BUNDLE,
            "every listed review vote names the same contested proposal (the first listed vote given sets it)",
            vec![field("certificate", &review_certificate(&fx, &listed)), field("review_votes", &listed)],
            CertifyError::ReviewOfOtherProposal {
                signer: listed[1].signer,
                expected: contested,
                got: B256::repeat_byte(0xc1),
            },
        );

        let mut listed = reviews[..3].to_vec();
        let mut other = review_vote(&fx, 1, contested, NodeValue::Value(w("2490.2")));
        other.dispute_id = B256::repeat_byte(0xd2);
        listed[1] = resign(1, other);
        b.case(
            "review_vote_of_another_dispute",
            VERIFY_BUNDLE,
            "every listed review vote reviews the dispute the proposal's source names",
            vec![field("certificate", &review_certificate(&fx, &listed)), field("review_votes", &listed)],
            CertifyError::ReviewOfOtherDispute { expected: DISPUTE, got: B256::repeat_byte(0xd2) },
        );

        let mut listed = reviews[..3].to_vec();
        let mut other = review_vote(&fx, 1, contested, NodeValue::Value(w("2490.2")));
        other.settlement_id = B256::repeat_byte(0x05);
        listed[1] = resign(1, other);
        b.case(
            "review_vote_of_another_settlement",
            VERIFY_BUNDLE,
            "every listed review vote is of the spec's settlement",
            vec![field("certificate", &review_certificate(&fx, &listed)), field("review_votes", &listed)],
            CertifyError::ForeignReviewVote {
                signer: listed[1].signer,
                expected: fx.spec.id(),
                got: B256::repeat_byte(0x05),
            },
        );

        // Round proposals: the Tendermint frame around a candidate.
        let key_of = |round: u32| &fx.keys[fx.leader(round)];
        let rp = |r: &Signed<RoundProposal>| vec![field("round_proposal", r)];
        let fresh = round_proposal(key_of(0), &fx, 0, None, candidate, vec![]);
        b.valid("fresh_round_proposal", CHECK_ROUND_PROPOSAL, rp(&fresh), None);
        let polka = prevotes(&fx, candidate, 0, &[0, 1, 2]);
        let again = round_proposal(key_of(1), &fx, 1, Some(0), candidate, polka.clone());
        b.valid("re_proposal", CHECK_ROUND_PROPOSAL, rp(&again), None);

        let r = round_proposal(&stranger, &fx, 0, None, candidate, vec![]);
        b.case(
            "round_proposal_by_non_member",
            CHECK_ROUND_PROPOSAL,
            "a round proposal is signed by a committee member",
            rp(&r),
            CertifyError::NotAMember { signer: r.signer, role: Role::Proposer },
        );

        let r = round_proposal(key_of(1), &fx, 0, None, candidate, vec![]);
        b.case(
            "round_proposal_not_by_leader",
            CHECK_ROUND_PROPOSAL,
            "a round proposal is signed by leader(round)",
            rp(&r),
            CertifyError::WrongLeader {
                round: 0,
                expected: pk(&fx, fx.leader(0)),
                got: pk(&fx, fx.leader(1)),
            },
        );

        let r = round_proposal(key_of(1), &fx, 1, None, candidate, vec![]);
        b.case(
            "fresh_round_proposal_of_another_rounds_candidate",
            CHECK_ROUND_PROPOSAL,
            "a fresh round proposal (pol_round none) carries a candidate of its own round",
            rp(&r),
            CertifyError::NotFresh { round: 1, candidate_round: 0 },
        );

        let others = fx.sign(not_leader, candidate.payload.clone());
        let r = round_proposal(key_of(0), &fx, 0, None, &others, vec![]);
        b.case(
            "fresh_round_proposal_of_another_signers_candidate",
            CHECK_ROUND_PROPOSAL,
            "a fresh round proposal carries a candidate signed by the same member",
            rp(&r),
            CertifyError::NotFresh { round: 0, candidate_round: 0 },
        );

        let r = round_proposal(key_of(0), &fx, 0, None, candidate, polka.clone());
        b.case(
            "fresh_round_proposal_with_a_polka",
            CHECK_ROUND_PROPOSAL,
            "a fresh round proposal has an empty polka",
            rp(&r),
            CertifyError::NotFresh { round: 0, candidate_round: 0 },
        );

        let r =
            round_proposal(key_of(1), &fx, 1, Some(1), candidate, prevotes(&fx, candidate, 1, &[0, 1, 2]));
        b.case(
            "re_proposal_pol_round_not_below_round",
            CHECK_ROUND_PROPOSAL,
            "a re-proposal's pol_round is below its round",
            rp(&r),
            CertifyError::PolRoundNotBelow { pol_round: 1, round: 1 },
        );

        let later = fx.sign(fx.leader(1), Proposal { round: 1, ..candidate.payload.clone() });
        let r = round_proposal(key_of(2), &fx, 2, Some(0), &later, prevotes(&fx, &later, 0, &[0, 1, 2]));
        b.case(
            "re_proposal_pol_round_before_candidate",
            CHECK_ROUND_PROPOSAL,
            "a re-proposal's pol_round is at or after its candidate's round",
            rp(&r),
            CertifyError::PolkaBeforeCandidate { pol_round: 0, candidate_round: 1 },
        );

        let r = round_proposal(key_of(1), &fx, 1, Some(0), candidate, polka[..q - 1].to_vec());
        b.case(
            "re_proposal_with_too_few_prevotes",
            CHECK_ROUND_PROPOSAL,
            "a re-proposal's polka holds the prevotes of at least q distinct members",
            rp(&r),
            CertifyError::TooFewVotes { have: q - 1, need: q },
        );

        let mut reversed = polka.clone();
        reversed.reverse();
        let r = round_proposal(key_of(1), &fx, 1, Some(0), candidate, reversed);
        b.case(
            "re_proposal_polka_not_sorted",
            CHECK_ROUND_PROPOSAL,
            "a re-proposal's polka is sorted by signer key, ascending",
            rp(&r),
            CertifyError::VotesNotSorted,
        );

        let precommits = endorsements(&fx, &vote_for(candidate, 0, VoteStep::Precommit), &[0, 1, 2]);
        let r = round_proposal(key_of(1), &fx, 1, Some(0), candidate, precommits.clone());
        b.case(
            "re_proposal_polka_of_precommits",
            CHECK_ROUND_PROPOSAL,
            "each polka signature is over the prevote {settlement_id, decision, pol_round, prevote, \
             Some(candidate hash)}",
            rp(&r),
            CertifyError::BadSignature { signer: precommits[0].signer, role: Role::Voter },
        );

        let mut r = again.clone();
        flip(&mut r.signature, 0);
        b.case(
            "round_proposal_signature_bit_flipped",
            CHECK_ROUND_PROPOSAL,
            "the round proposal's own signature verifies",
            rp(&r),
            CertifyError::BadSignature { signer: r.signer, role: Role::Proposer },
        );

        json!({
            "about": "inputs that break one verification rule each, and the error a verifier returns; see README.md",
            "base": b.base,
            "base_value": value,
            "valid": b.valid,
            "cases": b.cases,
        })
    }

    #[test]
    fn negative_vectors() {
        pin("negative.json", &build());
    }

    /// Decodes an input field from its JSON and from its BCS and checks they agree.
    fn same<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(json: &Value, bcs: &Value) {
        let from_json: T = serde_json::from_value(json.clone()).unwrap();
        let bytes = bytes_of(bcs);
        assert_eq!(from_bcs::<T>(&bytes).unwrap(), from_json);
        assert_eq!(to_bcs(&from_json), bytes);
    }

    fn check_input_bcs(v: &Value) {
        let bcs = &v["input_bcs"];
        let input = v["input"].as_object().unwrap();
        assert_eq!(input.len(), bcs.as_object().unwrap().len(), "{}", v["name"]);
        for (k, json) in input {
            match k.as_str() {
                "genesis" => same::<Genesis>(json, &bcs[k]),
                "spec" => same::<SettlementSpec>(json, &bcs[k]),
                "observations" => same::<Vec<Signed<Observation>>>(json, &bcs[k]),
                "certificate" => same::<Certificate>(json, &bcs[k]),
                "review_votes" => same::<Vec<Signed<ReviewVote>>>(json, &bcs[k]),
                "round_proposal" => same::<Signed<RoundProposal>>(json, &bcs[k]),
                other => panic!("unknown input field {other}"),
            }
        }
    }

    /// Each committed negative vector fails with exactly the recorded error, and each control
    /// passes, when checked as an outside client would.
    #[test]
    fn committed_negative_vectors_fail_as_recorded() {
        let file = load("negative.json");
        assert_eq!(file["base"], load("proof_bundle.json"), "the base is the bundle of proof_bundle.json");
        let base: ProofBundle = serde_json::from_value(file["base"].clone()).unwrap();
        assert_eq!(serde_json::to_value(verify_bundle(&base).unwrap()).unwrap(), file["base_value"]);
        for v in file["valid"].as_array().unwrap() {
            check_input_bcs(v);
            let value = run(&file["base"], v["check"].as_str().unwrap(), &v["input"]);
            assert_eq!(serde_json::to_value(value.unwrap()).unwrap(), v["value"], "{}", v["name"]);
        }
        let cases = file["cases"].as_array().unwrap();
        assert!(cases.len() >= 17);
        for c in cases {
            check_input_bcs(c);
            let err = run(&file["base"], c["check"].as_str().unwrap(), &c["input"])
                .expect_err(c["name"].as_str().unwrap());
            assert_eq!(variant(&err), c["error"]["variant"].as_str().unwrap(), "{}", c["name"]);
            assert_eq!(err.to_string(), c["error"]["display"].as_str().unwrap(), "{}", c["name"]);
        }
    }
}
