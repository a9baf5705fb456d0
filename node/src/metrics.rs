//! Prometheus metrics, served as text at `GET /metrics`. Every name starts with `fixd_`; the
//! libp2p swarm's own metrics sit under `fixd_libp2p_`.
//!
//! ```text
//!   network task ── fixd_messages_total{kind, result} ──────────────┐
//!   event bus ── phase times (metrics task) ── fixd_phase_seconds ───┤
//!   venue health (read at scrape) ── fixd_venue_* ──────────────────┼─▶ Registry ─▶ /metrics
//!   chain task ── fixd_chain_* ──────────────────────────────────────┤
//!   store (read at scrape) ── fixd_settlements{status} ─────────────┘
//! ```
//!
//! | metric | type | labels | what |
//! |---|---|---|---|
//! | `fixd_messages_total` | counter | `kind`, `result` = `accepted`, `rejected`, `ignored`, `sent` | gossip messages in (by validation verdict) and out |
//! | `fixd_phase_seconds` | histogram | `phase` = `observe`, `certify`, `challenge`, `publish` | per settlement: from `observe_at` to this node's observation, to the certificate; then the challenge window; then final to published |
//! | `fixd_venue_requests_total`, `fixd_venue_errors_total` | counter | `venue` | HTTP requests to each venue, and the failed ones |
//! | `fixd_venue_request_milliseconds_total` | counter | `venue` | time spent in those requests (÷ requests = mean latency) |
//! | `fixd_venue_last_request_milliseconds` | gauge | `venue` | latency of the last request |
//! | `fixd_chain_transactions_total` | counter | `state` = `sent`, `replaced`, `dropped`, `reverted`, `mined` | this node's publish transactions |
//! | `fixd_chain_rpc_calls_total` | counter | | chain RPC calls the chain service made (reads, sends, receipts) |
//! | `fixd_chain_rpc_errors_total` | counter | | failed or timed-out RPC calls |
//! | `fixd_chain_head` | gauge | | the chain's block number at the last poll |
//! | `fixd_settlements` | gauge | `status` | settlements this node knows, by status |
//! | `fixd_disputes_total` | counter | `outcome` = `accepted`, `refused`, `unconfirmed`, `limited` (this node's API; `unconfirmed`: the bond needs more blocks, retry; `limited`: a rate limit refused the bond check, 429), `upheld`, `rejected` (reviews decided), `escalated` | disputes |
//! | `fixd_bond_checks_dropped_total` | counter | `reason` = `too_many`, `unknown`, `wrong_escrow`, `bad_bond` | relayed disputes dropped by their bond check ([`crate::settlements`]) |
//! | `fixd_bond_checks` | gauge | | bond checks of relayed disputes in flight: at most 64 per member |
//! | `fixd_drivers` | gauge | | settlements whose driver the node holds in memory (set each tick): deciding, disputed or publishing; those waiting out their window or their publication's depth are parked instead, and a restart builds none for settled ones |
//! | `fixd_drivers_built_total` | counter | | drivers built from the store: at a settlement's first input in this process, or again after its driver went |
//! | `fixd_settlements_parked` | gauge | | settlements whose driver is dropped while they wait (their window to close, their publication to deepen), built again from the store at an input or when due |
//! | `fixd_decisions_running` | gauge | | first-value and final-report decisions started and undecided (set each tick); one running longer than a round timeout no longer counts |
//! | `fixd_decisions_waiting` | gauge | | decisions due to start and held until fewer than 500 run ([`crate::settlements::MAX_RUNNING_DECISIONS`]): an expiry burst starts in waves |
//! | `fixd_memory_bytes` | gauge | `kind` = `process_resident` (Linux), `jemalloc_allocated`, `jemalloc_active`, `jemalloc_resident`, `jemalloc_retained`, `jemalloc_metadata` (the fixd binary) | read at scrape: the process's resident memory, and its allocator's figures: `allocated` is the live heap, `resident` the pages the allocator holds for it, at most (the gap is fragmentation and freed pages not yet returned) |
//! | `fixd_libp2p_*` | various | | libp2p-metrics: connections, identify, ping, gossipsub |

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::events::{EventBus, EventKind};
use crate::store::Store;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MessageLabels {
    pub kind: &'static str,
    pub result: MessageResult,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum MessageResult {
    accepted,
    rejected,
    ignored,
    sent,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub phase: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransactionLabels {
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VenueLabels {
    pub venue: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MemoryLabels {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    pub status: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn phase_histogram() -> Histogram {
    // 1 s to about 9 h: devnet phases take seconds, production windows hours.
    Histogram::new(exponential_buckets(1.0, 2.0, 16))
}

/// The process's memory as `(kind, bytes)`: its resident set from `/proc/self/status` (Linux),
/// and jemalloc's own figures when the binary runs it. A figure that cannot be read is left out.
fn memory() -> Vec<(&'static str, u64)> {
    let mut figures = Vec::new();
    // `VmRSS:   123456 kB`, whatever the page size.
    if let Ok(status) = std::fs::read_to_string("/proc/self/status")
        && let Some(kib) = status.lines().find_map(|line| line.strip_prefix("VmRSS:"))
        && let Some(Ok(kib)) = kib.split_whitespace().next().map(str::parse::<u64>)
    {
        figures.push(("process_resident", kib * 1024));
    }
    #[cfg(feature = "jemalloc")]
    {
        use tikv_jemalloc_ctl::{epoch, stats};
        // jemalloc caches its statistics until the epoch advances.
        if epoch::advance().is_ok() {
            let read = [
                ("jemalloc_allocated", stats::allocated::read()),
                ("jemalloc_active", stats::active::read()),
                ("jemalloc_resident", stats::resident::read()),
                ("jemalloc_retained", stats::retained::read()),
                ("jemalloc_metadata", stats::metadata::read()),
            ];
            figures.extend(read.into_iter().filter_map(|(kind, bytes)| Some((kind, bytes.ok()? as u64))));
        }
    }
    figures
}

/// The node's metrics. Cloning shares them.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    pub messages: Family<MessageLabels, Counter>,
    pub phase_seconds: HistogramFamily<PhaseLabels>,
    pub chain_transactions: Family<TransactionLabels, Counter>,
    pub chain_rpc_calls: Counter,
    pub chain_rpc_errors: Counter,
    pub chain_head: Gauge,
    venue_requests: Family<VenueLabels, Gauge>,
    venue_errors: Family<VenueLabels, Gauge>,
    venue_millis: Family<VenueLabels, Gauge>,
    venue_last_millis: Family<VenueLabels, Gauge>,
    settlements: Family<StatusLabels, Gauge>,
    memory: Family<MemoryLabels, Gauge>,
    disputes: Family<OutcomeLabels, Counter>,
    bond_checks_dropped: Family<ReasonLabels, Counter>,
    /// Bond checks of relayed disputes in flight.
    pub bond_checks: Gauge,
    /// Settlements whose driver this node holds in memory.
    pub drivers: Gauge,
    /// Drivers built from the store (a settlement's first input in this process).
    pub drivers_built: Counter,
    /// Settlements whose driver is dropped while they wait (their window, their publication's
    /// depth).
    pub parked: Gauge,
    /// First-value and final-report decisions running (started, undecided, not yet stale).
    pub decisions_running: Gauge,
    /// Decisions due to start and waiting for room among the running ones.
    pub decisions_waiting: Gauge,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

impl Metrics {
    /// A registry with every fixd metric, and the libp2p metrics to hand to the swarm task.
    pub fn new() -> (Metrics, libp2p::metrics::Metrics) {
        let mut registry = Registry::with_prefix("fixd");
        let messages = Family::default();
        registry.register("messages", "Gossip messages in (by validation result) and out", messages.clone());
        let phase_seconds: HistogramFamily<PhaseLabels> = Family::new_with_constructor(phase_histogram);
        registry.register("phase_seconds", "Time each settlement spent in each phase", phase_seconds.clone());
        let chain_transactions = Family::default();
        registry.register("chain_transactions", "Publish transactions by state", chain_transactions.clone());
        let chain_rpc_calls = Counter::default();
        registry.register(
            "chain_rpc_calls",
            "Chain RPC calls made by the chain service",
            chain_rpc_calls.clone(),
        );
        let chain_rpc_errors = Counter::default();
        registry.register(
            "chain_rpc_errors",
            "Failed or timed-out chain RPC calls",
            chain_rpc_errors.clone(),
        );
        let chain_head = Gauge::default();
        registry.register("chain_head", "Block number at the last poll", chain_head.clone());
        // Venue figures are copied from the adapters' health at each scrape: registered as
        // gauges of monotonic totals under `_total` names, since they are set, not counted here.
        let venue_requests = Family::default();
        registry.register("venue_requests_total", "HTTP requests sent to each venue", venue_requests.clone());
        let venue_errors = Family::default();
        registry.register("venue_errors_total", "Failed HTTP requests to each venue", venue_errors.clone());
        // Milliseconds, as integers: the value path of fixd has no floating point, and neither
        // do its metrics' sums.
        let venue_millis = Family::default();
        registry.register(
            "venue_request_milliseconds_total",
            "Time spent in requests to each venue",
            venue_millis.clone(),
        );
        let venue_last_millis = Family::default();
        registry.register(
            "venue_last_request_milliseconds",
            "Latency of the last request to each venue",
            venue_last_millis.clone(),
        );
        let settlements = Family::default();
        registry.register("settlements", "Settlements this node knows, by status", settlements.clone());
        let memory = Family::default();
        registry.register(
            "memory_bytes",
            "The process's resident memory, and its allocator's figures (read at scrape)",
            memory.clone(),
        );
        let disputes = Family::default();
        registry.register("disputes", "Disputes by outcome", disputes.clone());
        let bond_checks_dropped = Family::default();
        registry.register(
            "bond_checks_dropped",
            "Relayed disputes dropped by their bond check (too_many, unknown, wrong_escrow, bad_bond)",
            bond_checks_dropped.clone(),
        );
        let bond_checks = Gauge::default();
        registry.register("bond_checks", "Bond checks of relayed disputes in flight", bond_checks.clone());
        let drivers = Gauge::default();
        registry.register(
            "drivers",
            "Settlements whose driver this node holds in memory: deciding, disputed, or publishing",
            drivers.clone(),
        );
        let drivers_built = Counter::default();
        registry.register(
            "drivers_built",
            "Drivers built from the store: a settlement's first input in this process, or one after its driver went",
            drivers_built.clone(),
        );
        let parked = Gauge::default();
        registry.register(
            "settlements_parked",
            "Settlements whose driver is dropped while they wait for their window to close or their publication to deepen, built again from the store when needed",
            parked.clone(),
        );
        let decisions_running = Gauge::default();
        registry.register(
            "decisions_running",
            "First-value and final-report decisions started and undecided, started within a round timeout",
            decisions_running.clone(),
        );
        let decisions_waiting = Gauge::default();
        registry.register(
            "decisions_waiting",
            "Decisions due to start, waiting for room among the running ones (an expiry burst starts in waves)",
            decisions_waiting.clone(),
        );
        let libp2p = libp2p::metrics::Metrics::new(registry.sub_registry_with_prefix("libp2p"));
        let metrics = Metrics {
            registry: Arc::new(Mutex::new(registry)),
            messages,
            phase_seconds,
            chain_transactions,
            chain_rpc_calls,
            chain_rpc_errors,
            chain_head,
            venue_requests,
            venue_errors,
            venue_millis,
            venue_last_millis,
            settlements,
            memory,
            disputes,
            bond_checks_dropped,
            bond_checks,
            drivers,
            drivers_built,
            parked,
            decisions_running,
            decisions_waiting,
        };
        (metrics, libp2p)
    }

    pub fn message(&self, kind: &'static str, result: MessageResult) {
        self.messages.get_or_create(&MessageLabels { kind, result }).inc();
    }

    pub fn dispute(&self, outcome: &'static str) {
        self.disputes.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    pub fn bond_check_dropped(&self, reason: &'static str) {
        self.bond_checks_dropped.get_or_create(&ReasonLabels { reason }).inc();
    }

    pub fn transaction(&self, state: &'static str) {
        self.chain_transactions.get_or_create(&TransactionLabels { state }).inc();
    }

    /// Refreshes what is read at scrape time, then encodes everything as Prometheus text.
    pub fn encode(
        &self,
        venues: &[crate::venues::VenueAdapter],
        statuses: &[(String, i64)],
    ) -> Result<String, std::fmt::Error> {
        for venue in venues {
            let h = venue.health();
            let labels = VenueLabels { venue: h.venue.to_string() };
            self.venue_requests.get_or_create(&labels).set(h.total_requests as i64);
            self.venue_errors.get_or_create(&labels).set(h.total_errors as i64);
            self.venue_millis.get_or_create(&labels).set(h.total_latency_ms as i64);
            self.venue_last_millis.get_or_create(&labels).set(h.last_latency_ms.unwrap_or(0) as i64);
        }
        self.settlements.clear();
        for (status, count) in statuses {
            self.settlements.get_or_create(&StatusLabels { status: status.clone() }).set(*count);
        }
        for (kind, bytes) in memory() {
            self.memory.get_or_create(&MemoryLabels { kind }).set(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry.lock().expect("registry lock"))?;
        Ok(text)
    }

    /// Follows the event bus and records each settlement's phase times, until cancelled.
    pub async fn follow_phases(
        self,
        events: EventBus,
        store: Arc<dyn Store>,
        cancel: tokio_util::sync::CancellationToken,
    ) -> anyhow::Result<()> {
        let mut rx = events.subscribe();
        // When each settlement was certified, and became final: the starts of the next phases.
        let mut certified_at: HashMap<alloy_primitives::B256, u64> = HashMap::new();
        let mut final_at: HashMap<alloy_primitives::B256, u64> = HashMap::new();
        loop {
            let event = tokio::select! {
                () = cancel.cancelled() => return Ok(()),
                event = rx.recv() => event,
            };
            let event = match event {
                Ok(event) => event,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return Ok(()),
            };
            let id = event.settlement_id;
            let observe_at = || store.settlement(&id).ok().flatten().map(|spec| spec.observe_at());
            let (phase, start) = match event.kind {
                EventKind::Observed => ("observe", observe_at()),
                EventKind::Certified => {
                    certified_at.insert(id, event.at);
                    ("certify", observe_at())
                }
                EventKind::Final => {
                    final_at.insert(id, event.at);
                    ("challenge", certified_at.remove(&id))
                }
                EventKind::Published => ("publish", final_at.remove(&id)),
                EventKind::ReviewDecided | EventKind::Escalated => {
                    let outcome = match event.detail.get("outcome").and_then(|o| o.as_str()) {
                        Some("upheld") => "upheld",
                        Some("rejected") => "rejected",
                        _ => "escalated",
                    };
                    self.dispute(outcome);
                    continue;
                }
                _ => continue,
            };
            let Some(start) = start else { continue };
            self.phase_seconds
                .get_or_create(&PhaseLabels { phase })
                .observe(event.at.saturating_sub(start) as f64);
        }
    }
}
