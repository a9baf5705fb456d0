//! `waiting_for` of the settlement view: what a settlement waits for next, and until when, as
//! a pure function of the facts the view reads. A time it names is always still to come: once
//! a deadline passes, the text says what follows it (the settle lag, then the report).
//!
//! The settle lag: the dispute machine folds agreed events `settle = max_clock_skew +
//! round_timeout` seconds behind the clock, so that every member holds a dispute filed just
//! before a deadline before it passes that deadline. For `settle` seconds after the challenge
//! window (or the hard deadline) a settlement is therefore neither open nor final.

use fixd_dispute::Phase;

/// The facts `waiting_for` depends on.
#[derive(Clone, Copy, Debug)]
pub(super) struct Progress {
    /// Unix seconds now.
    pub now: u64,
    pub observe_at: u64,
    pub published: bool,
    /// Observations held with a value, and the quorum.
    pub with_value: usize,
    pub quorum: usize,
    pub certified: bool,
    /// The dispute machine's phase, once certified.
    pub phase: Option<Phase>,
    pub challenge_deadline: Option<u64>,
    pub hard_deadline: u64,
    pub settle_secs: u64,
    /// Valid report signatures held, once this node made its final report.
    pub report_signatures: Option<usize>,
    /// Confirmations of the publication, once it is seen on-chain.
    pub confirmations: Option<u64>,
    pub confirmations_required: u64,
}

/// What the settlement waits for next; `None` before its observations are due and once
/// published.
pub(super) fn waiting_for(p: &Progress) -> Option<String> {
    if p.published || p.now < p.observe_at {
        return None;
    }
    let q = p.quorum;
    if !p.certified {
        return Some(if p.with_value < q {
            format!("no quorum: {} of the {q} members' observations with a value needed", p.with_value)
        } else {
            format!("a proposal and {q} votes: {} observations with a value are in", p.with_value)
        });
    }
    match (p.report_signatures, p.confirmations) {
        (None, _) => Some(before_the_report(p)),
        (Some(signatures), None) if signatures < q => {
            Some(format!("report signatures: {signatures} of the {q} needed"))
        }
        (Some(_), None) => Some("the publishing member's transaction".into()),
        (Some(_), Some(confirmations)) => {
            Some(format!("confirmations: {confirmations} of {}", p.confirmations_required))
        }
    }
}

