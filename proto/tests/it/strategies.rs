//! proptest strategies for every type that is signed or travels.

use alloy_primitives::{Address, B256};
use fixd_proto::eip712::{EthSignature, SignedDispute};
use fixd_proto::signing::{Endorsement, PublicKey, Signature, Signed};
use fixd_proto::types::certificate::{
    Certificate, DecisionId, Proposal, ProposalSource, RoundProposal, Vote, VoteStep,
};
use fixd_proto::types::dispute::{ArbitratorRuling, Dispute, DisputeReason, ReviewVote};
use fixd_proto::types::genesis::{Genesis, Member, ProtocolParams};
use fixd_proto::types::observation::{
    Computation, Exclusion, NoValueReason, NodeValue, Observation, Partition, VenueReport,
};
use fixd_proto::types::report::{BondOutcome, FinalReport};
use fixd_proto::types::settlement::{Index, MethodologyParams, SettlementSpec};
use fixd_proto::types::venue::{Trade, Venue};
use fixd_proto::value::Wad;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

pub fn wad() -> impl Strategy<Value = Wad> {
    any::<u128>().prop_map(Wad::from_raw)
}

pub fn b256() -> impl Strategy<Value = B256> {
    any::<[u8; 32]>().prop_map(B256::from)
}

pub fn address() -> impl Strategy<Value = Address> {
    any::<[u8; 20]>().prop_map(Address::from)
}

pub fn public_key() -> impl Strategy<Value = PublicKey> {
    b256().prop_map(PublicKey)
}

pub fn signature() -> impl Strategy<Value = Signature> {
    any::<[[u8; 32]; 2]>().prop_map(|[a, b]| {
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(&a);
        bytes[32..].copy_from_slice(&b);
        Signature(bytes.into())
    })
}

pub fn endorsement() -> impl Strategy<Value = Endorsement> {
    (public_key(), signature()).prop_map(|(signer, signature)| Endorsement { signer, signature })
}

pub fn signed<T: std::fmt::Debug>(payload: impl Strategy<Value = T>) -> impl Strategy<Value = Signed<T>> {
    (payload, public_key(), signature()).prop_map(|(payload, signer, signature)| Signed {
        payload,
        signer,
        signature,
    })
}

pub fn venue() -> impl Strategy<Value = Venue> {
    prop::sample::select(Venue::ALL.to_vec())
}

pub fn trade() -> impl Strategy<Value = Trade> {
    (venue(), "[0-9a-z-]{0,12}", any::<u64>(), wad(), wad())
        .prop_map(|(venue, id, time_ms, price, size)| Trade { venue, id, time_ms, price, size })
}

pub fn params() -> impl Strategy<Value = MethodologyParams> {
    (
        (any::<u64>(), any::<u16>(), any::<u64>(), any::<u16>(), any::<u16>(), any::<u32>()),
        (any::<u32>(), any::<u16>()),
    )
        .prop_map(
            |(
                (window_secs, partitions, grace_secs, min_venues, min_partitions, max_venue_deviation_bp),
                (two_venue_agreement_bp, max_two_venue_partitions),
            )| MethodologyParams {
                window_secs,
                partitions,
                grace_secs,
                min_venues,
                min_partitions,
                max_venue_deviation_bp,
                two_venue_agreement_bp,
                max_two_venue_partitions,
            },
        )
}

pub fn spec() -> impl Strategy<Value = SettlementSpec> {
    (any::<u64>(), params()).prop_map(|(maturity, params)| SettlementSpec {
        index: Index::EthUsd,
        maturity,
        params,
    })
}

fn exclusion() -> impl Strategy<Value = Exclusion> {
    prop_oneof![
        (wad(), wad(), any::<u64>()).prop_map(|(venue_median, cross_venue_median, deviation_bp)| {
            Exclusion::Deviation { venue_median, cross_venue_median, deviation_bp }
        }),
        (any::<u16>(), any::<u16>())
            .prop_map(|(traded, partitions)| Exclusion::TooFewPartitions { traded, partitions }),
    ]
}

pub fn node_value() -> impl Strategy<Value = NodeValue> {
    prop_oneof![
        wad().prop_map(NodeValue::Value),
        (any::<u16>(), any::<u16>()).prop_map(|(counted, required)| NodeValue::NoValue(
            NoValueReason::TooFewPartitions { counted, required }
        )),
        Just(NodeValue::NoValue(NoValueReason::NoVenues)),
    ]
}

pub fn observation() -> impl Strategy<Value = Observation> {
    let venue_report = (venue(), any::<u32>(), proptest::option::of(exclusion()))
        .prop_map(|(venue, trades, excluded)| VenueReport { venue, trades, excluded });
    let partition = (any::<u16>(), proptest::option::of(wad()), any::<bool>())
        .prop_map(|(venues, value, two_venue)| Partition { venues, value, two_venue });
    let computation = (vec(partition, 0..13), vec(venue_report, 0..5), node_value())
        .prop_map(|(partitions, venues, value)| Computation { partitions, venues, value });
    (b256(), any::<u64>(), computation, b256()).prop_map(
        |(settlement_id, observed_at, computation, trade_digest)| Observation {
            settlement_id,
            observed_at,
            computation,
            trade_digest,
        },
    )
}

