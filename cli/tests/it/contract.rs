//! `SettlementOracle` against a real anvil (issue 6): publication and every revert with its
//! exact custom error, the bond payouts to the wei, the EIP-712 digest against fixd-proto's,
//! the committed artifact against a fresh solc build, and the gas of `publish`. Then the attacks
//! of issue 16, each by name: re-entering payees (first, in the middle, two in either order), an
//! EIP-7702 delegation after signing, two settlements sharing a small pool, and a stolen owner
//! key whose committee change is seen and cancelled.
//!
//! anvil comes from `scripts/install-tools.sh` (npm `@foundry-rs/anvil`, pinned) at
//! `.tools/bin/anvil`, or from `FIXD_ANVIL`. A missing anvil fails these tests; it never skips
//! them.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use alloy::node_bindings::{Anvil, AnvilInstance};
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionReceipt;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::Eip712Domain;
use fixd_node::chain::contract::Deployment;
use fixd_node::chain::contract::SettlementOracle::{self, SettlementOracleErrors, SettlementOracleInstance};
use fixd_node::chain::{BatchError, deploy, packed_batch, report_to_sol};
use fixd_proto::eip712::{self, EthSignature, TypedData};
use fixd_proto::types::report::{BondOutcome, FinalReport, FinalReportBatch};
use fixd_proto::value::Wad;

use crate::harness::anvil_path;

const ETH: u128 = 1_000_000_000_000_000_000;
/// The genesis default: an upheld dispute earns half its bond.
const REWARD_BP: u32 = 5000;
/// Committee changes apply this long after they are proposed.
const COMMITTEE_DELAY: u64 = 3600;
const SECP256K1_N: &str = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141";

pub(crate) fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("cli/ has a parent").to_path_buf()
}

/// A fresh anvil with the oracle deployed by account 0 and a committee of `n` member keys.
pub(crate) struct Chain {
    _anvil: AnvilInstance,
    pub(crate) provider: DynProvider,
    pub(crate) oracle: SettlementOracleInstance<DynProvider>,
    /// Committee keys, ascending by address.
    members: Vec<PrivateKeySigner>,
    domain: Eip712Domain,
    chain_id: u64,
    /// anvil's funded accounts: 0 deploys and publishes, 1 and 2 dispute, 3 funds the pool.
    pub(crate) accounts: Vec<Address>,
}

impl Chain {
    pub(crate) async fn start(n: usize, threshold: usize) -> Chain {
        // alloy builds its HTTP client on the workspace reqwest, which brings no TLS provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let anvil =
            Anvil::new().path(anvil_path()).try_spawn().expect("anvil starts on a free loopback port");
        let wallet = anvil.wallet().expect("anvil prints its dev keys");
        let provider = ProviderBuilder::new().wallet(wallet).connect_http(anvil.endpoint_url()).erased();
        let mut members: Vec<_> = (0..n).map(|i| key(1000 + i as u64)).collect();
        members.sort_by_key(|k| k.address());
        let deployment = Deployment {
            owner: anvil.addresses()[0],
            members: members.iter().map(|k| k.address()).collect(),
            threshold,
            committee_delay_secs: COMMITTEE_DELAY,
            reward_bp: REWARD_BP,
        };
        let (address, _) = deploy(&provider, &deployment, Duration::from_secs(30)).await.expect("deploys");
        let oracle = SettlementOracle::new(address, provider.clone());
        let chain_id = anvil.chain_id();
        Chain {
            accounts: anvil.addresses().to_vec(),
            _anvil: anvil,
            provider,
            oracle,
            members,
            domain: eip712::domain(chain_id, address),
            chain_id,
        }
    }

    pub(crate) fn address(&self) -> Address {
        *self.oracle.address()
    }

    /// Signatures of `signers` (indexes into the ascending committee), in the order given.
    pub(crate) fn sign(&self, report: &FinalReport, signers: &[usize]) -> Vec<Bytes> {
        signers
            .iter()
            .map(|&i| sig_bytes(eip712::sign_typed(&self.members[i], &self.domain, report)))
            .collect()
    }

    pub(crate) async fn publish(&self, report: &FinalReport, signatures: Vec<Bytes>) -> TransactionReceipt {
        let pending = self
            .oracle
            .publish(report_to_sol(report), pack(signatures))
            .send()
            .await
            .expect("publish is sent");
        let receipt = pending.get_receipt().await.unwrap();
        assert!(receipt.status(), "publish reverted");
        receipt
    }

    /// Signatures of `signers` over a batch, in the order given.
    fn sign_batch(&self, batch: &FinalReportBatch, signers: &[usize]) -> Vec<Bytes> {
        signers
            .iter()
            .map(|&i| sig_bytes(eip712::sign_typed(&self.members[i], &self.domain, batch)))
            .collect()
    }

    async fn publish_batch(&self, batch: &FinalReportBatch, signatures: Vec<Bytes>) -> TransactionReceipt {
        let reports = packed_batch(batch).expect("the batch packs");
        let pending =
            self.oracle.publishBatch(reports, pack(signatures)).send().await.expect("publishBatch is sent");
        let receipt = pending.get_receipt().await.unwrap();
        assert!(receipt.status(), "publishBatch reverted");
        receipt
    }

    async fn publish_batch_error(&self, reports: Bytes, signatures: Vec<Bytes>) -> SettlementOracleErrors {
        revert_of(self.oracle.publishBatch(reports, pack(signatures)).call().await)
    }

    async fn settlement(&self, id: B256) -> (U256, u64, u8) {
        let s = self.oracle.getSettlement(id).call().await.unwrap();
        (s.value, s.publishedAt, s.status)
    }

    async fn publish_error(&self, report: &FinalReport, signatures: Vec<Bytes>) -> SettlementOracleErrors {
        revert_of(self.oracle.publish(report_to_sol(report), pack(signatures)).call().await)
    }

    /// Escrows a bond and returns its transaction.
    async fn post_bond(&self, from: Address, settlement: B256, dispute: B256, wei: u128) -> B256 {
        let pending =
            self.oracle.postBond(settlement, dispute).from(from).value(U256::from(wei)).send().await.unwrap();
        let receipt = pending.get_receipt().await.unwrap();
        assert!(receipt.status());
        receipt.transaction_hash
    }

    async fn fund_pool(&self, wei: u128) {
        let pending =
            self.oracle.fundPool().from(self.accounts[3]).value(U256::from(wei)).send().await.unwrap();
        assert!(pending.get_receipt().await.unwrap().status());
    }

    pub(crate) async fn balance(&self, who: Address) -> U256 {
        self.provider.get_balance(who).await.unwrap()
    }

    async fn pool(&self) -> U256 {
        self.oracle.pool().call().await.unwrap()
    }

    async fn burned(&self) -> U256 {
        self.oracle.totalBurned().call().await.unwrap()
    }

    /// The contract's books balance to the wei:
    /// `balance = pool + totalReserved + totalEscrowed + totalCredits + totalBurned`.
    async fn assert_books_balance(&self) {
        let o = &self.oracle;
        let books = o.pool().call().await.unwrap()
            + o.totalReserved().call().await.unwrap()
            + o.totalEscrowed().call().await.unwrap()
            + o.totalCredits().call().await.unwrap()
            + o.totalBurned().call().await.unwrap();
        assert_eq!(self.balance(self.address()).await, books, "the contract's balance is its books");
    }

