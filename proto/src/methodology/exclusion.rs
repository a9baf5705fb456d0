//! Dropping a venue for the whole window (DESIGN 4.4).

use alloy_primitives::U256;

use super::median::median;
use crate::types::observation::Exclusion;
use crate::types::settlement::MethodologyParams;
use crate::types::venue::Venue;
use crate::value::Wad;

/// What the exclusion rules look at for one venue that traded in the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VenueSummary {
    pub venue: Venue,
    /// Partitions in which the venue has at least one trade.
    pub traded_partitions: u16,
    /// The venue's [`venue_weighted_median`](super::venue_weighted_median) over all its trades
    /// in the window.
    pub window_median: Wad,
}

/// The distance of `value` from `reference` in basis points, **rounded up**:
/// `⌈|value − reference| · 10 000 / reference⌉`, computed in 256 bits.
///
/// Rounding up makes "`deviation_bp > max`" hold exactly when the true deviation is more than
/// `max` basis points (DESIGN 4.4 says "more than 5%"): a venue 5.004% away reports 501 and is
/// dropped at `max = 500`, one exactly 5% away reports 500 and stays. The result saturates at
/// `u64::MAX`. A zero reference (impossible after cleaning, as prices are positive) gives 0
/// for a zero value and `u64::MAX` otherwise.
pub fn deviation_bp(value: Wad, reference: Wad) -> u64 {
    let diff = U256::from(value.abs_diff(reference).raw());
    if reference.is_zero() {
        return if diff.is_zero() { 0 } else { u64::MAX };
    }
    diff.saturating_mul(U256::from(10_000u64)).div_ceil(U256::from(reference.raw())).saturating_to::<u64>()
}

