//! Venues and the normalised trades they report.

use serde::{Deserialize, Serialize};

use crate::value::Wad;

/// A trading venue whose ETH-USD trades feed the index.
///
/// The order of the variants is part of the canonical encoding (BCS writes the variant index):
/// append new venues at the end, never reorder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Venue {
    /// Coinbase Exchange, product `ETH-USD`.
    Coinbase,
    /// Kraken, pair `XETHZUSD` (`ETH/USD`).
    Kraken,
    /// Bitstamp, pair `ethusd`.
    Bitstamp,
    /// Gemini, symbol `ethusd`.
    Gemini,
}

impl Venue {
    /// Every venue, in canonical order.
    pub const ALL: [Venue; 4] = [Venue::Coinbase, Venue::Kraken, Venue::Bitstamp, Venue::Gemini];

    /// The lower-case name used in config, the API and metrics.
    pub const fn name(self) -> &'static str {
        match self {
            Venue::Coinbase => "coinbase",
            Venue::Kraken => "kraken",
            Venue::Bitstamp => "bitstamp",
            Venue::Gemini => "gemini",
        }
    }
}

impl std::fmt::Display for Venue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One trade as a venue reported it, normalised.
///
/// `time_ms` is the venue's execution time in unix milliseconds (venues report sub-second
/// times, and the window edge `M` must be exact). `id` is the venue's own trade id as a string,
/// unique per venue. `price` is USD per ETH and `size` is ETH, both exact.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Trade {
    pub venue: Venue,
    pub id: String,
    pub time_ms: u64,
    pub price: Wad,
    pub size: Wad,
}
