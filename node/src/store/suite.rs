//! One test suite that every [`Store`] backend must pass. Each case opens the store in a fresh
//! directory through `open`, and the restart cases drop it and open the same directory again.

use std::path::Path;

use alloy_primitives::B256;
use ed25519_dalek::SigningKey;
use fixd_proto::signing::{Signed, endorse};
use fixd_proto::types::certificate::{
    Certificate, DecisionId, Proposal, ProposalSource, RoundProposal, Vote, VoteStep,
};
use fixd_proto::types::observation::{Computation, NoValueReason, NodeValue, Observation, Partition};
use fixd_proto::types::settlement::{Index, MethodologyParams, SettlementSpec};
use fixd_proto::types::venue::{Trade, Venue};
use fixd_proto::value::Wad;

use super::{SignedKind, SigningSlot, Store, StoreError};
use fixd_decision::consensus::Equivocation;
use fixd_proto::gossip::GossipMessage;

fn spec(maturity: u64) -> SettlementSpec {
    SettlementSpec { index: Index::EthUsd, maturity, params: MethodologyParams::default() }
}

fn trade(id: u32) -> Trade {
    Trade {
        venue: Venue::Kraken,
        id: id.to_string(),
        time_ms: 1_749_743_000_000 + u64::from(id),
        price: Wad::parse("2601.5").unwrap(),
        size: Wad::parse("0.25").unwrap(),
    }
}

pub(crate) fn observation(spec: &SettlementSpec, signer: u8) -> Signed<Observation> {
    let payload = Observation {
        settlement_id: spec.id(),
        observed_at: spec.observe_at(),
        computation: Computation {
            partitions: vec![Partition::not_counted(0); 12],
            venues: vec![],
            value: NodeValue::NoValue(NoValueReason::NoVenues),
        },
        trade_digest: B256::repeat_byte(signer),
    };
    Signed::sign(&SigningKey::from_bytes(&[signer; 32]), &B256::ZERO, payload)
}

/// Runs every case against the backend `open` builds.
pub(crate) fn run<S: Store>(open: impl Fn(&Path) -> S) {
    settlements_round_trip(&open);
    settlements_page_by_maturity(&open);
    trades_round_trip_per_venue(&open);
    observations_are_per_signer(&open);
    signing_slots_refuse_a_second_message(&open);
    proposals_votes_and_certificates_round_trip(&open);
    a_second_message_never_replaces_the_first_and_evidence_keeps_both(&open);
    everything_survives_a_restart(&open);
    disputes_reviews_and_rulings_keep_the_first(&open);
    left_out_venues_round_trip(&open);
    every_write_moves_its_settlements_version(&open);
}

/// Runs `write` and asserts that it moved `id`'s version, and that reading it back did not.
fn moves_version<S: Store>(store: &S, id: &B256, write: impl FnOnce(&S)) {
    let before = store.version(id);
    write(store);
    let after = store.version(id);
    assert_ne!(after, before, "a write for {id} must move its version");
    let _ = (store.settlement(id), store.observations(id), store.votes(id), store.publication(id));
    assert_eq!(store.version(id), after, "reads must not move the version");
}

/// The API keeps a settlement's view while its version stands: every kind of write moves it.
fn every_write_moves_its_settlements_version<S: Store>(open: &impl Fn(&Path) -> S) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let s = spec(17);
    let id = s.id();
    let slot =
        SigningSlot { settlement: id, kind: SignedKind::Prevote, decision: DecisionId::Value, round: 0 };
    let on_chain = fixd_decision::publication::OnChain {
        value: Wad::ONE,
        tx_hash: B256::repeat_byte(1),
        block_number: 7,
        confirmations: 1,
        publisher: alloy_primitives::Address::repeat_byte(2),
    };
    moves_version(&store, &id, |st| st.put_settlement(&s).unwrap());
    moves_version(&store, &id, |st| st.put_trades(&id, Venue::Kraken, &[trade(1)]).unwrap());
    moves_version(&store, &id, |st| st.put_observation(&observation(&s, 1)).unwrap());
    moves_version(&store, &id, |st| st.record_signed(slot, B256::repeat_byte(3)).unwrap());
    moves_version(&store, &id, |st| st.put_publication(&id, Some(&on_chain)).unwrap());
    moves_version(&store, &id, |st| {
        st.put_publication(&id, Some(&fixd_decision::publication::OnChain { confirmations: 2, ..on_chain }))
            .unwrap()
    });
    moves_version(&store, &id, |st| st.put_publication(&id, None).unwrap());
    moves_version(&store, &id, |st| st.put_left_out(&id, &[]).unwrap());
    moves_version(&store, &id, |st| st.put_late_relay(&id, &B256::repeat_byte(4)).unwrap());
    // Another settlement's writes leave it alone (their ids start differently).
    let other = spec(18);
    assert_ne!(other.id()[..2], id[..2]);
    let version = store.version(&id);
    store.put_settlement(&other).unwrap();
    store.put_observation(&observation(&other, 1)).unwrap();
    assert_eq!(store.version(&id), version);
}

