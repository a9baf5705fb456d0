//! What a [`Certification`](super::Certification) decides a value from: members' signed
//! observations (a settlement's first certificate) or members' signed review votes (the
//! committee review of a dispute). The round machinery is the same; the inputs, the proposal's
//! source, which inputs a leader lists and the validity rules differ.

use std::fmt;

use alloy_primitives::B256;
use fixd_proto::certify::{
    CertifyError, ReviewTarget, check_proposal_content, check_report_proposal_content,
    check_review_proposal_content, verify_certificate, verify_report_certificate, verify_review_certificate,
};
use fixd_proto::signing::{Signable, Signed};
use fixd_proto::types::certificate::{Certificate, Proposal, ProposalSource};
use fixd_proto::types::dispute::ReviewVote;
use fixd_proto::types::genesis::Committee;
use fixd_proto::types::observation::Observation;
use fixd_proto::types::report::FinalReport;
use fixd_proto::types::settlement::{SettlementId, SettlementSpec};
use fixd_proto::value::Wad;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Event;
use fixd_proto::gossip::GossipMessage;

/// The kind of input a certification runs on.
pub trait Inputs: Clone + fmt::Debug {
    type Input: Signable + Clone + fmt::Debug + PartialEq + Serialize + DeserializeOwned;

    /// The input an event carries, if it is this kind's.
    fn input_of(event: Event) -> Option<Signed<Self::Input>>;
    /// Whether `input` belongs to this certification. `Err(None)`: it belongs to another one
    /// of the same settlement (another dispute's review) and is left alone quietly.
    fn belongs(
        &self,
        settlement_id: &SettlementId,
        input: &Signed<Self::Input>,
    ) -> Result<(), Option<CertifyError>>;
    /// The value an input carries, if any.
    fn value(input: &Self::Input) -> Option<Wad>;
    /// The gossip form of an input, for equivocation evidence.
    fn evidence(input: Signed<Self::Input>) -> GossipMessage;
    /// The source a proposal of this kind names.
    fn source(&self) -> ProposalSource;
    /// Which of the value-carrying inputs (one per member, in committee order) a leader lists:
    /// `None` until enough are held.
    fn pick(&self, q: usize, candidates: Vec<(B256, Wad)>) -> Option<Vec<(B256, Wad)>>;
    /// [`fixd_proto::certify::check_proposal_content`] or its review counterpart: every rule
    /// but the clock and the signatures (the inputs' were checked on arrival).
    fn check(
        &self,
        committee: &Committee,
        network_id: &B256,
        spec: &SettlementSpec,
        proposal: &Signed<Proposal>,
        inputs: &[Signed<Self::Input>],
    ) -> Result<(), CertifyError>;
    /// A candidate this member makes without inputs (its final report); `None` for kinds
    /// that build theirs from inputs ([`Inputs::pick`]).
    fn own_candidate(&self, _settlement_id: SettlementId, _round: u32, _now: u64) -> Option<Proposal> {
        None
    }
    /// Whether this member can judge a proposal yet (a report: once its own fold is final).
    fn ready(&self) -> bool {
        true
    }
    /// [`fixd_proto::certify::verify_certificate`] or its review counterpart.
    fn verify(
        &self,
        committee: &Committee,
        network_id: &B256,
        spec: &SettlementSpec,
        certificate: &Certificate,
        inputs: &[Signed<Self::Input>],
    ) -> Result<Wad, CertifyError>;
}

/// A settlement's first certificate, from the members' observations. The leader lists every
/// value-carrying observation it holds (at least q), for a more robust median.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Observations;

impl Inputs for Observations {
    type Input = Observation;

    fn input_of(event: Event) -> Option<Signed<Observation>> {
        match event {
            Event::Observation(o) => Some(o),
            _ => None,
        }
    }

    fn belongs(
        &self,
        settlement_id: &SettlementId,
        o: &Signed<Observation>,
    ) -> Result<(), Option<CertifyError>> {
        if &o.payload.settlement_id != settlement_id {
            return Err(Some(CertifyError::ForeignObservation {
                signer: o.signer,
                expected: *settlement_id,
                got: o.payload.settlement_id,
            }));
        }
        Ok(())
    }

    fn value(o: &Observation) -> Option<Wad> {
        o.computation.value.value()
    }

    fn evidence(o: Signed<Observation>) -> GossipMessage {
        GossipMessage::Observation(o)
    }

    fn source(&self) -> ProposalSource {
        ProposalSource::Observations
    }

    fn pick(&self, q: usize, candidates: Vec<(B256, Wad)>) -> Option<Vec<(B256, Wad)>> {
        (candidates.len() >= q).then_some(candidates)
    }

    fn check(
        &self,
        committee: &Committee,
        network_id: &B256,
        spec: &SettlementSpec,
        proposal: &Signed<Proposal>,
        inputs: &[Signed<Observation>],
    ) -> Result<(), CertifyError> {
        check_proposal_content(committee, network_id, spec, proposal, inputs)
    }

    fn verify(
        &self,
        committee: &Committee,
        network_id: &B256,
        spec: &SettlementSpec,
        certificate: &Certificate,
        inputs: &[Signed<Observation>],
    ) -> Result<Wad, CertifyError> {
        verify_certificate(committee, network_id, spec, certificate, inputs)
    }
}

