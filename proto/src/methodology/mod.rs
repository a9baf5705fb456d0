//! The settlement methodology (DESIGN section 4): from raw venue trades to a node value, and from
//! node values to the settlement value. Pure integer functions; no I/O, no clock, no floats.
//!
//! ```text
//!  raw trades ──clean_trades──▶ cleaned trades ──trade_digest──▶ observation.trade_digest
//!                                   │
//!                 per venue: partitions traded, window-wide weighted median
//!                                   │
//!                        venue_exclusions (one pass)
//!                                   │
//!       per partition: weighted median per surviving venue ─▶ median across venues
//!                      (counts iff ≥ min_venues venues traded in it, or, for at most
//!                       max_two_venue_partitions, two venues that agree: their mean)
//!                                   │
//!        node value = ⌊mean of counted partitions⌋ if ≥ min_partitions, else no value
//!                                   │
//!   (proposal)  settlement value = median of the node values (settlement_value)
//! ```
//!
//! Every step, with its rounding:
//! 1. **Clean** ([`clean_trades`]): drop trades with a zero price or size, trades outside
//!    `(M − W, M]` (times in ms: keep iff `(M − W)·1000 < time_ms ≤ M·1000`), and repeated
//!    `(venue, id)` pairs (keep the first in canonical order). No rounding.
//! 2. **Partition** ([`Window`]): partition `k`, oldest first, is
//!    `((M − W + k·L)·1000, (M − W + (k+1)·L)·1000]` with `L = W / partitions` (exact, since
//!    `partitions` divides `W`).
//! 3. **Exclude venues** ([`venue_exclusions`]): first the partition-count rule
//!    (`2 · traded < partitions` drops), then the deviation rule against the median of the window
//!    medians of the venues that passed the first rule ([`deviation_bp`] rounds up, so a venue is
//!    dropped exactly when it is more than `max_venue_deviation_bp` away). One pass.
//! 4. **Venue value per partition** ([`venue_weighted_median`]): always a traded price, no
//!    rounding.
//! 5. **Partition value** ([`median`]): counts iff at least `min_venues` surviving venues traded
//!    in it; the median of their values, an even count rounding the midpoint down. A partition
//!    with exactly two venues may count under the two-venue rule (below).
//! 6. **Node value** ([`mean`]): `⌊Σ counted / counted⌋` when `counted ≥ min_partitions`, else
//!    [`NoValueReason::TooFewPartitions`]; [`NoValueReason::NoVenues`] when no venue traded or
//!    every venue was dropped.
//! 7. **Settlement value** ([`settlement_value`]): the median of the node values, rounding as in
//!    step 5.
//!
//! Each partition of the observation records how many surviving venues traded in it, its value
//! if it counted, and whether it counted under the two-venue rule
//! ([`Partition`](crate::types::observation::Partition)).
//!
//! # The two-venue rule: availability during an outage, integrity against one survivor
//! Exchanges go down when markets move. With the default `min_venues = 3`, two of four venues
//! silent for a quarter of an hour leave three partitions with two venues, which do not count;
//! the mean of the other nine then drifts with the trend of the hour (on the month's worst hour
//! of the reference data, 2025-06-21 20:31–21:31, by −16 to +49 bp depending on which quarter is
//! silent). Pooling the survivors' trades, clamping each venue to the median, or filling the gap
//! from the next minute, as published indices do, either keep that drift or give one venue far
//! more sway (pooling lets one venue move the value 21–43 bp).
//!
//! So a partition in which **exactly two** surviving venues traded (when `min_venues > 2`)
//! counts, with the mean of the two venues' medians `⌊(a + b) / 2⌋`, under two conditions:
//! - **they agree**: [`deviation_bp`]`(max(a, b), min(a, b)) ≤ two_venue_agreement_bp`
//!   (default 50), the distance measured from the lower and rounded up;
//! - **the cap**: at most `max_two_venue_partitions` (default 3) partitions of the window count
//!   this way, the oldest first; later two-venue partitions do not count, as before the rule.
//!   0 turns the rule off.
//!
//! Partitions with `min_venues` or more venues, and `min_partitions`, are unchanged, and so is
//! the window-wide exclusion, which runs first (a venue silent 15 minutes of 60 still traded in
//! 9 of 12 partitions and is kept).
//!
//! **What one dishonest survivor can do.** Let the two silent venues be honest and the window's
//! other partitions count normally. A survivor that pushes its median away from the honest one's
//! `a` can move a two-venue partition at most to `⌊(a + a·(1 + t)) / 2⌋`, half the tolerance
//! `t = two_venue_agreement_bp` from `a` (pushed further, the partition does not count at all,
//! which is the rule before this one). The honest partition, the mean of `a` and the liar's
//! honest median, is itself within `d/2` of `a`, where `d` is how far two honest venues sit
//! apart (a few bp). Only `c = max_two_venue_partitions` partitions count this way, so over `N`
//! counted partitions the node value moves by at most `c · (t + d) / (2N)`: with the defaults and
//! all 12 partitions counting, `3 · 50 / 24 = 6.25` bp, **about t/8** (plus `d/8`). With 9
//! partitions counting, `t/6`. Without an outage the rule never applies: one venue crashing or
//! pushed moves the value exactly as before. `proto/tests/it/outages.rs` checks all three on
//! replayed windows of real data.

