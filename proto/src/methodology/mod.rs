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
//!                      (counts iff ≥ min_venues venues traded in it)
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
//!    in it; the median of their values, an even count rounding the midpoint down.
//! 6. **Node value** ([`mean`]): `⌊Σ counted / counted⌋` when `counted ≥ min_partitions`, else
//!    [`NoValueReason::TooFewPartitions`]; [`NoValueReason::NoVenues`] when no venue traded or
//!    every venue was dropped.
//! 7. **Settlement value** ([`settlement_value`]): the median of the node values, rounding as in
//!    step 5.

mod exclusion;
mod median;
mod trades;

pub use exclusion::{VenueSummary, deviation_bp, venue_exclusions};
pub use median::{mean, median, settlement_value, venue_weighted_median};
pub use trades::{Window, clean_trades, trade_digest};

use crate::types::observation::{Computation, NoValueReason, NodeValue, VenueReport};
use crate::types::settlement::{ParamsError, SettlementSpec};
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

    let partitions: Vec<Option<Wad>> = (0..usize::from(params.partitions))
        .map(|k| {
            let venue_values: Vec<Wad> =
                surviving.iter().filter_map(|a| median::weighted_median(a.partitions[k].clone())).collect();
            if venue_values.len() >= usize::from(params.min_venues) { median(&venue_values) } else { None }
        })
        .collect();

    let counted: Vec<Wad> = partitions.iter().flatten().copied().collect();
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
        assert_eq!(c.partitions, vec![Some(w("2500.015")); 12]);
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
        assert_eq!(c.partitions[0], Some(Wad::from_raw(w("2500.01").raw() + 1)));
        assert_eq!(c.value, NodeValue::Value(w("2500.01")));
    }

    #[test]
    fn no_trades_means_no_venues() {
        let c = compute(&spec(), &[]).unwrap();
        assert_eq!(c.value, NodeValue::NoValue(NoValueReason::NoVenues));
        assert_eq!(c.partitions, vec![None; 12]);
        assert!(c.venues.is_empty());
        let outside = [trade(Venue::Coinbase, 12, 0, "2500", "1")];
        assert_eq!(compute(&spec(), &outside).unwrap().value, NodeValue::NoValue(NoValueReason::NoVenues));
    }

    #[test]
    fn a_partition_counts_only_with_min_venues() {
        let mut trades = steady(&[Venue::Coinbase, Venue::Kraken, Venue::Bitstamp], 2500);
        // Bitstamp silent in partitions 9, 10, 11: those have 2 venues and do not count.
        trades.retain(|t| !(t.venue == Venue::Bitstamp && partition(t) >= 9));
        let c = compute(&spec(), &trades).unwrap();
        let counted: Vec<bool> = c.partitions.iter().map(Option::is_some).collect();
        assert_eq!(counted, [[true; 9].as_slice(), &[false; 3]].concat());
        assert_eq!(c.value, NodeValue::Value(w("2500.01")));
        // One more silent partition: 8 < 9.
        trades.retain(|t| !(t.venue == Venue::Bitstamp && partition(t) == 8));
        let c = compute(&spec(), &trades).unwrap();
        assert_eq!(c.value, NodeValue::NoValue(NoValueReason::TooFewPartitions { counted: 8, required: 9 }));
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
        // Two venues left: nothing counts.
        assert_eq!(c.value, NodeValue::NoValue(NoValueReason::TooFewPartitions { counted: 0, required: 9 }));
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
