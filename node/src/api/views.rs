//! [`Views`]: the JSON of settlement views, kept until something they show changes.
//!
//! A view is a function of what the store holds for its settlement and of the clock's second
//! (what it waits for, and the dispute phase, are read at `now`). Building it reads every key of
//! the settlement, folds its disputes and serialises several kilobytes of JSON: the whole cost
//! of a read. Options protocols read the same views many times, at expiry. So the bytes are
//! kept with the settlement's [`Store::version`](crate::store::Store::version) and the second
//! they were built in, and served while both hold: a view is built at most once per second and
//! per change, and a read never shows less than one built for it would.
//!
//! Only the current second's views are kept: one built in an earlier second can never be served
//! again. (Kept until the cache was full, they held some 14 KB each, 57 MB a node, after a
//! reader went through the 10,000 settlements of an expiry burst: BENCHMARKS.md, session 20.)

use std::collections::HashMap;
use std::sync::Mutex;

use alloy_primitives::B256;
use axum::body::Bytes;

/// Settlements whose bytes are kept at most in one second; past it, nothing new is kept until
/// the next second.
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
    kept: Mutex<Kept>,
}

/// The second the kept views were built in, and each one's store version and bytes.
#[derive(Debug, Default)]
struct Kept {
    now: u64,
    views: HashMap<B256, (u64, Bytes)>,
}

impl Views {
    /// The bytes kept for `id`, if built from exactly `from`.
    pub fn get(&self, id: &B256, from: BuiltFrom) -> Option<Bytes> {
        let kept = self.kept.lock().expect("views lock");
        if kept.now != from.now {
            return None;
        }
        kept.views.get(id).filter(|(version, _)| *version == from.version).map(|(_, bytes)| bytes.clone())
    }

    /// Keeps `bytes` as `id`'s view built from `from`. The first view of a new second lets the
    /// earlier second's go; a view of an earlier second (a slow read) is not kept.
    pub fn put(&self, id: B256, from: BuiltFrom, bytes: Bytes) {
        let mut kept = self.kept.lock().expect("views lock");
        if from.now > kept.now {
            *kept = Kept { now: from.now, views: HashMap::new() };
        }
        if from.now < kept.now || (kept.views.len() >= MAX_VIEWS && !kept.views.contains_key(&id)) {
            return;
        }
        kept.views.insert(id, (from.version, bytes));
    }

    /// How many views are kept.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.kept.lock().expect("views lock").views.len()
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
    fn only_the_current_seconds_views_are_kept_and_no_more_than_the_bound() {
        let views = Views::default();
        let (early, at_99) = (B256::repeat_byte(0xdd), BuiltFrom { version: 0, now: 99 });
        views.put(early, at_99, Bytes::new());
        let from = BuiltFrom { version: 0, now: 100 };
        views.put(B256::ZERO, from, Bytes::new());
        assert_eq!(views.len(), 1, "a view of second 99 is not kept at second 100, full or not");
        for k in 0..MAX_VIEWS {
            views.put(B256::from(alloy_primitives::U256::from(k)), from, Bytes::new());
        }
        let late = B256::repeat_byte(0xff);
        views.put(late, from, Bytes::new());
        assert_eq!(views.get(&late, from), None, "full of this second's views: nothing new is kept");
        assert_eq!(views.len(), MAX_VIEWS);
        let next = BuiltFrom { now: 101, ..from };
        views.put(late, next, Bytes::new());
        assert!(views.get(&late, next).is_some(), "a new second starts afresh");
        assert_eq!(views.len(), 1, "the earlier second's views went with it");
        let slow = B256::repeat_byte(0xee);
        views.put(slow, from, Bytes::new());
        assert_eq!(views.get(&slow, from), None, "a view of an earlier second is not kept");
        assert_eq!(views.len(), 1);
    }
}
