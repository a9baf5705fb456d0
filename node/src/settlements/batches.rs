//! The shell of batched publication ([`fixd_decision::publication::batch`]): the settlement
//! service feeds the [`Batcher`] the reports its drivers ask to publish, the batch signatures
//! gossip brings, and a flush each tick; this carries out what it says (sign and gossip a
//! batch, ask the chain service to publish).

use std::collections::HashMap;

use alloy_primitives::B256;
use fixd_decision::driver::SettlementDriver;
use fixd_decision::publication::batch::{BatchAction, Batcher, Signatures};
use fixd_proto::eip712::sign_typed;
use fixd_proto::signing::Signed;
use fixd_proto::types::report::{BatchSignature, FinalReport};
use fixd_proto::types::settlement::SettlementId;

use super::Settlements;
use crate::chain::ChainCommand;
use crate::network::GossipMessage;

/// A batcher for this member: batches of at most `max_reports` of the reports ready within an
/// eighth of a publishing turn (1 to 5 s), each waiting half a turn for its signatures.
pub(super) fn batcher(setup: &fixd_decision::driver::DriverSetup, max_reports: usize) -> Batcher {
    let turn = setup.protocol.publish_timeout_secs;
    Batcher::new(
        setup.committee.clone(),
        fixd_proto::eip712::domain(setup.chain_id, setup.contract),
        max_reports,
        (turn / 8).clamp(1, 5),
        turn / 2,
    )
}

/// This member's signed final report of a settlement, if its driver is final.
fn own_report(drivers: &HashMap<B256, Box<SettlementDriver>>, id: &SettlementId) -> Option<FinalReport> {
    drivers.get(id)?.publication()?.report().cloned()
}

impl Settlements {
    /// A settlement's publication asks to publish in this member's turn.
    pub(super) async fn publish_report(&mut self, report: FinalReport, signatures: Signatures) {
        if let Some(action) = self.batcher.ready(crate::clock::now(), report, signatures) {
            self.carry_out_batches(vec![action]).await;
        }
    }

    /// Once a tick, after the drivers: the reports ready go out.
    pub(super) async fn flush_batches(&mut self) {
        let actions = self.batcher.flush(crate::clock::now(), |id| own_report(&self.drivers, id));
        self.carry_out_batches(actions).await;
    }

    /// A gossiped batch signature (validated: a member's, of a well-formed batch).
    pub(super) async fn on_batch_signature(&mut self, signed: Signed<BatchSignature>) {
        let Some(author) = self.setup.committee.index_of(&signed.signer) else { return };
        let actions = self.batch_signature(author, signed.payload);
        self.carry_out_batches(actions).await;
    }

    fn batch_signature(&mut self, author: usize, signature: BatchSignature) -> Vec<BatchAction> {
        self.batcher.on_signature(crate::clock::now(), author, signature, |id| own_report(&self.drivers, id))
    }

    async fn carry_out_batches(&mut self, mut actions: Vec<BatchAction>) {
        while let Some(action) = actions.pop() {
            match action {
                BatchAction::Sign(batch) => {
                    let domain = fixd_proto::eip712::domain(self.setup.chain_id, self.setup.contract);
                    let payload = BatchSignature {
                        signature: sign_typed(&self.keys.secp256k1, &domain, &batch),
                        signer: self.keys.secp256k1.address(),
                        batch,
                    };
                    tracing::info!(reports = payload.batch.reports.len(), first = %payload.batch.reports[0].settlement_id, "batch signed");
                    let signed = Signed::sign(&self.keys.ed25519, &self.setup.network_id, payload.clone());
                    self.gossip(GossipMessage::BatchSignature(signed)).await;
                    actions.extend(self.batch_signature(self.setup.me, payload));
                }
                BatchAction::Publish { report, signatures } => {
                    self.chain(ChainCommand::Publish { report, signatures });
                }
                BatchAction::PublishBatch { batch, signatures } => {
                    tracing::info!(
                        reports = batch.reports.len(),
                        signatures = signatures.len(),
                        "batch of reports ready to publish"
                    );
                    self.chain(ChainCommand::PublishBatch { batch, signatures });
                }
                BatchAction::Ignored { author, reason } => {
                    tracing::warn!(author, %reason, "batch signature ignored");
                }
            }
        }
    }
}
