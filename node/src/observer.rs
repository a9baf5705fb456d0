//! The observation producer: at `M + grace` it archives each venue's trades of the window,
//! computes the node's value with `fixd-proto`'s methodology, signs the observation, records
//! that it signed it, and makes both durable before anything else can see them.
//!
//! ```text
//!  tick ─▶ settlements due & not yet observed
//!              │ fetch (M−W, M] from every venue, concurrently
//!              ▼
//!   archive raw trades per venue (store) ─▶ methodology::compute ─▶ Observation
//!              │ observed_at = M + grace, so a recomputation signs the same bytes
//!              ▼
//!   sign ─▶ record_signed(slot) ─▶ put_observation ─▶ durable() ─▶ "observation stored"
//! ```
//!
//! A venue that fails (HTTP error, garbage, timeout) contributes no trades; the methodology then
//! works with the rest, or yields "no value" with its reason. The node never signs a number
//! computed from a body it could not parse.

use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use fixd_proto::methodology;
use fixd_proto::signing::Signed;
use fixd_proto::types::observation::Observation;
use fixd_proto::types::settlement::SettlementSpec;
use fixd_proto::types::venue::Trade;
use tokio_util::sync::CancellationToken;

use alloy_primitives::B256;

use crate::store::{SignedKind, SigningSlot, Store, StoreError};
use crate::venues::VenueAdapter;

/// The producer's state. One task runs it.
pub struct Observer {
    pub store: Arc<dyn Store>,
    pub venues: Vec<VenueAdapter>,
    pub key: SigningKey,
    pub network_id: B256,
    pub tick: Duration,
    pub events: crate::events::EventBus,
    /// Where this node's new observations go to be gossiped and certified.
    pub settlements: tokio::sync::mpsc::Sender<Signed<Observation>>,
}

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observer").field("venues", &self.venues.len()).finish_non_exhaustive()
    }
}

/// The signing slot of this node's observation of a settlement.
pub fn observation_slot(spec: &SettlementSpec) -> SigningSlot {
    SigningSlot { settlement: spec.id(), kind: SignedKind::Observation, round: 0 }
}

/// Whether a settlement is due for observation at `now` (unix seconds).
pub fn is_due(spec: &SettlementSpec, now: u64) -> bool {
    now >= spec.observe_at()
}

/// The observation of `spec` over `trades`. Deterministic: the same trades give the same bytes.
pub fn observe(
    spec: &SettlementSpec,
    trades: &[Trade],
) -> Result<Observation, methodology::MethodologyError> {
    let cleaned = methodology::clean_trades(spec, trades);
    Ok(Observation {
        settlement_id: spec.id(),
        observed_at: spec.observe_at(),
        computation: methodology::compute(spec, trades)?,
        trade_digest: methodology::trade_digest(&cleaned),
    })
}

