//! `fixd devnet` end to end (issue 8): the command a new user runs starts anvil, the replay
//! venues and four nodes, and reports a value published on-chain; the `getSettlement` read it
//! prints, run as printed while the devnet runs, returns that value; every command the README's
//! guides show works as written against it; Ctrl-C stops every child.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::{self, anvil_path, fixd};

#[test]
fn fixd_devnet_publishes_and_its_printed_read_returns_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut cmd = fixd();
    cmd.args(["devnet", "--free-ports", "--timeout-secs", "240", "--dir"])
        .arg(dir.path().join("devnet"))
        .arg("--anvil")
        .arg(anvil_path());
    let mut devnet = harness::spawn("devnet", cmd);

    // While the window is open, the README's dispute command works as written.
    devnet.wait_for_line("challenge window closes in", Duration::from_secs(240));
    readme_blocks_work(dir.path(), "<!-- readme-check: in-window -->");

    // The value it reports...
    let settled = devnet.wait_for_line("settled in", Duration::from_secs(300));
    println!("fixd devnet published after {:?}", started.elapsed());
    let wad: u128 = settled.split("(WAD ").nth(1).unwrap().trim_end_matches(')').parse().unwrap();
    let value = settled.split("ETH-USD ").nth(1).unwrap().split(' ').next().unwrap();
    assert_eq!(fixd_proto::value::Wad::parse(value).unwrap().raw(), wad);
    // ...is what the printed eth_call returns: value, publishedAt, status as 32-byte words.
    let curl = devnet.wait_for_line("curl -s -X POST", Duration::from_secs(5)).trim().to_owned();
    let answer = Command::new("sh").arg("-c").arg(&curl).output().unwrap();
    assert!(answer.status.success(), "{curl}: {}", String::from_utf8_lossy(&answer.stderr));
    let json: serde_json::Value = serde_json::from_slice(&answer.stdout).unwrap();
    let words = json["result"].as_str().expect("an eth_call result").trim_start_matches("0x");
    assert_eq!(words.len(), 3 * 64, "{words}");
    assert_eq!(u128::from_str_radix(&words[..64], 16).unwrap(), wad, "getSettlement value");
    assert_eq!(u64::from_str_radix(&words[128..], 16).unwrap(), 1, "status published");

    // Every command of the README's guides, as written, against this devnet.
    readme_blocks_work(dir.path(), "<!-- readme-check -->");

    // Exit codes that mean something: 3 for an unknown settlement, 1 for a malformed id.
    let env = std::fs::read_to_string(dir.path().join("devnet/env")).unwrap();
    let api = env.split_whitespace().find_map(|w| w.strip_prefix("API=")).unwrap().to_owned();
    let unknown = format!("0x{}", "00".repeat(32));
    let out = fixd().args(["settlement", "show", &unknown, "--api", &api]).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let out = fixd().args(["settlement", "show", "0x12", "--api", &api]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a settlement id"));
    let out = fixd().args(["settlement", "list", "--status", "nope", "--api", &api]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bad_status"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // `fixd pn` refuses with the vault's reason and its exit codes: 3 for an unknown series, 1
    // for a refusal or bad input; nothing is sent.
    let pn = |command: &str| {
        devnet_sh(dir.path(), &format!("fixd pn {command} --vault \"$VAULT\" --rpc-url \"$RPC\""))
    };
    let out = pn(&format!("show --series {unknown}"));
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("fixd pn create"));
    for (command, says) in [
        ("split --series \"$SERIES_BELOW\" --amount 1", "AlreadySettled"),
        ("split --series \"$SERIES_BELOW\" --amount 1.2.3", "--amount"),
        ("show --series 0x12", "is not 0x + 64 hex digits"),
        ("redeem --series \"$SERIES_BELOW\"", "holds no P and no N"),
        ("redeem --maturity $((MATURITY + 86400)) --strike 2700.5 --p 0.1", "SettlementNotPublished"),
        ("merge --maturity $((MATURITY + 86400)) --strike 2700.5 --amount 1", "ERC20InsufficientBalance"),
        ("create --maturity $((MATURITY + 86400)) --strike 2700.5", "SeriesExists"),
        ("create --maturity $MATURITY --strike 0", "ZeroStrike"),
    ] {
        let out = pn(command);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "fixd pn {command}: {stderr}");
        assert!(stderr.contains(says), "fixd pn {command} should say {says}: {stderr}");
    }

    // Ctrl-C: every child stops, and the devnet exits 0.
    let pid = devnet.child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    devnet.wait_for_line("stopped every child process", Duration::from_secs(60));
    let status = devnet.child.wait().unwrap();
    assert!(status.success(), "fixd devnet exited with {status}");
    let rpc = curl.rsplit(' ').next().unwrap();
    let again = Command::new("sh").arg("-c").arg(format!("curl -s -m 2 {rpc}")).status().unwrap();
    assert!(!again.success(), "anvil still answers after Ctrl-C");
}

