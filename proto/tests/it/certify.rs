//! The certification rules: a valid 4-member bundle verifies, and each single corruption fails
//! with the error that names it.

use alloy_primitives::{Address, B256};
use ed25519_dalek::SigningKey;
use fixd_proto::certify::{
    CertifyError, ProofBundle, Role, check_challenge_deadline, check_proposal, verify_bundle,
    verify_certificate,
};
use fixd_proto::encoding::{from_bcs, to_bcs};
use fixd_proto::merkle::merkle_root;
use fixd_proto::signing::{Endorsement, PublicKey, Signed, endorse};
use fixd_proto::types::certificate::{Certificate, Proposal, ProposalSource, Vote};
use fixd_proto::types::genesis::{Committee, Genesis, Member, ProtocolParams};
use fixd_proto::types::observation::{
    Computation, NoValueReason, NodeValue, Observation, Partition, VenueReport,
};
use fixd_proto::types::settlement::{Index, MethodologyParams, SettlementSpec};
use fixd_proto::types::venue::Venue;
use fixd_proto::value::Wad;
use proptest::prelude::*;

pub(crate) const PROPOSED_AT: u64 = 1_790_000_500;

pub(crate) struct Fixture {
    pub(crate) keys: Vec<SigningKey>,
    genesis: Genesis,
    pub(crate) committee: Committee,
    pub(crate) network_id: B256,
    pub(crate) spec: SettlementSpec,
}

fn w(s: &str) -> Wad {
    Wad::parse(s).unwrap()
}

pub(crate) fn fixture() -> Fixture {
    let keys: Vec<SigningKey> = (1..=4u8).map(|i| SigningKey::from_bytes(&[i; 32])).collect();
    let members = keys
        .iter()
        .enumerate()
        .map(|(i, k)| Member {
            name: format!("node-{i}"),
            ed25519: PublicKey::of(k),
            eth_address: Address::repeat_byte(i as u8 + 1),
            listen: vec![format!("/ip4/127.0.0.1/tcp/{}", 9000 + i)],
        })
        .collect();
    let genesis = Genesis {
        network: "fixd-test".into(),
        chain_id: 31337,
        contract: Address::repeat_byte(0xcc),
        contract_block: 0,
        arbitrator: Address::repeat_byte(0xaa),
        members,
        params: ProtocolParams::default(),
    };
    let spec = SettlementSpec {
        index: Index::EthUsd,
        maturity: 1_790_000_000,
        params: MethodologyParams::default(),
    };
    Fixture { committee: genesis.committee(), network_id: genesis.network_id(), keys, genesis, spec }
}

impl Fixture {
    fn observation_for(&self, member: usize, settlement_id: B256, value: NodeValue) -> Signed<Observation> {
        let partitions = match value {
            NodeValue::Value(v) => vec![Partition::counted(4, v); 12],
            NodeValue::NoValue(_) => vec![Partition::not_counted(0); 12],
        };
        let venues =
            Venue::ALL.iter().map(|&venue| VenueReport { venue, trades: 10, excluded: None }).collect();
        let obs = Observation {
            settlement_id,
            observed_at: PROPOSED_AT - 10,
            computation: Computation { partitions, venues, value },
            trade_digest: B256::repeat_byte(member as u8),
        };
        Signed::sign(&self.keys[member], &self.network_id, obs)
    }

    pub(crate) fn observation(&self, member: usize, value: &str) -> Signed<Observation> {
        self.observation_for(member, self.spec.id(), NodeValue::Value(w(value)))
    }

    /// One observation per member: 2500.1, 2500.2, 2500.3, 2500.4.
    pub(crate) fn observations(&self) -> Vec<Signed<Observation>> {
        (0..4).map(|i| self.observation(i, &format!("2500.{}", i + 1))).collect()
    }

    pub(crate) fn leader(&self, round: u32) -> usize {
        self.committee.leader(&self.spec.id(), round)
    }