/// Certified, and no final report yet: the window, a review or ruling, the settle lag after a
/// deadline, or the committee's report decision.
fn before_the_report(p: &Progress) -> String {
    const REPORT: &str = "the committee's decision on the final report";
    let hard = p.hard_deadline;
    let after_hard = || {
        let until = hard.saturating_add(p.settle_secs);
        if p.now < until {
            format!(
                "the settle lag after the hard deadline: the last certified value is final once every member's clock has passed it, at {until}; then {REPORT}"
            )
        } else {
            REPORT.to_owned()
        }
    };
    match p.phase {
        Some(Phase::Final | Phase::Failed) => REPORT.to_owned(),
        _ if p.now >= hard => after_hard(),
        Some(Phase::Review | Phase::Recertifying) => {
            format!("the committee's review of a dispute, at the latest until the hard deadline at {hard}")
        }
        Some(Phase::Arbitration) => format!("the arbitrator's ruling, or the hard deadline at {hard}"),
        Some(Phase::AwaitingCertificate | Phase::Challenge) | None => match p.challenge_deadline {
            Some(deadline) if p.now < deadline => format!("the challenge window to close at {deadline}"),
            Some(deadline) => {
                let until = deadline.saturating_add(p.settle_secs).min(hard);
                if p.now < until {
                    format!(
                        "the settle lag after the challenge window: a dispute filed in time may still reach the committee until {until}; then {REPORT}"
                    )
                } else {
                    REPORT.to_owned()
                }
            }
            None => REPORT.to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: u64 = 1_800_000_000;

    fn certified(now: u64, phase: Phase) -> Progress {
        Progress {
            now,
            observe_at: M + 120,
            published: false,
            with_value: 4,
            quorum: 3,
            certified: true,
            phase: Some(phase),
            challenge_deadline: Some(M + 3_600),
            hard_deadline: M + 86_400,
            settle_secs: 15,
            report_signatures: None,
            confirmations: None,
            confirmations_required: 2,
        }
    }

    /// Every unix time (10 digits) the text names.
    fn times(text: &str) -> Vec<u64> {
        text.split(|c: char| !c.is_ascii_digit())
            .filter(|w| w.len() == 10)
            .map(|w| w.parse().unwrap())
            .collect()
    }

    #[test]
    fn no_time_named_has_passed() {
        let phases = [
            Phase::Challenge,
            Phase::Review,
            Phase::Recertifying,
            Phase::Arbitration,
            Phase::Final,
            Phase::AwaitingCertificate,
        ];
        for phase in phases {
            for now in (M + 120..M + 90_000).step_by(7) {
                let text = waiting_for(&certified(now, phase)).unwrap();
                for t in times(&text) {
                    assert!(t > now, "{phase:?} at {now}: {text:?} names {t}");
                }
            }
        }
    }

    #[test]
    fn the_settle_lag_says_what_it_waits_for_and_until_when() {
        let deadline = M + 3_600;
        let open = waiting_for(&certified(deadline - 1, Phase::Challenge)).unwrap();
        assert_eq!(open, format!("the challenge window to close at {deadline}"));
        // The fold lags the clock: just past the deadline the machine still says Challenge.
        for now in [deadline, deadline + 14] {
            let lag = waiting_for(&certified(now, Phase::Challenge)).unwrap();
            assert!(lag.starts_with("the settle lag after the challenge window"), "{lag}");
            assert!(lag.contains(&format!("until {}", deadline + 15)), "{lag}");
            assert!(lag.ends_with("the committee's decision on the final report"), "{lag}");
        }
        let after = waiting_for(&certified(deadline + 15, Phase::Challenge)).unwrap();
        assert_eq!(after, "the committee's decision on the final report");
        assert_eq!(waiting_for(&certified(deadline + 15, Phase::Final)).unwrap(), after);
        // Arbitration past the hard deadline: the lag after it, then the report.
        let hard = M + 86_400;
        let ruling = waiting_for(&certified(hard - 1, Phase::Arbitration)).unwrap();
        assert_eq!(ruling, format!("the arbitrator's ruling, or the hard deadline at {hard}"));
        let lag = waiting_for(&certified(hard + 3, Phase::Arbitration)).unwrap();
        assert!(lag.starts_with("the settle lag after the hard deadline"), "{lag}");
        assert!(lag.contains(&(hard + 15).to_string()), "{lag}");
        assert_eq!(
            waiting_for(&certified(hard + 15, Phase::Review)).unwrap(),
            "the committee's decision on the final report"
        );
    }

    #[test]
    fn before_and_after_certification() {
        let mut p = certified(M + 100, Phase::Challenge);
        assert_eq!(waiting_for(&p), None, "not due yet");
        p.now = M + 200;
        p.certified = false;
        p.with_value = 2;
        assert_eq!(
            waiting_for(&p).unwrap(),
            "no quorum: 2 of the 3 members' observations with a value needed"
        );
        p.with_value = 3;
        assert_eq!(waiting_for(&p).unwrap(), "a proposal and 3 votes: 3 observations with a value are in");
        p.certified = true;
        p.report_signatures = Some(2);
        assert_eq!(waiting_for(&p).unwrap(), "report signatures: 2 of the 3 needed");
        p.report_signatures = Some(3);
        assert_eq!(waiting_for(&p).unwrap(), "the publishing member's transaction");
        p.confirmations = Some(1);
        assert_eq!(waiting_for(&p).unwrap(), "confirmations: 1 of 2");
        p.published = true;
        assert_eq!(waiting_for(&p), None);
    }
}
