//! The chain service alone against a real anvil whose mining the test controls: a publish
//! transaction that sits unmined is replaced (same nonce, higher fees) and the replacement is
//! what lands; a reorg that removes the publication is seen, and publishing again lands it once
//! more on the new chain; a base fee that soars past `chain.max_fee_per_gas` gets one
//! replacement up to the cap and no further; a poll costs the same RPC calls whatever the
//! number of settlements watched; a batch is one transaction, and its reports asked alone wait
//! on it.

use std::time::{Duration, Instant};

use alloy::primitives::B256;
use alloy::signers::local::PrivateKeySigner;
use fixd_node::chain::service::Oracle;
use fixd_node::chain::{ChainCommand, ChainService, ChainUpdate};
use fixd_node::config::ChainConfig;
use fixd_node::metrics::Metrics;
use fixd_proto::eip712;
use fixd_proto::types::report::{FinalReport, FinalReportBatch};
use fixd_proto::value::Wad;
use serde_json::json;
use tokio::sync::mpsc;

use crate::harness::TestChain;

/// Waits for the next update about the settlement that satisfies `done`.
async fn next(updates: &mut mpsc::Receiver<ChainUpdate>, done: impl Fn(&ChainUpdate) -> bool) -> ChainUpdate {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let update =
            tokio::time::timeout(left, updates.recv()).await.expect("an update in time").expect("open");
        if done(&update) {
            return update;
        }
    }
}

/// A committee of four on an anvil that mines only when told, and a report of `settlement`
/// signed by three of them.
struct Fixture {
    keys: Vec<PrivateKeySigner>,
    chain: TestChain,
    report: FinalReport,
    signatures: Vec<(alloy::primitives::Address, fixd_proto::eip712::EthSignature)>,
    runtime: tokio::runtime::Runtime,
}

fn fixture(settlement: u8) -> Fixture {
    let keys: Vec<PrivateKeySigner> =
        (1..=4u8).map(|b| PrivateKeySigner::from_bytes(&B256::repeat_byte(b)).unwrap()).collect();
    let addresses: Vec<_> = keys.iter().map(|k| k.address()).collect();
    let chain = TestChain::start(&addresses, 3);
    let domain = eip712::domain(chain.dev.chain_id, chain.dev.contract);
    let report = FinalReport {
        settlement_id: B256::repeat_byte(settlement),
        value: Wad::parse("2750.5").unwrap(),
        round: 0,
        outcomes: vec![],
    };
    let signatures =
        keys[..3].iter().map(|k| (k.address(), eip712::sign_typed(k, &domain, &report))).collect();
    // Nothing is mined unless the test says so.
    chain.rpc("evm_setIntervalMining", json!([0]));
    chain.rpc("evm_setAutomine", json!([false]));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    Fixture { keys, chain, report, signatures, runtime }
}

/// A chain service running on the fixture's runtime (the anvil controls are blocking calls
/// between), sending from the first member.
struct Running {
    handle: fixd_node::chain::ChainHandle,
    updates: mpsc::Receiver<ChainUpdate>,
    cancel: tokio_util::sync::CancellationToken,
    metrics: Metrics,
}

impl Fixture {
    fn start(&self, config: ChainConfig) -> Running {
        let (metrics, _) = Metrics::new();
        let (updates_tx, updates) = mpsc::channel(64);
        let cancel = tokio_util::sync::CancellationToken::new();
        let dev = &self.chain.dev;
        let oracle = Oracle {
            chain_id: dev.chain_id,
            contract: dev.contract,
            contract_block: dev.contract_block,
            confirmations: 2,
        };
        let (service, handle, commands) = ChainService::new(
            ChainConfig { rpc_url: Some(self.chain.rpc.clone()), ..config },
            &self.chain.rpc,
            oracle,
            self.keys[0].clone(),
            updates_tx,
            Some(metrics.clone()),
        )
        .unwrap();
        self.runtime.spawn(service.run(commands, cancel.clone()));
        Running { handle, updates, cancel, metrics }
    }
}

