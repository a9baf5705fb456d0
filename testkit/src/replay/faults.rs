//! The faults a replay venue can inject, their JSON form (the admin API) and their compact
//! `--fault VENUE=SPEC` form (the command line).

use std::collections::BTreeMap;

use fixd_proto::types::venue::Venue;
use fixd_proto::value::{WAD, Wad};
use serde::{Deserialize, Serialize};

/// One line summary of the `--fault` syntax, for error messages.
pub const FAULT_SYNTAX: &str = "expected VENUE=FAULT with VENUE one of coinbase, kraken, bitstamp, gemini and FAULT \
     one of http500, garbage, flood:BYTES, slow:MS, stale[:AT], outage:FROM:TO, crash:PCT:FROM:TO, bust:FACTOR:FROM:TO:BUSTED_AT \
     or a JSON \
     fault; times are unix seconds, or +N for N seconds after --wall-start";

/// The `--fault` help text, for the command line (`long_help`).
pub const FAULT_HELP: &str = "\
A fault to start with, as VENUE=FAULT (repeatable). VENUE is coinbase, kraken, bitstamp or gemini.
FAULT is one of:
  http500                          every request answers HTTP 500 with the venue's error body
  garbage                          every request answers 200 with bytes that are not JSON
  flood:BYTES                      every request answers 200 with a page of BYTES bytes (at most
                                   64 MiB) of minimal trades in the venue's shape, all in the
                                   last minute: a hostile venue flooding its members' memory
  slow:MS                          every answer is delayed by MS milliseconds
  stale[:AT]                       no trade after AT is published (default: from the start)
  outage:FROM:TO                   the venue is down over [FROM, TO): its trades of that span are
                                   never published, then it trades again
  crash:PCT:FROM:TO                prices of trades in [FROM, TO) fall by PCT percent (1-99)
  bust:FACTOR:FROM:TO:BUSTED_AT    one spike trade per minute in [FROM, TO) at FACTOR x the price,
                                   shown until BUSTED_AT, then removed from every answer
  {\"slow\":{\"ms\":3000}}             the same faults as JSON, as the admin API takes them
Times are unix seconds, or +N for N seconds after --wall-start.
Examples: kraken=http500  gemini=garbage  bitstamp=slow:3000  coinbase=crash:30:+600:+900
Faults can be changed at run time: PUT/DELETE /_replay/faults/{venue}, GET /_replay/faults.";

/// The longest `slow` delay: ten minutes.
pub const MAX_SLOW_MS: u64 = 600_000;

/// The largest `flood` page: 64 MiB, twice what a node reads.
pub const MAX_FLOOD_BYTES: u64 = 64 * 1024 * 1024;

/// The largest trade-bust price factor.
pub const MAX_BUST_FACTOR: Wad = Wad::from_raw(100 * WAD);

/// One fault of one venue. Times are unix seconds of wall time; a range `[from, to)` holds the
/// trades whose wall time `t` (ms) has `from·1000 ≤ t < to·1000`.
///
/// JSON (the admin API), externally tagged:
/// `{"flash_crash":{"pct":30,"from":1749740400,"to":1749740700}}`, `{"stale":{}}`,
/// `{"stale":{"at":1749740400}}`, `{"outage":{"from":1749740400,"to":1749741300}}`, `"http500"`, `"garbage"`, `{"slow":{"ms":3000}}`,
/// `{"trade_bust":{"factor":"1.5","from":1749740400,"to":1749740700,"busted_at":1749741000}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// The prices of the trades in `[from, to)` fall by `pct` percent: `⌊price · (100 − pct) / 100⌋`.
    FlashCrash { pct: u8, from: u64, to: u64 },
    /// The venue stops publishing: no trade with a wall time after `at` (unix s) is ever
    /// served. Omitted in a request, `at` is the second the fault is switched on, rounded up,
    /// so that nothing already served disappears.
    Stale {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at: Option<u64>,
    },
    /// The venue is down over `[from, to)`: its trades of that span are never published, now or
    /// later, and it trades again from `to` (an exchange outage, seen in its history as a gap).
    Outage { from: u64, to: u64 },
    /// Every request answers HTTP 500 with the venue's error body.
    Http500,
    /// Every request answers 200 with a body that is not JSON (nor UTF-8).
    Garbage,
    /// Every request answers 200 with a valid page of `bytes` bytes of minimal trades in the
    /// venue's shape (price and size `"1"`, ids counting up, times in the last minute): a
    /// hostile venue that floods its members' memory with millions of tiny trades.
    Flood { bytes: u64 },
    /// Every answer is delayed by `ms` milliseconds (a slow socket; longer than a client's
    /// timeout, it is a timeout).
    Slow { ms: u64 },
    /// A trade bust. For each replay minute of the venue, a spike trade at `factor` × the
    /// minute's last price, twice the minute's volume, 6 replay seconds after its last trade
    /// (so the spike is that venue's volume-weighted median), is published when its wall time is
    /// in `[from, to)`. From `busted_at` (unix s) on, the venue no longer shows the spikes, in
    /// recent and historical answers alike.
    TradeBust { factor: Wad, from: u64, to: u64, busted_at: u64 },
}