    /// The honest proposal of `round` over `observations`.
    fn proposal(&self, round: u32, observations: &[Signed<Observation>]) -> Proposal {
        let mut inputs: Vec<B256> = observations.iter().map(Signed::hash).collect();
        inputs.sort();
        let values: Vec<Wad> =
            observations.iter().filter_map(|o| o.payload.computation.value.value()).collect();
        Proposal {
            settlement_id: self.spec.id(),
            round,
            value: fixd_proto::methodology::settlement_value(&values).unwrap_or(Wad::ZERO),
            source: ProposalSource::Observations,
            inputs_root: merkle_root(&inputs),
            inputs,
            challenge_deadline: PROPOSED_AT + 7200,
            proposed_at: PROPOSED_AT,
        }
    }

    pub(crate) fn sign(&self, member: usize, proposal: Proposal) -> Signed<Proposal> {
        Signed::sign(&self.keys[member], &self.network_id, proposal)
    }

    pub(crate) fn votes(&self, proposal: &Signed<Proposal>, voters: &[usize]) -> Vec<Endorsement> {
        let vote = Certificate { proposal: proposal.clone(), round: proposal.payload.round, votes: vec![] }
            .precommit();
        let mut votes: Vec<Endorsement> =
            voters.iter().map(|&i| endorse(&self.keys[i], &self.network_id, &vote)).collect();
        votes.sort_by_key(|e| e.signer);
        votes
    }

    fn certificate(&self, proposal: Proposal, voters: &[usize]) -> Certificate {
        let signed = self.sign(self.leader(proposal.round), proposal);
        let votes = self.votes(&signed, voters);
        Certificate { round: signed.payload.round, proposal: signed, votes }
    }

    fn verify(
        &self,
        certificate: &Certificate,
        observations: &[Signed<Observation>],
    ) -> Result<Wad, CertifyError> {
        verify_certificate(&self.committee, &self.network_id, &self.spec, certificate, observations)
    }

    fn check(
        &self,
        proposal: &Signed<Proposal>,
        observations: &[Signed<Observation>],
    ) -> Result<(), CertifyError> {
        check_proposal(&self.committee, &self.network_id, &self.spec, proposal, observations, None, 5)
    }

    pub(crate) fn bundle(&self) -> ProofBundle {
        let observations = self.observations();
        let certificate = self.certificate(self.proposal(0, &observations), &[0, 1, 2]);
        ProofBundle {
            genesis: self.genesis.clone(),
            spec: self.spec.clone(),
            observations,
            certificate,
            review_votes: vec![],
        }
    }
}

pub(crate) fn flip(sig: &mut fixd_proto::signing::Signature, byte: usize) {
    let mut bytes = sig.0.0;
    bytes[byte] ^= 0x01;
    sig.0 = bytes.into();
}

#[test]
fn a_valid_bundle_verifies_and_survives_json() {
    let fx = fixture();
    let bundle = fx.bundle();
    // Median of 2500.1..2500.4 (even count): ⌊(2500.2 + 2500.3) / 2⌋.
    assert_eq!(verify_bundle(&bundle), Ok(w("2500.25")));
    let json = serde_json::to_string_pretty(&bundle).unwrap();
    let back: ProofBundle = serde_json::from_str(&json).unwrap();
    assert_eq!(back, bundle);
    assert_eq!(verify_bundle(&back), Ok(w("2500.25")));
    let bcs: ProofBundle = from_bcs(&to_bcs(&bundle)).unwrap();
    assert_eq!(verify_bundle(&bcs), Ok(w("2500.25")));
}

#[test]
fn all_four_votes_and_extra_observations_are_fine() {
    let fx = fixture();
    let obs = fx.observations();
    let cert = fx.certificate(fx.proposal(0, &obs[..3]), &[0, 1, 2, 3]);
    // The fourth observation is given but not listed: ignored.
    assert_eq!(fx.verify(&cert, &obs), Ok(w("2500.2")));
}

