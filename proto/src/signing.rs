//! ed25519 signatures over gossiped messages.
//!
//! Signed bytes are `tag ‖ network_id ‖ BCS(payload)`:
//! - `tag` is the message type's domain tag (for example `fixd/v1/observation`) written as BCS
//!   writes a string: its length as ULEB128, then its ASCII bytes. The length prefix keeps one tag
//!   from being a prefix of another.
//! - `network_id` is the 32-byte genesis hash, so a signature is worth nothing on another network.
//! - `BCS(payload)` is the canonical encoding of the message.
//!
//! Verification is [`ed25519_dalek::VerifyingKey::verify_strict`]: it rejects non-canonical `s`
//! (malleability), small-order keys and small-order `R`. [`verify_many`] gives one verdict per
//! signature, exactly that of `verify_strict`; see its docs. A key is decompressed once per
//! process and kept (up to [`MAX_KEPT_KEYS`]): a committee's few keys sign every message a node
//! checks, and decompressing one costs about a sixth of a verification.

use std::collections::HashMap;
use std::fmt;
use std::sync::{OnceLock, RwLock};

use alloy_primitives::{B256, B512};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::encoding::to_bcs;
use crate::hash::hash_bcs;

/// An ed25519 public key (32 bytes). Hex in JSON.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PublicKey(pub B256);

/// An ed25519 signature (64 bytes: `R ‖ s`). Hex in JSON.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Signature(pub B512);

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.0)
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", self.0)
    }
}

impl PublicKey {
    /// The public key of a signing key.
    pub fn of(key: &SigningKey) -> Self {
        PublicKey(B256::from(key.verifying_key().to_bytes()))
    }
}

/// Why a signature is not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("public key {0} is not a valid ed25519 point")]
    BadKey(PublicKey),
    #[error("signature by {0} does not verify (strict ed25519) over this message and network")]
    Invalid(PublicKey),
}

/// A message type that members sign with ed25519. Each has its own domain tag.
pub trait Signable: Serialize {
    /// The domain tag, `fixd/v1/<type>`. Each signed type implements this beside its
    /// definition (`types::*`): observation, proposal, vote, review-vote, report-signature,
    /// relayed-dispute, relayed-ruling.
    const TAG: &'static str;
}

/// The bytes a member signs: `BCS(tag) ‖ network_id ‖ BCS(payload)`.
pub fn signing_bytes<T: Signable>(network_id: &B256, payload: &T) -> Vec<u8> {
    let mut bytes = to_bcs(T::TAG);
    bytes.extend_from_slice(network_id.as_slice());
    bytes.extend_from_slice(&to_bcs(payload));
    bytes
}

/// A signer and its signature, without the payload (the payload is known from context, as in a
/// certificate's votes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Endorsement {
    pub signer: PublicKey,
    pub signature: Signature,
}

/// A payload with its author's signature. The author is the signer.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Signed<T> {
    pub payload: T,
    pub signer: PublicKey,
    pub signature: Signature,
}

impl<T: Signable> Signed<T> {
    /// Signs `payload` for `network_id` with `key`.
    pub fn sign(key: &SigningKey, network_id: &B256, payload: T) -> Self {
        let endorsement = endorse(key, network_id, &payload);
        Signed { payload, signer: endorsement.signer, signature: endorsement.signature }
    }

    /// Checks the signature with strict ed25519 rules.
    pub fn verify(&self, network_id: &B256) -> Result<(), SignatureError> {
        verify_one(&self.signer, &self.signature, &signing_bytes(network_id, &self.payload))
    }

    /// The message's identity: `keccak256(BCS(Signed<T>))`. Strict verification admits one
    /// signature per (key, message), so a valid message has one hash.
    pub fn hash(&self) -> B256
    where
        T: Serialize,
    {
        hash_bcs(self)
    }

    /// The signer and signature alone.
    pub fn endorsement(&self) -> Endorsement {
        Endorsement { signer: self.signer, signature: self.signature }
    }
}