mod exclusion;
mod median;
mod trades;

pub use exclusion::{VenueSummary, deviation_bp, venue_exclusions};
pub use median::{mean, median, settlement_value, venue_weighted_median};
pub use trades::{Window, clean_trades, trade_digest};

use crate::types::observation::{Computation, NoValueReason, NodeValue, Partition, VenueReport};
use crate::types::settlement::{MethodologyParams, ParamsError, SettlementSpec};
use crate::types::venue::{Trade, Venue};
use crate::value::Wad;

/// Why the methodology cannot run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MethodologyError {
    /// The settlement's parameters are inconsistent, so the window cannot be partitioned.
    #[error(
        "invalid methodology parameters: {0}; fix `params` in the settlement spec (or the genesis \
         defaults it came from) — no node can compute a value for it as it stands"
    )]
    InvalidParams(#[from] ParamsError),
}

/// One venue's cleaned trades in the window, bucketed by partition.
struct VenueActivity {
    venue: Venue,
    trades: usize,
    /// `(price, size)` per partition, `params.partitions` buckets.
    partitions: Vec<Vec<(Wad, Wad)>>,
    summary: VenueSummary,
}

impl VenueActivity {
    /// `trades` are one venue's cleaned trades, all inside `window`.
    fn new(window: &Window, venue: Venue, trades: &[Trade]) -> Self {
        let mut partitions = vec![Vec::new(); usize::from(window.partitions())];
        for t in trades {
            if let Some(k) = window.partition_of(t.time_ms) {
                partitions[usize::from(k)].push((t.price, t.size));
            }
        }
        let traded = partitions.iter().filter(|p| !p.is_empty()).count();
        // Cleaned trades have positive sizes and at least one exists, so this is `Some`.
        let window_median = median::weighted_median(partitions.concat()).unwrap_or(Wad::ZERO);
        VenueActivity {
            venue,
            trades: trades.len(),
            partitions,
            summary: VenueSummary {
                venue,
                traded_partitions: u16::try_from(traded).unwrap_or(u16::MAX),
                window_median,
            },
        }
    }
}

/// Why an observation's computation does not follow from its own partitions.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PartitionsError {
    #[error("it has {have} partitions; the settlement's parameters have {need}")]
    PartitionCount { have: usize, need: u16 },
    #[error("partition {k} counts with {venues} venues, fewer than min_venues {min_venues}")]
    TooFewVenues { k: usize, venues: u16, min_venues: u16 },
    #[error("partition {k} is marked two_venue but has {venues} venues, or min_venues is 2 or less")]
    NotTwoVenues { k: usize, venues: u16 },
    #[error("partition {k} is marked two_venue but does not count")]
    TwoVenueUncounted { k: usize },
    #[error("{used} partitions count under the two-venue rule, more than its cap of {cap}")]
    OverTheCap { used: usize, cap: u16 },
    #[error("its value is {signed:?}, but its partitions give {recomputed:?}")]
    WrongValue { signed: NodeValue, recomputed: NodeValue },
}

