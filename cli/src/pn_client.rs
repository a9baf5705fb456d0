//! `fixd pn …`: the P/N split in the `PNVault` (DESIGN section 9), through
//! `fixd_node::chain::consumers::VaultClient`. Keys are read as `fixd dispute` reads them and
//! never printed; each transaction is simulated first, so a refusal prints the vault's named
//! error and sends nothing.

use std::time::Duration;

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, B256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use anyhow::{Context, bail};
use fixd_node::chain::consumers::{SeriesState, VaultClient, VaultError, VaultReceipt, series_id};
use fixd_proto::calendar::rfc3339_utc;
use fixd_proto::payout::{pn_split, usd_value};
use fixd_proto::value::Wad;
use serde_json::{Value, json};

use crate::cli::{EthKeyArgs, PnAmountArgs, PnCommand, SeriesArgs, VaultArgs};
use crate::client::{Outcome, call, client};

/// Runs a `fixd pn` command.
pub async fn pn(command: PnCommand) -> anyhow::Result<Outcome> {
    match run(command).await {
        Err(error) => match error.downcast_ref::<VaultError>() {
            Some(VaultError::UnknownSeries(_)) => {
                eprintln!("{error}");
                Ok(Outcome::NotFound)
            }
            _ => Err(error),
        },
        done => done,
    }
}

async fn run(command: PnCommand) -> anyhow::Result<Outcome> {
    match command {
        PnCommand::Create { maturity, strike, vault, key } => {
            let strike = wad("--strike", &strike)?;
            let client = connect(&vault, Some(&key)).await?;
            let (series, receipt) = client.create(maturity, strike).await?;
            let state = client.series(series).await?;
            if vault.json {
                println!("{:#}", json!({ "series": state, "tx": receipt }));
            } else {
                println!(
                    "series {series} created in {} (block {})\n  P {} \"{}\"\n  N {} \"{}\"\n  settlement {}",
                    receipt.tx_hash,
                    receipt.block_number,
                    state.p_token,
                    state.p_name,
                    state.n_token,
                    state.n_name,
                    state.settlement_id
                );
            }
        }
        PnCommand::Split(args) => {
            let (client, id, amount) = amount_args(&args).await?;
            let receipt = client.split(id, amount.raw()).await?;
            let text = format!("{amount} ETH into {amount} P and {amount} N");
            done(&args.vault, "split", id, &receipt, json!({ "amount": amount }), &text);
        }
        PnCommand::Merge(args) => {
            let (client, id, amount) = amount_args(&args).await?;
            let receipt = client.merge(id, amount.raw()).await?;
            let text = format!("{amount} P and {amount} N into {amount} ETH");
            done(&args.vault, "merged", id, &receipt, json!({ "amount": amount }), &text);
        }
        PnCommand::Redeem { series, p, n, vault, key } => {
            let signer = key.read()?;
            let client = connect(&vault, Some(&key)).await?;
            let id = resolve(&client, &series).await?;
            let state = client.series(id).await?;
            let (p_held, n_held) = client.balances(&state, signer.address()).await?;
            let p = p.as_deref().map(|p| wad("--p", p)).transpose()?.map_or(p_held, Wad::raw);
            let n = n.as_deref().map(|n| wad("--n", n)).transpose()?.map_or(n_held, Wad::raw);
            if p == 0 && n == 0 {
                bail!("{} holds no P and no N of series {id}; nothing to redeem", signer.address());
            }
            let (paid, receipt) = client.redeem(id, p, n).await?;
            let (p, n, paid) = (Wad::from_raw(p), Wad::from_raw(n), Wad::from_raw(paid));
            done(
                &vault,
                "redeemed",
                id,
                &receipt,
                json!({ "p": p, "n": n, "paid": paid }),
                &format!("{p} P and {n} N for {paid} ETH"),
            );
        }
        PnCommand::Show { series, holder, api, vault } => {
            let client = connect(&vault, None).await?;
            let id = resolve(&client, &series).await?;
            let state = client.series(id).await?;
            let held = match holder {
                Some(holder) => Some((holder, client.balances(&state, holder).await?)),
                None => None,
            };
            let node = match &api {
                Some(api) => Some(node_view(api, state.settlement_id).await?),
                None => None,
            };
            show(&state, held, node.as_ref(), vault.json);
        }
    }
    Ok(Outcome::Done)
}

/// The client, series and amount of a split or merge.
async fn amount_args(args: &PnAmountArgs) -> anyhow::Result<(VaultClient<DynProvider>, B256, Wad)> {
    let amount = wad("--amount", &args.amount)?;
    let client = connect(&args.vault, Some(&args.key)).await?;
    let id = resolve(&client, &args.series).await?;
    Ok((client, id, amount))
}

fn wad(flag: &str, text: &str) -> anyhow::Result<Wad> {
    Wad::parse(text).map_err(|e| anyhow::anyhow!("{flag} {text:?}: {e}"))
}

