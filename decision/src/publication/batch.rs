//! Batched publication (DESIGN 5.5): the reports a member is to publish in the same turn go
//! on-chain in one `publishBatch`, under one set of committee signatures over the batch.
//!
//! ```text
//!  Action::Publish (each settlement's turn) ─▶ ready ─ flush (gathered) ──┬─ one report ─▶ Publish
//!                                                                          └─ 2 or more ─▶ Sign(batch)
//!  gossip BatchSignature ─▶ on_signature ─┬─ ours, q signatures ─▶ PublishBatch
//!                                         └─ another member's ─▶ Sign(batch) if every report is ours
//!  a batch short of q after `wait_secs` ─▶ Publish, report by report
//! ```
//!
//! # Rules
//! - **What goes in.** Only reports without bond outcomes (the contract's batch carries none),
//!   at most `max_reports` of them (the gas cap), in ascending order of settlement: one set of
//!   reports makes one batch and one digest.
//! - **Gathering.** Reports become ready one by one, as their signatures arrive and their turns
//!   begin. The ready ones go out together once the first has waited `gather_secs` (a few
//!   seconds of a turn that lasts minutes), or at once when a batch is full.
//! - **Signing.** A member signs a batch only if every report in it is the final report it
//!   signed itself: a batch adds no decision, so signing it cannot contradict anything the member
//!   signed, and it is not stored. Another member's batch that is not yet signable (this
//!   member's own reports are not all final yet) waits until `wait_secs` have passed. A
//!   member signs each batch once, and each settlement in at most [`MAX_BATCHES_PER_SETTLEMENT`]
//!   batches, so a faulty member proposing batch after batch costs each honest member a bounded
//!   number of signatures.
//! - **Counting.** A batch signature counts when its signer is the author's address and it
//!   recovers from the batch's digest.
//! - **Falling back.** A batch of this member's that has not gathered q signatures within
//!   `wait_secs` is published report by report, with the report signatures the settlements
//!   gathered. Nothing waits on a batch but the batch: the next turn's publisher publishes
//!   what this member did not.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use alloy_primitives::{Address, B256};
use fixd_proto::eip712::{EthSignature, TypedData, recover_digest};
use fixd_proto::types::genesis::Committee;
use fixd_proto::types::report::{BatchSignature, FinalReport, FinalReportBatch, MAX_BATCH_REPORTS};
use fixd_proto::types::settlement::SettlementId;

/// How many distinct batches a member signs that hold one settlement: a turn's publisher makes
/// one, and a few more leave room for later turns.
pub const MAX_BATCHES_PER_SETTLEMENT: u8 = 4;

/// Another member's batches not yet signable, held at most this many at once per author: a
/// faulty member filling its share cannot crowd out an honest publisher's batches.
pub const MAX_WAITING_BATCHES: usize = 64;

/// The signatures a report gathered, by signer.
pub type Signatures = Vec<(Address, EthSignature)>;

/// What the shell must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchAction {
    /// Sign this batch with the member's secp256k1 key, gossip the [`BatchSignature`] and feed
    /// it back to [`Batcher::on_signature`].
    Sign(FinalReportBatch),
    /// Publish this report alone.
    Publish { report: FinalReport, signatures: Signatures },
    /// Publish this batch with at least q signatures.
    PublishBatch { batch: FinalReportBatch, signatures: Signatures },
    /// A batch signature that does not count, and why.
    Ignored { author: usize, reason: String },
}

/// A batch of this member's, gathering signatures.
#[derive(Debug)]
struct Gathering {
    batch: FinalReportBatch,
    digest: B256,
    since: u64,
    signatures: BTreeMap<usize, EthSignature>,
    /// Each report's own signatures, to publish it alone if the batch falls short.
    singles: Vec<Signatures>,
}

/// Another member's batch, waiting until this member's reports are all final.
#[derive(Debug)]
struct Waiting {
    author: usize,
    batch: FinalReportBatch,
    digest: B256,
    since: u64,
}

