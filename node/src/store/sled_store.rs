//! The sled backend of [`Store`].
//!
//! Trees: `meta` (schema version), `settlements` (id → BCS spec), `settlements_by_maturity`
//! (maturity, big-endian ‖ id → BCS spec: the list order, rebuilt at open when it does not hold
//! every settlement), `trade_refs` (id ‖ venue → keccak of the BCS trades) and `trade_blobs`
//! (that keccak → BCS trades: the settlements of one window archive the same trades once;
//! `trades`, id ‖ venue → BCS trades, is what stores written before held, still read),
//! `observations` (id ‖ signer → BCS signed observation), `proposals` and `votes`
//! (id ‖ decision ‖ round ‖ step (votes) ‖ signer → BCS signed message; a decision is `0`, or
//! `1 ‖ dispute id` for a review), `certificates` (id → BCS certificate), `signed` (id ‖ kind ‖
//! decision ‖ round → hash), `equivocations` (id ‖ kind ‖ decision ‖ round ‖ step ‖ signer → BCS
//! evidence),
//! `finals` (id → BCS final record), `report_signatures` (id ‖ signer → BCS signed report
//! signature), `publications` (id → BCS on-chain state as last read), `disputes` and `rulings`
//! (id ‖ dispute id ‖ relayer → BCS relayed message, one per member that relayed it), `review_votes` (id ‖ dispute id ‖ signer ‖ hash → BCS
//! signed vote), `review_certificates` (id ‖ dispute id → BCS (dispute id, certificate)),
//! `report_certificates` (id → BCS certificate of the decided final report), `late_relays`
//! (id ‖ relay hash → empty: a held dispute or ruling relay that reached this member outside
//! the receipt bound).
//! `left_out` (id → BCS list of the venues this node's observation left out, and why).
//! Values are BCS, so a record reads back exactly as written.
//!
//! Every write for a settlement moves its [`Store::version`]: one of [`VERSION_SLOTS`] counters in
//! memory, chosen by the id's first two bytes (ids are hashes), bumped after the write.
//!
//! Signed messages are written first-wins (`compare_and_swap` against an empty key): a second,
//! different message for the same key never replaces the first, and lives on only inside the
//! equivocation evidence.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use alloy_primitives::B256;
use fixd_proto::eip712::ReportSignature;
use fixd_proto::encoding::{from_bcs, to_bcs};
use fixd_proto::signing::Signed;
use fixd_proto::types::certificate::{Certificate, DecisionId, RoundProposal, Vote, VoteStep};
use fixd_proto::types::dispute::{RelayedDispute, RelayedRuling, ReviewVote};
use fixd_proto::types::observation::Observation;
use fixd_proto::types::settlement::{SettlementId, SettlementSpec};
use fixd_proto::types::venue::{Trade, Venue};
use serde::de::DeserializeOwned;

use fixd_decision::consensus::Equivocation;
use fixd_decision::publication::OnChain;

use super::{FinalRecord, SCHEMA_VERSION, SigningSlot, Store, StoreError};

const SCHEMA_KEY: &[u8] = b"schema_version";
/// The tree of the venues each observation left out (id → BCS list), opened when used.
const LEFT_OUT: &str = "left_out";

/// The counters behind [`Store::version`]: settlements share one when their ids start alike,
/// which costs a reader only a view built again when nothing of its own changed.
pub const VERSION_SLOTS: usize = 1 << 16;

