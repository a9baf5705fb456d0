//! A member's review of a dispute round (DESIGN 6): whether the contested certificate's median
//! recomputes from its inputs, and the window recomputed from each venue's history (its
//! corrected record), else from this node's archive. It runs in a helper task; the answer goes
//! back to the settlement's driver as `Input::Recomputed`, which asks for the vote to be signed.

use alloy_primitives::B256;
use fixd_proto::certify::{review_target, verify_certificate, verify_review_certificate};
use fixd_proto::types::certificate::{Certificate, ProposalSource};
use fixd_proto::types::dispute::ReviewVote;
use fixd_proto::types::genesis::Committee;
use fixd_proto::types::settlement::SettlementSpec;

use crate::store::{Store, StoreError};
use crate::venues::VenueAdapter;

/// The certificate in force whose proposal hash is `contested`: the first one or a review's.
fn certificate_by_hash(
    store: &dyn Store,
    spec: &SettlementSpec,
    contested: &B256,
) -> Result<Option<Certificate>, StoreError> {
    let id = spec.id();
    let first = store.certificate(&id)?.filter(|c| &c.proposal.hash() == contested);
    if first.is_some() {
        return Ok(first);
    }
    Ok(store.review_certificates(&id)?.into_iter().map(|(_, c)| c).find(|c| &c.proposal.hash() == contested))
}

/// This member's review of `contested`: whether its median recomputes from the certified
/// inputs, and the value recomputed from each venue's history (its corrected record), or from
/// this node's archive of the window where the history cannot be read.
pub async fn recompute(
    store: &dyn Store,
    venues: &[VenueAdapter],
    committee: &Committee,
    network_id: &B256,
    spec: &SettlementSpec,
    dispute_id: B256,
    contested: B256,
) -> Result<ReviewVote, StoreError> {
    let id = spec.id();
    let median_recomputes = match certificate_by_hash(store, spec, &contested)? {
        Some(c) => match &c.proposal.payload.source {
            ProposalSource::Observations => {
                verify_certificate(committee, network_id, spec, &c, &store.observations(&id)?).is_ok()
            }
            ProposalSource::Review { .. } => {
                let votes = store.review_votes(&id)?;
                review_target(&c, &votes).is_some_and(|target| {
                    verify_review_certificate(committee, network_id, spec, &c, &target, &votes).is_ok()
                })
            }
            // A report is not a value a dispute contests.
            ProposalSource::Report { .. } => false,
        },
        None => false,
    };
    let (start_ms, end_ms) = crate::observer::window_ms(spec);
    let mut trades = Vec::new();
    for venue in venues {
        match venue.trades_between(start_ms, end_ms).await {
            Ok(history) => {
                tracing::info!(settlement = %id, venue = %venue.venue(), trades = history.len(), "review: the venue's history");
                trades.extend(history);
            }
            Err(error) => {
                let archived = store.trades(&id, venue.venue())?.unwrap_or_default();
                tracing::warn!(settlement = %id, venue = %venue.venue(), %error, archived = archived.len(), "review: history unavailable; using this node's archive");
                trades.extend(archived);
            }
        }
    }
    let (value, trade_digest) = match crate::observer::observe(spec, &trades) {
        Ok(o) => (o.computation.value, o.trade_digest),
        Err(error) => {
            tracing::error!(settlement = %id, %error, "review: the methodology cannot run; voting no value");
            let reason = fixd_proto::types::observation::NoValueReason::NoVenues;
            (fixd_proto::types::observation::NodeValue::NoValue(reason), B256::ZERO)
        }
    };
    Ok(ReviewVote {
        settlement_id: id,
        dispute_id,
        proposal_hash: contested,
        median_recomputes,
        value,
        trade_digest,
    })
}
