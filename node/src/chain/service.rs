//! The chain service: the one task that sends transactions from this member's account, and
//! the reader that tells the node what the contract holds.
//!
//! ```text
//!   settlements ── ChainCommand (Watch, Publish) ──▶ ChainService ── eth_call / send / receipts ──▶ RPC
//!   settlements ◀── ChainUpdate (settlement, Option<OnChain>) ──┘  (every poll_interval)
//! ```
//!
//! - **One sender.** Only this task signs and sends, so nonces never race (alloy #1073); each
//!   send asks the node for the pending nonce, and a replacement reuses the nonce it replaces.
//! - **Idempotent.** Before sending, `publish` is simulated with `eth_call`: a revert names the
//!   custom error. `AlreadyPublished` with the same value is success (somebody else published);
//!   the settlement's on-chain state is read from the `ReportPublished` logs, never assumed
//!   from our own receipt.
//! - **One read per poll, whatever the number watched.** Each poll reads the latest block and
//!   the `ReportPublished` logs of the blocks since the last poll, for all settlements in one
//!   `eth_getLogs`; a transaction's sender is read once per transaction (a batch publishes many
//!   settlements in one). A settlement is read with `getSettlement` once, when first watched,
//!   for a publication older than the logs read.
//! - **Every RPC has a timeout** (`rpc_timeout`), and waiting for a receipt is our own polling,
//!   not alloy's watcher (alloy #2678, #3916). While the endpoint fails, retries back off from
//!   1 s to `max_backoff`; nothing is dropped.
//! - **Stuck and dropped.** A transaction the node no longer knows is sent again; one without a
//!   receipt after `replace_after` is replaced with the same nonce and doubled fees.
//! - **Reorgs.** Each poll checks that the last block read is still on the chain; if a reorg
//!   replaced it, the last [`FORGET_AFTER_CONFIRMATIONS`] blocks are read again, so a
//!   publication that a reorg removed is seen as gone; the publishing member then sends again
//!   in its turn. Once a publication is
//!   [`FORGET_AFTER_CONFIRMATIONS`] blocks deep it is no longer read.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alloy::eips::BlockNumberOrTag;
use alloy::network::EthereumWallet;
use alloy::primitives::{Address, B256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::Filter;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolEvent;
use fixd_proto::eip712::EthSignature;
use fixd_proto::types::report::{FinalReport, FinalReportBatch};
use fixd_proto::types::settlement::SettlementId;
use fixd_proto::value::Wad;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::contract::SettlementOracle::{self, SettlementOracleErrors, SettlementOracleInstance};
use super::{ordered_signatures, packed_batch, report_to_sol};
use crate::config::ChainConfig;
use fixd_decision::publication::OnChain;

/// A publication this many blocks deep is no longer read back (a reorg that deep is not a
/// risk this service guards against).
pub const FORGET_AFTER_CONFIRMATIONS: u64 = 64;

/// What the node asks of the chain service.
#[derive(Clone, Debug)]
pub enum ChainCommand {
    /// Read this settlement's on-chain state every poll and report changes.
    Watch(SettlementId),
    /// Publish this report with these signatures, and keep at it until the contract holds it.
    /// A report in a batch under way waits on the batch.
    Publish { report: FinalReport, signatures: Vec<(Address, EthSignature)> },
    /// Publish these reports in one `publishBatch`, with signatures over the batch, and keep at
    /// it until the contract holds every one (a report published meanwhile by someone else is
    /// skipped by the contract).
    PublishBatch { batch: FinalReportBatch, signatures: Vec<(Address, EthSignature)> },
}

/// Where the contract is: the genesis `chain_id`, `contract` and `contract_block`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Oracle {
    pub chain_id: u64,
    pub contract: Address,
    /// The block it was deployed in: logs are searched from there on.
    pub contract_block: u64,
    /// The genesis `confirmations`: the update that reaches them goes to the settlements first.
    pub confirmations: u64,
}

impl Oracle {
    pub fn of(genesis: &fixd_proto::types::genesis::Genesis) -> Self {
        Oracle {
            chain_id: genesis.chain_id,
            contract: genesis.contract,
            contract_block: genesis.contract_block,
            confirmations: genesis.params.confirmations,
        }
    }
}

