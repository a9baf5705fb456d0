//! A [`Publication`] as `publish` takes it: the `FinalReport` and the packed signatures, signed
//! by the real committee keys over the EIP-712 digest that `fixd_proto::eip712` defines (the
//! digest the nodes sign; a test checks that the contract's `hashReport` agrees). And a
//! [`BatchPublication`] as `publishBatch` takes it: the packed reports, and the signatures over
//! the digest of proto's `FinalReportBatch` (checked against the contract's `hashBatch` too).

use alloy_primitives::{B256, Bytes, U256, keccak256};
use alloy_signer::SignerSync;
use alloy_sol_types::Eip712Domain;
use alloy_sol_types::SolStruct;
use fixd_proto::eip712::{self, TypedData};
use fixd_proto::types::report::{FinalReport, FinalReportBatch};
use fixd_proto::value::Wad;

use crate::artifact::SettlementOracle;
use crate::call::{BatchPublication, BatchSigned, BatchedReport, Packing, Publication, Signatures};
use crate::world::{CHAIN_ID, dispute_id, settlement_id, world};

/// The order of secp256k1: a high-`s` twin of `(r, s)` is `(r, N − s)` with the parity flipped.
const SECP256K1_N: U256 = U256::from_be_slice(&alloy_primitives::hex!(
    "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"
));

/// The report of `p` in proto's EIP-712 struct (what members sign).
fn proto_report(p: &Publication) -> eip712::sol::FinalReport {
    eip712::sol::FinalReport {
        settlementId: settlement_id(p.settlement),
        value: p.value,
        round: p.round,
        outcomes: p
            .outcomes
            .iter()
            .map(|o| eip712::sol::BondOutcome {
                disputeId: dispute_id(o.dispute),
                disputer: o.disputer.address(),
                bond: U256::from(o.bond),
                refund: U256::from(o.refund),
                reward: U256::from(o.reward),
                pooled: U256::from(o.pooled),
                burned: U256::from(o.burned),
            })
            .collect(),
    }
}

/// The report of `p` as the contract's ABI types it, field for field the same.
pub fn report(p: &Publication) -> SettlementOracle::FinalReport {
    let r = proto_report(p);
    SettlementOracle::FinalReport {
        settlementId: r.settlementId,
        value: r.value,
        round: r.round,
        outcomes: r
            .outcomes
            .into_iter()
            .map(|o| SettlementOracle::BondOutcome {
                disputeId: o.disputeId,
                disputer: o.disputer,
                bond: o.bond,
                refund: o.refund,
                reward: o.reward,
                pooled: o.pooled,
                burned: o.burned,
            })
            .collect(),
    }
}

/// The EIP-712 domain of the run's oracle (`world().oracle`, on [`CHAIN_ID`]).
pub fn domain() -> Eip712Domain {
    eip712::domain(CHAIN_ID, world().oracle)
}

/// The digest members sign for `p` on the run's oracle.
pub fn digest(p: &Publication) -> B256 {
    proto_report(p).eip712_signing_hash(&domain())
}

/// `publish`'s `signatures`: 65 bytes `r ‖ s ‖ v` each, packed, spoiled as `p` says.
pub fn signatures(p: &Publication) -> Bytes {
    sign(digest(p), &p.signatures)
}

/// A report without outcomes of the settlement `id`, as the committee signs it: what a batch
/// carries, and what a `publish` of an undisputed settlement carries.
pub fn bare_report(id: B256, value: u128, round: u32) -> FinalReport {
    FinalReport { settlement_id: id, value: Wad::from_raw(value), round, outcomes: Vec::new() }
}

/// A batched report as the committee signs it: a `FinalReport` without outcomes.
fn proto_batched(r: &BatchedReport) -> FinalReport {
    bare_report(settlement_id(r.settlement), r.value, r.round)
}

/// The digest members sign for a batch of `reports` on the run's oracle: proto's
/// `FinalReportBatch`, the typed data a node signs with `eip712::sign_typed`.
pub fn batch_digest(reports: &[BatchedReport]) -> B256 {
    FinalReportBatch { reports: reports.iter().map(proto_batched).collect() }.eip712_digest(&domain())
}

/// `publishBatch`'s `reports`, packed by proto's [`FinalReportBatch::packed`] (an empty batch
/// packs to no bytes), then spoiled as `b.packing` says.
pub fn packed_reports(b: &BatchPublication) -> Bytes {
    let batch = FinalReportBatch { reports: b.reports.iter().map(proto_batched).collect() };
    let mut packed = batch.packed().unwrap_or_default();
    match b.packing {
        Packing::Whole => {}
        Packing::ExtraByte => packed.push(0),
        Packing::MissingByte => {
            packed.pop();
        }
    }
    packed.into()
}

/// `publishBatch`'s `signatures`: packed as `publish`'s, over what `b.signed` names.
pub fn batch_signatures(b: &BatchPublication) -> Bytes {
    let digest = match &b.signed {
        BatchSigned::Batch(reports) => batch_digest(reports),
        BatchSigned::Report(report) => proto_batched(report).eip712_digest(&domain()),
    };
    sign(digest, &b.signatures)
}

/// The packed signatures of `digest` as `signatures` says: 65 bytes `r ‖ s ‖ v` each.
pub fn sign(digest: B256, signatures: &Signatures) -> Bytes {
    let mut packed = Vec::with_capacity(65 * signatures.specs.len() + 1);
    for spec in &signatures.specs {
        let key = &world().keys[usize::from(spec.key)];
        let signed = if spec.wrong_digest { keccak256(digest) } else { digest };
        let signature = key.sign_hash_sync(&signed).expect("a local key signs any 32-byte digest");
        let (mut s, mut odd) = (signature.s(), signature.v());
        if spec.high_s {
            s = SECP256K1_N - s;
            odd = !odd;
        }
        let v = if spec.bad_v { 29 } else { 27 + u8::from(odd) };
        packed.extend_from_slice(&signature.r().to_be_bytes::<32>());
        packed.extend_from_slice(&s.to_be_bytes::<32>());
        packed.push(v);
    }
    if signatures.extra_byte {
        packed.push(0);
    }
    if signatures.truncated {
        packed.pop();
    }
    packed.into()
}
