//! fixd-dispute's one integration-test binary.
//!
//! - `scenarios`: named stories of one settlement, step by step.
//! - `properties`: proptest over random event sequences (random times, orders, duplicates and
//!   bonds), one property per rule, all driven by the `harness`.

mod harness;
mod properties;
mod scenarios;
mod support;
