//! Deterministic replay of one-minute OHLCV bars as trades on several venues.
//!
//! The reference series (`../shared/data/`, compacted into `proto/fixtures/` by
//! `derive_fixture.py` and compiled in as [`FIXTURE_CSV`]) holds one venue's minute bars. This
//! module spreads each bar over the [`PROFILES`] venues, exactly and deterministically, so the
//! methodology can be tested on realistic multi-venue trades, and so the replay venues of the
//! node serve the very same trades. It is pure: no I/O, no clock.
//!
//! Per bar and venue, [`TRADES_PER_BAR`] trades:
//! - **prices** walk the bar's path `open → low → high → close` when it closed up (or
//!   `open → high → low → close` when it closed down), taking each waypoint and the midpoint
//!   (rounded down) between consecutive ones: `O, ⌊(O+A)/2⌋, A, ⌊(A+B)/2⌋, B, ⌊(B+C)/2⌋, C`;
//!   each price is then shifted by the venue's offset, `⌊p · (10 000 + offset_bp) / 10 000⌋`;
//! - **sizes** split the venue's share of the bar volume, `⌊volume · share_bp / 10 000⌋`, in
//!   weights `1:2:3:4:3:2:1`, each rounded down, the last taking the remainder so that they sum
//!   to the share exactly;
//! - **times** are `bar start + latency_ms + 500 + j · 8000` ms for trade `j`, all strictly inside
//!   the bar's minute, so a bar opening at `t` lands in the partition holding `(t, t + 60]`;
//! - **ids** are `minute · 10 + j` (minute = bar start / 60), unique per venue.
//!
//! No floating point: every figure is an exact [`Wad`].
//!
//! [`ReplayClock`] maps replay time onto wall time, optionally faster than real time, so that a
//! devnet can play a real market hour in a minute: `wall_ms = wall_start·1000 +
//! ⌊(replay_ms − replay_start·1000) / speed⌋`.

use crate::types::venue::{Trade, Venue};
use crate::value::{ParseWadError, Wad};

/// The committed fixture: 2025-06-12 14:00–17:59 UTC minute bars (see `proto/fixtures/README.md`).
pub const FIXTURE_CSV: &str = include_str!("../fixtures/ethusd_2025-06-12_1400_1800.csv");

/// Why bar data cannot be replayed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("timestamp {0:?} is not YYYY-MM-DD HH:MM:SS+00:00 (or with T between date and time)")]
    Timestamp(String),
    #[error("the bar CSV must start with the header `timestamp,open,high,low,close,volume`")]
    Header,
    #[error("line {line}: expected 6 comma-separated fields, found {found}")]
    Fields { line: usize, found: usize },
    #[error("line {line}: {source}")]
    Value { line: usize, source: ParseWadError },
}

/// One one-minute OHLCV bar. `start` is the opening minute in unix seconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bar {
    pub start: u64,
    pub open: Wad,
    pub high: Wad,
    pub low: Wad,
    pub close: Wad,
    pub volume: Wad,
}

/// How one simulated venue trades a bar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VenueProfile {
    pub venue: Venue,
    /// Price offset from the reference series, in basis points (may be negative).
    pub offset_bp: i32,
    /// Delay of the venue's trades after the bar opens, in milliseconds (below 11 000).
    pub latency_ms: u64,
    /// The venue's share of each bar's volume, in basis points.
    pub share_bp: u32,
}

/// The four USD venues of DESIGN 4, with shares summing to 100%.
pub const PROFILES: [VenueProfile; 4] = [
    VenueProfile { venue: Venue::Coinbase, offset_bp: 0, latency_ms: 120, share_bp: 4_000 },
    VenueProfile { venue: Venue::Kraken, offset_bp: 2, latency_ms: 350, share_bp: 2_500 },
    VenueProfile { venue: Venue::Bitstamp, offset_bp: -3, latency_ms: 610, share_bp: 2_000 },
    VenueProfile { venue: Venue::Gemini, offset_bp: 4, latency_ms: 940, share_bp: 1_500 },
];

/// Trades per venue per bar.
pub const TRADES_PER_BAR: usize = 7;

const SIZE_WEIGHTS: [u128; TRADES_PER_BAR] = [1, 2, 3, 4, 3, 2, 1];

