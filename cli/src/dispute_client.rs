//! `fixd dispute …` and `fixd arbitrate`: escrow a bond and submit a signed dispute in one
//! step, list a settlement's disputes, and sign an arbitrator's ruling. The Ethereum key is read
//! from an environment variable or a file and never printed.

use std::time::Duration;

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, B256, U256};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use anyhow::{Context, bail};
use fixd_proto::eip712::{SignedDispute, SignedRuling, domain, sign_typed};
use fixd_proto::types::dispute::{ArbitratorRuling, Dispute, DisputeReason};
use fixd_proto::value::Wad;
use serde_json::{Value, json};

use crate::cli::{ArbitrateArgs, DisputeCommand, EthKeyArgs};
use crate::client::{Outcome, call, client};
use fixd_node::chain::SettlementOracle;

impl EthKeyArgs {
    /// The key, from `--key-file` or the variable `--key-env` names.
    pub fn read(&self) -> anyhow::Result<PrivateKeySigner> {
        let hex = match &self.key_file {
            Some(path) => std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the key file {}", path.display()))?,
            None => std::env::var(&self.key_env).with_context(|| {
                format!("no key: set {} to the hex private key, or pass --key-file", self.key_env)
            })?,
        };
        hex.trim().parse().map_err(|_| {
            anyhow::anyhow!("the key is not a 32-byte hex secp256k1 private key (0x… or 64 hex digits)")
        })
    }
}

fn reason(text: &str) -> anyhow::Result<DisputeReason> {
    Ok(match text {
        "miscomputed" => DisputeReason::Miscomputed,
        "bad_data" => DisputeReason::BadData,
        "missing_data" => DisputeReason::MissingData,
        "other" => DisputeReason::Other,
        other => bail!("unknown reason {other:?}: use miscomputed, bad_data, missing_data or other"),
    })
}

fn parse_b256(what: &str, text: &str) -> anyhow::Result<B256> {
    text.parse().map_err(|_| anyhow::anyhow!("{what} {text:?} is not 0x + 64 hex digits"))
}

async fn get(http: &reqwest::Client, url: &str) -> anyhow::Result<(u16, Value)> {
    call(http.get(url), url).await
}

