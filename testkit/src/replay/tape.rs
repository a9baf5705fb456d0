//! The tape: every replay trade of every venue on the wall clock, computed once, and the
//! faults' effect on which trades a venue shows and at what price. Pure: time is passed in.

use fixd_proto::replay::{Bar, PROFILES, ReplayClock, bar_trades, fixture_bars};
use fixd_proto::types::venue::{Trade, Venue};
use fixd_proto::value::{WAD, Wad};

use super::faults::Fault;

/// Replay ms between a minute's last trade and its bust spike (half-way to the next minute's
/// first trade, which comes 12 s after the last one).
const SPIKE_DELAY_MS: u64 = 6_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A replay trade.
    Trade,
    /// The slot of a trade-bust spike: shown only while a bust fault covers it.
    Spike,
}

/// One trade (or spike slot) of one venue on the wall clock.
#[derive(Clone, Debug)]
struct Entry {
    id: u64,
    /// Exact wall time, ms.
    time_ms: u64,
    /// The trade's price; for a spike, the price the bust factor multiplies.
    price: Wad,
    size: Wad,
    kind: Kind,
}

/// One trade as a venue serves it: its numeric id, the time it reports (ms; Bitstamp reports
/// whole seconds), and its price and size after faults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Row {
    pub id: u64,
    pub time_ms: u64,
    pub price: Wad,
    pub size: Wad,
}

impl Row {
    pub(crate) fn trade(&self, venue: Venue) -> Trade {
        Trade { venue, id: self.id.to_string(), time_ms: self.time_ms, price: self.price, size: self.size }
    }
}

/// Every venue's trades (and bust spike slots) on the wall clock, sorted by time, so that any
/// query is a binary search and a short walk.
#[derive(Debug)]
pub struct Tape {
    clock: ReplayClock,
    venues: Vec<(Venue, Vec<Entry>)>,
}

impl Tape {
    /// The tape of the committed fixture under `clock`.
    pub fn new(clock: ReplayClock) -> Tape {
        Tape::from_bars(clock, &fixture_bars())
    }

    /// The tape of `bars` under `clock`. Trades before `clock.replay_start` are not played.
    pub fn from_bars(clock: ReplayClock, bars: &[Bar]) -> Tape {
        let venues = PROFILES
            .iter()
            .map(|profile| {
                let mut entries = Vec::with_capacity(bars.len() * 8);
                for bar in bars {
                    let trades = bar_trades(bar, profile);
                    for t in &trades {
                        if let Some(time_ms) = clock.to_wall_ms(t.time_ms) {
                            let id = t.id.parse().expect("replay trade ids are numeric");
                            entries.push(Entry {
                                id,
                                time_ms,
                                price: t.price,
                                size: t.size,
                                kind: Kind::Trade,
                            });
                        }
                    }
                    let Some(last) = trades.last() else { continue };
                    let Some(time_ms) = clock.to_wall_ms(last.time_ms + SPIKE_DELAY_MS) else { continue };
                    let volume = trades.iter().map(|t| t.size.raw()).sum::<u128>();
                    entries.push(Entry {
                        id: last.id.parse::<u64>().expect("replay trade ids are numeric") + 1,
                        time_ms,
                        price: last.price,
                        size: Wad::from_raw(volume.saturating_mul(2)),
                        kind: Kind::Spike,
                    });
                }
                entries.sort_by_key(|e| (e.time_ms, e.id));
                (profile.venue, entries)
            })
            .collect();
        Tape { clock, venues }
    }

    /// The replay clock of the tape.
    pub fn clock(&self) -> ReplayClock {
        self.clock
    }

    /// Wall time (ms) of the first and the last replay trade of any venue, if any is played.
    pub fn span_ms(&self) -> Option<(u64, u64)> {
        let trades = self.venues.iter().flat_map(|(_, e)| e.iter().filter(|e| e.kind == Kind::Trade));
        let (first, last) = trades.fold((u64::MAX, 0), |(lo, hi), e| (lo.min(e.time_ms), hi.max(e.time_ms)));
        (first <= last).then_some((first, last))
    }

