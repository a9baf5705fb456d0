//! The methodology on a real market: ETH-USD minute bars of 2025-06-12 14:00–18:00 UTC (the
//! start of a -12% slide), replayed as trades on four venues, with faults injected into single
//! venues. Maturity M = 2025-06-12 16:00:00 UTC, default parameters (a 60-minute window in 12
//! partitions of 5 minutes, min 3 venues per partition, min 9 partitions, 5% venue deviation).
//!
//! Figures print under `cargo test -p fixd-proto --test it methodology -- --nocapture`.

use fixd_proto::methodology::{clean_trades, compute, settlement_value, trade_digest};
use fixd_proto::replay::{Bar, PROFILES, TRADES_PER_BAR, fixture_bars, replay, unix_seconds};
use fixd_proto::types::observation::{Computation, Exclusion, NoValueReason, NodeValue};
use fixd_proto::types::settlement::{Index, MethodologyParams, SettlementSpec};
use fixd_proto::types::venue::{Trade, Venue};
use fixd_proto::value::Wad;

/// 2025-06-12 16:00:00 UTC.
const M: u64 = 1_749_744_000;

fn bars() -> Vec<Bar> {
    fixture_bars()
}

fn spec() -> SettlementSpec {
    SettlementSpec { index: Index::EthUsd, maturity: M, params: MethodologyParams::default() }
}

/// Unix seconds of `HH:MM` on 2025-06-12.
fn at(hh_mm: &str) -> u64 {
    unix_seconds(&format!("2025-06-12 {hh_mm}:00+00:00")).unwrap()
}

fn fault_free() -> Vec<Trade> {
    replay(&bars(), &PROFILES)
}

fn value(c: &Computation) -> Wad {
    c.value.value().unwrap_or_else(|| panic!("expected a value, got {:?}", c.value))
}

/// `(value − reference) / reference` in hundredths of a basis point, rounded toward zero.
fn deviation_centi_bp(value: Wad, reference: Wad) -> i128 {
    let diff = i128::try_from(value.raw()).unwrap() - i128::try_from(reference.raw()).unwrap();
    diff * 1_000_000 / i128::try_from(reference.raw()).unwrap()
}

fn fmt_bp(centi_bp: i128) -> String {
    let sign = if centi_bp < 0 { "-" } else { "+" };
    format!("{sign}{}.{:02} bp", centi_bp.abs() / 100, centi_bp.abs() % 100)
}

/// Exactly `|value − reference| ≤ bp / 10 000 · reference`.
fn within_bp(value: Wad, reference: Wad, bp: u128) -> bool {
    value.abs_diff(reference).raw() * 10_000 <= bp * reference.raw()
}

/// Whether `t` is a trade of one of `venues` at a time in `[from, to)` (unix seconds).
fn in_span(t: &Trade, venues: &[Venue], from: u64, to: u64) -> bool {
    venues.contains(&t.venue) && from * 1000 <= t.time_ms && t.time_ms < to * 1000
}

fn counted(c: &Computation) -> Vec<bool> {
    c.partitions.iter().map(|p| p.value.is_some()).collect()
}

#[test]
fn the_fixture_is_the_documented_slice() {
    let bars = bars();
    assert_eq!(bars.len(), 240);
    assert_eq!(bars[0].start, at("14:00"));
    assert_eq!(bars[239].start, at("17:59"));
    assert!(bars.windows(2).all(|w| w[1].start == w[0].start + 60), "bars must be contiguous minutes");
    assert!(bars.iter().all(|b| b.low <= b.open.min(b.close) && b.open.max(b.close) <= b.high));
    assert_eq!(unix_seconds("2025-06-12 16:00:00+00:00").unwrap(), M);
    assert_eq!(unix_seconds("1970-01-01 00:00:00+00:00").unwrap(), 0);
    assert_eq!(unix_seconds("2000-03-01 00:00:00+00:00").unwrap(), 951_868_800);
}

#[test]
fn the_replay_is_exact_and_deterministic() {
    let bars = bars();
    let trades = fault_free();
    assert_eq!(trades.len(), bars.len() * PROFILES.len() * TRADES_PER_BAR);
    assert_eq!(trades, fault_free());
    for (i, bar) in bars.iter().enumerate() {
        let mut volume = Wad::ZERO;
        for (v, profile) in PROFILES.iter().enumerate() {
            let first = (v * bars.len() + i) * TRADES_PER_BAR;
            let venue_trades = &trades[first..first + TRADES_PER_BAR];
            for t in venue_trades {
                assert_eq!(t.venue, profile.venue);
                assert!(bar.start * 1000 < t.time_ms && t.time_ms < (bar.start + 60) * 1000);
                // Within the bar's range widened by the venue's offset (at most 5 bp).
                assert!(t.price.raw() * 10_000 >= bar.low.raw() * 9_995);
                assert!(t.price.raw() * 10_000 <= bar.high.raw() * 10_005);
            }
            volume = venue_trades.iter().fold(volume, |sum, t| sum.checked_add(t.size).unwrap());
        }
        assert_eq!(volume, bar.volume, "bar {i}: sizes must sum to the bar volume exactly");
    }
}