#[test]
fn a_flipped_byte_in_any_signature_is_named() {
    let fx = fixture();
    let bundle = fx.bundle();
    let obs = &bundle.observations;
    let leader = fx.committee.members()[fx.leader(0)].ed25519;
    for byte in [0, 31, 32, 63] {
        let mut cert = bundle.certificate.clone();
        flip(&mut cert.proposal.signature, byte);
        // The votes name the proposal's hash, which includes its signature; the proposal's
        // signature is checked and reported before the votes.
        assert_eq!(
            fx.verify(&cert, obs),
            Err(CertifyError::BadSignature { signer: leader, role: Role::Proposer }),
            "byte {byte}"
        );
        for v in 0..cert.votes.len() {
            let mut cert = bundle.certificate.clone();
            flip(&mut cert.votes[v].signature, byte);
            let signer = cert.votes[v].signer;
            assert_eq!(fx.verify(&cert, obs), Err(CertifyError::BadSignature { signer, role: Role::Voter }));
        }
        // An observation's hash covers its signature: a flipped byte makes it another message,
        // which the proposal does not list.
        let mut bad = obs.clone();
        flip(&mut bad[1].signature, byte);
        assert_eq!(fx.verify(&bundle.certificate, &bad), Err(CertifyError::UnknownInput(obs[1].hash())));
        // A proposal that lists the corrupted observation itself: its signature is named.
        let cert = fx.certificate(fx.proposal(0, &bad), &[0, 1, 2]);
        assert_eq!(
            fx.verify(&cert, &bad),
            Err(CertifyError::BadSignature { signer: bad[1].signer, role: Role::Observer })
        );
    }
}

#[test]
fn a_wrong_value_is_recomputed_and_named() {
    let fx = fixture();
    let obs = fx.observations();
    let mut proposal = fx.proposal(0, &obs);
    proposal.value = w("2600");
    let cert = fx.certificate(proposal, &[0, 1, 2]);
    assert_eq!(
        fx.verify(&cert, &obs),
        Err(CertifyError::WrongValue { proposed: w("2600"), recomputed: w("2500.25") })
    );
}

#[test]
fn vote_faults_are_named() {
    let fx = fixture();
    let obs = fx.observations();
    let good = fx.certificate(fx.proposal(0, &obs), &[0, 1, 2]);

    let mut missing = good.clone();
    missing.votes.pop();
    assert_eq!(fx.verify(&missing, &obs), Err(CertifyError::TooFewVotes { have: 2, need: 3 }));

    let outsider = SigningKey::from_bytes(&[99; 32]);
    let vote = good.precommit();
    let stranger = endorse(&outsider, &fx.network_id, &vote);
    let mut non_member = good.clone();
    non_member.votes.push(stranger);
    non_member.votes.sort_by_key(|e| e.signer);
    assert_eq!(
        fx.verify(&non_member, &obs),
        Err(CertifyError::NotAMember { signer: stranger.signer, role: Role::Voter })
    );

    let mut duplicated = missing.clone();
    duplicated.votes.push(missing.votes[1]);
    assert_eq!(
        fx.verify(&duplicated, &obs),
        Err(CertifyError::DuplicateMember { signer: missing.votes[1].signer, role: Role::Voter })
    );

    let mut unsorted = good.clone();
    unsorted.votes.reverse();
    assert_eq!(fx.verify(&unsorted, &obs), Err(CertifyError::VotesNotSorted));

    // A vote for another round does not count for this proposal.
    let mut other_round = good.clone();
    let stale = Vote { round: 1, ..vote };
    other_round.votes[0] =
        endorse(&fx.keys[fx.committee.index_of(&good.votes[0].signer).unwrap()], &fx.network_id, &stale);
    assert!(matches!(
        fx.verify(&other_round, &obs),
        Err(CertifyError::BadSignature { role: Role::Voter, .. })
    ));
}

