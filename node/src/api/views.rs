//! [`PublishedViews`]: the JSON of settlements whose publication is confirmed, kept for a second.
//!
//! A confirmed publication is the end of a settlement's story: its view changes only if a late
//! observation or equivocation evidence still arrives. Building it reads every key of the
//! settlement from the store, folds its disputes and serialises several kilobytes of JSON, the
//! whole cost of a read. Options protocols read exactly these views, many times, at expiry. So
//! the bytes are kept for [`FRESH_FOR`]: at most one build per second and settlement, and what a
//! late message adds shows within a second. Views of settlements still under way are always
//! built fresh (they change with every message and with the clock).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use alloy_primitives::B256;
use axum::body::Bytes;

/// How long a published view's bytes are served before they are built again.
pub const FRESH_FOR: Duration = Duration::from_secs(1);

/// Settlements whose bytes are kept at most; past it, the stale ones are dropped, and if none
/// is, nothing new is kept until one is.
pub const MAX_VIEWS: usize = 4_096;

/// See the module docs.
#[derive(Debug, Default)]
pub struct PublishedViews {
    views: Mutex<HashMap<B256, (Instant, Bytes)>>,
}

impl PublishedViews {
    /// The bytes kept for `id`, if still fresh at `now`.
    pub fn get(&self, id: &B256, now: Instant) -> Option<Bytes> {
        let views = self.views.lock().expect("views lock");
        views.get(id).filter(|(at, _)| now.duration_since(*at) < FRESH_FOR).map(|(_, bytes)| bytes.clone())
    }

    /// Keeps `bytes` as `id`'s view built at `now`.
    pub fn put(&self, id: B256, bytes: Bytes, now: Instant) {
        let mut views = self.views.lock().expect("views lock");
        if views.len() >= MAX_VIEWS && !views.contains_key(&id) {
            views.retain(|_, (at, _)| now.duration_since(*at) < FRESH_FOR);
            if views.len() >= MAX_VIEWS {
                return;
            }
        }
        views.insert(id, (now, bytes));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_served_for_a_second_then_built_again() {
        let views = PublishedViews::default();
        let (id, t) = (B256::repeat_byte(1), Instant::now());
        assert_eq!(views.get(&id, t), None);
        views.put(id, Bytes::from_static(b"{}"), t);
        assert_eq!(views.get(&id, t + Duration::from_millis(999)), Some(Bytes::from_static(b"{}")));
        assert_eq!(views.get(&id, t + FRESH_FOR), None);
    }

    #[test]
    fn a_full_cache_drops_stale_views_and_keeps_no_more_than_its_bound() {
        let views = PublishedViews::default();
        let t = Instant::now();
        for k in 0..MAX_VIEWS {
            views.put(B256::from(alloy_primitives::U256::from(k)), Bytes::new(), t);
        }
        let late = B256::repeat_byte(0xff);
        views.put(late, Bytes::new(), t);
        assert_eq!(views.get(&late, t), None, "full of fresh views: nothing new is kept");
        views.put(late, Bytes::new(), t + FRESH_FOR);
        assert!(views.get(&late, t + FRESH_FOR).is_some(), "the stale ones made room");
        assert_eq!(views.views.lock().unwrap().len(), 1);
    }
}
