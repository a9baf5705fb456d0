//! The node's durable state behind one trait, [`Store`], with a sled backend.
//!
//! What is kept, per settlement:
//! - the settlement spec (`settlements`);
//! - the raw trades of its window, per venue, as fetched (`trades`), so a dispute can replay them;
//! - signed observations, this node's and its peers' (`observations`);
//! - equivocation evidence: both of the different messages a member signed for one slot;
//! - disputes as relayed by the members that accepted them, review votes, review certificates
//!   and arbitrator rulings, and which relays reached this member late (`late_relays`);
//! - the venues this node's observation left out, and why (`left_out`, node-local);
//! - what this node has signed (`signed`): one record per (settlement, kind, round), written
//!   before the signature leaves the node, so a restarted node never signs two different things.
//!
//! Writes are buffered; [`Store::durable`] flushes them to disk and must be called before any
//! externally visible act (gossiping a signature, answering 202). A schema version key guards
//! against opening a store written by an incompatible fixd.

mod sled_store;

use alloy_primitives::B256;
use fixd_proto::eip712::ReportSignature;
use fixd_proto::signing::Signed;
use fixd_proto::types::certificate::{Certificate, RoundProposal, Vote};
use fixd_proto::types::dispute::{RelayedDispute, RelayedRuling, ReviewVote};
use fixd_proto::types::observation::Observation;
use fixd_proto::types::settlement::{SettlementId, SettlementSpec};
use fixd_proto::types::venue::{Trade, Venue};

pub use sled_store::SledStore;

use fixd_decision::consensus::Equivocation;
use fixd_decision::publication::OnChain;

/// A settlement's final report as this node made it, with the dispute machine's finality.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FinalRecord {
    pub report: fixd_proto::types::report::FinalReport,
    pub finality: fixd_dispute::Finality,
}

/// The schema version this fixd reads and writes.
/// 2: Tendermint round proposals and votes, keyed by decision (step for votes).
pub const SCHEMA_VERSION: u32 = 2;

pub use fixd_decision::driver::{SignedKind, SigningSlot};

/// Why the store refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store I/O failed at {path}: {source}; check the disk and the permissions of the data directory")]
    Io { path: String, source: std::io::Error },
    #[error("store backend error: {0}")]
    Backend(String),
    #[error(
        "the store at {path} is in use by another process (still locked after {waited_ms} ms); \
         stop the other fixd using this data directory, or give this node a data_dir of its own"
    )]
    Locked { path: String, waited_ms: u64 },
    #[error(
        "store at {path} has schema version {found}, this fixd reads version {expected}; \
         use a matching fixd or a fresh --data-dir"
    )]
    Schema { path: String, found: u32, expected: u32 },
    #[error("stored record {key} is corrupt: {reason}")]
    Corrupt { key: String, reason: String },
    #[error(
        "refusing to sign a second, different {kind:?} for settlement {settlement} round {round}: \
         already signed {existing}"
    )]
    Equivocation { settlement: SettlementId, kind: SignedKind, round: u32, existing: B256 },
}