/// A [`Store`] in a sled database directory.
#[derive(Debug, Clone)]
pub struct SledStore {
    path: PathBuf,
    db: sled::Db,
    /// [`VERSION_SLOTS`] write counters, shared by every clone.
    versions: Arc<[AtomicU64]>,
    /// Settlements written, shared by every clone ([`Store::settlements_version`]).
    settlements_written: Arc<AtomicU64>,
    settlements: sled::Tree,
    by_maturity: sled::Tree,
    /// Trades archived before `trade_refs`; read only.
    trades: sled::Tree,
    trade_refs: sled::Tree,
    trade_blobs: sled::Tree,
    observations: sled::Tree,
    proposals: sled::Tree,
    votes: sled::Tree,
    certificates: sled::Tree,
    signed: sled::Tree,
    equivocations: sled::Tree,
    finals: sled::Tree,
    report_signatures: sled::Tree,
    publications: sled::Tree,
    disputes: sled::Tree,
    review_votes: sled::Tree,
    review_certificates: sled::Tree,
    report_certificates: sled::Tree,
    rulings: sled::Tree,
    late_relays: sled::Tree,
}

impl SledStore {
    /// Opens (or creates) the store in `path`, checking its schema version.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(path)
            .map_err(|source| StoreError::Io { path: path.display().to_string(), source })?;
        let db = open_db(path, LOCK_WAIT)?;
        let tree = |name: &str| db.open_tree(name).map_err(backend);
        let store = SledStore {
            path: path.to_owned(),
            versions: (0..VERSION_SLOTS).map(|_| AtomicU64::new(0)).collect(),
            settlements_written: Arc::default(),
            settlements: tree("settlements")?,
            by_maturity: tree("settlements_by_maturity")?,
            trades: tree("trades")?,
            trade_refs: tree("trade_refs")?,
            trade_blobs: tree("trade_blobs")?,
            observations: tree("observations")?,
            proposals: tree("proposals")?,
            votes: tree("votes")?,
            certificates: tree("certificates")?,
            signed: tree("signed")?,
            equivocations: tree("equivocations")?,
            finals: tree("finals")?,
            report_signatures: tree("report_signatures")?,
            publications: tree("publications")?,
            disputes: tree("disputes")?,
            review_votes: tree("review_votes")?,
            review_certificates: tree("review_certificates")?,
            report_certificates: tree("report_certificates")?,
            rulings: tree("rulings")?,
            late_relays: tree("late_relays")?,
            db,
        };
        store.check_schema()?;
        store.index_settlements()?;
        Ok(store)
    }

    fn version_slot(&self, id: &SettlementId) -> &AtomicU64 {
        &self.versions[usize::from(u16::from_be_bytes([id[0], id[1]])) % VERSION_SLOTS]
    }

    /// Moves `id`'s version: called after each write for it, so a reader that saw the old
    /// version before reading builds again.
    fn changed(&self, id: &SettlementId) {
        self.version_slot(id).fetch_add(1, Ordering::Release);
    }

    /// Flushes and says how many bytes were not yet on disk (tests: whether a path flushed).
    #[cfg(test)]
    pub(crate) fn unflushed_bytes(&self) -> usize {
        self.db.flush().expect("flush")
    }

    /// Rebuilds `settlements_by_maturity` from `settlements` when they differ in size: a store
    /// written before the index existed, or a crash between the two writes of a settlement.
    fn index_settlements(&self) -> Result<(), StoreError> {
        if self.by_maturity.len() == self.settlements.len() {
            return Ok(());
        }
        self.by_maturity.clear().map_err(backend)?;
        for entry in self.settlements.iter() {
            let (key, bytes) = entry.map_err(backend)?;
            let spec: SettlementSpec = decode(&key, &bytes)?;
            self.by_maturity.insert(maturity_key(spec.maturity, &spec.id()), bytes).map_err(backend)?;
        }
        self.by_maturity.flush().map_err(backend)?;
        Ok(())
    }

    fn check_schema(&self) -> Result<(), StoreError> {
        let meta = self.db.open_tree("meta").map_err(backend)?;
        let current = SCHEMA_VERSION.to_le_bytes();
        match meta.compare_and_swap(SCHEMA_KEY, None as Option<&[u8]>, Some(&current[..])).map_err(backend)? {
            Ok(()) => {
                meta.flush().map_err(backend)?;
                Ok(())
            }
            Err(cas) => {
                let found = cas
                    .current
                    .as_deref()
                    .and_then(|b| <[u8; 4]>::try_from(b).ok())
                    .map(u32::from_le_bytes)
                    .unwrap_or(0);
                if found == SCHEMA_VERSION {
                    Ok(())
                } else {
                    Err(StoreError::Schema {
                        path: self.path.display().to_string(),
                        found,
                        expected: SCHEMA_VERSION,
                    })
                }
            }
        }
    }
}

