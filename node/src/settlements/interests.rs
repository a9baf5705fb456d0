//! [`Interests`]: what each settlement's driver takes now ([`Interest`]), written by the
//! settlement service after each input it feeds a driver, read by the network before it checks
//! a message's signature (`crate::network::validation`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use alloy_primitives::B256;
use fixd_decision::driver::{Interest, Unwanted, Wanted};
use fixd_proto::gossip::GossipMessage;

/// See the module docs. Clones share one map.
#[derive(Clone, Debug, Default)]
pub struct Interests(Arc<RwLock<HashMap<B256, Interest>>>);

impl Interests {
    /// Whether the driver of the message's settlement takes it now; `Ok(Now)` for a settlement
    /// whose driver has not run yet.
    pub fn judge(&self, message: &GossipMessage) -> Result<Wanted, Unwanted> {
        let map = self.0.read().expect("interests lock");
        map.get(message.settlement_id()).map_or(Ok(Wanted::Now), |interest| interest.judge(message))
    }

    /// Records what settlement `id`'s driver takes now; the write lock is taken only on a
    /// change.
    pub(super) fn set(&self, id: B256, interest: Interest) {
        if self.0.read().expect("interests lock").get(&id) == Some(&interest) {
            return;
        }
        self.0.write().expect("interests lock").insert(id, interest);
    }

    /// Forgets settlement `id`'s driver, dropped once its settlement is settled: a message that
    /// still comes for it is taken, as for any driver that has not run, and builds it again.
    pub(super) fn forget(&self, id: &B256) {
        self.0.write().expect("interests lock").remove(id);
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;
    use fixd_decision::driver::Interest;
    use fixd_proto::signing::Signed;
    use fixd_proto::types::certificate::{DecisionId, Vote, VoteStep};

    use super::*;

    #[test]
    fn a_forgotten_settlement_takes_what_comes_as_one_whose_driver_has_not_run() {
        let id = B256::repeat_byte(7);
        let vote = Vote {
            settlement_id: id,
            decision: DecisionId::Value,
            round: 0,
            step: VoteStep::Prevote,
            proposal_hash: None,
        };
        let vote = GossipMessage::Vote(Signed::sign(&SigningKey::from_bytes(&[1; 32]), &B256::ZERO, vote));
        let interests = Interests::default();
        // Its driver decided and took no more rounds of the first value.
        interests.set(id, Interest::new([(DecisionId::Report, 0)], []));
        assert_eq!(interests.judge(&vote), Err(Unwanted::NoDecision(DecisionId::Value)));
        interests.forget(&id);
        assert_eq!(interests.judge(&vote), Ok(Wanted::Now));
        assert!(interests.0.read().unwrap().is_empty(), "nothing is kept of it");
    }
}
