//! What fixd's benchmarks measure, built once and checked by tests so that a benchmark never
//! times a path that fails: a committee of any size, a replayed market hour, one signed message
//! of every gossip kind, a proof bundle, and a run of distinct signed votes.
//!
//! - `cargo bench -p fixd-bench` (`benches/pure.rs`) times the pure paths beside their
//!   baselines and prints a table of ratios.
//! - `scripts/bench.sh` runs the system harness (real processes; see `BENCHMARKS.md`).

use alloy_primitives::{Address, B256, FixedBytes};
use ed25519_dalek::SigningKey;
use fixd_proto::certify::ProofBundle;
use fixd_proto::gossip::GossipMessage;
use fixd_proto::merkle::merkle_root;
use fixd_proto::replay::{PROFILES, fixture_bars, replay};
use fixd_proto::signing::{PublicKey, Signed, endorse};
use fixd_proto::types::certificate::{
    Certificate, DecisionId, Proposal, ProposalSource, RoundProposal, Vote, VoteStep,
};
use fixd_proto::types::dispute::{
    ArbitratorRuling, Dispute, DisputeEscrow, DisputeReason, RelayedDispute, RelayedRuling, ReviewVote,
    SignedDispute, SignedRuling,
};
use fixd_proto::types::genesis::{Committee, Genesis, Member, ProtocolParams};
use fixd_proto::types::observation::{NodeValue, Observation};
use fixd_proto::types::report::{BondOutcome, FinalReport, ReportSignature};
use fixd_proto::types::settlement::{Index, MethodologyParams, SettlementSpec};
use fixd_proto::types::venue::Trade;
use fixd_proto::value::Wad;

/// One hour of the committed fixture, replayed on the four venues: the trades and the spec of
/// the settlement maturing at its end.
pub fn replayed_hour() -> (SettlementSpec, Vec<Trade>) {
    let bars = fixture_bars();
    let hour = &bars[..60];
    let spec = SettlementSpec {
        index: Index::EthUsd,
        maturity: hour[59].start + 60,
        params: MethodologyParams::default(),
    };
    (spec, replay(hour, &PROFILES))
}

/// A committee of `n` members with fixed keys, its genesis and a settlement of it.
#[derive(Clone, Debug)]
pub struct Fixture {
    pub keys: Vec<SigningKey>,
    pub genesis: Genesis,
    pub committee: Committee,
    pub network_id: B256,
    pub spec: SettlementSpec,
}

impl Fixture {
    pub fn new(n: usize) -> Self {
        let keys: Vec<SigningKey> = (0..n).map(|i| SigningKey::from_bytes(&seed(i))).collect();
        let members = keys
            .iter()
            .enumerate()
            .map(|(i, k)| Member {
                name: format!("node-{i}"),
                ed25519: PublicKey::of(k),
                eth_address: Address::from_word(B256::from(seed(i))),
                listen: vec![],
            })
            .collect();
        let genesis = Genesis {
            network: "fixd-bench".into(),
            chain_id: 31337,
            contract: Address::repeat_byte(0xcc),
            contract_block: 0,
            arbitrator: Address::repeat_byte(0xaa),
            members,
            params: ProtocolParams::default(),
        };
        let spec = replayed_hour().0;
        Fixture { committee: genesis.committee(), network_id: genesis.network_id(), keys, genesis, spec }
    }

    fn sign<T: fixd_proto::signing::Signable>(&self, member: usize, payload: T) -> Signed<T> {
        Signed::sign(&self.keys[member], &self.network_id, payload)
    }

    /// Member `member`'s observation of the replayed hour (each member a little apart).
    pub fn observation(&self, member: usize) -> Signed<Observation> {
        let (spec, trades) = replayed_hour();
        let mut computation = fixd_proto::methodology::compute(&spec, &trades).expect("the hour computes");
        let value = computation.value.value().expect("the hour has a value");
        computation.value = NodeValue::Value(Wad::from_raw(value.raw() + member as u128));
        let observation = Observation {
            settlement_id: self.spec.id(),
            observed_at: self.spec.observe_at(),
            computation,
            trade_digest: B256::from(seed(member)),
        };
        self.sign(member, observation)
    }

