//! Payout maths of the P/N split.
