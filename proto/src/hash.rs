//! Hashing. Every hash in fixd is keccak-256, the hash the contract can recompute cheaply.

use alloy_primitives::{B256, keccak256};
use serde::Serialize;

pub use alloy_primitives::B256 as Hash32;

/// `keccak256(BCS(value))`.
///
/// # Panics
/// Never for fixd's own types: BCS fails only on maps with non-canonical keys or nesting deeper
/// than 500, and no fixd type has either.
pub fn hash_bcs<T: Serialize + ?Sized>(value: &T) -> B256 {
    keccak256(crate::encoding::to_bcs(value))
}