#[test]
fn proposal_faults_are_named() {
    let fx = fixture();
    let obs = fx.observations();
    let leader = fx.leader(0);
    let not_leader = (leader + 1) % 4;

    let cert = Certificate { proposal: fx.sign(not_leader, fx.proposal(0, &obs)), round: 0, votes: vec![] };
    assert_eq!(
        fx.verify(&cert, &obs),
        Err(CertifyError::WrongLeader {
            round: 0,
            expected: fx.committee.members()[leader].ed25519,
            got: fx.committee.members()[not_leader].ed25519,
        })
    );
    let outsider = SigningKey::from_bytes(&[99; 32]);
    let foreign = Signed::sign(&outsider, &fx.network_id, fx.proposal(0, &obs));
    assert_eq!(
        fx.check(&foreign, &obs),
        Err(CertifyError::NotAMember { signer: foreign.signer, role: Role::Proposer })
    );

    let mut unsorted = fx.proposal(0, &obs);
    unsorted.inputs.swap(0, 1);
    assert_eq!(fx.check(&fx.sign(leader, unsorted.clone()), &obs), Err(CertifyError::InputsNotSorted));
    let mut repeated = fx.proposal(0, &obs);
    repeated.inputs[1] = repeated.inputs[0];
    assert_eq!(fx.check(&fx.sign(leader, repeated), &obs), Err(CertifyError::InputsNotSorted));

    let mut wrong_root = fx.proposal(0, &obs);
    let expected = wrong_root.inputs_root;
    wrong_root.inputs_root = B256::repeat_byte(0xee);
    assert_eq!(
        fx.check(&fx.sign(leader, wrong_root), &obs),
        Err(CertifyError::WrongMerkleRoot { expected, got: B256::repeat_byte(0xee) })
    );

    let mut other_settlement = fx.proposal(0, &obs);
    other_settlement.settlement_id = B256::repeat_byte(5);
    assert_eq!(
        fx.check(&fx.sign(leader, other_settlement), &obs),
        Err(CertifyError::WrongSettlement { expected: fx.spec.id(), got: B256::repeat_byte(5) })
    );

    let mut review = fx.proposal(0, &obs);
    review.source = ProposalSource::Review { dispute_id: B256::ZERO };
    assert_eq!(fx.check(&fx.sign(leader, review), &obs), Err(CertifyError::UnsupportedSource));

    let mut early_deadline = fx.proposal(0, &obs);
    early_deadline.challenge_deadline = PROPOSED_AT - 1;
    assert_eq!(
        fx.check(&fx.sign(leader, early_deadline), &obs),
        Err(CertifyError::DeadlineBeforeProposal {
            proposed_at: PROPOSED_AT,
            challenge_deadline: PROPOSED_AT - 1
        })
    );
}

#[test]
fn observation_faults_are_named() {
    let fx = fixture();
    let leader = fx.leader(0);
    let mut obs = fx.observations();

    // From another settlement.
    let elsewhere = fx.observation_for(2, B256::repeat_byte(5), NodeValue::Value(w("2500.3")));
    obs[2] = elsewhere.clone();
    assert_eq!(
        fx.check(&fx.sign(leader, fx.proposal(0, &obs)), &obs),
        Err(CertifyError::ForeignObservation {
            signer: elsewhere.signer,
            expected: fx.spec.id(),
            got: B256::repeat_byte(5)
        })
    );

    // The same member twice.
    let mut obs = fx.observations();
    obs[3] = fx.observation(2, "2500.9");
    assert_eq!(
        fx.check(&fx.sign(leader, fx.proposal(0, &obs)), &obs),
        Err(CertifyError::DuplicateMember { signer: obs[2].signer, role: Role::Observer })
    );

    // A non-member's observation.
    let outsider = SigningKey::from_bytes(&[99; 32]);
    let mut obs = fx.observations();
    obs[3] = Signed::sign(&outsider, &fx.network_id, obs[3].payload.clone());
    assert_eq!(
        fx.check(&fx.sign(leader, fx.proposal(0, &obs)), &obs),
        Err(CertifyError::NotAMember { signer: obs[3].signer, role: Role::Observer })
    );

    // Fewer than q.
    let obs = fx.observations();
    assert_eq!(
        fx.check(&fx.sign(leader, fx.proposal(0, &obs[..2])), &obs),
        Err(CertifyError::TooFewObservations { have: 2, need: 3 })
    );
}

