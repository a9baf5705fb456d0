//! Setting up a dev chain (anvil) for a devnet or a test: deploy `SettlementOracle` with the
//! committee, its threshold and the reward rate, and fund the members' accounts so they can pay
//! the gas of `publish`.

use std::time::Duration;

use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::primitives::{Address, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;

use fixd_node::chain::contract::Deployment;
use fixd_node::chain::{ChainError, deploy};

/// A dev chain's committee delay: committee changes apply a minute after they are proposed.
pub const DEV_COMMITTEE_DELAY_SECS: u64 = 60;

/// The private key of anvil's first dev account (public knowledge: anvil prints it at start).
/// It deploys the contract and funds the members on a dev chain, never anywhere else.
pub const ANVIL_DEV_KEY: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

/// What [`setup`] made.
#[derive(Clone, Debug)]
pub struct DevChain {
    pub chain_id: u64,
    pub contract: Address,
    /// The block the contract was deployed in.
    pub contract_block: u64,
}

/// anvil's first dev account.
pub fn dev_key() -> PrivateKeySigner {
    ANVIL_DEV_KEY.parse().expect("the anvil dev key is a valid key")
}

/// A provider that signs with anvil's first dev account.
pub fn dev_provider(rpc_url: &str) -> Result<DynProvider, ChainError> {
    let key = dev_key();
    let url = rpc_url.parse().map_err(|e| ChainError::Setup(format!("RPC URL {rpc_url:?}: {e}")))?;
    Ok(ProviderBuilder::new().wallet(EthereumWallet::from(key)).connect_http(url).erased())
}

/// Deploys the oracle from anvil's first dev account (its owner) for `members` (any order) with
/// `threshold` and `reward_bp`, and sends each member `fund_wei`. Waits up to `timeout` for
/// each receipt.
pub async fn setup(
    rpc_url: &str,
    members: &[Address],
    threshold: usize,
    reward_bp: u32,
    fund_wei: u128,
    timeout: Duration,
) -> Result<DevChain, ChainError> {
    let provider = dev_provider(rpc_url)?;
    let chain_id =
        provider.get_chain_id().await.map_err(|e| ChainError::Setup(format!("eth_chainId: {e}")))?;
    let deployment = Deployment {
        owner: dev_key().address(),
        members: members.to_vec(),
        threshold,
        committee_delay_secs: DEV_COMMITTEE_DELAY_SECS,
        reward_bp,
    };
    // anvil takes a transfer its sender cannot pay into its pool and never mines it: refuse here.
    let balance = provider
        .get_balance(dev_key().address())
        .await
        .map_err(|e| ChainError::Setup(format!("eth_getBalance: {e}")))?;
    let needed = U256::from(fund_wei) * U256::from(members.len()) + U256::from(10u128.pow(18));
    if balance < needed {
        return Err(ChainError::Setup(format!(
            "the dev account holds {balance} wei, less than the {needed} wei that funding {} members with {fund_wei}              wei each (and the deployment) takes; fund fewer wei per member or start anvil with a larger --balance",
            members.len()
        )));
    }
    let (contract, contract_block) = deploy(&provider, &deployment, timeout).await?;
    let mut receipts = Vec::new();
    for member in members {
        let tx = TransactionRequest::default().with_to(*member).with_value(U256::from(fund_wei));
        let pending = provider
            .send_transaction(tx)
            .await
            .map_err(|e| ChainError::Setup(format!("funding {member}: {e}")))?;
        receipts.push(pending);
    }
    for pending in receipts {
        fixd_node::chain::contract::successful_receipt(pending, timeout).await?;
    }
    Ok(DevChain { chain_id, contract, contract_block })
}