/// The batches of one member. See the module docs.
#[derive(Debug)]
pub struct Batcher {
    committee: Committee,
    domain: alloy_sol_types::Eip712Domain,
    max_reports: usize,
    gather_secs: u64,
    wait_secs: u64,
    /// Reports to publish, with their signatures, and since when the first of them waits.
    ready: BTreeMap<SettlementId, (FinalReport, Signatures)>,
    ready_since: Option<u64>,
    gathering: Vec<Gathering>,
    waiting: Vec<Waiting>,
    /// Digests of the batches this member signed.
    signed: BTreeSet<B256>,
    batches_per_settlement: HashMap<SettlementId, u8>,
}

impl Batcher {
    /// A batcher for a member of `committee`, signing for `domain`; batches of at most
    /// `max_reports` (fewer than 2: no batches) of the reports ready within `gather_secs`, each
    /// waiting `wait_secs` for its signatures.
    pub fn new(
        committee: Committee,
        domain: alloy_sol_types::Eip712Domain,
        max_reports: usize,
        gather_secs: u64,
        wait_secs: u64,
    ) -> Self {
        Batcher {
            committee,
            domain,
            max_reports: max_reports.min(MAX_BATCH_REPORTS),
            gather_secs,
            wait_secs: wait_secs.max(1),
            ready: BTreeMap::new(),
            ready_since: None,
            gathering: Vec::new(),
            waiting: Vec::new(),
            signed: BTreeSet::new(),
            batches_per_settlement: HashMap::new(),
        }
    }

    /// A settlement's publication asks to publish `report` in this member's turn. A report with
    /// bond outcomes, or one already in a batch under way, is published alone at once.
    pub fn ready(&mut self, now: u64, report: FinalReport, signatures: Signatures) -> Option<BatchAction> {
        let in_batch = self.gathering.iter().any(|g| g.batch.reports.iter().any(|r| r == &report));
        if in_batch {
            return None;
        }
        if !report.outcomes.is_empty() || self.max_reports < 2 {
            return Some(BatchAction::Publish { report, signatures });
        }
        self.ready.insert(report.settlement_id, (report, signatures));
        self.ready_since.get_or_insert(now);
        None
    }