/// Checks that an observation's value follows from its own partitions under `params`: each
/// counted partition had `min_venues` venues, or two under the two-venue rule within its cap,
/// and the value is the mean of the counted ones (or the reason there is none). What it cannot
/// check without the trades: the partition values themselves, and that two-venue partitions'
/// venues agreed (only their mean is recorded); those are what the trade digest and a dispute
/// are for. `fixd verify` runs it on every observation of a proof bundle.
pub fn check_partitions(params: &MethodologyParams, c: &Computation) -> Result<(), PartitionsError> {
    if c.partitions.len() != usize::from(params.partitions) {
        return Err(PartitionsError::PartitionCount { have: c.partitions.len(), need: params.partitions });
    }
    let mut used = 0;
    for (k, p) in c.partitions.iter().enumerate() {
        match (p.value, p.two_venue) {
            (None, true) => return Err(PartitionsError::TwoVenueUncounted { k }),
            (Some(_), true) if p.venues != 2 || params.min_venues <= 2 => {
                return Err(PartitionsError::NotTwoVenues { k, venues: p.venues });
            }
            (Some(_), true) => used += 1,
            (Some(_), false) if p.venues < params.min_venues => {
                return Err(PartitionsError::TooFewVenues {
                    k,
                    venues: p.venues,
                    min_venues: params.min_venues,
                });
            }
            _ => {}
        }
    }
    if used > usize::from(params.max_two_venue_partitions) {
        return Err(PartitionsError::OverTheCap { used, cap: params.max_two_venue_partitions });
    }
    let counted: Vec<Wad> = c.partitions.iter().filter_map(|p| p.value).collect();
    let recomputed = match mean(&counted) {
        _ if c.venues.iter().all(|v| v.excluded.is_some()) => NodeValue::NoValue(NoValueReason::NoVenues),
        Some(v) if counted.len() >= usize::from(params.min_partitions) => NodeValue::Value(v),
        _ => NodeValue::NoValue(NoValueReason::TooFewPartitions {
            counted: u16::try_from(counted.len()).unwrap_or(u16::MAX),
            required: params.min_partitions,
        }),
    };
    if recomputed != c.value {
        return Err(PartitionsError::WrongValue { signed: c.value.clone(), recomputed });
    }
    Ok(())
}

/// Whether two venues' partition medians agree closely enough for the two-venue rule:
/// [`deviation_bp`] of the higher from the lower (rounded up) is at most
/// `two_venue_agreement_bp`.
pub fn two_venues_agree(params: &MethodologyParams, a: Wad, b: Wad) -> bool {
    deviation_bp(a.max(b), a.min(b)) <= u64::from(params.two_venue_agreement_bp)
}

