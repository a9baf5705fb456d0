//! Venue outages and the two-venue rule (issue 20), on replayed windows of real market data:
//! the committed fixture (2025-06-12 14:00–18:00 UTC, the start of a −12% slide) and the
//! month's worst hour (2025-06-21 19:30–22:30 UTC, `proto/fixtures/ethusd_2025-06-21_1930_2230.csv`),
//! each spread over four venues by `fixd_proto::replay`.
//!
//! For every window tested, the value with an outage is compared with the value of the same
//! window without it, under the rule (default parameters) and under the rule before it
//! (`max_two_venue_partitions = 0`). The worst case of each kind prints under
//! `cargo test -p fixd-proto --test it outages -- --nocapture`.

use fixd_proto::methodology::{compute, venue_weighted_median};
use fixd_proto::replay::{Bar, PROFILES, fixture_bars, parse_bars, replay};
use fixd_proto::types::settlement::{Index, MethodologyParams, SettlementSpec};
use fixd_proto::types::venue::{Trade, Venue};
use fixd_proto::value::Wad;

const WORST_HOUR_CSV: &str = include_str!("../../fixtures/ethusd_2025-06-21_1930_2230.csv");

/// A market to replay, and the maturities of the windows tested on it.
struct Market {
    name: &'static str,
    bars: Vec<Bar>,
    maturities: Vec<u64>,
}

/// Every window that fits in each fixture, `step` seconds apart.
fn markets(step: u64) -> Vec<Market> {
    [("2025-06-12", fixture_bars()), ("2025-06-21", parse_bars(WORST_HOUR_CSV).unwrap())]
        .into_iter()
        .map(|(name, bars)| {
            let (first, last) = (bars[0].start, bars[bars.len() - 1].start + 60);
            let maturities = (first + 3600..=last).step_by(step as usize).collect();
            Market { name, bars, maturities }
        })
        .collect()
}

fn spec(maturity: u64, params: MethodologyParams) -> SettlementSpec {
    SettlementSpec { index: Index::EthUsd, maturity, params }
}

/// The rule before issue 20: two-venue partitions never count.
fn before_the_rule() -> MethodologyParams {
    MethodologyParams { max_two_venue_partitions: 0, ..MethodologyParams::default() }
}

fn value(spec: &SettlementSpec, trades: &[Trade]) -> Option<Wad> {
    compute(spec, trades).unwrap().value.value()
}

/// `|value − reference| / reference` in hundredths of a basis point, rounded up.
fn centi_bp(value: Wad, reference: Wad) -> u128 {
    (value.abs_diff(reference).raw() * 1_000_000).div_ceil(reference.raw())
}

fn bp(centi: u128) -> String {
    format!("{}.{:02} bp", centi / 100, centi % 100)
}

/// The trades of the window ending at `maturity` whose times in ms lie in `(from, to]`
/// seconds after the window starts: the partition convention, so a quarter-hour is exactly
/// three partitions.
fn in_span(t: &Trade, maturity: u64, from: u64, to: u64) -> bool {
    let start = (maturity - 3600) * 1000;
    start + from * 1000 < t.time_ms && t.time_ms <= start + to * 1000
}

/// The six pairs of venues.
fn pairs() -> Vec<[Venue; 2]> {
    let mut pairs = Vec::new();
    for (i, &a) in Venue::ALL.iter().enumerate() {
        for &b in &Venue::ALL[i + 1..] {
            pairs.push([a, b]);
        }
    }
    pairs
}

/// The worst move seen, with where it was.
#[derive(Default)]
struct Worst {
    centi_bp: u128,
    case: String,
}

impl Worst {
    fn see(&mut self, centi_bp: u128, case: impl FnOnce() -> String) {
        if centi_bp >= self.centi_bp {
            *self = Worst { centi_bp, case: case() };
        }
    }
}

