//! Canonical encoding.

use serde::Serialize;

/// BCS bytes of a fixd value.
pub fn to_bcs<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    bcs::to_bytes(value).expect("fixd types are always BCS-encodable")
}