/// One settlement's on-chain state, as read.
pub type ChainUpdate = (SettlementId, Option<OnChain>);

/// The chain as this node last saw it, for the status API.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ChainStatus {
    /// `scheme://host[:port]` of `chain.rpc_url`: its path, query and user info may hold a key.
    pub rpc_url: String,
    pub chain_id: u64,
    pub contract: Address,
    /// The account that sends this node's transactions.
    pub sender: Address,
    pub reachable: bool,
    pub head: Option<u64>,
    pub last_error: Option<String>,
    /// Publications this node is sending now.
    pub sending: Vec<SettlementId>,
    /// `chain.max_fee_per_gas`, wei.
    pub max_fee_per_gas: u128,
    /// Publications whose transaction offers `max_fee_per_gas` and waits for the base fee to
    /// fall: raising the cap (and restarting) is the operator's call.
    pub fee_capped: Vec<SettlementId>,
}

/// The handle other tasks use.
#[derive(Clone, Debug)]
pub struct ChainHandle {
    commands: mpsc::Sender<ChainCommand>,
    status: Arc<Mutex<ChainStatus>>,
}

impl ChainHandle {
    /// Queues a command; waits only when the queue is full.
    pub async fn send(&self, command: ChainCommand) {
        if self.commands.send(command).await.is_err() {
            tracing::warn!("the chain service has stopped; command dropped");
        }
    }

    pub fn status(&self) -> ChainStatus {
        self.status.lock().expect("chain status lock").clone()
    }
}

/// A transaction this node sent and still waits on.
#[derive(Clone, Debug)]
struct Sent {
    hash: B256,
    nonce: u64,
    max_fee: u128,
    priority_fee: u128,
    at: Instant,
}

/// Where a settlement's `ReportPublished` log was found, and the value it published.
#[derive(Clone, Debug)]
struct Found {
    value: Wad,
    tx_hash: B256,
    block_number: u64,
    publisher: Address,
}

impl Found {
    fn at(&self, head: u64) -> OnChain {
        OnChain {
            value: self.value,
            tx_hash: self.tx_hash,
            block_number: self.block_number,
            confirmations: head.saturating_sub(self.block_number) + 1,
            publisher: self.publisher,
        }
    }
}

/// The last block whose logs were read, by number and hash: if that block is no longer on the
/// chain, a reorg replaced it (and every block after it).
#[derive(Clone, Copy, Debug)]
struct Scanned {
    number: u64,
    hash: B256,
}

/// What a job publishes.
#[derive(Debug)]
enum Payload {
    Single { report: FinalReport, signatures: Vec<(Address, EthSignature)> },
    Batch { batch: FinalReportBatch, signatures: Vec<(Address, EthSignature)> },
}

impl Payload {
    fn ids(&self) -> impl Iterator<Item = &SettlementId> {
        let reports = match self {
            Payload::Single { report, .. } => std::slice::from_ref(report),
            Payload::Batch { batch, .. } => batch.reports.as_slice(),
        };
        reports.iter().map(|r| &r.settlement_id)
    }
}

impl std::fmt::Display for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Payload::Single { report, .. } => write!(f, "settlement {}", report.settlement_id),
            Payload::Batch { batch, .. } => {
                write!(
                    f,
                    "batch of {} from settlement {}",
                    batch.reports.len(),
                    batch.reports[0].settlement_id
                )
            }
        }
    }
}

/// A publication under way: one settlement's (keyed by its id) or a batch's (keyed by the hash
/// of its BCS).
#[derive(Debug)]
struct Job {
    payload: Payload,
    sent: Option<Sent>,
    next_try: Instant,
    backoff: Duration,
    /// The sent transaction offers `chain.max_fee_per_gas` already: it waits, unraised.
    at_fee_cap: bool,
}