fn settlements_round_trip<S: Store>(open: &impl Fn(&Path) -> S) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    assert_eq!(store.settlements().unwrap(), vec![]);
    let mut copy = super::SettlementList::default();
    assert!(copy.current(&store).unwrap().is_empty());
    let (a, b) = (spec(1_749_744_000), spec(1_749_747_600));
    let version = store.settlements_version();
    store.put_settlement(&a).unwrap();
    assert_ne!(store.settlements_version(), version, "a new settlement moves the version");
    assert_eq!(copy.current(&store).unwrap()[..], [(a.id(), a.clone())], "and the copy follows");
    store.put_settlement(&b).unwrap();
    store.put_settlement(&a).unwrap();
    assert_eq!(copy.current(&store).unwrap().len(), 2);
    assert_eq!(store.settlement(&a.id()).unwrap(), Some(a.clone()));
    assert_eq!(store.settlement(&B256::ZERO).unwrap(), None);
    let mut all = store.settlements().unwrap();
    all.sort_by_key(|s| s.maturity);
    assert_eq!(all, vec![a, b]);
}

/// The maturity order reads from just after a cursor and stops when asked, whatever the order
/// of the writes; a store whose index lost entries (a crash between the writes) rebuilds it.
fn settlements_page_by_maturity<S: Store>(open: &impl Fn(&Path) -> S) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let specs: Vec<SettlementSpec> =
        [5u64, 1, 4, 2, 3].iter().map(|k| spec(1_749_744_000 + k * 3600)).collect();
    for s in &specs {
        store.put_settlement(s).unwrap();
    }
    let page = |after: Option<(u64, B256)>, limit: usize| {
        let mut seen = Vec::new();
        store
            .settlements_by_maturity(after, &mut |s| {
                seen.push(s.maturity);
                Ok(seen.len() < limit)
            })
            .unwrap();
        seen
    };
    let first = page(None, 2);
    assert_eq!(first, vec![1_749_747_600, 1_749_751_200]);
    let last = specs.iter().find(|s| s.maturity == first[1]).unwrap();
    assert_eq!(page(Some((last.maturity, last.id())), 10), vec![1_749_754_800, 1_749_758_400, 1_749_762_000]);
    assert_eq!(page(Some((u64::MAX, B256::repeat_byte(0xff))), 10), Vec::<u64>::new());
}

fn trades_round_trip_per_venue<S: Store>(open: &impl Fn(&Path) -> S) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = spec(1).id();
    assert_eq!(store.trades(&id, Venue::Kraken).unwrap(), None);
    store.put_trades(&id, Venue::Kraken, &[trade(1), trade(2)]).unwrap();
    store.put_trades(&id, Venue::Gemini, &[]).unwrap();
    assert_eq!(store.trades(&id, Venue::Kraken).unwrap(), Some(vec![trade(1), trade(2)]));
    assert_eq!(store.trades(&id, Venue::Gemini).unwrap(), Some(vec![]));
    assert_eq!(store.trades(&id, Venue::Coinbase).unwrap(), None);
    assert_eq!(store.trades(&spec(2).id(), Venue::Kraken).unwrap(), None);
}

fn observations_are_per_signer<S: Store>(open: &impl Fn(&Path) -> S) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (s1, s2) = (spec(1), spec(2));
    store.put_observation(&observation(&s1, 1)).unwrap();
    store.put_observation(&observation(&s1, 2)).unwrap();
    store.put_observation(&observation(&s1, 1)).unwrap();
    store.put_observation(&observation(&s2, 1)).unwrap();
    let got = store.observations(&s1.id()).unwrap();
    assert_eq!(got.len(), 2);
    assert!(got.contains(&observation(&s1, 1)) && got.contains(&observation(&s1, 2)));
    assert_eq!(store.observations(&s2.id()).unwrap(), vec![observation(&s2, 1)]);
}

