//! The observation producer: in the grace period it archives each venue's trades of the window,
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
//!   settlement service: sign ─▶ record_signed(slot) ─▶ put_observation ─▶ its driver
//!                       ─▶ flush ─▶ "observation stored" ─▶ gossiped
//! ```
//!
//! A venue that fails (HTTP error, garbage, timeout) contributes no trades; the methodology then
//! works with the rest, or yields "no value" with its reason. The node never signs a number
//! computed from a body it could not parse. Every venue left out (a failed fetch, no trade in
//! the window, or dropped by the methodology) is kept with its reason beside the observation
//! ([`crate::venues::LeftOut`], store `left_out`), and the settlement view shows them.
//!
//! **When members fetch.** Not all at `M + grace`, which would hit each venue with the whole
//! committee at once: each member fetches at its own moment in the grace period,
//! [`fetch_at_ms`]: from `M + grace/2`, plus a jitter below `min(grace/4, 30 s)` drawn from a
//! hash of the member's key and the settlement's window (index, start, maturity), so members
//! spread out and a member keeps its moment. An observer (re)started after that moment fetches at its start plus the same jitter,
//! so a committee restarted together does not fetch in lockstep either. The observation is
//! still dated `M + grace` and signed no earlier (peers refuse messages dated in their future):
//! one fetched early waits in memory until then.
//!
//! **One fetch per window.** At an expiry, many settlements share a window: the same index over
//! the same `(M − W, M]`, with other methodology parameters. They share their fetch moment (the
//! jitter is the window's), and a pass fetches each venue once per window and computes every
//! settlement of the window from those trades, rather than once per settlement.
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
use fixd_proto::types::venue::{Trade, Venue};
use tokio_util::sync::CancellationToken;

use crate::store::{SignedKind, SigningSlot, Store, StoreError};
use crate::venues::{LeftOut, VenueAdapter, VenueError};
use fixd_proto::types::certificate::DecisionId;

/// This node's observation as the observer computed it, for the settlement service to sign.
/// The answer is the signed observation, or `None` if the slot holds another one.
#[derive(Debug)]
pub struct OwnObservation {
    pub observation: Observation,
    pub signed: tokio::sync::oneshot::Sender<Option<Signed<Observation>>>,
}

/// Where the settlement service's answer to an [`OwnObservation`] comes.
type Answer = tokio::sync::oneshot::Receiver<Option<Signed<Observation>>>;

/// The producer's state. One task runs it.
pub struct Observer {
    pub store: Arc<dyn Store>,
    pub venues: Vec<VenueAdapter>,
    pub tick: Duration,
    /// Where this node's observations go to be signed, kept, gossiped and certified.
    pub settlements: tokio::sync::mpsc::Sender<OwnObservation>,
    /// Settlements whose observation a crash lost and the archive cannot rebuild.
    pub lost: std::sync::Mutex<std::collections::BTreeSet<alloy_primitives::B256>>,
    /// Settlements whose signed observation is stored (or lost): nothing is left to do for
    /// them, so a pass skips them without reading their observations again.
    pub done: std::sync::Mutex<std::collections::HashSet<alloy_primitives::B256>>,
    /// The store's settlements, read again only when one is added.
    known: std::sync::Mutex<crate::store::SettlementList>,
    /// This member's public key: the seed of its fetch jitter.
    pub member: [u8; 32],
    /// When this observer started, unix ms: a settlement overdue then is fetched after it.
    pub started_ms: u64,
    /// Observations computed before `M + grace`, waiting to be signed then.
    pub pending: std::sync::Mutex<std::collections::BTreeMap<alloy_primitives::B256, Observation>>,
}

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observer").field("venues", &self.venues.len()).finish_non_exhaustive()
    }
}

/// The observation slot of the settlement with this id.
pub fn observation_slot_of(settlement: alloy_primitives::B256) -> SigningSlot {
    SigningSlot { settlement, kind: SignedKind::Observation, decision: DecisionId::Value, round: 0 }
}

/// Whether a settlement is due for observation at `now` (unix seconds).
pub fn is_due(spec: &SettlementSpec, now: u64) -> bool {
    now >= spec.observe_at()
}

/// The longest fetch jitter.
pub const MAX_FETCH_JITTER_MS: u64 = 30_000;

/// How far apart a committee's members fetch one settlement: `min(grace/4, 30 s)`.
pub fn fetch_spread_ms(spec: &SettlementSpec) -> u64 {
    (spec.params.grace_secs.saturating_mul(1000) / 4).min(MAX_FETCH_JITTER_MS)
}

