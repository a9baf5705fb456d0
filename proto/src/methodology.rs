//! The settlement methodology.
