//! `fixd devnet` end to end (issue 8): the command a new user runs starts anvil, the replay
//! venues and four nodes, and reports a value published on-chain; the `getSettlement` read it
//! prints, run as printed while the devnet runs, returns that value; Ctrl-C stops every child.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::{Proc, anvil_path, fixd};

#[test]
fn fixd_devnet_publishes_and_its_printed_read_returns_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut cmd = fixd();
    cmd.args(["devnet", "--free-ports", "--timeout-secs", "240", "--dir"])
        .arg(dir.path().join("devnet"))
        .arg("--anvil")
        .arg(anvil_path());
    let mut devnet = Proc::spawn("devnet", cmd);

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