/// How long [`SledStore::open`] waits for the store's lock: a process that held it and has just
/// exited, or a store this process has just dropped (sled releases its lock from a background
/// thread, after `drop` returns), lets go within milliseconds; a live node never does.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// sled's page cache. sled's default, 1 GiB, lets a node's memory grow with everything it ever
/// stored. A settlement's records are written once and read back rarely (a restart, catch-up,
/// the API's first read of it; the API keeps its own views), so the cache holds the pages being
/// written and the index: 4 MiB. In an expiry burst of 10,000 a node's live heap peaked 20 MiB
/// lower than with 16 MiB, and a restart on the 10,000 was as fast (BENCHMARKS.md, session 20);
/// 64 MiB was the largest single item of a node's heap in session 14's.
const CACHE_BYTES: u64 = 4 * 1024 * 1024;

/// Opens the sled database at `path`, retrying while its lock is held, for up to `wait`.
fn open_db(path: &Path, wait: Duration) -> Result<sled::Db, StoreError> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        match sled::Config::new().path(path).cache_capacity(CACHE_BYTES).open() {
            Err(e) if is_lock_held(&e) => {
                if started.elapsed() >= wait {
                    let waited_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                    return Err(StoreError::Locked { path: path.display().to_string(), waited_ms });
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            other => return other.map_err(backend),
        }
    }
}

/// Whether sled refused to open because another holder has the database's file lock (sled
/// 0.34 reports it as an `Other` I/O error with this text).
fn is_lock_held(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.to_string().starts_with("could not acquire lock on"))
}

fn backend(e: sled::Error) -> StoreError {
    match e {
        sled::Error::Io(source) => StoreError::Io { path: "sled".into(), source },
        other => StoreError::Backend(other.to_string()),
    }
}

fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
    from_bcs(bytes).map_err(|e| StoreError::Corrupt { key: hex::encode(key), reason: e.to_string() })
}

fn venue_key(id: &SettlementId, venue: Venue) -> Vec<u8> {
    let mut key = id.to_vec();
    key.push(venue as u8);
    key
}

/// `settlement ‖ decision ‖ round ‖ step ‖ signer`: one record per member and slot.
fn round_key(
    id: &SettlementId,
    decision: &DecisionId,
    round: u32,
    step: Option<VoteStep>,
    signer: &B256,
) -> Vec<u8> {
    let mut key = id.to_vec();
    push_decision(&mut key, decision);
    key.extend_from_slice(&round.to_be_bytes());
    key.extend(step.map(|s| s as u8));
    key.extend_from_slice(signer.as_slice());
    key
}

/// A decision in a key: `0` for the first value, `1 ‖ dispute id` for a review, `2` for the
/// final report.
fn push_decision(key: &mut Vec<u8>, decision: &DecisionId) {
    match decision {
        DecisionId::Value => key.push(0),
        DecisionId::Review { dispute_id } => {
            key.push(1);
            key.extend_from_slice(dispute_id.as_slice());
        }
        DecisionId::Report => key.push(2),
    }
}

/// Every record of a tree under one settlement id, in key order.
fn scan<T: DeserializeOwned>(tree: &sled::Tree, id: &SettlementId) -> Result<Vec<T>, StoreError> {
    tree.scan_prefix(id.as_slice())
        .map(|entry| {
            let (key, bytes) = entry.map_err(backend)?;
            decode(&key, &bytes)
        })
        .collect()
}

