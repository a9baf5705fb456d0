//! fixd-proto integration tests: one binary, one module per concern.

mod certify;
mod encoding;
mod methodology;
mod outages;
mod review;
mod signatures;
mod strategies;
mod vectors;
