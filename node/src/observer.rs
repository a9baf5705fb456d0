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
            if is_due(&spec, now) && self.store.signed(observation_slot(&spec))?.is_none() {
                self.observe_and_store(&spec).await?;
            }
        }
        Ok(())
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
        let (signed, answer) = tokio::sync::oneshot::channel();
        let own = OwnObservation { observation, signed };
        if self.settlements.send(own).await.is_err() {
            tracing::warn!(settlement = %id, "the settlement service has stopped; nothing signed");
            return Ok(None);
        }
        Ok(answer.await.ok().flatten())
    }
}

/// The fetch range of a settlement's window in unix ms: `(M − W)·1000 + 1 ..= M·1000`.
pub fn window_ms(spec: &SettlementSpec) -> (u64, u64) {
    (spec.window_start().saturating_mul(1000).saturating_add(1), spec.maturity.saturating_mul(1000))
}