/// One record by key.
fn get<T: DeserializeOwned>(tree: &sled::Tree, key: &[u8]) -> Result<Option<T>, StoreError> {
    match tree.get(key).map_err(backend)? {
        Some(bytes) => decode(key, &bytes).map(Some),
        None => Ok(None),
    }
}

/// Writes `value` under `key` unless the key holds something already, which is kept.
fn insert_first(tree: &sled::Tree, key: Vec<u8>, value: Vec<u8>) -> Result<(), StoreError> {
    insert_new(tree, key, value).map(drop)
}

/// As [`insert_first`], and says whether `value` was written.
fn insert_new(tree: &sled::Tree, key: Vec<u8>, value: Vec<u8>) -> Result<bool, StoreError> {
    Ok(tree.compare_and_swap(key, None as Option<&[u8]>, Some(value)).map_err(backend)?.is_ok())
}

/// Whether any key of `tree` starts with `prefix`.
fn has_prefix(tree: &sled::Tree, prefix: &[u8]) -> Result<bool, StoreError> {
    Ok(tree.scan_prefix(prefix).next().transpose().map_err(backend)?.is_some())
}

/// `maturity (big-endian) ‖ id`: the key order is the list order.
fn maturity_key(maturity: u64, id: &SettlementId) -> Vec<u8> {
    [&maturity.to_be_bytes()[..], id.as_slice()].concat()
}

/// `settlement ‖ dispute id`.
fn dispute_key(settlement: &SettlementId, dispute_id: &B256) -> Vec<u8> {
    [settlement.as_slice(), dispute_id.as_slice()].concat()
}

fn slot_key(slot: &SigningSlot) -> Vec<u8> {
    let mut key = slot.settlement.to_vec();
    key.push(slot.kind as u8);
    push_decision(&mut key, &slot.decision);
    key.extend_from_slice(&slot.round.to_be_bytes());
    key
}

impl Store for SledStore {
    fn put_settlement(&self, spec: &SettlementSpec) -> Result<(), StoreError> {
        let (id, bytes) = (spec.id(), to_bcs(spec));
        // The index first: a crash between the two leaves sizes that differ, and the next open
        // rebuilds the index.
        self.by_maturity.insert(maturity_key(spec.maturity, &id), bytes.clone()).map_err(backend)?;
        self.settlements.insert(id.as_slice(), bytes).map_err(backend)?;
        self.changed(&id);
        self.settlements_written.fetch_add(1, Ordering::Release);
        Ok(())
    }

    fn settlement(&self, id: &SettlementId) -> Result<Option<SettlementSpec>, StoreError> {
        get(&self.settlements, id.as_slice())
    }

    fn settlements(&self) -> Result<Vec<SettlementSpec>, StoreError> {
        self.settlements
            .iter()
            .map(|entry| {
                let (key, bytes) = entry.map_err(backend)?;
                decode(&key, &bytes)
            })
            .collect()
    }

    fn settlements_by_maturity(
        &self,
        after: Option<(u64, SettlementId)>,
        visit: &mut dyn FnMut(SettlementSpec) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        let entries = match after {
            Some((maturity, id)) => self
                .by_maturity
                .range((std::ops::Bound::Excluded(maturity_key(maturity, &id)), std::ops::Bound::Unbounded)),
            None => self.by_maturity.iter(),
        };
        for entry in entries {
            let (key, bytes) = entry.map_err(backend)?;
            if !visit(decode(&key, &bytes)?)? {
                break;
            }
        }
        Ok(())
    }

    /// The blob first, then the reference: a crash between them leaves an unreferenced blob,
    /// never a reference to nothing.
    fn archive_trades(&self, trades: &[Trade]) -> Result<B256, StoreError> {
        let bytes = to_bcs(trades);
        let hash = alloy_primitives::keccak256(&bytes);
        if !self.trade_blobs.contains_key(hash).map_err(backend)? {
            self.trade_blobs.insert(hash, bytes).map_err(backend)?;
        }
        Ok(hash)
    }

