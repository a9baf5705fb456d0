//! The three averages of the methodology: the volume-weighted median of one venue's trades, the
//! plain median across venues and nodes, and the mean of the counted partitions.
//!
//! Every function is exact integer arithmetic on raw [`Wad`]s. Intermediate sums are 256-bit
//! ([`U256`]), so no input of `u128` values can overflow, and each rounding is stated on the
//! function.

use alloy_primitives::U256;

use crate::types::venue::Trade;
use crate::value::Wad;

/// The volume-weighted median price of `trades` (DESIGN 4.2).
///
/// Sort the trades by price and take the first trade at which twice the running size reaches
/// the total size: the smallest price `p` such that the trades priced at or below `p` carry at
/// least half of the volume. The result is always the price of one of the trades, never an
/// interpolation, so no rounding happens.
///
/// - Ties: trades with equal prices are adjacent after sorting, and which of them crosses the
///   half-volume mark does not change the result (they share the price). The sort still breaks
///   ties by size, so the order is fully determined by the input multiset.
/// - Zero sizes carry no weight. They are never chosen unless every size is zero, and then the
///   function returns `None` (cleaning drops them before this is called).
/// - Sizes are summed in 256 bits, and the test `2·running ≥ total` is exact for any number of
///   trades of any `u128` size.
///
/// Returns `None` for no trades or a total size of zero. The trades may come from any venues;
/// the methodology calls it per venue.
pub fn venue_weighted_median(trades: &[Trade]) -> Option<Wad> {
    weighted_median(trades.iter().map(|t| (t.price, t.size)).collect())
}

/// [`venue_weighted_median`] over `(price, size)` pairs.
pub(crate) fn weighted_median(mut pairs: Vec<(Wad, Wad)>) -> Option<Wad> {
    pairs.sort_unstable();
    let total = pairs.iter().fold(U256::ZERO, |sum, (_, size)| sum + U256::from(size.raw()));
    if total.is_zero() {
        return None;
    }
    let mut running = U256::ZERO;
    pairs.into_iter().find_map(|(price, size)| {
        running += U256::from(size.raw());
        (running + running >= total).then_some(price)
    })
}

/// The median of `values` (DESIGN 4.3).
///
/// Odd count: the middle value. Even count: the mean of the two middle values `a ≤ b`, rounded
/// down, computed as `a + (b − a) / 2` so that it cannot overflow (it equals `⌊(a + b) / 2⌋`).
/// The input order does not matter. Returns `None` for no values.
pub fn median(values: &[Wad]) -> Option<Wad> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let hi = sorted[n / 2];
    if n % 2 == 1 {
        return Some(hi);
    }
    let lo = sorted[n / 2 - 1];
    Some(Wad::from_raw(lo.raw() + (hi.raw() - lo.raw()) / 2))
}

/// The settlement value: the median of the node values in a proposal (DESIGN 4.7), with the
/// rounding of [`median`].
///
/// With `n ≥ 2f + 1` values of which at most `f` are arbitrary, the result lies within the
/// minimum and maximum of the honest values: each of the (one or two) middle order statistics
/// has at least `f + 1` values at or below it and at or above it, so at least one honest value
/// on each side, and the mean of two such values stays between them.
pub fn settlement_value(node_values: &[Wad]) -> Option<Wad> {
    median(node_values)
}

