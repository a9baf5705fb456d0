//! The Merkle root over a proposal's input hashes (observation or review-vote hashes,
//! DESIGN 5.2), and inclusion proofs against it.
//!
//! The tree, exactly:
//! - **Leaves** are the input hashes as a *set*: sorted ascending (as big-endian bytes) with
//!   repeats removed. The root therefore does not depend on the order of the list, and a
//!   repeated hash does not change it. (A proposal's `inputs` are already sorted and free of
//!   repeats; checking that, and that the inputs come from distinct members, is certification's
//!   job, not the root's.)
//! - **Leaf node** = `keccak256(0x00 ‖ leaf)`.
//! - **Inner node** = `keccak256(0x01 ‖ left ‖ right)`. The prefixes keep a leaf from ever
//!   being read as an inner node (second-preimage safety).
//! - Each level pairs nodes left to right. A level of odd length **promotes its last node
//!   unchanged** to the next level. It is never paired with itself, so `[a, b, c]` and
//!   `[a, b, c, c]` cannot share a root (the CVE-2012-2459 ambiguity of Bitcoin's tree), which
//!   de-duplication would hide anyway.
//! - The **root** is the single node of the last level: for one leaf it is that leaf's node.
//! - The **empty set** has the root [`EMPTY_ROOT`] = `keccak256("")`
//!   (`0xc5d2…a470`), which no leaf or inner node can equal without a keccak preimage.
//!
//! ```text
//!   leaves (sorted):  l0    l1    l2    l3    l4
//!   level 0:          h0    h1    h2    h3    h4        hi = H(0x00 ‖ li)
//!   level 1:          H(01‖h0‖h1) H(01‖h2‖h3)  h4       h4 promoted
//!   level 2:          H(01‖n0‖n1)              h4       h4 promoted
//!   root:             H(01‖m0‖h4)
//! ```
//!
//! A proof ([`MerkleProof`]) lists the siblings from the leaf up, skipping the levels where the
//! node was promoted, plus the leaf's position and the number of leaves, from which the verifier
//! knows at each level whether the node is a left child, a right child or promoted.

use alloy_primitives::{B256, keccak256};
use serde::{Deserialize, Serialize};

/// The root of the empty set: `keccak256` of no bytes.
pub const EMPTY_ROOT: B256 =
    alloy_primitives::b256!("c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470");

const LEAF_PREFIX: u8 = 0x00;
const NODE_PREFIX: u8 = 0x01;

/// `keccak256(0x00 ‖ leaf)`.
pub fn leaf_node(leaf: &B256) -> B256 {
    let mut buf = [0u8; 33];
    buf[0] = LEAF_PREFIX;
    buf[1..].copy_from_slice(leaf.as_slice());
    keccak256(buf)
}

/// `keccak256(0x01 ‖ left ‖ right)`.
pub fn inner_node(left: &B256, right: &B256) -> B256 {
    let mut buf = [0u8; 65];
    buf[0] = NODE_PREFIX;
    buf[1..33].copy_from_slice(left.as_slice());
    buf[33..].copy_from_slice(right.as_slice());
    keccak256(buf)
}

/// The leaves as the tree sees them: sorted ascending, repeats removed.
pub fn canonical_leaves(leaves: &[B256]) -> Vec<B256> {
    let mut set = leaves.to_vec();
    set.sort_unstable();
    set.dedup();
    set
}

/// The next level up: pairs hashed, an odd last node promoted.
fn parent_level(level: &[B256]) -> Vec<B256> {
    level
        .chunks(2)
        .map(|pair| if let [left, right] = pair { inner_node(left, right) } else { pair[0] })
        .collect()
}

/// The Merkle root of the set `leaves` (see the module docs for the tree).
pub fn merkle_root(leaves: &[B256]) -> B256 {
    let mut level: Vec<B256> = canonical_leaves(leaves).iter().map(leaf_node).collect();
    if level.is_empty() {
        return EMPTY_ROOT;
    }
    while level.len() > 1 {
        level = parent_level(&level);
    }
    level[0]
}

/// A proof that one hash is a leaf of a [`merkle_root`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MerkleProof {
    /// The leaf's position among the sorted, de-duplicated leaves.
    pub index: u64,
    /// The number of sorted, de-duplicated leaves.
    pub leaf_count: u64,
    /// The sibling at each level where the node had one, from the leaves up.
    pub siblings: Vec<B256>,
}

/// The proof that `leaf` is in the set `leaves`, or `None` when it is not.
pub fn merkle_proof(leaves: &[B256], leaf: &B256) -> Option<MerkleProof> {
    let set = canonical_leaves(leaves);
    let index = set.binary_search(leaf).ok()?;
    let mut level: Vec<B256> = set.iter().map(leaf_node).collect();
    let mut i = index;
    let mut siblings = Vec::new();
    while level.len() > 1 {
        let sibling = i ^ 1;
        if sibling < level.len() {
            siblings.push(level[sibling]);
        }
        level = parent_level(&level);
        i /= 2;
    }
    Some(MerkleProof { index: index as u64, leaf_count: set.len() as u64, siblings })
}