    fn link_trades(&self, id: &SettlementId, venue: Venue, archived: B256) -> Result<(), StoreError> {
        self.trade_refs.insert(venue_key(id, venue), archived.as_slice()).map_err(backend)?;
        self.changed(id);
        Ok(())
    }

    fn trades(&self, id: &SettlementId, venue: Venue) -> Result<Option<Vec<Trade>>, StoreError> {
        let key = venue_key(id, venue);
        match self.trade_refs.get(&key).map_err(backend)? {
            Some(hash) => match get(&self.trade_blobs, &hash)? {
                Some(trades) => Ok(Some(trades)),
                None => Err(StoreError::Corrupt {
                    key: format!("trade_refs {id} {venue:?}"),
                    reason: format!("no archived trades under {}", B256::from_slice(&hash)),
                }),
            },
            None => get(&self.trades, &key),
        }
    }

    fn put_observation(&self, observation: &Signed<Observation>) -> Result<(), StoreError> {
        let mut key = observation.payload.settlement_id.to_vec();
        key.extend_from_slice(observation.signer.0.as_slice());
        insert_first(&self.observations, key, to_bcs(observation))?;
        self.changed(&observation.payload.settlement_id);
        Ok(())
    }

    fn observations(&self, id: &SettlementId) -> Result<Vec<Signed<Observation>>, StoreError> {
        scan(&self.observations, id)
    }

    fn put_proposal(&self, proposal: &Signed<RoundProposal>) -> Result<(), StoreError> {
        let rp = &proposal.payload;
        let id = &rp.proposal.payload.settlement_id;
        let key = round_key(id, &rp.decision(), rp.round, None, &proposal.signer.0);
        insert_first(&self.proposals, key, to_bcs(proposal))?;
        self.changed(id);
        Ok(())
    }

    fn proposals(&self, id: &SettlementId) -> Result<Vec<Signed<RoundProposal>>, StoreError> {
        scan(&self.proposals, id)
    }

    fn put_vote(&self, vote: &Signed<Vote>) -> Result<(), StoreError> {
        let v = &vote.payload;
        let key = round_key(&v.settlement_id, &v.decision, v.round, Some(v.step), &vote.signer.0);
        insert_first(&self.votes, key, to_bcs(vote))?;
        self.changed(&v.settlement_id);
        Ok(())
    }

    fn votes(&self, id: &SettlementId) -> Result<Vec<Signed<Vote>>, StoreError> {
        scan(&self.votes, id)
    }

    fn put_certificate(&self, certificate: &Certificate) -> Result<(), StoreError> {
        let id = certificate.proposal.payload.settlement_id;
        self.certificates.insert(id.as_slice(), to_bcs(certificate)).map_err(backend)?;
        self.changed(&id);
        Ok(())
    }

    fn certificate(&self, id: &SettlementId) -> Result<Option<Certificate>, StoreError> {
        get(&self.certificates, id.as_slice())
    }

    fn put_final(&self, record: &FinalRecord) -> Result<(), StoreError> {
        self.finals.insert(record.report.settlement_id.as_slice(), to_bcs(record)).map_err(backend)?;
        self.changed(&record.report.settlement_id);
        Ok(())
    }

    fn final_record(&self, id: &SettlementId) -> Result<Option<FinalRecord>, StoreError> {
        get(&self.finals, id.as_slice())
    }

    fn put_report_signature(&self, signature: &Signed<ReportSignature>) -> Result<(), StoreError> {
        let mut key = signature.payload.report.settlement_id.to_vec();
        key.extend_from_slice(signature.signer.0.as_slice());
        insert_first(&self.report_signatures, key, to_bcs(signature))?;
        self.changed(&signature.payload.report.settlement_id);
        Ok(())
    }

