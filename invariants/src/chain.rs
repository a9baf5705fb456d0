//! The in-process chain: revm with Prague rules (transient storage, EIP-7702) over an in-memory
//! database, and the few operations the run needs.
//!
//! Gas is free (gas price and base fee 0), so every balance moves only by the value a
//! transaction or a payout carries and the model can predict each to the wei. Nonces are not
//! checked, so no one has to track them; the EIP-7702 authorizations read the authority's real
//! nonce from the state.

use alloy_primitives::{Address, Bytes, TxKind, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::SolCall;
use revm::context::result::{ExecutionResult, Output};
use revm::context::{BlockEnv, CfgEnv, Context, TxEnv};
use revm::context_interface::either::Either;
use revm::context_interface::transaction::Authorization;
use revm::database::InMemoryDB;
use revm::handler::{MainBuilder, MainnetContext, MainnetEvm};
use revm::primitives::hardfork::SpecId;
use revm::state::AccountInfo;
use revm::{ExecuteCommitEvm, ExecuteEvm, MainContext};

use crate::world::CHAIN_ID;

/// Gas of every transaction: far above what any call here needs (the largest, a publication
/// with five signatures and four pushed payouts of 30,000 gas each, needs a fraction of it), and
/// small enough that a `Payee` burning all the gas it is given (mode 2) through `withdraw`,
/// which forwards all of it, stays quick.
pub const TX_GAS: u64 = 1_000_000;

/// What a transaction did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It succeeded and returned this.
    Success(Bytes),
    /// It reverted with this revert data.
    Revert(Bytes),
    /// It halted (out of gas, invalid opcode, …).
    Halt(String),
}

impl Outcome {
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Success(_))
    }
}

type Evm = MainnetEvm<MainnetContext<InMemoryDB>>;

/// One chain: an EVM and its state.
#[derive(Debug)]
pub struct Chain {
    evm: Evm,
    /// State-changing transactions executed.
    pub transactions: u64,
    /// Read-only calls executed (the invariant checks).
    pub views: u64,
}

impl Chain {
    /// A chain at `timestamp` where each of `funded` holds `balance` wei and nothing else exists.
    pub fn new(funded: &[Address], balance: U256, timestamp: u64) -> Self {
        let mut db = InMemoryDB::default();
        for address in funded {
            db.insert_account_info(*address, AccountInfo::from_balance(balance));
        }
        let mut cfg = CfgEnv::new_with_spec(SpecId::PRAGUE).with_chain_id(CHAIN_ID);
        cfg.disable_nonce_check = true;
        let block = BlockEnv { timestamp: U256::from(timestamp), basefee: 0, ..BlockEnv::default() };
        let evm = Context::mainnet().with_db(db).with_cfg(cfg).with_block(block).build_mainnet();
        Self { evm, transactions: 0, views: 0 }
    }

    pub fn timestamp(&self) -> u64 {
        self.evm.ctx.block.timestamp.saturating_to()
    }

    /// Moves the block timestamp (every later transaction runs in that block).
    pub fn set_timestamp(&mut self, timestamp: u64) {
        self.evm.ctx.block.timestamp = U256::from(timestamp);
    }

    pub fn balance(&self, address: Address) -> U256 {
        self.account(address).map_or(U256::ZERO, |info| info.balance)
    }

    /// The code of `address` as stored (an EIP-7702 delegation is `0xef0100 ‖ target`).
    pub fn code(&self, address: Address) -> Bytes {
        self.account(address).and_then(|info| info.code).map_or_else(Bytes::new, |code| code.original_bytes())
    }

    fn account(&self, address: Address) -> Option<AccountInfo> {
        let db = &self.evm.ctx.journaled_state.database;
        db.cache.accounts.get(&address).and_then(|account| account.info())
    }

    fn tx(from: Address, kind: TxKind, value: U256, data: Bytes) -> revm::context::tx::TxEnvBuilder {
        TxEnv::builder()
            .caller(from)
            .kind(kind)
            .value(value)
            .data(data)
            .gas_limit(TX_GAS)
            .gas_price(0)
            .chain_id(Some(CHAIN_ID))
    }

    fn run(&mut self, tx: TxEnv) -> Outcome {
        self.transactions += 1;
        let result = self.evm.transact_commit(tx).unwrap_or_else(|e| panic!("invalid transaction: {e:?}"));
        outcome(result)
    }

    /// Sends a transaction and commits its effects.
    pub fn transact(&mut self, from: Address, to: Address, value: U256, data: Bytes) -> Outcome {
        let tx = Self::tx(from, TxKind::Call(to), value, data).build_fill();
        self.run(tx)
    }

    /// Deploys `init` (creation code and constructor arguments) from `from`; the new address.
    pub fn deploy(&mut self, from: Address, init: Bytes) -> Result<Address, Outcome> {
        let tx = Self::tx(from, TxKind::Create, U256::ZERO, init).gas_limit(30_000_000).build_fill();
        self.transactions += 1;
        match self.evm.transact_commit(tx).unwrap_or_else(|e| panic!("invalid deployment: {e:?}")) {
            ExecutionResult::Success { output: Output::Create(_, Some(address)), .. } => Ok(address),
            other => Err(outcome(other)),
        }
    }

    /// A type-4 transaction from `sponsor` that carries `authority`'s EIP-7702 authorization to
    /// delegate to `target` (`Address::ZERO` clears the delegation). It calls `sponsor` itself,
    /// an account without code, so nothing runs but the authorization.
    pub fn delegate(&mut self, sponsor: Address, authority: &PrivateKeySigner, target: Address) -> Outcome {
        let nonce = self.account(authority.address()).map_or(0, |info| info.nonce);
        let authorization = Authorization { chain_id: U256::from(CHAIN_ID), address: target, nonce };
        let signature = authority
            .sign_hash_sync(&authorization.signature_hash())
            .expect("a local key signs any 32-byte digest");
        let tx = Self::tx(sponsor, TxKind::Call(sponsor), U256::ZERO, Bytes::new())
            .gas_priority_fee(Some(0))
            .authorization_list(vec![Either::Left(authorization.into_signed(signature))])
            .build_fill();
        self.run(tx)
    }

    /// Calls a view of `to` without committing anything; panics if it fails, since every view
    /// the run reads must answer.
    pub fn view<C: SolCall>(&mut self, to: Address, call: &C) -> C::Return {
        self.views += 1;
        let tx = Self::tx(Address::ZERO, TxKind::Call(to), U256::ZERO, call.abi_encode().into()).build_fill();
        let result = self.evm.transact(tx).unwrap_or_else(|e| panic!("invalid view: {e:?}")).result;
        match outcome(result) {
            Outcome::Success(bytes) => C::abi_decode_returns(&bytes)
                .unwrap_or_else(|e| panic!("{} returned undecodable {bytes}: {e}", C::SIGNATURE)),
            other => panic!("view {} failed: {other:?}", C::SIGNATURE),
        }
    }
}

fn outcome(result: ExecutionResult) -> Outcome {
    match result {
        ExecutionResult::Success { output, .. } => Outcome::Success(output.into_data()),
        ExecutionResult::Revert { output, .. } => Outcome::Revert(output),
        ExecutionResult::Halt { reason, .. } => Outcome::Halt(format!("{reason:?}")),
    }
}
