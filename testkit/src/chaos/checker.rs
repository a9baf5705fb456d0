//! What a chaos run must never show, read from the nodes' stores after they stopped. Pure over
//! what was read, so that each rule is unit-tested against a member that breaks it.

use std::collections::{BTreeMap, BTreeSet};

use alloy::primitives::B256;
use fixd_decision::consensus::Equivocation;
use fixd_node::store::{Store, StoreError};
use fixd_proto::gossip::GossipMessage;
use fixd_proto::signing::PublicKey;
use fixd_proto::types::settlement::SettlementId;
use fixd_proto::value::Wad;

/// What one node's store holds of one settlement.
#[derive(Clone, Debug, Default)]
pub struct Held {
    pub messages: Vec<GossipMessage>,
    pub equivocations: Vec<Equivocation>,
}

/// Reads what `store` holds of settlement `id`: every signed message and every piece of
/// equivocation evidence.
pub fn read(store: &dyn Store, id: &SettlementId) -> Result<Held, StoreError> {
    let mut messages: Vec<GossipMessage> = Vec::new();
    messages.extend(store.observations(id)?.into_iter().map(GossipMessage::Observation));
    messages.extend(store.proposals(id)?.into_iter().map(GossipMessage::proposal));
    messages.extend(store.votes(id)?.into_iter().map(GossipMessage::Vote));
    messages.extend(store.report_signatures(id)?.into_iter().map(GossipMessage::ReportSignature));
    messages.extend(store.review_votes(id)?.into_iter().map(GossipMessage::ReviewVote));
    Ok(Held { messages, equivocations: store.equivocations(id)? })
}

/// The slot a signed message takes: its signer may sign one message there.
pub(crate) fn slot(message: &GossipMessage) -> Option<String> {
    let detail = match message {
        GossipMessage::ReviewVote(v) => format!("review {}", v.payload.dispute_id),
        GossipMessage::Dispute(_) | GossipMessage::Ruling(_) => return None,
        other => {
            format!("{:?} {:?} round {} {:?}", other.kind(), other.decision(), other.round(), other.step())
        }
    };
    Some(format!("{} {detail}", message.settlement_id()))
}

/// Every honest member that signed two different messages for one slot, as any store saw them
/// (messages side by side, or evidence a store kept), described.
pub fn honest_equivocations(honest: &BTreeSet<PublicKey>, held: &[Held]) -> Vec<String> {
    let mut by_slot: BTreeMap<(PublicKey, String), BTreeSet<B256>> = BTreeMap::new();
    for message in held.iter().flat_map(|h| &h.messages) {
        if let Some(slot) = slot(message) {
            by_slot.entry((*message.signer(), slot)).or_default().insert(message.hash());
        }
    }
    let mut found: Vec<String> = by_slot
        .into_iter()
        .filter(|((signer, _), hashes)| honest.contains(signer) && hashes.len() > 1)
        .map(|((signer, slot), hashes)| format!("{signer:?} signed {} messages for {slot}", hashes.len()))
        .collect();
    for evidence in held.iter().flat_map(|h| &h.equivocations) {
        let signer = evidence.first.signer();
        if honest.contains(signer) {
            found.push(format!("a store holds equivocation evidence against honest {signer:?}"));
        }
    }
    found
}

/// The distinct final reports honest members signed (their hashes): one, once published.
pub fn honest_final_reports(honest: &BTreeSet<PublicKey>, held: &[Held]) -> BTreeSet<B256> {
    held.iter()
        .flat_map(|h| &h.messages)
        .filter_map(|m| match m {
            GossipMessage::ReportSignature(s) if honest.contains(&s.signer) => {
                Some(fixd_proto::hash::hash_bcs(&s.payload.report))
            }
            _ => None,
        })
        .collect()
}

/// The lowest and highest value that honest members observed.
pub fn honest_range(honest: &BTreeSet<PublicKey>, held: &[Held]) -> Option<(Wad, Wad)> {
    let values: Vec<Wad> = held
        .iter()
        .flat_map(|h| &h.messages)
        .filter_map(|m| match m {
            GossipMessage::Observation(o) if honest.contains(&o.signer) => {
                o.payload.computation.value.value()
            }
            _ => None,
        })
        .collect();
    Some((*values.iter().min()?, *values.iter().max()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use fixd_proto::signing::Signed;
    use fixd_proto::types::certificate::{DecisionId, Vote, VoteStep};

    const NETWORK: B256 = B256::ZERO;
    const SETTLEMENT: B256 = B256::repeat_byte(5);

    fn key(k: u8) -> SigningKey {
        SigningKey::from_bytes(&[k; 32])
    }

    fn public(k: u8) -> PublicKey {
        Signed::sign(&key(k), &NETWORK, vote(0, 0)).signer
    }

    fn vote(round: u32, for_hash: u8) -> Vote {
        Vote {
            settlement_id: SETTLEMENT,
            decision: DecisionId::Value,
            round,
            step: VoteStep::Prevote,
            proposal_hash: Some(B256::repeat_byte(for_hash)),
        }
    }

    fn signed_vote(k: u8, round: u32, for_hash: u8) -> GossipMessage {
        GossipMessage::Vote(Signed::sign(&key(k), &NETWORK, vote(round, for_hash)))
    }

    #[test]
    fn two_votes_of_one_honest_member_for_one_round_are_caught_across_stores_and_a_faulty_ones_are_not_reported()
     {
        let honest: BTreeSet<PublicKey> = [public(1), public(2)].into();
        // Node A holds member 1's vote for proposal 7; node B holds its vote for proposal 8.
        let a = Held {
            messages: vec![signed_vote(1, 0, 7), signed_vote(2, 0, 7), signed_vote(3, 0, 7)],
            ..Held::default()
        };
        let b = Held {
            messages: vec![signed_vote(1, 0, 8), signed_vote(2, 0, 7), signed_vote(3, 0, 9)],
            ..Held::default()
        };
        let found = honest_equivocations(&honest, &[a.clone(), b]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("signed 2 messages"), "{found:?}");
        // The same vote held twice, and votes of other rounds, are not equivocation.
        let c = Held { messages: vec![signed_vote(1, 0, 7), signed_vote(1, 1, 8)], ..Held::default() };
        assert!(honest_equivocations(&honest, &[a, c]).is_empty());
    }

    #[test]
    fn evidence_against_an_honest_member_is_a_violation() {
        let honest: BTreeSet<PublicKey> = [public(1)].into();
        let evidence = Equivocation { first: signed_vote(1, 0, 7), second: signed_vote(1, 0, 8) };
        let held = Held { equivocations: vec![evidence], ..Held::default() };
        assert_eq!(honest_equivocations(&honest, std::slice::from_ref(&held)).len(), 1);
        let only_faulty: BTreeSet<PublicKey> = [public(2)].into();
        assert!(honest_equivocations(&only_faulty, &[held]).is_empty());
    }
}