/// The chain service. See the module docs.
pub struct ChainService {
    provider: DynProvider,
    oracle: SettlementOracleInstance<DynProvider>,
    sender: Address,
    config: ChainConfig,
    /// The genesis `contract_block`: logs are searched from there on.
    contract_block: u64,
    /// The genesis `confirmations`.
    confirmations: u64,
    /// Where the updates of deeper confirmations start, moving every poll.
    turn: usize,
    watched: BTreeSet<SettlementId>,
    /// Watched settlements not yet read from the contract once: a publication older than the
    /// log scan is found by reading `getSettlement`, once per settlement.
    unchecked: BTreeSet<SettlementId>,
    /// Where the logs have been read up to.
    scanned: Option<Scanned>,
    last: BTreeMap<SettlementId, Option<OnChain>>,
    found: BTreeMap<SettlementId, Found>,
    jobs: BTreeMap<B256, Job>,
    updates: mpsc::Sender<ChainUpdate>,
    status: Arc<Mutex<ChainStatus>>,
    metrics: Option<crate::metrics::Metrics>,
}

impl std::fmt::Debug for ChainService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainService").field("sender", &self.sender).field("jobs", &self.jobs.len()).finish()
    }
}

/// Why the chain service cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ChainStartError {
    /// The URL itself is not repeated: it may hold a provider's key.
    #[error("chain.rpc_url is not a URL ({reason}); use e.g. http://127.0.0.1:8545")]
    BadUrl { reason: String },
}

/// An RPC call with a timeout; the error says which call failed and how.
pub(crate) async fn timed<T, E: std::fmt::Display>(
    limit: Duration,
    what: &str,
    call: impl std::future::IntoFuture<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(limit, call.into_future()).await {
        Ok(Ok(value)) => Ok(value),
        // The client's errors quote the URL, which may hold a provider's key.
        Ok(Err(e)) => Err(super::redact::redact_urls_in(&format!("{what}: {e}"))),
        Err(_) => Err(format!("{what}: no answer within {limit:?}")),
    }
}

impl ChainService {
    /// Builds the service for `contract` on chain `chain_id`, sending from `key`.
    pub fn new(
        config: ChainConfig,
        rpc_url: &str,
        oracle: Oracle,
        key: PrivateKeySigner,
        updates: mpsc::Sender<ChainUpdate>,
        metrics: Option<crate::metrics::Metrics>,
    ) -> Result<(ChainService, ChainHandle, mpsc::Receiver<ChainCommand>), ChainStartError> {
        let Oracle { chain_id, contract, contract_block, confirmations } = oracle;
        let url =
            rpc_url.parse::<reqwest::Url>().map_err(|e| ChainStartError::BadUrl { reason: e.to_string() })?;
        let sender = key.address();
        let provider = ProviderBuilder::new()
            .with_chain_id(chain_id)
            .wallet(EthereumWallet::from(key))
            .connect_http(url)
            .erased();
        let oracle = SettlementOracle::new(contract, provider.clone());
        let status = Arc::new(Mutex::new(ChainStatus {
            rpc_url: super::redact::redact_url(rpc_url),
            chain_id,
            contract,
            sender,
            max_fee_per_gas: config.max_fee_per_gas,
            ..ChainStatus::default()
        }));
        let (tx, rx) = mpsc::channel(64);
        let service = ChainService {
            provider,
            oracle,
            sender,
            config,
            contract_block,
            confirmations,
            turn: 0,
            watched: BTreeSet::new(),
            unchecked: BTreeSet::new(),
            scanned: None,
            last: BTreeMap::new(),
            found: BTreeMap::new(),
            jobs: BTreeMap::new(),
            updates,
            status: status.clone(),
            metrics,
        };
        Ok((service, ChainHandle { commands: tx, status }, rx))
    }

    /// An RPC call with the configured timeout; a failure is counted.
    async fn rpc<T, E: std::fmt::Display>(
        &self,
        what: &str,
        call: impl std::future::IntoFuture<Output = Result<T, E>>,
    ) -> Result<T, String> {
        if let Some(m) = &self.metrics {
            m.chain_rpc_calls.inc();
        }
        let result = timed(self.config.rpc_timeout, what, call).await;
        if result.is_err()
            && let Some(m) = &self.metrics
        {
            m.chain_rpc_errors.inc();
        }
        result
    }

    fn count(&self, state: &'static str) {
        if let Some(m) = &self.metrics {
            m.transaction(state);
        }
    }