/// The faults of every venue. Each venue's faults apply together (see the module docs).
pub type FaultMap = BTreeMap<Venue, Vec<Fault>>;

/// A fault bound to its venue: what one `--fault VENUE=SPEC` means.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultSpec {
    pub venue: Venue,
    pub fault: Fault,
}

/// Why a fault is not valid, or a `--fault` spec cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FaultError {
    #[error("--fault {0:?} has no '='; {FAULT_SYNTAX}")]
    NoVenue(String),
    #[error("unknown venue {0:?}: use one of coinbase, kraken, bitstamp, gemini")]
    UnknownVenue(String),
    #[error("--fault {spec:?}: unknown fault {kind:?}; {FAULT_SYNTAX}")]
    UnknownKind { spec: String, kind: String },
    #[error("--fault {spec:?}: `{kind}` takes {expected}")]
    Arguments { spec: String, kind: &'static str, expected: &'static str },
    #[error("--fault {spec:?}: {field} {value:?} is not {expected}")]
    Value { spec: String, field: &'static str, value: String, expected: &'static str },
    #[error("--fault {spec:?} is not a JSON fault: {detail}")]
    Json { spec: String, detail: String },
    #[error("flash crash of {0}%: the percentage must be 1 to 99")]
    Percent(u8),
    #[error("empty time range [{from}, {to}): `from` must be before `to` (unix seconds)")]
    EmptyRange { from: u64, to: u64 },
    #[error("flood page of {0} bytes: it must be 64 to {MAX_FLOOD_BYTES} bytes")]
    FloodBytes(u64),
    #[error("slow delay of {0} ms: it must be 1 to {MAX_SLOW_MS} ms")]
    SlowDelay(u64),
    #[error("trade bust factor {0}: it must be above 0 and at most 100 (a decimal such as \"1.5\")")]
    BustFactor(Wad),
}

impl Fault {
    /// Checks the fault's values.
    pub fn validate(&self) -> Result<(), FaultError> {
        match *self {
            Fault::FlashCrash { pct, from, to } => {
                if !(1..=99).contains(&pct) {
                    return Err(FaultError::Percent(pct));
                }
                check_range(from, to)
            }
            Fault::Outage { from, to } => check_range(from, to),
            Fault::Slow { ms } if ms == 0 || ms > MAX_SLOW_MS => Err(FaultError::SlowDelay(ms)),
            Fault::Flood { bytes } if !(64..=MAX_FLOOD_BYTES).contains(&bytes) => {
                Err(FaultError::FloodBytes(bytes))
            }
            Fault::TradeBust { factor, from, to, .. } => {
                if factor.is_zero() || factor > MAX_BUST_FACTOR {
                    return Err(FaultError::BustFactor(factor));
                }
                check_range(from, to)
            }
            Fault::Stale { .. }
            | Fault::Http500
            | Fault::Garbage
            | Fault::Slow { .. }
            | Fault::Flood { .. } => Ok(()),
        }
    }

