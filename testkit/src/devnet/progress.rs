//! What the devnet shows while a settlement goes through its phases: a pure reading of one
//! node's settlement view into a [`Phase`] and a line, and a display that is a spinner on a
//! terminal and plain lines elsewhere (CI logs).

use std::io::IsTerminal;
use std::time::Duration;

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
    fn countdowns_alone_do_not_make_new_log_lines() {
        assert_eq!(strip_digits("closes in 10 s"), strip_digits("closes in 9 s"));
        assert_ne!(strip_digits("observing: 1/4"), strip_digits("certifying: 1/4"));
    }
}