    fn report_signatures(&self, id: &SettlementId) -> Result<Vec<Signed<ReportSignature>>, StoreError> {
        scan(&self.report_signatures, id)
    }

    fn put_publication(&self, id: &SettlementId, on_chain: Option<&OnChain>) -> Result<(), StoreError> {
        match on_chain {
            Some(state) => self.publications.insert(id.as_slice(), to_bcs(state)).map(drop),
            None => self.publications.remove(id.as_slice()).map(drop),
        }
        .map_err(backend)?;
        self.changed(id);
        Ok(())
    }

    fn publication(&self, id: &SettlementId) -> Result<Option<OnChain>, StoreError> {
        get(&self.publications, id.as_slice())
    }

    fn put_equivocation(&self, evidence: &Equivocation) -> Result<(), StoreError> {
        let decision = evidence.first.decision().unwrap_or(DecisionId::Value);
        let (round, step) = (evidence.round(), evidence.first.step());
        let mut key = round_key(evidence.settlement_id(), &decision, round, step, &evidence.signer().0);
        // The kind right after the settlement id.
        key.insert(32, evidence.kind() as u8);
        insert_first(&self.equivocations, key, to_bcs(evidence))?;
        self.changed(evidence.settlement_id());
        Ok(())
    }

    fn equivocations(&self, id: &SettlementId) -> Result<Vec<Equivocation>, StoreError> {
        scan(&self.equivocations, id)
    }

    fn record_signed(&self, slot: SigningSlot, hash: B256) -> Result<(), StoreError> {
        let key = slot_key(&slot);
        let cas = self
            .signed
            .compare_and_swap(&key, None as Option<&[u8]>, Some(hash.as_slice()))
            .map_err(backend)?;
        match cas {
            Ok(()) => {
                self.changed(&slot.settlement);
                Ok(())
            }
            Err(existing) => {
                let existing = existing.current.map(|b| B256::from_slice(&b)).unwrap_or_default();
                if existing == hash {
                    Ok(())
                } else {
                    Err(StoreError::Equivocation {
                        settlement: slot.settlement,
                        kind: slot.kind,
                        round: slot.round,
                        existing,
                    })
                }
            }
        }
    }

    fn signed(&self, slot: SigningSlot) -> Result<Option<B256>, StoreError> {
        let key = slot_key(&slot);
        match self.signed.get(&key).map_err(backend)? {
            Some(bytes) if bytes.len() == 32 => Ok(Some(B256::from_slice(&bytes))),
            Some(bytes) => Err(StoreError::Corrupt {
                key: hex::encode(&key),
                reason: format!("signed-hash record has {} bytes, expected 32", bytes.len()),
            }),
            None => Ok(None),
        }
    }

    fn put_dispute(&self, dispute: &Signed<RelayedDispute>) -> Result<bool, StoreError> {
        let d = &dispute.payload.dispute.dispute;
        let mut key = dispute_key(&d.settlement_id, &d.dispute_id);
        key.extend_from_slice(dispute.signer.0.as_slice());
        let new = insert_new(&self.disputes, key, to_bcs(dispute))?;
        self.changed(&d.settlement_id);
        Ok(new)
    }

    fn has_dispute(&self, id: &SettlementId, dispute_id: &B256) -> Result<bool, StoreError> {
        has_prefix(&self.disputes, &dispute_key(id, dispute_id))
    }

    fn disputes(&self, id: &SettlementId) -> Result<Vec<Signed<RelayedDispute>>, StoreError> {
        scan(&self.disputes, id)
    }

    fn put_review_vote(&self, vote: &Signed<ReviewVote>) -> Result<bool, StoreError> {
        let v = &vote.payload;
        let mut key = dispute_key(&v.settlement_id, &v.dispute_id);
        key.extend_from_slice(vote.signer.0.as_slice());
        // By hash too: an equivocating reviewer's second vote is kept, since a review
        // certificate may list it.
        key.extend_from_slice(vote.hash().as_slice());
        let new = insert_new(&self.review_votes, key, to_bcs(vote))?;
        self.changed(&v.settlement_id);
        Ok(new)
    }