/// Signs `payload` and returns the endorsement without the payload.
pub fn endorse<T: Signable>(key: &SigningKey, network_id: &B256, payload: &T) -> Endorsement {
    let signature = key.sign(&signing_bytes(network_id, payload));
    Endorsement { signer: PublicKey::of(key), signature: Signature(B512::from(signature.to_bytes())) }
}

/// Keys kept decompressed at most; past it, a new key is decompressed for each use.
pub const MAX_KEPT_KEYS: usize = 1024;

/// `signer` as a curve point, decompressed once and kept; `None` if it is not one.
fn verifying_key(signer: &PublicKey) -> Option<VerifyingKey> {
    static KEPT: OnceLock<RwLock<HashMap<[u8; 32], VerifyingKey>>> = OnceLock::new();
    let kept = KEPT.get_or_init(Default::default);
    if let Some(key) = kept.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(&signer.0.0) {
        return Some(*key);
    }
    let key = VerifyingKey::from_bytes(&signer.0.0).ok()?;
    let mut kept = kept.write().unwrap_or_else(std::sync::PoisonError::into_inner);
    if kept.len() < MAX_KEPT_KEYS {
        kept.insert(signer.0.0, key);
    }
    Some(key)
}

/// Checks one signature over raw signed bytes with `verify_strict`.
pub fn verify_one(signer: &PublicKey, signature: &Signature, message: &[u8]) -> Result<(), SignatureError> {
    let key = verifying_key(signer).ok_or(SignatureError::BadKey(*signer))?;
    let sig = ed25519_dalek::Signature::from_bytes(&signature.0.0);
    key.verify_strict(message, &sig).map_err(|_| SignatureError::Invalid(*signer))
}

/// One item for [`verify_many`].
#[derive(Clone, Copy, Debug)]
pub struct VerifyItem<'a> {
    pub signer: &'a PublicKey,
    pub signature: &'a Signature,
    pub message: &'a [u8],
}

/// Checks many signatures and returns one verdict per item: [`verify_one`] on each.
///
/// Not `ed25519_dalek::verify_batch`: batch and `verify_strict` verdicts differ on inputs with a
/// small-order component (a key or `R` outside the prime-order subgroup), so a batch giving
/// strict verdicts must first check each `R` for torsion, a scalar multiplication of its own.
/// Measured (`cargo bench -p fixd-bench`, `ingest`): that costs 2.1 times checking each item
/// with `verify_strict`. Verdicts shared by single and batch checks need the cofactored
/// equation (ZIP-215): a change of the protocol's signature rule, not of this function.
pub fn verify_many(items: &[VerifyItem<'_>]) -> Vec<Result<(), SignatureError>> {
    items.iter().map(|item| verify_one(item.signer, item.signature, item.message)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A signed type of this test alone (the real ones live in `types`, which builds on this
    /// module): the rules are the same for every `Signable`.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    struct Ballot {
        settlement_id: B256,
        round: u32,
    }

    impl Signable for Ballot {
        const TAG: &'static str = "fixd/v1/test";
    }

    #[test]
    fn signature_binds_network_and_tag() {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let net = B256::repeat_byte(1);
        let ballot = Ballot { settlement_id: B256::repeat_byte(2), round: 0 };
        let signed = Signed::sign(&key, &net, ballot.clone());
        assert_eq!(signed.verify(&net), Ok(()));
        assert_eq!(signed.verify(&B256::repeat_byte(9)), Err(SignatureError::Invalid(signed.signer)));
        let mut other_round = signed.clone();
        other_round.payload.round = 1;
        assert!(other_round.verify(&net).is_err());
        // The signed bytes start with the tag, length-prefixed.
        let bytes = signing_bytes(&net, &ballot);
        assert_eq!(&bytes[..13], b"\x0cfixd/v1/test");
    }
}