/// Which venues to drop for the whole window, aligned with `venues`; `None` keeps the venue.
///
/// One pass, two rules, in this order:
/// 1. **Partition count.** A venue that traded in fewer than half the partitions
///    (`2 · traded < partitions`) is dropped with [`Exclusion::TooFewPartitions`]. It goes first
///    so that a venue that barely traded does not shift the reference of rule 2.
/// 2. **Deviation.** The cross-venue median `m` is the [`median`] of the window medians of the
///    venues that passed rule 1 (each venue's own median included). A venue whose window median
///    `v` has [`deviation_bp`]`(v, m) > max_venue_deviation_bp` is dropped with
///    [`Exclusion::Deviation`].
///
/// `m` is computed once: the survivors are not checked again against a median of the
/// survivors, so the outcome never depends on an iteration order and a single outlier cannot
/// start a cascade. Two venues share a midpoint and are equally far from it, so they are kept or
/// dropped together; one venue is always its own median and is never dropped by rule 2.
pub fn venue_exclusions(params: &MethodologyParams, venues: &[VenueSummary]) -> Vec<Option<Exclusion>> {
    let mut excluded: Vec<Option<Exclusion>> = venues
        .iter()
        .map(|v| {
            (u32::from(v.traded_partitions) * 2 < u32::from(params.partitions)).then_some(
                Exclusion::TooFewPartitions { traded: v.traded_partitions, partitions: params.partitions },
            )
        })
        .collect();
    let medians: Vec<Wad> =
        venues.iter().zip(&excluded).filter(|(_, e)| e.is_none()).map(|(v, _)| v.window_median).collect();
    let Some(cross_venue_median) = median(&medians) else {
        return excluded;
    };
    for (v, e) in venues.iter().zip(excluded.iter_mut()) {
        if e.is_some() {
            continue;
        }
        let deviation = deviation_bp(v.window_median, cross_venue_median);
        if deviation > u64::from(params.max_venue_deviation_bp) {
            *e = Some(Exclusion::Deviation {
                venue_median: v.window_median,
                cross_venue_median,
                deviation_bp: deviation,
            });
        }
    }
    excluded
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Wad {
        Wad::parse(s).unwrap()
    }

    fn summary(venue: Venue, traded_partitions: u16, window_median: &str) -> VenueSummary {
        VenueSummary { venue, traded_partitions, window_median: w(window_median) }
    }

    #[test]
    fn deviation_is_rounded_up_and_saturates() {
        assert_eq!(deviation_bp(w("2500"), w("2500")), 0);
        assert_eq!(deviation_bp(w("2625"), w("2500")), 500);
        assert_eq!(deviation_bp(w("2375"), w("2500")), 500);
        assert_eq!(deviation_bp(w("2625.0001"), w("2500")), 501);
        assert_eq!(deviation_bp(Wad::from_raw(2_500 * 10u128.pow(18) + 1), w("2500")), 1);
        assert_eq!(deviation_bp(Wad::MAX, Wad::from_raw(1)), u64::MAX);
        assert_eq!(deviation_bp(Wad::ZERO, w("2500")), 10_000);
        assert_eq!(deviation_bp(Wad::ZERO, Wad::ZERO), 0);
        assert_eq!(deviation_bp(w("1"), Wad::ZERO), u64::MAX);
    }

    #[test]
    fn keeps_venues_that_agree() {
        let venues = [
            summary(Venue::Coinbase, 12, "2500"),
            summary(Venue::Kraken, 6, "2501"),
            summary(Venue::Bitstamp, 12, "2499"),
        ];
        assert_eq!(venue_exclusions(&MethodologyParams::default(), &venues), [None, None, None]);
    }

    #[test]
    fn drops_a_venue_that_traded_in_fewer_than_half_the_partitions() {
        let venues = [summary(Venue::Coinbase, 5, "2500"), summary(Venue::Kraken, 6, "2500")];
        assert_eq!(
            venue_exclusions(&MethodologyParams::default(), &venues),
            [Some(Exclusion::TooFewPartitions { traded: 5, partitions: 12 }), None]
        );
    }

    #[test]
    fn drops_a_venue_more_than_the_maximum_from_the_cross_venue_median() {
        let venues = [
            summary(Venue::Coinbase, 12, "2500"),
            summary(Venue::Kraken, 12, "2625"),      // exactly 5%: kept
            summary(Venue::Bitstamp, 12, "2374.99"), // just over 5%: dropped
        ];
        assert_eq!(
            venue_exclusions(&MethodologyParams::default(), &venues),
            [
                None,
                None,
                Some(Exclusion::Deviation {
                    venue_median: w("2374.99"),
                    cross_venue_median: w("2500"),
                    deviation_bp: 501,
                })
            ]
        );
    }

    #[test]
    fn the_partition_rule_goes_first_and_its_venues_do_not_move_the_reference() {
        // With Gemini counted the median would be (2500 + 2700) / 2 = 2600 and nobody is
        // more than 5% off it. Without it, the median is 2500 and Kraken is 8% off.
        let venues = [
            summary(Venue::Coinbase, 12, "2500"),
            summary(Venue::Kraken, 12, "2700"),
            summary(Venue::Bitstamp, 12, "2490"),
            summary(Venue::Gemini, 1, "2800"),
        ];
        let excluded = venue_exclusions(&MethodologyParams::default(), &venues);
        assert_eq!(excluded[0], None);
        assert_eq!(
            excluded[1],
            Some(Exclusion::Deviation {
                venue_median: w("2700"),
                cross_venue_median: w("2500"),
                deviation_bp: 800,
            })
        );
        assert_eq!(excluded[2], None);
        assert_eq!(excluded[3], Some(Exclusion::TooFewPartitions { traded: 1, partitions: 12 }));
    }

    #[test]
    fn exclusion_is_one_pass() {
        // m = (2440 + 2575) / 2 = 2507.5: Coinbase is 60% off and dropped, Kraken 2.7% off and
        // kept. A second pass over the survivors (m = 2575) would drop Kraken too; there is none.
        let venues = [
            summary(Venue::Coinbase, 12, "1000"),
            summary(Venue::Kraken, 12, "2440"),
            summary(Venue::Bitstamp, 12, "2575"),
            summary(Venue::Gemini, 12, "2600"),
        ];
        let excluded = venue_exclusions(&MethodologyParams::default(), &venues);
        let dropped: Vec<bool> = excluded.iter().map(Option::is_some).collect();
        assert_eq!(dropped, [true, false, false, false]);
        assert!(matches!(
            excluded[0],
            Some(Exclusion::Deviation { cross_venue_median, .. }) if cross_venue_median == w("2507.5")
        ));
        assert_eq!(deviation_bp(w("2440"), w("2575")), 525);
    }

    #[test]
    fn two_far_apart_venues_are_dropped_together_and_one_venue_never_is() {
        let params = MethodologyParams::default();
        let two = [summary(Venue::Coinbase, 12, "2000"), summary(Venue::Kraken, 12, "3000")];
        assert!(venue_exclusions(&params, &two).iter().all(Option::is_some));
        let one = [summary(Venue::Coinbase, 12, "2000")];
        assert_eq!(venue_exclusions(&params, &one), [None]);
        assert_eq!(venue_exclusions(&params, &[]), []);
    }
}
