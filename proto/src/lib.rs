//! fixd-proto (overview written below once the crate is complete).

pub mod eip712;
pub mod encoding;
pub mod hash;
pub mod merkle;
pub mod methodology;
pub mod payout;
pub mod signing;
pub mod types;
pub mod value;
