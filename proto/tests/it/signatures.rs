//! Batch verification gives exactly the verdicts of one-by-one strict verification, including on
//! malleable signatures, weak keys, mixed-order keys and mixed-order nonces.

use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::{EdwardsPoint, Scalar};
use ed25519_dalek::{Signer, SigningKey};
use fixd_proto::signing::{PublicKey, Signature, SignatureError, VerifyItem, verify_many, verify_one};
use proptest::prelude::*;
use sha2::{Digest, Sha512};

/// One test item: key, signature and message.
#[derive(Clone, Debug)]
struct Item {
    signer: PublicKey,
    signature: Signature,
    message: Vec<u8>,
}

fn item(key: [u8; 32], sig_r: [u8; 32], sig_s: [u8; 32], message: Vec<u8>) -> Item {
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&sig_r);
    sig[32..].copy_from_slice(&sig_s);
    Item { signer: PublicKey(key.into()), signature: Signature(sig.into()), message }
}

fn hram(r: &[u8; 32], a: &[u8; 32], m: &[u8]) -> Scalar {
    let mut h = Sha512::new();
    h.update(r);
    h.update(a);
    h.update(m);
    Scalar::from_bytes_mod_order_wide(&h.finalize().into())
}

/// The kinds of item the strategy mixes.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Honest,
    WrongMessage,
    /// `s + ℓ`: the same signature with a non-canonical scalar (malleability).
    Malleable,
    /// A small-order key with the trivial forgery `R = identity, s = 0`, which the cofactorless
    /// batch equation alone would accept.
    WeakKeyForgery,
    /// Key `A + T` for 8-torsion `T`, with a signature crafted so that strict verification
    /// accepts it.
    MixedOrderKey,
    /// Nonce `R + T`: the cofactored equation holds, strict verification rejects.
    MixedOrderNonce,
    Garbage,
}

fn make(kind: Kind, seed: [u8; 32], torsion: usize, message: Vec<u8>) -> Item {
    let key = SigningKey::from_bytes(&seed);
    let public = key.verifying_key().to_bytes();
    match kind {
        Kind::Honest => {
            let sig = key.sign(&message).to_bytes();
            item(public, sig[..32].try_into().unwrap(), sig[32..].try_into().unwrap(), message)
        }
        Kind::WrongMessage => {
            let sig = key.sign(b"another message").to_bytes();
            item(public, sig[..32].try_into().unwrap(), sig[32..].try_into().unwrap(), message)
        }
        Kind::Malleable => {
            let sig = key.sign(&message).to_bytes();
            let s = Scalar::from_bytes_mod_order(sig[32..].try_into().unwrap());
            // s + ℓ as a little-endian 256-bit integer; it still fits in 253 bits.
            let ell: [u8; 32] = [
                0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
                0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
            ];
            let mut sum = [0u8; 32];
            let mut carry = 0u16;
            for i in 0..32 {
                let v = u16::from(s.to_bytes()[i]) + u16::from(ell[i]) + carry;
                sum[i] = v as u8;
                carry = v >> 8;
            }
            item(public, sig[..32].try_into().unwrap(), sum, message)
        }
        Kind::WeakKeyForgery => {
            let weak = EIGHT_TORSION[torsion % 8].compress().to_bytes();
            let identity = EdwardsPoint::default().compress().to_bytes();
            item(weak, identity, [0u8; 32], message)
        }
        Kind::MixedOrderKey | Kind::MixedOrderNonce => {
            let a = Scalar::from_bytes_mod_order(seed);
            let r = Scalar::from_bytes_mod_order(hram(&seed, &seed, &message).to_bytes());
            let t = EIGHT_TORSION[1 + torsion % 7];
            let (key_point, r_point) = if matches!(kind, Kind::MixedOrderKey) {
                // R = rB − T_j closes [s]B − [k]A' = R exactly when k·T = T_j; k depends on R, so
                // the loop below tries each T_j and then the next nonce.
                (ED25519_BASEPOINT_POINT * a + t, None)
            } else {
                (ED25519_BASEPOINT_POINT * a, Some(ED25519_BASEPOINT_POINT * r + t))
            };
            let a_bytes = key_point.compress().to_bytes();
            match r_point {
                Some(r_point) => {
                    let r_bytes = r_point.compress().to_bytes();
                    let s = r + hram(&r_bytes, &a_bytes, &message) * a;
                    item(a_bytes, r_bytes, s.to_bytes(), message)
                }
                None => {
                    let mut nonce = r;
                    loop {
                        for j in 0u8..8 {
                            let candidate = ED25519_BASEPOINT_POINT * nonce - EIGHT_TORSION[usize::from(j)];
                            let r_bytes = candidate.compress().to_bytes();
                            let k = hram(&r_bytes, &a_bytes, &message);
                            if (t * k) == EIGHT_TORSION[usize::from(j)] {
                                let s = nonce + k * a;
                                return item(a_bytes, r_bytes, s.to_bytes(), message);
                            }
                        }
                        nonce += Scalar::ONE;
                    }
                }
            }
        }
        Kind::Garbage => item(seed, hram(&seed, &seed, &message).to_bytes(), seed, message),
    }
}

fn kind() -> impl Strategy<Value = Kind> {
    prop::sample::select(vec![
        Kind::Honest,
        Kind::Honest,
        Kind::Honest,
        Kind::WrongMessage,
        Kind::Malleable,
        Kind::WeakKeyForgery,
        Kind::MixedOrderKey,
        Kind::MixedOrderNonce,
        Kind::Garbage,
    ])
}

fn items() -> impl Strategy<Value = Vec<Item>> {
    prop::collection::vec(
        (kind(), any::<[u8; 32]>(), 0usize..8, prop::collection::vec(any::<u8>(), 0..48))
            .prop_map(|(k, seed, t, m)| make(k, seed, t, m)),
        0..12,
    )
}

/// Verdicts in one batch, then one by one.
type Verdicts = Vec<Result<(), SignatureError>>;

fn verdicts(items: &[Item]) -> (Verdicts, Verdicts) {
    let refs: Vec<VerifyItem<'_>> = items
        .iter()
        .map(|i| VerifyItem { signer: &i.signer, signature: &i.signature, message: &i.message })
        .collect();
    let batch = verify_many(&refs);
    let single = items.iter().map(|i| verify_one(&i.signer, &i.signature, &i.message)).collect();
    (batch, single)
}

#[test]
fn each_kind_gets_the_strict_verdict() {
    let m = b"fixd".to_vec();
    let expect = [
        (Kind::Honest, true),
        (Kind::WrongMessage, false),
        (Kind::Malleable, false),
        (Kind::WeakKeyForgery, false),
        (Kind::MixedOrderKey, true),
        (Kind::MixedOrderNonce, false),
    ];
    for (kind, valid) in expect {
        let it = make(kind, [5u8; 32], 3, m.clone());
        assert_eq!(verify_one(&it.signer, &it.signature, &it.message).is_ok(), valid, "{kind:?}");
        // Alone and inside a batch of honest items, the verdict is the same.
        let mut batch = vec![
            make(Kind::Honest, [1u8; 32], 0, m.clone()),
            it,
            make(Kind::Honest, [2u8; 32], 0, m.clone()),
        ];
        let (b, s) = verdicts(&batch);
        assert_eq!(b, s, "{kind:?}");
        batch.truncate(1);
        assert_eq!(verdicts(&batch).0, vec![Ok(())]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn batch_and_single_verdicts_agree(items in items()) {
        let (batch, single) = verdicts(&items);
        prop_assert_eq!(batch, single);
    }
}