/// Whether `proof` shows that `leaf` is a leaf of the tree with root `root`.
///
/// It rejects a proof whose index is not below its leaf count or whose sibling count does not
/// match the tree shape those two imply.
pub fn verify_proof(root: &B256, leaf: &B256, proof: &MerkleProof) -> bool {
    if proof.index >= proof.leaf_count {
        return false;
    }
    let mut node = leaf_node(leaf);
    let mut siblings = proof.siblings.iter();
    let (mut i, mut len) = (proof.index, proof.leaf_count);
    while len > 1 {
        if i % 2 == 1 {
            let Some(left) = siblings.next() else { return false };
            node = inner_node(left, &node);
        } else if i + 1 < len {
            let Some(right) = siblings.next() else { return false };
            node = inner_node(&node, right);
        }
        // else: the last node of an odd level, promoted unchanged.
        i /= 2;
        len = len.div_ceil(2);
    }
    siblings.next().is_none() && node == *root
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn h(n: u8) -> B256 {
        B256::repeat_byte(n)
    }

    #[test]
    fn empty_root_is_keccak_of_nothing() {
        assert_eq!(EMPTY_ROOT, keccak256([]));
        assert_eq!(merkle_root(&[]), EMPTY_ROOT);
    }

    #[test]
    fn roots_follow_the_documented_tree() {
        let (a, b, c, d, e) = (h(1), h(2), h(3), h(4), h(5));
        let [la, lb, lc, ld, le] = [a, b, c, d, e].map(|x| leaf_node(&x));
        assert_eq!(merkle_root(&[a]), la);
        assert_eq!(merkle_root(&[a, b]), inner_node(&la, &lb));
        assert_eq!(merkle_root(&[a, b, c]), inner_node(&inner_node(&la, &lb), &lc));
        let abcd = inner_node(&inner_node(&la, &lb), &inner_node(&lc, &ld));
        assert_eq!(merkle_root(&[a, b, c, d]), abcd);
        assert_eq!(merkle_root(&[a, b, c, d, e]), inner_node(&abcd, &le));
        assert_eq!(leaf_node(&a), keccak256([[0u8].as_slice(), a.as_slice()].concat()));
        assert_eq!(inner_node(&a, &b), keccak256([[1u8].as_slice(), a.as_slice(), b.as_slice()].concat()));
    }

    #[test]
    fn the_root_is_of_the_set_not_the_list() {
        let (a, b, c) = (h(1), h(2), h(3));
        let root = merkle_root(&[a, b, c]);
        assert_eq!(merkle_root(&[c, a, b]), root);
        assert_eq!(merkle_root(&[a, b, c, c]), root);
        assert_ne!(merkle_root(&[a, b]), root);
        // A single leaf's root is not the leaf itself.
        assert_ne!(merkle_root(&[a]), a);
    }

    #[test]
    fn pinned_root() {
        // Pins the encoding for clients in other languages.
        let root = merkle_root(&[h(3), h(1), h(2)]);
        let expected = "0xdc3d8ff7b6a3c804a00ed2dd29d07a2fd0558ae8afef24d4263541f88f5a600a";
        assert_eq!(root.to_string(), expected);
    }

    #[test]
    fn proofs_verify_for_every_leaf_and_fail_otherwise() {
        for n in 1..=9u8 {
            let leaves: Vec<B256> = (1..=n).map(h).collect();
            let root = merkle_root(&leaves);
            for leaf in &leaves {
                let proof = merkle_proof(&leaves, leaf).unwrap();
                assert!(verify_proof(&root, leaf, &proof), "n={n} leaf={leaf}");
                assert!(!verify_proof(&root, &h(0xee), &proof));
                let mut short = proof.clone();
                if short.siblings.pop().is_some() {
                    assert!(!verify_proof(&root, leaf, &short));
                }
                let mut long = proof.clone();
                long.siblings.push(root);
                assert!(!verify_proof(&root, leaf, &long));
                let bad_index = MerkleProof { index: proof.leaf_count, ..proof.clone() };
                assert!(!verify_proof(&root, leaf, &bad_index));
            }
            assert_eq!(merkle_proof(&leaves, &h(0xee)), None);
        }
    }

    #[test]
    fn a_one_leaf_proof_is_empty() {
        let proof = merkle_proof(&[h(7)], &h(7)).unwrap();
        assert_eq!(proof, MerkleProof { index: 0, leaf_count: 1, siblings: vec![] });
        assert!(verify_proof(&leaf_node(&h(7)), &h(7), &proof));
        assert_eq!(merkle_proof(&[], &h(7)), None);
    }

    proptest! {
        #[test]
        fn every_leaf_of_any_set_has_a_valid_proof(
            raw in prop::collection::vec(any::<[u8; 32]>(), 1..40),
            pick in any::<prop::sample::Index>(),
        ) {
            let leaves: Vec<B256> = raw.into_iter().map(B256::from).collect();
            let root = merkle_root(&leaves);
            let leaf = leaves[pick.index(leaves.len())];
            let proof = merkle_proof(&leaves, &leaf).unwrap();
            prop_assert!(verify_proof(&root, &leaf, &proof));
            let mut reversed = leaves.clone();
            reversed.reverse();
            prop_assert_eq!(merkle_root(&reversed), root);
        }
    }
}
