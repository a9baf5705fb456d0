//! End-to-end tests of the `fixd` binary: real `fixd` processes on loopback, a real anvil with
//! the real contract, and the replay venues, driven through the test kit's harness.

use fixd_testkit::harness;

mod api_load;
mod byzantine;
mod certification;
mod chain_service;
mod chaos;
mod cli;
mod contract;
mod crashes;
mod devnet;
mod disputes;
mod docker;
mod network_faults;
mod observation;
mod outsiders;
mod pn_vault;
mod publication;
mod venues;

/// A counter (or gauge) from a node's `/metrics`, parsed as Prometheus text: the sample of `metric` whose
/// labels include `labels` (0 when there is none).
fn counter(node: &harness::Node, metric: &str, labels: &[(&str, &str)]) -> u64 {
    let (code, body) = node.get("/metrics");
    assert_eq!(code, 200);
    let text = body.as_str().expect("metrics are text");
    let scrape =
        prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("Prometheus text");
    let sample = scrape
        .samples
        .iter()
        .find(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)));
    match sample.map(|s| &s.value) {
        Some(
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v),
        ) => *v as u64,
        None => 0,
        Some(other) => panic!("{metric} is not a counter: {other:?}"),
    }
}