/// Unix seconds of a UTC timestamp `YYYY-MM-DD HH:MM:SS+00:00` (or with `T`, or with `Z`).
pub fn unix_seconds(timestamp: &str) -> Result<u64, ReplayError> {
    let bad = || ReplayError::Timestamp(timestamp.to_owned());
    let utc = timestamp
        .strip_suffix("+00:00")
        .or_else(|| timestamp.strip_suffix('Z'))
        .filter(|s| s.len() == 19 && s.is_char_boundary(10) && s.is_char_boundary(11))
        .ok_or_else(bad)?;
    let num = |range: std::ops::Range<usize>| -> Result<i64, ReplayError> {
        utc.get(range).and_then(|s| s.parse().ok()).ok_or_else(bad)
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&m)
        || d < 1
        || d > crate::calendar::days_in_month(y, m)
        || hh > 23
        || mm > 59
        || ss > 60
    {
        return Err(bad());
    }
    let days = crate::calendar::days_from_civil(y, m, d);
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).map_err(|_| bad())
}

/// Parses the bar CSV (`timestamp,open,high,low,close,volume`, header first).
pub fn parse_bars(csv: &str) -> Result<Vec<Bar>, ReplayError> {
    let mut lines = csv.lines();
    if lines.next() != Some("timestamp,open,high,low,close,volume") {
        return Err(ReplayError::Header);
    }
    lines
        .enumerate()
        .filter(|(_, line)| !line.is_empty())
        .map(|(i, line)| {
            let line_no = i + 2;
            let fields: Vec<&str> = line.split(',').collect();
            if fields.len() != 6 {
                return Err(ReplayError::Fields { line: line_no, found: fields.len() });
            }
            let wad = |s: &str| Wad::parse(s).map_err(|source| ReplayError::Value { line: line_no, source });
            Ok(Bar {
                start: unix_seconds(fields[0])?,
                open: wad(fields[1])?,
                high: wad(fields[2])?,
                low: wad(fields[3])?,
                close: wad(fields[4])?,
                volume: wad(fields[5])?,
            })
        })
        .collect()
}

/// The bars of the committed fixture.
pub fn fixture_bars() -> Vec<Bar> {
    parse_bars(FIXTURE_CSV).expect("the committed fixture parses (checked by tests)")
}

fn mid(a: Wad, b: Wad) -> Wad {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    Wad::from_raw(lo.raw() + (hi.raw() - lo.raw()) / 2)
}

/// `⌊price · (10 000 + offset_bp) / 10 000⌋`.
fn offset(price: Wad, offset_bp: i32) -> Wad {
    let factor = u128::try_from(10_000 + i64::from(offset_bp)).expect("offset above -100%");
    Wad::from_raw(price.raw() * factor / 10_000)
}

/// The bar's price path: 7 prices from open to close through low and high.
pub fn price_path(bar: &Bar) -> [Wad; TRADES_PER_BAR] {
    let (a, b) = if bar.close >= bar.open { (bar.low, bar.high) } else { (bar.high, bar.low) };
    let c = bar.close;
    [bar.open, mid(bar.open, a), a, mid(a, b), b, mid(b, c), c]
}

/// One venue's trades of one bar.
pub fn bar_trades(bar: &Bar, profile: &VenueProfile) -> Vec<Trade> {
    let share = bar.volume.raw() * u128::from(profile.share_bp) / 10_000;
    let weight_sum: u128 = SIZE_WEIGHTS.iter().sum();
    let mut left = share;
    let minute = bar.start / 60;
    price_path(bar)
        .into_iter()
        .zip(SIZE_WEIGHTS)
        .enumerate()
        .map(|(j, (price, weight))| {
            let size = if j + 1 == TRADES_PER_BAR { left } else { share * weight / weight_sum };
            left -= size;
            Trade {
                venue: profile.venue,
                id: (minute * 10 + j as u64).to_string(),
                time_ms: bar.start * 1000 + profile.latency_ms + 500 + j as u64 * 8_000,
                price: offset(price, profile.offset_bp),
                size: Wad::from_raw(size),
            }
        })
        .collect()
}

