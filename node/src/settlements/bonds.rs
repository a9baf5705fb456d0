//! Bounded bond checks. Every relayed dispute from another member has its bond read back on
//! this node's RPC. Anyone can make a free dispute signature and name a bond transaction that
//! does not exist, so the checks are bounded:
//!
//! - **One check per bond.** Relays of one dispute that name the same escrow share one check
//!   (key: settlement, dispute id, escrow); its answer goes to every relay that waits on it.
//! - **Bounded per relaying member:** the checks a member's relays start are at most
//!   [`MAX_PER_SETTLEMENT`] per settlement and [`MAX_PER_MEMBER`] in all, so at most
//!   `n × MAX_PER_MEMBER` on a node. A relay past a bound is dropped (logged and counted). A
//!   faulty member that relays bogus disputes fills only its own share: an honest member's relays
//!   (of bonds it has read itself) still find room, and their checks end within a few blocks.
//! - **Backoff and a bounded wait:** a check retries after 2 s, doubling up to
//!   [`MAX_BACKOFF`], and gives up after [`MAX_WAIT`] (or at the hard deadline): a bond that is
//!   still unknown then is dropped, logged and counted.

use std::collections::HashMap;
use std::time::Duration;

use alloy_primitives::B256;
use fixd_proto::signing::Signed;
use fixd_proto::types::dispute::{DisputeEscrow, RelayedDispute};

/// Checks in flight that one member's relays started, per settlement, at most.
pub const MAX_PER_SETTLEMENT: usize = 16;
/// Checks in flight that one member's relays started, in all, at most.
pub const MAX_PER_MEMBER: usize = 64;
/// Relays waiting on one check, at most (one per member is all an honest committee sends).
pub const MAX_WAITING: usize = 128;
/// The longest pause between two reads of one bond.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How long a bond may stay unknown (not mined, not confirmed, the RPC down) before its relay
/// is dropped.
pub const MAX_WAIT: Duration = Duration::from_secs(600);

/// What a check is keyed by.
pub type Key = (B256, B256, DisputeEscrow);

/// What to do with a relay.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// Start a check.
    Start,
    /// A check of the same bond runs: the relay waits on its answer.
    Joined,
    /// Dropped: the bound named here is reached.
    Full(&'static str),
}

/// The checks in flight and the relays waiting on them.
#[derive(Debug, Default)]
pub struct BondChecks {
    waiting: HashMap<Key, Vec<(Signed<RelayedDispute>, bool)>>,
}

impl BondChecks {
    /// The key of a relay's check.
    pub fn key(settlement: B256, relayed: &Signed<RelayedDispute>) -> Key {
        (settlement, relayed.payload.dispute.dispute.dispute_id, relayed.payload.escrow.clone())
    }

    /// Whether a check of a relay of settlement `id` runs.
    pub fn checking(&self, id: &B256) -> bool {
        self.waiting.keys().any(|(settlement, ..)| settlement == id)
    }

    /// Admits a relay (`late` as the driver judged it).
    pub fn admit(&mut self, settlement: B256, relayed: Signed<RelayedDispute>, late: bool) -> Admission {
        let key = Self::key(settlement, &relayed);
        if let Some(waiting) = self.waiting.get_mut(&key) {
            if waiting.len() >= MAX_WAITING {
                return Admission::Full("relays waiting on one bond");
            }
            waiting.push((relayed, late));
            return Admission::Joined;
        }
        let relayer = relayed.signer;
        let theirs: Vec<&Key> = self
            .waiting
            .iter()
            .filter(|(_, relays)| relays.first().is_some_and(|(r, _)| r.signer == relayer))
            .map(|(k, _)| k)
            .collect();
        if theirs.len() >= MAX_PER_MEMBER {
            return Admission::Full("bond checks of this member's relays");
        }
        if theirs.iter().filter(|k| k.0 == settlement).count() >= MAX_PER_SETTLEMENT {
            return Admission::Full("bond checks of this member's relays of this settlement");
        }
        self.waiting.insert(key, vec![(relayed, late)]);
        Admission::Start
    }

    /// The check of `key` is over: the relays that waited on it.
    pub fn finish(&mut self, key: &Key) -> Vec<(Signed<RelayedDispute>, bool)> {
        self.waiting.remove(key).unwrap_or_default()
    }

    /// Checks in flight.
    pub fn in_flight(&self) -> usize {
        self.waiting.len()
    }
}

/// The pause after `attempt` failed reads (0-based): 2 s, doubling, at most [`MAX_BACKOFF`].
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(2).saturating_mul(1 << attempt.min(16)).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use fixd_proto::types::dispute::{Dispute, DisputeReason, SignedDispute};

    fn relay(signer: u8, dispute: u8, block: u64) -> Signed<RelayedDispute> {
        let dispute = Dispute {
            settlement_id: B256::repeat_byte(1),
            dispute_id: B256::repeat_byte(dispute),
            proposal_hash: B256::ZERO,
            claimed_value: None,
            reason: DisputeReason::BadData,
            evidence: String::new(),
            bond_wei: 1,
            bond_tx: B256::repeat_byte(dispute),
            disputer: alloy_primitives::Address::ZERO,
        };
        let escrow = DisputeEscrow {
            block_number: block,
            block_hash: B256::ZERO,
            block_timestamp: 0,
            log_index: 0,
            pool_wei: 0,
        };
        let dispute = SignedDispute { dispute, signature: Default::default() };
        let payload = RelayedDispute { dispute, escrow, accepted_at: 0 };
        Signed::sign(&SigningKey::from_bytes(&[signer; 32]), &B256::ZERO, payload)
    }

    #[test]
    fn one_check_per_bond_and_bounds_per_relaying_member() {
        let mut checks = BondChecks::default();
        let s = B256::repeat_byte(9);
        assert_eq!(checks.admit(s, relay(1, 1, 5), false), Admission::Start);
        assert_eq!(checks.admit(s, relay(2, 1, 5), true), Admission::Joined, "the same bond: one check");
        assert_eq!(checks.admit(s, relay(3, 1, 6), false), Admission::Start, "another escrow: its own check");
        let waiting = checks.finish(&BondChecks::key(s, &relay(1, 1, 5)));
        assert_eq!(waiting.iter().map(|(_, late)| *late).collect::<Vec<_>>(), vec![false, true]);
        // Member 1 floods one settlement: its share fills, member 2's relays still find room.
        for d in 2..(MAX_PER_SETTLEMENT as u8 + 2) {
            assert_eq!(checks.admit(s, relay(1, d, 5), false), Admission::Start);
        }
        let full = Admission::Full("bond checks of this member's relays of this settlement");
        assert_eq!(checks.admit(s, relay(1, 200, 5), false), full);
        assert_eq!(checks.admit(s, relay(2, 200, 5), false), Admission::Start, "another member's relay");
        // ... and across settlements, up to its bound in all.
        for k in 0..(MAX_PER_MEMBER - MAX_PER_SETTLEMENT) {
            let other = B256::from(alloy_primitives::U256::from(1000 + k));
            assert_eq!(checks.admit(other, relay(1, 1, 5), false), Admission::Start);
        }
        let one_more = B256::repeat_byte(0xee);
        assert_eq!(
            checks.admit(one_more, relay(1, 1, 5), false),
            Admission::Full("bond checks of this member's relays")
        );
        assert_eq!(checks.admit(one_more, relay(3, 1, 5), false), Admission::Start);
        assert_eq!(checks.in_flight(), MAX_PER_MEMBER + 3);
    }

    #[test]
    fn backoff_doubles_to_its_cap() {
        let secs: Vec<u64> = (0..8).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(secs, vec![2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}