/// This member's jitter for one settlement, below [`fetch_spread_ms`]: from a hash of its key
/// and the settlement's window, so that members differ, a member keeps its moment, and the
/// settlements of one window are fetched together.
pub fn fetch_jitter_ms(spec: &SettlementSpec, member: &[u8; 32]) -> u64 {
    let spread = fetch_spread_ms(spec);
    if spread == 0 {
        return 0;
    }
    let mut input = member.to_vec();
    input.extend_from_slice(&fixd_proto::encoding::to_bcs(&spec.index));
    input.extend_from_slice(&spec.window_start().to_be_bytes());
    input.extend_from_slice(&spec.maturity.to_be_bytes());
    let hash = alloy_primitives::keccak256(&input);
    let mut head = [0u8; 8];
    head.copy_from_slice(&hash[..8]);
    u64::from_be_bytes(head) % spread
}

/// When this member starts fetching a settlement's window, unix ms: `M + grace/2` plus its
/// jitter, inside the grace period; or, for an observer started after that, its start plus the
/// same jitter.
pub fn fetch_at_ms(spec: &SettlementSpec, member: &[u8; 32], started_ms: u64) -> u64 {
    let jitter = fetch_jitter_ms(spec, member);
    let grace_ms = spec.params.grace_secs.saturating_mul(1000);
    let planned = spec.maturity.saturating_mul(1000).saturating_add(grace_ms / 2).saturating_add(jitter);
    if started_ms > planned { started_ms.saturating_add(jitter) } else { planned }
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
    /// An observer for the member with public key `member`, started now.
    pub fn new(
        store: Arc<dyn Store>,
        venues: Vec<VenueAdapter>,
        tick: Duration,
        settlements: tokio::sync::mpsc::Sender<OwnObservation>,
        member: [u8; 32],
    ) -> Observer {
        Observer {
            store,
            venues,
            tick,
            settlements,
            lost: Default::default(),
            done: Default::default(),
            known: Default::default(),
            member,
            started_ms: crate::clock::now_ms(),
            pending: Default::default(),
        }
    }

    /// Runs until cancelled.
    pub async fn run(self, cancel: CancellationToken) -> anyhow::Result<()> {
        let mut interval = tokio::time::interval(self.tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return Ok(()),
                _ = interval.tick() => self.pass_at(crate::clock::now_ms()).await?,
            }
        }
    }

    /// [`Self::pass_at`] at `now` unix seconds.
    pub async fn pass(&self, now: u64) -> Result<(), StoreError> {
        self.pass_at(now.saturating_mul(1000)).await
    }

    /// Fetches every settlement whose fetch moment has come and that is not yet observed (each
    /// venue once per window), and signs every observation whose time (`M + grace`) has come.
    pub async fn pass_at(&self, now_ms: u64) -> Result<(), StoreError> {
        let mut windows: Vec<(Window, Vec<SettlementSpec>)> = Vec::new();
        // Every observation due goes to the settlement service before any answer is awaited,
        // so that a burst's observations are signed together (one flush) and the pass waits
        // for the service once, not once per settlement.
        let mut answers = Vec::new();
        let known = self.known.lock().expect("known lock").current(&*self.store)?;
        for (id, spec) in known.iter() {
            if self.done.lock().expect("done lock").contains(id)
                || now_ms < fetch_at_ms(spec, &self.member, self.started_ms)
            {
                continue;
            }
            let due = is_due(spec, now_ms / 1000);
            match self.store.signed(observation_slot_of(*id))? {
                None => {
                    let pending = self.pending.lock().expect("pending lock").get(id).cloned();
                    match pending {
                        Some(observation) => answers.extend(self.sign_when_due(observation, due).await),
                        None => {
                            let window = Window::of(spec);
                            match windows.iter_mut().find(|(w, _)| *w == window) {
                                Some((_, specs)) => specs.push(spec.clone()),
                                None => windows.push((window, vec![spec.clone()])),
                            }
                        }
                    }
                }
                Some(hash) if due => self.recover(spec, hash).await?,
                Some(_) => {}
            }
        }
        for (window, specs) in windows {
            let fetched = Fetched::archive(&*self.store, self.fetch(window).await)?;
            for spec in specs {
                if let Some(observation) = self.compute(&spec, &fetched)? {
                    answers.extend(self.sign_when_due(observation, is_due(&spec, now_ms / 1000)).await);
                }
            }
        }
        for answer in answers {
            let _ = answer.await;
        }
        Ok(())
    }

    /// Sends `observation` to be signed if its time has come (`due` at the pass, or by now),
    /// with the receiver of the service's answer, or keeps it until then.
    async fn sign_when_due(&self, observation: Observation, due: bool) -> Option<Answer> {
        let id = observation.settlement_id;
        let spec_due = due || crate::clock::now() >= observation.observed_at;
        if spec_due {
            self.pending.lock().expect("pending lock").remove(&id);
            self.submit(observation).await
        } else {
            self.pending.lock().expect("pending lock").insert(id, observation);
            None
        }
    }

    /// The slot holds `hash`: if no stored observation has it (a crash came between the two
    /// writes), signs the observation rebuilt from the archive again, or gives up once.
    async fn recover(&self, spec: &SettlementSpec, hash: alloy_primitives::B256) -> Result<(), StoreError> {
        let id = spec.id();
        if self.lost.lock().expect("lost lock").contains(&id)
            || self.store.observations(&id)?.iter().any(|o| o.hash() == hash)
        {
            self.done.lock().expect("done lock").insert(id);
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
        self.submit(observation).await?.await.ok().flatten()
    }

    /// Sends `observation` to the settlement service to be signed and kept; where its answer
    /// comes, or `None` if the service has stopped.
    async fn submit(&self, observation: Observation) -> Option<Answer> {
        let (signed, answer) = tokio::sync::oneshot::channel();
        let own = OwnObservation { observation, signed };
        if self.settlements.send(own).await.is_err() {
            tracing::warn!("the settlement service has stopped; nothing signed");
            return None;
        }
        Some(answer)
    }

    /// Fetches, archives and computes one observation, and has the settlement service sign and
    /// keep it. `None` when the settlement's parameters are unusable (nothing is signed; the
    /// error is logged), when the slot holds another observation, or when the settlement
    /// service has stopped.
    pub async fn observe_and_store(
        &self,
        spec: &SettlementSpec,
    ) -> Result<Option<Signed<Observation>>, StoreError> {
        let fetched = Fetched::archive(&*self.store, self.fetch(Window::of(spec)).await)?;
        match self.compute(spec, &fetched)? {
            Some(observation) => Ok(self.sign(observation).await),
            None => Ok(None),
        }
    }

    /// Every venue's trades of one window, fetched concurrently.
    async fn fetch(&self, window: Window) -> Vec<(Venue, Result<Vec<Trade>, VenueError>)> {
        let fetches = self
            .venues
            .iter()
            .map(|v| async move { (v.venue(), v.trades_between(window.start_ms, window.end_ms).await) });
        futures::future::join_all(fetches).await
    }

    /// Archives a settlement's trades from its window's fetch, computes its observation, and
    /// keeps the venues it left out. `None` when the settlement's parameters are unusable
    /// (logged).
    fn compute(&self, spec: &SettlementSpec, fetched: &Fetched) -> Result<Option<Observation>, StoreError> {
        let id = spec.id();
        let mut failed = Vec::new();
        for (venue, result) in &fetched.venues {
            match result {
                Ok(archived) => {
                    tracing::info!(settlement = %id, %venue, trades = archived.trades, "archived venue trades");
                    self.store.link_trades(&id, *venue, archived.key)?;
                }
                Err(error) => {
                    tracing::warn!(settlement = %id, %venue, %error, "venue left out of this observation");
                    failed.push(LeftOut::failed(error));
                }
            }
        }
        let observation = match observe(spec, &fetched.trades) {
            Ok(observation) => observation,
            Err(error) => {
                tracing::error!(settlement = %id, %error, "cannot observe this settlement; nothing signed");
                return Ok(None);
            }
        };
        let asked: Vec<Venue> = self.venues.iter().map(VenueAdapter::venue).collect();
        let left_out = LeftOut::of_observation(&asked, &failed, &observation.computation);
        for l in left_out.iter().filter(|l| !failed.iter().any(|f| f.venue == l.venue)) {
            tracing::info!(settlement = %id, venue = %l.venue, reason = ?l.reason, detail = %l.detail, "venue left out of this observation");
        }
        self.store.put_left_out(&id, &left_out)?;
        Ok(Some(observation))
    }
}