/// Every venue's trades of every bar, venue by venue.
pub fn replay(bars: &[Bar], profiles: &[VenueProfile]) -> Vec<Trade> {
    profiles.iter().flat_map(|p| bars.iter().flat_map(move |bar| bar_trades(bar, p))).collect()
}

/// Maps replay time onto wall time: replay instant `replay_start` plays at wall instant
/// `wall_start`, and replay time runs `speed` times faster than wall time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplayClock {
    /// Replay instant, unix seconds, that plays at `wall_start`.
    pub replay_start: u64,
    /// Wall instant, unix seconds.
    pub wall_start: u64,
    /// Replay seconds per wall second, at least 1.
    pub speed: u32,
}

impl ReplayClock {
    /// Wall time (ms) of a replay instant (ms); `None` before `replay_start`.
    pub fn to_wall_ms(&self, replay_ms: u64) -> Option<u64> {
        let elapsed = replay_ms.checked_sub(self.replay_start * 1000)?;
        Some(self.wall_start * 1000 + elapsed / u64::from(self.speed.max(1)))
    }

    /// The latest replay instant (ms) that has played by wall time `wall_ms`.
    pub fn to_replay_ms(&self, wall_ms: u64) -> u64 {
        let elapsed = wall_ms.saturating_sub(self.wall_start * 1000);
        self.replay_start * 1000 + elapsed * u64::from(self.speed.max(1)) + u64::from(self.speed.max(1)) - 1
    }

    /// The trade as it appears on the wall clock, or `None` if it precedes the replay.
    pub fn to_wall(&self, trade: &Trade) -> Option<Trade> {
        Some(Trade { time_ms: self.to_wall_ms(trade.time_ms)?, ..trade.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixture_parses_into_contiguous_minutes() {
        let bars = fixture_bars();
        assert_eq!(bars.len(), 240);
        assert_eq!(bars[0].start, 1_749_736_800);
        assert!(bars.windows(2).all(|w| w[1].start == w[0].start + 60));
    }

    #[test]
    fn sizes_sum_to_the_volume_exactly() {
        let bars = fixture_bars();
        for bar in &bars[..30] {
            let total: u128 = PROFILES.iter().flat_map(|p| bar_trades(bar, p)).map(|t| t.size.raw()).sum();
            let shares: u128 =
                PROFILES.iter().map(|p| bar.volume.raw() * u128::from(p.share_bp) / 10_000).sum();
            assert_eq!(total, shares);
        }
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert_eq!(parse_bars("nope"), Err(ReplayError::Header));
        let header = "timestamp,open,high,low,close,volume\n";
        assert_eq!(
            parse_bars(&format!("{header}2025-06-12 14:00:00+00:00,1,2")),
            Err(ReplayError::Fields { line: 2, found: 3 })
        );
        assert!(matches!(
            parse_bars(&format!("{header}2025-06-12 14:00:00+00:00,1,2,1e3,1,1")),
            Err(ReplayError::Value { line: 2, .. })
        ));
        assert!(matches!(unix_seconds("2025-13-12 14:00:00+00:00"), Err(ReplayError::Timestamp(_))));
        assert!(matches!(unix_seconds("2025-06-12é14:00:00+00:0"), Err(ReplayError::Timestamp(_))));
        assert_eq!(unix_seconds("2025-06-12T16:00:00Z"), Ok(1_749_744_000));
    }

    #[test]
    fn the_clock_maps_both_ways() {
        let clock = ReplayClock { replay_start: 1_749_740_400, wall_start: 2_000_000_000, speed: 60 };
        assert_eq!(clock.to_wall_ms(1_749_740_400_000), Some(2_000_000_000_000));
        assert_eq!(clock.to_wall_ms(1_749_744_000_000), Some(2_000_000_060_000));
        assert_eq!(clock.to_wall_ms(1_749_740_399_999), None);
        // Every replay instant that maps at or before a wall instant has played by then.
        for replay_ms in [1_749_740_400_000u64, 1_749_740_400_059, 1_749_740_400_060, 1_749_743_999_999] {
            let wall = clock.to_wall_ms(replay_ms).unwrap();
            assert!(clock.to_replay_ms(wall) >= replay_ms);
            assert_eq!(clock.to_wall_ms(clock.to_replay_ms(wall)), Some(wall));
        }
    }
}