/// The node's durable state. One owner writes it; readers may share it.
pub trait Store: Send + Sync + 'static {
    /// Adds or replaces a settlement spec.
    fn put_settlement(&self, spec: &SettlementSpec) -> Result<(), StoreError>;
    /// One settlement's spec.
    fn settlement(&self, id: &SettlementId) -> Result<Option<SettlementSpec>, StoreError>;
    /// Every settlement, in id order.
    fn settlements(&self) -> Result<Vec<SettlementSpec>, StoreError>;
    /// A number that moves after every [`Store::put_settlement`] in this process: a reader
    /// keeps its list of settlements while it stands ([`SettlementList`]).
    fn settlements_version(&self) -> u64;
    /// Settlements in (maturity, id) order, from just after `after` (or the first), each handed
    /// to `visit` until it answers `false`: a page reads only what it shows.
    fn settlements_by_maturity(
        &self,
        after: Option<(u64, SettlementId)>,
        visit: &mut dyn FnMut(SettlementSpec) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError>;

    /// Stores the raw trades fetched from one venue for one settlement's window.
    fn put_trades(&self, id: &SettlementId, venue: Venue, trades: &[Trade]) -> Result<(), StoreError> {
        let archived = self.archive_trades(trades)?;
        self.link_trades(id, venue, archived)
    }
    /// Archives one venue's raw trades of a window once, however many settlements draw on
    /// them; returns their key, the keccak256 of their BCS bytes.
    fn archive_trades(&self, trades: &[Trade]) -> Result<alloy_primitives::B256, StoreError>;
    /// Records that one settlement's window drew on the archived trades `archived` of `venue`
    /// (a key [`Store::archive_trades`] returned).
    fn link_trades(
        &self,
        id: &SettlementId,
        venue: Venue,
        archived: alloy_primitives::B256,
    ) -> Result<(), StoreError>;
    /// The archived trades of one venue for one settlement, or `None` if never fetched.
    fn trades(&self, id: &SettlementId, venue: Venue) -> Result<Option<Vec<Trade>>, StoreError>;

    /// Stores a signed observation (this node's or a peer's), keyed by settlement and signer.
    /// Like proposals and votes, the first message stored for a key stays: a different one for
    /// the same key belongs in [`Store::put_equivocation`].
    fn put_observation(&self, observation: &Signed<Observation>) -> Result<(), StoreError>;
    /// Every stored observation of a settlement, in signer order.
    fn observations(&self, id: &SettlementId) -> Result<Vec<Signed<Observation>>, StoreError>;

    /// Stores a signed round proposal (any member's), keyed by settlement, decision, round and
    /// signer.
    fn put_proposal(&self, proposal: &Signed<RoundProposal>) -> Result<(), StoreError>;
    /// Every stored round proposal of a settlement, by decision, round, then signer.
    fn proposals(&self, id: &SettlementId) -> Result<Vec<Signed<RoundProposal>>, StoreError>;
    /// Stores a signed vote (any member's), keyed by settlement, round and signer.
    fn put_vote(&self, vote: &Signed<Vote>) -> Result<(), StoreError>;
    /// Every stored vote of a settlement, by round then signer.
    fn votes(&self, id: &SettlementId) -> Result<Vec<Signed<Vote>>, StoreError>;
    /// Stores the settlement's certificate (one per settlement; a later one replaces it).
    fn put_certificate(&self, certificate: &Certificate) -> Result<(), StoreError>;
    /// The settlement's certificate, once certified.
    fn certificate(&self, id: &SettlementId) -> Result<Option<Certificate>, StoreError>;

    /// Stores this node's final report and how the settlement became final.
    fn put_final(&self, record: &FinalRecord) -> Result<(), StoreError>;
    /// This node's final report, once final.
    fn final_record(&self, id: &SettlementId) -> Result<Option<FinalRecord>, StoreError>;
    /// Stores a member's signed final-report signature (the first per signer stays).
    fn put_report_signature(&self, signature: &Signed<ReportSignature>) -> Result<(), StoreError>;
    /// Every stored report signature of a settlement, in signer order.
    fn report_signatures(&self, id: &SettlementId) -> Result<Vec<Signed<ReportSignature>>, StoreError>;
    /// Stores what the contract holds for a settlement, as last read (replaces the last read).
    fn put_publication(&self, id: &SettlementId, on_chain: Option<&OnChain>) -> Result<(), StoreError>;
    /// What the contract held at the last read, if anything.
    fn publication(&self, id: &SettlementId) -> Result<Option<OnChain>, StoreError>;

    /// Keeps equivocation evidence, one per (settlement, kind, round, signer); the first kept.
    fn put_equivocation(&self, evidence: &Equivocation) -> Result<(), StoreError>;
    /// Every piece of equivocation evidence about a settlement.
    fn equivocations(&self, id: &SettlementId) -> Result<Vec<Equivocation>, StoreError>;

    /// Records that this node signed the message with hash `hash` in `slot`. Recording the same
    /// hash again is fine; a different hash is refused with [`StoreError::Equivocation`]. The
    /// check and the write are one atomic step.
    fn record_signed(&self, slot: SigningSlot, hash: B256) -> Result<(), StoreError>;
    /// What this node signed in `slot`, if anything.
    fn signed(&self, slot: SigningSlot) -> Result<Option<B256>, StoreError>;

    /// Stores a dispute as its accepting member relayed it, one relay per member and dispute id
    /// (the first stays). Returns whether it was written.
    fn put_dispute(&self, dispute: &Signed<RelayedDispute>) -> Result<bool, StoreError>;
    /// Whether a dispute with this id is stored for the settlement.
    fn has_dispute(&self, id: &SettlementId, dispute_id: &B256) -> Result<bool, StoreError>;
    /// Every stored dispute of a settlement, in dispute-id order.
    fn disputes(&self, id: &SettlementId) -> Result<Vec<Signed<RelayedDispute>>, StoreError>;
    /// Stores a member's review vote, by hash (an equivocator's two both stay). Returns whether
    /// it was new.
    fn put_review_vote(&self, vote: &Signed<ReviewVote>) -> Result<bool, StoreError>;
    /// Every stored review vote of a settlement, by dispute id, then signer.
    fn review_votes(&self, id: &SettlementId) -> Result<Vec<Signed<ReviewVote>>, StoreError>;
    /// Stores the certificate of a dispute's review (the first per dispute stays).
    fn put_review_certificate(&self, dispute_id: &B256, certificate: &Certificate) -> Result<(), StoreError>;
    /// Every review certificate of a settlement, with the dispute it reviewed.
    fn review_certificates(&self, id: &SettlementId) -> Result<Vec<(B256, Certificate)>, StoreError>;
    /// Stores the certificate of the committee's final report (the first stays).
    fn put_report_certificate(&self, certificate: &Certificate) -> Result<(), StoreError>;
    /// The certificate of the settlement's decided final report, if any.
    fn report_certificate(&self, id: &SettlementId) -> Result<Option<Certificate>, StoreError>;
    /// Stores an arbitrator's ruling as relayed, one relay per member and dispute id (the first
    /// stays). Returns whether it was written.
    fn put_ruling(&self, ruling: &Signed<RelayedRuling>) -> Result<bool, StoreError>;
    /// Whether a ruling on this dispute is stored for the settlement.
    fn has_ruling(&self, id: &SettlementId, dispute_id: &B256) -> Result<bool, StoreError>;
    /// Every stored ruling of a settlement.
    fn rulings(&self, id: &SettlementId) -> Result<Vec<Signed<RelayedRuling>>, StoreError>;
    /// Marks the stored relay (dispute or ruling) with this hash as one that reached this member
    /// outside the receipt bound ([`fixd_decision::driver`]).
    fn put_late_relay(&self, id: &SettlementId, hash: &B256) -> Result<(), StoreError>;
    /// The hashes of the settlement's relays marked late.
    fn late_relays(&self, id: &SettlementId) -> Result<std::collections::BTreeSet<B256>, StoreError>;

    /// Keeps the venues this node's observation of `id` left out, and why (node-local: the
    /// signed observation does not carry it). Replaces an earlier record.
    fn put_left_out(&self, id: &SettlementId, left_out: &[crate::venues::LeftOut]) -> Result<(), StoreError>;
    /// The venues this node's observation of `id` left out; empty before it observed.
    fn left_out(&self, id: &SettlementId) -> Result<Vec<crate::venues::LeftOut>, StoreError>;

    /// A number that moves after every write for `id` in this process (and, rarely, after a
    /// write for another settlement): a reader that reads the same version before two reads of
    /// `id` knows nothing was written for it in between. The API keeps built views by it.
    fn version(&self, id: &SettlementId) -> u64;

    /// Flushes every write so far to disk. Call before any externally visible act.
    fn durable(&self) -> Result<(), StoreError>;
}