fn signing_slots_refuse_a_second_message<S: Store>(open: &impl Fn(&Path) -> S) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = spec(1).id();
    for kind in SignedKind::ALL {
        let slot = SigningSlot { settlement: id, kind, decision: DecisionId::Value, round: 3 };
        assert_eq!(store.signed(slot).unwrap(), None);
        store.record_signed(slot, B256::repeat_byte(1)).unwrap();
        store.record_signed(slot, B256::repeat_byte(1)).unwrap();
        let err = store.record_signed(slot, B256::repeat_byte(2)).unwrap_err();
        assert!(matches!(err, StoreError::Equivocation { existing, .. } if existing == B256::repeat_byte(1)));
        assert_eq!(store.signed(slot).unwrap(), Some(B256::repeat_byte(1)));
        // Another round is another slot.
        let next = SigningSlot { round: 4, ..slot };
        store.record_signed(next, B256::repeat_byte(2)).unwrap();
    }
}

fn everything_survives_a_restart<S: Store>(open: &impl Fn(&Path) -> S) {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(7);
    let slot = SigningSlot {
        settlement: s.id(),
        kind: SignedKind::Observation,
        decision: DecisionId::Value,
        round: 0,
    };
    {
        let store = open(dir.path());
        store.put_settlement(&s).unwrap();
        store.put_trades(&s.id(), Venue::Bitstamp, &[trade(9)]).unwrap();
        store.put_observation(&observation(&s, 3)).unwrap();
        store.record_signed(slot, B256::repeat_byte(9)).unwrap();
        store.durable().unwrap();
    }
    let store = open(dir.path());
    assert_eq!(store.settlement(&s.id()).unwrap(), Some(s.clone()));
    assert_eq!(store.trades(&s.id(), Venue::Bitstamp).unwrap(), Some(vec![trade(9)]));
    assert_eq!(store.observations(&s.id()).unwrap(), vec![observation(&s, 3)]);
    assert_eq!(store.signed(slot).unwrap(), Some(B256::repeat_byte(9)));
    assert!(store.record_signed(slot, B256::repeat_byte(8)).is_err(), "the slot stays taken after a restart");
}

fn proposals_votes_and_certificates_round_trip<S: Store>(open: &impl Fn(&Path) -> S) {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(9);
    let key = |i: u8| SigningKey::from_bytes(&[i; 32]);
    let proposal = |round: u32| Proposal {
        settlement_id: s.id(),
        round,
        value: Wad::parse("2600").unwrap(),
        source: ProposalSource::Observations,
        inputs: vec![],
        inputs_root: B256::ZERO,
        challenge_deadline: 10,
        proposed_at: 5,
    };
    let round_proposal = |signer: u8, round: u32| {
        let candidate = Signed::sign(&key(signer), &B256::ZERO, proposal(round));
        Signed::sign(
            &key(signer),
            &B256::ZERO,
            RoundProposal { round, pol_round: None, proposal: candidate, polka: vec![] },
        )
    };
    let (rp0, rp1) = (round_proposal(1, 0), round_proposal(2, 1));
    let p0 = rp0.payload.proposal.clone();
    let vote = |i: u8, round: u32| {
        Signed::sign(
            &key(i),
            &B256::ZERO,
            Vote {
                settlement_id: s.id(),
                decision: DecisionId::Value,
                round,
                step: VoteStep::Prevote,
                proposal_hash: Some(p0.hash()),
            },
        )
    };
    let certificate = Certificate {
        proposal: p0.clone(),
        round: 0,
        votes: vec![endorse(&key(1), &B256::ZERO, &vote(1, 0).payload)],
    };
    {
        let store = open(dir.path());
        assert_eq!(store.certificate(&s.id()).unwrap(), None);
        moves_version(&store, &s.id(), |st| st.put_proposal(&rp1).unwrap());
        store.put_proposal(&rp0).unwrap();
        moves_version(&store, &s.id(), |st| st.put_vote(&vote(2, 0)).unwrap());
        store.put_vote(&vote(1, 0)).unwrap();
        store.put_vote(&vote(1, 0)).unwrap();
        store.put_vote(&vote(1, 1)).unwrap();
        moves_version(&store, &s.id(), |st| st.put_certificate(&certificate).unwrap());
        store.durable().unwrap();
    }
    let store = open(dir.path());
    assert_eq!(store.proposals(&s.id()).unwrap(), vec![rp0, rp1], "by round");
    assert_eq!(store.votes(&s.id()).unwrap().len(), 3, "one per (round, signer)");
    assert_eq!(store.certificate(&s.id()).unwrap(), Some(certificate));
    assert_eq!(store.proposals(&spec(10).id()).unwrap(), vec![]);
}