    /// Runs until cancelled.
    pub async fn run(
        mut self,
        mut commands: mpsc::Receiver<ChainCommand>,
        cancel: CancellationToken,
    ) -> anyhow::Result<()> {
        let mut interval = tokio::time::interval(self.config.poll_interval);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return Ok(()),
                Some(command) = commands.recv() => self.on_command(command),
                _ = interval.tick() => {
                    tokio::select! {
                        () = cancel.cancelled() => return Ok(()),
                        () = self.poll() => {}
                    }
                }
            }
        }
    }

    fn on_command(&mut self, command: ChainCommand) {
        match command {
            ChainCommand::Watch(id) => self.watch(id),
            ChainCommand::Publish { report, signatures } => {
                let id = report.settlement_id;
                self.watch(id);
                if let Some(job) = self.jobs.get_mut(&id)
                    && let Payload::Single { signatures: held, .. } = &mut job.payload
                {
                    // Already under way; take the fuller signature set for a later send.
                    if signatures.len() > held.len() {
                        *held = signatures;
                    }
                    return;
                }
                if let Some(batch) = self.jobs.values().find(|job| job.payload.ids().any(|i| *i == id)) {
                    tracing::debug!(settlement = %id, job = %batch.payload, "publication requested; its batch is under way");
                    return;
                }
                tracing::info!(settlement = %id, value = %report.value, "publication requested");
                self.start(id, Payload::Single { report, signatures });
            }
            ChainCommand::PublishBatch { batch, signatures } => {
                for report in &batch.reports {
                    self.watch(report.settlement_id);
                }
                let key = fixd_proto::hash::hash_bcs(&batch);
                if self.jobs.contains_key(&key) {
                    return;
                }
                let payload = Payload::Batch { batch, signatures };
                tracing::info!(job = %payload, "batch publication requested");
                self.start(key, payload);
            }
        }
    }

    fn start(&mut self, key: B256, payload: Payload) {
        let job = Job {
            payload,
            sent: None,
            next_try: Instant::now(),
            backoff: Duration::from_secs(1),
            at_fee_cap: false,
        };
        self.jobs.insert(key, job);
    }

    fn watch(&mut self, id: SettlementId) {
        if self.watched.insert(id) {
            self.unchecked.insert(id);
        }
    }

    fn set_status(&self, update: impl FnOnce(&mut ChainStatus)) {
        update(&mut self.status.lock().expect("chain status lock"));
    }

    async fn poll(&mut self) {
        let latest =
            self.rpc("eth_getBlockByNumber", self.provider.get_block_by_number(BlockNumberOrTag::Latest));
        let head = match latest.await.and_then(|block| {
            block.ok_or_else(|| "eth_getBlockByNumber: the endpoint has no latest block".to_string())
        }) {
            Ok(block) => Scanned { number: block.header.number, hash: block.header.hash },
            Err(error) => {
                tracing::warn!(%error, "chain RPC unreachable; retrying");
                self.set_status(|s| {
                    s.reachable = false;
                    s.last_error = Some(error);
                });
                return;
            }
        };
        self.set_status(|s| {
            s.reachable = true;
            s.head = Some(head.number);
        });
        if let Some(m) = &self.metrics {
            m.chain_head.set(i64::try_from(head.number).unwrap_or(i64::MAX));
        }
        match self.follow(head).await {
            Ok(()) => self.report(head.number),
            Err(error) => {
                tracing::warn!(%error, "cannot read the contract's publications; retrying at the next poll");
                self.set_status(|s| s.last_error = Some(error));
            }
        }
        let due: Vec<B256> =
            self.jobs.iter().filter(|(_, j)| j.next_try <= Instant::now()).map(|(key, _)| *key).collect();
        for key in due {
            if let Err(error) = self.drive(key).await {
                let job = self.jobs.get_mut(&key).expect("due jobs exist");
                job.next_try = Instant::now() + job.backoff;
                tracing::warn!(job = %job.payload, %error, retry_in = ?job.backoff, "publication attempt failed");
                job.backoff = (job.backoff * 2).min(self.config.max_backoff);
                self.set_status(|s| s.last_error = Some(error));
            }
        }
        let sending = self.jobs.values().flat_map(|j| j.payload.ids().copied()).collect();
        let capped =
            self.jobs.values().filter(|j| j.at_fee_cap).flat_map(|j| j.payload.ids().copied()).collect();
        self.set_status(|s| {
            s.sending = sending;
            s.fee_capped = capped;
        });
    }

    /// Tells the settlements what the contract holds for each watched one, where that changed.
    fn report(&mut self, head: u64) {
        // A job is done once the contract holds every settlement of it, whoever published.
        let done: Vec<B256> = self
            .jobs
            .iter()
            .filter(|(_, job)| job.payload.ids().all(|id| self.found.contains_key(id)))
            .map(|(key, _)| *key)
            .collect();
        for key in done {
            let job = self.jobs.remove(&key).expect("listed above");
            let ours =
                job.sent.is_some_and(|sent| job.payload.ids().any(|id| self.found[id].tx_hash == sent.hash));
            tracing::info!(job = %job.payload, ours, "publication is on-chain");
            if ours {
                self.count("mined");
            }
        }
        // What changed since the settlement service last heard, what it acts on first: a
        // publication appearing or going, reaching the genesis confirmations or the depth past
        // which it is no longer read; then the rest (a deeper confirmation count), in a turn
        // that moves every poll, so that none waits behind the others for long.
        let mut changed: Vec<(bool, SettlementId, Option<OnChain>)> = Vec::new();
        for id in &self.watched {
            let state = self.found.get(id).map(|found| found.at(head));
            if self.last.get(id) == Some(&state) {
                continue;
            }
            let before = self.last.get(id).and_then(|l| l.as_ref()).map(|s| s.confirmations);
            let now = state.as_ref().map(|s| s.confirmations);
            let crosses = |mark: u64| before.is_none_or(|b| b < mark) && now.is_some_and(|n| n >= mark);
            let urgent = before.is_none()
                || now.is_none()
                || crosses(self.confirmations.max(1))
                || crosses(FORGET_AFTER_CONFIRMATIONS);
            changed.push((urgent, *id, state));
        }
        let turn = self.turn % changed.len().max(1);
        changed.rotate_left(turn);
        self.turn = self.turn.wrapping_add(1);
        changed.sort_by_key(|(urgent, ..)| !urgent);
        for (_, id, state) in changed {
            // Never wait on the settlement service, which may be waiting on our commands: an
            // update it has no room for is sent again at the next poll.
            match self.updates.try_send((id, state.clone())) {
                Ok(()) => {
                    self.last.insert(id, state.clone());
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::debug!("settlement service busy; the remaining chain updates wait a poll");
                    break;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return,
            }
            // Once the settlement service has this last state (it then lets the driver go).
            if state.as_ref().is_some_and(|s| s.confirmations >= FORGET_AFTER_CONFIRMATIONS) {
                // Beyond any plausible reorg: stop reading it, so the RPC load follows the
                // settlements in flight, not every one ever published.
                tracing::info!(settlement = %id, "publication is {FORGET_AFTER_CONFIRMATIONS} blocks deep; no longer watched");
                self.watched.remove(&id);
                self.unchecked.remove(&id);
                self.last.remove(&id);
                self.found.remove(&id);
            }
        }
    }

    /// Reads the `ReportPublished` logs of the blocks since the last poll, all settlements in
    /// one `eth_getLogs`, so the RPC load follows the blocks, not the settlements watched. If
    /// the last block read is no longer on the chain, a reorg replaced it: the last
    /// [`FORGET_AFTER_CONFIRMATIONS`] blocks are read again. A settlement watched for the first
    /// time is read once with `getSettlement`, for a publication older than what was scanned.
    async fn follow(&mut self, head: Scanned) -> Result<(), String> {
        let window = head.number.saturating_sub(FORGET_AFTER_CONFIRMATIONS).max(self.contract_block);
        let from = match self.scanned {
            None => window,
            Some(last) if self.still_on_chain(last, head).await? => last.number + 1,
            Some(last) => {
                tracing::warn!(
                    block = last.number,
                    "the last block read is no longer on the chain (a reorg); reading the last {FORGET_AFTER_CONFIRMATIONS} blocks again"
                );
                self.found.retain(|_, found| found.block_number < window);
                window
            }
        };
        let mut publishers = BTreeMap::new();
        let mut start = from;
        while start <= head.number {
            let end = head.number.min(start + LOG_CHUNK_BLOCKS - 1);
            let filter = Filter::new()
                .address(*self.oracle.address())
                .event_signature(SettlementOracle::ReportPublished::SIGNATURE_HASH)
                .from_block(start)
                .to_block(end);
            let logs = self.rpc("eth_getLogs", self.provider.get_logs(&filter)).await?;
            for log in &logs {
                if let Some((id, found)) = self.published(log, &mut publishers).await? {
                    self.found.insert(id, found);
                }
            }
            start = end + 1;
        }
        self.scanned = Some(head);
        for id in self.unchecked.clone() {
            if !self.found.contains_key(&id) && !self.check(id, &mut publishers).await? {
                continue;
            }
            self.unchecked.remove(&id);
        }
        Ok(())
    }

    /// Whether the block last read is still the chain's block at its height.
    async fn still_on_chain(&self, last: Scanned, head: Scanned) -> Result<bool, String> {
        if last.number == head.number {
            return Ok(last.hash == head.hash);
        }
        if last.number > head.number {
            return Ok(false);
        }
        let block =
            self.rpc("eth_getBlockByNumber", self.provider.get_block_by_number(last.number.into())).await?;
        Ok(block.is_some_and(|b| b.header.hash == last.hash))
    }

    /// A watched settlement's publication in `log`, its sender read once per transaction.
    async fn published(
        &self,
        log: &alloy::rpc::types::Log,
        publishers: &mut BTreeMap<B256, Address>,
    ) -> Result<Option<(SettlementId, Found)>, String> {
        if log.removed {
            return Ok(None);
        }
        let event = log
            .log_decode::<SettlementOracle::ReportPublished>()
            .map_err(|e| format!("a ReportPublished log does not decode: {e}"))?
            .inner
            .data;
        let id = event.settlementId;
        if !self.watched.contains(&id) {
            return Ok(None);
        }
        let (Some(tx_hash), Some(block_number)) = (log.transaction_hash, log.block_number) else {
            return Err("a ReportPublished log has no transaction or block yet".into());
        };
        let value = u128::try_from(event.value)
            .map(Wad::from_raw)
            .map_err(|_| format!("ReportPublished({id}) holds {}, more than a WAD u128", event.value))?;
        let publisher = match publishers.get(&tx_hash) {
            Some(publisher) => *publisher,
            None => {
                let tx = self
                    .rpc("eth_getTransactionByHash", self.provider.get_transaction_by_hash(tx_hash))
                    .await?;
                let publisher = tx.map(|t| alloy::network::TransactionResponse::from(&t)).unwrap_or_default();
                publishers.insert(tx_hash, publisher);
                publisher
            }
        };
        Ok(Some((id, Found { value, tx_hash, block_number, publisher })))
    }

    /// Reads a settlement first watched now from the contract; if it is published, finds its
    /// log. `false`: the contract says published, but the log is not found yet.
    async fn check(
        &mut self,
        id: SettlementId,
        publishers: &mut BTreeMap<B256, Address>,
    ) -> Result<bool, String> {
        let settlement = self.rpc("getSettlement", self.oracle.getSettlement(id).call()).await?;
        if settlement.status == 0 {
            // Any later publication is in a block after the ones just read: the scan finds it.
            return Ok(true);
        }
        let Some(log) = self.find_published_log(id).await? else {
            tracing::warn!(settlement = %id, "getSettlement says published but no ReportPublished log is found yet");
            return Ok(false);
        };
        if let Some((id, found)) = self.published(&log, publishers).await? {
            self.found.insert(id, found);
        }
        Ok(true)
    }

    /// The settlement's latest `ReportPublished` log, searched from the head back to the
    /// contract's block in chunks of [`LOG_CHUNK_BLOCKS`] (providers refuse wider ranges).
    async fn find_published_log(
        &mut self,
        id: SettlementId,
    ) -> Result<Option<alloy::rpc::types::Log>, String> {
        let mut to = self.rpc("eth_blockNumber", self.provider.get_block_number()).await?;
        loop {
            let from = to.saturating_sub(LOG_CHUNK_BLOCKS - 1).max(self.contract_block);
            let filter = Filter::new()
                .address(*self.oracle.address())
                .event_signature(SettlementOracle::ReportPublished::SIGNATURE_HASH)
                .topic1(id)
                .from_block(from)
                .to_block(to);
            let logs = self.rpc("eth_getLogs", self.provider.get_logs(&filter)).await?;
            if let Some(log) = logs.last() {
                return Ok(Some(log.clone()));
            }
            if from <= self.contract_block {
                return Ok(None);
            }
            to = from - 1;
        }
    }

    /// One step of a publication: send, or check on what was sent.
    async fn drive(&mut self, key: B256) -> Result<(), String> {
        let job = self.jobs.get(&key).expect("driven jobs exist");
        if let Some(sent) = job.sent.clone() {
            let receipt = self
                .rpc("eth_getTransactionReceipt", self.provider.get_transaction_receipt(sent.hash))
                .await?;
            if let Some(receipt) = receipt {
                if receipt.status() {
                    // Mined; the next poll reads it from the contract.
                    return Ok(());
                }
                self.count("reverted");
                tracing::warn!(job = %key, tx = %sent.hash, "publish transaction reverted; simulating again");
                self.jobs.get_mut(&key).expect("exists").sent = None;
                return Err(format!("transaction {} reverted", sent.hash));
            }
            let known = self
                .rpc("eth_getTransactionByHash", self.provider.get_transaction_by_hash(sent.hash))
                .await?;
            if known.is_none() {
                tracing::warn!(job = %key, tx = %sent.hash, "publish transaction dropped; sending again");
                self.count("dropped");
                return self.send(key, None).await;
            }
            if sent.at.elapsed() >= self.config.replace_after {
                let cap = self.config.max_fee_per_gas;
                if !can_raise(sent.max_fee, cap) {
                    let job = self.jobs.get_mut(&key).expect("exists");
                    if !job.at_fee_cap {
                        tracing::warn!(job = %key, tx = %sent.hash, max_fee = sent.max_fee, cap, "publish transaction stuck at chain.max_fee_per_gas; not raising it further, waiting for the base fee to fall (raise the cap to pay more)");
                    }
                    job.at_fee_cap = true;
                    if let Some(sent) = job.sent.as_mut() {
                        sent.at = Instant::now();
                    }
                    return Ok(());
                }
                tracing::warn!(job = %key, tx = %sent.hash, nonce = sent.nonce, "publish transaction stuck; replacing it");
                return self.send(key, Some(sent)).await;
            }
            return Ok(());
        }
        self.send(key, None).await
    }

    /// Simulates the job's `publish` or `publishBatch`, then sends it (as a replacement of
    /// `replacing`, when given).
    async fn send(&mut self, key: B256, replacing: Option<Sent>) -> Result<(), String> {
        let oracle = self.oracle.clone();
        match &self.jobs.get(&key).expect("sent jobs exist").payload {
            Payload::Single { report, signatures } => {
                let call = oracle.publish(report_to_sol(report), ordered_signatures(signatures));
                self.send_call(key, call.from(self.sender), replacing).await
            }
            Payload::Batch { batch, signatures } => {
                let reports = packed_batch(batch).map_err(|e| e.to_string())?;
                let call = oracle.publishBatch(reports, ordered_signatures(signatures));
                self.send_call(key, call.from(self.sender), replacing).await
            }
        }
    }

    async fn send_call<C: alloy::sol_types::SolCall>(
        &mut self,
        key: B256,
        call: alloy::contract::SolCallBuilder<&DynProvider, C>,
        replacing: Option<Sent>,
    ) -> Result<(), String> {
        let limit = self.config.rpc_timeout;
        match tokio::time::timeout(limit, call.call()).await {
            Err(_) => return Err(format!("eth_call publish: no answer within {limit:?}")),
            Ok(Err(error)) => {
                return match error.as_decoded_interface_error::<SettlementOracleErrors>() {
                    Some(SettlementOracleErrors::AlreadyPublished(_)) => {
                        tracing::info!(job = %key, "already published; reading it from the contract");
                        Ok(())
                    }
                    Some(other) => Err(format!("publish would revert with {other:?}")),
                    None => Err(super::redact::redact_urls_in(&format!("eth_call publish: {error}"))),
                };
            }
            Ok(Ok(_)) => {}
        }
        let fees = self.rpc("fee estimate", self.provider.estimate_eip1559_fees()).await?;
        let cap = self.config.max_fee_per_gas;
        let (nonce, max_fee, priority_fee) = match &replacing {
            Some(old) => {
                let max_fee = fees.max_fee_per_gas.max(old.max_fee.saturating_mul(2)).min(cap);
                let priority = fees.max_priority_fee_per_gas.max(old.priority_fee.saturating_mul(2)).max(1);
                (old.nonce, max_fee, priority.min(max_fee))
            }
            None => {
                let nonce = self
                    .rpc(
                        "eth_getTransactionCount",
                        self.provider.get_transaction_count(self.sender).pending(),
                    )
                    .await?;
                let max_fee = fees.max_fee_per_gas.min(cap);
                (nonce, max_fee, fees.max_priority_fee_per_gas.min(max_fee))
            }
        };
        if max_fee == cap {
            // At the cap: an offer under the base fee cannot be included (and some nodes refuse
            // it), so it waits for the base fee to fall instead of being sent.
            let head = self
                .rpc("eth_getBlockByNumber", self.provider.get_block_by_number(BlockNumberOrTag::Latest))
                .await?;
            let base_fee = head.and_then(|b| b.header.base_fee_per_gas).map_or(0, u128::from);
            if base_fee > cap {
                let job = self.jobs.get_mut(&key).expect("exists");
                if !job.at_fee_cap {
                    tracing::warn!(job = %key, base_fee, cap, "the base fee is above chain.max_fee_per_gas; not offering more, waiting for it to fall (raise the cap to pay more)");
                }
                job.at_fee_cap = true;
                return match job.sent.as_mut() {
                    Some(sent) => {
                        sent.at = Instant::now();
                        Ok(())
                    }
                    None => Err(format!("the base fee {base_fee} wei is above chain.max_fee_per_gas {cap}")),
                };
            }
        }
        let gas = self.rpc("eth_estimateGas", call.estimate_gas()).await?;
        let batch = matches!(self.jobs[&key].payload, Payload::Batch { .. });
        if batch && gas > self.config.max_batch_gas {
            let job = self.jobs.remove(&key).expect("exists");
            let cap = self.config.max_batch_gas;
            tracing::error!(job = %job.payload, gas, cap, "the batch needs more gas than chain.max_batch_gas: dropped, its reports are published by later turns (raise the cap)");
            return Ok(());
        }
        let call = call
            .nonce(nonce)
            .gas(gas + gas / 5)
            .max_fee_per_gas(max_fee)
            .max_priority_fee_per_gas(priority_fee);
        tracing::info!(job = %key, nonce, gas, max_fee, "sending publish transaction");
        crate::test_faults::before_send().await;
        let pending = self.rpc("eth_sendRawTransaction", call.send()).await?;
        let hash = *pending.tx_hash();
        tracing::info!(job = %key, tx = %hash, nonce, "publish transaction sent");
        self.count(if replacing.is_some() { "replaced" } else { "sent" });
        let job = self.jobs.get_mut(&key).expect("exists");
        job.sent = Some(Sent { hash, nonce, max_fee, priority_fee, at: Instant::now() });
        job.at_fee_cap = false;
        job.backoff = Duration::from_secs(1);
        Ok(())
    }
}

/// The widest block range of one `eth_getLogs` call: providers cap it (2,000 is under every
/// common cap).
pub const LOG_CHUNK_BLOCKS: u64 = 2_000;

/// Whether a transaction offering `max_fee` can still be replaced under `cap`: nodes take a
/// replacement only if it raises the fees by at least 10%.
fn can_raise(max_fee: u128, cap: u128) -> bool {
    max_fee.saturating_add(max_fee / 10).max(max_fee + 1) <= cap
}
