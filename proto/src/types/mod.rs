//! Everything that is signed or travels.

pub mod certificate;
pub mod dispute;
pub mod genesis;
pub mod observation;
pub mod report;
pub mod settlement;
pub mod venue;