impl Observer {
    /// Runs until cancelled.
    pub async fn run(self, cancel: CancellationToken) -> anyhow::Result<()> {
        let mut interval = tokio::time::interval(self.tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return Ok(()),
                _ = interval.tick() => self.pass(crate::clock::now()).await?,
            }
        }
    }

    /// Observes every settlement that is due and not yet observed.
    pub async fn pass(&self, now: u64) -> Result<(), StoreError> {
        for spec in self.store.settlements()? {
            if is_due(&spec, now) && self.own_observation(&spec)?.is_none() {
                self.observe_and_store(&spec).await?;
            }
        }
        Ok(())
    }

    fn own_observation(&self, spec: &SettlementSpec) -> Result<Option<Signed<Observation>>, StoreError> {
        let me = fixd_proto::signing::PublicKey::of(&self.key);
        Ok(self.store.observations(&spec.id())?.into_iter().find(|o| o.signer == me))
    }

    /// Fetches, archives, computes, signs and stores one observation. `None` when the
    /// settlement's parameters are unusable (nothing is signed; the error is logged).
    pub async fn observe_and_store(
        &self,
        spec: &SettlementSpec,
    ) -> Result<Option<Signed<Observation>>, StoreError> {
        let id = spec.id();
        let (start_ms, end_ms) = window_ms(spec);
        let fetches =
            self.venues.iter().map(|v| async move { (v.venue(), v.trades_between(start_ms, end_ms).await) });
        let mut trades = Vec::new();
        for (venue, result) in futures::future::join_all(fetches).await {
            match result {
                Ok(venue_trades) => {
                    tracing::info!(settlement = %id, %venue, trades = venue_trades.len(), "archived venue trades");
                    self.store.put_trades(&id, venue, &venue_trades)?;
                    trades.extend(venue_trades);
                }
                Err(error) => {
                    tracing::warn!(settlement = %id, %venue, %error, "venue left out of this observation")
                }
            }
        }
        let observation = match observe(spec, &trades) {
            Ok(observation) => observation,
            Err(error) => {
                tracing::error!(settlement = %id, %error, "cannot observe this settlement; nothing signed");
                return Ok(None);
            }
        };
        self.sign_and_keep(spec, observation).await
    }

    /// Signs this node's observation in its slot, keeps it and hands it to the settlement
    /// service. `None` when the slot holds another observation (nothing is signed or sent).
    async fn sign_and_keep(
        &self,
        spec: &SettlementSpec,
        observation: Observation,
    ) -> Result<Option<Signed<Observation>>, StoreError> {
        let id = spec.id();
        let signed = Signed::sign(&self.key, &self.network_id, observation);
        let kept =
            crate::store::record_signed_and_keep(&*self.store, observation_slot(spec), signed.hash(), |s| {
                s.put_observation(&signed)
            })?;
        if !kept {
            return Ok(None);
        }
        let value = &signed.payload.computation.value;
        tracing::info!(settlement = %id, hash = %signed.hash(), ?value, "observation stored");
        if self.settlements.send(signed.clone()).await.is_err() {
            tracing::warn!(settlement = %id, "the settlement service has stopped; the observation stays stored for catch-up");
        }
        self.events.publish(crate::events::NodeEvent {
            settlement_id: id,
            kind: crate::events::EventKind::Observed,
            at: crate::clock::now(),
            detail: serde_json::json!({ "hash": signed.hash(), "value": value }),
        });
        Ok(Some(signed))
    }
}

/// The fetch range of a settlement's window in unix ms: `(M − W)·1000 + 1 ..= M·1000`.
pub fn window_ms(spec: &SettlementSpec) -> (u64, u64) {
    (spec.window_start().saturating_mul(1000).saturating_add(1), spec.maturity.saturating_mul(1000))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use alloy_primitives::B256;
    use ed25519_dalek::SigningKey;
    use fixd_proto::types::observation::{Computation, NodeValue, Observation};
    use fixd_proto::types::settlement::{Index, MethodologyParams, SettlementSpec};
    use fixd_proto::value::Wad;

    use super::{Observer, observation_slot};
    use crate::store::{SledStore, Store};

    fn observation(spec: &SettlementSpec, value: u128) -> Observation {
        Observation {
            settlement_id: spec.id(),
            observed_at: spec.observe_at(),
            computation: Computation {
                partitions: vec![Some(Wad::from_raw(value)); 12],
                venues: vec![],
                value: NodeValue::Value(Wad::from_raw(value)),
            },
            trade_digest: B256::ZERO,
        }
    }

    /// The observer follows the one signing policy: a slot that holds another observation
    /// (signed before a crash, say, from other trades) is not signed again, nothing is stored
    /// and nothing goes to the settlement service; the same observation again is fine.
    #[tokio::test]
    async fn a_taken_observation_slot_is_skipped_and_nothing_is_sent() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
        let spec = SettlementSpec {
            index: Index::EthUsd,
            maturity: 1_790_000_000,
            params: MethodologyParams::default(),
        };
        store.put_settlement(&spec).unwrap();
        let (settlements, mut received) = tokio::sync::mpsc::channel(4);
        let observer = Observer {
            store: store.clone(),
            venues: vec![],
            key: SigningKey::from_bytes(&[7; 32]),
            network_id: B256::repeat_byte(1),
            tick: Duration::from_secs(1),
            events: crate::events::EventBus::default(),
            settlements,
        };
        let first = observer.sign_and_keep(&spec, observation(&spec, 2500)).await.unwrap();
        let first = first.expect("an empty slot signs");
        assert_eq!(received.try_recv().unwrap(), first);
        assert_eq!(store.signed(observation_slot(&spec)).unwrap(), Some(first.hash()));

        let other = observer.sign_and_keep(&spec, observation(&spec, 2501)).await.unwrap();
        assert_eq!(other, None, "another observation in a taken slot is not signed");
        assert!(received.try_recv().is_err(), "and not sent");
        assert_eq!(store.observations(&spec.id()).unwrap(), vec![first.clone()], "nor stored");

        let again = observer.sign_and_keep(&spec, observation(&spec, 2500)).await.unwrap();
        assert_eq!(again, Some(first), "the same observation again is the same signature");
    }
}