/// The mean of `values`, rounded down (DESIGN 4.5): `⌊Σ values / count⌋`, summed in 256 bits.
/// Returns `None` for no values.
pub fn mean(values: &[Wad]) -> Option<Wad> {
    if values.is_empty() {
        return None;
    }
    let sum = values.iter().fold(U256::ZERO, |sum, v| sum + U256::from(v.raw()));
    let count = U256::from(values.len());
    // The mean never exceeds the largest value, so it always fits in u128.
    Some(Wad::from_raw((sum / count).saturating_to::<u128>()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::venue::Venue;
    use proptest::prelude::*;

    fn w(s: &str) -> Wad {
        Wad::parse(s).unwrap()
    }

    fn trade(id: u32, price: &str, size: &str) -> Trade {
        Trade {
            venue: Venue::Coinbase,
            id: id.to_string(),
            time_ms: 1_000 + u64::from(id),
            price: w(price),
            size: w(size),
        }
    }

    #[test]
    fn weighted_median_of_nothing_is_none() {
        assert_eq!(venue_weighted_median(&[]), None);
        assert_eq!(venue_weighted_median(&[trade(1, "2500", "0")]), None);
    }

    #[test]
    fn weighted_median_of_one_trade_is_its_price() {
        assert_eq!(venue_weighted_median(&[trade(1, "2500.01", "0.001")]), Some(w("2500.01")));
    }

    #[test]
    fn weighted_median_takes_the_first_trade_reaching_half_the_volume() {
        // Sorted: 100 (1), 101 (1), 102 (3). Total 5: running 1, 2, 5 → 2·5 ≥ 5 at 102.
        let trades = [trade(1, "102", "3"), trade(2, "100", "1"), trade(3, "101", "1")];
        assert_eq!(venue_weighted_median(&trades), Some(w("102")));
        // Exactly half at a trade: 100 (1), 101 (1), 102 (2): 2·2 ≥ 4 at 101, the lower one.
        let trades = [trade(1, "102", "2"), trade(2, "100", "1"), trade(3, "101", "1")];
        assert_eq!(venue_weighted_median(&trades), Some(w("101")));
        // Two equal trades: the lower price carries exactly half.
        let trades = [trade(1, "200", "1"), trade(2, "100", "1")];
        assert_eq!(venue_weighted_median(&trades), Some(w("100")));
    }

    #[test]
    fn weighted_median_ignores_input_order_and_price_ties() {
        let mut trades = vec![
            trade(1, "100", "1"),
            trade(2, "101", "2"),
            trade(3, "101", "0.5"),
            trade(4, "101", "0.5"),
            trade(5, "105", "3"),
        ];
        let expected = venue_weighted_median(&trades);
        assert_eq!(expected, Some(w("101")));
        trades.reverse();
        assert_eq!(venue_weighted_median(&trades), expected);
        trades.swap(0, 3);
        assert_eq!(venue_weighted_median(&trades), expected);
    }

    #[test]
    fn weighted_median_ignores_zero_sizes_unless_all_are_zero() {
        let trades = [trade(1, "1", "0"), trade(2, "100", "1"), trade(3, "200", "0")];
        assert_eq!(venue_weighted_median(&trades), Some(w("100")));
    }

    #[test]
    fn weighted_median_does_not_overflow_on_huge_sizes() {
        let half = Wad::from_raw(u128::MAX / 2 + 1);
        let trades = [
            Trade { size: half, ..trade(1, "100", "0") },
            Trade { size: half, ..trade(2, "200", "0") },
            Trade { size: Wad::MAX, ..trade(3, "300", "0") },
        ];
        // Total ≈ 2·u128::MAX; running reaches half of it only at 200.
        assert_eq!(venue_weighted_median(&trades), Some(w("200")));
        let trades = [Trade { size: Wad::MAX, price: Wad::MAX, ..trade(1, "0", "0") }];
        assert_eq!(venue_weighted_median(&trades), Some(Wad::MAX));
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[w("7")]), Some(w("7")));
        assert_eq!(median(&[w("3"), w("1"), w("2")]), Some(w("2")));
        assert_eq!(median(&[w("4"), w("1"), w("3"), w("2")]), Some(w("2.5")));
        // Rounded down to the last of the 18 decimals.
        let odd_sum = [Wad::from_raw(1), Wad::from_raw(2)];
        assert_eq!(median(&odd_sum), Some(Wad::from_raw(1)));
        assert_eq!(median(&[w("5"), w("5")]), Some(w("5")));
    }

    #[test]
    fn median_of_values_near_the_top_does_not_overflow() {
        let a = Wad::from_raw(u128::MAX / 2);
        let b = Wad::from_raw(u128::MAX / 2 + 3);
        assert_eq!(median(&[b, a]), Some(Wad::from_raw(u128::MAX / 2 + 1)));
        assert_eq!(median(&[Wad::MAX, Wad::MAX]), Some(Wad::MAX));
        assert_eq!(median(&[Wad::ZERO, Wad::MAX]), Some(Wad::from_raw(u128::MAX / 2)));
    }

    #[test]
    fn settlement_value_is_the_median_of_node_values() {
        assert_eq!(settlement_value(&[]), None);
        let honest = [w("2718.5"), w("2718.6"), w("2718.7")];
        assert_eq!(settlement_value(&[honest[0], honest[1], honest[2], Wad::MAX]), Some(w("2718.65")));
        assert_eq!(settlement_value(&[Wad::ZERO, honest[0], honest[2]]), Some(honest[0]));
    }

    #[test]
    fn mean_rounds_down_and_does_not_overflow() {
        assert_eq!(mean(&[]), None);
        assert_eq!(mean(&[w("1"), w("2")]), Some(w("1.5")));
        let thirds = [Wad::from_raw(1), Wad::from_raw(1), Wad::from_raw(2)];
        assert_eq!(mean(&thirds), Some(Wad::from_raw(1)));
        assert_eq!(mean(&[Wad::MAX, Wad::MAX, Wad::MAX]), Some(Wad::MAX));
        assert_eq!(mean(&[Wad::MAX, Wad::from_raw(u128::MAX - 1)]), Some(Wad::from_raw(u128::MAX - 1)));
    }

    fn any_wad() -> impl Strategy<Value = Wad> {
        prop_oneof![
            Just(Wad::ZERO),
            Just(Wad::MAX),
            any::<u128>().prop_map(Wad::from_raw),
            // Realistic prices: 0.01 to 100 000 USD.
            (10u128.pow(16)..10u128.pow(23)).prop_map(Wad::from_raw),
        ]
    }

    proptest! {
        #[test]
        fn settlement_value_stays_within_the_honest_values(
            honest in prop::collection::vec(any_wad(), 1..12),
            adversarial in prop::collection::vec(any_wad(), 0..12),
            seed in any::<u64>(),
        ) {
            // At most f arbitrary values among n ≥ 2f + 1: honest ≥ f + 1.
            let f = adversarial.len().min(honest.len() - 1);
            let mut values: Vec<Wad> = honest.iter().chain(&adversarial[..f]).copied().collect();
            let n = values.len();
            values.rotate_left(seed as usize % n);
            let v = settlement_value(&values).unwrap();
            prop_assert!(*honest.iter().min().unwrap() <= v, "{v} below honest {honest:?}");
            prop_assert!(v <= *honest.iter().max().unwrap(), "{v} above honest {honest:?}");
        }

        #[test]
        fn median_lies_within_min_and_max(values in prop::collection::vec(any_wad(), 1..20)) {
            let m = median(&values).unwrap();
            prop_assert!(*values.iter().min().unwrap() <= m && m <= *values.iter().max().unwrap());
        }

        #[test]
        fn mean_lies_within_min_and_max(values in prop::collection::vec(any_wad(), 1..20)) {
            let m = mean(&values).unwrap();
            prop_assert!(*values.iter().min().unwrap() <= m && m <= *values.iter().max().unwrap());
        }

        #[test]
        fn weighted_median_is_a_traded_price(
            pairs in prop::collection::vec((any_wad(), any_wad()), 1..30),
        ) {
            let trades: Vec<Trade> = pairs
                .iter()
                .enumerate()
                .map(|(i, &(price, size))| Trade { price, size, ..trade(i as u32, "0", "0") })
                .collect();
            match venue_weighted_median(&trades) {
                None => prop_assert!(trades.iter().all(|t| t.size.is_zero())),
                Some(p) => {
                    prop_assert!(trades.iter().any(|t| t.price == p && !t.size.is_zero()));
                    // At least half the volume at or below p, and less than half strictly below.
                    let sum = |keep: &dyn Fn(&Trade) -> bool| {
                        trades.iter().filter(|t| keep(t)).fold(U256::ZERO, |s, t| s + U256::from(t.size.raw()))
                    };
                    let total = sum(&|_| true);
                    let at_or_below = sum(&|t| t.price <= p);
                    let below = sum(&|t| t.price < p);
                    prop_assert!(at_or_below + at_or_below >= total);
                    prop_assert!(below + below < total);
                }
            }
        }
    }
}