    /// The first round's certificate over every member's observation, with q precommits.
    pub fn certificate(&self, observations: &[Signed<Observation>]) -> Certificate {
        let mut inputs: Vec<B256> = observations.iter().map(Signed::hash).collect();
        inputs.sort();
        let values: Vec<Wad> =
            observations.iter().filter_map(|o| o.payload.computation.value.value()).collect();
        let proposal = Proposal {
            settlement_id: self.spec.id(),
            round: 0,
            value: fixd_proto::methodology::settlement_value(&values).expect("values"),
            source: ProposalSource::Observations,
            inputs_root: merkle_root(&inputs),
            inputs,
            challenge_deadline: self.spec.observe_at() + 7_200,
            proposed_at: self.spec.observe_at(),
        };
        let leader = self.committee.leader(&self.spec.id(), 0);
        let signed = self.sign(leader, proposal);
        let precommit = Certificate { proposal: signed.clone(), round: 0, votes: vec![] }.precommit();
        let mut votes: Vec<_> =
            (0..self.committee.q()).map(|i| endorse(&self.keys[i], &self.network_id, &precommit)).collect();
        votes.sort_by_key(|e| e.signer);
        Certificate { proposal: signed, round: 0, votes }
    }

    /// The proof bundle of the first certificate: every member's observation, q votes.
    pub fn bundle(&self) -> ProofBundle {
        let observations: Vec<_> = (0..self.keys.len()).map(|i| self.observation(i)).collect();
        let certificate = self.certificate(&observations);
        ProofBundle {
            genesis: self.genesis.clone(),
            spec: self.spec.clone(),
            observations,
            certificate,
            review_votes: vec![],
        }
    }

    /// One message of every gossip kind, as a member would send it: (kind, message).
    pub fn every_kind(&self) -> Vec<(&'static str, GossipMessage)> {
        let observations: Vec<_> = (0..self.keys.len()).map(|i| self.observation(i)).collect();
        let certificate = self.certificate(&observations);
        let id = self.spec.id();
        let report = FinalReport {
            settlement_id: id,
            value: certificate.proposal.payload.value,
            round: 0,
            outcomes: vec![BondOutcome {
                dispute_id: B256::repeat_byte(0xd1),
                disputer: Address::repeat_byte(0xd2),
                bond: 10_u128.pow(18),
                refund: 10_u128.pow(18),
                reward: 10_u128.pow(16),
                pooled: 0,
                burned: 0,
            }],
        };
        let eth_signature = FixedBytes::<65>::repeat_byte(0x5a);
        let dispute = Dispute {
            settlement_id: id,
            dispute_id: B256::repeat_byte(0xd1),
            proposal_hash: certificate.proposal.hash(),
            claimed_value: Some(Wad::from_raw(2_500 * 10_u128.pow(18))),
            reason: DisputeReason::BadData,
            evidence: "a bad print on one venue at 14:31; see https://example.org/trades".into(),
            bond_wei: 10_u128.pow(18),
            bond_tx: B256::repeat_byte(0xb7),
            disputer: Address::repeat_byte(0xd2),
        };
        let escrow = DisputeEscrow {
            block_number: 1_000,
            block_hash: B256::repeat_byte(0xb1),
            block_timestamp: self.spec.observe_at() + 60,
            log_index: 3,
            pool_wei: 10_u128.pow(19),
        };
        let ruling = ArbitratorRuling {
            settlement_id: id,
            dispute_id: dispute.dispute_id,
            value: certificate.proposal.payload.value,
            upheld: false,
        };
        let polka = {
            let prevote = Vote {
                settlement_id: id,
                decision: DecisionId::Value,
                round: 0,
                step: VoteStep::Prevote,
                proposal_hash: Some(certificate.proposal.hash()),
            };
            (0..self.committee.q()).map(|i| endorse(&self.keys[i], &self.network_id, &prevote)).collect()
        };
        vec![
            ("observation", GossipMessage::Observation(observations[0].clone())),
            (
                "proposal",
                GossipMessage::proposal(self.sign(
                    0,
                    RoundProposal {
                        round: 1,
                        pol_round: Some(0),
                        proposal: certificate.proposal.clone(),
                        polka,
                    },
                )),
            ),
            ("vote", GossipMessage::Vote(self.vote(0, 0))),
            (
                "report_signature",
                GossipMessage::ReportSignature(self.sign(
                    0,
                    ReportSignature {
                        report,
                        signer: self.genesis.members[0].eth_address,
                        signature: eth_signature,
                    },
                )),
            ),
            (
                "review_vote",
                GossipMessage::ReviewVote(self.sign(
                    0,
                    ReviewVote {
                        settlement_id: id,
                        dispute_id: dispute.dispute_id,
                        proposal_hash: certificate.proposal.hash(),
                        median_recomputes: true,
                        value: NodeValue::Value(certificate.proposal.payload.value),
                        trade_digest: B256::repeat_byte(0x7d),
                    },
                )),
            ),
            (
                "dispute",
                GossipMessage::dispute(self.sign(
                    0,
                    RelayedDispute {
                        dispute: SignedDispute { dispute, signature: eth_signature },
                        escrow,
                        accepted_at: self.spec.observe_at() + 61,
                    },
                )),
            ),
            (
                "ruling",
                GossipMessage::Ruling(self.sign(
                    0,
                    RelayedRuling {
                        ruling: SignedRuling { ruling, signature: eth_signature },
                        accepted_at: self.spec.observe_at() + 300,
                    },
                )),
            ),
        ]
    }

