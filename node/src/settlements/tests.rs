//! The one place that signs, against a real sled store: a taken slot signs nothing and keeps
//! nothing; the same message again is the same signature.

use alloy_primitives::{Address, B256};
use alloy_signer_local::PrivateKeySigner;
use ed25519_dalek::SigningKey;
use fixd_decision::driver::{DriverSetup, SignedKind, SigningSlot, Unsigned};
use fixd_proto::gossip::GossipMessage;
use fixd_proto::signing::PublicKey;
use fixd_proto::types::certificate::{DecisionId, Vote, VoteStep};
use fixd_proto::types::genesis::{Genesis, Member, ProtocolParams};
use fixd_proto::types::observation::{Computation, NodeValue, Observation, Partition};
use fixd_proto::types::settlement::{Index, MethodologyParams, SettlementSpec};
use fixd_proto::value::Wad;

use super::{MemberKeys, StoreCatchup, sign_and_keep};
use crate::network::CatchupProvider;
use crate::store::{SledStore, Store};

fn setup() -> (MemberKeys, DriverSetup) {
    let keys = MemberKeys {
        ed25519: SigningKey::from_bytes(&[7; 32]),
        secp256k1: PrivateKeySigner::from_bytes(&B256::repeat_byte(7)).unwrap(),
    };
    let member = Member {
        name: "node-0".into(),
        ed25519: PublicKey::of(&keys.ed25519),
        eth_address: keys.secp256k1.address(),
        listen: vec![],
    };
    let params = ProtocolParams::default();
    let genesis = Genesis {
        network: "fixd-sign-test".into(),
        chain_id: 31337,
        contract: Address::repeat_byte(0xc0),
        contract_block: 0,
        arbitrator: Address::ZERO,
        members: vec![member],
        params,
    };
    let setup = DriverSetup::from_genesis(&genesis, 0, false);
    (keys, setup)
}

fn spec() -> SettlementSpec {
    SettlementSpec { index: Index::EthUsd, maturity: 1_790_000_000, params: MethodologyParams::default() }
}

fn observation(spec: &SettlementSpec, value: u128) -> Unsigned {
    Unsigned::Observation(Observation {
        settlement_id: spec.id(),
        observed_at: spec.observe_at(),
        computation: Computation {
            partitions: vec![Partition::counted(4, Wad::from_raw(value)); 12],
            venues: vec![],
            value: NodeValue::Value(Wad::from_raw(value)),
        },
        trade_digest: B256::ZERO,
    })
}

/// The observer's observation goes through the same policy as every other message: a slot that
/// holds another observation (signed before a crash, from other trades) is not signed again and
/// nothing is stored; the same observation again is fine.
#[test]
fn a_taken_observation_slot_signs_and_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    let (keys, setup) = setup();
    let spec = spec();
    let id = spec.id();
    let first = sign_and_keep(&store, &keys, &setup, id, observation(&spec, 2500)).unwrap();
    let Some(GossipMessage::Observation(first)) = first else { panic!("an empty slot signs: {first:?}") };
    let slot =
        SigningSlot { settlement: id, kind: SignedKind::Observation, decision: DecisionId::Value, round: 0 };
    assert_eq!(store.signed(slot).unwrap(), Some(first.hash()));

    let other = sign_and_keep(&store, &keys, &setup, id, observation(&spec, 2501)).unwrap();
    assert_eq!(other, None, "another observation in a taken slot is not signed");
    assert_eq!(store.observations(&id).unwrap(), vec![first.clone()], "nor stored");

    let again = sign_and_keep(&store, &keys, &setup, id, observation(&spec, 2500)).unwrap();
    assert_eq!(again, Some(GossipMessage::Observation(first)), "the same observation is the same signature");
}

#[test]
fn a_vote_in_a_taken_round_is_skipped_and_another_round_is_free() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    let (keys, setup) = setup();
    let id = spec().id();
    let vote = |round, byte| {
        Unsigned::Vote(Vote {
            settlement_id: id,
            decision: DecisionId::Value,
            round,
            step: VoteStep::Prevote,
            proposal_hash: Some(B256::repeat_byte(byte)),
        })
    };
    assert!(sign_and_keep(&store, &keys, &setup, id, vote(2, 1)).unwrap().is_some());
    assert_eq!(sign_and_keep(&store, &keys, &setup, id, vote(2, 2)).unwrap(), None, "one vote per round");
    assert_eq!(store.votes(&id).unwrap().len(), 1);
    assert!(
        sign_and_keep(&store, &keys, &setup, id, vote(3, 2)).unwrap().is_some(),
        "the next round is free"
    );
}

/// A catch-up answer leaves only once what it holds is on disk: the service flushes its own
/// writes at its next release, and a peer must never hold a vote this member could lose in a
/// crash and sign differently after it.
#[test]
fn a_catch_up_answer_holds_only_what_is_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(SledStore::open(dir.path()).unwrap());
    let (keys, setup) = setup();
    let id = spec().id();
    let vote = |round| {
        Unsigned::Vote(Vote {
            settlement_id: id,
            decision: DecisionId::Value,
            round,
            step: VoteStep::Prevote,
            proposal_hash: Some(B256::repeat_byte(1)),
        })
    };
    store.unflushed_bytes();
    sign_and_keep(&*store, &keys, &setup, id, vote(0)).unwrap().expect("signed");
    assert!(store.unflushed_bytes() > 0, "signing alone does not flush (the service's release does)");

    sign_and_keep(&*store, &keys, &setup, id, vote(1)).unwrap().expect("signed");
    let answer = StoreCatchup(store.clone()).catch_up(&id);
    assert_eq!(answer.votes.len(), 2, "the answer holds the vote just signed");
    assert_eq!(store.unflushed_bytes(), 0, "and it was on disk before the answer left");
}