    /// The fault with an omitted stale time set to `now_ms`, rounded up to the second.
    pub fn resolved(self, now_ms: u64) -> Fault {
        match self {
            Fault::Stale { at: None } => Fault::Stale { at: Some(now_ms.div_ceil(1000)) },
            other => other,
        }
    }
}

fn check_range(from: u64, to: u64) -> Result<(), FaultError> {
    if from < to { Ok(()) } else { Err(FaultError::EmptyRange { from, to }) }
}

/// A venue by its lower-case name (`coinbase`, `kraken`, `bitstamp`, `gemini`).
pub fn parse_venue(name: &str) -> Result<Venue, FaultError> {
    Venue::ALL.into_iter().find(|v| v.name() == name).ok_or_else(|| FaultError::UnknownVenue(name.to_owned()))
}

impl FaultSpec {
    /// Parses `VENUE=FAULT` (see [`FAULT_HELP`]). `+N` times are `wall_start + N`. The fault
    /// is validated; a `stale` without a time stays unresolved (`at: None`) until the server
    /// starts.
    pub fn parse(spec: &str, wall_start: u64) -> Result<FaultSpec, FaultError> {
        let (venue, fault) = spec.split_once('=').ok_or_else(|| FaultError::NoVenue(spec.to_owned()))?;
        let venue = parse_venue(venue.trim())?;
        let fault = fault.trim();
        let fault = if fault.starts_with('{') || fault.starts_with('"') {
            serde_json::from_str(fault)
                .map_err(|e| FaultError::Json { spec: spec.to_owned(), detail: e.to_string() })?
        } else {
            parse_compact(spec, fault, wall_start)?
        };
        fault.validate()?;
        Ok(FaultSpec { venue, fault })
    }
}

fn parse_compact(spec: &str, fault: &str, wall_start: u64) -> Result<Fault, FaultError> {
    let mut parts = fault.split(':');
    let kind = parts.next().unwrap_or_default();
    let args: Vec<&str> = parts.collect();
    let arity = |kind: &'static str, expected: &'static str, ok: bool| {
        if ok { Ok(()) } else { Err(FaultError::Arguments { spec: spec.to_owned(), kind, expected }) }
    };
    let value = |field: &'static str, value: &str, expected: &'static str| FaultError::Value {
        spec: spec.to_owned(),
        field,
        value: value.to_owned(),
        expected,
    };
    let number = |field: &'static str, text: &str| -> Result<u64, FaultError> {
        digits(text).ok_or_else(|| value(field, text, "a whole number"))
    };
    let time = |field: &'static str, text: &str| -> Result<u64, FaultError> {
        let parsed = match text.strip_prefix('+') {
            Some(offset) => digits(offset).and_then(|n| wall_start.checked_add(n)),
            None => digits(text),
        };
        parsed.ok_or_else(|| value(field, text, "unix seconds or +N seconds after --wall-start"))
    };
    match kind {
        "http500" => arity("http500", "no arguments", args.is_empty()).map(|()| Fault::Http500),
        "garbage" => arity("garbage", "no arguments", args.is_empty()).map(|()| Fault::Garbage),
        "flood" => {
            arity("flood", "one argument: flood:BYTES", args.len() == 1)?;
            Ok(Fault::Flood { bytes: number("BYTES", args[0])? })
        }
        "slow" => {
            arity("slow", "one argument: slow:MS", args.len() == 1)?;
            Ok(Fault::Slow { ms: number("MS", args[0])? })
        }
        "stale" => {
            arity("stale", "at most one argument: stale or stale:AT", args.len() <= 1)?;
            let at = args.first().map(|a| time("AT", a)).transpose()?;
            Ok(Fault::Stale { at })
        }
        "outage" => {
            arity("outage", "two arguments: outage:FROM:TO", args.len() == 2)?;
            Ok(Fault::Outage { from: time("FROM", args[0])?, to: time("TO", args[1])? })
        }
        "crash" => {
            arity("crash", "three arguments: crash:PCT:FROM:TO", args.len() == 3)?;
            let pct = number("PCT", args[0])?;
            let pct = u8::try_from(pct).map_err(|_| value("PCT", args[0], "a percentage from 1 to 99"))?;
            Ok(Fault::FlashCrash { pct, from: time("FROM", args[1])?, to: time("TO", args[2])? })
        }
        "bust" => {
            arity("bust", "four arguments: bust:FACTOR:FROM:TO:BUSTED_AT", args.len() == 4)?;
            let factor =
                Wad::parse(args[0]).map_err(|_| value("FACTOR", args[0], "a plain decimal such as 1.5"))?;
            Ok(Fault::TradeBust {
                factor,
                from: time("FROM", args[1])?,
                to: time("TO", args[2])?,
                busted_at: time("BUSTED_AT", args[3])?,
            })
        }
        other => Err(FaultError::UnknownKind { spec: spec.to_owned(), kind: other.to_owned() }),
    }
}

