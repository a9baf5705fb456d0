//! The seeded schedule of a chaos run: which members are faulty and how, which are killed and
//! when, which links are cut and when. Pure: the same seed gives the same schedule on every
//! machine (a splitmix64 stream, no system randomness).

use std::fmt;

/// A faulty member's behaviour: one of `fixd run --byzantine`'s strategies
/// ([`crate::byzantine`]), or silence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Strategy {
    /// Signs and gossips a second, different proposal and vote for each slot.
    Equivocate,
    /// Signs but never sends its votes and report signature.
    Withhold,
    /// Gossips no votes and shows them in catch-up to one member only.
    Partial,
    /// Proposes a value 1% off when it leads a round.
    WrongValue,
    /// Floods validly signed votes for far-future rounds.
    Flood,
    /// Holds its relays of disputes back and releases them late.
    LateDisputes,
    /// Signs a final report for another value instead of the decided one.
    ForeignReports,
    /// Says nothing at all (its process is never started).
    Silent,
}

impl Strategy {
    /// Every strategy, in a fixed order.
    pub const ALL: [Strategy; 8] = [
        Strategy::Equivocate,
        Strategy::Withhold,
        Strategy::Partial,
        Strategy::WrongValue,
        Strategy::Flood,
        Strategy::LateDisputes,
        Strategy::ForeignReports,
        Strategy::Silent,
    ];

    /// The `fixd run --byzantine` argument (`None`: the member is never started).
    pub fn flag(self) -> Option<&'static str> {
        match self {
            Strategy::Equivocate => Some("equivocate"),
            Strategy::Withhold => Some("withhold"),
            Strategy::Partial => Some("partial"),
            Strategy::WrongValue => Some("wrong-value"),
            Strategy::Flood => Some("flood"),
            Strategy::LateDisputes => Some("late-disputes"),
            Strategy::ForeignReports => Some("foreign-reports"),
            Strategy::Silent => None,
        }
    }
}

/// A fault injected at a time after maturity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL `member` `at_ms` after maturity, and restart it on its data directory `down_ms`
    /// later.
    Kill { member: usize, at_ms: u64, down_ms: u64 },
    /// Cut every link between the groups `at_ms` after maturity; heal `heal_ms` later.
    Partition { groups: Vec<Vec<usize>>, at_ms: u64, heal_ms: u64 },
}

impl Fault {
    /// When it starts, ms after maturity.
    pub fn at_ms(&self) -> u64 {
        match self {
            Fault::Kill { at_ms, .. } | Fault::Partition { at_ms, .. } => *at_ms,
        }
    }
}

/// Where in a settlement's life a moment after maturity falls, for a test's timings (grace
/// `grace_ms`, challenge window `window_ms`): what a kill at that moment interrupts.
pub fn phase_at(at_ms: u64, grace_ms: u64, window_ms: u64) -> &'static str {
    if at_ms < grace_ms {
        "observation"
    } else if at_ms < grace_ms + 500 {
        "proposal"
    } else if at_ms < grace_ms + 2_000 {
        "vote"
    } else if at_ms < grace_ms + window_ms {
        "challenge window"
    } else if at_ms < grace_ms + window_ms + 2_000 {
        "report signing"
    } else if at_ms < grace_ms + window_ms + 4_000 {
        "publish sending"
    } else {
        "publish confirming"
    }
}

/// One run's schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    pub seed: u64,
    /// Committee size.
    pub n: usize,
    /// The faulty members and their strategies (at most f = (n − 1) / 3).
    pub byzantine: Vec<(usize, Strategy)>,
    /// The faults, by start time.
    pub faults: Vec<Fault>,
    /// A bonded dispute of the certified value, in about half the runs.
    pub dispute: Option<DisputePlan>,
}

/// A dispute filed during the challenge window: its bond moves (forfeit, refunded or still
/// escrowed), so the run checks that every bond balances to the wei.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DisputePlan {
    /// The member whose API takes it (any member: a faulty one may sit on it).
    pub via: usize,
    /// How long after the first member shows the settlement certified it is filed.
    pub after_certified_ms: u64,
}

/// The knobs of a schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub n: usize,
    /// SIGKILLs of honest members.
    pub kills: usize,
    /// Partitions.
    pub partitions: usize,
    /// Faults start within this many ms after maturity.
    pub horizon_ms: u64,
    /// The challenge window, ms: a dispute is filed within its first half.
    pub window_ms: u64,
}

impl Schedule {
    /// The schedule of `seed`: f faulty members with random strategies, `shape.kills` kills of
    /// distinct honest members (each down 2-8 s), `shape.partitions` partitions that split the
    /// committee in two (each healed after 3-12 s), and in half the seeds a dispute.
    pub fn from_seed(seed: u64, shape: Shape) -> Schedule {
        let mut rng = SplitMix(seed);
        let n = shape.n;
        let f = (n - 1) / 3;
        let mut members: Vec<usize> = (0..n).collect();
        rng.shuffle(&mut members);
        let byzantine: Vec<(usize, Strategy)> = members[..f]
            .iter()
            .map(|m| (*m, Strategy::ALL[rng.below(Strategy::ALL.len() as u64) as usize]))
            .collect();
        let honest = &members[f..];
        let mut faults = Vec::new();
        for member in honest.iter().take(shape.kills) {
            let at_ms = rng.below(shape.horizon_ms);
            faults.push(Fault::Kill { member: *member, at_ms, down_ms: 2_000 + rng.below(6_000) });
        }
        for _ in 0..shape.partitions {
            let mut order: Vec<usize> = (0..n).collect();
            rng.shuffle(&mut order);
            let cut = 1 + rng.below(n as u64 - 1) as usize;
            let (mut a, mut b) = (order[..cut].to_vec(), order[cut..].to_vec());
            a.sort_unstable();
            b.sort_unstable();
            let at_ms = rng.below(shape.horizon_ms);
            faults.push(Fault::Partition { groups: vec![a, b], at_ms, heal_ms: 3_000 + rng.below(9_000) });
        }
        faults.sort_by_key(Fault::at_ms);
        let mut byzantine = byzantine;
        byzantine.sort_unstable();
        // Drawn last, so that a seed's members, kills and partitions do not depend on it.
        let dispute = (rng.below(2) == 0).then(|| DisputePlan {
            via: rng.below(n as u64) as usize,
            after_certified_ms: rng.below(shape.window_ms / 2),
        });
        Schedule { seed, n, byzantine, faults, dispute }
    }