    fn review_votes(&self, id: &SettlementId) -> Result<Vec<Signed<ReviewVote>>, StoreError> {
        scan(&self.review_votes, id)
    }

    fn put_review_certificate(&self, dispute_id: &B256, certificate: &Certificate) -> Result<(), StoreError> {
        let id = &certificate.proposal.payload.settlement_id;
        insert_first(
            &self.review_certificates,
            dispute_key(id, dispute_id),
            to_bcs(&(*dispute_id, certificate)),
        )?;
        self.changed(id);
        Ok(())
    }

    fn review_certificates(&self, id: &SettlementId) -> Result<Vec<(B256, Certificate)>, StoreError> {
        scan(&self.review_certificates, id)
    }

    fn put_report_certificate(&self, certificate: &Certificate) -> Result<(), StoreError> {
        let id = certificate.proposal.payload.settlement_id;
        insert_first(&self.report_certificates, id.to_vec(), to_bcs(certificate))?;
        self.changed(&id);
        Ok(())
    }

    fn report_certificate(&self, id: &SettlementId) -> Result<Option<Certificate>, StoreError> {
        get(&self.report_certificates, id.as_slice())
    }

    fn put_ruling(&self, ruling: &Signed<RelayedRuling>) -> Result<bool, StoreError> {
        let r = &ruling.payload.ruling.ruling;
        let mut key = dispute_key(&r.settlement_id, &r.dispute_id);
        key.extend_from_slice(ruling.signer.0.as_slice());
        let new = insert_new(&self.rulings, key, to_bcs(ruling))?;
        self.changed(&r.settlement_id);
        Ok(new)
    }

    fn has_ruling(&self, id: &SettlementId, dispute_id: &B256) -> Result<bool, StoreError> {
        has_prefix(&self.rulings, &dispute_key(id, dispute_id))
    }

    fn rulings(&self, id: &SettlementId) -> Result<Vec<Signed<RelayedRuling>>, StoreError> {
        scan(&self.rulings, id)
    }

    fn put_late_relay(&self, id: &SettlementId, hash: &B256) -> Result<(), StoreError> {
        insert_first(&self.late_relays, dispute_key(id, hash), Vec::new())?;
        self.changed(id);
        Ok(())
    }

    fn late_relays(&self, id: &SettlementId) -> Result<BTreeSet<B256>, StoreError> {
        self.late_relays
            .scan_prefix(id.as_slice())
            .map(|entry| {
                let (key, _) = entry.map_err(backend)?;
                Ok(B256::from_slice(&key[id.len()..]))
            })
            .collect()
    }

    fn put_left_out(&self, id: &SettlementId, left_out: &[crate::venues::LeftOut]) -> Result<(), StoreError> {
        let tree = self.db.open_tree(LEFT_OUT).map_err(backend)?;
        tree.insert(id.as_slice(), to_bcs(left_out)).map_err(backend)?;
        self.changed(id);
        Ok(())
    }

    fn left_out(&self, id: &SettlementId) -> Result<Vec<crate::venues::LeftOut>, StoreError> {
        let tree = self.db.open_tree(LEFT_OUT).map_err(backend)?;
        Ok(get(&tree, id.as_slice())?.unwrap_or_default())
    }

    fn settlements_version(&self) -> u64 {
        self.settlements_written.load(Ordering::Acquire)
    }

    fn version(&self, id: &SettlementId) -> u64 {
        self.version_slot(id).load(Ordering::Acquire)
    }

