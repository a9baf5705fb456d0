//! What the devnet shows while a settlement goes through its phases. Node-0's event stream
//! (`/v1/events`, one typed [`EventKind`] per state change) drives the phases and the milestone
//! lines: [`Events`] reads the stream, [`phase_after`] maps each kind to the phase it begins.
//! Node-0's settlement view adds the countdowns ([`read`]). The display is a spinner on a
//! terminal and plain lines elsewhere (CI logs).

use std::io::IsTerminal;
use std::time::Duration;

use fixd_node::events::EventKind;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

/// The phases of one settlement, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Before maturity + grace: the replayed market plays.
    Window,
    /// Observations are being made and gossiped.
    Observing,
    /// A proposal and votes are awaited.
    Certifying,
    /// Certified; the challenge window is open.
    Challenge,
    /// Final; report signatures are collected and the publisher sends.
    Publishing,
    /// On-chain with enough confirmations.
    Published,
}

/// The phase a settlement has reached once a node announced `kind`; `None` for kinds that do
/// not move it on (scheduling, disputes within the window, faults).
pub fn phase_after(kind: EventKind) -> Option<Phase> {
    match kind {
        EventKind::Observed => Some(Phase::Observing),
        EventKind::Certified | EventKind::ChallengeWindowOpened => Some(Phase::Challenge),
        EventKind::Final => Some(Phase::Publishing),
        EventKind::Published => Some(Phase::Published),
        EventKind::Scheduled
        | EventKind::DisputeAccepted
        | EventKind::DisputeRefused
        | EventKind::ReviewStarted
        | EventKind::ReviewVote
        | EventKind::ReviewCertified
        | EventKind::ReviewDecided
        | EventKind::Escalated
        | EventKind::DisputeMachine
        | EventKind::Conflict
        | EventKind::Failed
        | EventKind::Equivocation => None,
    }
}

/// One event of the stream: its kind and its JSON data (a `NodeEvent`).
#[derive(Clone, Debug, PartialEq)]
pub struct StreamEvent {
    pub kind: EventKind,
    pub data: Value,
}

/// Reads server-sent events as they arrive in chunks of any size: `event: <name>` and `data:`
/// lines, an empty line ending each event. Names that are not an [`EventKind`] (`lagged`, keep
/// alives) are skipped.
#[derive(Debug, Default)]
pub struct Events {
    pending: String,
}

impl Events {
    /// Takes one chunk of the stream; returns the events it completed.
    pub fn push(&mut self, chunk: &str) -> Vec<StreamEvent> {
        self.pending.push_str(&chunk.replace("\r\n", "\n"));
        let mut events = Vec::new();
        while let Some(end) = self.pending.find("\n\n") {
            let block: String = self.pending.drain(..end + 2).collect();
            let (mut name, mut data) = (None, String::new());
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("event:") {
                    name = Some(value.trim().to_owned());
                } else if let Some(value) = line.strip_prefix("data:") {
                    data.push_str(value.trim());
                }
            }
            let kind = name.and_then(|n| EventKind::ALL.into_iter().find(|k| k.name() == n));
            if let Some(kind) = kind {
                events.push(StreamEvent { kind, data: serde_json::from_str(&data).unwrap_or(Value::Null) });
            }
        }
        events
    }
}

/// The milestone line of an event.
pub fn milestone(event: &StreamEvent) -> String {
    let detail = |key: &str| {
        let v = &event.data["detail"][key];
        v.as_str().map_or_else(|| v.to_string(), str::to_owned)
    };
    match event.kind {
        EventKind::Observed => {
            let value = &event.data["detail"]["value"];
            match value["value"].as_str() {
                Some(v) => format!("node-0 observed {v}"),
                None => format!("node-0 observed no value: {value}"),
            }
        }
        EventKind::Certified => format!("certified {} in round {}", detail("value"), detail("round")),
        EventKind::ChallengeWindowOpened => format!("challenge window open until {}", detail("deadline")),
        EventKind::Final => format!("final at {}: node-0 signed the report", detail("value")),
        EventKind::Published => format!("published in {}", detail("tx_hash")),
        kind => format!("{}: {}", kind.name(), event.data["detail"]),
    }
}

/// The phase of a settlement view (`GET /v1/settlements/{id}`) at unix time `now`, and a line
/// that says where it is, with the countdown when there is one.
pub fn read(view: &Value, now: u64, nodes: usize) -> (Phase, String) {
    let status = view["status"].as_str().unwrap_or("");
    let n = |key: &str| view[key].as_u64().unwrap_or(0);
    let observations = view["observations"].as_array().map_or(0, Vec::len);
    let value = view["value"].as_str().unwrap_or("?");
    match status {
        "published" => (
            Phase::Published,
            format!("published {value} in {}", view["publication"]["tx_hash"].as_str().unwrap_or("?")),
        ),
        "final" => {
            let signatures = view["final_report"]["signatures"].as_array().map_or(0, Vec::len);
            let needed = view["final_report"]["signatures_needed"].as_u64().unwrap_or(0);
            let line = match &view["publication"] {
                Value::Null => format!(
                    "final at {value}: report signatures {signatures}/{nodes} (need {needed}), publishing"
                ),
                p => format!(
                    "publishing {value}: tx {} in block {}, confirmations {}/{}",
                    p["tx_hash"].as_str().unwrap_or("?"),
                    p["block_number"],
                    p["confirmations"],
                    p["confirmations_required"]
                ),
            };
            (Phase::Publishing, line)
        }
        "certified" => {
            let deadline = n("challenge_deadline");
            let round = &view["certificate"]["proposal"]["payload"]["round"];
            (
                Phase::Challenge,
                format!(
                    "certified {value} in round {round}; challenge window closes in {} s",
                    deadline.saturating_sub(now)
                ),
            )
        }
        _ if now < n("observe_at") => (
            Phase::Window,
            format!(
                "replaying the market: maturity in {} s, observations due in {} s",
                n("maturity").saturating_sub(now),
                n("observe_at").saturating_sub(now)
            ),
        ),
        _ if observations < nodes => {
            (Phase::Observing, format!("observing: {observations}/{nodes} signed observations in"))
        }
        _ => (
            Phase::Certifying,
            format!(
                "certifying: {}",
                view["waiting_for"].as_str().unwrap_or("a proposal and a quorum of votes")
            ),
        ),
    }
}

