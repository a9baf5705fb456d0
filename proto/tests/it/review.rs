//! Review certificates: a dispute round's reviewed value certified from exactly q signed
//! review votes of that dispute and that contested proposal; each fault named.

use alloy_primitives::B256;
use fixd_proto::certify::{
    CertifyError, ReviewTarget, Role, check_review_proposal, verify_review_certificate,
};
use fixd_proto::merkle::merkle_root;
use fixd_proto::signing::Signed;
use fixd_proto::types::certificate::{Certificate, Proposal, ProposalSource};
use fixd_proto::types::dispute::ReviewVote;
use fixd_proto::types::observation::{NoValueReason, NodeValue};
use fixd_proto::value::Wad;

use crate::certify::{Fixture, PROPOSED_AT, fixture, flip};

const DISPUTE: B256 = B256::repeat_byte(0xd1);
const CONTESTED: B256 = B256::repeat_byte(0xc0);
const ROUND: u32 = 5;

fn target() -> ReviewTarget {
    ReviewTarget { dispute_id: DISPUTE, contested: CONTESTED }
}

fn w(s: &str) -> Wad {
    Wad::parse(s).unwrap()
}

impl Fixture {
    fn review_vote(&self, member: usize, value: NodeValue) -> Signed<ReviewVote> {
        let vote = ReviewVote {
            settlement_id: self.spec.id(),
            dispute_id: DISPUTE,
            proposal_hash: CONTESTED,
            median_recomputes: true,
            value,
            trade_digest: B256::repeat_byte(member as u8),
        };
        Signed::sign(&self.keys[member], &self.network_id, vote)
    }

    /// Members 0..=3 reviewed 2490.1, 2490.2, 2490.3, 2490.4.
    fn review_votes(&self) -> Vec<Signed<ReviewVote>> {
        (0..4).map(|i| self.review_vote(i, NodeValue::Value(w(&format!("2490.{}", i + 1))))).collect()
    }

    fn review_proposal(&self, listed: &[Signed<ReviewVote>]) -> Proposal {
        let mut inputs: Vec<B256> = listed.iter().map(Signed::hash).collect();
        inputs.sort();
        let values: Vec<Wad> = listed.iter().filter_map(|v| v.payload.value.value()).collect();
        Proposal {
            settlement_id: self.spec.id(),
            round: ROUND,
            value: fixd_proto::methodology::settlement_value(&values).unwrap_or(Wad::ZERO),
            source: ProposalSource::Review { dispute_id: DISPUTE },
            inputs_root: merkle_root(&inputs),
            inputs,
            challenge_deadline: PROPOSED_AT + 3600,
            proposed_at: PROPOSED_AT,
        }
    }

    fn check_review(&self, p: &Signed<Proposal>, votes: &[Signed<ReviewVote>]) -> Result<(), CertifyError> {
        check_review_proposal(&self.committee, &self.network_id, &self.spec, p, &target(), votes, None, 5)
    }

    fn signed_review(&self, p: Proposal) -> Signed<Proposal> {
        self.sign(self.leader(p.round), p)
    }
}

#[test]
fn exactly_q_review_votes_certify_their_median() {
    let fx = fixture();
    let votes = fx.review_votes();
    let p = fx.signed_review(fx.review_proposal(&votes[1..]));
    assert_eq!(p.payload.value, w("2490.3"));
    // Extra votes held but not listed are fine.
    fx.check_review(&p, &votes).unwrap();
    let certificate = Certificate { votes: fx.votes(&p, &[0, 2, 3]), round: p.payload.round, proposal: p };
    let value =
        verify_review_certificate(&fx.committee, &fx.network_id, &fx.spec, &certificate, &target(), &votes);
    assert_eq!(value, Ok(w("2490.3")));
    // Two votes make no certificate.
    let short = Certificate { votes: fx.votes(&certificate.proposal, &[0, 2]), ..certificate.clone() };
    assert_eq!(
        verify_review_certificate(&fx.committee, &fx.network_id, &fx.spec, &short, &target(), &votes),
        Err(CertifyError::TooFewVotes { have: 2, need: 3 })
    );
    // A flipped bit in a listed review vote's signature is named.
    let mut forged = votes.clone();
    flip(&mut forged[2].signature, 7);
    let signer = forged[2].signer;
    let p = fx.signed_review(fx.review_proposal(&votes[1..]));
    // The hash covers the signature, so the forged vote is another input: list the forged ones.
    let p2 = fx.signed_review(fx.review_proposal(&forged[1..]));
    assert_eq!(
        fx.check_review(&p2, &forged),
        Err(CertifyError::BadSignature { signer, role: Role::Reviewer })
    );
    assert_eq!(fx.check_review(&p, &votes), Ok(()));
}

