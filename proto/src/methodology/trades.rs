//! The observation window, its partitions, and trade cleaning (DESIGN 4.1 and 4.6).

use alloy_primitives::B256;

use crate::hash::hash_bcs;
use crate::types::settlement::SettlementSpec;
use crate::types::venue::Trade;

/// The observation window `(M − window_secs, M]` and its partitions, in unix milliseconds.
///
/// Trade times are milliseconds and the window is seconds, so a trade at `time_ms` is in the
/// window iff `(M − W)·1000 < time_ms ≤ M·1000`. Partition `k` (0-based, oldest first) is
/// `((M − W + k·L)·1000, (M − W + (k + 1)·L)·1000]` with `L = W / partitions`: each partition
/// is open at its start and closed at its end, like the window, so a trade exactly on a
/// boundary belongs to the earlier partition. The arithmetic is in `i128`, so it is exact for
/// any `u64` maturity and window (a window reaching before the epoch simply holds no trades
/// before time 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    start_ms: i128,
    end_ms: i128,
    partition_ms: i128,
    partitions: u16,
}

impl Window {
    /// The window of `spec`. Partitions are only meaningful for parameters that pass
    /// [`MethodologyParams::validate`](crate::types::settlement::MethodologyParams::validate);
    /// with `partitions = 0` every trade maps to no partition.
    pub fn new(spec: &SettlementSpec) -> Self {
        let end_ms = i128::from(spec.maturity) * 1000;
        let window_ms = i128::from(spec.params.window_secs) * 1000;
        Window {
            start_ms: end_ms - window_ms,
            end_ms,
            partition_ms: window_ms / i128::from(spec.params.partitions.max(1)),
            partitions: spec.params.partitions,
        }
    }

    /// Whether a trade at `time_ms` is inside `(start, end]`.
    pub fn contains(&self, time_ms: u64) -> bool {
        let t = i128::from(time_ms);
        self.start_ms < t && t <= self.end_ms
    }

    /// The 0-based partition holding `time_ms`, or `None` outside the window.
    pub fn partition_of(&self, time_ms: u64) -> Option<u16> {
        if !self.contains(time_ms) || self.partition_ms == 0 {
            return None;
        }
        // t − start is in [1, W·1000], so this is ⌈(t − start) / L⌉ − 1, in [0, partitions).
        let k = (i128::from(time_ms) - self.start_ms - 1) / self.partition_ms;
        u16::try_from(k).ok().filter(|&k| k < self.partitions)
    }

    /// The number of partitions.
    pub fn partitions(&self) -> u16 {
        self.partitions
    }
}

/// The trades of `trades` that the methodology uses, in canonical order (DESIGN 4.6).
///
/// In this order:
/// 1. drop every trade whose price or size is zero (a [`Wad`](crate::value::Wad) cannot be
///    negative);
/// 2. drop every trade outside the window (see [`Window`]);
/// 3. sort by `Trade`'s derived order `(venue, id, time_ms, price, size)`, and of the trades that
///    share a `(venue, id)` keep only the first, i.e. the earliest, then the lowest price,
///    then the smallest size.
///
/// Filtering before de-duplicating means a valid copy of a repeated trade is kept even when
/// another copy is malformed. The result depends only on the multiset of input trades, never on
/// their order, which is what makes [`trade_digest`] reproducible. This is the list a node
/// archives so that a dispute can replay it.
pub fn clean_trades(spec: &SettlementSpec, trades: &[Trade]) -> Vec<Trade> {
    let window = Window::new(spec);
    let mut kept: Vec<Trade> = trades
        .iter()
        .filter(|t| !t.price.is_zero() && !t.size.is_zero() && window.contains(t.time_ms))
        .cloned()
        .collect();
    // Equal trades are identical, so an unstable sort is still deterministic.
    kept.sort_unstable();
    kept.dedup_by(|later, first| later.venue == first.venue && later.id == first.id);
    kept
}

