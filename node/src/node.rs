//! Starting and stopping a node: load everything, refuse clearly when something is wrong, spawn
//! the named tasks, and stop them all through one cancellation token.
//!
//! ```text
//!            ┌──────────────── CancellationToken ─────────────────┐
//!            ▼                                                    ▼
//!   observer task ──own observation──▶ settlements task ──▶ sled ◀──(reads)── API task (axum)
//!        │                               ▲    │  ▲
//!        │            network task ──gossip┘    │  └── ChainUpdate ──┐
//!        │            (libp2p swarm)     ChainCommand ──▶ chain task (alloy: the one sender)
//!        └──▶ venue adapters (reqwest, timeouts, retries) ──▶ venues / replay venues
//! ```
//!
//! A task that ends on its own (an error, or a panic) stops the node with a clear message; the
//! store is flushed on every exit path.

use std::sync::Arc;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use fixd_proto::types::settlement::{Index, SettlementSpec};
use tokio_util::sync::CancellationToken;

use crate::api::{self, AdminPolicy, ApiState, NodeInfo};
use crate::config::Config;
use crate::events::EventBus;
use crate::keys::Keys;
use crate::observer::Observer;
use crate::store::{SledStore, Store};
use crate::tasks::Tasks;
use crate::venues::VenueAdapter;

/// `fixd run`'s flags: the config file and the overrides on top of it.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The node's config file.
    #[arg(long, env = "FIXD_CONFIG")]
    pub config: PathBuf,
    /// Overrides `data_dir`.
    #[arg(long, env = "FIXD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Overrides `genesis`.
    #[arg(long, env = "FIXD_GENESIS")]
    pub genesis: Option<PathBuf>,
    /// Overrides `keys_dir`.
    #[arg(long, env = "FIXD_KEYS_DIR")]
    pub keys_dir: Option<PathBuf>,
    /// Overrides `api.listen`.
    #[arg(long, env = "FIXD_API_LISTEN")]
    pub api_listen: Option<SocketAddr>,
    /// Overrides the base URL of every venue (the replay venues serve all four on one address).
    #[arg(long, env = "FIXD_VENUES_URL")]
    pub venues_url: Option<String>,
    /// Overrides `chain.rpc_url`: the JSON-RPC endpoint final reports are published to.
    #[arg(long, env = "FIXD_RPC_URL")]
    pub rpc_url: Option<String>,
    /// Log as JSON lines (overrides `log.json`).
    #[arg(long, env = "FIXD_LOG_JSON")]
    pub log_json: bool,
}

/// Reads the config file and applies flag and environment overrides.
pub fn load_config(args: &RunArgs) -> anyhow::Result<Config> {
    let mut config = Config::load(&args.config)?;
    if let Some(dir) = &args.data_dir {
        config.data_dir.clone_from(dir);
    }
    if let Some(genesis) = &args.genesis {
        config.genesis.clone_from(genesis);
    }
    if let Some(keys) = &args.keys_dir {
        config.keys_dir.clone_from(keys);
    }
    if let Some(listen) = args.api_listen {
        config.api.listen = listen;
    }
    if let Some(url) = &args.venues_url {
        config.venues.set_base_url(url);
    }
    if let Some(url) = &args.rpc_url {
        config.chain.rpc_url = Some(url.clone());
    }
    Ok(config)
}

/// A running node.
pub struct NodeHandle {
    tasks: Tasks,
    store: Arc<dyn Store>,
    api_addr: std::net::SocketAddr,
}

impl std::fmt::Debug for NodeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeHandle").field("api_addr", &self.api_addr).finish_non_exhaustive()
    }
}

impl NodeHandle {
    /// The address the API listens on.
    pub fn api_addr(&self) -> std::net::SocketAddr {
        self.api_addr
    }

    /// Waits until `signal` resolves or a task ends on its own, then stops every task and
    /// flushes the store. A task that ended on its own is an error.
    pub async fn run_until(mut self, signal: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
        let failure = tokio::select! {
            () = signal => None,
            failure = self.tasks.first_failure() => Some(failure),
        };
        self.shutdown().await?;
        match failure {
            Some(e) => Err(e.context("the node stopped")),
            None => Ok(()),
        }
    }