fn a_second_message_never_replaces_the_first_and_evidence_keeps_both<S: Store>(open: &impl Fn(&Path) -> S) {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(11);
    let first = observation(&s, 4);
    let mut payload = first.payload.clone();
    payload.trade_digest = B256::repeat_byte(0xee);
    let second = Signed::sign(&SigningKey::from_bytes(&[4; 32]), &B256::ZERO, payload);
    let evidence = Equivocation {
        first: GossipMessage::Observation(first.clone()),
        second: GossipMessage::Observation(second.clone()),
    };
    {
        let store = open(dir.path());
        assert_eq!(store.equivocations(&s.id()).unwrap(), vec![]);
        store.put_observation(&first).unwrap();
        store.put_observation(&second).unwrap();
        moves_version(&store, &s.id(), |st| st.put_equivocation(&evidence).unwrap());
        // The same slot again, with the halves swapped: the first evidence stays.
        let swapped = Equivocation { first: evidence.second.clone(), second: evidence.first.clone() };
        store.put_equivocation(&swapped).unwrap();
        store.durable().unwrap();
    }
    let store = open(dir.path());
    assert_eq!(store.observations(&s.id()).unwrap(), vec![first], "the first observation stays");
    assert_eq!(store.equivocations(&s.id()).unwrap(), vec![evidence.clone()]);
    assert_eq!(evidence.check(&B256::ZERO), Ok(()));
    assert_eq!(store.equivocations(&spec(12).id()).unwrap(), vec![]);
}