    /// What `venue` shows at wall time `now_ms` under `faults`.
    pub(crate) fn view<'a>(&'a self, venue: Venue, faults: &'a [Fault], now_ms: u64) -> View<'a> {
        let entries = self.venues.iter().find(|(v, _)| *v == venue).map_or(&[][..], |(_, e)| e.as_slice());
        let cutoff = faults
            .iter()
            .filter_map(|f| match f {
                Fault::Stale { at: Some(at) } => Some(at.saturating_mul(1000)),
                _ => None,
            })
            .fold(now_ms, u64::min);
        let published = entries.partition_point(|e| e.time_ms <= cutoff);
        View { venue, entries: &entries[..published], faults, now_ms }
    }

    /// The trades `venue` shows at wall time `now_ms` under `faults`, whose reported time is in
    /// `range` (ms, both ends included), oldest first. See [`venue_trades`].
    pub fn trades(&self, venue: Venue, faults: &[Fault], now_ms: u64, range: (u64, u64)) -> Vec<Trade> {
        let view = self.view(venue, faults, now_ms);
        let (start, end) = (view.first_reported_at_or_after(range.0), view.first_reported_after(range.1));
        view.forward(start, end, usize::MAX).iter().map(|r| r.trade(venue)).collect()
    }
}

/// The trades a replay venue serves: `venue`'s trades of the committed fixture under `clock`,
/// as seen at wall time `wall_now_ms` with `faults`, whose reported time is in `range` (wall
/// ms, both ends included), oldest first. These are exactly the trades an adapter reads from the
/// server: same ids, times, prices and sizes. Bitstamp reports whole seconds, so its times are
/// floored to the second. Faults that change answers rather than trades (`http500`, `garbage`,
/// `slow`) do not change the result; a `stale` fault without a time is ignored.
///
/// Builds the tape each call; keep a [`Tape`] for repeated queries.
pub fn venue_trades(
    clock: &ReplayClock,
    venue: Venue,
    faults: &[Fault],
    wall_now_ms: u64,
    range: (u64, u64),
) -> Vec<Trade> {
    Tape::new(*clock).trades(venue, faults, wall_now_ms, range)
}

/// One venue's published trades at one instant: trades after the cutoff (now, or a stale
/// fault's time) are cut off, spikes resolve against the bust faults, and prices against the
/// flash crashes. Indexes are into the published trades.
#[derive(Debug)]
pub(crate) struct View<'a> {
    venue: Venue,
    entries: &'a [Entry],
    faults: &'a [Fault],
    now_ms: u64,
}

impl View<'_> {
    /// One past the last published index.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The first index with an id above `id`.
    pub(crate) fn first_id_above(&self, id: u64) -> usize {
        self.entries.partition_point(|e| e.id <= id)
    }

    /// The first index with an id at or above `id`.
    pub(crate) fn first_id_at_or_above(&self, id: u64) -> usize {
        self.entries.partition_point(|e| e.id < id)
    }

    /// The first index whose exact wall time is after `ms`.
    pub(crate) fn first_after(&self, ms: u64) -> usize {
        self.entries.partition_point(|e| e.time_ms <= ms)
    }

    /// The first index whose exact wall time is at or after `ms`.
    pub(crate) fn first_at_or_after(&self, ms: u64) -> usize {
        self.entries.partition_point(|e| e.time_ms < ms)
    }

    fn first_reported_at_or_after(&self, ms: u64) -> usize {
        self.entries.partition_point(|e| reported_ms(self.venue, e.time_ms) < ms)
    }

    fn first_reported_after(&self, ms: u64) -> usize {
        self.entries.partition_point(|e| reported_ms(self.venue, e.time_ms) <= ms)
    }

    /// Up to `limit` shown trades from index `start` up to (not including) `end`, oldest first.
    pub(crate) fn forward(&self, start: usize, end: usize, limit: usize) -> Vec<Row> {
        let end = end.min(self.entries.len());
        let slice = self.entries.get(start..end).unwrap_or_default();
        slice.iter().filter_map(|e| self.resolve(e)).take(limit).collect()
    }

    /// Up to `limit` shown trades from index `end − 1` down to `start`, newest first.
    pub(crate) fn backward(&self, start: usize, end: usize, limit: usize) -> Vec<Row> {
        let end = end.min(self.entries.len());
        let slice = self.entries.get(start..end).unwrap_or_default();
        slice.iter().rev().filter_map(|e| self.resolve(e)).take(limit).collect()
    }

    /// The entry as served, or `None` for a spike slot that no bust fault shows now.
    fn resolve(&self, e: &Entry) -> Option<Row> {
        let down = |f: &Fault| matches!(*f, Fault::Outage { from, to } if in_range(e.time_ms, from, to));
        if self.faults.iter().any(down) {
            return None;
        }
        let mut price = match e.kind {
            Kind::Trade => e.price,
            Kind::Spike => self.faults.iter().find_map(|f| match *f {
                Fault::TradeBust { factor, from, to, busted_at }
                    if self.now_ms < busted_at.saturating_mul(1000) && in_range(e.time_ms, from, to) =>
                {
                    mul_wad(e.price, factor)
                }
                _ => None,
            })?,
        };
        for f in self.faults {
            if let Fault::FlashCrash { pct, from, to } = *f
                && in_range(e.time_ms, from, to)
            {
                price = crash(price, pct);
            }
        }
        Some(Row { id: e.id, time_ms: reported_ms(self.venue, e.time_ms), price, size: e.size })
    }
}

