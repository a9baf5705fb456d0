//! Nothing from outside the committee stops a node (issue 15), against real `fixd` processes:
//! admin access that trusts the caller's token and Host, not the bind address; an RPC URL that
//! holds a provider's key shown nowhere.

use std::time::Duration;

use crate::harness::{MemberDir, Node, build_genesis, free_port, init_member, with_committee, write_config};

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
        node.get("/v1/settlements").1.as_array().unwrap().len(),
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