#[test]
fn fault_free_value() {
    let trades = fault_free();
    let c = compute(&spec(), &trades).unwrap();
    let v = value(&c);
    assert_eq!(counted(&c), [true; 12]);
    assert!(c.venues.iter().all(|r| r.excluded.is_none() && r.trades == 60 * TRADES_PER_BAR as u32));
    // Within the window's traded range.
    let bars = bars();
    let window: Vec<&Bar> = bars.iter().filter(|b| at("15:00") <= b.start && b.start < at("16:00")).collect();
    let low = window.iter().map(|b| b.low).min().unwrap();
    let high = window.iter().map(|b| b.high).max().unwrap();
    assert!(low <= v && v <= high, "{v} outside [{low}, {high}]");
    // Pinned: any change to the methodology or the replay shows up here.
    assert_eq!(v.to_string(), FAULT_FREE_VALUE);
    let digest = trade_digest(&clean_trades(&spec(), &trades));
    println!("fault-free value at 2025-06-12 16:00 UTC: {v} USD (window range {low}..{high})");
    for (k, p) in c.partitions.iter().enumerate() {
        println!("  partition {k:2}: {}", p.value.map_or("-".to_owned(), |p| p.to_string()));
    }
    println!("  {} trades kept, digest {digest}", clean_trades(&spec(), &trades).len());
}

/// The pinned fault-free node value.
const FAULT_FREE_VALUE: &str = "2750.867975958333333333";

#[test]
fn a_ten_minute_flash_crash_on_one_venue_moves_the_value_less_than_ten_bp() {
    let reference = value(&compute(&spec(), &fault_free()).unwrap());
    for venue in Venue::ALL {
        let mut trades = fault_free();
        for t in trades.iter_mut().filter(|t| in_span(t, &[venue], at("15:20"), at("15:30"))) {
            t.price = Wad::from_raw(t.price.raw() * 7 / 10);
        }
        let c = compute(&spec(), &trades).unwrap();
        let v = value(&c);
        let dev = deviation_centi_bp(v, reference);
        println!("{venue} at -30% from 15:20 to 15:30: value {v} ({} from fault-free)", fmt_bp(dev));
        assert_eq!(counted(&c), [true; 12]);
        assert!(within_bp(v, reference, 10), "{venue}: {v} is more than 10 bp from {reference}");
    }
}

#[test]
fn a_venue_crashed_for_the_whole_window_is_excluded() {
    let reference = value(&compute(&spec(), &fault_free()).unwrap());
    let mut trades = fault_free();
    for t in trades.iter_mut().filter(|t| t.venue == Venue::Coinbase) {
        t.price = Wad::from_raw(t.price.raw() * 7 / 10);
    }
    let c = compute(&spec(), &trades).unwrap();
    let v = value(&c);
    let coinbase = &c.venues[0];
    assert_eq!(coinbase.venue, Venue::Coinbase);
    let Some(Exclusion::Deviation { venue_median, cross_venue_median, deviation_bp }) = coinbase.excluded
    else {
        panic!("coinbase should be excluded for deviation: {coinbase:?}");
    };
    assert_eq!(deviation_bp, 3_000);
    assert!(within_bp(v, reference, 10), "{v} is more than 10 bp from {reference}");
    println!(
        "coinbase at -30% for the whole window: excluded (window median {venue_median} vs cross-venue \
         {cross_venue_median}, {deviation_bp} bp); value {v} ({} from fault-free)",
        fmt_bp(deviation_centi_bp(v, reference))
    );
}

/// The default parameters without the two-venue rule: the methodology before issue 20.
fn without_two_venue_rule() -> SettlementSpec {
    SettlementSpec {
        params: MethodologyParams { max_two_venue_partitions: 0, ..MethodologyParams::default() },
        ..spec()
    }
}

#[test]
fn two_venues_silent_for_the_last_three_partitions_count_under_the_two_venue_rule() {
    let reference = compute(&spec(), &fault_free()).unwrap();
    let mut trades = fault_free();
    // Kraken and Gemini silent 15:45–16:00: partitions 9, 10 and 11 have two venues.
    trades.retain(|t| !in_span(t, &[Venue::Kraken, Venue::Gemini], at("15:45"), at("16:00")));
    let c = compute(&spec(), &trades).unwrap();
    let v = value(&c);
    assert_eq!(counted(&c), [true; 12]);
    let two_venue: Vec<bool> = c.partitions.iter().map(|p| p.two_venue).collect();
    assert_eq!(two_venue, [[false; 9].as_slice(), &[true; 3]].concat());
    assert!(c.partitions[9..].iter().all(|p| p.venues == 2));
    // Both silent venues traded in 9 of 12 partitions: not excluded.
    assert!(c.venues.iter().all(|r| r.excluded.is_none()));
    assert!(within_bp(v, value(&reference), 5), "{v} is more than 5 bp from fault-free");

    // Before the rule, the last 15 minutes of the slide did not count: the mean of the
    // fault-free partitions 0 to 8.
    let before = compute(&without_two_venue_rule(), &trades).unwrap();
    let first_nine: Vec<Wad> = reference.partitions[..9].iter().map(|p| p.value.unwrap()).collect();
    assert_eq!(before.value.value(), fixd_proto::methodology::mean(&first_nine));
    println!(
        "kraken + gemini silent 15:45-16:00: value {v} ({} from fault-free; {} without the two-venue rule)",
        fmt_bp(deviation_centi_bp(v, value(&reference))),
        fmt_bp(deviation_centi_bp(value(&before), value(&reference)))
    );
}

