//! The Merkle root over observation hashes.