/// Runs a `fixd dispute` command.
pub async fn dispute(command: DisputeCommand) -> anyhow::Result<Outcome> {
    let http = client()?;
    match command {
        DisputeCommand::List { settlement, api } => {
            let id = parse_b256("settlement id", &settlement)?;
            let url = format!("{}/v1/settlements/{id}/disputes", api.api);
            let (code, body) = get(&http, &url).await?;
            if code == 404 {
                eprintln!("no settlement {id} on this node");
                return Ok(Outcome::NotFound);
            }
            if code != 200 {
                bail!("the node answered {code}: {body}");
            }
            if api.json {
                println!("{body:#}");
            } else {
                println!(
                    "phase {}, deadline {}, round {}, next bond {} wei",
                    body["phase"].as_str().unwrap_or("?"),
                    body["deadline"],
                    body["dispute_round"],
                    body["required_bond_wei"].as_str().unwrap_or("-")
                );
                for d in body["disputes"].as_array().map(Vec::as_slice).unwrap_or_default() {
                    println!(
                        "  {} by {}: bond {} wei, round {}, {}",
                        d["dispute_id"].as_str().unwrap_or("?"),
                        d["disputer"].as_str().unwrap_or("?"),
                        d["bond_wei"].as_str().unwrap_or("?"),
                        d["dispute_round"],
                        d["status"].as_str().unwrap_or("?")
                    );
                }
            }
            Ok(Outcome::Done)
        }
        DisputeCommand::Submit(args) => {
            let key = args.key.read()?;
            let settlement_id = parse_b256("settlement id", &args.settlement)?;
            let reason = reason(&args.reason)?;
            let claimed_value = args
                .claimed_value
                .as_deref()
                .map(Wad::parse)
                .transpose()
                .map_err(|e| anyhow::anyhow!("--claimed-value: {e}"))?;
            let (code, status) = get(&http, &format!("{}/v1/status", args.api.api)).await?;
            if code != 200 {
                bail!("the node's /v1/status answered {code}: {status}");
            }
            let chain_id = status["chain_id"].as_u64().context("the node's status has no chain_id")?;
            let contract: Address = serde_json::from_value(status["contract"].clone())
                .context("the node's status has no contract")?;
            let url = format!("{}/v1/settlements/{settlement_id}/disputes", args.api.api);
            let (code, state) = get(&http, &url).await?;
            if code == 404 {
                eprintln!("no settlement {settlement_id} on this node");
                return Ok(Outcome::NotFound);
            }
            if code != 200 {
                bail!("the node answered {code}: {state}");
            }
            let proposal_hash: B256 = serde_json::from_value(state["certified"]["proposal_hash"].clone())
                .context("nothing is certified yet, so there is nothing to dispute")?;
            if let Some(deadline) = state["deadline"].as_u64()
                && fixd_node::clock::now() >= deadline
            {
                bail!("the challenge window closed at {deadline}; nothing was escrowed");
            }
            let bond_wei: u128 = match args.bond {
                Some(bond) => bond,
                None => state["required_bond_wei"]
                    .as_str()
                    .and_then(|b| b.parse().ok())
                    .context("the settlement takes no dispute now (no bond is required); see its phase")?,
            };
            let disputer = key.address();
            let dispute_id = match &args.dispute_id {
                Some(text) => parse_b256("--dispute-id", text)?,
                None => alloy::primitives::keccak256(
                    [settlement_id.as_slice(), disputer.as_slice(), &fixd_node::clock::now().to_be_bytes()]
                        .concat(),
                ),
            };
            let url_rpc = args.rpc_url.parse().with_context(|| format!("--rpc-url {:?}", args.rpc_url))?;
            let provider =
                ProviderBuilder::new().wallet(EthereumWallet::from(key.clone())).connect_http(url_rpc);
            let oracle = SettlementOracle::new(contract, provider.clone());
            let timeout = Duration::from_secs(args.timeout_secs);
            let pending = oracle
                .postBond(settlement_id, dispute_id)
                .value(U256::from(bond_wei))
                .send()
                .await
                .with_context(|| format!("postBond on {contract} at {} failed", args.rpc_url))?;
            let bond_tx = *pending.tx_hash();
            eprintln!("escrowing {bond_wei} wei in {bond_tx} …");
            let receipt = fixd_node::chain::contract::successful_receipt(pending, timeout)
                .await
                .with_context(|| format!("the bond transaction {bond_tx} did not succeed"))?;
            let block = receipt.block_number.unwrap_or_default();
            let gas_wei = u128::from(receipt.gas_used) * receipt.effective_gas_price;
            let dispute = Dispute {
                settlement_id,
                dispute_id,
                proposal_hash,
                claimed_value,
                reason,
                evidence: args.evidence.clone().unwrap_or_default(),
                bond_wei,
                bond_tx,
                disputer,
            };
            let signature = sign_typed(&key, &domain(chain_id, contract), &dispute);
            let body = SignedDispute { dispute, signature };
            let started = std::time::Instant::now();
            let (code, answer) = loop {
                let (code, answer) = call(http.post(&url).json(&body), &url).await?;
                let unconfirmed = code == 409 && answer["error"] == "bond_unconfirmed";
                if !unconfirmed || started.elapsed() > timeout {
                    break (code, answer);
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            };
            let _ = provider.get_block_number().await;
            let report = json!({
                "dispute_id": dispute_id,
                "bond_tx": bond_tx,
                "bond_block": block,
                "bond_wei": bond_wei.to_string(),
                "bond_gas_wei": gas_wei.to_string(),
                "disputer": disputer,
                "http_status": code,
                "answer": answer,
            });
            if args.api.json {
                println!("{report:#}");
            } else if code == 202 {
                println!(
                    "dispute {dispute_id} accepted in dispute round {} (bond {bond_wei} wei in {bond_tx}, block {block})",
                    answer["dispute_round"]
                );
            } else {
                println!(
                    "dispute {dispute_id} refused: {code} {}: {}\nthe bond ({bond_wei} wei in {bond_tx}) stays escrowed; \
                     reclaim it with reclaimBond({settlement_id}, {dispute_id}) once the settlement is published",
                    answer["error"].as_str().unwrap_or("error"),
                    answer["message"].as_str().unwrap_or_default()
                );
            }
            if code == 202 { Ok(Outcome::Done) } else { bail!("the node refused the dispute ({code})") }
        }
    }
}

/// Runs `fixd arbitrate`: signs the ruling with the arbitrator's key and submits it.
pub async fn arbitrate(args: ArbitrateArgs) -> anyhow::Result<Outcome> {
    let http = client()?;
    let key = args.key.read()?;
    let settlement_id = parse_b256("settlement id", &args.settlement)?;
    let dispute_id = parse_b256("--dispute", &args.dispute)?;
    let value = Wad::parse(&args.value).map_err(|e| anyhow::anyhow!("--value: {e}"))?;
    let (code, status) = get(&http, &format!("{}/v1/status", args.api.api)).await?;
    if code != 200 {
        bail!("the node's /v1/status answered {code}: {status}");
    }
    let chain_id = status["chain_id"].as_u64().context("the node's status has no chain_id")?;
    let contract: Address =
        serde_json::from_value(status["contract"].clone()).context("the node's status has no contract")?;
    let ruling = ArbitratorRuling { settlement_id, dispute_id, value, upheld: args.upheld };
    let signature = sign_typed(&key, &domain(chain_id, contract), &ruling);
    let url = format!("{}/v1/settlements/{settlement_id}/rulings", args.api.api);
    let (code, answer) = call(http.post(&url).json(&SignedRuling { ruling, signature }), &url).await?;
    if args.api.json {
        println!("{}", json!({ "http_status": code, "answer": answer }));
    } else if code == 202 {
        println!("ruling on {dispute_id} accepted: value {value}, upheld {}", args.upheld);
    } else {
        println!(
            "ruling refused: {code} {}: {}",
            answer["error"].as_str().unwrap_or("error"),
            answer["message"].as_str().unwrap_or_default()
        );
    }
    match code {
        202 => Ok(Outcome::Done),
        404 => Ok(Outcome::NotFound),
        _ => bail!("the node refused the ruling ({code})"),
    }
}
