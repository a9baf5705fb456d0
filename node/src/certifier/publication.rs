//! The certifier's side of publication: it feeds each certified settlement's [`Publication`]
//! and carries its actions out (sign, record, flush, gossip; ask the chain service).

use alloy_primitives::B256;
use fixd_dispute::DisputeParams;
use fixd_proto::eip712::{ReportSignature, sign_typed};
use fixd_proto::signing::Signed;
use fixd_proto::types::certificate::Certificate;
use fixd_proto::types::settlement::SettlementSpec;

use crate::certifier::Certifier;
use crate::chain::ChainCommand;
use crate::events::{EventKind, NodeEvent};
use crate::network::GossipMessage;
use crate::store::{FinalRecord, SignedKind, SigningSlot, StoreError, record_signed_and_keep};
use fixd_decision::publication::{
    Action, Event, FINAL_REPORT_ROUND, OnChain, Publication, PublicationParams,
};

impl Certifier {
    /// The publication machine of a certified settlement, created on first use and fed what
    /// the store holds (agreed events, report signatures, last chain read). Returns the
    /// actions that replay produced, for the caller to carry out.
    pub(crate) fn publication_machine(&mut self, spec: &SettlementSpec) -> Result<Vec<Action>, StoreError> {
        let id = spec.id();
        if self.publications.contains_key(&id) {
            return Ok(vec![]);
        }
        let setup = &self.publishing;
        let dispute_params = DisputeParams::for_committee(&setup.protocol, spec.maturity, &self.committee, 0);
        let mut machine = Publication::new(
            self.committee.clone(),
            self.me,
            id,
            dispute_params,
            PublicationParams::from_protocol(&setup.protocol),
            setup.chain_id,
            setup.contract,
        )
        .map_err(|e| StoreError::Corrupt { key: id.to_string(), reason: format!("dispute rules: {e}") })?;
        let now = crate::clock::now();
        let mut actions = Vec::new();
        let agreed = super::disputes::agreed_events(&*self.store, &self.committee, spec)?;
        actions.extend(machine.on_all(now, agreed));
        for signature in self.store.report_signatures(&id)? {
            if let Some(author) = self.committee.index_of(&signature.signer) {
                actions.extend(machine.on(now, Event::Signature { author, signature: signature.payload }));
            }
        }
        if let Some(state) = self.store.publication(&id)? {
            actions.extend(machine.on(now, Event::Chain(Some(state))));
        }
        self.publications.insert(id, machine);
        Ok(actions)
    }

    /// Feeds one event to a settlement's publication and carries out what follows.
    async fn feed_publication(
        &mut self,
        spec: &SettlementSpec,
        event: Option<Event>,
    ) -> Result<(), StoreError> {
        let id = spec.id();
        let created = !self.publications.contains_key(&id);
        let mut actions = self.publication_machine(spec)?;
        // A machine created just now was fed the store, which holds the certificate already.
        let event = event.filter(|e| !(created && matches!(e, Event::Certified { .. })));
        if let Some(event) = event {
            let machine = self.publications.get_mut(&id).expect("created above");
            actions.extend(machine.on(crate::clock::now(), event));
        }
        self.carry_publication_actions(spec, actions).await
    }

    pub(crate) async fn on_certified(
        &mut self,
        spec: &SettlementSpec,
        certificate: &Certificate,
    ) -> Result<(), StoreError> {
        self.feed_publication(spec, Some(super::disputes::certified_event(certificate))).await
    }

    pub(crate) async fn on_report_signature(
        &mut self,
        spec: &SettlementSpec,
        signature: Signed<ReportSignature>,
    ) -> Result<(), StoreError> {
        let Some(author) = self.committee.index_of(&signature.signer) else { return Ok(()) };
        if self.store.certificate(&spec.id())?.is_none() {
            // Kept in the store; fed once this node has the certificate.
            return Ok(());
        }
        self.feed_publication(spec, Some(Event::Signature { author, signature: signature.payload })).await
    }

    pub(crate) async fn on_chain_update(
        &mut self,
        id: B256,
        state: Option<OnChain>,
    ) -> Result<(), StoreError> {
        self.store.put_publication(&id, state.as_ref())?;
        let Some(spec) = self.store.settlement(&id)? else { return Ok(()) };
        self.feed_publication(&spec, Some(Event::Chain(state))).await
    }

    pub(crate) async fn publication_tick(&mut self, spec: &SettlementSpec) -> Result<(), StoreError> {
        self.feed_publication(spec, Some(Event::Tick)).await
    }