#[test]
fn a_review_lists_exactly_q_votes_each_with_a_value() {
    let fx = fixture();
    let votes = fx.review_votes();
    let four = fx.signed_review(fx.review_proposal(&votes));
    assert_eq!(fx.check_review(&four, &votes), Err(CertifyError::ReviewVoteCount { have: 4, need: 3 }));
    let two = fx.signed_review(fx.review_proposal(&votes[..2]));
    assert_eq!(fx.check_review(&two, &votes), Err(CertifyError::ReviewVoteCount { have: 2, need: 3 }));
    let none = fx.review_vote(1, NodeValue::NoValue(NoValueReason::NoVenues));
    let listed = vec![votes[0].clone(), none.clone(), votes[2].clone()];
    let p = fx.signed_review(fx.review_proposal(&listed));
    assert_eq!(
        fx.check_review(&p, &listed),
        Err(CertifyError::ReviewVoteWithoutValue { signer: none.signer })
    );
}

#[test]
fn review_faults_are_named() {
    let fx = fixture();
    let votes = fx.review_votes();
    let listed = &votes[..3];
    let honest = fx.review_proposal(listed);

    // An observations proposal is not a review; a review of another dispute is not this one.
    let mut p = honest.clone();
    p.source = ProposalSource::Observations;
    assert_eq!(fx.check_review(&fx.signed_review(p), &votes), Err(CertifyError::NotAReview));
    let other = B256::repeat_byte(0xd2);
    let mut p = honest.clone();
    p.source = ProposalSource::Review { dispute_id: other };
    assert_eq!(
        fx.check_review(&fx.signed_review(p), &votes),
        Err(CertifyError::ReviewOfOtherDispute { expected: DISPUTE, got: other })
    );
    // Not the round's leader.
    let not_leader = (0..4).find(|&m| m != fx.leader(ROUND)).unwrap();
    assert!(matches!(
        fx.check_review(&fx.sign(not_leader, honest.clone()), &votes),
        Err(CertifyError::WrongLeader { round: ROUND, .. })
    ));
    // A wrong median.
    let mut p = honest.clone();
    p.value = w("2490.25");
    assert_eq!(
        fx.check_review(&fx.signed_review(p), &votes),
        Err(CertifyError::WrongValue { proposed: w("2490.25"), recomputed: w("2490.2") })
    );
    // A vote for another dispute, or of another proposal, or twice by one member.
    let mut strays = votes.clone();
    let mut v = strays[1].payload.clone();
    v.dispute_id = other;
    strays[1] = Signed::sign(&fx.keys[1], &fx.network_id, v);
    let p = fx.signed_review(fx.review_proposal(&strays[..3]));
    assert_eq!(
        fx.check_review(&p, &strays),
        Err(CertifyError::ReviewOfOtherDispute { expected: DISPUTE, got: other })
    );
    let mut strays = votes.clone();
    let mut v = strays[1].payload.clone();
    v.proposal_hash = B256::repeat_byte(0x99);
    strays[1] = Signed::sign(&fx.keys[1], &fx.network_id, v);
    let p = fx.signed_review(fx.review_proposal(&strays[..3]));
    assert_eq!(
        fx.check_review(&p, &strays),
        Err(CertifyError::ReviewOfOtherProposal {
            signer: strays[1].signer,
            expected: CONTESTED,
            got: B256::repeat_byte(0x99)
        })
    );
    let twice = vec![votes[0].clone(), votes[1].clone(), fx.review_vote(1, NodeValue::Value(w("2490.9")))];
    let p = fx.signed_review(fx.review_proposal(&twice));
    assert_eq!(
        fx.check_review(&p, &twice),
        Err(CertifyError::DuplicateMember { signer: twice[1].signer, role: Role::Reviewer })
    );
    // A listed vote that was not supplied.
    let p = fx.signed_review(honest.clone());
    let missing = listed[0].hash();
    assert_eq!(fx.check_review(&p, &votes[1..]), Err(CertifyError::UnknownInput(missing)));
    // Observation-style checks stay in force: the clock.
    let now = PROPOSED_AT + 6;
    assert_eq!(
        check_review_proposal(&fx.committee, &fx.network_id, &fx.spec, &p, &target(), &votes, Some(now), 5),
        Err(CertifyError::ClockSkew { proposed_at: PROPOSED_AT, now, max_skew: 5 })
    );
}

#[test]
fn an_observations_certifier_refuses_a_review_proposal() {
    let fx = fixture();
    let votes = fx.review_votes();
    let p = fx.signed_review(fx.review_proposal(&votes[..3]));
    let certificate = Certificate { votes: fx.votes(&p, &[0, 1, 2]), round: p.payload.round, proposal: p };
    assert_eq!(
        fixd_proto::certify::verify_certificate(
            &fx.committee,
            &fx.network_id,
            &fx.spec,
            &certificate,
            &fx.observations()
        ),
        Err(CertifyError::UnsupportedSource)
    );
}