/// The time (ms) a venue reports for a trade at `time_ms`: Bitstamp reports whole seconds.
pub(crate) fn reported_ms(venue: Venue, time_ms: u64) -> u64 {
    match venue {
        Venue::Bitstamp => time_ms - time_ms % 1000,
        Venue::Coinbase | Venue::Kraken | Venue::Gemini => time_ms,
    }
}

/// `from·1000 ≤ time_ms < to·1000`.
fn in_range(time_ms: u64, from: u64, to: u64) -> bool {
    (from.saturating_mul(1000)..to.saturating_mul(1000)).contains(&time_ms)
}

/// `⌊price · (100 − pct) / 100⌋`, exactly, without overflow.
pub(crate) fn crash(price: Wad, pct: u8) -> Wad {
    let keep = 100 - u128::from(pct.min(100));
    let raw = price.raw();
    Wad::from_raw(raw / 100 * keep + raw % 100 * keep / 100)
}

/// `⌊a · b⌋` in WAD, exactly, or `None` on overflow.
pub(crate) fn mul_wad(a: Wad, b: Wad) -> Option<Wad> {
    let (whole, frac) = (a.raw() / WAD, a.raw() % WAD);
    let high = whole.checked_mul(b.raw())?;
    let low = frac.checked_mul(b.raw())? / WAD;
    high.checked_add(low).map(Wad::from_raw)
}

#[cfg(test)]
mod tests {
    use fixd_proto::replay::{replay, unix_seconds};

    use super::*;

    /// 15:00 UTC plays at wall 2_000_000_000 s, in real time.
    const CLOCK: ReplayClock =
        ReplayClock { replay_start: 1_749_740_400, wall_start: 2_000_000_000, speed: 1 };
    const WALL0: u64 = 2_000_000_000_000;
    const ALL: (u64, u64) = (0, u64::MAX);

    fn expected(clock: &ReplayClock, venue: Venue) -> Vec<Trade> {
        let mut trades: Vec<Trade> = replay(&fixture_bars(), &PROFILES)
            .iter()
            .filter(|t| t.venue == venue)
            .filter_map(|t| clock.to_wall(t))
            .collect();
        for t in &mut trades {
            t.time_ms = reported_ms(venue, t.time_ms);
        }
        trades
    }

    #[test]
    fn without_faults_the_tape_is_the_replay_on_the_wall_clock() {
        for clock in
            [CLOCK, ReplayClock { speed: 60, ..CLOCK }, ReplayClock { replay_start: 1_749_736_800, ..CLOCK }]
        {
            let tape = Tape::new(clock);
            for venue in Venue::ALL {
                let all = tape.trades(venue, &[], u64::MAX, ALL);
                let want = expected(&clock, venue);
                assert!(!want.is_empty());
                assert_eq!(all, want, "{venue} at {clock:?}");
                // Ids grow with time, so id cursors work.
                let ids: Vec<u64> = all.iter().map(|t| t.id.parse().unwrap()).collect();
                assert!(ids.windows(2).all(|w| w[0] < w[1]));
                // A window is a slice of the same tape.
                let (start, end) = (WALL0 + 600_000, WALL0 + 900_000);
                let window = tape.trades(venue, &[], u64::MAX, (start, end));
                let want: Vec<Trade> =
                    want.into_iter().filter(|t| (start..=end).contains(&t.time_ms)).collect();
                assert_eq!(window, want);
            }
        }
        // Only Bitstamp's times are floored; the others keep the ms.
        let coinbase = venue_trades(&CLOCK, Venue::Coinbase, &[], u64::MAX, ALL);
        assert_eq!(coinbase[0].time_ms, WALL0 + 620);
        assert_eq!(coinbase[0].id, (unix_seconds("2025-06-12T15:00:00Z").unwrap() / 60 * 10).to_string());
        let bitstamp = venue_trades(&CLOCK, Venue::Bitstamp, &[], u64::MAX, ALL);
        assert_eq!(bitstamp[0].time_ms, WALL0 + 1_000);
    }