/// One window's fetch, archived: each venue's trades stored once (however many settlements of
/// the window draw on them: in a burst of 10,000, encoding and hashing each settlement's copy
/// was the observer's largest cost), and every venue's trades together.
struct Fetched {
    /// Each venue's archive, or why it served nothing.
    venues: Vec<(Venue, Result<Archived, VenueError>)>,
    trades: Vec<Trade>,
}

/// One venue's trades of a window as archived: their key in the store and how many they are.
#[derive(Clone, Copy, Debug)]
struct Archived {
    key: alloy_primitives::B256,
    trades: usize,
}

impl Fetched {
    fn archive(
        store: &dyn Store,
        fetched: Vec<(Venue, Result<Vec<Trade>, VenueError>)>,
    ) -> Result<Self, StoreError> {
        let mut all = Fetched { venues: Vec::with_capacity(fetched.len()), trades: Vec::new() };
        for (venue, result) in fetched {
            let archived = match result {
                Ok(trades) => {
                    let archived = Archived { key: store.archive_trades(&trades)?, trades: trades.len() };
                    all.trades.extend(trades);
                    Ok(archived)
                }
                Err(error) => Err(error),
            };
            all.venues.push((venue, archived));
        }
        Ok(all)
    }
}

/// What one fetch serves: an index's trades over `start_ms ..= end_ms` (unix ms). Settlements
/// with the same window share it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Window {
    index: fixd_proto::types::settlement::Index,
    start_ms: u64,
    end_ms: u64,
}

