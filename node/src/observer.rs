//! The observation producer: at `M + grace` it archives each venue's trades of the window,
//! computes the node's value with `fixd-proto`'s methodology, and hands the observation to the
//! settlement service, the one place that signs: it records the slot, keeps the observation and
//! flushes before anything else can see it.
//!
//! ```text
//!  tick ─▶ settlements due & not yet observed
//!              │ fetch (M−W, M] from every venue, concurrently
//!              ▼
//!   archive raw trades per venue (store) ─▶ methodology::compute ─▶ Observation
//!              │ observed_at = M + grace, so a recomputation signs the same bytes
//!              ▼
//!   settlement service: sign ─▶ record_signed(slot) ─▶ put_observation ─▶ durable()
//!                       ─▶ "observation stored" ─▶ gossip ─▶ its driver
//! ```
//!
//! A venue that fails (HTTP error, garbage, timeout) contributes no trades; the methodology then
//! works with the rest, or yields "no value" with its reason. The node never signs a number
//! computed from a body it could not parse.
//!
//! **A crash between the slot and the observation.** The slot record can reach the disk without
//! the observation (a crash between the two writes). At the next pass the slot holds a hash
//! that no stored observation has: the observer rebuilds the observation from the archived
//! trades (deterministic, so the same bytes and the same hash) and has it signed again, which
//! the slot accepts. If the archive rebuilds another observation, the slot refuses it: the
//! conflict is logged once, the settlement is marked lost for this node's observation (its
//! peers certify without it), and the node runs on.

use std::sync::Arc;
use std::time::Duration;

use fixd_proto::methodology;
use fixd_proto::signing::Signed;
use fixd_proto::types::observation::Observation;
use fixd_proto::types::settlement::SettlementSpec;
use fixd_proto::types::venue::Trade;
use tokio_util::sync::CancellationToken;

use crate::store::{SignedKind, SigningSlot, Store, StoreError};
use crate::venues::VenueAdapter;
use fixd_proto::types::certificate::DecisionId;

/// This node's observation as the observer computed it, for the settlement service to sign.
/// The answer is the signed observation, or `None` if the slot holds another one.
#[derive(Debug)]
pub struct OwnObservation {
    pub observation: Observation,
    pub signed: tokio::sync::oneshot::Sender<Option<Signed<Observation>>>,
}

/// The producer's state. One task runs it.
pub struct Observer {
    pub store: Arc<dyn Store>,
    pub venues: Vec<VenueAdapter>,
    pub tick: Duration,
    /// Where this node's observations go to be signed, kept, gossiped and certified.
    pub settlements: tokio::sync::mpsc::Sender<OwnObservation>,
    /// Settlements whose observation a crash lost and the archive cannot rebuild.
    pub lost: std::sync::Mutex<std::collections::BTreeSet<alloy_primitives::B256>>,
}

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observer").field("venues", &self.venues.len()).finish_non_exhaustive()
    }
}

/// The signing slot of this node's observation of a settlement.
pub fn observation_slot(spec: &SettlementSpec) -> SigningSlot {
    observation_slot_of(spec.id())
}

/// The observation slot of the settlement with this id.
pub fn observation_slot_of(settlement: alloy_primitives::B256) -> SigningSlot {
    SigningSlot { settlement, kind: SignedKind::Observation, decision: DecisionId::Value, round: 0 }
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
            if !is_due(&spec, now) {
                continue;
            }
            match self.store.signed(observation_slot(&spec))? {
                None => {
                    self.observe_and_store(&spec).await?;
                }
                Some(hash) => self.recover(&spec, hash).await?,
            }
        }
        Ok(())
    }

    /// The slot holds `hash`: if no stored observation has it (a crash came between the two
    /// writes), signs the observation rebuilt from the archive again, or gives up once.
    async fn recover(&self, spec: &SettlementSpec, hash: alloy_primitives::B256) -> Result<(), StoreError> {
        let id = spec.id();
        if self.lost.lock().expect("lost lock").contains(&id)
            || self.store.observations(&id)?.iter().any(|o| o.hash() == hash)
        {
            return Ok(());
        }
        let mut trades = Vec::new();
        for venue in self.venues.iter().map(VenueAdapter::venue) {
            trades.extend(self.store.trades(&id, venue)?.unwrap_or_default());
        }
        let rebuilt = match observe(spec, &trades) {
            Ok(observation) => self.sign(observation).await,
            Err(_) => None,
        };
        if rebuilt.as_ref().is_some_and(|o| o.hash() == hash) {
            tracing::warn!(settlement = %id, %hash, "an observation the slot recorded was not stored (a crash); signed it again from the archive");
        } else {
            tracing::error!(settlement = %id, slot = %hash, "this node's observation slot is taken by an observation that was never stored, and the archive rebuilds another: this node does not observe the settlement (its peers certify without it); it runs on");
            self.lost.lock().expect("lost lock").insert(id);
        }
        Ok(())
    }

    /// Has the settlement service sign and keep `observation`; the signed one, or `None` if
    /// the slot holds another or the service has stopped.
    async fn sign(&self, observation: Observation) -> Option<Signed<Observation>> {
        let (signed, answer) = tokio::sync::oneshot::channel();
        let own = OwnObservation { observation, signed };
        if self.settlements.send(own).await.is_err() {
            tracing::warn!("the settlement service has stopped; nothing signed");
            return None;
        }
        answer.await.ok().flatten()
    }

    /// Fetches, archives and computes one observation, and has the settlement service sign and
    /// keep it. `None` when the settlement's parameters are unusable (nothing is signed; the
    /// error is logged), when the slot holds another observation, or when the settlement
    /// service has stopped.
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
        Ok(self.sign(observation).await)
    }
}

/// The fetch range of a settlement's window in unix ms: `(M − W)·1000 + 1 ..= M·1000`.
pub fn window_ms(spec: &SettlementSpec) -> (u64, u64) {
    (spec.window_start().saturating_mul(1000).saturating_add(1), spec.maturity.saturating_mul(1000))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use alloy_primitives::B256;
    use fixd_proto::types::settlement::{Index, MethodologyParams};

    use super::*;
    use crate::store::SledStore;

    /// The slot holds a hash no stored observation has, and the archive (empty here) rebuilds
    /// another observation, which the slot refuses: the observer asks once, marks the
    /// settlement lost, and later passes leave it alone; the node runs on.
    #[tokio::test]
    async fn a_slot_the_archive_cannot_rebuild_is_given_up_once() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
        let spec = SettlementSpec {
            index: Index::EthUsd,
            maturity: 1_800_000_000,
            params: MethodologyParams::default(),
        };
        store.put_settlement(&spec).unwrap();
        store.record_signed(observation_slot(&spec), B256::repeat_byte(0x77)).unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<OwnObservation>(4);
        let asked = tokio::spawn(async move {
            let mut asked = 0;
            while let Some(own) = rx.recv().await {
                asked += 1;
                // The settlement service's answer when the slot holds another hash.
                let _ = own.signed.send(None);
            }
            asked
        });
        let observer = Observer {
            store,
            venues: vec![],
            tick: Duration::from_secs(1),
            settlements: tx,
            lost: Default::default(),
        };
        let now = spec.observe_at() + 1;
        observer.pass(now).await.unwrap();
        observer.pass(now + 1).await.unwrap();
        assert_eq!(*observer.lost.lock().unwrap(), BTreeSet::from([spec.id()]));
        drop(observer);
        assert_eq!(asked.await.unwrap(), 1, "asked to sign once, then given up");
    }
}