    #[test]
    fn future_trades_are_never_shown() {
        let tape = Tape::new(CLOCK);
        for now in [WALL0 - 1, WALL0 + 620, WALL0 + 8_619, WALL0 + 8_620, WALL0 + 3_600_000] {
            for venue in Venue::ALL {
                let shown = tape.trades(venue, &[], now, ALL);
                let all = tape.trades(venue, &[], u64::MAX, ALL);
                assert!(shown.iter().all(|t| t.time_ms <= now));
                assert_eq!(shown[..], all[..shown.len()]);
                if let Some(next) = all.get(shown.len()) {
                    assert!(clock_time(&tape, venue, next) > now, "{venue} {now}");
                }
            }
        }
        assert_eq!(tape.trades(Venue::Coinbase, &[], WALL0 + 8_619, ALL).len(), 1);
        assert_eq!(tape.trades(Venue::Coinbase, &[], WALL0 + 8_620, ALL).len(), 2);
    }

    /// The exact wall time of a shown trade (Bitstamp's is reported floored).
    fn clock_time(tape: &Tape, venue: Venue, t: &Trade) -> u64 {
        let (_, entries) = tape.venues.iter().find(|(v, _)| *v == venue).unwrap();
        entries.iter().find(|e| e.id.to_string() == t.id).unwrap().time_ms
    }

    #[test]
    fn a_flash_crash_cuts_prices_in_its_range_only() {
        let tape = Tape::new(CLOCK);
        let (from, to) = (2_000_000_600, 2_000_000_900);
        let faults = [Fault::FlashCrash { pct: 30, from, to }];
        let clean = tape.trades(Venue::Kraken, &[], u64::MAX, ALL);
        let crashed = tape.trades(Venue::Kraken, &faults, u64::MAX, ALL);
        assert_eq!(clean.len(), crashed.len());
        let mut hit = 0;
        for (c, x) in clean.iter().zip(&crashed) {
            assert_eq!((&c.id, c.time_ms, c.size), (&x.id, x.time_ms, x.size));
            if (from * 1000..to * 1000).contains(&c.time_ms) {
                hit += 1;
                assert_eq!(x.price.raw(), c.price.raw() * 70 / 100);
            } else {
                assert_eq!(x.price, c.price);
            }
        }
        assert_eq!(hit, 5 * 7);
        // Two crashes over the same trades compound.
        let twice = [faults[0].clone(), Fault::FlashCrash { pct: 50, from, to }];
        let t = &tape.trades(Venue::Kraken, &twice, u64::MAX, (from * 1000, to * 1000))[0];
        let c = clean.iter().find(|c| c.id == t.id).unwrap();
        assert_eq!(t.price, crash(crash(c.price, 30), 50));
    }

    #[test]
    fn a_venue_in_an_outage_shows_a_gap_then_trades_again() {
        let tape = Tape::new(CLOCK);
        let (from, to) = (2_000_000_600, 2_000_001_500);
        let faults = [Fault::Outage { from, to }];
        let all = tape.trades(Venue::Gemini, &[], u64::MAX, ALL);
        let shown = tape.trades(Venue::Gemini, &faults, u64::MAX, ALL);
        let outside: Vec<Trade> =
            all.iter().filter(|t| !(from * 1000 <= t.time_ms && t.time_ms < to * 1000)).cloned().collect();
        assert_eq!(shown, outside);
        assert!(
            shown.len() < all.len() && shown.iter().any(|t| t.time_ms >= to * 1000),
            "trades again after"
        );
    }