    /// Moves the chain's clock `secs` forward and mines a block.
    async fn advance(&self, secs: u64) {
        let _: i64 = self.provider.raw_request("evm_increaseTime".into(), (secs,)).await.unwrap();
        let _: String = self.provider.raw_request("evm_mine".into(), ()).await.unwrap();
    }
}

fn key(n: u64) -> PrivateKeySigner {
    PrivateKeySigner::from_bytes(&B256::from(U256::from(n))).unwrap()
}

/// Signatures as `publish` takes them: 65 bytes each, back to back.
fn pack(signatures: Vec<Bytes>) -> Bytes {
    signatures.concat().into()
}

fn sig_bytes(signature: EthSignature) -> Bytes {
    Bytes::copy_from_slice(signature.as_slice())
}

fn revert_of<T: std::fmt::Debug>(result: Result<T, alloy::contract::Error>) -> SettlementOracleErrors {
    let error = result.expect_err("the call should revert");
    error
        .as_decoded_interface_error::<SettlementOracleErrors>()
        .unwrap_or_else(|| panic!("not a SettlementOracle custom error: {error}"))
}

fn report(settlement: u8, value: &str, outcomes: Vec<BondOutcome>) -> FinalReport {
    FinalReport {
        settlement_id: B256::repeat_byte(settlement),
        value: Wad::parse(value).unwrap(),
        round: 1,
        outcomes,
    }
}

fn upheld(dispute: B256, disputer: Address, bond: u128, reward: u128) -> BondOutcome {
    BondOutcome { dispute_id: dispute, disputer, bond, refund: bond, reward, pooled: 0, burned: 0 }
}

/// The rejected split of fixd-dispute's ledger: half (rounded down) pooled, the rest burned.
fn rejected(dispute: B256, disputer: Address, bond: u128) -> BondOutcome {
    BondOutcome {
        dispute_id: dispute,
        disputer,
        bond,
        refund: 0,
        reward: 0,
        pooled: bond / 2,
        burned: bond - bond / 2,
    }
}

#[tokio::test]
async fn on_chain_digest_matches_fixd_proto() {
    let chain = Chain::start(4, 3).await;
    assert_eq!(chain.oracle.domainSeparator().call().await.unwrap(), chain.domain.separator());

    // The pinned vector's report, re-hashed under this deployment's domain.
    let vectors: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(workspace_root().join("proto/tests/vectors/eip712.json")).unwrap(),
    )
    .unwrap();
    let vector = &vectors["vectors"][0];
    assert_eq!(vector["type"], "final_report");
    let pinned: FinalReport = serde_json::from_value(vector["data"].clone()).unwrap();
    let type_hash = chain.oracle.FINAL_REPORT_TYPEHASH().call().await.unwrap();
    assert_eq!(type_hash.to_string(), vector["type_hash"].as_str().unwrap());
    // The Rust digest under the vector's own domain is the pinned one ...
    let vector_domain = eip712::domain(31337, vector_address(&vectors));
    assert_eq!(pinned.eip712_digest(&vector_domain).to_string(), vector["digest"].as_str().unwrap());

    // ... and the contract computes the Rust digest for every shape of report.
    let d = B256::repeat_byte(0xd1);
    let a = Address::repeat_byte(0xa1);
    for report in [
        pinned,
        report(1, "0", vec![]),
        report(2, "2434.34", vec![upheld(d, a, 10, 5), rejected(B256::repeat_byte(0xd2), a, 11)]),
        report(3, "340282366920938463463.374607431768211455", vec![]),
    ] {
        let on_chain = chain.oracle.hashReport(report_to_sol(&report)).call().await.unwrap();
        assert_eq!(on_chain, report.eip712_digest(&chain.domain), "{report:?}");
    }

    // The batch: its type hash is the vector's, and the contract's digest is the Rust one.
    let vector = &vectors["vectors"][1];
    assert_eq!(vector["type"], "final_report_batch");
    let type_hash = chain.oracle.FINAL_REPORT_BATCH_TYPEHASH().call().await.unwrap();
    assert_eq!(type_hash.to_string(), vector["type_hash"].as_str().unwrap());
    let pinned: FinalReportBatch = serde_json::from_value(vector["data"].clone()).unwrap();
    for batch in [
        pinned,
        FinalReportBatch { reports: vec![report(1, "0", vec![])] },
        FinalReportBatch { reports: vec![FinalReport { round: u32::MAX, ..report(9, "1", vec![]) }] },
        FinalReportBatch { reports: (1..=20).map(|i| report(i, "2598.5", vec![])).collect() },
        FinalReportBatch { reports: vec![report(2, "340282366920938463463.374607431768211455", vec![])] },
    ] {
        let Ok(reports) = packed_batch(&batch) else {
            // The pinned batch holds a report with a bond outcome, which only `publish` takes.
            assert_eq!(
                packed_batch(&batch),
                Err(BatchError::HasOutcomes(batch.reports[0].settlement_id)),
                "{batch:?}"
            );
            continue;
        };
        let on_chain = chain.oracle.hashBatch(reports).call().await.unwrap();
        assert_eq!(on_chain, batch.eip712_digest(&chain.domain), "{batch:?}");
    }
}