/// A spinner on a terminal; plain lines, one per change, elsewhere.
#[derive(Debug)]
pub struct Display {
    bar: Option<ProgressBar>,
    last: String,
    phase: Option<Phase>,
}

impl Display {
    pub fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed}] {msg}").expect("a valid template"),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Display { bar, last: String::new(), phase: None }
    }

    /// Shows a milestone above the spinner (or as a line).
    pub fn milestone(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(format!("✓ {line}")),
            None => eprintln!("✓ {line}"),
        }
    }

    /// Shows the current state: a new phase gets a line of its own; within a phase, the
    /// spinner follows every change, and a log gets a line per change of anything but a
    /// countdown.
    pub fn update(&mut self, phase: Phase, line: String) {
        let entered = self.phase != Some(phase);
        self.phase = Some(phase);
        if entered {
            match &self.bar {
                Some(bar) => bar.println(format!("▸ {line}")),
                None => eprintln!("▸ {line}"),
            }
        } else if self.bar.is_none() && strip_digits(&line) != strip_digits(&self.last) {
            eprintln!("  {line}");
        }
        if let Some(bar) = &self.bar {
            bar.set_message(line.clone());
        }
        self.last = line;
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Default for Display {
    fn default() -> Self {
        Self::new()
    }
}

fn strip_digits(line: &str) -> String {
    line.chars().filter(|c| !c.is_ascii_digit()).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn each_status_reads_as_its_phase_with_a_countdown() {
        let base = json!({"status": "scheduled", "maturity": 160, "observe_at": 165, "observations": []});
        let (phase, line) = read(&base, 100, 4);
        assert_eq!(phase, Phase::Window);
        assert!(line.contains("maturity in 60 s"), "{line}");
        let mut observing = base.clone();
        observing["status"] = "observed".into();
        observing["observations"] = json!([{}, {}]);
        assert_eq!(
            read(&observing, 166, 4),
            (Phase::Observing, "observing: 2/4 signed observations in".into())
        );
        observing["observations"] = json!([{}, {}, {}, {}]);
        observing["waiting_for"] = "a proposal and 3 votes".into();
        assert_eq!(read(&observing, 166, 4).0, Phase::Certifying);
        let certified = json!({"status": "certified", "value": "2750.9", "challenge_deadline": 200,
            "certificate": {"proposal": {"payload": {"round": 0}}}});
        let (phase, line) = read(&certified, 190, 4);
        assert_eq!(phase, Phase::Challenge);
        assert!(line.contains("closes in 10 s") && line.contains("2750.9"), "{line}");
        let publishing = json!({"status": "final", "value": "2750.9", "publication": {"tx_hash": "0xab",
            "block_number": 7, "confirmations": 1, "confirmations_required": 2}});
        let (phase, line) = read(&publishing, 201, 4);
        assert_eq!(phase, Phase::Publishing);
        assert!(line.contains("confirmations 1/2"), "{line}");
        let published = json!({"status": "published", "value": "2750.9", "publication": {"tx_hash": "0xab"}});
        assert_eq!(read(&published, 205, 4), (Phase::Published, "published 2750.9 in 0xab".into()));
    }

    #[test]
    fn the_event_stream_drives_the_phases_in_order() {
        let stream = "event: scheduled\ndata: {\"kind\":\"scheduled\",\"detail\":{}}\n\n\
            : keep-alive\n\n\
            event: observed\ndata: {\"kind\":\"observed\",\"detail\":{\"value\":{\"value\":\"2750.9\"}}}\n\n\
            event: lagged\ndata: {\"missed\":3}\n\n\
            event: certified\ndata: {\"kind\":\"certified\",\"detail\":{\"round\":0,\"value\":\"2750.9\"}}\n\n\
            event: final\ndata: {\"detail\":{\"value\":\"2750.9\"}}\n\n\
            event: published\ndata: {\"detail\":{\"tx_hash\":\"0xab\"}}\n\n";
        // Chunks split anywhere, even inside a line.
        let mut events = Events::default();
        let mut seen = Vec::new();
        for chunk in stream.as_bytes().chunks(7) {
            seen.extend(events.push(std::str::from_utf8(chunk).unwrap()));
        }
        let kinds: Vec<EventKind> = seen.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                EventKind::Scheduled,
                EventKind::Observed,
                EventKind::Certified,
                EventKind::Final,
                EventKind::Published
            ]
        );
        let phases: Vec<Phase> = kinds.iter().filter_map(|k| phase_after(*k)).collect();
        assert_eq!(phases, [Phase::Observing, Phase::Challenge, Phase::Publishing, Phase::Published]);
        assert_eq!(milestone(&seen[1]), "node-0 observed 2750.9");
        assert_eq!(milestone(&seen[2]), "certified 2750.9 in round 0");
    }

    #[test]
    fn countdowns_alone_do_not_make_new_log_lines() {
        assert_eq!(strip_digits("closes in 10 s"), strip_digits("closes in 9 s"));
        assert_ne!(strip_digits("observing: 1/4"), strip_digits("certifying: 1/4"));
    }
}