    /// Whether `member` is honest.
    pub fn is_honest(&self, member: usize) -> bool {
        !self.byzantine.iter().any(|(m, _)| *m == member)
    }

    /// The strategy of a faulty member.
    pub fn strategy(&self, member: usize) -> Option<Strategy> {
        self.byzantine.iter().find(|(m, _)| *m == member).map(|(_, s)| *s)
    }

    /// The command that replays this run.
    pub fn replay_command(&self) -> String {
        format!("FIXD_CHAOS_SEED={} cargo nextest run -p fixd --no-capture chaos::replay_one_seed", self.seed)
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seed {} (n = {}): faulty", self.seed, self.n)?;
        for (member, strategy) in &self.byzantine {
            write!(f, " node-{member} {strategy:?}")?;
        }
        for fault in &self.faults {
            match fault {
                Fault::Kill { member, at_ms, down_ms } => {
                    write!(f, "; kill node-{member} at +{at_ms} ms for {down_ms} ms")?;
                }
                Fault::Partition { groups, at_ms, heal_ms } => {
                    write!(f, "; partition {groups:?} at +{at_ms} ms for {heal_ms} ms")?;
                }
            }
        }
        if let Some(DisputePlan { via, after_certified_ms }) = self.dispute {
            write!(f, "; dispute via node-{via} {after_certified_ms} ms after certification")?;
        }
        Ok(())
    }
}

/// splitmix64: a tiny, well-known generator whose stream depends only on its seed (the
/// schedules here and the crash points of `cli/tests/it/crashes.rs`).
#[derive(Clone, Debug)]
pub struct SplitMix(pub u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (bound > 0; the modulo bias is negligible for test schedules).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHAPE: Shape = Shape { n: 7, kills: 2, partitions: 1, horizon_ms: 30_000, window_ms: 10_000 };

    #[test]
    fn one_seed_one_schedule_and_every_seed_keeps_the_bounds() {
        assert_eq!(Schedule::from_seed(7, SHAPE), Schedule::from_seed(7, SHAPE));
        assert_ne!(Schedule::from_seed(7, SHAPE), Schedule::from_seed(8, SHAPE));
        for seed in 0..500 {
            let s = Schedule::from_seed(seed, SHAPE);
            assert_eq!(s.byzantine.len(), 2, "f = 2 of 7");
            let kills: Vec<usize> = s
                .faults
                .iter()
                .filter_map(|f| match f {
                    Fault::Kill { member, .. } => Some(*member),
                    Fault::Partition { .. } => None,
                })
                .collect();
            assert_eq!(kills.len(), 2);
            assert!(kills.iter().all(|m| s.is_honest(*m)), "only honest members are killed: {s}");
            assert_ne!(kills[0], kills[1]);
            for fault in &s.faults {
                assert!(fault.at_ms() < SHAPE.horizon_ms);
                if let Fault::Partition { groups, .. } = fault {
                    let mut all: Vec<usize> = groups.concat();
                    all.sort_unstable();
                    assert_eq!(all, (0..7).collect::<Vec<_>>(), "a partition splits the committee: {s}");
                    assert!(groups.iter().all(|g| !g.is_empty()));
                }
            }
            assert!(s.faults.windows(2).all(|w| w[0].at_ms() <= w[1].at_ms()), "by time");
            if let Some(d) = s.dispute {
                assert!(d.via < 7 && d.after_certified_ms < SHAPE.window_ms / 2, "{s}");
            }
        }
        let disputed = (0..500).filter(|seed| Schedule::from_seed(*seed, SHAPE).dispute.is_some()).count();
        assert!((200..300).contains(&disputed), "about half the runs dispute: {disputed} of 500");
    }

    #[test]
    fn every_strategy_and_phase_comes_up_over_a_few_seeds() {
        let mut strategies = std::collections::BTreeSet::new();
        let mut phases = std::collections::BTreeSet::new();
        for seed in 0..50 {
            let s = Schedule::from_seed(seed, SHAPE);
            strategies.extend(s.byzantine.iter().map(|(_, st)| *st));
            phases.extend(s.faults.iter().map(|f| phase_at(f.at_ms(), 5_000, 10_000)));
        }
        assert_eq!(strategies.len(), Strategy::ALL.len(), "{strategies:?}");
        assert!(phases.len() >= 6, "{phases:?}");
    }

    #[test]
    fn the_replay_command_names_the_seed() {
        let s = Schedule::from_seed(42, SHAPE);
        assert!(s.replay_command().starts_with("FIXD_CHAOS_SEED=42 "));
        assert!(s.to_string().starts_with("seed 42 (n = 7): faulty node-"));
    }
}
