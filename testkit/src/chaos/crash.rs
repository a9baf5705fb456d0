//! Crash consistency (issue 17): where a SIGKILL found a node, read from the store it left, and
//! what its restart must keep. Pure over what was read, so that each rule is unit-tested.

use std::collections::BTreeMap;
use std::fmt;

use alloy::primitives::B256;
use fixd_node::store::{Store, StoreError};
use fixd_proto::signing::PublicKey;
use fixd_proto::types::certificate::DecisionId;
use fixd_proto::types::settlement::SettlementId;

use super::checker::{Held, slot};

/// The phase of a settlement's life a node was in when it was killed, by what its store held.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Its observation not yet signed.
    Observation,
    /// Observed; no vote of its own yet (waiting for or making the proposal).
    Proposal,
    /// Voted (prevote or precommit); no certificate yet.
    Vote,
    /// Certified, no dispute under review.
    ChallengeWindow,
    /// A dispute held and not yet reviewed.
    Review,
    /// The window closed by this node's fold: the committee's report decision under way (this
    /// node voted in it, or it is decided), this node's report signature not yet signed.
    ReportSigning,
    /// This node signed the report; no publication seen on the chain (collecting q signatures,
    /// and the publisher of the turn sending).
    PublishSending,
    /// A publication seen, short of the confirmations it needs.
    PublishConfirming,
    /// Published with its confirmations.
    Published,
}

impl Phase {
    pub const ALL: [Phase; 9] = [
        Phase::Observation,
        Phase::Proposal,
        Phase::Vote,
        Phase::ChallengeWindow,
        Phase::Review,
        Phase::ReportSigning,
        Phase::PublishSending,
        Phase::PublishConfirming,
        Phase::Published,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Observation => "observation",
            Phase::Proposal => "proposal",
            Phase::Vote => "vote",
            Phase::ChallengeWindow => "challenge window",
            Phase::Review => "review",
            Phase::ReportSigning => "report signing",
            Phase::PublishSending => "publish sending",
            Phase::PublishConfirming => "publish confirming",
            Phase::Published => "published",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The facts of one settlement a store holds that place it in a phase.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub observed: bool,
    pub voted: bool,
    pub certified: bool,
    pub disputes: usize,
    pub reviewed: usize,
    /// This node voted in the report decision.
    pub report_voted: bool,
    /// The challenge window closed, with the fold's lag (`deadline + max_clock_skew +
    /// round_timeout`), as the caller's clock and the deadline the node shows say: the report
    /// decision runs, though the store shows nothing of it until this node votes in it. Not in
    /// the store: [`Progress::read`] leaves it false.
    pub window_closed: bool,
    pub is_final: bool,
    /// This node signed its final report signature.
    pub report_signed: bool,
    /// The confirmations of the publication the node saw, if any.
    pub publication: Option<u64>,
}

impl Progress {
    /// What `store` holds of settlement `id`, with `own` the node's key.
    pub fn read(store: &dyn Store, id: &SettlementId, own: &PublicKey) -> Result<Progress, StoreError> {
        let observed = store.observations(id)?.iter().any(|o| o.signer == *own);
        let own_votes: Vec<_> = store.votes(id)?.into_iter().filter(|v| v.signer == *own).collect();
        let voted = own_votes.iter().any(|v| v.payload.decision == DecisionId::Value);
        let report_voted = own_votes.iter().any(|v| v.payload.decision == DecisionId::Report);
        Ok(Progress {
            observed,
            voted,
            certified: store.certificate(id)?.is_some(),
            disputes: store.disputes(id)?.len(),
            reviewed: store.review_certificates(id)?.len(),
            report_voted,
            window_closed: false,
            is_final: store.final_record(id)?.is_some(),
            report_signed: store.report_signatures(id)?.iter().any(|s| s.signer == *own),
            publication: store.publication(id)?.map(|p| p.confirmations),
        })
    }

