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
//! (malleability), small-order keys and small-order `R`. [`verify_many`] checks many signatures at
//! once and gives exactly the verdict of checking each with `verify_strict`; see its docs.

use std::fmt;

use alloy_primitives::{B256, B512};
use curve25519_dalek::edwards::CompressedEdwardsY;
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

/// Checks one signature over raw signed bytes with `verify_strict`.
pub fn verify_one(signer: &PublicKey, signature: &Signature, message: &[u8]) -> Result<(), SignatureError> {
    let key = VerifyingKey::from_bytes(&signer.0.0).map_err(|_| SignatureError::BadKey(*signer))?;
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

/// Checks many signatures and returns one verdict per item, identical to calling [`verify_one`]
/// on each.
///
/// How the verdicts stay identical. Batch verification and `verify_strict` can disagree only on
/// inputs with a small-order component: a key or `R` that is of small order (the identity
/// included) or outside the prime-order subgroup, or an `R`
/// whose encoding is not canonical. Every such item is checked alone with `verify_strict`. The
/// rest (keys and `R` canonical and torsion-free) go through `ed25519_dalek::verify_batch`,
/// where the batch equation holds exactly when every single equation does (up to the batch's
/// 2^-128 soundness error). When the batch fails, each of its items is checked alone, so the
/// culprits are named and the honest items still pass.
pub fn verify_many(items: &[VerifyItem<'_>]) -> Vec<Result<(), SignatureError>> {
    let mut verdicts: Vec<Option<Result<(), SignatureError>>> = vec![None; items.len()];
    let mut batch = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match batchable(item) {
            Some(key) => batch.push((i, key)),
            None => verdicts[i] = Some(verify_one(item.signer, item.signature, item.message)),
        }
    }
    let messages: Vec<&[u8]> = batch.iter().map(|(i, _)| items[*i].message).collect();
    let signatures: Vec<ed25519_dalek::Signature> =
        batch.iter().map(|(i, _)| ed25519_dalek::Signature::from_bytes(&items[*i].signature.0.0)).collect();
    let keys: Vec<VerifyingKey> = batch.iter().map(|(_, k)| *k).collect();
    let batch_ok = !batch.is_empty() && ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok();
    for (i, _) in &batch {
        let item = &items[*i];
        verdicts[*i] =
            Some(if batch_ok { Ok(()) } else { verify_one(item.signer, item.signature, item.message) });
    }
    verdicts.into_iter().map(|v| v.expect("every item got a verdict")).collect()
}

/// The verifying key when the item's key and `R` are canonical and torsion-free, so that batch
/// verification and `verify_strict` agree on it.
fn batchable(item: &VerifyItem<'_>) -> Option<VerifyingKey> {
    let key = VerifyingKey::from_bytes(&item.signer.0.0).ok()?;
    let key_point = CompressedEdwardsY(item.signer.0.0).decompress()?;
    let r_bytes: [u8; 32] = item.signature.0[..32].try_into().expect("32 bytes");
    let r_point = CompressedEdwardsY(r_bytes).decompress()?;
    let canonical = key_point.compress().0 == item.signer.0.0 && r_point.compress().0 == r_bytes;
    // s must be canonical too; `verify_batch` rejects the whole batch otherwise, which would
    // still give the right verdicts through the fallback, but costs a batch.
    let s_bytes: [u8; 32] = item.signature.0[32..].try_into().expect("32 bytes");
    let s_canonical = bool::from(curve25519_dalek::Scalar::from_canonical_bytes(s_bytes).is_some());
    // The identity is torsion-free but of small order; strict verification refuses it.
    let prime_order = |p: &curve25519_dalek::EdwardsPoint| p.is_torsion_free() && !p.is_small_order();
    (canonical && s_canonical && prime_order(&key_point) && prime_order(&r_point)).then_some(key)
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