fn vector_address(vectors: &serde_json::Value) -> Address {
    vectors["domain"]["verifying_contract"].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn publish_stores_the_value_once() {
    let chain = Chain::start(4, 3).await;
    let r = report(1, "2598.5", vec![]);
    let (value, published_at, status) = {
        let s = chain.oracle.getSettlement(r.settlement_id).call().await.unwrap();
        (s.value, s.publishedAt, s.status)
    };
    assert_eq!((value, published_at, status), (U256::ZERO, 0, 0));

    let receipt = chain.publish(&r, chain.sign(&r, &[0, 2, 3])).await;
    let block =
        chain.provider.get_block_by_number(receipt.block_number.unwrap().into()).await.unwrap().unwrap();
    let s = chain.oracle.getSettlement(r.settlement_id).call().await.unwrap();
    assert_eq!(s.value, U256::from(r.value.raw()));
    assert_eq!(s.publishedAt, block.header.timestamp);
    assert_eq!(s.status, 1);
    let published = receipt.decoded_log::<SettlementOracle::ReportPublished>().expect("ReportPublished");
    assert_eq!((published.settlementId, published.value, published.round), (r.settlement_id, s.value, 1));

    // One report per settlement: the same report again, or another value, is refused.
    let again = chain.publish_error(&r, chain.sign(&r, &[0, 1, 2, 3])).await;
    assert_eq!(
        again,
        SettlementOracleErrors::AlreadyPublished(SettlementOracle::AlreadyPublished {
            settlementId: r.settlement_id
        })
    );
    let other = report(1, "2600", vec![]);
    let again = chain.publish_error(&other, chain.sign(&other, &[0, 1, 2])).await;
    assert!(matches!(again, SettlementOracleErrors::AlreadyPublished(_)));

    // All four members may sign; more than the threshold is fine.
    let r2 = report(2, "1500", vec![]);
    chain.publish(&r2, chain.sign(&r2, &[0, 1, 2, 3])).await;
}

#[tokio::test]
async fn publish_refuses_bad_signature_sets() {
    use SettlementOracleErrors as E;
    let chain = Chain::start(4, 3).await;
    let r = report(1, "2598.5", vec![]);

    // Too few.
    let e = chain.publish_error(&r, chain.sign(&r, &[0, 1])).await;
    assert_eq!(
        e,
        E::TooFewSignatures(SettlementOracle::TooFewSignatures { have: U256::from(2), need: U256::from(3) })
    );

    // A repeated signer, and signers out of order: both are "not ascending" at the second.
    let e = chain.publish_error(&r, chain.sign(&r, &[0, 0, 1])).await;
    assert_eq!(e, E::SignersNotAscending(SettlementOracle::SignersNotAscending { index: U256::from(1) }));
    let e = chain.publish_error(&r, chain.sign(&r, &[0, 2, 1])).await;
    assert_eq!(e, E::SignersNotAscending(SettlementOracle::SignersNotAscending { index: U256::from(2) }));

    // A key outside the committee, placed in ascending order.
    let outsider = key(7);
    let mut signers: Vec<(Address, Bytes)> = [0, 1]
        .iter()
        .map(|&i| {
            (chain.members[i].address(), sig_bytes(eip712::sign_typed(&chain.members[i], &chain.domain, &r)))
        })
        .collect();
    signers.push((outsider.address(), sig_bytes(eip712::sign_typed(&outsider, &chain.domain, &r))));
    signers.sort_by_key(|(a, _)| *a);
    let e = chain.publish_error(&r, signers.into_iter().map(|(_, s)| s).collect()).await;
    assert_eq!(e, E::SignerNotMember(SettlementOracle::SignerNotMember { signer: outsider.address() }));

    // A malformed signature: v not 27/28, r = 0 (no recovery), and one cut to 64 bytes (the
    // packed signatures are then no whole number of 65-byte signatures).
    let mut sigs = chain.sign(&r, &[0, 1, 2]);
    let mut bad = sigs[1].to_vec();
    bad[64] = 29;
    sigs[1] = bad.into();
    let e = chain.publish_error(&r, sigs).await;
    assert_eq!(e, E::BadSignature(SettlementOracle::BadSignature { index: U256::from(1) }));
    let mut sigs = chain.sign(&r, &[0, 1, 2]);
    let mut bad = sigs[2].to_vec();
    bad[..32].fill(0);
    sigs[2] = bad.into();
    let e = chain.publish_error(&r, sigs).await;
    assert_eq!(e, E::BadSignature(SettlementOracle::BadSignature { index: U256::from(2) }));
    let mut sigs = chain.sign(&r, &[0, 1, 2]);
    sigs[0] = sigs[0].slice(..64);
    let e = chain.publish_error(&r, sigs).await;
    assert_eq!(e, E::BadSignaturesLength(SettlementOracle::BadSignaturesLength { length: U256::from(194) }));

    // A high-s twin of a valid signature (s' = n − s, v flipped) recovers to the same member.
    let mut sigs = chain.sign(&r, &[0, 1, 2]);
    let n = U256::from_str_radix(SECP256K1_N, 16).unwrap();
    let s = U256::from_be_slice(&sigs[1][32..64]);
    let mut high = sigs[1].to_vec();
    high[32..64].copy_from_slice(&(n - s).to_be_bytes::<32>());
    high[64] = if high[64] == 27 { 28 } else { 27 };
    let high_sig = EthSignature::from_slice(&high);
    assert_eq!(eip712::recover_typed(&chain.domain, &r, &high_sig), Err(eip712::EthSignatureError::HighS));
    sigs[1] = high.into();
    let e = chain.publish_error(&r, sigs).await;
    assert_eq!(e, E::HighS(SettlementOracle::HighS { index: U256::from(1) }));

    // Replay: signatures for another chain id or another contract recover to strangers.
    for other in [
        eip712::domain(chain.chain_id + 1, chain.address()),
        eip712::domain(chain.chain_id, Address::repeat_byte(0xcc)),
    ] {
        let sigs: Vec<EthSignature> =
            (0..3).map(|i| eip712::sign_typed(&chain.members[i], &other, &r)).collect();
        let stranger = eip712::recover_typed(&chain.domain, &r, &sigs[0]).unwrap();
        let e = chain.publish_error(&r, sigs.into_iter().map(sig_bytes).collect()).await;
        assert_eq!(e, E::SignerNotMember(SettlementOracle::SignerNotMember { signer: stranger }));
    }

    // A signature over another report (here another value) is no signature over this one.
    let forged = report(1, "9999", vec![]);
    let e = chain.publish_error(&forged, chain.sign(&r, &[0, 1, 2])).await;
    assert!(matches!(e, E::SignerNotMember(_) | E::SignersNotAscending(_)), "{e:?}");

    // Nothing was published by any of it.
    assert_eq!(chain.oracle.getSettlement(r.settlement_id).call().await.unwrap().status, 0);
}

#[tokio::test]
async fn upheld_dispute_gets_bond_and_reward() {
    let chain = Chain::start(4, 3).await;
    let disputer = chain.accounts[1];
    let r0 = report(1, "2598.5", vec![]);
    let dispute = B256::repeat_byte(0xd1);
    let bond = ETH / 10;
    let reward = ETH / 20;
    chain.fund_pool(ETH).await;
    chain.post_bond(disputer, r0.settlement_id, dispute, bond).await;
    let escrow = chain.oracle.getEscrow(r0.settlement_id, dispute).call().await.unwrap();
    assert_eq!((escrow.disputer, escrow.amount), (disputer, U256::from(bond)));

    let before = chain.balance(disputer).await;
    let contract_before = chain.balance(chain.address()).await;
    let r = report(1, "2598.5", vec![upheld(dispute, disputer, bond, reward)]);
    let receipt = chain.publish(&r, chain.sign(&r, &[1, 2, 3])).await;
    assert_eq!(chain.balance(disputer).await - before, U256::from(bond + reward));
    assert_eq!(contract_before - chain.balance(chain.address()).await, U256::from(bond + reward));
    assert_eq!(chain.pool().await, U256::from(ETH - reward));
    let settled = receipt.decoded_log::<SettlementOracle::BondSettled>().expect("BondSettled");
    assert_eq!(
        (settled.disputeId, settled.refund, settled.reward),
        (dispute, U256::from(bond), U256::from(reward))
    );
    let escrow = chain.oracle.getEscrow(r.settlement_id, dispute).call().await.unwrap();
    assert_eq!(escrow.disputer, Address::ZERO, "a settled escrow is gone");
}

#[tokio::test]
async fn rejected_dispute_splits_bond_between_pool_and_burn() {
    let chain = Chain::start(4, 3).await;
    let disputer = chain.accounts[1];
    let id = B256::repeat_byte(1);
    let dispute = B256::repeat_byte(0xd1);
    let bond = ETH / 10 + 1; // odd: the odd wei is burned
    chain.post_bond(disputer, id, dispute, bond).await;
    let before = chain.balance(disputer).await;
    let contract_before = chain.balance(chain.address()).await;

    let r = report(1, "2598.5", vec![rejected(dispute, disputer, bond)]);
    chain.publish(&r, chain.sign(&r, &[0, 1, 2])).await;
    assert_eq!(chain.balance(disputer).await, before, "a rejected disputer gets nothing back");
    assert_eq!(chain.pool().await, U256::from(bond / 2));
    assert_eq!(chain.burned().await, U256::from(bond - bond / 2));
    assert_eq!(chain.burned().await + chain.pool().await, U256::from(bond));
    // Burned wei stay locked in the contract: its balance is pool + burned.
    assert_eq!(chain.balance(chain.address()).await, contract_before);
}

#[tokio::test]
async fn outcomes_must_match_their_escrows() {
    use SettlementOracleErrors as E;
    let chain = Chain::start(4, 3).await;
    let (alice, bob) = (chain.accounts[1], chain.accounts[2]);
    let id = B256::repeat_byte(1);
    let (d1, d2) = (B256::repeat_byte(0xd1), B256::repeat_byte(0xd2));
    let bond = ETH / 10;
    chain.post_bond(alice, id, d1, bond).await;

    let chain = &chain;
    let refuse = |outcome: BondOutcome| {
        let r = report(1, "2598.5", vec![outcome]);
        let sigs = chain.sign(&r, &[0, 1, 2]);
        async move { chain.publish_error(&r, sigs).await }
    };
    // The bond in the report is not the escrowed amount.
    let e = refuse(upheld(d1, alice, bond + 1, 0)).await;
    assert_eq!(
        e,
        E::WrongBond(SettlementOracle::WrongBond {
            disputeId: d1,
            escrowed: U256::from(bond),
            reported: U256::from(bond + 1)
        })
    );
    // No escrow for that dispute; an escrow posted by someone else.
    let e = refuse(upheld(d2, alice, bond, 0)).await;
    assert_eq!(e, E::UnknownEscrow(SettlementOracle::UnknownEscrow { settlementId: id, disputeId: d2 }));
    let e = refuse(upheld(d1, bob, bond, 0)).await;
    assert_eq!(
        e,
        E::WrongDisputer(SettlementOracle::WrongDisputer { disputeId: d1, escrowedBy: alice, reported: bob })
    );
    // refund + pooled + burned ≠ bond, including sums that would overflow.
    let e = refuse(BondOutcome { pooled: 1, ..upheld(d1, alice, bond, 0) }).await;
    assert_eq!(e, E::BondNotConserved(SettlementOracle::BondNotConserved { disputeId: d1 }));
    let e = refuse(BondOutcome { refund: u128::MAX, ..rejected(d1, alice, bond) }).await;
    assert_eq!(e, E::BondNotConserved(SettlementOracle::BondNotConserved { disputeId: d1 }));
    // A reward larger than the pool.
    let e = refuse(upheld(d1, alice, bond, 1)).await;
    assert_eq!(
        e,
        E::PoolTooSmall(SettlementOracle::PoolTooSmall {
            disputeId: d1,
            reward: U256::from(1),
            available: U256::ZERO
        })
    );
    // The same escrow twice in one report: the second finds it already settled.
    let twice = report(1, "2598.5", vec![upheld(d1, alice, bond, 0), upheld(d1, alice, bond, 0)]);
    let e = chain.publish_error(&twice, chain.sign(&twice, &[0, 1, 2])).await;
    assert_eq!(e, E::UnknownEscrow(SettlementOracle::UnknownEscrow { settlementId: id, disputeId: d1 }));

    // Escrows: one per (settlement, dispute), only before publication, never empty.
    let e = revert_of(chain.oracle.postBond(id, d1).from(bob).value(U256::from(1)).call().await);
    assert_eq!(e, E::EscrowExists(SettlementOracle::EscrowExists { settlementId: id, disputeId: d1 }));
    let e = revert_of(chain.oracle.postBond(id, d2).from(bob).call().await);
    assert_eq!(e, E::ZeroAmount(SettlementOracle::ZeroAmount {}));
    let e = revert_of(chain.oracle.reclaimBond(id, d1).call().await);
    assert_eq!(e, E::NotPublished(SettlementOracle::NotPublished { settlementId: id }));
    let r = report(1, "2598.5", vec![upheld(d1, alice, bond, 0)]);
    chain.publish(&r, chain.sign(&r, &[0, 1, 2])).await;
    let e = revert_of(chain.oracle.postBond(id, d2).from(bob).value(U256::from(1)).call().await);
    assert_eq!(e, E::AlreadyPublished(SettlementOracle::AlreadyPublished { settlementId: id }));
}

#[tokio::test]
async fn refused_dispute_reclaims_its_bond_after_publication() {
    use SettlementOracleErrors as E;
    let chain = Chain::start(4, 3).await;
    let (alice, bob) = (chain.accounts[1], chain.accounts[2]);
    let id = B256::repeat_byte(1);
    let (accepted, refused) = (B256::repeat_byte(0xd1), B256::repeat_byte(0xd2));
    chain.post_bond(alice, id, accepted, ETH / 10).await;
    chain.post_bond(bob, id, refused, ETH / 5).await;
    let r = report(1, "2598.5", vec![rejected(accepted, alice, ETH / 10)]);
    chain.publish(&r, chain.sign(&r, &[0, 1, 2])).await;

    // Anyone may send it home; it goes to the disputer.
    let before = chain.balance(bob).await;
    let pending = chain.oracle.reclaimBond(id, refused).from(chain.accounts[0]).send().await.unwrap();
    let receipt = pending.get_receipt().await.unwrap();
    assert!(receipt.status());
    assert_eq!(chain.balance(bob).await - before, U256::from(ETH / 5));
    let event = receipt.decoded_log::<SettlementOracle::BondReclaimed>().expect("BondReclaimed");
    assert_eq!((event.disputer, event.amount), (bob, U256::from(ETH / 5)));

    // Once only; and a bond the report settled is not reclaimable.
    let e = revert_of(chain.oracle.reclaimBond(id, refused).call().await);
    assert_eq!(e, E::UnknownEscrow(SettlementOracle::UnknownEscrow { settlementId: id, disputeId: refused }));
    let e = revert_of(chain.oracle.reclaimBond(id, accepted).call().await);
    assert_eq!(
        e,
        E::UnknownEscrow(SettlementOracle::UnknownEscrow { settlementId: id, disputeId: accepted })
    );
}

#[tokio::test]
async fn a_recipient_that_refuses_ether_is_credited() {
    let chain = Chain::start(4, 3).await;
    let disputer = chain.accounts[1];
    let id = B256::repeat_byte(1);
    let dispute = B256::repeat_byte(0xd1);
    chain.post_bond(disputer, id, dispute, ETH).await;
    // Turn the disputer into an account whose code always reverts.
    let set_code = |code: &'static [u8]| {
        let provider = chain.provider.clone();
        async move {
            provider
                .raw_request::<_, ()>("anvil_setCode".into(), (disputer, Bytes::from_static(code)))
                .await
                .unwrap()
        }
    };
    set_code(&[0x5f, 0x5f, 0xfd]).await; // PUSH0 PUSH0 REVERT
    let r = report(1, "2598.5", vec![upheld(dispute, disputer, ETH, 0)]);
    let receipt = chain.publish(&r, chain.sign(&r, &[0, 1, 2])).await;
    let credited = receipt.decoded_log::<SettlementOracle::PayoutCredited>().expect("PayoutCredited");
    assert_eq!((credited.to, credited.amount), (disputer, U256::from(ETH)));
    assert_eq!(chain.oracle.credits(disputer).call().await.unwrap(), U256::from(ETH));

    set_code(&[]).await;
    let to = chain.accounts[4];
    let before = chain.balance(to).await;
    let pending = chain.oracle.withdraw(to).from(disputer).send().await.unwrap();
    assert!(pending.get_receipt().await.unwrap().status());
    assert_eq!(chain.balance(to).await - before, U256::from(ETH));
    let e = revert_of(chain.oracle.withdraw(to).from(disputer).call().await);
    assert_eq!(e, SettlementOracleErrors::NothingToWithdraw(SettlementOracle::NothingToWithdraw {}));
}

