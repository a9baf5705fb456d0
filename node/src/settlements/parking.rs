//! Settlements whose driver the service dropped while it waits, kept as a time or a chain read
//! until an input or the clock needs it again: an expiry burst's settlements wait out their
//! windows, and then their publications' depth, at once, and their drivers (some 9 KB each with
//! their certificates) would hold a burst's memory for minutes doing nothing.
//!
//! | parked | when | built again ([`SettlementDriver::resume`](fixd_decision::driver::SettlementDriver::resume)) |
//! |---|---|---|
//! | [`Until::Due`] | [`idle_until`](fixd_decision::driver::SettlementDriver::idle_until): its window open, nothing disputed | at any input; at the time given, in the waves the decisions start in |
//! | [`Until::Deep`] | published, not yet [`FORGET_AFTER_CONFIRMATIONS`] deep | at any input but a deeper confirmation of the same publication |
//!
//! A parked settlement keeps its interest (`super::Interests`), so that the network drops what
//! its driver would not take, and asks a peer now and then for what it may have missed, as its
//! driver did.

use std::collections::HashMap;

use alloy_primitives::B256;
use fixd_decision::publication::OnChain;

use crate::chain::service::FORGET_AFTER_CONFIRMATIONS;

/// Until when a settlement is parked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Until {
    /// Its window's close has settled at this time: its report decision is due.
    Due(u64),
    /// Published: the contract holds its report, as last read.
    Deep(OnChain),
}

/// One parked settlement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Parked {
    /// When its driver was dropped: it is built again as of then ([`SettlementDriver::resume`]).
    ///
    /// [`SettlementDriver::resume`]: fixd_decision::driver::SettlementDriver::resume
    pub at: u64,
    pub until: Until,
}

/// What a chain read of a settlement parked as published means.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum ChainRead {
    /// The same publication, deeper: kept in the store; it stays parked.
    Deeper,
    /// The same publication, past the depth at which it is no longer read: done.
    Settled,
    /// Anything else (the publication gone, another one, fewer confirmations, or the settlement
    /// not parked as published): its driver takes the read.
    Wake,
}

/// See the module docs.
#[derive(Debug, Default)]
pub(super) struct Parking {
    parked: HashMap<B256, Parked>,
}

impl Parking {
    pub fn park(&mut self, id: B256, at: u64, until: Until) {
        self.parked.insert(id, Parked { at, until });
    }

    pub fn get(&self, id: &B256) -> Option<&Parked> {
        self.parked.get(id)
    }

    /// Takes a settlement out, its driver being built again.
    pub fn take(&mut self, id: &B256) -> Option<Parked> {
        self.parked.remove(id)
    }

    pub fn len(&self) -> usize {
        self.parked.len()
    }

    /// A chain read of `id`: see [`ChainRead`]. A settled one is taken out.
    pub fn chain_read(&mut self, id: &B256, read: Option<&OnChain>) -> ChainRead {
        let Some(Parked { until: Until::Deep(last), .. }) = self.parked.get_mut(id) else {
            return ChainRead::Wake;
        };
        let Some(read) = read else { return ChainRead::Wake };
        let same = OnChain { confirmations: read.confirmations, ..last.clone() } == *read;
        if !same || read.confirmations < last.confirmations {
            return ChainRead::Wake;
        }
        if read.confirmations >= FORGET_AFTER_CONFIRMATIONS {
            self.parked.remove(id);
            return ChainRead::Settled;
        }
        *last = read.clone();
        ChainRead::Deeper
    }
}

#[cfg(test)]
mod tests {
    use alloy_primitives::Address;
    use fixd_proto::value::Wad;

    use super::*;

    const ID: B256 = B256::repeat_byte(1);

    fn read(confirmations: u64) -> OnChain {
        OnChain {
            value: Wad::from_raw(2500),
            tx_hash: B256::repeat_byte(0x77),
            block_number: 10,
            confirmations,
            publisher: Address::repeat_byte(3),
        }
    }

    #[test]
    fn a_deeper_read_of_the_same_publication_keeps_it_parked_until_settled() {
        let mut p = Parking::default();
        p.park(ID, 100, Until::Deep(read(2)));
        assert_eq!(p.chain_read(&ID, Some(&read(3))), ChainRead::Deeper);
        assert_eq!(p.get(&ID).map(|p| &p.until), Some(&Until::Deep(read(3))), "the last read is kept");
        assert_eq!(p.chain_read(&ID, Some(&read(3))), ChainRead::Deeper, "the same depth again");
        assert_eq!(p.chain_read(&ID, Some(&read(FORGET_AFTER_CONFIRMATIONS))), ChainRead::Settled);
        assert_eq!(p.len(), 0, "settled: nothing kept");
    }

    #[test]
    fn a_reorg_another_publication_or_a_shallower_read_wakes_it() {
        let mut p = Parking::default();
        p.park(ID, 100, Until::Deep(read(5)));
        let moved = OnChain { block_number: 11, ..read(6) };
        let other = OnChain { value: Wad::from_raw(2600), ..read(6) };
        let by_another = OnChain { publisher: Address::repeat_byte(4), ..read(6) };
        for wakes in [None, Some(&moved), Some(&other), Some(&by_another), Some(&read(4))] {
            assert_eq!(p.chain_read(&ID, wakes), ChainRead::Wake, "{wakes:?}");
        }
        assert_eq!(p.get(&ID).map(|p| &p.until), Some(&Until::Deep(read(5))), "unchanged until built again");
    }

    #[test]
    fn a_read_of_a_settlement_parked_in_its_window_or_not_parked_wakes_it() {
        let mut p = Parking::default();
        p.park(ID, 100, Until::Due(160));
        assert_eq!(p.chain_read(&ID, Some(&read(3))), ChainRead::Wake);
        assert_eq!(p.chain_read(&B256::repeat_byte(2), Some(&read(3))), ChainRead::Wake);
    }
}