/// `command` run with `sh -ec` in `cwd` after `. devnet/env`, with this build's `fixd` first on
/// PATH.
fn devnet_sh(cwd: &std::path::Path, command: &str) -> std::process::Output {
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_fixd")).parent().unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    Command::new("sh")
        .arg("-ec")
        .arg(format!(". devnet/env\n{command}"))
        .current_dir(cwd)
        .env("PATH", &path)
        .output()
        .unwrap()
}

/// The README's shell blocks marked `marker`, run with `sh -e` in `cwd` (where
/// the devnet's `devnet/` directory is), after `. devnet/env`, with this build's `fixd` first
/// on PATH.
fn readme_blocks_work(cwd: &std::path::Path, marker: &str) {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let blocks: Vec<&str> = readme
        .split(marker)
        .skip(1)
        .map(|rest| {
            let body = rest.trim_start().strip_prefix("```sh\n").expect("a ```sh block follows the marker");
            &body[..body.find("```").expect("the block ends")]
        })
        .collect();
    assert!(!blocks.is_empty(), "the README marks its guide commands with {marker}");
    for block in blocks {
        for command in block.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')) {
            let out = devnet_sh(cwd, command);
            let (stdout, stderr) =
                (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            assert!(out.status.success(), "README command failed: {command}\n{stdout}\n{stderr}");
            println!("README: {command}\n{}", stdout.lines().take(3).collect::<Vec<_>>().join("\n"));
        }
    }
}

/// `fixd devnet --exit-after-publish`, as scripts and CI run it: it exits 0 once the value is
/// on-chain, its JSON summary carries the value read back from the contract, and it leaves no
/// child running.
#[test]
fn fixd_devnet_exit_after_publish_stops_everything_and_reports_the_on_chain_value() {
    let dir = tempfile::tempdir().unwrap();
    let out = fixd()
        .args(["devnet", "--free-ports", "--exit-after-publish", "--json", "--timeout-secs", "240", "--dir"])
        .arg(dir.path().join("devnet"))
        .arg("--anvil")
        .arg(anvil_path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "fixd devnet failed: {stderr}");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("--json prints the summary");
    let value = fixd_proto::value::Wad::parse(summary["value"].as_str().unwrap()).unwrap();
    assert_eq!(summary["on_chain_value"], value.raw().to_string(), "the contract holds the value: {summary}");
    assert!(summary["tx_hash"].as_str().unwrap().starts_with("0x"));
    assert!(stderr.contains("stopped every child process"), "{stderr}");
    pn_lines_are_the_payout_maths(&summary["pn"], value);
    // Nothing answers any more where the devnet's chain and node-0 listened.
    for url in [summary["rpc_url"].as_str().unwrap(), summary["api"][0].as_str().unwrap()] {
        let alive = Command::new("curl").args(["-s", "-m", "2", url]).status().unwrap();
        assert!(!alive.success(), "{url} still answers after --exit-after-publish");
    }
}

/// The devnet's P/N lines (issue 19): a series below and one above the published value, 1 ETH
/// split into each, and what its P and N received on redemption equal to
/// `fixd_proto::payout::pn_split` to the wei; and the Gamma adapter's price is the value in 8
/// decimals, final.
fn pn_lines_are_the_payout_maths(pn: &serde_json::Value, value: fixd_proto::value::Wad) {
    use fixd_proto::value::Wad;
    let wad =
        |v: &serde_json::Value| Wad::parse(v.as_str().unwrap_or_else(|| panic!("a decimal: {v}"))).unwrap();
    let series = pn["series"].as_array().expect("the summary carries the P/N series");
    assert_eq!(series.len(), 2, "{pn}");
    let strikes: Vec<Wad> = series.iter().map(|s| wad(&s["strike"])).collect();
    assert!(strikes[0] < value && value < strikes[1], "strikes {strikes:?} around {value}");
    for s in series {
        let strike = wad(&s["strike"]);
        let (p, n) = fixd_proto::payout::pn_split(value, strike);
        assert_eq!((wad(&s["p_paid"]), wad(&s["n_paid"])), (p, n), "strike {strike}: {s}");
        assert_eq!(wad(&s["split"]), Wad::ONE);
        assert_eq!(wad(&s["p_paid_usd"]), fixd_proto::payout::usd_value(p, value));
    }
    // At or above the strike P takes everything; below, P is worth the strike.
    assert_eq!(wad(&series[1]["p_paid"]), Wad::ONE);
    let p_usd = wad(&series[0]["p_paid_usd"]);
    assert!(strikes[0].abs_diff(p_usd) <= Wad::from_raw(10_000), "{p_usd} vs {}", strikes[0]);
    assert_eq!(pn["gamma_expiry_price"], (value.raw() / 10u128.pow(10)).to_string());
    assert_eq!(pn["gamma_is_finalized"], true);
}