#[test]
fn two_venues_silent_for_a_quarter_hour_move_the_value_at_most_5_bp() {
    let (mut with_rule, mut before) = (Worst::default(), Worst::default());
    let mut cases = 0;
    for market in markets(300) {
        let trades = replay(&market.bars, &PROFILES);
        for &maturity in &market.maturities {
            let reference = value(&spec(maturity, MethodologyParams::default()), &trades)
                .expect("every replayed window has a value");
            for quarter in 0..4 {
                for pair in pairs() {
                    let silent: Vec<Trade> = trades
                        .iter()
                        .filter(|t| {
                            !(pair.contains(&t.venue)
                                && in_span(t, maturity, quarter * 900, (quarter + 1) * 900))
                        })
                        .cloned()
                        .collect();
                    let case = || format!("{} M={maturity} quarter {quarter} {pair:?} silent", market.name);
                    let new = value(&spec(maturity, MethodologyParams::default()), &silent)
                        .unwrap_or_else(|| panic!("{}: no value under the two-venue rule", case()));
                    with_rule.see(centi_bp(new, reference), case);
                    // Before the rule: 9 partitions count, and the value drifts.
                    let old = value(&spec(maturity, before_the_rule()), &silent).expect("9 partitions count");
                    before.see(centi_bp(old, reference), case);
                    cases += 1;
                }
            }
        }
    }
    println!(
        "two of four venues silent for 15 minutes, {cases} cases: worst move {} ({}) with the two-venue rule; \
         {} ({}) before it",
        bp(with_rule.centi_bp),
        with_rule.case,
        bp(before.centi_bp),
        before.case
    );
    assert!(with_rule.centi_bp <= 500, "worst move {} > 5 bp: {}", bp(with_rule.centi_bp), with_rule.case);
    assert!(before.centi_bp > with_rule.centi_bp, "the rule must help where the old rule drifted");
}

#[test]
fn one_venue_crashing_or_pushed_moves_the_value_no_more_than_before() {
    let (mut crash_new, mut crash_old, mut push_new, mut push_old) =
        (Worst::default(), Worst::default(), Worst::default(), Worst::default());
    for market in markets(900) {
        let trades = replay(&market.bars, &PROFILES);
        for &maturity in &market.maturities {
            let new_spec = spec(maturity, MethodologyParams::default());
            let old_spec = spec(maturity, before_the_rule());
            let reference = value(&new_spec, &trades).unwrap();
            for venue in Venue::ALL {
                // Crashing 30% for 10 minutes, at each 10-minute step of the window.
                for start in (0..3600).step_by(600) {
                    let mut crashed = trades.clone();
                    for t in crashed
                        .iter_mut()
                        .filter(|t| t.venue == venue && in_span(t, maturity, start, start + 600))
                    {
                        t.price = Wad::from_raw(t.price.raw() * 7 / 10);
                    }
                    let (new, old) =
                        (value(&new_spec, &crashed).unwrap(), value(&old_spec, &crashed).unwrap());
                    let case = || format!("{} M={maturity} {venue:?} -30% from +{start} s", market.name);
                    assert!(
                        centi_bp(new, reference) <= centi_bp(old, reference),
                        "{}: worse than before",
                        case()
                    );
                    crash_new.see(centi_bp(new, reference), case);
                    crash_old.see(centi_bp(old, reference), case);
                }
                // Pushed 2% up for the whole hour.
                let mut pushed = trades.clone();
                for t in pushed.iter_mut().filter(|t| t.venue == venue) {
                    t.price = Wad::from_raw(t.price.raw() * 102 / 100);
                }
                let (new, old) = (value(&new_spec, &pushed).unwrap(), value(&old_spec, &pushed).unwrap());
                let case = || format!("{} M={maturity} {venue:?} +2% all hour", market.name);
                assert!(
                    centi_bp(new, reference) <= centi_bp(old, reference),
                    "{}: worse than before",
                    case()
                );
                push_new.see(centi_bp(new, reference), case);
                push_old.see(centi_bp(old, reference), case);
            }
        }
    }
    println!(
        "one venue -30% for 10 minutes: worst {} ({}), before the rule {}\none venue +2% all hour: worst {} ({}), \
         before the rule {}",
        bp(crash_new.centi_bp),
        crash_new.case,
        bp(crash_old.centi_bp),
        bp(push_new.centi_bp),
        push_new.case,
        bp(push_old.centi_bp)
    );
}