    /// The phase these facts place the settlement in, publications needing `confirmations`.
    pub fn phase(&self, confirmations: u64) -> Phase {
        match self.publication {
            Some(seen) if seen >= confirmations.max(1) => return Phase::Published,
            Some(_) => return Phase::PublishConfirming,
            None => {}
        }
        match () {
            _ if self.report_signed => Phase::PublishSending,
            _ if self.is_final || self.report_voted => Phase::ReportSigning,
            _ if self.certified && self.disputes > self.reviewed => Phase::Review,
            _ if self.certified && self.window_closed => Phase::ReportSigning,
            _ if self.certified => Phase::ChallengeWindow,
            _ if self.voted => Phase::Vote,
            _ if self.observed => Phase::Proposal,
            _ => Phase::Observation,
        }
    }
}

/// What `signer` signed, as `held` shows it: each slot's message hash.
pub fn signed_by(held: &Held, signer: &PublicKey) -> BTreeMap<String, B256> {
    held.messages.iter().filter(|m| m.signer() == signer).filter_map(|m| Some((slot(m)?, m.hash()))).collect()
}

/// What a restart lost or changed: each slot `signer` had signed in `before` (its store at the
/// kill) that `after` (its store later) lacks or holds a different message for, described.
pub fn lost_or_changed(before: &Held, after: &Held, signer: &PublicKey) -> Vec<String> {
    let later = signed_by(after, signer);
    signed_by(before, signer)
        .into_iter()
        .filter_map(|(slot, hash)| match later.get(&slot) {
            Some(h) if *h == hash => None,
            Some(h) => Some(format!("{slot}: signed {hash} before the kill, {h} after")),
            None => Some(format!("{slot}: signed {hash} before the kill, missing after")),
        })
        .collect()
}

/// Messages of `signer` that other nodes hold but its own store does not: sent before they were
/// written down.
pub fn sent_but_not_kept(own: &Held, others: &[&Held], signer: &PublicKey) -> Vec<String> {
    let kept = signed_by(own, signer);
    let mut missing: Vec<String> = others
        .iter()
        .flat_map(|h| signed_by(h, signer))
        .filter(|(slot, hash)| kept.get(slot) != Some(hash))
        .map(|(slot, hash)| format!("{slot}: {hash} reached a peer, not in its own store"))
        .collect();
    missing.sort();
    missing.dedup();
    missing
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use fixd_proto::gossip::GossipMessage;
    use fixd_proto::signing::Signed;
    use fixd_proto::types::certificate::{Vote, VoteStep};

    const NETWORK: B256 = B256::ZERO;

    fn key(k: u8) -> SigningKey {
        SigningKey::from_bytes(&[k; 32])
    }

    fn vote(k: u8, round: u32, for_hash: u8) -> GossipMessage {
        let vote = Vote {
            settlement_id: B256::repeat_byte(5),
            decision: DecisionId::Value,
            round,
            step: VoteStep::Prevote,
            proposal_hash: Some(B256::repeat_byte(for_hash)),
        };
        GossipMessage::Vote(Signed::sign(&key(k), &NETWORK, vote))
    }

    fn held(messages: Vec<GossipMessage>) -> Held {
        Held { messages, ..Held::default() }
    }

    #[test]
    fn each_fact_moves_the_phase_on_and_the_latest_wins() {
        let mut p = Progress::default();
        let mut seen = vec![p.phase(2)];
        p.observed = true;
        seen.push(p.phase(2));
        p.voted = true;
        seen.push(p.phase(2));
        p.certified = true;
        seen.push(p.phase(2));
        p.disputes = 1;
        seen.push(p.phase(2));
        p.reviewed = 1;
        seen.push(p.phase(2));
        p.window_closed = true;
        seen.push(p.phase(2));
        p.report_voted = true;
        seen.push(p.phase(2));
        p.is_final = true;
        seen.push(p.phase(2));
        p.report_signed = true;
        seen.push(p.phase(2));
        p.publication = Some(1);
        seen.push(p.phase(2));
        p.publication = Some(2);
        seen.push(p.phase(2));
        use Phase::*;
        let expected = [
            Observation,
            Proposal,
            Vote,
            ChallengeWindow,
            Review,
            ChallengeWindow,
            ReportSigning,
            ReportSigning,
            ReportSigning,
            PublishSending,
            PublishConfirming,
            Published,
        ];
        assert_eq!(seen, expected);
        // A publication seen by a node that missed everything before it still counts.
        let only = Progress { publication: Some(3), ..Progress::default() };
        assert_eq!(only.phase(2), Published);
    }

    #[test]
    fn a_restart_that_drops_or_changes_a_signed_message_is_caught() {
        let me = *vote(1, 0, 7).signer();
        let before = held(vec![vote(1, 0, 7), vote(1, 1, 7), vote(2, 0, 7)]);
        let kept = held(vec![vote(1, 0, 7), vote(1, 1, 7), vote(1, 2, 9)]);
        assert!(lost_or_changed(&before, &kept, &me).is_empty(), "kept, and more signed later");
        let dropped = held(vec![vote(1, 0, 7)]);
        let changed = held(vec![vote(1, 0, 8), vote(1, 1, 7)]);
        assert_eq!(lost_or_changed(&before, &dropped, &me).len(), 1);
        let found = lost_or_changed(&before, &changed, &me);
        assert_eq!(found.len(), 1);
        assert!(found[0].contains("after"), "{found:?}");
    }

    #[test]
    fn a_message_a_peer_holds_that_its_signer_did_not_keep_is_caught() {
        let me = *vote(1, 0, 7).signer();
        let own = held(vec![vote(1, 0, 7)]);
        let peer = held(vec![vote(1, 0, 7), vote(2, 0, 7)]);
        assert!(sent_but_not_kept(&own, &[&peer], &me).is_empty());
        let ahead = held(vec![vote(1, 1, 7)]);
        assert_eq!(sent_but_not_kept(&own, &[&peer, &ahead, &ahead], &me).len(), 1, "listed once");
    }
}