    pub(crate) async fn carry_publication_actions(
        &mut self,
        spec: &SettlementSpec,
        actions: Vec<Action>,
    ) -> Result<(), StoreError> {
        let id = spec.id();
        for action in actions {
            match action {
                Action::WindowOpened { round, deadline } => {
                    tracing::info!(settlement = %id, round, deadline, "challenge window open");
                    self.event(
                        id,
                        EventKind::ChallengeWindowOpened,
                        serde_json::json!({ "round": round, "deadline": deadline }),
                    );
                }
                Action::SignReport { report, finality } => {
                    if self.store.final_record(&id)?.is_some_and(|r| r.report == report) {
                        // Signed before a restart: the machine was fed the stored signature
                        // already. Only an unpublished settlement needs watching again.
                        let published = self.publications.get(&id).is_some_and(Publication::is_published);
                        if let (false, Some(chain)) = (published, &self.publishing.chain) {
                            chain.send(ChainCommand::Watch(id)).await;
                        }
                        continue;
                    }
                    let setup = &self.publishing;
                    let domain = fixd_proto::eip712::domain(setup.chain_id, setup.contract);
                    let payload = ReportSignature {
                        signature: sign_typed(&setup.eth_key, &domain, &report),
                        signer: setup.eth_key.address(),
                        report: report.clone(),
                    };
                    let signed = Signed::sign(&self.key, &self.network_id, payload);
                    let slot = SigningSlot {
                        settlement: id,
                        kind: SignedKind::FinalReport,
                        round: FINAL_REPORT_ROUND,
                    };
                    let record = FinalRecord { report: report.clone(), finality: finality.clone() };
                    let kept = record_signed_and_keep(&*self.store, slot, signed.hash(), |store| {
                        store.put_final(&record)?;
                        store.put_report_signature(&signed)
                    })?;
                    if !kept {
                        // A late event changed the report after this member signed another.
                        continue;
                    }
                    tracing::info!(settlement = %id, value = %report.value, round = report.round, by = ?finality.by, "final; report signed");
                    self.event(id, EventKind::Final, serde_json::json!({ "value": report.value, "round": report.round, "by": finality.by }));
                    if let Err(error) =
                        self.network.publish(GossipMessage::ReportSignature(signed.clone())).await
                    {
                        tracing::warn!(%error, "cannot gossip the report signature now; peers will catch up");
                    }
                    if let Some(chain) = &self.publishing.chain {
                        chain.send(ChainCommand::Watch(id)).await;
                    }
                    let machine = self.publications.get_mut(&id).expect("a machine asked to sign");
                    let more = machine.on(
                        crate::clock::now(),
                        Event::Signature { author: self.me, signature: signed.payload },
                    );
                    Box::pin(self.carry_publication_actions(spec, more)).await?;
                }
                Action::Publish { report, signatures, turn } => {
                    let Some(chain) = &self.publishing.chain else {
                        tracing::warn!(settlement = %id, turn, "this member's turn to publish, but no chain.rpc_url is configured");
                        continue;
                    };
                    tracing::info!(settlement = %id, turn, signatures = signatures.len(), "this member's turn to publish");
                    chain.send(ChainCommand::Publish { report, signatures }).await;
                }
                Action::Published(state) => {
                    tracing::info!(settlement = %id, tx = %state.tx_hash, block = state.block_number, confirmations = state.confirmations, "published");
                    self.event(id, EventKind::Published, serde_json::to_value(&state).unwrap_or_default());
                }
                Action::Conflict { on_chain, ours, tx_hash } => {
                    tracing::error!(settlement = %id, %on_chain, %ours, tx = %tx_hash, "the contract holds another value than this member's final report");
                    self.event(
                        id,
                        EventKind::Conflict,
                        serde_json::json!({ "on_chain": on_chain, "ours": ours, "tx_hash": tx_hash }),
                    );
                }
                Action::Ignored { author, reason } => {
                    tracing::debug!(settlement = %id, author, %reason, "report signature ignored");
                }
                action @ (Action::StartReview { .. } | Action::Disputes { .. } | Action::Revised) => {
                    Box::pin(self.carry_dispute_action(spec, action)).await?;
                }
                Action::Failed { reason } => {
                    tracing::error!(settlement = %id, %reason, "settlement failed: nothing certified by the hard deadline");
                    self.event(id, EventKind::Failed, serde_json::json!({ "reason": reason }));
                }
            }
        }
        Ok(())
    }

    pub(crate) fn event(&self, settlement_id: B256, kind: EventKind, detail: serde_json::Value) {
        self.events.publish(NodeEvent { settlement_id, kind, at: crate::clock::now(), detail });
    }
}