fn disputes_reviews_and_rulings_keep_the_first<S: Store>(open: &impl Fn(&Path) -> S) {
    use fixd_proto::eip712::{SignedDispute, SignedRuling};
    use fixd_proto::types::dispute::{
        ArbitratorRuling, Dispute, DisputeEscrow, DisputeReason, RelayedDispute, RelayedRuling, ReviewVote,
    };

    let dir = tempfile::tempdir().unwrap();
    let s = spec(13);
    let member = SigningKey::from_bytes(&[7; 32]);
    let dispute = |dispute_id: u8, bond_wei: u128| {
        let dispute = Dispute {
            settlement_id: s.id(),
            dispute_id: B256::repeat_byte(dispute_id),
            proposal_hash: B256::repeat_byte(0x33),
            claimed_value: None,
            reason: DisputeReason::BadData,
            evidence: String::new(),
            bond_wei,
            bond_tx: B256::repeat_byte(0x44),
            disputer: alloy_primitives::Address::repeat_byte(0x55),
        };
        let escrow = DisputeEscrow {
            block_number: 9,
            block_hash: B256::repeat_byte(0x66),
            block_timestamp: 1_000,
            log_index: 0,
            pool_wei: 0,
        };
        let relayed = RelayedDispute {
            dispute: SignedDispute { dispute, signature: Default::default() },
            escrow,
            accepted_at: 1_001,
        };
        Signed::sign(&member, &B256::ZERO, relayed)
    };
    let vote = |signer: u8, recomputes: bool| {
        let payload = ReviewVote {
            settlement_id: s.id(),
            dispute_id: B256::repeat_byte(1),
            proposal_hash: B256::repeat_byte(0x33),
            median_recomputes: recomputes,
            value: NodeValue::Value(Wad::ONE),
            trade_digest: B256::ZERO,
        };
        Signed::sign(&SigningKey::from_bytes(&[signer; 32]), &B256::ZERO, payload)
    };
    let ruling = |upheld: bool| {
        let ruling = ArbitratorRuling {
            settlement_id: s.id(),
            dispute_id: B256::repeat_byte(1),
            value: Wad::ONE,
            upheld,
        };
        let relayed =
            RelayedRuling { ruling: SignedRuling { ruling, signature: Default::default() }, accepted_at: 5 };
        Signed::sign(&member, &B256::ZERO, relayed)
    };
    let (d1, d2) = (dispute(1, 10), dispute(2, 20));
    let certificate = Certificate {
        proposal: Signed::sign(
            &member,
            &B256::ZERO,
            Proposal {
                settlement_id: s.id(),
                round: 4,
                value: Wad::ONE,
                source: ProposalSource::Review { dispute_id: B256::repeat_byte(1) },
                inputs: vec![],
                inputs_root: B256::ZERO,
                challenge_deadline: 0,
                proposed_at: 0,
            },
        ),
        round: 4,
        votes: vec![],
    };
    {
        let store = open(dir.path());
        moves_version(&store, &s.id(), |st| assert!(st.put_dispute(&d2).unwrap()));
        assert!(store.put_dispute(&d1).unwrap());
        assert!(
            !store.put_dispute(&dispute(1, 11)).unwrap(),
            "a second relay of a dispute by one member is not kept"
        );
        assert!(store.put_review_vote(&vote(1, true)).unwrap());
        assert!(!store.put_review_vote(&vote(1, true)).unwrap(), "the same vote again is not new");
        assert!(store.put_review_vote(&vote(1, false)).unwrap(), "a second, different vote is kept as well");
        moves_version(&store, &s.id(), |st| assert!(st.put_review_vote(&vote(2, false)).unwrap()));
        moves_version(&store, &s.id(), |st| {
            st.put_review_certificate(&B256::repeat_byte(1), &certificate).unwrap()
        });
        moves_version(&store, &s.id(), |st| assert!(st.put_ruling(&ruling(true)).unwrap()));
        assert!(!store.put_ruling(&ruling(false)).unwrap());
        store.put_late_relay(&s.id(), &ruling(true).hash()).unwrap();
        store.put_late_relay(&s.id(), &ruling(true).hash()).unwrap();
        store.durable().unwrap();
    }
    let store = open(dir.path());
    assert_eq!(store.disputes(&s.id()).unwrap(), vec![d1, d2], "by dispute id, the first kept");
    let votes = store.review_votes(&s.id()).unwrap();
    assert_eq!(votes.len(), 3);
    assert!(votes.contains(&vote(1, true)) && votes.contains(&vote(1, false)), "both of signer 1's votes");
    assert_eq!(store.review_certificates(&s.id()).unwrap(), vec![(B256::repeat_byte(1), certificate)]);
    assert_eq!(store.rulings(&s.id()).unwrap(), vec![ruling(true)]);
    let late: Vec<B256> = store.late_relays(&s.id()).unwrap().into_iter().collect();
    assert_eq!(late, vec![ruling(true).hash()], "a late relay's mark survives a restart, once");
    assert!(store.late_relays(&spec(14).id()).unwrap().is_empty());
    assert_eq!(store.disputes(&spec(14).id()).unwrap(), vec![]);
    assert!(store.has_dispute(&s.id(), &B256::repeat_byte(2)).unwrap());
    assert!(!store.has_dispute(&s.id(), &B256::repeat_byte(3)).unwrap());
    assert!(store.has_ruling(&s.id(), &B256::repeat_byte(1)).unwrap());
    assert!(!store.has_ruling(&spec(14).id(), &B256::repeat_byte(1)).unwrap());
}

fn left_out_venues_round_trip<S: Store>(open: &impl Fn(&Path) -> S) {
    use crate::venues::{LeftOut, LeftOutReason, VenueError};
    let dir = tempfile::tempdir().unwrap();
    let s = spec(15);
    let left_out = vec![
        LeftOut::failed(&VenueError::Http { venue: Venue::Kraken, status: 500, message: "down".into() }),
        LeftOut {
            venue: Venue::Gemini,
            reason: LeftOutReason::TooFewPartitions,
            status: None,
            detail: "gemini traded in 2 of 12 partitions".into(),
        },
    ];
    {
        let store = open(dir.path());
        assert_eq!(store.left_out(&s.id()).unwrap(), vec![], "nothing before the observation");
        store.put_left_out(&s.id(), &left_out[..1]).unwrap();
        store.put_left_out(&s.id(), &left_out).unwrap();
        store.durable().unwrap();
    }
    let store = open(dir.path());
    assert_eq!(store.left_out(&s.id()).unwrap(), left_out, "the last record, after a restart");
    assert_eq!(store.left_out(&spec(16).id()).unwrap(), vec![]);
}
