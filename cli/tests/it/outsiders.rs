//! Nothing from outside the committee stops a node (issue 15), against real `fixd` processes:
//! admin access that trusts the caller's token and Host, not the bind address; an RPC URL that
//! holds a provider's key shown nowhere; a peer that never answers catch-up.

use std::time::Duration;

use fixd_proto::replay::ReplayClock;
use fixd_proto::types::genesis::ProtocolParams;
use fixd_proto::types::settlement::{Index, SettlementSpec};

use crate::harness::{
    Devnet, MemberDir, Node, Scheduled, build_genesis, free_port, init_member, now, short_params,
    with_committee, write_config,
};

/// One member of a four-member genesis, its config written with `extra` lines appended to
/// `[api]` and, after it, any `tail` sections. Only this member runs.
fn one_node(root: &std::path::Path, api_extra: &str, tail: &str) -> (MemberDir, std::path::PathBuf) {
    let member = init_member(root, "node-0");
    let genesis = build_genesis(root, &with_committee(root, &member));
    let config = write_config(&member, &genesis, "http://127.0.0.1:9", &[]);
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replace("admin_loopback_without_token = true\n", api_extra) + tail;
    std::fs::write(&config, text).unwrap();
    (member, config)
}

/// A node on loopback with an admin token: no token is refused (401), a forged Host is refused
/// (403) even with the token, and the token with a loopback Host schedules (201).
#[test]
fn admin_needs_the_token_and_a_loopback_host_even_on_a_loopback_bind() {
    let root = tempfile::tempdir().unwrap();
    let (_member, config) = one_node(root.path(), "admin_token = \"s3cret\"\n", "");
    let node = Node::start("node-0", &config);
    // reqwest needs a TLS provider even for plain http.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::blocking::Client::new();
    let schedule = |token: Option<&str>, host: Option<&str>| {
        let mut request = client
            .post(format!("{}/v1/settlements", node.api))
            .header("content-type", "application/json")
            .body(r#"{"maturity": 4000000000}"#);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(host) = host {
            request = request.header("host", host);
        }
        let response = request.send().unwrap();
        let status = response.status().as_u16();
        (status, response.json::<serde_json::Value>().unwrap())
    };
    let (status, body) = schedule(None, None);
    assert_eq!((status, body["error"].as_str()), (401, Some("admin_token")), "{body}");
    let (status, body) = schedule(Some("s3cret"), Some("rebound.attacker.example"));
    assert_eq!((status, body["error"].as_str()), (403, Some("host_not_allowed")), "{body}");
    let (status, body) = schedule(None, Some("rebound.attacker.example"));
    assert_eq!(status, 403, "{body}");
    let (status, body) = schedule(Some("s3cret"), None);
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        node.get("/v1/settlements").1["settlements"].as_array().unwrap().len(),
        1,
        "only the authorised call scheduled"
    );
}

/// A node whose RPC URL holds a key (in its path and its query) talks to an RPC that does not
/// answer, so its errors quote the URL: neither `/v1/status` nor any line of its log shows the
/// key or the path.
#[test]
fn an_rpc_url_key_shows_neither_in_the_status_nor_in_the_log() {
    let root = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/v2/s3cretkey?apikey=s3cretkey");
    let chain = format!("\n[chain]\nrpc_url = \"{url}\"\npoll_interval = \"200ms\"\nrpc_timeout = \"1s\"\n");
    let (_member, config) = one_node(root.path(), "", &chain);
    let node = Node::start("node-0", &config);
    let status =
        node.wait_for("/v1/status", Duration::from_secs(30), |s| !s["chain"]["last_error"].is_null());
    let text = status.to_string();
    assert_eq!(status["chain"]["rpc_url"], format!("http://127.0.0.1:{port}"), "{text}");
    assert!(!text.contains("s3cretkey") && !text.contains("/v2"), "the status shows the key: {text}");
    std::thread::sleep(Duration::from_secs(2));
    let lines = node.proc.lines_so_far();
    assert!(lines.iter().any(|l| l.contains(&format!("127.0.0.1:{port}"))), "the RPC is named in the log");
    let leaks: Vec<&String> =
        lines.iter().filter(|l| l.contains("s3cretkey") || l.contains("/v2/")).collect();
    assert!(leaks.is_empty(), "the log shows the key: {leaks:#?}");
}

/// A hung peer (issue 15, acceptance 2): one of four members accepts every catch-up request and
/// never answers, and the catch-up timeout is a minute. The others ask it in turn (gossip is best
/// effort, so every member catches up now and then), and each such request runs a full minute.
/// Certification and publication go on beside it: the settlement is published well within a
/// minute of when it would be without the hung peer, not a minute or more after it.
#[test]
fn a_peer_that_never_answers_catch_up_delays_neither_certification_nor_publication() {
    let wall_start = now() + 8;
    let clock = ReplayClock { replay_start: 1_749_740_400, wall_start, speed: 60 };
    let maturity = wall_start + 60;
    let spec = SettlementSpec { index: Index::EthUsd, maturity, params: short_params(3) };
    let params = ProtocolParams {
        round_timeout_secs: 8,
        challenge_period_secs: 10,
        publish_timeout_secs: 15,
        confirmations: 2,
        ..ProtocolParams::default()
    };
    let mut devnet =
        Devnet::prepare_on_chain(4, clock, &[Scheduled { maturity, params: spec.params }], &params);
    for i in 0..4 {
        let config = devnet.genesis_and_keys(i).1.join("config.toml");
        let text = std::fs::read_to_string(&config).unwrap();
        let text = text.replacen("[p2p]\n", "[p2p]\ncatchup_timeout = \"60s\"\n", 1);
        std::fs::write(&config, text).unwrap();
    }
    for i in 0..3 {
        devnet.start_node(i);
    }
    devnet.start_node_with_env(3, &[("FIXD_TEST_FAULT", "withhold-catch-up")]);

    let path = format!("/v1/settlements/{}", spec.id());
    let views: Vec<serde_json::Value> = devnet
        .running()
        .map(|n| n.wait_for(&path, Duration::from_secs(150), |v| v["status"] == "published"))
        .collect();
    let (_, published_at, status) = devnet.chain.as_ref().unwrap().get_settlement(spec.id());
    assert_eq!(status, 1, "published on-chain");
    for v in &views {
        assert_eq!(v["value"], views[0]["value"], "one value on every node");
    }
    let withheld = devnet
        .node(3)
        .proc
        .lines_so_far()
        .iter()
        .filter(|l| l.contains("test fault: accepting a catch-up request and never answering it"))
        .count();
    assert!(withheld >= 1, "the hung peer was asked to catch up at least once");
    // Without the hung peer: observe at maturity + 5 s, certify in a round, a 10 s window, sign,
    // then 2 confirmations a second apart: about 25-35 s. One stalled catch-up would add 60 s.
    let took = published_at - maturity;
    println!("published {took} s after maturity; the hung peer held {withheld} catch-up requests");
    assert!(took < 55, "published {took} s after maturity: a hung peer delayed it");
}
