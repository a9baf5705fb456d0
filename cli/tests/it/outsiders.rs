//! Nothing from outside the committee stops a node (issue 15), against real `fixd` processes:
//! admin access that trusts the caller's token and Host, not the bind address; an RPC URL that
//! holds a provider's key shown nowhere; a peer that never answers catch-up; a dispute flood
//! through the API and as relays, on a chain that keeps only recent state.

use std::time::{Duration, Instant};

use alloy::primitives::{B256, U256};
use alloy::signers::local::PrivateKeySigner;
use fixd_proto::types::genesis::ProtocolParams;
use fixd_proto::types::settlement::SettlementSpec;
use fixd_testkit::rpc_recorder::RpcRecorder;

use crate::harness::{
    Devnet, MemberDir, Node, Scheduled, TestChain, build_genesis, free_port, init_member, short_maturity,
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
    let (clock, spec) = short_maturity();
    let params = ProtocolParams {
        round_timeout_secs: 8,
        challenge_period_secs: 10,
        publish_timeout_secs: 15,
        confirmations: 2,
        ..ProtocolParams::default()
    };
    let mut devnet = Devnet::prepare_on_chain(
        4,
        clock,
        &[Scheduled { maturity: spec.maturity, params: spec.params }],
        &params,
    );
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
    let took = published_at - spec.maturity;
    println!("published {took} s after maturity; the hung peer held {withheld} catch-up requests");
    assert!(took < 55, "published {took} s after maturity: a hung peer delayed it");
}

const ETH: u128 = 1_000_000_000_000_000_000;

