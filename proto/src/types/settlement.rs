//! What is being settled: the index, the maturity and the methodology parameters.

use alloy_primitives::B256;
use serde::{Deserialize, Serialize};

use crate::hash::hash_bcs;

/// A price index. Only ETH-USD for now; new indices are appended, never reordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Index {
    /// USD per 1 ETH.
    #[serde(rename = "ETH-USD")]
    EthUsd,
}

/// The parameters of the methodology (DESIGN section 4). Defaults follow CME CF reference rates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MethodologyParams {
    /// Length of the observation window `(M − window_secs, M]`. Default 3600.
    pub window_secs: u64,
    /// Number of equal partitions of the window. Default 12. Must divide `window_secs`.
    pub partitions: u16,
    /// Seconds after `M` at which nodes compute, so late-reported trades count. Default 120.
    pub grace_secs: u64,
    /// Venues that must trade in a partition for it to count. Default 3.
    pub min_venues: u16,
    /// Partitions that must count for a node value. Default 9.
    pub min_partitions: u16,
    /// A venue is dropped when its window-wide median is further than this from the
    /// cross-venue median, in basis points. Default 500 (5%).
    pub max_venue_deviation_bp: u32,
    /// A partition in which exactly two venues traded counts (with the mean of their two
    /// medians) only if the two agree within this many basis points of the lower. Default 50.
    /// See the two-venue rule in [`crate::methodology`].
    #[serde(default = "default_two_venue_agreement_bp")]
    pub two_venue_agreement_bp: u32,
    /// At most this many partitions of a window count under the two-venue rule, oldest first;
    /// 0 turns the rule off. Default 3 (15 minutes of a 60-minute window).
    #[serde(default = "default_max_two_venue_partitions")]
    pub max_two_venue_partitions: u16,
}

fn default_two_venue_agreement_bp() -> u32 {
    MethodologyParams::default().two_venue_agreement_bp
}

fn default_max_two_venue_partitions() -> u16 {
    MethodologyParams::default().max_two_venue_partitions
}

impl Default for MethodologyParams {
    fn default() -> Self {
        MethodologyParams {
            window_secs: 3600,
            partitions: 12,
            grace_secs: 120,
            min_venues: 3,
            min_partitions: 9,
            max_venue_deviation_bp: 500,
            two_venue_agreement_bp: 50,
            max_two_venue_partitions: 3,
        }
    }
}

/// Why a [`MethodologyParams`] is unusable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    #[error("partitions must be at least 1")]
    NoPartitions,
    #[error("window_secs ({window_secs}) must be a positive multiple of partitions ({partitions})")]
    UnevenWindow { window_secs: u64, partitions: u16 },
    #[error("min_partitions ({min_partitions}) must be between 1 and partitions ({partitions})")]
    MinPartitions { min_partitions: u16, partitions: u16 },
    #[error("min_venues must be at least 1")]
    NoVenues,
}

impl MethodologyParams {
    /// Checks the parameters are internally consistent.
    pub fn validate(&self) -> Result<(), ParamsError> {
        if self.partitions == 0 {
            return Err(ParamsError::NoPartitions);
        }
        if self.window_secs == 0 || !self.window_secs.is_multiple_of(u64::from(self.partitions)) {
            return Err(ParamsError::UnevenWindow {
                window_secs: self.window_secs,
                partitions: self.partitions,
            });
        }
        if self.min_partitions == 0 || self.min_partitions > self.partitions {
            return Err(ParamsError::MinPartitions {
                min_partitions: self.min_partitions,
                partitions: self.partitions,
            });
        }
        if self.min_venues == 0 {
            return Err(ParamsError::NoVenues);
        }
        Ok(())
    }

    /// Length of one partition in seconds.
    pub fn partition_secs(&self) -> u64 {
        self.window_secs / u64::from(self.partitions.max(1))
    }
}

/// One settlement: every option on `index` maturing at `maturity` settles on its value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettlementSpec {
    pub index: Index,
    /// Maturity `M`, unix seconds UTC.
    pub maturity: u64,
    pub params: MethodologyParams,
}

/// A settlement id: `keccak256(BCS(SettlementSpec))`. It is the `bytes32` the contract keys on.
pub type SettlementId = B256;

impl SettlementSpec {
    /// The settlement's id.
    pub fn id(&self) -> SettlementId {
        hash_bcs(self)
    }

    /// Start of the observation window (exclusive), unix seconds.
    pub fn window_start(&self) -> u64 {
        self.maturity.saturating_sub(self.params.window_secs)
    }

    /// When nodes compute their observation: `M + grace_secs`.
    pub fn observe_at(&self) -> u64 {
        self.maturity.saturating_add(self.params.grace_secs)
    }
}