    fn durable(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(backend)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sled_passes_the_store_suite() {
        crate::store::suite::run(|path| SledStore::open(path).unwrap());
    }

    /// The settlements of one window archive the same trades once; trades a store wrote
    /// before the blobs (under `trades`) still read back.
    #[test]
    fn trades_shared_by_settlements_are_archived_once_and_old_archives_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let trade = |id: u32| fixd_proto::types::venue::Trade {
            venue: Venue::Kraken,
            id: id.to_string(),
            time_ms: 1_749_743_000_000 + u64::from(id),
            price: fixd_proto::value::Wad::from_raw(2_600),
            size: fixd_proto::value::Wad::from_raw(1),
        };
        let window = vec![trade(1), trade(2), trade(3)];
        let ids: Vec<SettlementId> = (1..=50u8).map(SettlementId::repeat_byte).collect();
        for id in &ids {
            store.put_trades(id, Venue::Kraken, &window).unwrap();
        }
        store.put_trades(&ids[0], Venue::Gemini, &[trade(4)]).unwrap();
        assert_eq!(store.trade_blobs.len(), 2, "one blob per distinct list of trades");
        assert_eq!(store.trade_refs.len(), 51);
        for id in &ids {
            assert_eq!(store.trades(id, Venue::Kraken).unwrap(), Some(window.clone()));
        }
        assert_eq!(store.trades(&ids[0], Venue::Gemini).unwrap(), Some(vec![trade(4)]));
        // Archived the old way.
        let old = SettlementId::repeat_byte(0xee);
        store.trades.insert(venue_key(&old, Venue::Kraken), to_bcs(&window[..1])).unwrap();
        assert_eq!(store.trades(&old, Venue::Kraken).unwrap(), Some(window[..1].to_vec()));
        assert_eq!(store.trades(&old, Venue::Gemini).unwrap(), None);
    }

    /// A store whose maturity index misses settlements (written before the index, or a crash
    /// between the two writes) gets it rebuilt at open.
    #[test]
    fn the_maturity_index_is_rebuilt_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let spec = |maturity| SettlementSpec {
            index: fixd_proto::types::settlement::Index::EthUsd,
            maturity,
            params: Default::default(),
        };
        {
            let store = SledStore::open(dir.path()).unwrap();
            store.put_settlement(&spec(2_000_000_000)).unwrap();
            store.put_settlement(&spec(1_000_000_000)).unwrap();
            store.by_maturity.clear().unwrap();
            store.durable().unwrap();
        }
        let store = SledStore::open(dir.path()).unwrap();
        let mut seen = Vec::new();
        store
            .settlements_by_maturity(None, &mut |s| {
                seen.push(s.maturity);
                Ok(true)
            })
            .unwrap();
        assert_eq!(seen, vec![1_000_000_000, 2_000_000_000]);
    }

    /// A store held by a live owner is refused with the fix after the wait; once the owner
    /// drops it (sled lets go of its lock from a background thread, after `drop` returns), the
    /// next open waits for the lock rather than failing.
    #[test]
    fn a_held_store_is_refused_with_the_fix_and_a_released_one_is_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let owner = SledStore::open(dir.path()).unwrap();
        let refused = open_db(dir.path(), Duration::from_millis(50)).unwrap_err();
        assert!(matches!(refused, StoreError::Locked { .. }), "{refused}");
        assert!(refused.to_string().contains("stop the other fixd"), "{refused}");
        drop(owner);
        for _ in 0..20 {
            let reopened = SledStore::open(dir.path()).expect("a released store opens at once after drop");
            drop(reopened);
        }
    }

    #[test]
    fn a_newer_schema_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open(dir.path()).unwrap();
            let meta = store.db.open_tree("meta").unwrap();
            meta.insert(SCHEMA_KEY, &(SCHEMA_VERSION + 1).to_le_bytes()).unwrap();
            store.durable().unwrap();
        }
        let err = SledStore::open(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(&format!("schema version {}", SCHEMA_VERSION + 1))
                && err.contains("fresh --data-dir"),
            "{err}"
        );
    }
}
