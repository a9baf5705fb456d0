//! What `docker/compose.yml` relies on: `fixd devnet --setup-only --containers` against an
//! existing chain lays the network out for containers, and every `fixd` command line in the
//! compose file names flags that `fixd` has.

use crate::harness::{TestChain, fixd};

#[test]
fn setup_only_lays_out_members_for_containers_on_an_existing_chain() {
    let chain = TestChain::start(&[alloy::primitives::Address::repeat_byte(1)], 1);
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("devnet");
    let out = fixd()
        .args([
            "devnet",
            "--setup-only",
            "--containers",
            "--lead-secs",
            "45",
            "--rpc-url",
            &chain.rpc,
            "--dir",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the plan is printed as JSON");
    let wall_start: u64 = std::fs::read_to_string(dir.join("wall_start")).unwrap().trim().parse().unwrap();
    assert_eq!(plan["wall_start"], wall_start);
    assert!(wall_start >= crate::harness::now() + 30, "the replay starts after the containers do");
    assert_eq!(plan["maturity"], wall_start + 60);
    assert_eq!(plan["rpc_url"], chain.rpc);
    assert_eq!(plan["apis"][3], "http://node-3:8080");
    let genesis = fixd_node::genesis::load(&dir.join("genesis.toml")).unwrap();
    assert_eq!(genesis.members.len(), 4);
    for (i, member) in genesis.members.iter().enumerate() {
        assert_eq!(member.listen, vec![format!("/dns4/node-{i}/tcp/9000")]);
        let config = fixd_node::config::Config::load(&dir.join(format!("node-{i}/config.toml"))).unwrap();
        assert_eq!(config.api.listen.to_string(), "0.0.0.0:8080");
        assert_eq!(config.p2p.listen, vec!["/ip4/0.0.0.0/tcp/9000".to_owned()]);
        assert_eq!(config.chain.rpc_url.as_deref(), Some(chain.rpc.as_str()));
        assert_eq!(config.settlements[0].maturity, wall_start + 60);
    }
    let config = std::fs::read_to_string(dir.join("node-0/config.toml")).unwrap();
    assert!(config.contains("base_url = \"http://venues:8900\""), "{config}");
}

/// Every `fixd` command line in docker/compose.yml: its subcommand exists and `--help` lists
/// each flag it passes, so the compose file cannot drift from the CLI unnoticed.
#[test]
fn compose_commands_are_fixd_commands() {
    let compose =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docker/compose.yml")).unwrap();
    let services = compose.split("\nservices:\n").nth(1).expect("a services section");
    let mut checked = Vec::new();
    let mut blocks: Vec<(String, Vec<&str>)> = Vec::new();
    // Up to the next top-level key (volumes:).
    for line in services.lines().take_while(|l| l.is_empty() || l.starts_with(' ') || l.starts_with('#')) {
        if let Some(name) = line.strip_prefix("  ").and_then(|l| l.strip_suffix(':'))
            && !name.starts_with(' ')
        {
            blocks.push((name.to_owned(), Vec::new()));
        } else if let Some((_, lines)) = blocks.last_mut() {
            lines.push(line);
        }
    }
    for (service, lines) in blocks.iter().filter(|(name, _)| name != "anvil") {
        // The `command:` entry: its line and the list items under it.
        let start = lines
            .iter()
            .position(|l| l.trim_start().starts_with("command:"))
            .unwrap_or_else(|| panic!("service {service} has a command"));
        let end = lines[start + 1..]
            .iter()
            .position(|l| !l.starts_with("      ") && !l.trim().is_empty())
            .map_or(lines.len(), |p| start + 1 + p);
        let text = lines[start..end].join(" ");
        let tokens: Vec<String> = text
            .split(|c: char| c.is_whitespace() || "[]\",'".contains(c))
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect();
        let sub = ["devnet", "replay-venues", "run"]
            .into_iter()
            .find(|s| tokens.iter().any(|t| t == s))
            .unwrap_or_else(|| panic!("service {service} runs no known fixd command: {text}"));
        let help = fixd().args([sub, "--help"]).output().unwrap();
        assert!(help.status.success());
        let help = String::from_utf8_lossy(&help.stdout);
        for flag in tokens.iter().filter(|t| t.starts_with("--")) {
            assert!(help.contains(flag.as_str()), "service {service}: `fixd {sub}` has no {flag}");
        }
        checked.push(format!("{service}: fixd {sub}"));
    }
    assert_eq!(checked.len(), 6, "setup, venues and four nodes: {checked:?}");
}
