//! Everything that is signed or travels.

pub mod observation;
pub mod settlement;
pub mod venue;