pub fn proposal() -> impl Strategy<Value = Proposal> {
    let source = prop_oneof![
        Just(ProposalSource::Observations),
        b256().prop_map(|dispute_id| ProposalSource::Review { dispute_id }),
    ];
    (b256(), any::<u32>(), wad(), source, vec(b256(), 0..8), b256(), any::<u64>(), any::<u64>()).prop_map(
        |(settlement_id, round, value, source, inputs, inputs_root, challenge_deadline, proposed_at)| {
            Proposal {
                settlement_id,
                round,
                value,
                source,
                inputs,
                inputs_root,
                challenge_deadline,
                proposed_at,
            }
        },
    )
}

pub fn vote() -> impl Strategy<Value = Vote> {
    (b256(), decision_id(), any::<u32>(), any::<bool>(), option::of(b256())).prop_map(
        |(settlement_id, decision, round, precommit, proposal_hash)| Vote {
            settlement_id,
            decision,
            round,
            step: if precommit { VoteStep::Precommit } else { VoteStep::Prevote },
            proposal_hash,
        },
    )
}

pub fn decision_id() -> impl Strategy<Value = DecisionId> {
    prop_oneof![Just(DecisionId::Value), b256().prop_map(|dispute_id| DecisionId::Review { dispute_id })]
}

pub fn round_proposal() -> impl Strategy<Value = RoundProposal> {
    (any::<u32>(), option::of(any::<u32>()), signed(proposal()), vec(endorsement(), 0..4))
        .prop_map(|(round, pol_round, proposal, polka)| RoundProposal { round, pol_round, proposal, polka })
}

pub fn certificate() -> impl Strategy<Value = Certificate> {
    (signed(proposal()), any::<u32>(), vec(endorsement(), 0..8))
        .prop_map(|(proposal, round, votes)| Certificate { proposal, round, votes })
}

pub fn dispute_reason() -> impl Strategy<Value = DisputeReason> {
    prop::sample::select(vec![
        DisputeReason::Miscomputed,
        DisputeReason::BadData,
        DisputeReason::MissingData,
        DisputeReason::Other,
    ])
}

pub fn dispute() -> impl Strategy<Value = Dispute> {
    (
        b256(),
        b256(),
        b256(),
        proptest::option::of(wad()),
        dispute_reason(),
        ".{0,40}",
        any::<u128>(),
        b256(),
        address(),
    )
        .prop_map(
            |(
                settlement_id,
                dispute_id,
                proposal_hash,
                claimed_value,
                reason,
                evidence,
                bond_wei,
                bond_tx,
                disputer,
            )| {
                Dispute {
                    settlement_id,
                    dispute_id,
                    proposal_hash,
                    claimed_value,
                    reason,
                    evidence,
                    bond_wei,
                    bond_tx,
                    disputer,
                }
            },
        )
}

pub fn signed_dispute() -> impl Strategy<Value = SignedDispute> {
    (dispute(), any::<[u8; 32]>(), any::<[u8; 33]>()).prop_map(|(dispute, a, b)| {
        let mut bytes = [0u8; 65];
        bytes[..32].copy_from_slice(&a);
        bytes[32..].copy_from_slice(&b);
        SignedDispute { dispute, signature: EthSignature::from(bytes) }
    })
}

pub fn review_vote() -> impl Strategy<Value = ReviewVote> {
    (b256(), b256(), b256(), any::<bool>(), node_value(), b256()).prop_map(
        |(settlement_id, dispute_id, proposal_hash, median_recomputes, value, trade_digest)| ReviewVote {
            settlement_id,
            dispute_id,
            proposal_hash,
            median_recomputes,
            value,
            trade_digest,
        },
    )
}

pub fn ruling() -> impl Strategy<Value = ArbitratorRuling> {
    (b256(), b256(), wad(), any::<bool>()).prop_map(|(settlement_id, dispute_id, value, upheld)| {
        ArbitratorRuling { settlement_id, dispute_id, value, upheld }
    })
}

pub fn bond_outcome() -> impl Strategy<Value = BondOutcome> {
    (b256(), address(), any::<[u128; 5]>()).prop_map(
        |(dispute_id, disputer, [bond, refund, reward, pooled, burned])| BondOutcome {
            dispute_id,
            disputer,
            bond,
            refund,
            reward,
            pooled,
            burned,
        },
    )
}

pub fn final_report() -> impl Strategy<Value = FinalReport> {
    (b256(), wad(), any::<u32>(), vec(bond_outcome(), 0..4)).prop_map(
        |(settlement_id, value, round, outcomes)| FinalReport { settlement_id, value, round, outcomes },
    )
}

pub fn genesis() -> impl Strategy<Value = Genesis> {
    let member = ("[a-z0-9-]{1,10}", public_key(), address(), vec("/ip4/127.0.0.1/tcp/[0-9]{1,5}", 0..3))
        .prop_map(|(name, ed25519, eth_address, listen)| Member { name, ed25519, eth_address, listen });
    ("[a-z-]{1,12}", any::<u64>(), address(), address(), vec(member, 0..6), any::<[u64; 4]>(), any::<u128>())
        .prop_map(|(network, chain_id, contract, arbitrator, members, [a, b, c, d], min_bond_wei)| Genesis {
            network,
            chain_id,
            contract,
            contract_block: chain_id % 1000,
            arbitrator,
            members,
            params: ProtocolParams {
                challenge_period_secs: a,
                reopened_challenge_period_secs: b,
                round_timeout_secs: c,
                hard_deadline_secs: d,
                min_bond_wei,
                ..ProtocolParams::default()
            },
        })
}