#[test]
fn no_value_observations_count_neither_toward_q_nor_the_median() {
    let fx = fixture();
    let leader = fx.leader(0);
    let no_value = NodeValue::NoValue(NoValueReason::TooFewPartitions { counted: 3, required: 9 });
    let mut obs = fx.observations();
    obs[3] = fx.observation_for(3, fx.spec.id(), no_value.clone());
    // Three values and one "no value": q = 3 values, median of 2500.1, 2500.2, 2500.3.
    let cert = fx.certificate(fx.proposal(0, &obs), &[0, 1, 2]);
    assert_eq!(cert.proposal.payload.inputs.len(), 4);
    assert_eq!(fx.verify(&cert, &obs), Ok(w("2500.2")));
    // Two values and two "no value"s: four distinct members, but only two values.
    obs[2] = fx.observation_for(2, fx.spec.id(), no_value);
    assert_eq!(
        fx.check(&fx.sign(leader, fx.proposal(0, &obs)), &obs),
        Err(CertifyError::TooFewObservations { have: 2, need: 3 })
    );
}

#[test]
fn the_clock_and_the_deadline_policy() {
    let fx = fixture();
    let obs = fx.observations();
    let proposal = fx.sign(fx.leader(0), fx.proposal(0, &obs));
    let check = |now| check_proposal(&fx.committee, &fx.network_id, &fx.spec, &proposal, &obs, Some(now), 5);
    assert_eq!(check(PROPOSED_AT + 5), Ok(()));
    assert_eq!(check(PROPOSED_AT - 5), Ok(()));
    assert_eq!(
        check(PROPOSED_AT + 6),
        Err(CertifyError::ClockSkew { proposed_at: PROPOSED_AT, now: PROPOSED_AT + 6, max_skew: 5 })
    );
    assert!(matches!(check(PROPOSED_AT - 6), Err(CertifyError::ClockSkew { .. })));
    assert_eq!(check_challenge_deadline(&proposal.payload, 7200), Ok(()));
    assert_eq!(
        check_challenge_deadline(&proposal.payload, 3600),
        Err(CertifyError::WrongChallengeDeadline { expected: PROPOSED_AT + 3600, got: PROPOSED_AT + 7200 })
    );
}

#[test]
fn bundle_faults_are_named() {
    let fx = fixture();
    let mut bundle = fx.bundle();
    let expected_id = bundle.spec.id();
    bundle.spec.maturity += 1;
    assert_eq!(
        verify_bundle(&bundle),
        Err(CertifyError::WrongSettlement { expected: bundle.spec.id(), got: expected_id })
    );
    let mut bundle = fx.bundle();
    bundle.genesis.members[1].name = "node-0".into();
    assert!(matches!(verify_bundle(&bundle), Err(CertifyError::InvalidGenesis(_))));
    // Another genesis is another network: every signature fails.
    let mut bundle = fx.bundle();
    bundle.genesis.chain_id = 1;
    assert!(matches!(verify_bundle(&bundle), Err(CertifyError::BadSignature { .. })));
}