    /// Once a tick: the ready reports go out once gathered (alone, or in batches to sign),
    /// batches short of signatures after `wait_secs` are published report by report, and other
    /// members' batches waiting on this member's reports are tried again.
    pub fn flush(
        &mut self,
        now: u64,
        own_report: impl Fn(&SettlementId) -> Option<FinalReport>,
    ) -> Vec<BatchAction> {
        let mut out = Vec::new();
        let wait = self.wait_secs;
        let (expired, gathering): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.gathering).into_iter().partition(|g| now >= g.since + wait);
        self.gathering = gathering;
        for batch in expired {
            for (report, signatures) in batch.batch.reports.into_iter().zip(batch.singles) {
                out.push(BatchAction::Publish { report, signatures });
            }
        }
        let gathered = self.ready_since.is_some_and(|since| now >= since + self.gather_secs)
            || self.ready.len() >= self.max_reports;
        let ready: Vec<_> = if gathered {
            self.ready_since = None;
            std::mem::take(&mut self.ready).into_values().collect()
        } else {
            Vec::new()
        };
        if let [(report, signatures)] = ready.as_slice() {
            out.push(BatchAction::Publish { report: report.clone(), signatures: signatures.clone() });
        } else {
            for chunk in ready.chunks(self.max_reports.max(1)) {
                if let [(report, signatures)] = chunk {
                    out.push(BatchAction::Publish { report: report.clone(), signatures: signatures.clone() });
                    continue;
                }
                let batch = FinalReportBatch { reports: chunk.iter().map(|(r, _)| r.clone()).collect() };
                let digest = batch.eip712_digest(&self.domain);
                let singles = chunk.iter().map(|(_, s)| s.clone()).collect();
                self.gathering.push(Gathering {
                    batch,
                    digest,
                    since: now,
                    signatures: BTreeMap::new(),
                    singles,
                });
            }
        }
        // Our own batches are signed like anyone's: when every report in it is ours.
        let unsigned: Vec<_> = self
            .gathering
            .iter()
            .filter(|g| !self.signed.contains(&g.digest))
            .map(|g| (g.batch.clone(), g.digest))
            .collect();
        for (batch, digest) in unsigned {
            out.extend(self.sign_if_ours(batch, digest, &own_report));
        }
        self.waiting.retain(|w| now < w.since + wait);
        for waiting in std::mem::take(&mut self.waiting) {
            if let Some(action) = self.sign_if_ours(waiting.batch.clone(), waiting.digest, &own_report) {
                out.push(action);
            } else {
                self.waiting.push(waiting);
            }
        }
        out
    }

    /// A batch signature by member `author`, its ed25519 wrapper verified and its batch of the
    /// gossiped form ([`FinalReportBatch::check`]).
    pub fn on_signature(
        &mut self,
        now: u64,
        author: usize,
        signature: BatchSignature,
        own_report: impl Fn(&SettlementId) -> Option<FinalReport>,
    ) -> Vec<BatchAction> {
        let mut out = Vec::new();
        let expected = self.committee.members().get(author).map(|m| m.eth_address);
        if expected != Some(signature.signer) {
            out.push(BatchAction::Ignored {
                author,
                reason: format!("claims signer {}, not the author's address {expected:?}", signature.signer),
            });
            return out;
        }
        let digest = signature.batch.eip712_digest(&self.domain);
        match recover_digest(&digest, &signature.signature) {
            Ok(signer) if signer == signature.signer => {}
            Ok(signer) => {
                out.push(BatchAction::Ignored {
                    author,
                    reason: format!("recovers to {signer}, not the claimed {}", signature.signer),
                });
                return out;
            }
            Err(e) => {
                out.push(BatchAction::Ignored { author, reason: format!("does not recover: {e}") });
                return out;
            }
        }
        if let Some(index) = self.gathering.iter().position(|g| g.digest == digest) {
            let gathering = &mut self.gathering[index];
            gathering.signatures.entry(author).or_insert(signature.signature);
            if gathering.signatures.len() >= self.committee.q() {
                let done = self.gathering.remove(index);
                let signatures = done
                    .signatures
                    .iter()
                    .map(|(member, signature)| (self.committee.members()[*member].eth_address, *signature))
                    .collect();
                out.push(BatchAction::PublishBatch { batch: done.batch, signatures });
            }
            return out;
        }
        if self.signed.contains(&digest) || self.waiting.iter().any(|w| w.digest == digest) {
            return out;
        }
        match self.sign_if_ours(signature.batch.clone(), digest, &own_report) {
            Some(action) => out.push(action),
            None if self.waiting.iter().filter(|w| w.author == author).count() < MAX_WAITING_BATCHES => {
                self.waiting.push(Waiting { author, batch: signature.batch, digest, since: now });
            }
            None => {}
        }
        out
    }

    /// [`BatchAction::Sign`] if every report of the batch is this member's signed final report
    /// and no settlement in it is in too many batches already.
    fn sign_if_ours(
        &mut self,
        batch: FinalReportBatch,
        digest: B256,
        own_report: &impl Fn(&SettlementId) -> Option<FinalReport>,
    ) -> Option<BatchAction> {
        let ours = batch.reports.iter().all(|r| own_report(&r.settlement_id).as_ref() == Some(r));
        let room = batch.reports.iter().all(|r| {
            self.batches_per_settlement.get(&r.settlement_id).copied().unwrap_or(0)
                < MAX_BATCHES_PER_SETTLEMENT
        });
        if !ours || !room || !self.signed.insert(digest) {
            return None;
        }
        for report in &batch.reports {
            *self.batches_per_settlement.entry(report.settlement_id).or_default() += 1;
        }
        Some(BatchAction::Sign(batch))
    }

    /// Forgets a published settlement's count of batches.
    pub fn forget(&mut self, id: &SettlementId) {
        self.batches_per_settlement.remove(id);
    }
}