/// Runs the methodology on one node's raw trades for `spec`.
///
/// `trades` may be in any order and contain junk, repeats and trades from outside the window;
/// [`clean_trades`] removes them first, so the result depends only on the set of trades. See the
/// module docs for every step and its rounding. The observation's trade digest is
/// [`trade_digest`]`(&`[`clean_trades`]`(spec, trades))`.
///
/// # Errors
/// [`MethodologyError::InvalidParams`] when `spec.params` fails
/// [`MethodologyParams::validate`](crate::types::settlement::MethodologyParams::validate).
pub fn compute(spec: &SettlementSpec, trades: &[Trade]) -> Result<Computation, MethodologyError> {
    let params = &spec.params;
    params.validate()?;
    let window = Window::new(spec);
    let cleaned = clean_trades(spec, trades);

    // Cleaned trades are sorted by venue first, in canonical venue order.
    let activity: Vec<VenueActivity> = cleaned
        .chunk_by(|a, b| a.venue == b.venue)
        .map(|chunk| VenueActivity::new(&window, chunk[0].venue, chunk))
        .collect();
    let summaries: Vec<VenueSummary> = activity.iter().map(|a| a.summary).collect();
    let exclusions = venue_exclusions(params, &summaries);
    let surviving: Vec<&VenueActivity> =
        activity.iter().zip(&exclusions).filter(|(_, e)| e.is_none()).map(|(a, _)| a).collect();

    let mut two_venue_left = params.max_two_venue_partitions;
    let partitions: Vec<Partition> = (0..usize::from(params.partitions))
        .map(|k| {
            let venue_values: Vec<Wad> =
                surviving.iter().filter_map(|a| median::weighted_median(a.partitions[k].clone())).collect();
            let venues = u16::try_from(venue_values.len()).unwrap_or(u16::MAX);
            if venues >= params.min_venues {
                return Partition { venues, value: median(&venue_values), two_venue: false };
            }
            let two_venue = venues == 2
                && params.min_venues > 2
                && two_venue_left > 0
                && two_venues_agree(params, venue_values[0], venue_values[1]);
            if two_venue {
                two_venue_left -= 1;
                return Partition { venues, value: median(&venue_values), two_venue };
            }
            Partition { venues, value: None, two_venue }
        })
        .collect();

    let counted: Vec<Wad> = partitions.iter().filter_map(|p| p.value).collect();
    let value = match mean(&counted) {
        _ if surviving.is_empty() => NodeValue::NoValue(NoValueReason::NoVenues),
        Some(v) if counted.len() >= usize::from(params.min_partitions) => NodeValue::Value(v),
        _ => NodeValue::NoValue(NoValueReason::TooFewPartitions {
            // At most `partitions`, a u16.
            counted: u16::try_from(counted.len()).unwrap_or(u16::MAX),
            required: params.min_partitions,
        }),
    };

    let venues = activity
        .iter()
        .zip(exclusions)
        .map(|(a, excluded)| VenueReport {
            venue: a.venue,
            trades: u32::try_from(a.trades).unwrap_or(u32::MAX),
            excluded,
        })
        .collect();
    Ok(Computation { partitions, venues, value })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::observation::Exclusion;
    use crate::types::settlement::{Index, MethodologyParams};

    const M: u64 = 1_750_000_000;

    fn spec() -> SettlementSpec {
        SettlementSpec { index: Index::EthUsd, maturity: M, params: MethodologyParams::default() }
    }

    fn w(s: &str) -> Wad {
        Wad::parse(s).unwrap()
    }

    /// One trade of `venue` in the middle of partition `k` of the default window.
    fn trade(venue: Venue, k: u64, n: u64, price: &str, size: &str) -> Trade {
        Trade {
            venue,
            id: format!("{k}-{n}"),
            time_ms: (M - 3600 + k * 300 + 150) * 1000 + n,
            price: w(price),
            size: w(size),
        }
    }

    /// The partition of a trade made by [`trade`].
    fn partition(t: &Trade) -> u64 {
        (t.time_ms / 1000 - (M - 3600)) / 300
    }

    /// Each partition's value, oldest first.
    fn values(c: &Computation) -> Vec<Option<Wad>> {
        c.partitions.iter().map(|p| p.value).collect()
    }

    /// The default parameters without the two-venue rule.
    fn without_two_venue_rule() -> SettlementSpec {
        SettlementSpec {
            params: MethodologyParams { max_two_venue_partitions: 0, ..MethodologyParams::default() },
            ..spec()
        }
    }

    /// Every venue trades `price` (plus its index in cents) once in every partition.
    fn steady(venues: &[Venue], price: u32) -> Vec<Trade> {
        let mut trades = Vec::new();
        for (i, &venue) in venues.iter().enumerate() {
            for k in 0..12 {
                trades.push(trade(venue, k, 0, &format!("{price}.0{i}"), "1"));
            }
        }
        trades
    }

    #[test]
    fn steady_venues_give_the_cross_venue_median() {
        let c = compute(&spec(), &steady(&Venue::ALL, 2500)).unwrap();
        // Venue values 2500.00, .01, .02, .03 → median (2500.01 + 2500.02) / 2 = 2500.015.
        assert_eq!(values(&c), vec![Some(w("2500.015")); 12]);
        assert!(c.partitions.iter().all(|p| p.venues == 4 && !p.two_venue));
        assert_eq!(c.value, NodeValue::Value(w("2500.015")));
        assert_eq!(c.venues.len(), 4);
        assert!(c.venues.iter().all(|v| v.trades == 12 && v.excluded.is_none()));
        let order: Vec<Venue> = c.venues.iter().map(|v| v.venue).collect();
        assert_eq!(order, Venue::ALL);
    }

    #[test]
    fn node_value_is_the_mean_of_partitions_rounded_down() {
        let mut trades = steady(&[Venue::Coinbase, Venue::Kraken, Venue::Bitstamp], 2500);
        // Partition 0 one wei higher on every venue: mean = 2500.01 + 1/12 wei → rounds down.
        for t in trades.iter_mut().filter(|t| partition(t) == 0) {
            t.price = Wad::from_raw(t.price.raw() + 1);
        }
        let c = compute(&spec(), &trades).unwrap();
        assert_eq!(c.partitions[0].value, Some(Wad::from_raw(w("2500.01").raw() + 1)));
        assert_eq!(c.value, NodeValue::Value(w("2500.01")));
    }

    #[test]
    fn no_trades_means_no_venues() {
        let c = compute(&spec(), &[]).unwrap();
        assert_eq!(c.value, NodeValue::NoValue(NoValueReason::NoVenues));
        assert_eq!(values(&c), vec![None; 12]);
        assert!(c.venues.is_empty());
        let outside = [trade(Venue::Coinbase, 12, 0, "2500", "1")];
        assert_eq!(compute(&spec(), &outside).unwrap().value, NodeValue::NoValue(NoValueReason::NoVenues));
    }

    #[test]
    fn a_partition_counts_only_with_min_venues() {
        let spec = without_two_venue_rule();
        let mut trades = steady(&[Venue::Coinbase, Venue::Kraken, Venue::Bitstamp], 2500);
        // Bitstamp silent in partitions 9, 10, 11: those have 2 venues and do not count.
        trades.retain(|t| !(t.venue == Venue::Bitstamp && partition(t) >= 9));
        let c = compute(&spec, &trades).unwrap();
        let counted: Vec<bool> = c.partitions.iter().map(|p| p.value.is_some()).collect();
        assert_eq!(counted, [[true; 9].as_slice(), &[false; 3]].concat());
        let venues: Vec<u16> = c.partitions.iter().map(|p| p.venues).collect();
        assert_eq!(venues, [[3; 9].as_slice(), &[2; 3]].concat());
        assert_eq!(c.value, NodeValue::Value(w("2500.01")));
        // One more silent partition: 8 < 9.
        trades.retain(|t| !(t.venue == Venue::Bitstamp && partition(t) == 8));
        let c = compute(&spec, &trades).unwrap();
        assert_eq!(c.value, NodeValue::NoValue(NoValueReason::TooFewPartitions { counted: 8, required: 9 }));
    }

    /// Coinbase and Kraken trade `price` and `price · (1 + bp)` in every partition; Bitstamp
    /// and Gemini trade 2500 except in `silent` partitions.
    fn outage(silent: &[u64], bp: u32) -> Vec<Trade> {
        let mut trades = Vec::new();
        for k in 0..12 {
            trades.push(trade(Venue::Coinbase, k, 0, "2500", "1"));
            let kraken = Wad::from_raw(w("2500").raw() * (10_000 + u128::from(bp)) / 10_000);
            trades.push(Trade { price: kraken, ..trade(Venue::Kraken, k, 0, "1", "1") });
            if !silent.contains(&k) {
                trades.push(trade(Venue::Bitstamp, k, 0, "2500", "1"));
                trades.push(trade(Venue::Gemini, k, 0, "2500", "1"));
            }
        }
        trades
    }

    #[test]
    fn two_agreeing_venues_count_up_to_the_cap_oldest_first() {
        // Four partitions with two venues (10 bp apart); the cap of 3 takes 2, 5 and 7, not 9.
        let c = compute(&spec(), &outage(&[2, 5, 7, 9], 10)).unwrap();
        let two_venue: Vec<u64> = (0..12).filter(|&k| c.partitions[k as usize].two_venue).collect();
        assert_eq!(two_venue, [2, 5, 7]);
        // The mean of 2500 and 2502.5, and the median of four venues elsewhere.
        for k in [2, 5, 7] {
            assert_eq!(c.partitions[k], Partition { venues: 2, value: Some(w("2501.25")), two_venue: true });
        }
        assert_eq!(c.partitions[9], Partition { venues: 2, value: None, two_venue: false });
        assert_eq!(c.partitions[0], Partition { venues: 4, value: Some(w("2500")), two_venue: false });
        // (8 · 2500 + 3 · 2501.25) / 11.
        let eleven = (8 * w("2500").raw() + 3 * w("2501.25").raw()) / 11;
        assert_eq!(c.value, NodeValue::Value(Wad::from_raw(eleven)));
        // Without the rule, 8 partitions count: no value.
        assert_eq!(
            compute(&without_two_venue_rule(), &outage(&[2, 5, 7, 9], 10)).unwrap().value,
            NodeValue::NoValue(NoValueReason::TooFewPartitions { counted: 8, required: 9 })
        );
    }

    #[test]
    fn two_venues_count_only_within_the_tolerance() {
        // Exactly 50 bp apart: counts. 51 bp: it does not.
        let at = compute(&spec(), &outage(&[9, 10, 11], 50)).unwrap();
        assert!(at.partitions[9..].iter().all(|p| p.two_venue && p.value == Some(w("2506.25"))));
        let over = compute(&spec(), &outage(&[9, 10, 11], 51)).unwrap();
        assert!(over.partitions[9..].iter().all(|p| !p.two_venue && p.value.is_none() && p.venues == 2));
        assert_eq!(over.value, NodeValue::Value(w("2500")));
        assert!(two_venues_agree(&MethodologyParams::default(), w("2512.5"), w("2500")));
        assert!(!two_venues_agree(&MethodologyParams::default(), w("2500"), w("2512.500000000000000001")));
    }

    #[test]
    fn an_observations_value_follows_from_its_partitions() {
        let params = MethodologyParams::default();
        for trades in [outage(&[2, 5, 7, 9], 10), outage(&[9, 10, 11], 51), steady(&Venue::ALL, 2500), vec![]]
        {
            let c = compute(&spec(), &trades).unwrap();
            assert_eq!(check_partitions(&params, &c), Ok(()), "{c:?}");
        }
        let good = compute(&spec(), &outage(&[2, 5, 7, 9], 10)).unwrap();
        let mut c = good.clone();
        c.partitions[9].two_venue = true;
        assert_eq!(check_partitions(&params, &c), Err(PartitionsError::TwoVenueUncounted { k: 9 }));
        c.partitions[9].value = Some(w("2501.25"));
        assert_eq!(check_partitions(&params, &c), Err(PartitionsError::OverTheCap { used: 4, cap: 3 }));
        let mut c = good.clone();
        c.partitions[9].value = Some(w("2501.25"));
        assert_eq!(
            check_partitions(&params, &c),
            Err(PartitionsError::TooFewVenues { k: 9, venues: 2, min_venues: 3 })
        );
        let mut c = good.clone();
        c.value = NodeValue::Value(w("2600"));
        assert!(matches!(check_partitions(&params, &c), Err(PartitionsError::WrongValue { .. })));
        let mut c = good;
        c.partitions.pop();
        assert_eq!(
            check_partitions(&params, &c),
            Err(PartitionsError::PartitionCount { have: 11, need: 12 })
        );
    }

    #[test]
    fn the_rule_needs_exactly_two_venues_and_min_venues_above_two() {
        // One venue left in a partition never counts.
        let mut trades = outage(&[11], 10);
        trades.retain(|t| !(t.venue == Venue::Kraken && partition(t) == 11));
        let c = compute(&spec(), &trades).unwrap();
        assert_eq!(c.partitions[11], Partition { venues: 1, value: None, two_venue: false });
        // With min_venues = 2, two venues count under the ordinary rule, without using the cap.
        let two = SettlementSpec {
            params: MethodologyParams { min_venues: 2, ..MethodologyParams::default() },
            ..spec()
        };
        let c = compute(&two, &outage(&[0, 1, 2, 3, 4], 10)).unwrap();
        assert!(c.partitions[..5].iter().all(|p| p.value == Some(w("2501.25")) && !p.two_venue));
    }

    #[test]
    fn excluded_venues_are_reported_and_not_used() {
        let mut trades = steady(&Venue::ALL, 2500);
        for t in trades.iter_mut().filter(|t| t.venue == Venue::Gemini) {
            t.price = w("1750");
        }
        // Kraken trades in only 5 of 12 partitions.
        trades.retain(|t| t.venue != Venue::Kraken || partition(t) < 5);
        let c = compute(&spec(), &trades).unwrap();
        let kraken = &c.venues[1];
        assert_eq!((kraken.venue, kraken.trades), (Venue::Kraken, 5));
        assert_eq!(kraken.excluded, Some(Exclusion::TooFewPartitions { traded: 5, partitions: 12 }));
        // Cross-venue median of Coinbase, Bitstamp, Gemini: 2500.00.
        assert_eq!(
            c.venues[3].excluded,
            Some(Exclusion::Deviation {
                venue_median: w("1750"),
                cross_venue_median: w("2500"),
                deviation_bp: 3000,
            })
        );
        // Two venues left: only the two-venue rule's 3 partitions count, short of 9.
        assert_eq!(c.value, NodeValue::NoValue(NoValueReason::TooFewPartitions { counted: 3, required: 9 }));
        let two = SettlementSpec {
            params: MethodologyParams { min_venues: 2, ..MethodologyParams::default() },
            ..spec()
        };
        assert_eq!(compute(&two, &trades).unwrap().value, NodeValue::Value(w("2500.01")));
    }

    #[test]
    fn all_venues_dropped_means_no_venues() {
        let trades = [trade(Venue::Coinbase, 0, 0, "2500", "1"), trade(Venue::Kraken, 0, 0, "2500", "1")];
        let c = compute(&spec(), &trades).unwrap();
        assert_eq!(c.value, NodeValue::NoValue(NoValueReason::NoVenues));
        assert_eq!(c.venues.len(), 2);
        assert!(c.venues.iter().all(|v| v.excluded.is_some()));
    }

    #[test]
    fn the_result_ignores_order_duplicates_and_junk() {
        let trades = steady(&Venue::ALL, 2500);
        let expected = compute(&spec(), &trades).unwrap();
        let mut noisy: Vec<Trade> = trades.iter().rev().cloned().collect();
        noisy.extend(trades.iter().take(7).cloned());
        noisy.push(Trade { price: Wad::ZERO, id: "junk".into(), ..trades[0].clone() });
        noisy.push(Trade { time_ms: M * 1000 + 1, id: "late".into(), ..trades[0].clone() });
        assert_eq!(compute(&spec(), &noisy).unwrap(), expected);
        assert_eq!(
            trade_digest(&clean_trades(&spec(), &noisy)),
            trade_digest(&clean_trades(&spec(), &trades))
        );
    }

    #[test]
    fn invalid_params_are_an_error_that_says_what_to_fix() {
        let bad = SettlementSpec {
            params: MethodologyParams { partitions: 7, ..MethodologyParams::default() },
            ..spec()
        };
        let err = compute(&bad, &[]).unwrap_err();
        assert_eq!(
            err,
            MethodologyError::InvalidParams(ParamsError::UnevenWindow { window_secs: 3600, partitions: 7 })
        );
        assert!(err.to_string().contains("fix `params`"), "{err}");
    }
}
