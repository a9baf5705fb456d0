//! Catch-up beside the settlement service's loop. A driver asks for a catch-up (gossip is best
//! effort); the service never awaits the network for it. A helper task asks one peer and feeds
//! what passes validation back through the service's inbox, like gossip. A peer that accepts
//! the request and never answers therefore costs one task one catch-up timeout, and stalls
//! nothing else.
//!
//! - **One request in flight per settlement, [`MAX_IN_FLIGHT`] in all.** A driver that asks
//!   again while its request runs is not answered twice. Past the bound a request is not made
//!   (its driver asks again on a later tick): an expiry burst of thousands of settlements, each
//!   asking every half round while undecided, would otherwise open thousands of streams to
//!   peers whose request handlers take 100 at a time, and the answers (all of a settlement's
//!   messages, each checked) would crowd out the gossip that decides them.
//! - **Backoff when nothing new arrives.** An answer that holds nothing this node has not
//!   already seen from catch-up (or a failed request: a timeout, a peer gone) doubles the pause
//!   before the next request of that settlement, from [`FIRST_BACKOFF`] up to [`MAX_BACKOFF`].
//!   Anything new clears the pause: an answer with a message not seen before, or a gossiped
//!   message of the settlement ([`CatchUps::wake`]). A settlement that is quiet is asked about
//!   less and less; one that is busy (a review starting, votes arriving) at once, since the
//!   gossip a member missed is then what it needs.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use alloy_primitives::B256;

/// The pause after the first answer with nothing new.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest pause between two catch-ups of one settlement. Short next to a challenge window
/// or a decision's rounds, so that a healed partition is caught up on soon.
pub const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// Catch-up requests in flight at once, over all settlements.
pub const MAX_IN_FLIGHT: usize = 16;

/// One settlement's catch-up state.
#[derive(Debug, Default)]
struct Entry {
    in_flight: bool,
    /// No request before this.
    not_before: Option<Instant>,
    /// The pause after the next answer with nothing new.
    backoff: Option<Duration>,
    /// Hashes of what catch-up answers brought (messages and certificates).
    seen: HashSet<B256>,
}

/// Catch-ups of every settlement, shared by the service and its catch-up tasks.
#[derive(Debug, Default)]
pub struct CatchUps {
    entries: HashMap<B256, Entry>,
    in_flight: usize,
}

impl CatchUps {
    /// Whether to ask a peer about `id` now: none in flight for it, fewer than
    /// [`MAX_IN_FLIGHT`] in all, and no pause running. If so, the request is marked in flight
    /// until [`CatchUps::finish`].
    pub fn start(&mut self, id: B256, now: Instant) -> bool {
        if self.in_flight >= MAX_IN_FLIGHT {
            return false;
        }
        let entry = self.entries.entry(id).or_default();
        if entry.in_flight || entry.not_before.is_some_and(|t| now < t) {
            return false;
        }
        entry.in_flight = true;
        self.in_flight += 1;
        true
    }

    /// Records the end of `id`'s request: `answer` holds the hashes of what passed validation,
    /// or `None` when the request failed. Says whether the answer brought anything new.
    pub fn finish(&mut self, id: B256, now: Instant, answer: Option<Vec<B256>>) -> bool {
        let entry = self.entries.entry(id).or_default();
        if std::mem::take(&mut entry.in_flight) {
            self.in_flight -= 1;
        }
        let mut news = false;
        for hash in answer.into_iter().flatten() {
            news |= entry.seen.insert(hash);
        }
        if news {
            entry.not_before = None;
            entry.backoff = None;
        } else {
            let pause = entry.backoff.unwrap_or(FIRST_BACKOFF);
            entry.not_before = Some(now + pause);
            entry.backoff = Some(pause.saturating_mul(2).min(MAX_BACKOFF));
        }
        news
    }

    /// Gossip of `id` arrived: something happens, so the next request goes at once.
    pub fn wake(&mut self, id: &B256) {
        if let Some(entry) = self.entries.get_mut(id) {
            entry.not_before = None;
            entry.backoff = None;
        }
    }

    /// Drops what is kept of a settlement that needs no more catch-up (published), unless a
    /// request of it still runs.
    pub fn forget(&mut self, id: &B256) {
        if self.entries.get(id).is_some_and(|e| !e.in_flight) {
            self.entries.remove(id);
        }
    }

    /// How many settlements have catch-up state.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: B256 = B256::repeat_byte(1);

    #[test]
    fn at_most_max_in_flight_requests_over_all_settlements() {
        let mut c = CatchUps::default();
        let t = Instant::now();
        let ids: Vec<B256> = (0..=MAX_IN_FLIGHT as u8).map(B256::repeat_byte).collect();
        for id in &ids[..MAX_IN_FLIGHT] {
            assert!(c.start(*id, t));
        }
        assert!(!c.start(ids[MAX_IN_FLIGHT], t), "the bound is reached");
        c.finish(ids[0], t, Some(vec![B256::repeat_byte(0xee)]));
        assert!(c.start(ids[MAX_IN_FLIGHT], t), "one finished: the next may go");
        assert!(!c.start(ids[0], t), "the bound again, whatever the settlement");
    }

    #[test]
    fn one_request_in_flight_per_settlement() {
        let mut c = CatchUps::default();
        let t = Instant::now();
        assert!(c.start(ID, t));
        assert!(!c.start(ID, t), "a second request waits for the first");
        assert!(c.start(B256::repeat_byte(2), t), "another settlement is independent");
        assert!(c.finish(ID, t, Some(vec![B256::repeat_byte(9)])));
        assert!(c.start(ID, t), "an answer with news allows the next request at once");
    }

    /// How long after `now` the next request of [`ID`] may start.
    fn pause(c: &mut CatchUps, now: Instant) -> Duration {
        let mut waited = Duration::ZERO;
        while !c.start(ID, now + waited) {
            waited += Duration::from_millis(250);
        }
        waited
    }

    #[test]
    fn nothing_new_or_a_failure_doubles_the_pause_up_to_the_bound_and_news_clears_it() {
        let mut c = CatchUps::default();
        let mut now = Instant::now();
        assert!(c.start(ID, now));
        let mut pauses = Vec::new();
        for round in 0..6 {
            // Failures and answers with nothing new back off alike.
            let answer = if round % 2 == 0 { None } else { Some(vec![]) };
            assert!(!c.finish(ID, now, answer));
            let waited = pause(&mut c, now);
            pauses.push(waited.as_secs());
            now += waited;
        }
        assert_eq!(pauses, [1, 2, 4, 8, 8, 8]);
        assert!(c.finish(ID, now, Some(vec![B256::repeat_byte(9)])), "a new message is news");
        assert!(c.start(ID, now), "news clears the pause");
        assert!(!c.finish(ID, now, Some(vec![B256::repeat_byte(9)])), "seen before: no news");
        assert_eq!(pause(&mut c, now), FIRST_BACKOFF, "the backoff starts again from the first pause");
        c.finish(ID, now, None);
        c.finish(ID, now, None);
        assert!(!c.start(ID, now), "paused");
        c.wake(&ID);
        assert!(c.start(ID, now), "gossip of the settlement clears the pause");
    }

    #[test]
    fn a_published_settlement_is_forgotten_once_its_request_ends() {
        let mut c = CatchUps::default();
        let t = Instant::now();
        assert!(c.start(ID, t));
        c.forget(&ID);
        assert_eq!(c.len(), 1, "kept while a request runs");
        c.finish(ID, t, None);
        c.forget(&ID);
        assert_eq!(c.len(), 0);
    }
}