/// The one signing policy of this node, for every kind of message it signs: record the slot
/// and keep the signed message (`keep` writes it). The caller flushes ([`Store::durable`])
/// before the message can leave: the settlement service holds what it sends until its next
/// flush, one for all the messages it signed together. A slot this member already used for
/// another message is not used again: `Ok(false)`, logged, and nothing is kept (the message
/// must not be sent). Every other store failure is an error.
pub fn record_signed_and_keep(
    store: &dyn Store,
    slot: SigningSlot,
    hash: B256,
    keep: impl FnOnce(&dyn Store) -> Result<(), StoreError>,
) -> Result<bool, StoreError> {
    match store.record_signed(slot, hash) {
        Ok(()) => {}
        Err(error @ StoreError::Equivocation { .. }) => {
            tracing::warn!(%error, "signing slot taken; not signing");
            return Ok(false);
        }
        Err(error) => return Err(error),
    }
    keep(store)?;
    Ok(true)
}

/// A reader's copy of the store's settlements, each with its id, read again only when the
/// store's [`Store::settlements_version`] moved: the services that go over every settlement
/// each tick decode and hash none of them then.
#[derive(Debug, Default)]
pub struct SettlementList {
    version: Option<u64>,
    list: std::sync::Arc<[(SettlementId, SettlementSpec)]>,
}

impl SettlementList {
    /// Every settlement the store holds, in id order.
    pub fn current(
        &mut self,
        store: &dyn Store,
    ) -> Result<std::sync::Arc<[(SettlementId, SettlementSpec)]>, StoreError> {
        let version = store.settlements_version();
        if self.version != Some(version) {
            self.list = store.settlements()?.into_iter().map(|spec| (spec.id(), spec)).collect();
            self.version = Some(version);
        }
        Ok(self.list.clone())
    }
}

#[cfg(test)]
pub(crate) mod suite;
