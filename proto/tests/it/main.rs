//! fixd-proto integration tests: one binary, one module per concern.

mod encoding;
mod methodology;
mod signatures;
mod strategies;
mod vectors;