/// A non-empty string of ASCII digits that fits a `u64`.
fn digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const WALL: u64 = 2_000_000_000;

    fn parse(spec: &str) -> Result<FaultSpec, FaultError> {
        FaultSpec::parse(spec, WALL)
    }

    fn fault(spec: &str) -> Fault {
        parse(spec).unwrap_or_else(|e| panic!("{spec}: {e}")).fault
    }

    #[test]
    fn compact_specs_parse() {
        assert_eq!(
            parse("kraken=http500").unwrap(),
            FaultSpec { venue: Venue::Kraken, fault: Fault::Http500 }
        );
        assert_eq!(parse("gemini=garbage").unwrap().venue, Venue::Gemini);
        assert_eq!(fault("bitstamp=slow:3000"), Fault::Slow { ms: 3000 });
        assert_eq!(fault("kraken=stale"), Fault::Stale { at: None });
        assert_eq!(fault("kraken=stale:1749740400"), Fault::Stale { at: Some(1_749_740_400) });
        assert_eq!(fault("kraken=stale:+60"), Fault::Stale { at: Some(WALL + 60) });
        assert_eq!(
            fault("coinbase=crash:30:1749740400:+900"),
            Fault::FlashCrash { pct: 30, from: 1_749_740_400, to: WALL + 900 }
        );
        assert_eq!(
            fault(" coinbase = bust:1.5:+0:+600:+1200"),
            Fault::TradeBust {
                factor: Wad::parse("1.5").unwrap(),
                from: WALL,
                to: WALL + 600,
                busted_at: WALL + 1200
            }
        );
        assert_eq!(fault(r#"gemini={"slow":{"ms":300}}"#), Fault::Slow { ms: 300 });
        assert_eq!(fault(r#"gemini="http500""#), Fault::Http500);
        assert_eq!(fault("kraken=flood:33554432"), Fault::Flood { bytes: 33_554_432 });
        assert_eq!(fault("gemini=outage:+600:+1500"), Fault::Outage { from: WALL + 600, to: WALL + 1500 });
        assert_eq!(
            fault(r#"gemini={"outage":{"from":1749740400,"to":1749741300}}"#),
            Fault::Outage { from: 1_749_740_400, to: 1_749_741_300 }
        );
        assert_eq!(
            parse("gemini=outage:+900:+600"),
            Err(FaultError::EmptyRange { from: WALL + 900, to: WALL + 600 })
        );
        assert_eq!(
            FaultSpec::parse("kraken=flood:1", 0),
            Err(FaultError::FloodBytes(1)),
            "a flood page holds at least one trade"
        );
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        let cases: [(&str, &str); 16] = [
            ("kraken", "has no '='; expected VENUE=FAULT"),
            ("binance=http500", "unknown venue \"binance\": use one of coinbase"),
            ("Kraken=http500", "unknown venue \"Kraken\""),
            ("kraken=boom", "unknown fault \"boom\"; expected VENUE=FAULT"),
            ("kraken=", "unknown fault \"\""),
            ("kraken=http500:1", "`http500` takes no arguments"),
            ("kraken=slow", "`slow` takes one argument: slow:MS"),
            ("kraken=slow:fast", "MS \"fast\" is not a whole number"),
            ("kraken=slow:0", "slow delay of 0 ms: it must be 1 to 600000 ms"),
            ("kraken=stale:1:2", "`stale` takes at most one argument"),
            ("kraken=stale:-5", "AT \"-5\" is not unix seconds or +N seconds after --wall-start"),
            ("coinbase=crash:30:10", "`crash` takes three arguments: crash:PCT:FROM:TO"),
            ("coinbase=crash:300:10:20", "PCT \"300\" is not a percentage from 1 to 99"),
            ("coinbase=crash:100:10:20", "flash crash of 100%: the percentage must be 1 to 99"),
            ("coinbase=crash:30:20:20", "empty time range [20, 20): `from` must be before `to`"),
            ("coinbase=bust:1e3:1:2:3", "FACTOR \"1e3\" is not a plain decimal such as 1.5"),
        ];
        for (spec, expected) in cases {
            let err = parse(spec).unwrap_err().to_string();
            assert!(err.contains(expected), "{spec}: {err}");
        }
        let err = parse("coinbase=bust:0:1:2:3").unwrap_err();
        assert_eq!(err, FaultError::BustFactor(Wad::ZERO));
        assert!(matches!(parse("coinbase=bust:100.01:1:2:3"), Err(FaultError::BustFactor(_))));
        let err = parse(r#"gemini={"slow":{"ms":300,"extra":1}}"#).unwrap_err().to_string();
        assert!(err.contains("is not a JSON fault: unknown field `extra`"), "{err}");
        let err = parse(r#"gemini={"slow":{"ms":0}}"#).unwrap_err();
        assert_eq!(err, FaultError::SlowDelay(0));
        let err = parse("kraken=stale:+18446744073709551615").unwrap_err().to_string();
        assert!(err.contains("AT \"+18446744073709551615\""), "{err}");
    }

    #[test]
    fn json_form_is_externally_tagged_snake_case() {
        let faults = [
            (Fault::Http500, r#""http500""#),
            (Fault::Garbage, r#""garbage""#),
            (Fault::Slow { ms: 300 }, r#"{"slow":{"ms":300}}"#),
            (Fault::Stale { at: None }, r#"{"stale":{}}"#),
            (Fault::Stale { at: Some(5) }, r#"{"stale":{"at":5}}"#),
            (Fault::FlashCrash { pct: 30, from: 1, to: 2 }, r#"{"flash_crash":{"pct":30,"from":1,"to":2}}"#),
            (
                Fault::TradeBust { factor: Wad::parse("1.5").unwrap(), from: 1, to: 2, busted_at: 3 },
                r#"{"trade_bust":{"factor":"1.5","from":1,"to":2,"busted_at":3}}"#,
            ),
        ];
        for (fault, json) in faults {
            assert_eq!(serde_json::to_string(&fault).unwrap(), json);
            assert_eq!(serde_json::from_str::<Fault>(json).unwrap(), fault);
        }
        let mut map = FaultMap::new();
        map.insert(Venue::Kraken, vec![Fault::Http500]);
        let json = serde_json::to_string(&map).unwrap();
        assert_eq!(json, r#"{"kraken":["http500"]}"#);
        assert_eq!(serde_json::from_str::<FaultMap>(&json).unwrap(), map);
        assert!(
            serde_json::from_str::<Fault>(r#"{"trade_bust":{"factor":1.5,"from":1,"to":2,"busted_at":3}}"#)
                .is_err()
        );
    }

    #[test]
    fn an_omitted_stale_time_resolves_to_the_next_whole_second() {
        assert_eq!(Fault::Stale { at: None }.resolved(1_000_001), Fault::Stale { at: Some(1001) });
        assert_eq!(Fault::Stale { at: None }.resolved(1_000_000), Fault::Stale { at: Some(1000) });
        assert_eq!(Fault::Stale { at: Some(7) }.resolved(1_000_000), Fault::Stale { at: Some(7) });
        assert_eq!(Fault::Garbage.resolved(1), Fault::Garbage);
    }
}