    #[test]
    fn a_stale_venue_shows_nothing_after_its_time() {
        let tape = Tape::new(CLOCK);
        let faults = [Fault::Stale { at: Some(2_000_000_600) }];
        let shown = tape.trades(Venue::Gemini, &faults, u64::MAX, ALL);
        let all = tape.trades(Venue::Gemini, &[], u64::MAX, ALL);
        assert_eq!(shown.last().unwrap(), all.iter().rfind(|t| t.time_ms <= 2_000_000_600_000).unwrap());
        assert_eq!(shown[..], all[..shown.len()]);
        // Before its time, a stale fault changes nothing; unresolved, it is ignored.
        assert_eq!(tape.trades(Venue::Gemini, &faults, WALL0 + 300_000, ALL).len(), 5 * 7);
        assert_eq!(tape.trades(Venue::Gemini, &[Fault::Stale { at: None }], u64::MAX, ALL), all);
    }

    #[test]
    fn a_bust_shows_spikes_until_busted_at_then_removes_them() {
        let tape = Tape::new(CLOCK);
        let factor = Wad::parse("1.5").unwrap();
        let (from, to, busted_at) = (2_000_000_600, 2_000_000_900, 2_000_003_600);
        let faults = [Fault::TradeBust { factor, from, to, busted_at }];
        let now = busted_at * 1000 - 1;
        let clean = tape.trades(Venue::Coinbase, &[], now, ALL);
        let live = tape.trades(Venue::Coinbase, &faults, now, ALL);
        let spikes: Vec<&Trade> = live.iter().filter(|t| !clean.contains(t)).collect();
        assert_eq!(spikes.len(), 5);
        assert_eq!(live.len(), clean.len() + 5);
        for spike in &spikes {
            assert!((from * 1000..to * 1000).contains(&spike.time_ms));
            let id: u64 = spike.id.parse().unwrap();
            assert_eq!(id % 10, 7);
            let last = clean.iter().find(|t| t.id == (id - 1).to_string()).unwrap();
            assert_eq!(spike.time_ms, last.time_ms + SPIKE_DELAY_MS);
            assert_eq!(spike.price, mul_wad(last.price, factor).unwrap());
            let minute: Vec<&Trade> =
                clean.iter().filter(|t| t.id.parse::<u64>().unwrap() / 10 == id / 10).collect();
            assert_eq!(spike.size.raw(), 2 * minute.iter().map(|t| t.size.raw()).sum::<u128>());
        }
        let ids: Vec<u64> = live.iter().map(|t| t.id.parse().unwrap()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert!(live.windows(2).all(|w| w[0].time_ms < w[1].time_ms));
        // From busted_at on, every query shows the clean tape.
        let later = tape.trades(Venue::Coinbase, &[], busted_at * 1000, ALL);
        assert_eq!(tape.trades(Venue::Coinbase, &faults, busted_at * 1000, ALL), later);
        assert_eq!(tape.trades(Venue::Coinbase, &faults, u64::MAX, ALL).len(), 240 * 7 - 60 * 7);
        // A crash over the spikes applies to them too.
        let both = [faults[0].clone(), Fault::FlashCrash { pct: 10, from, to }];
        let crashed = tape.trades(Venue::Coinbase, &both, now, ALL);
        assert!(crashed.iter().any(|t| t.id == spikes[0].id && t.price == crash(spikes[0].price, 10)));
    }

    #[test]
    fn integer_maths_is_exact() {
        let p = Wad::parse("2601.123456789012345678").unwrap();
        assert_eq!(crash(p, 30), Wad::from_raw(p.raw() * 70 / 100));
        assert_eq!(crash(Wad::MAX, 1).raw(), Wad::MAX.raw() / 100 * 99 + Wad::MAX.raw() % 100 * 99 / 100);
        assert_eq!(mul_wad(p, Wad::parse("1.5").unwrap()), Some(Wad::from_raw(p.raw() * 3 / 2)));
        assert_eq!(mul_wad(p, Wad::ONE), Some(p));
        assert_eq!(mul_wad(Wad::MAX, Wad::parse("2").unwrap()), None);
    }

    #[test]
    fn the_span_covers_the_played_trades() {
        let (first, last) = Tape::new(CLOCK).span_ms().unwrap();
        assert_eq!(first, WALL0 + 620);
        assert!(last < WALL0 + 3 * 3_600_000 && last > WALL0 + 3 * 3_600_000 - 60_000);
        let late = ReplayClock { replay_start: 1_800_000_000, ..CLOCK };
        assert_eq!(Tape::new(late).span_ms(), None);
    }
}