#[tokio::test]
async fn only_the_owner_proposes_a_sound_committee_which_applies_after_its_delay() {
    use SettlementOracleErrors as E;
    let chain = Chain::start(4, 3).await;
    let members: Vec<Address> = chain.members.iter().map(|k| k.address()).collect();
    let stranger = chain.accounts[1];
    let committee = chain.oracle.getCommittee().call().await.unwrap();
    assert_eq!((committee.members, committee._1), (members.clone(), U256::from(3)));
    assert!(chain.oracle.isMember(members[2]).call().await.unwrap());
    assert!(!chain.oracle.isMember(stranger).call().await.unwrap());
    let e =
        revert_of(chain.oracle.proposeCommittee(members.clone(), U256::from(3)).from(stranger).call().await);
    assert_eq!(
        e,
        E::OwnableUnauthorizedAccount(SettlementOracle::OwnableUnauthorizedAccount { account: stranger })
    );
    // More than two thirds, so that two quorums always share an honest member.
    for threshold in [0, 2, 5] {
        let e = revert_of(chain.oracle.proposeCommittee(members.clone(), U256::from(threshold)).call().await);
        assert_eq!(
            e,
            E::BadThreshold(SettlementOracle::BadThreshold {
                threshold: U256::from(threshold),
                members: U256::from(4)
            })
        );
    }
    let mut unsorted = members.clone();
    unsorted.swap(1, 2);
    let e = revert_of(chain.oracle.proposeCommittee(unsorted, U256::from(3)).call().await);
    assert_eq!(e, E::CommitteeNotAscending(SettlementOracle::CommitteeNotAscending { index: U256::from(2) }));

    // A new committee replaces the old one entirely, but only after the delay.
    let pending = chain.oracle.proposeCommittee(members[1..].to_vec(), U256::from(3)).send().await.unwrap();
    let receipt = pending.get_receipt().await.unwrap();
    let proposed = receipt.decoded_log::<SettlementOracle::CommitteeProposed>().expect("CommitteeProposed");
    let e = revert_of(chain.oracle.applyCommittee().call().await);
    assert!(matches!(e, E::CommitteeNotDue(_)), "{e:?}");
    let r = report(1, "2598.5", vec![]);
    assert!(
        chain.oracle.publish(report_to_sol(&r), pack(chain.sign(&r, &[0, 1, 2]))).call().await.is_ok(),
        "the old committee is in force until then"
    );
    chain.advance(COMMITTEE_DELAY).await;
    let pending = chain.oracle.applyCommittee().from(stranger).send().await.unwrap();
    assert!(pending.get_receipt().await.unwrap().status(), "anyone applies a due committee");
    let committee = chain.oracle.getCommittee().call().await.unwrap();
    assert_eq!((committee.members, committee._1), (members[1..].to_vec(), U256::from(3)));
    assert_eq!(proposed.members, members[1..].to_vec());
    let e = chain.publish_error(&r, chain.sign(&r, &[0, 1, 2])).await;
    assert_eq!(e, E::SignerNotMember(SettlementOracle::SignerNotMember { signer: members[0] }));
    chain.publish(&r, chain.sign(&r, &[1, 2, 3])).await;
    // Ownership moves in two steps, and is never renounced.
    let pending = chain.oracle.transferOwnership(stranger).send().await.unwrap();
    assert!(pending.get_receipt().await.unwrap().status());
    assert_eq!(chain.oracle.owner().call().await.unwrap(), chain.accounts[0], "not moved until accepted");
    let e = revert_of(chain.oracle.acceptOwnership().from(chain.accounts[2]).call().await);
    assert!(matches!(e, E::OwnableUnauthorizedAccount(_)), "{e:?}");
    let pending = chain.oracle.acceptOwnership().from(stranger).send().await.unwrap();
    assert!(pending.get_receipt().await.unwrap().status());
    assert_eq!(chain.oracle.owner().call().await.unwrap(), stranger);
    let e = revert_of(chain.oracle.renounceOwnership().from(stranger).call().await);
    assert_eq!(e, E::RenounceDisabled(SettlementOracle::RenounceDisabled {}));
}