impl Window {
    fn of(spec: &SettlementSpec) -> Window {
        let (start_ms, end_ms) = window_ms(spec);
        Window { index: spec.index, start_ms, end_ms }
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
        store.record_signed(observation_slot_of(spec.id()), B256::repeat_byte(0x77)).unwrap();
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
        let observer = Observer::new(store, vec![], Duration::from_secs(1), tx, [7; 32]);
        let now = spec.observe_at() + 1;
        observer.pass(now).await.unwrap();
        observer.pass(now + 1).await.unwrap();
        assert_eq!(*observer.lost.lock().unwrap(), BTreeSet::from([spec.id()]));
        drop(observer);
        assert_eq!(asked.await.unwrap(), 1, "asked to sign once, then given up");
    }

    fn spec_at(maturity: u64, grace_secs: u64) -> SettlementSpec {
        SettlementSpec {
            index: Index::EthUsd,
            maturity,
            params: MethodologyParams { grace_secs, ..MethodologyParams::default() },
        }
    }

    #[test]
    fn members_fetch_at_their_own_moment_inside_the_grace() {
        let spec = spec_at(1_800_000_000, 120);
        let (m, observe_at) = (spec.maturity * 1000, spec.observe_at() * 1000);
        let moments: BTreeSet<u64> = (0..16u8).map(|k| fetch_at_ms(&spec, &[k; 32], 0)).collect();
        assert!(moments.len() >= 12, "members spread out: {moments:?}");
        for at in &moments {
            assert!((m + 60_000..m + 90_000).contains(at), "{at}: inside the grace, before M + grace");
            assert!(*at < observe_at);
        }
        // A member keeps its moment; a short grace keeps the jitter inside it.
        assert_eq!(fetch_at_ms(&spec, &[3; 32], 0), fetch_at_ms(&spec, &[3; 32], 0));
        let short = spec_at(1_800_000_000, 5);
        for k in 0..16u8 {
            let at = fetch_at_ms(&short, &[k; 32], 0) - short.maturity * 1000;
            assert!((2_500..3_750).contains(&at), "{at}");
        }
        assert_eq!(fetch_at_ms(&spec_at(1_800_000_000, 0), &[1; 32], 0), 1_800_000_000_000);
        // A long grace: the jitter stays under 30 s.
        let long = spec_at(1_800_000_000, 3_600);
        assert!(fetch_jitter_ms(&long, &[9; 32]) < MAX_FETCH_JITTER_MS);
    }

    #[test]
    fn a_restarted_committee_does_not_fetch_in_lockstep() {
        let spec = spec_at(1_800_000_000, 120);
        let restart = spec.observe_at() * 1000 + 3_600_000;
        let moments: BTreeSet<u64> = (0..16u8).map(|k| fetch_at_ms(&spec, &[k; 32], restart)).collect();
        assert!(moments.len() >= 12, "{moments:?}");
        assert!(moments.iter().all(|at| (restart..restart + 30_000).contains(at)), "{moments:?}");
    }

    /// An observation fetched at the member's moment inside the grace waits until `M + grace`
    /// to be signed, and is signed once then.
    #[tokio::test]
    async fn an_early_fetch_is_signed_at_m_plus_grace() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
        let spec = spec_at(1_800_000_000, 120);
        store.put_settlement(&spec).unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<OwnObservation>(4);
        let mut observer = Observer::new(store.clone(), vec![], Duration::from_secs(1), tx, [5; 32]);
        observer.started_ms = 0;
        let fetch_at = fetch_at_ms(&spec, &[5; 32], 0);
        observer.pass_at(fetch_at - 1).await.unwrap();
        assert!(observer.pending.lock().unwrap().is_empty(), "not fetched before its moment");
        observer.pass_at(fetch_at).await.unwrap();
        assert!(rx.try_recv().is_err(), "not signed before M + grace");
        assert_eq!(observer.pending.lock().unwrap().len(), 1);
        let signer = tokio::spawn(async move {
            let own = rx.recv().await.unwrap();
            assert_eq!(own.observation.observed_at, 1_800_000_120);
            let _ = own.signed.send(None);
            rx
        });
        observer.pass_at(spec.observe_at() * 1000).await.unwrap();
        let mut rx = signer.await.unwrap();
        assert!(observer.pending.lock().unwrap().is_empty());
        assert!(rx.try_recv().is_err(), "asked once");
        // No venue was asked, so none is left out.
        assert_eq!(store.left_out(&spec.id()).unwrap(), vec![]);
    }
}
