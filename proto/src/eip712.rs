//! EIP-712 typed data for what Ethereum keys sign: the final report, the dispute and the
//! arbitrator's ruling, plus secp256k1 signing and recovery.
//!
//! The domain is `{name: "fixd", version: "1", chainId, verifyingContract}`, bound to the chain
//! and the `SettlementOracle` contract, so a signature cannot be replayed on another chain or
//! contract. The Solidity structs (in `contracts/SettlementOracle.sol`) are, field for field:
//!
//! ```solidity
//! struct BondOutcome { bytes32 disputeId; address disputer; uint256 bond; uint256 refund;
//!                      uint256 reward; uint256 pooled; uint256 burned; }
//! struct FinalReport { bytes32 settlementId; uint256 value; uint32 round; BondOutcome[] outcomes; }
//! struct FinalReportBatch { FinalReport[] reports; }
//! struct Dispute { bytes32 settlementId; bytes32 disputeId; bytes32 proposalHash;
//!                  bool hasClaimedValue; uint256 claimedValue; uint8 reason; string evidence;
//!                  uint256 bond; bytes32 bondTx; address disputer; }
//! struct ArbitratorRuling { bytes32 settlementId; bytes32 disputeId; uint256 value; bool upheld; }
//! ```
//!
//! Values are the raw WAD integers; amounts are wei. Signatures are 65 bytes `r ‖ s ‖ v` with
//! `v ∈ {27, 28}`. High-`s` signatures are refused (the contract refuses them too), so each
//! signer has one valid signature per digest.

use alloy_primitives::{Address, B256, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::{Eip712Domain, SolStruct, eip712_domain};

use crate::types::dispute::{ArbitratorRuling, Dispute};
pub use crate::types::dispute::{SignedDispute, SignedRuling};
pub use crate::types::report::ReportSignature;
use crate::types::report::{BondOutcome, FinalReport, FinalReportBatch};

/// Solidity mirrors of the signed structs.
pub mod sol {
    alloy_sol_types::sol! {
        #[derive(Debug, PartialEq, Eq)]
        struct BondOutcome {
            bytes32 disputeId;
            address disputer;
            uint256 bond;
            uint256 refund;
            uint256 reward;
            uint256 pooled;
            uint256 burned;
        }

        #[derive(Debug, PartialEq, Eq)]
        struct FinalReport {
            bytes32 settlementId;
            uint256 value;
            uint32 round;
            BondOutcome[] outcomes;
        }

        #[derive(Debug, PartialEq, Eq)]
        struct FinalReportBatch {
            FinalReport[] reports;
        }

        #[derive(Debug, PartialEq, Eq)]
        struct Dispute {
            bytes32 settlementId;
            bytes32 disputeId;
            bytes32 proposalHash;
            bool hasClaimedValue;
            uint256 claimedValue;
            uint8 reason;
            string evidence;
            uint256 bond;
            bytes32 bondTx;
            address disputer;
        }

        #[derive(Debug, PartialEq, Eq)]
        struct ArbitratorRuling {
            bytes32 settlementId;
            bytes32 disputeId;
            uint256 value;
            bool upheld;
        }
    }
}

/// A secp256k1 signature, 65 bytes `r ‖ s ‖ v` (v = 27 or 28). Hex in JSON.
pub use crate::types::report::EthSignature;

/// Why an Ethereum signature is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EthSignatureError {
    #[error("signature is not 65 bytes r ‖ s ‖ v with v = 27 or 28")]
    Malformed,
    #[error("signature has a high s value; sign again with a low-s (EIP-2) signer")]
    HighS,
    #[error("signature does not recover to an address")]
    Unrecoverable,
    #[error("signature recovers to {recovered}, expected {expected}")]
    WrongSigner { recovered: Address, expected: Address },
}

/// The EIP-712 domain of one `SettlementOracle` deployment.
pub fn domain(chain_id: u64, contract: Address) -> Eip712Domain {
    eip712_domain! {
        name: "fixd",
        version: "1",
        chain_id: chain_id,
        verifying_contract: contract,
    }
}

/// A value that Ethereum keys sign as EIP-712 typed data.
pub trait TypedData {
    /// The Solidity struct.
    type Sol: SolStruct;
    /// Converts to the Solidity struct.
    fn to_sol(&self) -> Self::Sol;

    /// `keccak256(0x1901 ‖ domainSeparator ‖ hashStruct(self))`.
    fn eip712_digest(&self, domain: &Eip712Domain) -> B256 {
        self.to_sol().eip712_signing_hash(domain)
    }
}

impl TypedData for BondOutcome {
    type Sol = sol::BondOutcome;
    fn to_sol(&self) -> sol::BondOutcome {
        sol::BondOutcome {
            disputeId: self.dispute_id,
            disputer: self.disputer,
            bond: U256::from(self.bond),
            refund: U256::from(self.refund),
            reward: U256::from(self.reward),
            pooled: U256::from(self.pooled),
            burned: U256::from(self.burned),
        }
    }
}

impl TypedData for FinalReport {
    type Sol = sol::FinalReport;
    fn to_sol(&self) -> sol::FinalReport {
        sol::FinalReport {
            settlementId: self.settlement_id,
            value: U256::from(self.value.raw()),
            round: self.round,
            outcomes: self.outcomes.iter().map(TypedData::to_sol).collect(),
        }
    }
}

