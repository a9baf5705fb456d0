//! [`Views`]: the JSON of settlement views, kept until something they show changes.
//!
//! A view is a function of what the store holds for its settlement and of the clock's second
//! (what it waits for, and the dispute phase, are read at `now`). Building it reads every key of
//! the settlement, folds its disputes and serialises several kilobytes of JSON: the whole cost
//! of a read. Options protocols read the same views many times, at expiry. So the bytes are
//! kept with the settlement's [`Store::version`](crate::store::Store::version) and the second
//! they were built in, and served while both hold: a view is built at most once per second and
//! per change, and a read never shows less than one built for it would.

use std::collections::HashMap;
use std::sync::Mutex;

use alloy_primitives::B256;
use axum::body::Bytes;

/// Settlements whose bytes are kept at most; past it, the views of earlier seconds are dropped,
/// and if none is, nothing new is kept until the next second.
pub const MAX_VIEWS: usize = 4_096;

/// What a kept view was built from: the settlement's store version and the unix second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BuiltFrom {
    pub version: u64,
    pub now: u64,
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct Views {
    views: Mutex<HashMap<B256, (BuiltFrom, Bytes)>>,
}

impl Views {
    /// The bytes kept for `id`, if built from exactly `from`.
    pub fn get(&self, id: &B256, from: BuiltFrom) -> Option<Bytes> {
        let views = self.views.lock().expect("views lock");
        views.get(id).filter(|(built, _)| *built == from).map(|(_, bytes)| bytes.clone())
    }

    /// Keeps `bytes` as `id`'s view built from `from`.
    pub fn put(&self, id: B256, from: BuiltFrom, bytes: Bytes) {
        let mut views = self.views.lock().expect("views lock");
        if views.len() >= MAX_VIEWS && !views.contains_key(&id) {
            views.retain(|_, (built, _)| built.now >= from.now);
            if views.len() >= MAX_VIEWS {
                return;
            }
        }
        views.insert(id, (from, bytes));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_served_while_the_version_and_the_second_hold() {
        let views = Views::default();
        let id = B256::repeat_byte(1);
        let from = BuiltFrom { version: 3, now: 100 };
        assert_eq!(views.get(&id, from), None);
        views.put(id, from, Bytes::from_static(b"{}"));
        assert_eq!(views.get(&id, from), Some(Bytes::from_static(b"{}")));
        assert_eq!(views.get(&id, BuiltFrom { version: 4, ..from }), None, "a write was made since");
        assert_eq!(views.get(&id, BuiltFrom { now: 101, ..from }), None, "the clock moved on");
        assert_eq!(views.get(&B256::repeat_byte(2), from), None);
    }

    #[test]
    fn a_full_cache_drops_earlier_seconds_and_keeps_no_more_than_its_bound() {
        let views = Views::default();
        let from = BuiltFrom { version: 0, now: 100 };
        for k in 0..MAX_VIEWS {
            views.put(B256::from(alloy_primitives::U256::from(k)), from, Bytes::new());
        }
        let late = B256::repeat_byte(0xff);
        views.put(late, from, Bytes::new());
        assert_eq!(views.get(&late, from), None, "full of this second's views: nothing new is kept");
        let next = BuiltFrom { now: 101, ..from };
        views.put(late, next, Bytes::new());
        assert!(views.get(&late, next).is_some(), "the earlier second's views made room");
        assert_eq!(views.views.lock().unwrap().len(), 1);
    }
}