    /// Stops every task and flushes the store.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.tasks.shutdown().await;
        self.store.durable().context("flushing the store on shutdown")?;
        tracing::info!("stopped; store flushed");
        Ok(())
    }
}

/// Loads keys, genesis and store, checks membership, and starts the tasks.
pub async fn start(config: Config) -> anyhow::Result<NodeHandle> {
    launch(config, Default::default()).await
}

/// [`start`]s a Byzantine member: `conduct` changes what it proposes, sends and shows in
/// catch-up (end-to-end tests only; see [`crate::byzantine`]).
#[cfg(feature = "byzantine")]
pub async fn start_byzantine(
    config: Config,
    conduct: Arc<dyn crate::byzantine::Conduct>,
) -> anyhow::Result<NodeHandle> {
    tracing::warn!(?conduct, "byzantine: this member runs a faulty strategy (a test build)");
    launch(config, Some(conduct)).await
}

/// How this member behaves: honestly, unless a test build gave it a Byzantine strategy.
#[cfg(feature = "byzantine")]
type Conduct = Option<Arc<dyn crate::byzantine::Conduct>>;
#[cfg(not(feature = "byzantine"))]
#[derive(Debug, Default)]
struct Conduct;

async fn launch(config: Config, conduct: Conduct) -> anyhow::Result<NodeHandle> {
    let keys = Keys::read(&config.keys_dir)?;
    let genesis = crate::genesis::load(&config.genesis)?;
    let member_index = crate::genesis::member_index(&genesis, &keys, &config.genesis)?;
    let network_id = genesis.network_id();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&config.data_dir.join("store"))?);
    for s in &config.settlements {
        store.put_settlement(&SettlementSpec {
            index: Index::EthUsd,
            maturity: s.maturity,
            params: s.params,
        })?;
    }
    store.durable()?;

    let name = genesis.members[member_index].name.clone();
    tracing::info!(%name, member_index, %network_id, data_dir = %config.data_dir.display(), "starting fixd node");

    let cancel = CancellationToken::new();
    let mut tasks = Tasks::new(cancel.clone());

    let events = EventBus::default();

    let (metrics, libp2p_metrics) = crate::metrics::Metrics::new();
    let mut network_config = crate::network::NetworkConfig::from_genesis(&keys, &genesis, &config.p2p)?;
    network_config.metrics =
        Some(crate::network::NetworkMetrics { fixd: metrics.clone(), libp2p: Arc::new(libp2p_metrics) });
    let token = cancel.clone();
    let follow = metrics.clone().follow_phases(events.clone(), store.clone(), token);
    tasks.service("metrics", follow);
    let known_store = store.clone();
    let known: crate::network::KnownSettlements =
        Arc::new(move |id| known_store.settlement(id).ok().flatten().is_some());
    let provider: Arc<dyn crate::network::CatchupProvider> =
        Arc::new(crate::settlements::StoreCatchup(store.clone()));
    #[cfg(feature = "byzantine")]
    let provider: Arc<dyn crate::network::CatchupProvider> = match &conduct {
        Some(conduct) => Arc::new(crate::byzantine::ShownCatchup {
            honest: provider,
            conduct: conduct.clone(),
            members: genesis
                .members
                .iter()
                .map(|m| crate::network::peer_id_of(&m.ed25519))
                .collect::<Result<_, _>>()?,
        }),
        None => provider,
    };
    let interests = crate::settlements::Interests::default();
    let judge = interests.clone();
    let admission =
        crate::network::Admission { known, wanted: Arc::new(move |message| judge.judge(message)) };
    let (network, gossip, swarm) =
        crate::network::NetworkService::start(network_config, provider, admission, cancel.clone())?;
    tasks.service("network", async move {
        swarm.run().await;
        Ok(())
    });
    let (own_tx, own_rx) = tokio::sync::mpsc::channel(64);
    // Room for a burst's publications landing in one block.
    let (chain_tx, chain_rx) = tokio::sync::mpsc::channel(1024);
    let chain = match &config.chain.rpc_url {
        Some(url) => {
            let (service, handle, commands) = crate::chain::ChainService::new(
                config.chain.clone(),
                url,
                crate::chain::service::Oracle::of(&genesis),
                keys.secp256k1.clone(),
                chain_tx,
                Some(metrics.clone()),
            )?;
            let shown = crate::chain::redact::redact_url(url);
            tracing::info!(rpc_url = %shown, contract = %genesis.contract, sender = %keys.eth_address(), "publishing to the chain");
            let token = cancel.clone();
            tasks.service("chain", service.run(commands, token));
            Some(handle)
        }
        None => {
            tracing::warn!("no chain.rpc_url: final reports are signed and gossiped but not published");
            None
        }
    };
    let reader = match &config.chain.rpc_url {
        Some(url) => Some(crate::chain::ChainReader::new(
            url,
            genesis.contract,
            config.chain.rpc_timeout,
            genesis.params.confirmations,
        )?),
        None => None,
    };
    let venues = VenueAdapter::all(&config.venues)?;
    let setup = fixd_decision::driver::DriverSetup::from_genesis(&genesis, member_index, chain.is_some());
    let member_keys =
        crate::settlements::MemberKeys { ed25519: keys.ed25519.clone(), secp256k1: keys.secp256k1.clone() };
    let services = crate::settlements::Services {
        store: store.clone(),
        network: network.clone(),
        events: events.clone(),
        chain: chain.clone(),
        reader: reader.clone(),
        venues: venues.clone(),
        tasks: tasks.spawner(),
        metrics: metrics.clone(),
        interests,
    };
    let (commands_tx, commands_rx) = tokio::sync::mpsc::channel(64);
    let settlements =
        crate::settlements::Settlements::new(setup, member_keys, services, config.observer.tick)
            .with_batches_of(config.chain.max_batch_reports())
            .with_running_decisions(config.observer.max_running_decisions);
    #[cfg(feature = "byzantine")]
    let settlements = match conduct {
        Some(conduct) => settlements.with_conduct(conduct),
        None => settlements,
    };
    #[cfg(not(feature = "byzantine"))]
    let Conduct = conduct;
    let inlets = crate::settlements::Inlets { gossip, own: own_rx, chain: chain_rx, commands: commands_rx };
    let token = cancel.clone();
    tasks.service("settlements", settlements.run(inlets, token));
    let member = keys.ed25519.verifying_key().to_bytes();
    let observer = Observer::new(store.clone(), venues.clone(), config.observer.tick, own_tx, member);
    let token = cancel.clone();
    tasks.service("observer", observer.run(token));

    let info = NodeInfo {
        name,
        member_index,
        network_id,
        public_key: keys.public_key(),
        version: env!("CARGO_PKG_VERSION"),
    };
    let state = ApiState {
        store: store.clone(),
        node: Arc::new(info),
        venues,
        events,
        admin: AdminPolicy::new(&config.api),
        network: Some(network.clone()),
        chain,
        metrics,
        disputes: Some(crate::api::DisputeDesk {
            settlements: commands_tx,
            reader,
            bond_checks: Arc::new(std::sync::Mutex::new(crate::api::rate::BondCheckLimiter::new(
                crate::api::rate::BondCheckRates {
                    per_client_per_minute: config.api.bond_checks_per_client_per_minute,
                    per_second: config.api.bond_checks_per_second,
                },
                std::time::Instant::now(),
            ))),
        }),
        event_streams: Arc::new(tokio::sync::Semaphore::new(config.api.max_event_streams)),
        requests: Arc::new(tokio::sync::Semaphore::new(config.api.max_concurrent_requests)),
        member_peers: ApiState::member_peers(&genesis),
        views: Default::default(),
        status_head: Default::default(),
        genesis: Arc::new(genesis),
    };
    let router = api::router(state, config.api.max_body_bytes, config.api.request_timeout);
    let listener = tokio::net::TcpListener::bind(config.api.listen).await.with_context(|| {
        format!(
            "cannot listen on {} for the API; choose another address with --api-listen",
            config.api.listen
        )
    })?;
    let api_addr = listener.local_addr()?;
    tracing::info!(%api_addr, "API listening");
    let (token, header_read_timeout) = (cancel.clone(), config.api.header_read_timeout);
    tasks.service("api", async move {
        api::serve(listener, router, header_read_timeout, token).await.context("the API server failed")
    });

    Ok(NodeHandle { tasks, store, api_addr })
}