/// A node's resident memory, KiB, from `/proc`.
fn rss_kib(node: &Node) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", node.proc.child.id())).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS in /proc/<pid>/status");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A blocking HTTP client whose connections come from `local` (any 127.0.0.0/8 address is this
/// machine), so that the node sees each as its own client.
fn client_from(local: &str) -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::builder()
        .local_address(local.parse::<std::net::IpAddr>().unwrap())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A dispute of `spec`'s certified proposal, signed by `disputer`, as the API takes it.
fn dispute_body(
    chain: &TestChain,
    spec: &SettlementSpec,
    proposal_hash: B256,
    dispute_id: B256,
    bond: (B256, u128),
    disputer: &PrivateKeySigner,
) -> String {
    crate::disputes::signed_dispute(
        chain,
        spec,
        proposal_hash,
        dispute_id,
        bond,
        disputer.address(),
        disputer,
    )
}

/// Dispute flood (issue 15, acceptances 1 and 6). Four members on an anvil that keeps no
/// historical state (stricter than a provider's pruned node, which keeps 128 blocks). Once the
/// value is certified:
/// - through node-1's API, 1,000 validly signed disputes whose bond transactions do not exist,
///   from ten client addresses over about 20 s;
/// - as relays, 1,000 more: node-3 (test fault `relay-bogus-disputes`) relays bogus disputes
///   under its own signature to every member.
///
/// Meanwhile a genuine disputer escrows a bond and submits its dispute to node-1 from its own
/// address, 4 blocks after the bond (its block's state gone by then), retrying on 429 as
/// `Retry-After` says. It is accepted, every member reads its bond back on the pruned chain, and
/// the committee reviews it. node-0's and node-1's RPC calls, counted at recording proxies, stay
/// under the bound the API's and the bond checks' limits make: at most 10 API bond checks a
/// second (2 calls each for a missing transaction) and 16 relay checks per member per settlement
/// (2 calls each, retried after 2 s, doubling), plus the chain service's own polling: 100 calls
/// in any second. Without the limits, the API flood alone makes 2,000 calls.
#[test]
fn a_dispute_flood_is_bounded_and_a_late_genuine_dispute_on_a_pruned_chain_is_reviewed() {
    const PEAK_CALLS_PER_SECOND: usize = 100;
    let (clock, spec) = short_maturity();
    let params = ProtocolParams {
        round_timeout_secs: 6,
        max_clock_skew_secs: 5,
        challenge_period_secs: 60,
        reopened_challenge_period_secs: 20,
        publish_timeout_secs: 15,
        confirmations: 2,
        ..ProtocolParams::default()
    };
    let settlements = [Scheduled { maturity: spec.maturity, params: spec.params }];
    let mut devnet = Devnet::prepare_on_pruned_chain(4, clock, &settlements, &params);
    let rpc = devnet.chain.as_ref().unwrap().rpc.clone();
    let recorders: Vec<RpcRecorder> = (0..2).map(|_| RpcRecorder::start(&rpc)).collect();
    for (i, recorder) in recorders.iter().enumerate() {
        let config = devnet.genesis_and_keys(i).1.join("config.toml");
        let text = std::fs::read_to_string(&config).unwrap();
        let text = text.replace(&format!("rpc_url = {rpc:?}"), &format!("rpc_url = {:?}", recorder.url));
        assert!(text.contains(&recorder.url));
        std::fs::write(&config, text).unwrap();
    }
    for i in 0..3 {
        devnet.start_node(i);
    }
    devnet.start_node_with_env(3, &[("FIXD_TEST_FAULT", "relay-bogus-disputes")]);
    let chain = devnet.chain.as_ref().unwrap();
    let (node, disputes) = (devnet.node(1), format!("/v1/settlements/{}/disputes", spec.id()));
    let state = node.wait_for(&disputes, Duration::from_secs(150), |s| s["phase"] == "challenge");
    let proposal_hash: B256 = serde_json::from_value(state["certified"]["proposal_hash"].clone()).unwrap();
    let bond: u128 = state["required_bond_wei"].as_str().unwrap().parse().unwrap();
    let rss_before = [rss_kib(devnet.node(0)), rss_kib(node)];
    let flood_start = Instant::now();

    // The API flood: ten clients, 100 disputes each, one every 200 ms.
    let url = format!("{}{disputes}", node.api);
    let bodies: Vec<Vec<String>> = (0..10u8)
        .map(|c| {
            let signer = PrivateKeySigner::from_bytes(&B256::repeat_byte(0x30 + c)).unwrap();
            (0..100u8)
                .map(|k| {
                    let id = B256::from(U256::from(u64::from(c) << 8 | u64::from(k)));
                    dispute_body(chain, &spec, proposal_hash, id, (id, bond), &signer)
                })
                .collect()
        })
        .collect();
    let flood: Vec<std::thread::JoinHandle<Vec<u16>>> = bodies
        .into_iter()
        .enumerate()
        .map(|(c, bodies)| {
            let url = url.clone();
            std::thread::spawn(move || {
                let client = client_from(&format!("127.0.1.{}", c + 1));
                bodies
                    .into_iter()
                    .map(|body| {
                        let answer = client
                            .post(&url)
                            .header("content-type", "application/json")
                            .body(body)
                            .send()
                            .unwrap();
                        std::thread::sleep(Duration::from_millis(200));
                        answer.status().as_u16()
                    })
                    .collect()
            })
        })
        .collect();

    // The genuine dispute, in the middle of it, more than 4 blocks after its bond.
    std::thread::sleep(Duration::from_secs(4));
    let disputer = chain.funded_key(0x71, 10 * ETH);
    let genuine = B256::repeat_byte(0x6e);
    let (bond_tx, _) = chain.post_bond(&disputer, spec.id(), genuine, bond);
    let receipt = chain.rpc("eth_getTransactionReceipt", serde_json::json!([bond_tx]));
    let mined =
        u64::from_str_radix(receipt["blockNumber"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
    while chain.block_number() < mined + 4 {
        std::thread::sleep(Duration::from_millis(200));
    }
    let at_bond =
        chain.rpc_result("eth_getBalance", serde_json::json!([disputer.address(), format!("{mined:#x}")]));
    assert!(at_bond.is_err(), "anvil no longer has the bond block's state: {at_bond:?}");
    let body = dispute_body(chain, &spec, proposal_hash, genuine, (bond_tx, bond), &disputer);
    let honest = client_from("127.0.0.2");
    let mut limited = 0;
    let accepted = loop {
        let answer =
            honest.post(&url).header("content-type", "application/json").body(body.clone()).send().unwrap();
        let status = answer.status().as_u16();
        let retry_after =
            answer.headers().get("retry-after").map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
        let answer: serde_json::Value = answer.json().unwrap();
        if status != 429 {
            assert_eq!(status, 202, "the genuine dispute is accepted: {answer}");
            break answer;
        }
        limited += 1;
        assert!(limited < 20, "the genuine dispute was refused 20 times: {answer}");
        std::thread::sleep(Duration::from_secs(retry_after.expect("429 says when to retry")));
    };
    println!("genuine dispute accepted after {limited} rate-limited tries: {accepted}");

    let statuses: Vec<u16> = flood.into_iter().flat_map(|t| t.join().unwrap()).collect();
    let flood_end = Instant::now();
    let count = |code: u16| statuses.iter().filter(|s| **s == code).count();
    assert_eq!(statuses.len(), 1000);
    assert_eq!(count(422) + count(429), 1000, "every bogus dispute refused, none with a 5xx: {statuses:?}");
    println!("API flood: {} refused for a missing bond, {} rate-limited", count(422), count(429));

    // Every member reads the bond back on its pruned chain, and the committee reviews it.
    for n in devnet.running() {
        n.wait_for(&disputes, Duration::from_secs(120), |s| {
            s["disputes"].as_array().is_some_and(|d| {
                d.iter().any(|d| d["dispute_id"] == serde_json::json!(genuine) && d["status"] == "rejected")
            })
        });
    }

    for (i, recorder) in recorders.iter().enumerate() {
        let calls = recorder.count_between(flood_start, flood_end);
        let peak = recorder.peak_per_second(flood_start, flood_end);
        let secs = (flood_end - flood_start).as_secs_f64();
        println!("node-{i}: {calls} RPC calls in {secs:.1} s of flood, at most {peak} in any second");
        assert!(peak <= PEAK_CALLS_PER_SECOND, "node-{i} made {peak} RPC calls in one second");
    }
    let node0 = devnet.node(0);
    let dropped = crate::counter(node0, "fixd_bond_checks_dropped_total", &[("reason", "too_many")]);
    let in_flight = crate::counter(node0, "fixd_bond_checks", &[]);
    println!("node-0: {dropped} relays dropped for too many checks, {in_flight} checks in flight");
    assert!(dropped >= 900, "node-3's relays past its share are dropped: {dropped}");
    assert!(in_flight <= 16, "at most node-3's share of checks runs: {in_flight}");
    for (i, before) in rss_before.iter().enumerate() {
        let after = rss_kib(devnet.node(i));
        println!("node-{i}: RSS {before} KiB before the flood, {after} KiB after");
        assert!(after < before + 64 * 1024, "node-{i} grew by more than 64 MiB");
    }
    let (code, _) = node.get("/v1/health");
    assert_eq!(code, 200, "node-1 still serves");

    // Schemathesis against node-1, now that a value is certified and a chain is there: the signed
    // disputes among its cases (of the certified proposal, bonds that do not exist) get past the
    // signature check to the bond check, which reads the chain (or to the rate limit's 429).
    let signed: Vec<serde_json::Value> = (0..20u8)
        .map(|k| {
            let signer = PrivateKeySigner::from_bytes(&B256::repeat_byte(0x90 + k)).unwrap();
            let id = B256::repeat_byte(0xd0 + k);
            serde_json::from_str(&dispute_body(chain, &spec, proposal_hash, id, (id, bond), &signer)).unwrap()
        })
        .collect();
    // Receipts read of the signed disputes' bond transactions (0xd0d0…, 0xd1d1…, …).
    let reads = |r: &RpcRecorder| {
        let ours = |p: &str| (0..20u8).any(|k| p.contains(&format!("{}", B256::repeat_byte(0xd0 + k))));
        r.calls().iter().filter(|(_, m, p)| m == "eth_getTransactionReceipt" && ours(p)).count()
    };
    let dir = tempfile::tempdir().unwrap();
    let requests = crate::api_load::run_schemathesis(node, &spec.id().to_string(), &signed, dir.path(), 25);
    let bond_reads = reads(&recorders[1]);
    println!("schemathesis: {requests} requests to node-1, {bond_reads} bond receipts read");
    assert!(bond_reads > 0, "schemathesis's disputes reached the bond check");
    assert_eq!(node.get("/v1/health").0, 200, "node-1 still serves after schemathesis");
}
