//! Exact fixed-point values: [`Wad`], a `u128` scaled by 10^18.
//!
//! Every price (USD per 1 ETH), strike, trade size and settlement value is a `Wad`. It is parsed
//! exactly from the decimal string a venue sends and formatted back without loss. There is no
//! floating point anywhere on the value path.
//!
//! Accepted input: ASCII digits with at most one `.`, at most 18 digits after it, at least one
//! digit in all (`"2434.34"`, `"0.000001"`, `".5"`, `"7."`). Rejected: empty strings, signs
//! (`"-1"`, `"+1"`), exponents (`"1e3"`), spaces, and anything that overflows `u128` once scaled.
//! Formatting is canonical: no trailing fractional zeros, no `.` when the value is whole.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// 10^18: one unit in WAD fixed point.
pub const WAD: u128 = 1_000_000_000_000_000_000;

/// Number of decimals in a [`Wad`].
pub const WAD_DECIMALS: usize = 18;

/// A non-negative decimal with 18 fractional digits, stored as `u128` (value × 10^18).
///
/// In human-readable encodings (JSON, TOML) it is a decimal string such as `"2434.34"`, so that
/// no JSON client ever reads it through a float. In BCS it is the raw `u128`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Wad(u128);

/// A price index value in USD per 1 ETH, as a [`Wad`].
pub type Price = Wad;

/// Why a decimal string is not a valid [`Wad`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseWadError {
    #[error("empty decimal string: expected digits such as \"2434.34\"")]
    Empty,
    #[error("negative value {0:?}: prices and sizes must be non-negative")]
    Negative(String),
    #[error("{input:?} has {decimals} decimals; at most 18 are allowed")]
    TooManyDecimals { input: String, decimals: usize },
    #[error(
        "{0:?} does not fit in a u128 once scaled by 10^18 (max 340282366920938463463.374607431768211455)"
    )]
    Overflow(String),
    #[error(
        "{input:?} is not a plain decimal: unexpected {found:?} at byte {at}; use digits and at most one '.' (no sign, exponent or spaces)"
    )]
    Invalid { input: String, found: char, at: usize },
}

impl Wad {
    /// Zero.
    pub const ZERO: Wad = Wad(0);
    /// One (10^18 raw).
    pub const ONE: Wad = Wad(WAD);
    /// The largest representable value.
    pub const MAX: Wad = Wad(u128::MAX);

    /// Wraps a raw scaled integer (value × 10^18).
    pub const fn from_raw(raw: u128) -> Self {
        Wad(raw)
    }

    /// The raw scaled integer (value × 10^18).
    pub const fn raw(self) -> u128 {
        self.0
    }

    /// A whole number of units, or `None` on overflow.
    pub const fn from_units(units: u128) -> Option<Self> {
        match units.checked_mul(WAD) {
            Some(raw) => Some(Wad(raw)),
            None => None,
        }
    }

    /// True when the value is zero.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// Parses a plain decimal string exactly. See the module docs for the accepted grammar.
    pub fn parse(input: &str) -> Result<Self, ParseWadError> {
        if input.is_empty() {
            return Err(ParseWadError::Empty);
        }
        if input.starts_with('-') {
            return Err(ParseWadError::Negative(input.to_owned()));
        }
        let (whole, frac) = match input.find('.') {
            Some(dot) => (&input[..dot], &input[dot + 1..]),
            None => (input, ""),
        };
        if whole.is_empty() && frac.is_empty() {
            return Err(ParseWadError::Invalid { input: input.to_owned(), found: '.', at: 0 });
        }
        for (at, c) in input.char_indices() {
            let is_the_dot = c == '.' && at == whole.len();
            if !c.is_ascii_digit() && !is_the_dot {
                return Err(ParseWadError::Invalid { input: input.to_owned(), found: c, at });
            }
        }
        if frac.len() > WAD_DECIMALS {
            return Err(ParseWadError::TooManyDecimals { input: input.to_owned(), decimals: frac.len() });
        }
        let overflow = || ParseWadError::Overflow(input.to_owned());
        let whole_raw =
            whole.bytes().try_fold(0u128, |acc, b| acc.checked_mul(10)?.checked_add(u128::from(b - b'0')));
        let frac_raw = frac.bytes().fold(0u128, |acc, b| acc * 10 + u128::from(b - b'0'))
            * 10u128.pow((WAD_DECIMALS - frac.len()) as u32);
        whole_raw
            .and_then(|w| w.checked_mul(WAD))
            .and_then(|w| w.checked_add(frac_raw))
            .map(Wad)
            .ok_or_else(overflow)
    }

    /// Adds, or `None` on overflow.
    pub const fn checked_add(self, other: Wad) -> Option<Wad> {
        match self.0.checked_add(other.0) {
            Some(raw) => Some(Wad(raw)),
            None => None,
        }
    }

    /// Subtracts, or `None` when `other > self`.
    pub const fn checked_sub(self, other: Wad) -> Option<Wad> {
        match self.0.checked_sub(other.0) {
            Some(raw) => Some(Wad(raw)),
            None => None,
        }
    }

    /// `|self − other|`.
    pub const fn abs_diff(self, other: Wad) -> Wad {
        Wad(self.0.abs_diff(other.0))
    }

    /// Rounded half up to cents, for people: `2649.999999999999997387` → `"2650.00"`. Values
    /// stay exact everywhere else (JSON, the chain); this is display only.
    pub fn cents(self) -> String {
        const CENT: u128 = WAD / 100;
        let cents = self.0 / CENT + u128::from(self.0 % CENT >= CENT / 2);
        format!("{}.{:02}", cents / 100, cents % 100)
    }
}

