//! The command line as a user meets it: help text, and refusals that name the problem and the fix.

use crate::harness::{build_genesis, fixd, init_member, with_committee};

fn run(args: &[&str]) -> (bool, String, String) {
    let out = fixd().args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn help_lists_every_command_and_each_command_explains_itself() {
    let (ok, out, _) = run(&["--help"]);
    assert!(ok);
    for command in ["init", "genesis", "run", "replay-venues", "devnet", "settlement", "keys", "verify"] {
        assert!(out.contains(command), "`fixd --help` lists {command}:\n{out}");
    }
    for (command, flags) in [
        ("init", &["--dir", "--name"][..]),
        ("genesis", &["--member", "--out", "--chain-id"]),
        ("run", &["--config", "FIXD_CONFIG", "--venues-url", "--rpc-url"]),
        ("replay-venues", &["--speed", "--fault", "crash:PCT:FROM:TO"]),
        ("keys", &["--dir", "--json"]),
        ("devnet", &["--exit-after-publish", "--free-ports", "--anvil", "--setup-only", "--containers"]),
        ("settlement", &["list", "show", "schedule", "Exit codes"]),
    ] {
        let (ok, out, err) = run(&[command, "--help"]);
        assert!(ok, "{command} --help: {err}");
        for flag in flags {
            assert!(out.contains(flag), "`fixd {command} --help` explains {flag}:\n{out}");
        }
    }
}

#[test]
fn a_bad_config_names_the_field_and_a_missing_one_names_the_flag() {
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("config.toml");
    std::fs::write(
        &config,
        "data_dir = 'd'\ngenesis = 'g'\nkeys_dir = 'k'\n[api]\nlisten_on = '127.0.0.1:1'\n",
    )
    .unwrap();
    let (ok, _, err) = run(&["run", "--config", config.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("unknown field `listen_on`") && err.contains("expected one of"), "{err}");

    std::fs::write(&config, "data_dir = 'd'\ngenesis = 'g'\nkeys_dir = 'k'\n[api]\nlisten = 'localhost'\n")
        .unwrap();
    let (ok, _, err) = run(&["run", "--config", config.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("listen") && err.contains("line 5"), "{err}");

    let (ok, _, err) = run(&["run", "--config", "/nonexistent/fixd.toml"]);
    assert!(!ok);
    assert!(err.contains("cannot read config") && err.contains("--config"), "{err}");
}

#[test]
fn a_node_whose_keys_are_not_in_the_genesis_refuses_to_start() {
    let root = tempfile::tempdir().unwrap();
    let member = init_member(root.path(), "node-0");
    let stranger = init_member(root.path(), "stranger");
    let genesis = build_genesis(root.path(), &with_committee(root.path(), &member));
    let config = stranger.dir.join("config.toml");
    std::fs::write(
        &config,
        format!("data_dir = 'data'\ngenesis = {genesis:?}\nkeys_dir = '.'\n[api]\nlisten = '127.0.0.1:0'\n"),
    )
    .unwrap();
    let (ok, _, err) = run(&["run", "--config", config.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("not in the genesis") && err.contains("member.toml"), "{err}");
}

#[test]
fn init_then_keys_show_the_same_member() {
    let root = tempfile::tempdir().unwrap();
    let member = init_member(root.path(), "node-7");
    let (ok, out, err) = run(&["keys", "--dir", member.dir.to_str().unwrap(), "--json"]);
    assert!(ok, "{err}");
    let keys: serde_json::Value = serde_json::from_str(&out).unwrap();
    let public = std::fs::read_to_string(member.dir.join("member.toml")).unwrap();
    assert!(public.contains(keys["ed25519"].as_str().unwrap()), "{public}");
    assert!(public.contains("node-7"));
    // init never overwrites a key.
    let (ok, _, err) = run(&["init", "--dir", member.dir.to_str().unwrap(), "--name", "node-7"]);
    assert!(!ok);
    assert!(err.contains("refusing to overwrite"), "{err}");
}

/// `fixd verify` accepts the committed proof bundle, and refuses it with a reason once any one
/// byte of a signature, the value or the genesis is changed.
#[test]
fn verify_accepts_a_bundle_and_names_what_a_changed_byte_broke() {
    let vector = concat!(env!("CARGO_MANIFEST_DIR"), "/../proto/tests/vectors/proof_bundle.json");
    let (ok, out, err) = run(&["verify", vector]);
    assert!(ok, "{err}");
    assert!(out.starts_with("verified: settlement 0x"), "{out}");
    assert!(err.contains("warning: no --network-id given"), "an unchecked network is said: {err}");
    let (ok, out, _) = run(&["verify", vector, "--json"]);
    assert!(ok);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["votes"], 3);
    assert_eq!(report["network_id_trusted"], false);
    // Each observation's value recomputed from its partitions (issue 20).
    let partitions = report["partitions"].as_array().unwrap();
    assert_eq!(partitions.len(), 4);
    assert!(partitions.iter().all(|p| p["consistent"] == true && p["counted"] == 12), "{report}");
    let network_id = report["network_id"].as_str().unwrap().to_owned();
    let (ok, out, err) = run(&["verify", vector, "--network-id", &network_id]);
    assert!(ok, "{err}");
    assert!(!err.contains("warning") && out.contains("(as trusted)"), "{out}{err}");

    let original = std::fs::read_to_string(vector).unwrap();
    let bundle: serde_json::Value = serde_json::from_str(&original).unwrap();
    let signature = bundle["certificate"]["votes"][1]["signature"].as_str().unwrap().to_owned();
    let value = bundle["certificate"]["proposal"]["payload"]["value"].as_str().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let flip = |s: &str| -> String {
        // Change the last hex digit (or decimal digit) by one.
        let mut chars: Vec<char> = s.chars().collect();
        let last = chars.last_mut().unwrap();
        *last = if *last == '0' { '1' } else { '0' };
        chars.into_iter().collect()
    };
    for (what, from, to, reason) in [
        ("a vote signature", signature.clone(), flip(&signature), "signature"),
        (
            "the value",
            format!("\"value\": \"{value}\""),
            format!("\"value\": \"{}\"", flip(&value)),
            "median",
        ),
        ("the genesis", "\"chain_id\": 31337".to_owned(), "\"chain_id\": 31338".to_owned(), "signature"),
    ] {
        assert!(original.contains(&from), "{what}: {from} not in the bundle");
        let path = dir.path().join("bundle.json");
        std::fs::write(&path, original.replacen(&from, &to, 1)).unwrap();
        let (ok, _, err) = run(&["verify", path.to_str().unwrap()]);
        assert!(!ok, "a changed {what} must not verify");
        assert!(err.contains("does not verify") && err.contains(reason), "{what}: {err}");
    }
    let (ok, _, err) = run(&["verify", vector, "--network-id", &format!("0x{}", "11".repeat(32))]);
    assert!(!ok);
    assert!(err.contains("not the trusted"), "{err}");
}

/// `cargo tree` of one package of this workspace, with the given edge kinds.
fn cargo_tree(package: &str, edges: &str) -> String {
    let out = std::process::Command::new(env!("CARGO"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["tree", "--locked", "--offline", "--prefix", "none", "-p", package, "-e", edges])
        .output()
        .expect("cargo runs");
    assert!(out.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// What `cargo build --release -p fixd` (the Docker image, scripts/devnet.sh) builds has no
/// test faults and no Byzantine strategies, and the node never depends on the test kit; the
/// tests' own graph does turn both on, so the check can fail.
#[test]
fn the_release_binary_has_no_test_faults_and_the_node_no_test_kit() {
    let release = cargo_tree("fixd", "normal,features");
    assert!(release.contains("fixd-node v"), "{release}");
    assert!(!release.contains("\"test-faults\""), "the release graph enables test-faults:\n{release}");
    assert!(!release.contains("\"byzantine\""), "the release graph enables byzantine:\n{release}");
    let tests = cargo_tree("fixd", "normal,dev,features");
    assert!(
        tests.contains("fixd-node feature \"test-faults\""),
        "the tests' graph lacks test-faults:\n{tests}"
    );
    assert!(
        tests.contains("fixd-testkit feature \"byzantine\"")
            && tests.contains("fixd-node feature \"byzantine\""),
        "the tests' graph lacks byzantine:\n{tests}"
    );
    let node = cargo_tree("fixd-node", "normal,build");
    assert!(!node.contains("fixd-testkit"), "fixd-node depends on the test kit:\n{node}");
}