#[test]
fn every_single_bit_flip_of_the_encoded_bundle_is_caught() {
    let fx = fixture();
    let bundle = fx.bundle();
    let bytes = to_bcs(&bundle);
    for i in 0..bytes.len() {
        let mut corrupt = bytes.clone();
        corrupt[i] ^= 0x01;
        if let Ok(decoded) = from_bcs::<ProofBundle>(&corrupt) {
            assert!(verify_bundle(&decoded).is_err(), "flipping bit 0 of byte {i} still verifies");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_corrupted_byte_of_the_encoded_bundle_is_caught(index in any::<prop::sample::Index>(), mask in 1u8..=255) {
        let fx = fixture();
        let bundle = fx.bundle();
        let value = verify_bundle(&bundle).unwrap();
        let mut bytes = to_bcs(&bundle);
        let i = index.index(bytes.len());
        bytes[i] ^= mask;
        if let Ok(decoded) = from_bcs::<ProofBundle>(&bytes) {
            let verdict = verify_bundle(&decoded);
            prop_assert!(!matches!(verdict, Ok(v) if v != value), "byte {} ^ {:#x} verifies another value", i, mask);
            prop_assert!(verdict.is_err(), "byte {} ^ {:#x} still verifies", i, mask);
        }
    }
}

/// A final-report candidate: no inputs, by its round's leader, and q precommits make the
/// certificate members sign the EIP-712 report after. It certifies no settlement value, so a
/// proof bundle refuses it.
#[test]
fn a_report_candidate_and_its_certificate_are_checked() {
    use fixd_proto::certify::{check_report_proposal_content, verify_report_certificate};
    use fixd_proto::types::report::{BondOutcome, FinalReport};
    let fx = fixture();
    let report = FinalReport {
        settlement_id: fx.spec.id(),
        value: Wad::parse("2600.5").unwrap(),
        round: 1,
        outcomes: vec![BondOutcome {
            dispute_id: B256::repeat_byte(4),
            bond: 10,
            refund: 10,
            ..Default::default()
        }],
    };
    let candidate = |round: u32| Proposal {
        settlement_id: fx.spec.id(),
        round,
        value: report.value,
        source: ProposalSource::Report { round: report.round, outcomes: report.outcomes.clone() },
        inputs: vec![],
        inputs_root: merkle_root(&[]),
        challenge_deadline: PROPOSED_AT,
        proposed_at: PROPOSED_AT,
    };
    let check =
        |p: &Signed<Proposal>| check_report_proposal_content(&fx.committee, &fx.network_id, &fx.spec, p);
    let good = fx.sign(fx.leader(2), candidate(2));
    assert_eq!(check(&good), Ok(()));
    assert_eq!(good.payload.report(), Some(report.clone()), "the candidate carries the whole report");

    let not_leader = (fx.leader(2) + 1) % 4;
    let by_other = fx.sign(not_leader, candidate(2));
    assert!(matches!(check(&by_other), Err(CertifyError::WrongLeader { round: 2, .. })));
    let mut listing = candidate(2);
    listing.inputs = vec![B256::repeat_byte(1)];
    assert_eq!(check(&fx.sign(fx.leader(2), listing)), Err(CertifyError::UnknownInput(B256::repeat_byte(1))));
    let mut observed = candidate(2);
    observed.source = ProposalSource::Observations;
    assert_eq!(check(&fx.sign(fx.leader(2), observed)), Err(CertifyError::UnsupportedSource));

    // The fixture's precommits are of the candidate's round.
    let certificate = Certificate { votes: fx.votes(&good, &[0, 1, 3]), round: 2, proposal: good.clone() };
    let verify = |c: &Certificate| verify_report_certificate(&fx.committee, &fx.network_id, &fx.spec, c);
    assert_eq!(verify(&certificate), Ok(report), "q precommits of round 2 decide it");
    let mut short = certificate.clone();
    short.votes.pop();
    assert_eq!(verify(&short), Err(CertifyError::TooFewVotes { have: 2, need: 3 }));
    let mut other_round = certificate.clone();
    other_round.round = 3;
    assert!(matches!(verify(&other_round), Err(CertifyError::BadSignature { role: Role::Voter, .. })));

    let bundle = ProofBundle { certificate, ..fx.bundle() };
    assert_eq!(
        verify_bundle(&bundle),
        Err(CertifyError::UnsupportedSource),
        "a report is no settlement value"
    );
}