impl fmt::Display for Wad {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / WAD;
        let frac = self.0 % WAD;
        if frac == 0 {
            return write!(f, "{whole}");
        }
        let digits = format!("{frac:018}");
        write!(f, "{whole}.{}", digits.trim_end_matches('0'))
    }
}

impl FromStr for Wad {
    type Err = ParseWadError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Wad::parse(s)
    }
}

impl Serialize for Wad {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            serializer.serialize_u128(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Wad {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
            Wad::parse(&s).map_err(serde::de::Error::custom)
        } else {
            u128::deserialize(deserializer).map(Wad)
        }
    }
}

/// Serde for wei amounts (`u128`): a decimal string in human-readable encodings (JSON numbers
/// lose precision past 2^53 in many clients, and TOML integers stop at 2^63), the raw `u128` in
/// BCS. Use with `#[serde(with = "crate::value::wei")]`.
pub mod wei {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(amount: &u128, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(amount)
        } else {
            serializer.serialize_u128(*amount)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u128, D::Error> {
        if deserializer.is_human_readable() {
            let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(serde::de::Error::custom(format!(
                    "wei amount {s:?} must be a decimal string of digits, such as \"100000000000000000\""
                )));
            }
            s.parse()
                .map_err(|_| serde::de::Error::custom(format!("wei amount {s} does not fit in 128 bits")))
        } else {
            u128::deserialize(deserializer)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_venue_strings_exactly() {
        assert_eq!(Wad::parse("2434.34").unwrap().raw(), 2_434_340_000_000_000_000_000);
        assert_eq!(Wad::parse("0.000001").unwrap().raw(), 1_000_000_000_000);
        assert_eq!(Wad::parse("0.000000000000000001").unwrap().raw(), 1);
        assert_eq!(Wad::parse("7.").unwrap(), Wad::from_units(7).unwrap());
        assert_eq!(Wad::parse(".5").unwrap().raw(), WAD / 2);
        assert_eq!(Wad::parse("00012.50").unwrap().to_string(), "12.5");
        assert_eq!(Wad::parse("0").unwrap(), Wad::ZERO);
        assert_eq!(Wad::parse("340282366920938463463.374607431768211455").unwrap(), Wad::MAX);
    }

    #[test]
    fn every_bad_input_has_its_own_error() {
        assert_eq!(Wad::parse(""), Err(ParseWadError::Empty));
        assert!(matches!(Wad::parse("-1.5"), Err(ParseWadError::Negative(_))));
        assert!(matches!(
            Wad::parse("1.0000000000000000001"),
            Err(ParseWadError::TooManyDecimals { decimals: 19, .. })
        ));
        assert!(matches!(
            Wad::parse("340282366920938463463.374607431768211456"),
            Err(ParseWadError::Overflow(_))
        ));
        assert!(matches!(Wad::parse("1e99999999999"), Err(ParseWadError::Invalid { found: 'e', at: 1, .. })));
        assert!(matches!(Wad::parse("1e3"), Err(ParseWadError::Invalid { found: 'e', .. })));
        assert!(matches!(Wad::parse("+1"), Err(ParseWadError::Invalid { found: '+', at: 0, .. })));
        assert!(matches!(Wad::parse("1.2.3"), Err(ParseWadError::Invalid { found: '.', at: 3, .. })));
        assert!(matches!(Wad::parse(" 1"), Err(ParseWadError::Invalid { found: ' ', .. })));
        assert!(matches!(Wad::parse("."), Err(ParseWadError::Invalid { .. })));
        assert!(matches!(Wad::parse("١"), Err(ParseWadError::Invalid { .. })));
        let msg = Wad::parse("1e3").unwrap_err().to_string();
        assert!(msg.contains("no sign, exponent"), "{msg}");
    }

    #[test]
    fn formats_canonically() {
        assert_eq!(Wad::from_raw(0).to_string(), "0");
        assert_eq!(Wad::from_raw(1).to_string(), "0.000000000000000001");
        assert_eq!(Wad::from_raw(WAD * 1500).to_string(), "1500");
        assert_eq!(Wad::MAX.to_string(), "340282366920938463463.374607431768211455");
    }

    #[test]
    fn json_is_a_string_and_bcs_is_the_raw_integer() {
        let w = Wad::parse("2434.34").unwrap();
        assert_eq!(serde_json::to_string(&w).unwrap(), "\"2434.34\"");
        assert_eq!(serde_json::from_str::<Wad>("\"2434.34\"").unwrap(), w);
        assert!(serde_json::from_str::<Wad>("\"1e3\"").is_err());
        assert_eq!(bcs::to_bytes(&w).unwrap(), w.raw().to_le_bytes().to_vec());
    }

    proptest! {
        #[test]
        fn cents_are_within_half_a_cent(raw in 0..u128::MAX / 2) {
            let cents = Wad::from_raw(raw).cents();
            let shown = Wad::parse(&cents).unwrap().raw();
            prop_assert!(shown.abs_diff(raw) <= WAD / 200, "{raw} shown as {cents}");
        }

        #[test]
        fn format_then_parse_round_trips(raw in any::<u128>()) {
            let w = Wad::from_raw(raw);
            prop_assert_eq!(Wad::parse(&w.to_string()).unwrap(), w);
        }

        #[test]
        fn parse_then_format_is_canonical(whole in 0u64..u64::MAX, frac in "[0-9]{0,18}") {
            let input = if frac.is_empty() { whole.to_string() } else { format!("{whole}.{frac}") };
            let w = Wad::parse(&input).unwrap();
            let trimmed = frac.trim_end_matches('0');
            let expected = if trimmed.is_empty() { whole.to_string() } else { format!("{whole}.{trimmed}") };
            prop_assert_eq!(w.to_string(), expected);
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,64}") {
            let _ = Wad::parse(&s);
        }
    }
}
