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
use fixd_proto::types::certificate::{Proposal, ProposalSource, Vote};
use fixd_proto::types::dispute::{ArbitratorRuling, Dispute, DisputeReason, ReviewVote};
use fixd_proto::types::genesis::{Genesis, Member, ProtocolParams};
use fixd_proto::types::observation::{Computation, Exclusion, NodeValue, Observation, VenueReport};
use fixd_proto::types::report::{BondOutcome, FinalReport};
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
    let mut partitions = vec![Some(w("2601.125")); 12];
    partitions[3] = None;
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

fn vote() -> Vote {
    Vote { settlement_id: spec().id(), round: 0, proposal_hash: B256::repeat_byte(0x99) }
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
            signed_vector("vote", 3, vote()),
            signed_vector("review_vote", 4, review_vote()),
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
    assert_eq!(vectors.len(), 4);
    for v in vectors {
        match v["type"].as_str().unwrap() {
            "observation" => check_signed::<Observation>(v),
            "proposal" => check_signed::<Proposal>(v),
            "vote" => check_signed::<Vote>(v),
            "review_vote" => check_signed::<ReviewVote>(v),
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
            "leaders": (0..8).map(|r| genesis().committee().leader(&spec().id(), r)).collect::<Vec<_>>(),
        },
    });
    pin("identities.json", &vectors);
    let file = load("identities.json");
    let s: SettlementSpec = serde_json::from_value(file["settlement"]["spec"].clone()).unwrap();
    assert_eq!(serde_json::to_value(s.id()).unwrap(), file["settlement"]["settlement_id"]);
    let g: Genesis = serde_json::from_value(file["genesis"]["genesis"].clone()).unwrap();
    assert_eq!(serde_json::to_value(g.network_id()).unwrap(), file["genesis"]["network_id"]);
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
            "fixture": fixture,
        }),
    );
    let file = load("methodology.json");
    let spec: SettlementSpec = serde_json::from_value(file["case"]["spec"].clone()).unwrap();
    let trades: Vec<fixd_proto::types::venue::Trade> =
        serde_json::from_value(file["case"]["trades"].clone()).unwrap();
    assert_eq!(serde_json::to_value(compute(&spec, &trades).unwrap()).unwrap(), file["case"]["computation"]);
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