impl TypedData for FinalReportBatch {
    type Sol = sol::FinalReportBatch;
    fn to_sol(&self) -> sol::FinalReportBatch {
        sol::FinalReportBatch { reports: self.reports.iter().map(TypedData::to_sol).collect() }
    }
}

impl TypedData for Dispute {
    type Sol = sol::Dispute;
    fn to_sol(&self) -> sol::Dispute {
        sol::Dispute {
            settlementId: self.settlement_id,
            disputeId: self.dispute_id,
            proposalHash: self.proposal_hash,
            hasClaimedValue: self.claimed_value.is_some(),
            claimedValue: U256::from(self.claimed_value.map_or(0, |v| v.raw())),
            reason: self.reason.code(),
            evidence: self.evidence.clone(),
            bond: U256::from(self.bond_wei),
            bondTx: self.bond_tx,
            disputer: self.disputer,
        }
    }
}

impl TypedData for ArbitratorRuling {
    type Sol = sol::ArbitratorRuling;
    fn to_sol(&self) -> sol::ArbitratorRuling {
        sol::ArbitratorRuling {
            settlementId: self.settlement_id,
            disputeId: self.dispute_id,
            value: U256::from(self.value.raw()),
            upheld: self.upheld,
        }
    }
}

/// Signs typed data with a secp256k1 key. The signer produces low-s signatures.
pub fn sign_typed<T: TypedData>(key: &PrivateKeySigner, domain: &Eip712Domain, data: &T) -> EthSignature {
    let digest = data.eip712_digest(domain);
    let signature = key.sign_hash_sync(&digest).expect("a local secp256k1 key signs any 32-byte digest");
    EthSignature::from(signature.as_bytes())
}

/// Recovers the signer of typed data, refusing malformed and high-s signatures.
pub fn recover_typed<T: TypedData>(
    domain: &Eip712Domain,
    data: &T,
    signature: &EthSignature,
) -> Result<Address, EthSignatureError> {
    recover_digest(&data.eip712_digest(domain), signature)
}

/// Recovers the signer of a digest, refusing malformed and high-s signatures.
pub fn recover_digest(digest: &B256, signature: &EthSignature) -> Result<Address, EthSignatureError> {
    if !matches!(signature[64], 27 | 28) {
        return Err(EthSignatureError::Malformed);
    }
    let sig = alloy_primitives::Signature::from_raw(signature.as_slice())
        .map_err(|_| EthSignatureError::Malformed)?;
    if sig.normalize_s().is_some() {
        return Err(EthSignatureError::HighS);
    }
    sig.recover_address_from_prehash(digest).map_err(|_| EthSignatureError::Unrecoverable)
}

/// Checks that typed data was signed by `expected`.
pub fn verify_typed<T: TypedData>(
    domain: &Eip712Domain,
    data: &T,
    signature: &EthSignature,
    expected: Address,
) -> Result<(), EthSignatureError> {
    let recovered = recover_typed(domain, data, signature)?;
    if recovered == expected { Ok(()) } else { Err(EthSignatureError::WrongSigner { recovered, expected }) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Wad;

    fn key(byte: u8) -> PrivateKeySigner {
        PrivateKeySigner::from_bytes(&B256::repeat_byte(byte)).unwrap()
    }

    fn report() -> FinalReport {
        FinalReport {
            settlement_id: B256::repeat_byte(1),
            value: Wad::parse("2434.34").unwrap(),
            round: 0,
            outcomes: vec![BondOutcome { bond: 10, refund: 10, reward: 5, ..Default::default() }],
        }
    }

    #[test]
    fn sign_and_recover_round_trip() {
        let domain = domain(31337, Address::repeat_byte(0xaa));
        let k = key(3);
        let sig = sign_typed(&k, &domain, &report());
        assert_eq!(recover_typed(&domain, &report(), &sig), Ok(k.address()));
        assert_eq!(verify_typed(&domain, &report(), &sig, k.address()), Ok(()));
    }

    #[test]
    fn replay_on_another_chain_or_contract_fails() {
        let k = key(3);
        let sig = sign_typed(&k, &domain(31337, Address::repeat_byte(0xaa)), &report());
        for other in [domain(1, Address::repeat_byte(0xaa)), domain(31337, Address::repeat_byte(0xbb))] {
            assert!(matches!(
                verify_typed(&other, &report(), &sig, k.address()),
                Err(EthSignatureError::WrongSigner { .. }) | Err(EthSignatureError::Unrecoverable)
            ));
        }
    }

    #[test]
    fn high_s_and_bad_v_are_refused() {
        let domain = domain(31337, Address::ZERO);
        let sig = sign_typed(&key(3), &domain, &report());
        let parsed = alloy_primitives::Signature::from_raw(sig.as_slice()).unwrap();
        let n = U256::from_str_radix("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141", 16)
            .unwrap();
        let high = alloy_primitives::Signature::new(parsed.r(), n - parsed.s(), !parsed.v());
        let high = EthSignature::from(high.as_bytes());
        assert_eq!(recover_typed(&domain, &report(), &high), Err(EthSignatureError::HighS));
        let mut bad_v = sig;
        bad_v[64] = 29;
        assert_eq!(recover_typed(&domain, &report(), &bad_v), Err(EthSignatureError::Malformed));
    }
}
