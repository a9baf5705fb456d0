//! Where a Byzantine member's misconduct hooks into the node, for end-to-end tests that run
//! faulty members as real processes. Compiled only with the cargo feature `byzantine`, which
//! only the `fixd` package's end-to-end tests enable (through the test kit, as a dev-dependency
//! feature); the release build, the Docker image and `scripts/devnet.sh` never have it, and
//! there this module does not exist.
//!
//! The node defines the hook points; the strategies (equivocate, withhold, partial, wrong
//! value, flood, late disputes, foreign reports) live in the test kit (`fixd_testkit::byzantine`),
//! which depends on this crate, and `fixd run --byzantine <strategy>` hands one to
//! [`crate::node::start_byzantine`].
//!
//! ```text
//!   settlements: sign ─▶ Conduct::propose (a fresh value's proposal) ─▶ slot, store, flush
//!                gossip ─▶ Conduct::outgoing ─▶ [(delay, message)] ─▶ network (now or later)
//!   network:     catch-up request from member k ─▶ ShownCatchup: Conduct::shows(k, message)
//! ```
//!
//! Everything a hook adds is signed outside the store, so the one-signature-per-slot guard of
//! [`crate::store::record_signed_and_keep`] stays true for every honest member: only the member
//! running a strategy can equivocate.

use std::time::Duration;

use alloy_primitives::B256;
use alloy_signer_local::PrivateKeySigner;
use ed25519_dalek::SigningKey;
use fixd_proto::eip712::{ReportSignature, sign_typed};
use fixd_proto::gossip::GossipMessage;
use fixd_proto::signing::{PublicKey, Signed};
use fixd_proto::types::certificate::Proposal;
use fixd_proto::types::report::{BatchSignature, FinalReport, FinalReportBatch};

use crate::network::CatchupResponse;

/// A faulty member's conduct. Every hook defaults to the honest behaviour.
pub trait Conduct: Send + Sync + std::fmt::Debug {
    /// The fresh proposal of a settlement's value (from observations) this member signs as a
    /// round's leader.
    fn propose(&self, proposal: Proposal) -> Proposal {
        proposal
    }

    /// What this member sends instead of gossiping `message` now: each message after its delay
    /// (zero: now). Messages it adds are signed with `signer`, outside its store. `message` may
    /// be another member's (the driver re-gossips what it holds).
    fn outgoing(&self, signer: &Signer, message: GossipMessage) -> Vec<(Duration, GossipMessage)> {
        let _ = signer;
        vec![(Duration::ZERO, message)]
    }

    /// Whether this member's answer to a catch-up request from committee member `asker`
    /// (`None`: a peer outside the committee) includes `message`.
    fn shows(&self, asker: Option<usize>, message: &GossipMessage) -> bool {
        let _ = (asker, message);
        true
    }
}

/// This member's keys and network, for a strategy to sign what it adds.
#[derive(Clone, Debug)]
pub struct Signer {
    pub ed25519: SigningKey,
    pub secp256k1: PrivateKeySigner,
    pub network_id: B256,
    pub chain_id: u64,
    pub contract: alloy_primitives::Address,
}

impl Signer {
    /// This member's public key: whether a message is its own.
    pub fn public_key(&self) -> PublicKey {
        PublicKey::of(&self.ed25519)
    }

    /// Signs a gossip payload for this network.
    pub fn sign<T: fixd_proto::signing::Signable>(&self, payload: T) -> Signed<T> {
        Signed::sign(&self.ed25519, &self.network_id, payload)
    }

    /// Signs `report` (EIP-712, the secp256k1 key) and wraps it as a gossiped report signature.
    pub fn sign_report(&self, report: FinalReport) -> Signed<ReportSignature> {
        let domain = fixd_proto::eip712::domain(self.chain_id, self.contract);
        let payload = ReportSignature {
            signature: sign_typed(&self.secp256k1, &domain, &report),
            signer: self.secp256k1.address(),
            report,
        };
        self.sign(payload)
    }

    /// Signs `batch` (EIP-712, the secp256k1 key) and wraps it as a gossiped batch signature.
    pub fn sign_batch(&self, batch: FinalReportBatch) -> Signed<BatchSignature> {
        let domain = fixd_proto::eip712::domain(self.chain_id, self.contract);
        let payload = BatchSignature {
            signature: sign_typed(&self.secp256k1, &domain, &batch),
            signer: self.secp256k1.address(),
            batch,
        };
        self.sign(payload)
    }
}

/// Answers catch-up requests as a Byzantine member: what the honest provider holds, less what
/// [`Conduct::shows`] hides from the asking member.
pub struct ShownCatchup {
    pub honest: std::sync::Arc<dyn crate::network::CatchupProvider>,
    pub conduct: std::sync::Arc<dyn Conduct>,
    /// The committee's peer ids, in member order.
    pub members: Vec<libp2p::PeerId>,
}

impl std::fmt::Debug for ShownCatchup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShownCatchup").field("conduct", &self.conduct).finish_non_exhaustive()
    }
}

impl crate::network::CatchupProvider for ShownCatchup {
    fn catch_up(&self, settlement_id: &fixd_proto::types::settlement::SettlementId) -> CatchupResponse {
        self.honest.catch_up(settlement_id)
    }

    fn catch_up_for(
        &self,
        asker: &libp2p::PeerId,
        settlement_id: &fixd_proto::types::settlement::SettlementId,
    ) -> CatchupResponse {
        let asker = self.members.iter().position(|member| member == asker);
        let all = self.honest.catch_up(settlement_id);
        let mut shown = CatchupResponse { certificates: all.certificates.clone(), ..Default::default() };
        for message in all.into_messages().into_iter().filter(|m| self.conduct.shows(asker, m)) {
            match message {
                GossipMessage::Observation(m) => shown.observations.push(m),
                GossipMessage::Proposal(m) => shown.proposals.push(*m),
                GossipMessage::Vote(m) => shown.votes.push(m),
                GossipMessage::ReportSignature(m) => shown.report_signatures.push(m),
                GossipMessage::ReviewVote(m) => shown.review_votes.push(m),
                GossipMessage::Dispute(m) => shown.disputes.push(*m),
                GossipMessage::Ruling(m) => shown.rulings.push(m),
                // Never stored, so never in a catch-up answer.
                GossipMessage::BatchSignature(_) => {}
            }
        }
        shown
    }
}
