//! `fixd settlement …`: a thin client of a node's HTTP API, with text output for people and
//! `--json` (the API's own JSON) for scripts.

use std::time::Duration;

use anyhow::{Context, bail};
use fixd_proto::types::settlement::MethodologyParams;
use serde_json::Value;

use crate::cli::{ApiArgs, SettlementCommand};

/// Exit code for "no such settlement", distinct from a failure.
pub const NOT_FOUND_EXIT: u8 = 3;

/// What a command ended with.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Done,
    NotFound,
}

pub(crate) fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?)
}

/// A response: its status and its JSON body (a JSON error for every 4xx and 5xx).
pub(crate) async fn call(request: reqwest::RequestBuilder, url: &str) -> anyhow::Result<(u16, Value)> {
    let response = request.send().await.with_context(|| {
        format!("cannot reach the node at {url}; is `fixd run` up, and is --api (or FIXD_API) right?")
    })?;
    let status = response.status().as_u16();
    let body = response.json().await.with_context(|| format!("{url} answered {status} without JSON"))?;
    Ok((status, body))
}

fn api_error(status: u16, body: &Value) -> anyhow::Error {
    anyhow::anyhow!(
        "the node answered {status} {}: {}",
        body["error"].as_str().unwrap_or("error"),
        body["message"].as_str().unwrap_or_default()
    )
}

/// Runs a `fixd settlement` command.
pub async fn settlement(command: SettlementCommand) -> anyhow::Result<Outcome> {
    let http = client()?;
    match command {
        SettlementCommand::List { status, api } => {
            // Every page, following next_cursor (1,000 settlements a page).
            let mut all = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let mut url = format!("{}/v1/settlements?limit=1000", api.api);
                if let Some(status) = &status {
                    url = format!("{url}&status={status}");
                }
                if let Some(cursor) = &cursor {
                    url = format!("{url}&cursor={cursor}");
                }
                let (code, page) = call(http.get(&url), &url).await?;
                if code != 200 {
                    return Err(api_error(code, &page));
                }
                all.extend(page["settlements"].as_array().cloned().unwrap_or_default());
                match page["next_cursor"].as_str() {
                    Some(next) => cursor = Some(next.to_owned()),
                    None => break,
                }
            }
            let body = Value::Array(all);
            print(&api, &body, || {
                let list = body.as_array().map(Vec::as_slice).unwrap_or_default();
                if list.is_empty() {
                    return "no settlements".into();
                }
                list.iter().map(one_line).collect::<Vec<_>>().join("\n")
            })?;
            Ok(Outcome::Done)
        }
        SettlementCommand::Show { id, api } => {
            let url = format!("{}/v1/settlements/{id}", api.api);
            let (code, body) = call(http.get(&url), &url).await?;
            match code {
                200 => {}
                404 => {
                    eprintln!("{}", api_error(code, &body));
                    return Ok(Outcome::NotFound);
                }
                _ => return Err(api_error(code, &body)),
            }
            print(&api, &body, || details(&body))?;
            Ok(Outcome::Done)
        }
        SettlementCommand::Schedule { maturity, window_secs, partitions, grace_secs, token, api } => {
            let params =
                MethodologyParams { window_secs, partitions, grace_secs, ..MethodologyParams::default() };
            let url = format!("{}/v1/settlements", api.api);
            let mut request =
                http.post(&url).json(&serde_json::json!({ "maturity": maturity, "params": params }));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let (code, body) = call(request, &url).await?;
            if !matches!(code, 200 | 201) {
                return Err(api_error(code, &body));
            }
            print(&api, &body, || {
                let verb = if code == 201 { "scheduled" } else { "already scheduled" };
                format!("{verb} {}", one_line(&body))
            })?;
            Ok(Outcome::Done)
        }
    }
}

fn print(api: &ApiArgs, body: &Value, text: impl FnOnce() -> String) -> anyhow::Result<()> {
    if api.json {
        println!("{}", serde_json::to_string_pretty(body)?);
    } else {
        println!("{}", text());
    }
    Ok(())
}

fn one_line(v: &Value) -> String {
    let value = v["value"].as_str().map(|x| format!(" value {x}")).unwrap_or_default();
    format!(
        "{}  {:<9}  maturity {}{value}",
        v["id"].as_str().unwrap_or("?"),
        v["status"].as_str().unwrap_or("?"),
        fixd_proto::calendar::rfc3339_utc(v["maturity"].as_u64().unwrap_or(0) * 1000, 0),
    )
}

fn details(v: &Value) -> String {
    let mut out = vec![
        format!("settlement  {}", v["id"].as_str().unwrap_or("?")),
        format!("status      {}", v["status"].as_str().unwrap_or("?")),
        format!("window      ({}, {}], observed at {}", v["window_start"], v["maturity"], v["observe_at"]),
        format!("observations {}", v["observations"].as_array().map_or(0, Vec::len)),
    ];
    if let Some(value) = v["value"].as_str() {
        let round = &v["certificate"]["proposal"]["payload"]["round"];
        out.push(format!("certified   {value} in round {round}"));
    }
    if let Some(deadline) = v["challenge_deadline"].as_u64() {
        out.push(format!("challenge   until {}", fixd_proto::calendar::rfc3339_utc(deadline * 1000, 0)));
    }
    if let Some(report) = v["final_report"].as_object() {
        let signatures = report.get("signatures").and_then(Value::as_array).map_or(0, Vec::len);
        out.push(format!(
            "final       by {}, {signatures} report signatures",
            report["by"].as_str().unwrap_or("?")
        ));
    }
    if let Some(p) = v["publication"].as_object() {
        out.push(format!(
            "published   tx {} in block {}, {} of {} confirmations",
            p["tx_hash"].as_str().unwrap_or("?"),
            p["block_number"],
            p["confirmations"],
            p["confirmations_required"]
        ));
    }
    if let Some(waiting) = v["waiting_for"].as_str() {
        out.push(format!("waiting for {waiting}"));
    }
    let evidence = v["equivocations"].as_array().map_or(0, Vec::len);
    if evidence > 0 {
        out.push(format!("equivocations {evidence} (see --json)"));
    }
    out.join("\n")
}

/// Checks an id before sending it, so a typo gets a local message.
pub fn check_id(id: &str) -> anyhow::Result<()> {
    let hex = id.strip_prefix("0x").unwrap_or(id);
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        bail!("{id:?} is not a settlement id: 0x and 64 hex digits (see `fixd settlement list`)");
    }
    Ok(())
}
