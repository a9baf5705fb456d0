//! Equivocation evidence: two different messages one member signed for one slot (settlement,
//! kind, decision, round, step). Each half verifies on its own, so anyone holding the pair can check it with no
//! trust in the node that kept it.

use alloy_primitives::B256;
use fixd_proto::signing::{PublicKey, SignatureError};
use fixd_proto::types::settlement::SettlementId;
use serde::{Deserialize, Serialize};

use super::MessageKind;
use fixd_proto::gossip::GossipMessage;

/// Two different signed messages from one member for one slot. `first` is the one this node
/// saw first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Equivocation {
    pub first: GossipMessage,
    pub second: GossipMessage,
}

/// Why a pair of messages is not evidence of equivocation.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    #[error(
        "the two messages are for different slots (signer, settlement, kind, decision, round or step differ)"
    )]
    DifferentSlots,
    #[error("the two messages are the same message")]
    SameMessage,
    #[error("message {which} of the pair does not verify: {reason}")]
    BadSignature { which: &'static str, reason: SignatureError },
}

impl Equivocation {
    /// The member who signed both.
    pub fn signer(&self) -> &PublicKey {
        self.first.signer()
    }

    pub fn settlement_id(&self) -> &SettlementId {
        self.first.settlement_id()
    }

    pub fn kind(&self) -> MessageKind {
        self.first.kind()
    }

    pub fn round(&self) -> u32 {
        self.first.round()
    }

    /// Checks that this is real evidence: one slot, two different messages, both signed by the
    /// slot's member for `network_id`.
    pub fn check(&self, network_id: &B256) -> Result<(), EvidenceError> {
        let slot = |m: &GossipMessage| {
            (*m.signer(), *m.settlement_id(), m.kind(), m.decision(), m.round(), m.step())
        };
        if slot(&self.first) != slot(&self.second) {
            return Err(EvidenceError::DifferentSlots);
        }
        if self.first.hash() == self.second.hash() {
            return Err(EvidenceError::SameMessage);
        }
        self.first
            .verify(network_id)
            .map_err(|reason| EvidenceError::BadSignature { which: "first", reason })?;
        self.second
            .verify(network_id)
            .map_err(|reason| EvidenceError::BadSignature { which: "second", reason })
    }
}
