//! Chaos runs (issue 17): a seeded [`schedule`] of faults against a committee of real `fixd`
//! processes, and a [`checker`] of what every node signed and what the chain shows.
//!
//! A run is one seed. The seed fixes the committee, which members are faulty and how, and every
//! fault with its time; a failing run prints the command that replays it
//! ([`schedule::Schedule::replay_command`]), and a failing seed is kept as a named test.
//!
//! The checker reads every node's store once the nodes have stopped (sled, opened read-write by
//! one process at a time) and the chain's logs, and asserts:
//! - no honest member signed two different messages for one slot (as any store saw them);
//! - all honest members signed the same final report;
//! - exactly one publication per settlement, of a value in the honest members' range;
//! - every bond is conserved to the wei.

pub mod checker;
pub mod crash;
pub mod schedule;