#[test]
fn two_venues_silent_for_four_partitions_count_three_of_them() {
    let mut trades = fault_free();
    trades.retain(|t| !in_span(t, &[Venue::Kraken, Venue::Gemini], at("15:40"), at("16:00")));
    let c = compute(&spec(), &trades).unwrap();
    let mut expected_counted = [true; 12];
    expected_counted[11] = false;
    assert_eq!(counted(&c), expected_counted, "the cap of 3 takes partitions 8, 9 and 10");
    assert!(c.partitions[8..11].iter().all(|p| p.two_venue));
    assert!(matches!(c.value, NodeValue::Value(_)));
    let before = compute(&without_two_venue_rule(), &trades).unwrap();
    assert_eq!(before.value, NodeValue::NoValue(NoValueReason::TooFewPartitions { counted: 8, required: 9 }));
    println!(
        "kraken + gemini silent 15:40-16:00: {:?} (without the two-venue rule: {:?})",
        c.value, before.value
    );
}

#[test]
fn two_venues_silent_for_the_whole_window() {
    let mut trades = fault_free();
    trades.retain(|t| !in_span(t, &[Venue::Kraken, Venue::Gemini], at("15:00"), at("16:00")));
    // Default min_venues = 3: two venues count in 3 partitions at most, short of 9.
    let c = compute(&spec(), &trades).unwrap();
    assert_eq!(counted(&c), [[true; 3].as_slice(), &[false; 9]].concat());
    assert_eq!(c.value, NodeValue::NoValue(NoValueReason::TooFewPartitions { counted: 3, required: 9 }));
    let reported: Vec<Venue> = c.venues.iter().map(|r| r.venue).collect();
    assert_eq!(reported, [Venue::Coinbase, Venue::Bitstamp]);
    println!("kraken + gemini silent all window, min_venues 3: {:?}", c.value);

    // A settlement created with min_venues = 2 settles on the two remaining venues.
    let two = SettlementSpec {
        params: MethodologyParams { min_venues: 2, ..MethodologyParams::default() },
        ..spec()
    };
    let c = compute(&two, &trades).unwrap();
    let reference = value(&compute(&two, &fault_free()).unwrap());
    let v = value(&c);
    assert_eq!(counted(&c), [true; 12]);
    assert!(within_bp(v, reference, 10));
    println!(
        "kraken + gemini silent all window, min_venues 2: value {v} ({} from the fault-free value {reference})",
        fmt_bp(deviation_centi_bp(v, reference))
    );
}

#[test]
fn settlement_over_four_nodes_with_one_liar() {
    let reference = value(&compute(&spec(), &fault_free()).unwrap());
    let mut crashed = fault_free();
    for t in crashed.iter_mut().filter(|t| in_span(t, &[Venue::Kraken], at("15:20"), at("15:30"))) {
        t.price = Wad::from_raw(t.price.raw() * 7 / 10);
    }
    let honest = [reference, value(&compute(&spec(), &crashed).unwrap()), reference];
    for liar in [Wad::ZERO, Wad::MAX] {
        let nodes = [honest[0], honest[1], honest[2], liar];
        let s = settlement_value(&nodes).unwrap();
        assert!(honest.iter().min().unwrap() <= &s && &s <= honest.iter().max().unwrap());
        let shown: Vec<String> = nodes.iter().map(Wad::to_string).collect();
        println!("settlement value of node values [{}] (n = 4, f = 1): {s}", shown.join(", "));
    }
}

#[test]
fn order_and_repeats_do_not_change_the_observation() {
    let trades = fault_free();
    let mut shuffled: Vec<Trade> = trades.iter().rev().cloned().collect();
    shuffled.extend(trades.iter().step_by(3).cloned());
    let cleaned = clean_trades(&spec(), &trades);
    assert_eq!(clean_trades(&spec(), &shuffled), cleaned);
    assert_eq!(trade_digest(&clean_trades(&spec(), &shuffled)), trade_digest(&cleaned));
    assert_eq!(compute(&spec(), &shuffled).unwrap(), compute(&spec(), &trades).unwrap());
    // Only the 60 minutes of the window, on 4 venues.
    assert_eq!(cleaned.len(), 60 * PROFILES.len() * TRADES_PER_BAR);
}