/// Two venues silent for a quarter-hour, and one of the two survivors lying: in each silent
/// partition it trades only at the price furthest from the honest survivor's median that the
/// tolerance still accepts, up or down. Each such partition moves at most `(t + d) / 2` from
/// the honest one, `d` being how far the two honest survivors sat apart, and at most
/// `max_two_venue_partitions` = 3 of the 12 counted partitions do: the value moves at most
/// `(t + d) / 8` (scaled by the highest such partition over the value, as the bound is in
/// prices), asserted case by case: the module docs' bound.
#[test]
fn a_survivor_pushed_within_the_tolerance_moves_the_value_about_an_eighth_of_it() {
    let params = MethodologyParams::default();
    let t = u128::from(params.two_venue_agreement_bp);
    let (mut worst, mut widest) = (Worst::default(), 0);
    let mut cases = 0;
    for market in markets(600) {
        let trades = replay(&market.bars, &PROFILES);
        for &maturity in &market.maturities {
            let spec = spec(maturity, params);
            for quarter in 0..4 {
                let (from, to) = (quarter * 900, (quarter + 1) * 900);
                for pair in pairs() {
                    let outage: Vec<Trade> = trades
                        .iter()
                        .filter(|t| !(pair.contains(&t.venue) && in_span(t, maturity, from, to)))
                        .cloned()
                        .collect();
                    let honest = value(&spec, &outage).unwrap();
                    let survivors: Vec<Venue> =
                        Venue::ALL.into_iter().filter(|v| !pair.contains(v)).collect();
                    let (d, top) = honest_spread(&outage, maturity, (from, to), survivors[0], survivors[1]);
                    widest = widest.max(d);
                    // Relative to the value, a partition above it moves it a little more.
                    let bound = ((t * 100 + d) * top.raw()).div_ceil(8 * honest.raw()) + 1;
                    for (liar, other) in [(survivors[0], survivors[1]), (survivors[1], survivors[0])] {
                        for up in [true, false] {
                            let pushed =
                                push_within_tolerance(&outage, maturity, (from, to), liar, other, t, up);
                            let c = compute(&spec, &pushed).unwrap();
                            let two_venue = c.partitions.iter().filter(|p| p.two_venue).count();
                            assert_eq!(two_venue, 3, "the pushes stay within the tolerance");
                            let moved = centi_bp(c.value.value().unwrap(), honest);
                            let case = || {
                                format!(
                                    "{} M={maturity} quarter {quarter} {pair:?} silent, {liar:?} pushed {}, \
                                     honest spread d = {}, bound (t + d)/8 = {}",
                                    market.name,
                                    if up { "up" } else { "down" },
                                    bp(d),
                                    bp(bound)
                                )
                            };
                            assert!(moved <= bound, "moved {}: {}", bp(moved), case());
                            worst.see(moved, case);
                            cases += 1;
                        }
                    }
                }
            }
        }
    }
    println!(
        "a survivor pushed to the edge of the {t} bp tolerance during a 15-minute outage, {cases} cases, each \
         within (t + d)/8: worst move {} ({}); t/8 = {}; the widest honest spread d seen {}",
        bp(worst.centi_bp),
        worst.case,
        bp(t * 100 / 8),
        bp(widest)
    );
}

/// How far apart the two honest survivors' weighted medians sit in the partitions of `span`,
/// at most, in hundredths of a basis point of the lower; and the highest of those medians.
fn honest_spread(trades: &[Trade], maturity: u64, span: (u64, u64), a: Venue, b: Venue) -> (u128, Wad) {
    (span.0..span.1)
        .step_by(300)
        .map(|k| {
            let median = |v: Venue| {
                let own: Vec<Trade> = trades
                    .iter()
                    .filter(|tr| tr.venue == v && in_span(tr, maturity, k, k + 300))
                    .cloned()
                    .collect();
                venue_weighted_median(&own).expect("a survivor trades in every partition")
            };
            let (x, y) = (median(a), median(b));
            (centi_bp(x.max(y), x.min(y)), x.max(y))
        })
        .fold((0, Wad::ZERO), |(d, top), (dk, mk)| (d.max(dk), top.max(mk)))
}

/// `trades` with `liar`'s trades in each partition of `span` set to the price `t` bp above
/// (`up`) or below `other`'s weighted median there, the furthest the tolerance accepts.
fn push_within_tolerance(
    trades: &[Trade],
    maturity: u64,
    span: (u64, u64),
    liar: Venue,
    other: Venue,
    t: u128,
    up: bool,
) -> Vec<Trade> {
    let mut pushed = trades.to_vec();
    for k in (span.0..span.1).step_by(300) {
        let in_partition = |tr: &Trade| in_span(tr, maturity, k, k + 300);
        let others: Vec<Trade> =
            trades.iter().filter(|tr| tr.venue == other && in_partition(tr)).cloned().collect();
        let a = venue_weighted_median(&others).expect("the other survivor trades").raw();
        // Up: a · (1 + t); down: the lowest b with (a − b) / b ≤ t, i.e. b = ⌈a / (1 + t)⌉.
        let price = if up { a * (10_000 + t) / 10_000 } else { (a * 10_000).div_ceil(10_000 + t) };
        for tr in pushed.iter_mut().filter(|tr| tr.venue == liar && in_partition(tr)) {
            tr.price = Wad::from_raw(price);
        }
    }
    pushed
}