#[cfg(test)]
mod tests {
    use alloy_signer_local::PrivateKeySigner;
    use fixd_proto::eip712;
    use fixd_proto::types::report::BondOutcome;
    use fixd_proto::value::Wad;

    use super::*;

    const NOW: u64 = 1_000_000;
    const GATHER: u64 = 2;
    const WAIT: u64 = 5;

    /// Four members with real secp256k1 keys, each with a batcher; every member's final
    /// reports are `reports` unless a test changes one's.
    struct Committee4 {
        keys: Vec<PrivateKeySigner>,
        batchers: Vec<Batcher>,
        finals: Vec<BTreeMap<SettlementId, FinalReport>>,
        domain: alloy_sol_types::Eip712Domain,
    }

    fn report(byte: u8) -> FinalReport {
        FinalReport {
            settlement_id: SettlementId::repeat_byte(byte),
            value: Wad::from_raw(2_000 + u128::from(byte)),
            round: 0,
            outcomes: vec![],
        }
    }

    fn committee(max_reports: usize, reports: &[FinalReport]) -> Committee4 {
        let super::super::tests::Fixture { keys, committee, .. } = super::super::tests::fixture();
        let domain = eip712::domain(31337, Address::repeat_byte(0xc0));
        let batchers = (0..4)
            .map(|_| Batcher::new(committee.clone(), domain.clone(), max_reports, GATHER, WAIT))
            .collect();
        let finals = (0..4).map(|_| reports.iter().map(|r| (r.settlement_id, r.clone())).collect()).collect();
        Committee4 { keys, batchers, finals, domain }
    }

    impl Committee4 {
        fn singles(&self, report: &FinalReport) -> Signatures {
            self.keys
                .iter()
                .take(3)
                .map(|k| (k.address(), eip712::sign_typed(k, &self.domain, report)))
                .collect()
        }

        fn signature(&self, member: usize, batch: &FinalReportBatch) -> BatchSignature {
            let key = &self.keys[member];
            BatchSignature {
                batch: batch.clone(),
                signer: key.address(),
                signature: eip712::sign_typed(key, &self.domain, batch),
            }
        }

        fn ready(&mut self, member: usize, report: &FinalReport) -> Option<BatchAction> {
            let singles = self.singles(report);
            self.batchers[member].ready(NOW, report.clone(), singles)
        }

        fn flush(&mut self, member: usize, now: u64) -> Vec<BatchAction> {
            let finals = self.finals[member].clone();
            self.batchers[member].flush(now, |id| finals.get(id).cloned())
        }

        fn deliver(&mut self, member: usize, author: usize, signature: BatchSignature) -> Vec<BatchAction> {
            let finals = self.finals[member].clone();
            self.batchers[member].on_signature(NOW, author, signature, |id| finals.get(id).cloned())
        }

        /// Gossips each `Sign` of `author` to every member (itself included) and carries out
        /// what follows, until nothing is left; what is published comes back.
        fn run(&mut self, author: usize, actions: Vec<BatchAction>) -> Vec<BatchAction> {
            let mut queue: Vec<(usize, BatchAction)> = actions.into_iter().map(|a| (author, a)).collect();
            let mut published = Vec::new();
            while let Some((from, action)) = queue.pop() {
                match action {
                    BatchAction::Sign(batch) => {
                        let signature = self.signature(from, &batch);
                        for member in 0..4 {
                            let out = self.deliver(member, from, signature.clone());
                            queue.extend(out.into_iter().map(|a| (member, a)));
                        }
                    }
                    other => published.push(other),
                }
            }
            published
        }
    }

    fn ids(batch: &FinalReportBatch) -> Vec<u8> {
        batch.reports.iter().map(|r| r.settlement_id[0]).collect()
    }