/// A client of `vault`'s PNVault, sending from `key`'s account when one is given.
async fn connect(vault: &VaultArgs, key: Option<&EthKeyArgs>) -> anyhow::Result<VaultClient<DynProvider>> {
    let url = vault.rpc_url.parse().with_context(|| format!("--rpc-url {:?}", vault.rpc_url))?;
    let provider = match key {
        Some(key) => {
            ProviderBuilder::new().wallet(EthereumWallet::from(key.read()?)).connect_http(url).erased()
        }
        None => ProviderBuilder::new().connect_http(url).erased(),
    };
    let timeout = Duration::from_secs(vault.timeout_secs);
    VaultClient::connect(provider, vault.vault, timeout).await.with_context(|| {
        format!("no PNVault answers at {} on {}; check --vault and --rpc-url", vault.vault, vault.rpc_url)
    })
}

/// The series id `series` names.
async fn resolve(client: &VaultClient<DynProvider>, series: &SeriesArgs) -> anyhow::Result<B256> {
    match (&series.series, series.maturity, &series.strike) {
        (Some(text), _, _) => {
            text.parse().map_err(|_| anyhow::anyhow!("--series {text:?} is not 0x + 64 hex digits"))
        }
        (None, Some(maturity), Some(strike)) => {
            Ok(series_id(client.settlement_id_at(maturity).await?, wad("--strike", strike)?))
        }
        _ => bail!("name the series with --series, or with --maturity and --strike"),
    }
}

fn done(vault: &VaultArgs, verb: &str, series: B256, receipt: &VaultReceipt, mut detail: Value, text: &str) {
    if vault.json {
        detail["series"] = json!(series);
        detail["tx"] = json!(receipt);
        println!("{detail:#}");
    } else {
        println!("{verb} {text} in series {series}: tx {} (block {})", receipt.tx_hash, receipt.block_number);
    }
}

/// The node's view of the settlement: its status and value, if it has one.
async fn node_view(api: &str, settlement: B256) -> anyhow::Result<Value> {
    let url = format!("{api}/v1/settlements/{settlement}");
    let (code, body) = call(client()?.get(&url), &url).await?;
    match code {
        200 => Ok(body),
        404 => Ok(json!({ "status": "unknown to this node" })),
        _ => bail!("the node answered {code}: {body}"),
    }
}

fn show(state: &SeriesState, held: Option<(Address, (u128, u128))>, node: Option<&Value>, json_out: bool) {
    // Before publication, what the node's value would pay if it stands.
    let pending = node.and_then(|view| view["value"].as_str()).and_then(|v| Wad::parse(v).ok());
    let projected = match (&state.settled, pending) {
        (None, Some(x)) => Some((x, pn_split(x, state.strike))),
        _ => None,
    };
    if json_out {
        let mut out = json!({ "series": state });
        if let Some((holder, (p, n))) = held {
            out["holder"] = json!({ "address": holder, "p": Wad::from_raw(p), "n": Wad::from_raw(n) });
        }
        if let Some(view) = node {
            out["node"] = json!({ "status": view["status"], "value": view["value"] });
        }
        if let Some((x, (p, n))) = projected {
            out["if_value_stands"] = json!({ "value": x, "p": p, "n": n });
        }
        println!("{out:#}");
        return;
    }
    println!(
        "series {}\n  settlement {} (ETH-USD, maturity {} = {})\n  strike {} USD per ETH\n  P {} \"{}\", supply {}\n  N {} \"{}\", supply {}\n  collateral {} ETH",
        state.series_id,
        state.settlement_id,
        rfc3339_utc(state.maturity * 1000, 0),
        state.maturity,
        state.strike,
        state.p_token,
        state.p_name,
        Wad::from_raw(state.p_supply),
        state.n_token,
        state.n_name,
        Wad::from_raw(state.n_supply),
        Wad::from_raw(state.collateral_wei),
    );
    if let Some(view) = node {
        println!(
            "  node: {} {}",
            view["status"].as_str().unwrap_or("?"),
            view["value"].as_str().unwrap_or("")
        );
    }
    match (&state.settled, projected) {
        (Some(s), _) => println!(
            "  published at ETH-USD {}: 1 P pays {} ETH (${}), 1 N pays {} ETH (${}); dust {} wei",
            s.value,
            s.p,
            usd_value(s.p, s.value).cents(),
            s.n,
            usd_value(s.n, s.value).cents(),
            state.dust_wei
        ),
        (None, Some((x, (p, n)))) => println!(
            "  not published; if {x} stands, 1 P will pay {p} ETH (${}) and 1 N {n} ETH (${})",
            usd_value(p, x).cents(),
            usd_value(n, x).cents()
        ),
        (None, None) => println!("  not published yet: redeeming waits for it; merging works now"),
    }
    if let Some((holder, (p, n))) = held {
        println!("  {holder} holds {} P and {} N", Wad::from_raw(p), Wad::from_raw(n));
    }
}
