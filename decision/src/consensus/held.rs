//! [`HeldInputs`]: the inputs an undecided decision holds, each as its BCS bytes.

use std::marker::PhantomData;

use alloy_primitives::B256;
use fixd_proto::encoding::{from_bcs, to_bcs};
use fixd_proto::signing::Signed;
use fixd_proto::value::Wad;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The inputs (observations or review votes) a decision holds until it decides, in hash order.
///
/// Each is kept as its BCS bytes, with its hash and its value beside them: a leader picks
/// values without decoding, and an input is decoded only when a proposal or certificate that
/// lists it is checked. An expiry burst holds thousands of decisions waiting to start with
/// three or four observations each; decoded, one is some 1.1 KB (its partitions and venues
/// are vectors of their own), encoded some 450 B. A sorted vector, not a B-tree: a decision
/// holds a few, and a B-tree's first leaf has room for eleven.
#[derive(Debug)]
pub(super) struct HeldInputs<T> {
    held: Vec<HeldInput>,
    input: PhantomData<fn() -> T>,
}

#[derive(Debug)]
struct HeldInput {
    hash: B256,
    value: Option<Wad>,
    bcs: Box<[u8]>,
}

impl<T> HeldInputs<T>
where
    Signed<T>: Serialize + DeserializeOwned,
{
    pub(super) fn new() -> Self {
        HeldInputs { held: Vec::new(), input: PhantomData }
    }

    pub(super) fn len(&self) -> usize {
        self.held.len()
    }

    pub(super) fn contains(&self, hash: &B256) -> bool {
        self.find(hash).is_ok()
    }

    /// Keeps `input` (whose hash is `hash`, carrying `value`); false if it is held already.
    pub(super) fn insert(&mut self, hash: B256, value: Option<Wad>, input: &Signed<T>) -> bool {
        match self.find(&hash) {
            Ok(_) => false,
            Err(at) => {
                let bcs = to_bcs(input).into_boxed_slice();
                self.held.insert(at, HeldInput { hash, value, bcs });
                true
            }
        }
    }

    /// The input `hash`, decoded.
    ///
    /// # Panics
    /// Never: the bytes are those [`HeldInputs::insert`] encoded, and fixd's types decode
    /// what they encode (`fixd_proto`'s round-trip tests).
    pub(super) fn get(&self, hash: &B256) -> Option<Signed<T>> {
        let held = &self.held[self.find(hash).ok()?];
        Some(from_bcs(&held.bcs).expect("an input decodes from the bytes it was encoded to"))
    }

    /// The value of input `hash`: `None` if it is not held, `Some(None)` if it carries none.
    pub(super) fn value(&self, hash: &B256) -> Option<Option<Wad>> {
        self.find(hash).ok().map(|at| self.held[at].value)
    }

    /// Lets every input go (the store keeps them).
    pub(super) fn clear(&mut self) {
        self.held = Vec::new();
    }

    fn find(&self, hash: &B256) -> Result<usize, usize> {
        self.held.binary_search_by(|held| held.hash.cmp(hash))
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;
    use fixd_proto::types::dispute::ReviewVote;
    use fixd_proto::types::observation::{NoValueReason, NodeValue};

    use super::*;

    /// Member `key`'s review vote: a value of `key` wei, or none for key 1.
    fn vote(key: u8) -> (Signed<ReviewVote>, Option<Wad>) {
        let value = (key > 1).then(|| Wad::from_raw(u128::from(key)));
        let payload = ReviewVote {
            settlement_id: B256::repeat_byte(1),
            dispute_id: B256::repeat_byte(2),
            proposal_hash: B256::repeat_byte(3),
            median_recomputes: key.is_multiple_of(2),
            value: value.map_or(NodeValue::NoValue(NoValueReason::NoVenues), NodeValue::Value),
            trade_digest: B256::repeat_byte(key),
        };
        (Signed::sign(&SigningKey::from_bytes(&[key; 32]), &B256::ZERO, payload), value)
    }

    #[test]
    fn inputs_come_back_as_they_went_in_whatever_order_they_were_held_in() {
        let mut held = HeldInputs::new();
        let inputs: Vec<_> = (1..=4).map(vote).collect();
        for (input, value) in inputs.iter().rev() {
            assert!(held.insert(input.hash(), *value, input), "held the first time");
        }
        let (again, value) = &inputs[2];
        assert!(!held.insert(again.hash(), *value, again), "held once");
        assert_eq!(held.len(), 4);
        for (input, value) in &inputs {
            assert!(held.contains(&input.hash()));
            assert_eq!(held.get(&input.hash()).as_ref(), Some(input));
            assert_eq!(held.value(&input.hash()), Some(*value));
        }
        let unknown = vote(9).0.hash();
        assert!(!held.contains(&unknown));
        assert_eq!(held.get(&unknown), None);
        assert_eq!(held.value(&unknown), None);
        held.clear();
        assert_eq!(held.len(), 0);
        assert_eq!(held.get(&inputs[0].0.hash()), None);
    }
}