/// `keccak256(BCS(trades))` of the output of [`clean_trades`]: the observation's trade digest.
///
/// It hashes the slice as given (a BCS sequence: length, then each trade), so pass exactly the
/// cleaned list; any other order or content gives another digest.
pub fn trade_digest(cleaned: &[Trade]) -> B256 {
    hash_bcs(cleaned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::settlement::{Index, MethodologyParams};
    use crate::types::venue::Venue;
    use crate::value::Wad;

    /// M = 1 000 000 s; W = 3600 s in 12 partitions of 300 s.
    fn spec() -> SettlementSpec {
        SettlementSpec { index: Index::EthUsd, maturity: 1_000_000, params: MethodologyParams::default() }
    }

    fn trade(venue: Venue, id: &str, time_ms: u64, price: &str, size: &str) -> Trade {
        Trade {
            venue,
            id: id.to_owned(),
            time_ms,
            price: Wad::parse(price).unwrap(),
            size: Wad::parse(size).unwrap(),
        }
    }

    const START_MS: u64 = (1_000_000 - 3600) * 1000;
    const END_MS: u64 = 1_000_000 * 1000;

    #[test]
    fn window_is_open_at_the_start_and_closed_at_the_end() {
        let w = Window::new(&spec());
        assert!(!w.contains(START_MS));
        assert!(w.contains(START_MS + 1));
        assert!(w.contains(END_MS));
        assert!(!w.contains(END_MS + 1));
    }

    #[test]
    fn partitions_are_open_at_the_start_and_closed_at_the_end() {
        let w = Window::new(&spec());
        assert_eq!(w.partition_of(START_MS), None);
        assert_eq!(w.partition_of(START_MS + 1), Some(0));
        assert_eq!(w.partition_of(START_MS + 300_000), Some(0));
        assert_eq!(w.partition_of(START_MS + 300_001), Some(1));
        assert_eq!(w.partition_of(END_MS - 300_000), Some(10));
        assert_eq!(w.partition_of(END_MS - 299_999), Some(11));
        assert_eq!(w.partition_of(END_MS), Some(11));
        assert_eq!(w.partition_of(END_MS + 1), None);
    }

    #[test]
    fn a_window_before_the_epoch_and_zero_partitions_do_not_panic() {
        let mut s = spec();
        s.maturity = 10;
        let w = Window::new(&s);
        assert!(w.contains(0));
        assert_eq!(w.partition_of(10_000), Some(11));
        s.params.partitions = 0;
        assert_eq!(Window::new(&s).partition_of(10_000), None);
        // A maturity of u64::MAX seconds is far beyond any u64 millisecond time.
        s.maturity = u64::MAX;
        assert!(!Window::new(&s).contains(u64::MAX));
        assert_eq!(Window::new(&s).partition_of(u64::MAX), None);
    }

    #[test]
    fn cleaning_drops_zero_prices_and_sizes_and_trades_outside_the_window() {
        let trades = [
            trade(Venue::Kraken, "1", START_MS + 1, "2500", "1"),
            trade(Venue::Kraken, "2", START_MS + 2, "0", "1"),
            trade(Venue::Kraken, "3", START_MS + 3, "2500", "0"),
            trade(Venue::Kraken, "4", START_MS, "2500", "1"),
            trade(Venue::Kraken, "5", END_MS, "2500", "1"),
            trade(Venue::Kraken, "6", END_MS + 1, "2500", "1"),
        ];
        let ids: Vec<_> = clean_trades(&spec(), &trades).into_iter().map(|t| t.id).collect();
        assert_eq!(ids, ["1", "5"]);
    }

    #[test]
    fn cleaning_keeps_the_first_of_repeated_ids_per_venue() {
        let trades = [
            trade(Venue::Gemini, "7", START_MS + 20, "2501", "1"),
            trade(Venue::Gemini, "7", START_MS + 10, "2502", "1"),
            trade(Venue::Gemini, "7", START_MS + 10, "2500", "2"),
            // Same id on another venue is another trade.
            trade(Venue::Coinbase, "7", START_MS + 30, "2499", "1"),
            // A malformed copy does not knock out the valid one.
            trade(Venue::Bitstamp, "8", START_MS + 1, "0", "1"),
            trade(Venue::Bitstamp, "8", START_MS + 2, "2500", "1"),
        ];
        let cleaned = clean_trades(&spec(), &trades);
        assert_eq!(
            cleaned,
            [
                trade(Venue::Coinbase, "7", START_MS + 30, "2499", "1"),
                trade(Venue::Bitstamp, "8", START_MS + 2, "2500", "1"),
                trade(Venue::Gemini, "7", START_MS + 10, "2500", "2"),
            ]
        );
    }

    #[test]
    fn cleaning_and_digest_ignore_input_order() {
        let mut trades = vec![
            trade(Venue::Gemini, "1", START_MS + 20, "2501", "1"),
            trade(Venue::Coinbase, "9", START_MS + 10, "2502", "1"),
            trade(Venue::Coinbase, "10", START_MS + 11, "2502", "1"),
            trade(Venue::Coinbase, "10", START_MS + 11, "2502", "1"),
        ];
        let a = clean_trades(&spec(), &trades);
        trades.reverse();
        let b = clean_trades(&spec(), &trades);
        assert_eq!(a, b);
        assert_eq!(a.len(), 3);
        assert_eq!(trade_digest(&a), trade_digest(&b));
        assert_ne!(trade_digest(&a), trade_digest(&a[1..]));
        assert_eq!(trade_digest(&a), hash_bcs(&a.to_vec()));
        assert_eq!(clean_trades(&spec(), &[]), []);
    }
}