    /// Member `member`'s prevote of `round` for a made-up proposal.
    pub fn vote(&self, member: usize, round: u32) -> Signed<Vote> {
        let vote = Vote {
            settlement_id: self.spec.id(),
            decision: DecisionId::Value,
            round,
            step: VoteStep::Prevote,
            proposal_hash: Some(B256::repeat_byte(0x9e)),
        };
        self.sign(member, vote)
    }

    /// `count` distinct votes, the members taking turns, each round once per member: what
    /// gossip ingest meets in a busy second.
    pub fn votes(&self, count: usize) -> Vec<Signed<Vote>> {
        let n = self.keys.len();
        (0..count).map(|k| self.vote(k % n, u32::try_from(k / n).expect("few rounds"))).collect()
    }
}

/// Member `i`'s fixed secret.
fn seed(i: usize) -> [u8; 32] {
    let mut seed = [0x5e; 32];
    seed[24..].copy_from_slice(&(i as u64 + 1).to_be_bytes());
    seed
}

#[cfg(test)]
mod tests {
    use fixd_proto::certify::verify_bundle;

    use super::*;

    #[test]
    fn the_replayed_hour_has_four_venues_and_a_value() {
        let (spec, trades) = replayed_hour();
        assert_eq!(trades.len(), 60 * 4 * fixd_proto::replay::TRADES_PER_BAR);
        let computation = fixd_proto::methodology::compute(&spec, &trades).unwrap();
        assert!(computation.value.value().is_some(), "{computation:?}");
        assert!(computation.venues.iter().all(|v| v.excluded.is_none() && v.trades > 0));
    }

    #[test]
    fn bundles_of_seven_and_thirty_one_verify() {
        for n in [7, 31] {
            let fixture = Fixture::new(n);
            let bundle = fixture.bundle();
            assert_eq!(bundle.certificate.votes.len(), fixture.committee.q());
            assert_eq!(verify_bundle(&bundle), Ok(bundle.certificate.proposal.payload.value), "n = {n}");
        }
    }

    #[test]
    fn every_kind_round_trips_and_verifies() {
        let fixture = Fixture::new(7);
        let messages = fixture.every_kind();
        assert_eq!(messages.len(), 7, "one per gossip kind");
        for (kind, message) in messages {
            let bytes = message.encode();
            assert_eq!(GossipMessage::decode(&bytes).unwrap(), message, "{kind}");
            assert_eq!(message.verify(&fixture.network_id), Ok(()), "{kind}");
        }
    }

    #[test]
    fn the_votes_are_distinct_and_valid() {
        let fixture = Fixture::new(7);
        let votes = fixture.votes(100);
        let hashes: std::collections::HashSet<_> = votes.iter().map(Signed::hash).collect();
        assert_eq!(hashes.len(), 100);
        assert!(votes.iter().all(|v| v.verify(&fixture.network_id).is_ok()));
    }
}
