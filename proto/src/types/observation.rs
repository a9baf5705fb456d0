//! A member's signed observation of one settlement (DESIGN section 5.1).

use alloy_primitives::B256;
use serde::{Deserialize, Serialize};

use crate::signing::Signable;
use crate::types::settlement::SettlementId;
use crate::types::venue::Venue;
use crate::value::Wad;

/// Why a venue was dropped for the whole window (DESIGN section 4.4).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Exclusion {
    /// Its window-wide weighted median was more than `max_venue_deviation_bp` from the
    /// cross-venue median.
    Deviation { venue_median: Wad, cross_venue_median: Wad, deviation_bp: u64 },
    /// It traded in fewer than half the partitions.
    TooFewPartitions { traded: u16, partitions: u16 },
}

/// Why a node has no value (DESIGN section 4.5). A node signs this instead of a number.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoValueReason {
    /// Fewer than `min_partitions` partitions counted (with `min_venues` venues trading, or
    /// under the two-venue rule).
    TooFewPartitions { counted: u16, required: u16 },
    /// No venue survived the exclusion rules (or none reported any trade in the window).
    NoVenues,
}

/// A node's value for a settlement, or the signed statement that it has none.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeValue {
    Value(Wad),
    NoValue(NoValueReason),
}

impl NodeValue {
    /// The value, if there is one.
    pub fn value(&self) -> Option<Wad> {
        match self {
            NodeValue::Value(v) => Some(*v),
            NodeValue::NoValue(_) => None,
        }
    }
}

/// A venue's part in an observation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VenueReport {
    pub venue: Venue,
    /// Trades of this venue that the methodology kept (after dropping bad and duplicate ones).
    pub trades: u32,
    /// `None` when the venue was used; the reason when it was dropped for the window.
    pub excluded: Option<Exclusion>,
}

/// One partition of the window in an observation (DESIGN section 4.5, and the two-venue rule
/// of [`crate::methodology`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Partition {
    /// Venues that traded in it, of those that survived the window-wide exclusion.
    pub venues: u16,
    /// Its value when it counts: the median across its venues when at least `min_venues`
    /// traded, or the mean of two agreeing venues under the two-venue rule; `None` otherwise.
    pub value: Option<Wad>,
    /// Whether it counts under the two-venue rule.
    pub two_venue: bool,
}

impl Partition {
    /// A partition in which `venues` venues traded (at least `min_venues`) and whose median
    /// `value` counts.
    pub const fn counted(venues: u16, value: Wad) -> Self {
        Partition { venues, value: Some(value), two_venue: false }
    }

    /// A partition in which `venues` venues traded and which does not count.
    pub const fn not_counted(venues: u16) -> Self {
        Partition { venues, value: None, two_venue: false }
    }
}

/// The result of the methodology on one node's trades: everything but the signature.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Computation {
    /// One entry per partition, oldest first.
    pub partitions: Vec<Partition>,
    /// Every venue that reported at least one trade in the window, in canonical order.
    pub venues: Vec<VenueReport>,
    /// The node's value: the mean of the counted partitions, or no value.
    pub value: NodeValue,
}

/// What a member signs and gossips at `M + grace`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Observation {
    pub settlement_id: SettlementId,
    /// Unix seconds at which the node computed it.
    pub observed_at: u64,
    pub computation: Computation,
    /// `keccak256(BCS(trades))` over the sorted, de-duplicated raw trades the node used; the
    /// node archives those trades so a dispute can replay them.
    pub trade_digest: B256,
}

impl Signable for Observation {
    const TAG: &'static str = "fixd/v1/observation";
}