    #[test]
    fn the_reports_of_a_turn_go_out_in_one_batch_once_q_members_sign_it() {
        let reports: Vec<_> = [3, 1, 2].map(report).to_vec();
        let mut c = committee(100, &reports);
        for r in &reports {
            assert_eq!(c.ready(0, r), None);
        }
        assert_eq!(c.flush(0, NOW + GATHER - 1), vec![], "gathering");
        let out = c.flush(0, NOW + GATHER);
        assert!(matches!(out.as_slice(), [BatchAction::Sign(b)] if ids(b) == [1, 2, 3]), "{out:?}");
        let published = c.run(0, out);
        let [BatchAction::PublishBatch { batch, signatures }] = published.as_slice() else {
            panic!("{published:?}")
        };
        assert_eq!(ids(batch), [1, 2, 3], "ascending, one batch");
        assert!(signatures.len() >= 3, "q = 3 of 4");
        let digest = batch.eip712_digest(&c.domain);
        for (signer, signature) in signatures {
            assert_eq!(recover_digest(&digest, signature).unwrap(), *signer);
        }
        // The same reports asked for again in a later turn: nothing is batched twice.
        assert_eq!(c.flush(0, NOW + GATHER + 1), vec![]);
    }

    #[test]
    fn one_report_and_reports_with_outcomes_are_published_alone() {
        let mut c = committee(100, &[report(1)]);
        let mut disputed = report(2);
        disputed.outcomes.push(BondOutcome::default());
        let alone = c.batchers[0].ready(NOW, disputed.clone(), vec![]);
        assert_eq!(alone, Some(BatchAction::Publish { report: disputed, signatures: vec![] }));
        assert_eq!(c.ready(0, &report(1)), None);
        let out = c.flush(0, NOW + GATHER);
        assert_eq!(out, vec![BatchAction::Publish { report: report(1), signatures: c.singles(&report(1)) }]);
        // With a gas cap under two reports, nothing is batched.
        let mut unbatched = committee(1, &[report(1)]);
        let out = unbatched.batchers[0].ready(NOW, report(1), vec![]);
        assert_eq!(out, Some(BatchAction::Publish { report: report(1), signatures: vec![] }));
    }

    #[test]
    fn the_gas_cap_splits_the_reports_into_batches() {
        let reports: Vec<_> = (1..=5).map(report).collect();
        let mut c = committee(2, &reports);
        for r in &reports {
            c.ready(0, r);
        }
        let out = c.flush(0, NOW);
        let mut shapes: Vec<_> = out
            .iter()
            .map(|a| match a {
                BatchAction::Sign(b) => ids(b),
                BatchAction::Publish { report, .. } => vec![report.settlement_id[0]],
                other => panic!("{other:?}"),
            })
            .collect();
        shapes.sort();
        assert_eq!(shapes, vec![vec![1, 2], vec![3, 4], vec![5]]);
        let published = c.run(0, out);
        assert_eq!(published.iter().filter(|a| matches!(a, BatchAction::PublishBatch { .. })).count(), 2);
    }