/// `fixd_chain_rpc_calls_total`.
fn rpc_calls(metrics: &Metrics) -> u64 {
    let text = metrics.encode(&[], &[]).unwrap();
    text.lines().find_map(|l| l.strip_prefix("fixd_chain_rpc_calls_total ")).unwrap().parse().unwrap()
}

/// The RPC load follows the blocks, not the settlements watched: with 500 settlements watched
/// a poll costs what it costs with one (each is read once with `getSettlement` when first
/// watched), and a publication among them is still found, from the block's logs.
#[test]
fn a_poll_costs_the_same_rpc_calls_with_500_settlements_watched_as_with_one() {
    let fx = fixture(0x5d);
    let (chain, report, runtime) = (&fx.chain, &fx.report, &fx.runtime);
    let interval = Duration::from_millis(100);
    let Running { handle, mut updates, cancel, metrics } =
        fx.start(ChainConfig { poll_interval: interval, ..ChainConfig::default() });
    // At most this many polls fit in `span`, whatever the machine's load.
    let most_polls = |span: Duration| span.as_millis() as u64 / interval.as_millis() as u64 + 1;
    let calls_over = |span: Duration| {
        let before = rpc_calls(&metrics);
        std::thread::sleep(span);
        rpc_calls(&metrics) - before
    };
    runtime.block_on(handle.send(ChainCommand::Watch(report.settlement_id)));
    runtime.block_on(next(&mut updates, |(id, s)| *id == report.settlement_id && s.is_none()));
    let span = Duration::from_secs(2);
    let with_one = calls_over(span);

    let others: Vec<B256> = (0..499u32).map(|i| B256::left_padding_from(&i.to_be_bytes())).collect();
    let before = rpc_calls(&metrics);
    for id in &others {
        runtime.block_on(handle.send(ChainCommand::Watch(*id)));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while rpc_calls(&metrics) - before < 499 {
        assert!(Instant::now() < deadline, "the new settlements were never read once");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let with_500 = calls_over(span);
    println!("RPC calls over {span:?}: {with_one} watching one, {with_500} watching 500");
    // No block is mined: a poll is one read of the latest block.
    assert!(with_one >= 1 && with_one <= most_polls(span), "{with_one} calls watching one");
    assert!(with_500 <= most_polls(span), "{with_500} calls watching 500: a read per settlement per poll");

    // A publication among them is found from its block's logs, with its sender.
    runtime.block_on(
        handle.send(ChainCommand::Publish { report: report.clone(), signatures: fx.signatures.clone() }),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while transactions(&metrics, "sent") == 0 {
        assert!(Instant::now() < deadline, "nothing was sent");
        std::thread::sleep(Duration::from_millis(100));
    }
    chain.rpc("evm_mine", json!([]));
    let (_, on_chain) =
        runtime.block_on(next(&mut updates, |(id, s)| *id == report.settlement_id && s.is_some()));
    let on_chain = on_chain.unwrap();
    assert_eq!((on_chain.value, on_chain.publisher), (report.value, fx.keys[0].address()));
    assert_eq!(chain.publications(report.settlement_id), vec![on_chain.tx_hash]);
    chain.rpc("evm_mine", json!([]));
    let (_, deeper) = runtime.block_on(next(&mut updates, |(id, s)| {
        *id == report.settlement_id && s.as_ref().is_some_and(|s| s.confirmations == 2)
    }));
    assert_eq!(deeper.unwrap().tx_hash, on_chain.tx_hash);
    cancel.cancel();
}

/// A batch goes out in one `publishBatch`; a single publication asked meanwhile of a report in
/// it waits on the batch instead of sending a second transaction; every settlement is then read
/// back from the one transaction's logs.
#[test]
fn a_batch_is_published_in_one_transaction_and_its_reports_alone_wait_on_it() {
    let fx = fixture(0x5c);
    let (chain, runtime) = (&fx.chain, &fx.runtime);
    let config = ChainConfig { poll_interval: Duration::from_millis(200), ..ChainConfig::default() };
    let Running { handle, mut updates, cancel, metrics } = fx.start(config);
    let domain = eip712::domain(chain.dev.chain_id, chain.dev.contract);
    let reports: Vec<FinalReport> = [0x61u8, 0x62, 0x63]
        .iter()
        .map(|&b| FinalReport {
            settlement_id: B256::repeat_byte(b),
            value: Wad::from_raw(2_750 * 10u128.pow(18) + u128::from(b)),
            round: 0,
            outcomes: vec![],
        })
        .collect();
    let batch = FinalReportBatch { reports: reports.clone() };
    let over_batch =
        fx.keys[..3].iter().map(|k| (k.address(), eip712::sign_typed(k, &domain, &batch))).collect();
    runtime.block_on(handle.send(ChainCommand::PublishBatch { batch, signatures: over_batch }));
    let alone =
        fx.keys[..3].iter().map(|k| (k.address(), eip712::sign_typed(k, &domain, &reports[1]))).collect();
    runtime.block_on(handle.send(ChainCommand::Publish { report: reports[1].clone(), signatures: alone }));
    let deadline = Instant::now() + Duration::from_secs(20);
    while transactions(&metrics, "sent") == 0 {
        assert!(Instant::now() < deadline, "nothing was sent");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(transactions(&metrics, "sent"), 1, "one transaction: the report alone waits on its batch");
    let mut sending = handle.status().sending;
    sending.sort();
    assert_eq!(sending, reports.iter().map(|r| r.settlement_id).collect::<Vec<_>>());
    chain.rpc("evm_mine", json!([]));
    // The three updates, in whatever order the service sends them.
    let mut seen = std::collections::BTreeMap::new();
    while seen.len() < reports.len() {
        let (id, on_chain) = runtime.block_on(next(&mut updates, |(_, s)| s.is_some()));
        seen.insert(id, on_chain.unwrap());
    }
    let mut txs = std::collections::BTreeSet::new();
    for report in &reports {
        let on_chain = &seen[&report.settlement_id];
        assert_eq!((on_chain.value, on_chain.publisher), (report.value, fx.keys[0].address()));
        assert_eq!(chain.get_settlement(report.settlement_id).2, 1);
        txs.insert(on_chain.tx_hash);
    }
    assert_eq!(txs.len(), 1, "one transaction published the three");
    let deadline = Instant::now() + Duration::from_secs(10);
    while transactions(&metrics, "mined") == 0 || !handle.status().sending.is_empty() {
        assert!(Instant::now() < deadline, "the batch job never finished: {:?}", handle.status());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(transactions(&metrics, "sent"), 1);
    cancel.cancel();
}

/// `fixd_chain_transactions_total{state}`.
fn transactions(metrics: &Metrics, state: &str) -> u64 {
    let text = metrics.encode(&[], &[]).unwrap();
    let line = format!("fixd_chain_transactions_total{{state=\"{state}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(line.as_str())).map_or(0, |v| v.parse::<u64>().unwrap())
}

#[test]
fn a_stuck_publish_is_replaced_and_a_reorged_one_is_published_again() {
    let fx = fixture(0x5e);
    let (chain, report, runtime) = (&fx.chain, &fx.report, &fx.runtime);
    let before = chain.rpc("evm_snapshot", json!([]));
    let config = ChainConfig {
        poll_interval: Duration::from_millis(200),
        rpc_timeout: Duration::from_secs(2),
        replace_after: Duration::from_secs(2),
        max_backoff: Duration::from_secs(1),
        ..ChainConfig::default()
    };
    let Running { handle, mut updates, cancel, metrics } = fx.start(config);
    let count = |state: &str| transactions(&metrics, state);
    let publish = ChainCommand::Publish { report: report.clone(), signatures: fx.signatures.clone() };
    runtime.block_on(handle.send(publish.clone()));
    // The transaction sits in the mempool; after replace_after it is replaced.
    let deadline = Instant::now() + Duration::from_secs(20);
    while count("replaced") == 0 {
        assert!(Instant::now() < deadline, "the stuck transaction was never replaced");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(count("sent"), 1);
    chain.rpc("evm_mine", json!([]));
    let (_, first) =
        runtime.block_on(next(&mut updates, |(id, s)| *id == report.settlement_id && s.is_some()));
    let first = first.unwrap();
    assert_eq!(first.value, report.value);
    assert_eq!(first.publisher, fx.keys[0].address());
    assert_eq!(chain.publications(report.settlement_id), vec![first.tx_hash], "one publication");
    assert_eq!(count("mined"), 1, "the replacement is the one that landed");

    // A reorg back to before the publication: the service sees it gone.
    assert_eq!(chain.rpc("evm_revert", json!([before])), json!(true));
    chain.rpc("evm_mine", json!([]));
    runtime.block_on(next(&mut updates, |(id, s)| *id == report.settlement_id && s.is_none()));
    assert_eq!(chain.get_settlement(report.settlement_id).2, 0, "unpublished after the reorg");
    // The node asks again (its turn comes round), and it lands on the new chain.
    runtime.block_on(handle.send(publish));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        chain.rpc("evm_mine", json!([]));
        if chain.get_settlement(report.settlement_id).2 == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "not published again after the reorg");
        std::thread::sleep(Duration::from_millis(300));
    }
    let (_, again) =
        runtime.block_on(next(&mut updates, |(id, s)| *id == report.settlement_id && s.is_some()));
    assert_eq!(chain.publications(report.settlement_id), vec![again.unwrap().tx_hash]);
    println!("replaced: {}, sent: {}, mined: {}", count("replaced"), count("sent"), count("mined"));

    // Deep enough, it is read no more: one last update at 64 confirmations, then silence.
    chain.rpc("anvil_mine", json!([70]));
    let (_, deep) = runtime.block_on(next(&mut updates, |(id, s)| {
        *id == report.settlement_id && s.as_ref().is_some_and(|s| s.confirmations >= 64)
    }));
    assert!(deep.unwrap().confirmations >= fixd_node::chain::service::FORGET_AFTER_CONFIRMATIONS);
    chain.rpc("anvil_mine", json!([3]));
    let quiet =
        runtime.block_on(async { tokio::time::timeout(Duration::from_secs(2), updates.recv()).await });
    assert!(quiet.is_err(), "still watched after 64 confirmations: {quiet:?}");
    cancel.cancel();
}

/// The base fee soars past `chain.max_fee_per_gas` while a publish waits: the transaction is
/// replaced up to the cap, then no further, and the status says so. Once the base fee falls,
/// the capped transaction lands. 2,100 blocks later, a fresh service still finds it, searching
/// the logs back from the head in chunks.
#[test]
fn a_soaring_base_fee_raises_a_publish_to_the_cap_and_no_further() {
    const GWEI: u128 = 1_000_000_000;
    let cap = 10 * GWEI;
    let fx = fixture(0x5f);
    let (chain, report, runtime) = (&fx.chain, &fx.report, &fx.runtime);
    chain.rpc("anvil_setNextBlockBaseFeePerGas", json!([format!("{:#x}", GWEI)]));
    chain.rpc("evm_mine", json!([]));
    let config = ChainConfig {
        poll_interval: Duration::from_millis(200),
        rpc_timeout: Duration::from_secs(2),
        replace_after: Duration::from_secs(1),
        max_backoff: Duration::from_secs(1),
        max_fee_per_gas: cap,
        ..ChainConfig::default()
    };
    let Running { handle, mut updates, cancel, metrics } = fx.start(config);
    let count = |state: &str| transactions(&metrics, state);
    let pending_max_fee = || {
        let pool = chain.rpc("txpool_content", json!([]));
        let by_sender = pool["pending"].as_object().unwrap().values().next().cloned().unwrap_or_default();
        let tx = by_sender.as_object().and_then(|m| m.values().next().cloned()).unwrap_or_default();
        u128::from_str_radix(tx["maxFeePerGas"].as_str().unwrap_or("0x0").trim_start_matches("0x"), 16)
            .unwrap()
    };
    runtime.block_on(
        handle.send(ChainCommand::Publish { report: report.clone(), signatures: fx.signatures.clone() }),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while count("sent") == 0 {
        assert!(Instant::now() < deadline, "nothing was sent");
        std::thread::sleep(Duration::from_millis(100));
    }
    let first = pending_max_fee();
    assert!(first > 0 && first < cap, "first offer {first} under the cap {cap}");

    // The base fee rises to 6 gwei: the stuck offer is replaced, up to the cap (10 gwei).
    chain.rpc("anvil_setNextBlockBaseFeePerGas", json!([format!("{:#x}", 6 * GWEI)]));
    chain.rpc("evm_mine", json!([]));
    let deadline = Instant::now() + Duration::from_secs(20);
    while handle.status().fee_capped.is_empty() {
        assert!(Instant::now() < deadline, "never reported at the cap: {:?}", handle.status());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(pending_max_fee(), cap, "raised up to the cap");
    // Raised by a replacement, or sent again if anvil dropped the offer under the base fee.
    let offers = count("sent") + count("replaced");
    assert!(offers >= 2, "the stuck offer was raised");
    // It soars to 100 gwei: nothing is offered past the cap, however long it waits.
    chain.rpc("anvil_setNextBlockBaseFeePerGas", json!([format!("{:#x}", 100 * GWEI)]));
    chain.rpc("evm_mine", json!([]));
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(count("sent") + count("replaced"), offers, "nothing offered past the cap");
    // anvil drops an offer under the base fee from its pool; the node does not send another.
    assert!([0, cap].contains(&pending_max_fee()), "pending at most at the cap");
    let status = handle.status();
    assert_eq!((status.fee_capped, status.max_fee_per_gas), (vec![report.settlement_id], cap));

    // The base fee falls: the capped transaction lands.
    chain.rpc("anvil_setNextBlockBaseFeePerGas", json!([format!("{:#x}", GWEI)]));
    chain.rpc("evm_mine", json!([]));
    let deadline = Instant::now() + Duration::from_secs(20);
    while chain.get_settlement(report.settlement_id).2 != 1 {
        assert!(Instant::now() < deadline, "not published once the base fee fell");
        chain.rpc("evm_mine", json!([]));
        std::thread::sleep(Duration::from_millis(300));
    }
    let (_, on_chain) =
        runtime.block_on(next(&mut updates, |(id, s)| *id == report.settlement_id && s.is_some()));
    let on_chain = on_chain.unwrap();
    assert_eq!(on_chain.value, report.value);
    let landed = chain.rpc("eth_getTransactionByHash", json!([on_chain.tx_hash]));
    let fee =
        u128::from_str_radix(landed["maxFeePerGas"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
    assert!(fee <= cap, "landed offering {fee}, over the cap {cap}");
    assert!(count("sent") + count("replaced") <= offers + 1, "one more offer at most, once the fee fell");
    cancel.cancel();

    // 2,100 blocks later a fresh service finds the publication: its log is searched from the
    // head back to the contract's block, in chunks of LOG_CHUNK_BLOCKS (2,000), never from block 0.
    for _ in 0..3 {
        chain.rpc("anvil_mine", json!([700]));
    }
    let Running { handle, mut updates, cancel, .. } =
        fx.start(ChainConfig { poll_interval: Duration::from_millis(200), ..ChainConfig::default() });
    runtime.block_on(handle.send(ChainCommand::Watch(report.settlement_id)));
    let (_, found) =
        runtime.block_on(next(&mut updates, |(id, s)| *id == report.settlement_id && s.is_some()));
    let found = found.unwrap();
    assert_eq!(found.tx_hash, on_chain.tx_hash, "the same publication, found 2,100 blocks back");
    assert!(
        found.confirmations > fixd_node::chain::service::LOG_CHUNK_BLOCKS,
        "in an earlier chunk than the head's"
    );
    cancel.cancel();
}
