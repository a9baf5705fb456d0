//! Encode/decode round trips, and decoders that never panic on any bytes.

use fixd_proto::encoding::{DecodeError, from_bcs, to_bcs};
use fixd_proto::types::certificate::{Certificate, DecisionId, Proposal, Vote, VoteStep};
use fixd_proto::types::genesis::Genesis;
use fixd_proto::types::observation::Observation;
use fixd_proto::types::report::FinalReport;
use fixd_proto::types::settlement::SettlementSpec;
use fixd_proto::{eip712::SignedDispute, signing::Signed};
use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::strategies::*;

fn round_trips<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
    value: &T,
) -> Result<(), TestCaseError> {
    let bytes = to_bcs(value);
    let back: T = from_bcs(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&back, value);
    let json = serde_json::to_string(value).unwrap();
    let back: T = serde_json::from_str(&json).map_err(|e| TestCaseError::fail(format!("{e}: {json}")))?;
    prop_assert_eq!(&back, value);
    // A trailing byte makes the encoding non-canonical.
    let mut longer = bytes.clone();
    longer.push(0);
    prop_assert!(from_bcs::<T>(&longer).is_err());
    Ok(())
}

/// Feeds bytes to every decoder; the test fails if any panics.
fn decode_all(bytes: &[u8]) {
    let _ = from_bcs::<SettlementSpec>(bytes);
    let _ = from_bcs::<Signed<Observation>>(bytes);
    let _ = from_bcs::<Signed<Proposal>>(bytes);
    let _ = from_bcs::<Signed<Vote>>(bytes);
    let _ = from_bcs::<Certificate>(bytes);
    let _ = from_bcs::<SignedDispute>(bytes);
    let _ = from_bcs::<Signed<fixd_proto::types::dispute::ReviewVote>>(bytes);
    let _ = from_bcs::<fixd_proto::eip712::SignedRuling>(bytes);
    let _ = from_bcs::<FinalReport>(bytes);
    let _ = from_bcs::<Genesis>(bytes);
    if let Ok(s) = std::str::from_utf8(bytes) {
        let _ = serde_json::from_str::<Signed<Observation>>(s);
        let _ = serde_json::from_str::<SignedDispute>(s);
        let _ = serde_json::from_str::<Certificate>(s);
    }
}

#[test]
fn oversized_input_is_refused_before_decoding() {
    let big = vec![0u8; fixd_proto::encoding::MAX_DECODE_BYTES + 1];
    assert!(matches!(from_bcs::<Vote>(&big), Err(DecodeError::TooLarge { .. })));
}

#[test]
fn a_huge_length_prefix_is_an_error_not_an_allocation() {
    // A vector claiming 2^32 entries, with none present.
    let mut bytes = to_bcs(&Vote {
        settlement_id: Default::default(),
        decision: DecisionId::Value,
        round: 0,
        step: VoteStep::Prevote,
        proposal_hash: None,
    });
    bytes.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert!(from_bcs::<Certificate>(&bytes).is_err());
    let err = from_bcs::<Vote>(&[1, 2, 3]).unwrap_err().to_string();
    assert!(err.contains("Vote"), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn spec_round_trips(v in spec()) { round_trips(&v)?; }
    #[test]
    fn trade_round_trips(v in trade()) { round_trips(&v)?; }
    #[test]
    fn observation_round_trips(v in signed(observation())) { round_trips(&v)?; }
    #[test]
    fn proposal_round_trips(v in signed(proposal())) { round_trips(&v)?; }
    #[test]
    fn vote_round_trips(v in signed(vote())) { round_trips(&v)?; }
    #[test]
    fn round_proposal_round_trips(p in signed(round_proposal())) { round_trips(&p)?; }
    #[test]
    fn certificate_round_trips(v in certificate()) { round_trips(&v)?; }
    #[test]
    fn dispute_round_trips(v in signed_dispute()) { round_trips(&v)?; }
    #[test]
    fn review_vote_round_trips(v in signed(review_vote())) { round_trips(&v)?; }
    #[test]
    fn ruling_round_trips(v in ruling()) { round_trips(&v)?; }
    #[test]
    fn final_report_round_trips(v in final_report()) { round_trips(&v)?; }
    #[test]
    fn genesis_round_trips(v in genesis()) { round_trips(&v)?; }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        decode_all(&bytes);
    }

    #[test]
    fn mutated_encodings_never_panic(v in certificate(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = to_bcs(&v);
        let i = at.index(bytes.len());
        bytes[i] = byte;
        decode_all(&bytes);
        bytes.truncate(i);
        decode_all(&bytes);
    }
}