#[test]
fn committed_artifact_matches_a_fresh_solc_build() {
    let root = workspace_root();
    let output = Command::new("node")
        .arg(root.join("contracts/build.mjs"))
        .arg("--check")
        .current_dir(&root)
        .output()
        .expect("node runs (install Node.js 20+, then run scripts/install-tools.sh)");
    assert!(
        output.status.success(),
        "contracts/out/SettlementOracle.json does not match contracts/SettlementOracle.sol compiled \
         with the pinned solc: run `node contracts/build.mjs` and commit the artifact (if solc is \
         missing, run scripts/install-tools.sh first)\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `publish` gas at committee sizes 4, 7 and 16 with thresholds 3, 5 and 11. Run with
/// `--nocapture` to see the figures; the test bounds them so that a regression is loud.
#[tokio::test]
async fn publish_gas_report() {
    let mut lines = Vec::new();
    // At threshold 5: at most 80,000 (issue 16), under Chronicle Scribe's `poke` at bar 5 (81,000).
    for (n, threshold, bound) in [(4, 3, 70_000), (7, 5, 80_000), (16, 11, 110_000)] {
        let chain = Chain::start(n, threshold).await;
        let r = report(1, "2598.5", vec![]);
        let signers: Vec<usize> = (0..threshold).collect();
        let call = chain.oracle.publish(report_to_sol(&r), pack(chain.sign(&r, &signers)));
        let input = call.calldata().clone();
        let calldata_gas: u64 = input.iter().map(|&b| if b == 0 { 4 } else { 16 }).sum();
        let gas = chain.publish(&r, chain.sign(&r, &signers)).await.gas_used;

        // The same with one upheld dispute paid out.
        let disputer = chain.accounts[1];
        let (id, dispute) = (B256::repeat_byte(2), B256::repeat_byte(0xd1));
        chain.fund_pool(ETH).await;
        chain.post_bond(disputer, id, dispute, ETH / 10).await;
        let r = report(2, "2598.5", vec![upheld(dispute, disputer, ETH / 10, ETH / 20)]);
        let with_bond = chain.publish(&r, chain.sign(&r, &signers)).await.gas_used;

        lines.push(format!(
            "publish gas, threshold {threshold:>2} of {n:>2}: {gas:>7} (no disputes; calldata {calldata_gas}), \
             {with_bond:>7} (one upheld bond)"
        ));
        assert!(gas <= bound, "publish at threshold {threshold} used {gas} gas, over {bound}");
    }
    println!("{}", lines.join("\n"));
}

/// A batch of 100 reports at threshold 5 of 7 is published in one transaction, and each is read
/// back with `getSettlement`. Prints `publishBatch` gas per settlement at batch sizes 1, 10 and
/// 100 (run with `--nocapture`); the bound makes a regression loud.
#[tokio::test]
async fn a_batch_of_100_is_published_in_one_transaction_and_read_back_one_by_one() {
    let chain = Chain::start(7, 5).await;
    let signers: Vec<usize> = (0..5).collect();
    let mut lines = Vec::new();
    let mut next = 0u32;
    for size in [1u32, 10, 100] {
        let batch = FinalReportBatch {
            reports: (next..next + size)
                .map(|i| FinalReport {
                    settlement_id: alloy::primitives::keccak256(i.to_be_bytes()),
                    value: Wad::from_raw(2_598_500_000_000_000_000_000 + u128::from(i) * 1_000_000_007),
                    round: i % 3,
                    outcomes: vec![],
                })
                .collect(),
        };
        next += size;
        let receipt = chain.publish_batch(&batch, chain.sign_batch(&batch, &signers)).await;
        let block =
            chain.provider.get_block_by_number(receipt.block_number.unwrap().into()).await.unwrap().unwrap();
        for r in &batch.reports {
            let stored = chain.settlement(r.settlement_id).await;
            assert_eq!(stored, (U256::from(r.value.raw()), block.header.timestamp, 1), "{r:?}");
        }
        let published: Vec<_> = receipt
            .inner
            .logs()
            .iter()
            .filter_map(|log| log.log_decode::<SettlementOracle::ReportPublished>().ok())
            .map(|log| log.inner.data.settlementId)
            .collect();
        let ids: Vec<_> = batch.reports.iter().map(|r| r.settlement_id).collect();
        assert_eq!(published, ids, "one ReportPublished per report, in order");
        let per_settlement = receipt.gas_used / u64::from(size);
        lines.push(format!(
            "publishBatch gas, threshold 5 of 7, {size:>3} reports: {:>9} in all, {per_settlement:>6} per settlement",
            receipt.gas_used
        ));
        if size == 100 {
            assert!(per_settlement <= 27_000, "a batch of 100 used {per_settlement} gas per settlement");
        }
    }
    println!("{}", lines.join("\n"));
}

/// `publishBatch` refuses what `publish` refuses (the signatures are over the batch, so one
/// changed report voids them all) and a batch that is not whole packed reports, skips a report
/// already published without reverting the rest, and releases a refused dispute's reservation.
#[tokio::test]
async fn a_batch_refuses_bad_signatures_and_skips_what_is_already_published() {
    use SettlementOracleErrors as E;
    let chain = Chain::start(4, 3).await;
    let batch = FinalReportBatch { reports: (1..=3).map(|i| report(i, "2598.5", vec![])).collect() };
    let packed = packed_batch(&batch).unwrap();
    let signatures = chain.sign_batch(&batch, &[0, 1, 2]);

    for length in [0, 51, 53, 3 * 52 - 1] {
        let e = chain.publish_batch_error(packed.slice(..length.min(packed.len())), signatures.clone()).await;
        let length = U256::from(length.min(packed.len()));
        assert_eq!(e, E::BadBatchLength(SettlementOracle::BadBatchLength { length }));
    }
    let e = chain.publish_batch_error(packed.clone(), chain.sign_batch(&batch, &[0, 1])).await;
    assert_eq!(
        e,
        E::TooFewSignatures(SettlementOracle::TooFewSignatures { have: U256::from(2), need: U256::from(3) })
    );
    // Signatures over the batch with one value changed recover to strangers.
    let mut changed = batch.clone();
    changed.reports[2].value = Wad::parse("2598.6").unwrap();
    let e = chain.publish_batch_error(packed.clone(), chain.sign_batch(&changed, &[0, 1, 2])).await;
    assert!(matches!(e, E::SignerNotMember(_) | E::SignersNotAscending(_)), "{e:?}");
    // A report's own signatures are not a batch's, even for a batch of that one report.
    let single = FinalReportBatch { reports: vec![batch.reports[0].clone()] };
    let e = chain
        .publish_batch_error(packed_batch(&single).unwrap(), chain.sign(&batch.reports[0], &[0, 1, 2]))
        .await;
    assert!(matches!(e, E::SignerNotMember(_) | E::SignersNotAscending(_)), "{e:?}");
    for r in &batch.reports {
        assert_eq!(chain.settlement(r.settlement_id).await.2, 0, "nothing published by a refused batch");
    }

    // Settlement 2 is published alone first (a front-run); the batch still publishes 1 and 3.
    let front = report(2, "2598.5", vec![]);
    chain.publish(&front, chain.sign(&front, &[0, 1, 2])).await;
    let before = chain.settlement(front.settlement_id).await;
    let receipt = chain.publish_batch(&batch, chain.sign_batch(&batch, &[1, 2, 3])).await;
    let skipped = receipt.decoded_log::<SettlementOracle::ReportSkipped>().expect("ReportSkipped");
    assert_eq!(skipped.settlementId, front.settlement_id);
    assert_eq!(chain.settlement(front.settlement_id).await, before, "the published report is left as it is");
    for i in [0, 2] {
        assert_eq!(chain.settlement(batch.reports[i].settlement_id).await.2, 1);
    }
    // The same batch again: every report is skipped, nothing reverts, nothing changes.
    let receipt = chain.publish_batch(&batch, signatures).await;
    let skipped = receipt
        .inner
        .logs()
        .iter()
        .filter(|log| log.log_decode::<SettlementOracle::ReportSkipped>().is_ok())
        .count();
    assert_eq!(skipped, 3);

    // A settlement whose dispute the committee refused: its report has no outcome, so it
    // batches; its reservation returns to the pool, and the bond is reclaimed after.
    let disputer = chain.accounts[1];
    let (id, dispute) = (B256::repeat_byte(10), B256::repeat_byte(0xd1));
    chain.fund_pool(ETH).await;
    chain.post_bond(disputer, id, dispute, ETH / 10).await;
    assert_eq!(chain.oracle.reservation(id).call().await.unwrap(), U256::from(ETH / 20));
    let batch =
        FinalReportBatch { reports: vec![report(10, "2598.5", vec![]), report(11, "2598.5", vec![])] };
    chain.publish_batch(&batch, chain.sign_batch(&batch, &[0, 1, 2])).await;
    assert_eq!(chain.oracle.reservation(id).call().await.unwrap(), U256::ZERO);
    assert_eq!(chain.oracle.totalReserved().call().await.unwrap(), U256::ZERO);
    assert_eq!(chain.pool().await, U256::from(ETH));
    let pending = chain.oracle.reclaimBond(id, dispute).send().await.unwrap();
    assert!(pending.get_receipt().await.unwrap().status());
    chain.assert_books_balance().await;
    assert_eq!(
        packed_batch(&FinalReportBatch {
            reports: vec![report(12, "1", vec![upheld(dispute, disputer, 1, 0)])]
        }),
        Err(BatchError::HasOutcomes(B256::repeat_byte(12)))
    );
}

/// A dispute's bond is checked against the escrow event of its transaction, at the configured
/// confirmations, and the settlement's reservation is read (at the head: it is fixed).
#[tokio::test]
async fn a_bond_is_verified_against_its_escrow_event() {
    use fixd_node::chain::{BondError, ChainReader};
    use fixd_proto::types::dispute::{Dispute, DisputeReason};

    let chain = Chain::start(4, 3).await;
    let disputer = chain.accounts[1];
    let (settlement, id) = (B256::repeat_byte(5), B256::repeat_byte(0xd5));
    chain.fund_pool(ETH).await;
    let bond_tx = chain.post_bond(disputer, settlement, id, ETH / 10).await;
    let reader =
        ChainReader::new(&chain._anvil.endpoint(), chain.address(), Duration::from_secs(5), 2).unwrap();
    let dispute = Dispute {
        settlement_id: settlement,
        dispute_id: id,
        proposal_hash: B256::repeat_byte(9),
        claimed_value: None,
        reason: DisputeReason::BadData,
        evidence: "a bust".into(),
        bond_wei: ETH / 10,
        bond_tx,
        disputer,
    };
    // anvil mines one block per transaction: the bond's block is the head, 1 of 2 confirmations.
    assert_eq!(
        reader.verify_bond(&dispute).await,
        Err(BondError::Unconfirmed { tx: bond_tx, have: 1, need: 2 })
    );
    chain.fund_pool(1).await;
    let escrow = reader.verify_bond(&dispute).await.expect("the bond is escrowed");
    let receipt = chain.provider.get_transaction_receipt(bond_tx).await.unwrap().unwrap();
    assert_eq!(
        (escrow.block_number, escrow.block_hash),
        (receipt.block_number.unwrap(), receipt.block_hash.unwrap())
    );
    let reserved = ETH / 10 * u128::from(REWARD_BP) / 10_000;
    assert_eq!(
        escrow.pool_wei, reserved,
        "the reservation the first bond made, whatever the pool does later"
    );
    assert!(escrow.block_timestamp > 0);

    // What a dispute can get wrong about its bond.
    let wrong = |f: &dyn Fn(&mut Dispute)| {
        let mut d = dispute.clone();
        f(&mut d);
        d
    };
    let cases: Vec<(Dispute, BondError)> = vec![
        (
            wrong(&|d| d.bond_wei = ETH / 10 + 1),
            BondError::WrongAmount { escrowed: ETH / 10, claimed: ETH / 10 + 1 },
        ),
        (
            wrong(&|d| d.disputer = chain.accounts[2]),
            BondError::WrongDisputer { escrowed_by: disputer, claimed: chain.accounts[2] },
        ),
        (wrong(&|d| d.dispute_id = B256::repeat_byte(0xee)), BondError::NoBondPosted(bond_tx)),
        (wrong(&|d| d.bond_tx = B256::repeat_byte(0x77)), BondError::NotFound(B256::repeat_byte(0x77))),
    ];
    for (d, expected) in cases {
        assert_eq!(reader.verify_bond(&d).await, Err(expected));
    }
    // A plain transfer escrows nothing.
    let tx = alloy::rpc::types::TransactionRequest::default()
        .from(disputer)
        .to(Address::repeat_byte(0x42))
        .value(U256::from(ETH / 10));
    let transfer =
        chain.provider.send_transaction(tx).await.unwrap().get_receipt().await.unwrap().transaction_hash;
    chain.fund_pool(1).await;
    assert_eq!(
        reader.verify_bond(&wrong(&|d| d.bond_tx = transfer)).await,
        Err(BondError::NoBondPosted(transfer))
    );
    // A dead RPC is the node's problem, said as such.
    let dead = ChainReader::new("http://127.0.0.1:9", chain.address(), Duration::from_secs(2), 2).unwrap();
    assert!(matches!(dead.verify_bond(&dispute).await, Err(BondError::Rpc(_))));
}

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    Payee,
    "../contracts/out/Payee.json"
);

/// What a test payee does when paid (`Payee.sol`'s modes).
const ACCEPT: u8 = 0;
const REENTER: u8 = 3;

/// A disputer with code ([`Payee`]): deployed, armed with `mode` (re-entering the escrow of
/// `target` when paid), and its bond `wei` posted as itself for dispute `dispute`.
async fn payee(chain: &Chain, settlement: B256, dispute: B256, wei: u128, mode: u8, target: B256) -> Address {
    let payee = Payee::deploy(chain.provider.clone()).await.expect("Payee deploys");
    let armed = payee.arm(chain.address(), mode, settlement, target).send().await.unwrap();
    assert!(armed.get_receipt().await.unwrap().status());
    let posted = payee.post(settlement, dispute).value(U256::from(wei)).send().await.unwrap();
    assert!(posted.get_receipt().await.unwrap().status());
    *payee.address()
}

/// Publishes `r` and checks that each outcome was applied exactly as signed: one `BondSettled`
/// per outcome with its split, every escrow gone, each payee paid or credited `refund + reward`.
async fn publish_and_check_outcomes(chain: &Chain, r: &FinalReport) {
    let mut before = Vec::new();
    for o in &r.outcomes {
        let credits = chain.oracle.credits(o.disputer).call().await.unwrap();
        before.push((chain.balance(o.disputer).await, credits));
    }
    let receipt = chain.publish(r, chain.sign(r, &[0, 1, 2])).await;
    let settled: Vec<_> = receipt
        .inner
        .logs()
        .iter()
        .filter_map(|log| log.log_decode::<SettlementOracle::BondSettled>().ok())
        .map(|log| log.inner.data)
        .collect();
    assert_eq!(settled.len(), r.outcomes.len(), "one BondSettled per outcome");
    for ((o, s), (balance, credits)) in r.outcomes.iter().zip(&settled).zip(before) {
        assert_eq!(
            (s.disputeId, s.disputer, s.refund, s.reward, s.pooled, s.burned),
            (
                o.dispute_id,
                o.disputer,
                U256::from(o.refund),
                U256::from(o.reward),
                U256::from(o.pooled),
                U256::from(o.burned)
            ),
            "applied as signed"
        );
        let escrow = chain.oracle.getEscrow(r.settlement_id, o.dispute_id).call().await.unwrap();
        assert_eq!(escrow.disputer, Address::ZERO, "a settled escrow is gone");
        let paid = chain.balance(o.disputer).await - balance;
        let credited = chain.oracle.credits(o.disputer).call().await.unwrap() - credits;
        assert_eq!(paid + credited, U256::from(o.refund + o.reward), "{} paid or credited", o.disputer);
    }
    chain.assert_books_balance().await;
}

/// The re-entering payee of issue 16: paid first, or in the middle, it re-enters `reclaimBond`
/// for a later outcome's escrow. The guard refuses the re-entry, so its push fails and is
/// credited; every outcome is applied as signed and the publication stands. Two re-entering
/// payees, in either order, the same.
#[tokio::test]
async fn a_re_entering_payee_first_in_the_middle_or_twice_cannot_stop_publish() {
    let bond = ETH / 10;
    // (which outcomes re-enter, in report order)
    for (case, reentering) in
        [[true, false, false], [false, true, false], [true, true, false], [false, true, true]]
            .into_iter()
            .enumerate()
    {
        let chain = Chain::start(4, 3).await;
        chain.fund_pool(ETH).await;
        let id = B256::repeat_byte(0x40 + case as u8);
        let disputes: Vec<B256> = (0..3).map(|k| B256::repeat_byte(0xd1 + k)).collect();
        let mut outcomes = Vec::new();
        for (k, re_enters) in reentering.into_iter().enumerate() {
            // A re-entering payee goes for the escrow of the outcome after it (or the first).
            let target = disputes[(k + 1) % disputes.len()];
            let mode = if re_enters { REENTER } else { ACCEPT };
            let who = payee(&chain, id, disputes[k], bond, mode, target).await;
            // The first bond reserved bond/2: the first outcome is upheld with it, the others
            // are rejected (half pooled, half burned).
            outcomes.push(if k == 0 {
                upheld(disputes[k], who, bond, bond / 2)
            } else {
                rejected(disputes[k], who, bond)
            });
        }
        let r = report(0x40 + case as u8, "2598.5", outcomes);
        publish_and_check_outcomes(&chain, &r).await;
        for (k, re_enters) in reentering.into_iter().enumerate() {
            let who = r.outcomes[k].disputer;
            let credited = chain.oracle.credits(who).call().await.unwrap();
            let owed = U256::from(r.outcomes[k].refund + r.outcomes[k].reward);
            let expected = if re_enters { owed } else { U256::ZERO };
            assert_eq!(credited, expected, "case {case}: payee {k} credited only its own payment");
        }
        assert_eq!(chain.oracle.getSettlement(r.settlement_id).call().await.unwrap().status, 1);
    }
}

/// A disputer that was a plain account when the committee signed delegates its account to
/// re-entering code afterwards (EIP-7702: its code becomes `0xef0100 ‖ target`). Publication
/// stands, and its payment waits as a credit.
#[tokio::test]
async fn an_eip7702_delegation_after_signing_cannot_stop_publish() {
    let chain = Chain::start(4, 3).await;
    chain.fund_pool(ETH).await;
    let (id, d1, d2) = (B256::repeat_byte(0x50), B256::repeat_byte(0xd1), B256::repeat_byte(0xd2));
    let eoa = chain.accounts[1];
    let bond = ETH / 10;
    chain.post_bond(eoa, id, d1, bond).await;
    chain.post_bond(chain.accounts[2], id, d2, bond).await;
    let r =
        report(0x50, "2598.5", vec![upheld(d1, eoa, bond, bond / 2), rejected(d2, chain.accounts[2], bond)]);
    let signatures = chain.sign(&r, &[0, 1, 2]);

    // After signing: the EOA delegates to a Payee that re-enters for d2's escrow.
    let target = Payee::deploy(chain.provider.clone()).await.unwrap();
    let designator: Bytes = [&[0xef, 0x01, 0x00][..], target.address().as_slice()].concat().into();
    let () = chain.provider.raw_request("anvil_setCode".into(), (eoa, designator)).await.unwrap();
    let delegated = Payee::new(eoa, chain.provider.clone());
    let armed = delegated.arm(chain.address(), REENTER, id, d2).from(eoa).send().await.unwrap();
    assert!(armed.get_receipt().await.unwrap().status(), "the delegated account runs Payee's code");
    assert_eq!(delegated.mode().call().await.unwrap(), REENTER);

    let before = chain.balance(eoa).await;
    let pending = chain.oracle.publish(report_to_sol(&r), pack(signatures)).send().await.unwrap();
    assert!(pending.get_receipt().await.unwrap().status(), "publish stands");
    assert_eq!(chain.oracle.credits(eoa).call().await.unwrap(), U256::from(bond + bond / 2));
    assert!(chain.balance(eoa).await <= before, "its push failed: it was credited instead");
    for d in [d1, d2] {
        assert_eq!(chain.oracle.getEscrow(id, d).call().await.unwrap().disputer, Address::ZERO);
    }
    chain.assert_books_balance().await;
}

/// Two settlements with upheld disputes and a pool too small for both full rewards: each
/// settlement's first bond reserved what was free then, both publish (in either order), and
/// each reward equals its reservation.
#[tokio::test]
async fn two_settlements_sharing_a_small_pool_both_publish_with_their_reservations() {
    let bond = ETH / 10;
    let full = bond / 2;
    for a_first in [true, false] {
        let chain = Chain::start(4, 3).await;
        chain.fund_pool(full + full / 2).await;
        let (a, b) = (B256::repeat_byte(0x61), B256::repeat_byte(0x62));
        let d = B256::repeat_byte(0xd1);
        chain.post_bond(chain.accounts[1], a, d, bond).await;
        chain.post_bond(chain.accounts[2], b, d, bond).await;
        let reserved_a = chain.oracle.reservation(a).call().await.unwrap();
        let reserved_b = chain.oracle.reservation(b).call().await.unwrap();
        assert_eq!(
            (reserved_a, reserved_b),
            (U256::from(full), U256::from(full / 2)),
            "first come, capped by what is free"
        );
        assert_eq!(chain.pool().await, U256::ZERO, "all of the pool is reserved");
        let ra = report(0x61, "2598.5", vec![upheld(d, chain.accounts[1], bond, full)]);
        let rb = report(0x62, "2598.5", vec![upheld(d, chain.accounts[2], bond, full / 2)]);
        let order = if a_first { [&ra, &rb] } else { [&rb, &ra] };
        for r in order {
            publish_and_check_outcomes(&chain, r).await;
            assert_eq!(
                chain.oracle.reservation(r.settlement_id).call().await.unwrap(),
                U256::ZERO,
                "released"
            );
        }
        assert_eq!(chain.oracle.totalReserved().call().await.unwrap(), U256::ZERO);
    }
}

/// A stolen owner key proposes a committee of the thief's keys. The change is announced
/// (`CommitteeProposed`, `getPendingCommittee`) and cannot apply for `committeeDelay`; the owner
/// cancels it, it never applies, and the thief's reports never publish.
#[tokio::test]
async fn a_stolen_owner_key_queues_a_visible_committee_change_that_is_cancelled() {
    use SettlementOracleErrors as E;
    let chain = Chain::start(4, 3).await;
    let mut thieves: Vec<PrivateKeySigner> = (0..4).map(|i| key(9000 + i)).collect();
    thieves.sort_by_key(|k| k.address());
    let addresses: Vec<Address> = thieves.iter().map(|k| k.address()).collect();
    let pending = chain.oracle.proposeCommittee(addresses.clone(), U256::from(3)).send().await.unwrap();
    let receipt = pending.get_receipt().await.unwrap();
    let proposed = receipt.decoded_log::<SettlementOracle::CommitteeProposed>().expect("announced");
    let block =
        chain.provider.get_block_by_number(receipt.block_number.unwrap().into()).await.unwrap().unwrap();
    assert_eq!(proposed.eta, U256::from(block.header.timestamp + COMMITTEE_DELAY));
    let seen = chain.oracle.getPendingCommittee().call().await.unwrap();
    assert_eq!((seen.members, seen._1), (addresses.clone(), U256::from(3)), "visible to anyone watching");

    // The thief's committee signs a report: it does not publish, now or after the delay.
    let r = report(0x70, "1", vec![]);
    let forged: Vec<Bytes> =
        thieves[..3].iter().map(|k| sig_bytes(eip712::sign_typed(k, &chain.domain, &r))).collect();
    assert!(matches!(chain.publish_error(&r, forged.clone()).await, E::SignerNotMember(_)));
    chain.advance(COMMITTEE_DELAY / 2).await;
    assert!(matches!(revert_of(chain.oracle.applyCommittee().call().await), E::CommitteeNotDue(_)));

    let pending = chain.oracle.cancelCommittee().send().await.unwrap();
    let receipt = pending.get_receipt().await.unwrap();
    let cancelled =
        receipt.decoded_log::<SettlementOracle::CommitteeCancelled>().expect("CommitteeCancelled");
    assert_eq!(cancelled.members, addresses);
    chain.advance(COMMITTEE_DELAY).await;
    assert_eq!(
        revert_of(chain.oracle.applyCommittee().call().await),
        E::NoPendingCommittee(SettlementOracle::NoPendingCommittee {})
    );
    assert!(matches!(chain.publish_error(&r, forged).await, E::SignerNotMember(_)));
    let members: Vec<Address> = chain.members.iter().map(|k| k.address()).collect();
    assert_eq!(chain.oracle.getCommittee().call().await.unwrap().members, members, "the committee stands");
    chain.publish(&r, chain.sign(&r, &[0, 1, 2])).await;
}