/// The committee review of one dispute round, from the members' review votes. The leader lists
/// exactly q value-carrying votes (the lowest committee indices it holds), so that every member
/// that feeds the certified votes to the dispute machine decides on the same q values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Review {
    pub target: ReviewTarget,
}

impl Inputs for Review {
    type Input = ReviewVote;

    fn input_of(event: Event) -> Option<Signed<ReviewVote>> {
        match event {
            Event::ReviewVote(v) => Some(v),
            _ => None,
        }
    }

    fn belongs(
        &self,
        settlement_id: &SettlementId,
        v: &Signed<ReviewVote>,
    ) -> Result<(), Option<CertifyError>> {
        if &v.payload.settlement_id != settlement_id {
            return Err(Some(CertifyError::ForeignReviewVote {
                signer: v.signer,
                expected: *settlement_id,
                got: v.payload.settlement_id,
            }));
        }
        if v.payload.dispute_id != self.target.dispute_id || v.payload.proposal_hash != self.target.contested
        {
            return Err(None);
        }
        Ok(())
    }

    fn value(v: &ReviewVote) -> Option<Wad> {
        v.value.value()
    }

    fn evidence(v: Signed<ReviewVote>) -> GossipMessage {
        GossipMessage::ReviewVote(v)
    }

    fn source(&self) -> ProposalSource {
        ProposalSource::Review { dispute_id: self.target.dispute_id }
    }

    fn pick(&self, q: usize, mut candidates: Vec<(B256, Wad)>) -> Option<Vec<(B256, Wad)>> {
        (candidates.len() >= q).then(|| {
            candidates.truncate(q);
            candidates
        })
    }

    fn check(
        &self,
        committee: &Committee,
        network_id: &B256,
        spec: &SettlementSpec,
        proposal: &Signed<Proposal>,
        inputs: &[Signed<ReviewVote>],
    ) -> Result<(), CertifyError> {
        check_review_proposal_content(committee, network_id, spec, proposal, &self.target, inputs)
    }

    fn verify(
        &self,
        committee: &Committee,
        network_id: &B256,
        spec: &SettlementSpec,
        certificate: &Certificate,
        inputs: &[Signed<ReviewVote>],
    ) -> Result<Wad, CertifyError> {
        verify_review_certificate(committee, network_id, spec, certificate, &self.target, inputs)
    }
}

/// The committee's final report. No inputs: the candidate is the leader's own fold of the
/// agreed dispute history, and a member prevotes only a report its own fold makes: of the
/// relays that reached it in time, alone or with some of those that reached it late (so every
/// dispute listed is one it holds, and none that reached it in time is left out).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reports {
    /// The reports this member's fold makes now, its own first (the one it proposes); empty
    /// before it is final.
    pub acceptable: Vec<FinalReport>,
}

impl Inputs for Reports {
    /// Unused: a report lists no inputs.
    type Input = Observation;

    fn input_of(_: Event) -> Option<Signed<Observation>> {
        None
    }

    fn belongs(&self, _: &SettlementId, _: &Signed<Observation>) -> Result<(), Option<CertifyError>> {
        Err(None)
    }

    fn value(_: &Observation) -> Option<Wad> {
        None
    }

    fn evidence(o: Signed<Observation>) -> GossipMessage {
        GossipMessage::Observation(o)
    }

    fn source(&self) -> ProposalSource {
        ProposalSource::Report { round: 0, outcomes: Vec::new() }
    }

    fn pick(&self, _: usize, _: Vec<(B256, Wad)>) -> Option<Vec<(B256, Wad)>> {
        None
    }

    fn own_candidate(&self, settlement_id: SettlementId, round: u32, now: u64) -> Option<Proposal> {
        let report = self.acceptable.first()?;
        Some(Proposal {
            settlement_id,
            round,
            value: report.value,
            source: ProposalSource::Report { round: report.round, outcomes: report.outcomes.clone() },
            inputs: Vec::new(),
            inputs_root: fixd_proto::merkle::merkle_root(&[]),
            challenge_deadline: now,
            proposed_at: now,
        })
    }

    fn ready(&self) -> bool {
        !self.acceptable.is_empty()
    }

    fn check(
        &self,
        committee: &Committee,
        network_id: &B256,
        spec: &SettlementSpec,
        proposal: &Signed<Proposal>,
        _: &[Signed<Observation>],
    ) -> Result<(), CertifyError> {
        check_report_proposal_content(committee, network_id, spec, proposal)?;
        let proposed = proposal.payload.report();
        match &proposed {
            Some(p) if self.acceptable.contains(p) => Ok(()),
            _ => Err(CertifyError::OtherReport {
                proposed: proposed.map(|r| r.value),
                ours: self.acceptable.first().map(|r| r.value),
            }),
        }
    }

    fn verify(
        &self,
        committee: &Committee,
        network_id: &B256,
        spec: &SettlementSpec,
        certificate: &Certificate,
        _: &[Signed<Observation>],
    ) -> Result<Wad, CertifyError> {
        verify_report_certificate(committee, network_id, spec, certificate).map(|r| r.value)
    }
}