    #[test]
    fn a_member_never_signs_a_batch_with_a_report_it_did_not_sign_and_the_batch_falls_back() {
        let reports: Vec<_> = [1, 2].map(report).to_vec();
        let mut c = committee(100, &reports);
        // Members 1 and 2 hold another value for settlement 2 (a faulty proposer's batch, seen
        // from the honest side): they do not sign, so the batch never gathers q.
        for member in [1, 2] {
            let mut other = report(2);
            other.value = Wad::from_raw(1);
            c.finals[member].insert(other.settlement_id, other);
        }
        for r in &reports {
            c.ready(0, r);
        }
        let out = c.flush(0, NOW + GATHER);
        assert_eq!(c.run(0, out), vec![]);
        assert_eq!(c.flush(0, NOW + GATHER + WAIT - 1), vec![], "still waiting");
        let fallback = c.flush(0, NOW + GATHER + WAIT);
        let alone: Vec<_> = fallback
            .iter()
            .map(|a| match a {
                BatchAction::Publish { report, signatures } => (report.settlement_id[0], signatures.len()),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(alone, vec![(1, 3), (2, 3)], "each report alone, with its own signatures");
    }

    #[test]
    fn a_batch_a_member_cannot_sign_yet_is_signed_once_its_reports_are_final() {
        let reports: Vec<_> = [1, 2].map(report).to_vec();
        let mut c = committee(100, &reports);
        let late = c.finals[1].remove(&report(2).settlement_id).unwrap();
        let batch = FinalReportBatch { reports: reports.clone() };
        let proposal = c.signature(0, &batch);
        assert_eq!(c.deliver(1, 0, proposal.clone()), vec![], "not final for settlement 2 yet");
        assert_eq!(c.deliver(1, 0, proposal), vec![], "held once");
        c.finals[1].insert(late.settlement_id, late);
        assert_eq!(c.flush(1, NOW + 1), vec![BatchAction::Sign(batch)]);
        assert_eq!(c.flush(1, NOW + 2), vec![], "signed once");
    }

    #[test]
    fn a_faulty_member_filling_its_waiting_batches_leaves_room_for_an_honest_publishers() {
        let reports: Vec<_> = [1, 2].map(report).to_vec();
        let mut c = committee(100, &reports);
        // Member 3 proposes batches member 1 can never sign (a report that is never final).
        for k in 0..=MAX_WAITING_BATCHES {
            let never = FinalReport { value: Wad::from_raw(k as u128), ..report(9) };
            let batch = FinalReportBatch { reports: vec![report(1), never] };
            assert_eq!(c.deliver(1, 3, c.signature(3, &batch)), vec![]);
        }
        assert_eq!(c.batchers[1].waiting.len(), MAX_WAITING_BATCHES, "member 3's share, no more");
        // Member 0's batch, not yet signable either: it is held, and signed once final.
        let late = c.finals[1].remove(&report(2).settlement_id).unwrap();
        let batch = FinalReportBatch { reports: reports.clone() };
        assert_eq!(c.deliver(1, 0, c.signature(0, &batch)), vec![]);
        c.finals[1].insert(late.settlement_id, late);
        assert_eq!(c.flush(1, NOW + 1), vec![BatchAction::Sign(batch)]);
    }

    #[test]
    fn a_faulty_proposer_gets_each_settlement_signed_in_a_bounded_number_of_batches() {
        let reports: Vec<_> = (1..=8).map(report).collect();
        let mut c = committee(100, &reports);
        let mut signed = 0;
        // Member 3 proposes every batch of two or more of the eight reports that hold report 1.
        for mask in 0u32..256 {
            if mask & 1 == 0 || mask.count_ones() < 2 {
                continue;
            }
            let batch = FinalReportBatch {
                reports: reports
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask >> i & 1 == 1)
                    .map(|(_, r)| r.clone())
                    .collect(),
            };
            let out = c.deliver(0, 3, c.signature(3, &batch));
            signed += out.iter().filter(|a| matches!(a, BatchAction::Sign(_))).count();
        }
        assert_eq!(signed, MAX_BATCHES_PER_SETTLEMENT as usize);
    }

    #[test]
    fn a_signature_by_another_key_than_the_authors_does_not_count() {
        let reports: Vec<_> = [1, 2].map(report).to_vec();
        let mut c = committee(100, &reports);
        let batch = FinalReportBatch { reports };
        // Member 2's signature, relayed as member 1's.
        let out = c.deliver(0, 1, c.signature(2, &batch));
        assert!(
            matches!(out.as_slice(), [BatchAction::Ignored { author: 1, reason }] if reason.contains("claims signer"))
        );
        // Member 1's address, but signed by member 2's key.
        let mut forged = c.signature(2, &batch);
        forged.signer = c.keys[1].address();
        let out = c.deliver(0, 1, forged);
        assert!(
            matches!(out.as_slice(), [BatchAction::Ignored { author: 1, reason }] if reason.contains("recovers to"))
        );
    }
}
