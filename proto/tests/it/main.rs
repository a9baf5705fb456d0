//! fixd-proto integration tests: one binary, one module per concern.

mod encoding;
mod signatures;
mod strategies;
mod vectors;
