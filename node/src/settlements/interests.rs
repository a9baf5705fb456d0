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
}
