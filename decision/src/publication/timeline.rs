//! The agreed timeline of one settlement's disputes: every event that moves the dispute machine
//! carries a time all members derive alike, and the machine is a fold of those events in that
//! order, up to a horizon that lags the clock.
//!
//! | event | agreed time | order within one second |
//! |---|---|---|
//! | the first certificate | its proposal's `proposed_at` | rank 0 |
//! | a review certificate (its q votes, then its value if upheld) | its proposal's `proposed_at` | rank 1 |
//! | a dispute | `accepted_at`, signed by the member that accepted it | rank 2, dispute id |
//! | an arbitrator's ruling | `accepted_at`, signed by the member that accepted it | rank 3, dispute id |
//!
//! Feeding each member's own arrival times instead would let a dispute that reaches one member
//! just before the deadline and another just after split the committee. The horizon is
//! `now − settle`, with `settle = max_clock_skew + round_timeout`: by then every honest member
//! holds every event stamped before it. An event that still arrives later (a restart, a
//! partition) is folded in at its own time all the same: members that hold the same events
//! reach the same state, and [`Timeline::fold`] says when the history it had already acted on
//! changed. (A relay dated outside the receiver's receipt bound is not on a member's timeline
//! at all until a decided report takes it, or more than f members review its dispute: see
//! [`super::Publication`] and [`crate::driver`].)

use alloy_primitives::B256;
use fixd_dispute::{
    Action, DisputeFiling, DisputeParams, Event, Refusal, ReviewVoteCast, SettlementDisputes,
};
use fixd_proto::value::Wad;

/// The agreed event a publication event is, with its agreed time; the event itself if it is
/// not one (report signatures, chain reads, ticks).
#[allow(clippy::result_large_err)]
pub fn agreed(event: super::Event) -> Result<(u64, Agreed), super::Event> {
    use super::Event as E;
    Ok(match event {
        E::Certified { round, proposal_hash, value, proposed_at } => {
            (proposed_at, Agreed::Certified { round, proposal_hash, value })
        }
        E::ReviewCertified { votes, round, proposal_hash, value, proposed_at } => {
            (proposed_at, Agreed::Review { votes, round, proposal_hash, value })
        }
        E::Dispute { filing, pool_wei, accepted_at, .. } => {
            (accepted_at, Agreed::Dispute { filing, pool_wei })
        }
        E::Ruling { dispute_id, value, upheld, accepted_at, .. } => {
            (accepted_at, Agreed::Ruling { dispute_id, value, upheld })
        }
        other => return Err(other),
    })
}

/// Where an event sits on the timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub at: u64,
    pub rank: u8,
    pub tiebreak: B256,
}

/// An event every member feeds at the same time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Agreed {
    /// The first certificate.
    Certified { round: u32, proposal_hash: B256, value: Wad },
    /// A certified review: the q listed votes, fed in the certificate's order; if they uphold
    /// the dispute, the certificate is also the new certified value.
    Review { votes: Vec<ReviewVoteCast>, round: u32, proposal_hash: B256, value: Wad },
    /// A dispute, its bond checked on-chain. `pool_wei` is the insurance pool at its bond's
    /// block: the first dispute's sets the pool the settlement's rewards are paid from.
    Dispute { filing: DisputeFiling, pool_wei: u128 },
    /// An arbitrator's ruling.
    Ruling { dispute_id: B256, value: Wad, upheld: bool },
}

impl Key {
    fn of(at: u64, event: &Agreed) -> Key {
        Key { at, rank: event.rank(), tiebreak: event.tiebreak() }
    }
}

impl Agreed {
    /// The dispute the event is about (`None` for the first certificate).
    pub fn dispute_id(&self) -> Option<B256> {
        match self {
            Agreed::Certified { .. } | Agreed::Review { .. } => None,
            Agreed::Dispute { filing, .. } => Some(filing.dispute_id),
            Agreed::Ruling { dispute_id, .. } => Some(*dispute_id),
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Agreed::Certified { .. } => 0,
            Agreed::Review { .. } => 1,
            Agreed::Dispute { .. } => 2,
            Agreed::Ruling { .. } => 3,
        }
    }

    fn tiebreak(&self) -> B256 {
        match self {
            Agreed::Certified { proposal_hash, .. } | Agreed::Review { proposal_hash, .. } => *proposal_hash,
            Agreed::Dispute { filing, .. } => filing.dispute_id,
            Agreed::Ruling { dispute_id, .. } => *dispute_id,
        }
    }
}

/// One action of the fold, with the agreed time of the event that caused it (the horizon for
/// the closing tick).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timed {
    pub at: u64,
    pub action: Action,
}

/// The events of one settlement and what has been acted on.
#[derive(Clone, Debug)]
pub struct Timeline {
    params: DisputeParams,
    /// In key order, without two of one key. A sorted vector, not a B-tree: a settlement holds
    /// one event or a few, and a B-tree allocates room for eleven at its first insert (some
    /// 2.5 KB a settlement, held by each of a burst's thousands).
    events: Vec<(Key, Agreed)>,
    /// The actions of the last fold that were handed out, without `Ignored` ones.
    carried: Vec<Timed>,
}

/// What a fold changed.
#[derive(Debug)]
pub struct Folded {
    /// The machine after the fold, for its state.
    pub machine: SettlementDisputes,
    /// Actions not handed out before, in order.
    pub new: Vec<Timed>,
    /// Whether an event arrived so late that history already acted on changed.
    pub revised: bool,
}

impl Timeline {
    /// An empty timeline under `params` (its `insurance_pool_wei` is replaced by the first
    /// dispute's pool).
    pub fn new(params: DisputeParams) -> Result<Self, fixd_dispute::Error> {
        SettlementDisputes::new(params.clone())?;
        Ok(Timeline { params, events: Vec::new(), carried: Vec::new() })
    }

    /// Adds an event at agreed time `at`. Returns false if it is there already.
    ///
    /// A dispute (or ruling) relayed by two members carries two agreed times; both are kept, and
    /// every member that holds the same relays folds them alike.
    pub fn insert(&mut self, at: u64, event: Agreed) -> bool {
        // Several members' relays of one dispute or ruling are all folded, in agreed-time
        // order: the machine takes a dispute's earliest relay and refuses the others as
        // duplicates, and ignores a ruling dated before its arbitration, so a backdated relay
        // cannot keep the real one out.
        let added = put(&mut self.events, at, event);
        self.events.shrink_to_fit();
        added
    }

    /// The agreed time of the first event held past `horizon`: a fold then changes.
    pub fn next_after(&self, horizon: u64) -> Option<u64> {
        self.events.iter().map(|(key, _)| key.at).find(|at| *at > horizon)
    }

    /// Whether a dispute with this id is on the timeline (folded or not).
    pub fn has_dispute(&self, dispute_id: &B256) -> bool {
        self.events
            .iter()
            .map(|(_, e)| e)
            .any(|e| matches!(e, Agreed::Dispute { filing, .. } if &filing.dispute_id == dispute_id))
    }

    /// The machine after every event up to `horizon`, and the actions not handed out yet.
    pub fn fold(&mut self, horizon: u64) -> Folded {
        let (machine, actions) = run(&self.params, &self.events, horizon);
        let revised = !starts_with(&actions, &self.carried);
        let new = if revised {
            actions.iter().filter(|a| !self.carried.iter().any(|c| same(c, a))).cloned().collect()
        } else {
            actions[self.carried.len()..].to_vec()
        };
        self.carried = actions;
        // Kept for the settlement's life (thousands at once in a burst): no growth slack.
        self.carried.shrink_to_fit();
        Folded { machine, new, revised }
    }

    /// What the machine would answer to `filing` at `at`, given every event known now: the
    /// dispute round it would join, or the refusal. Changes nothing.
    pub fn predict_dispute(&self, at: u64, filing: DisputeFiling, pool_wei: u128) -> Result<u16, Refusal> {
        let mut events = self.events.clone();
        let dispute_id = filing.dispute_id;
        put(&mut events, at, Agreed::Dispute { filing, pool_wei });
        let (_, actions) = run(&self.params, &events, at);
        for Timed { action, .. } in actions {
            match action {
                Action::DisputeAccepted { dispute_id: id, dispute_round, .. } if id == dispute_id => {
                    return Ok(dispute_round);
                }
                Action::DisputeRefused { dispute_id: id, reason } if id == dispute_id => return Err(reason),
                _ => {}
            }
        }
        Err(Refusal::NotCertified)
    }

    /// The machine after every event up to `horizon` together with `extra` ones (relays that
    /// reached this member late, see [`super::Publication`]). Changes nothing.
    pub fn fold_with(&self, extra: &[(u64, Agreed)], horizon: u64) -> SettlementDisputes {
        let mut events = self.events.clone();
        for (at, event) in extra {
            put(&mut events, *at, event.clone());
        }
        run(&self.params, &events, horizon).0
    }

    /// The machine with every known event folded in, whatever its time: what the API shows
    /// as the settlement's dispute state.
    pub fn latest(&self, now: u64) -> SettlementDisputes {
        run(&self.params, &self.events, now).0
    }
}

/// Puts `event` at its place in `events` (in key order), in the place of one with its key.
/// Returns false if one had its key.
fn put(events: &mut Vec<(Key, Agreed)>, at: u64, event: Agreed) -> bool {
    let key = Key::of(at, &event);
    match events.binary_search_by(|(k, _)| k.cmp(&key)) {
        Ok(i) => {
            events[i].1 = event;
            false
        }
        Err(i) => {
            events.insert(i, (key, event));
            true
        }
    }
}

/// Folds `events` (in key order) up to `horizon` into a fresh machine.
fn run(base: &DisputeParams, events: &[(Key, Agreed)], horizon: u64) -> (SettlementDisputes, Vec<Timed>) {
    // The pool pays rewards only, so which disputes are accepted does not depend on it: a first
    // pass finds the first accepted dispute, whose bond block's pool is the settlement's.
    let (_, first_pass) = run_with_pool(base, events, horizon, 0);
    let pool = first_pass.iter().find_map(|t| match &t.action {
        Action::DisputeAccepted { dispute_id, .. } => events.iter().find_map(|(_, e)| match e {
            Agreed::Dispute { filing, pool_wei } if &filing.dispute_id == dispute_id => Some(*pool_wei),
            _ => None,
        }),
        _ => None,
    });
    match pool {
        Some(pool) if pool > 0 => run_with_pool(base, events, horizon, pool),
        _ => run_with_pool(base, events, horizon, 0),
    }
}

fn run_with_pool(
    base: &DisputeParams,
    events: &[(Key, Agreed)],
    horizon: u64,
    pool: u128,
) -> (SettlementDisputes, Vec<Timed>) {
    let params = DisputeParams { insurance_pool_wei: pool, ..base.clone() };
    let mut machine = SettlementDisputes::new(params).expect("validated in Timeline::new");
    let mut out = Vec::new();
    let feed = |machine: &mut SettlementDisputes, at: u64, event: Event, out: &mut Vec<Timed>| {
        let actions = machine.on(at, event);
        let reviewed = actions.iter().find_map(|a| match a {
            Action::CertifyReviewed { value, .. } => Some(*value),
            _ => None,
        });
        out.extend(
            actions
                .into_iter()
                .filter(|a| !matches!(a, Action::Ignored { .. }))
                .map(|action| Timed { at, action }),
        );
        reviewed
    };
    for (key, event) in events.iter().take_while(|(key, _)| key.at <= horizon) {
        match event.clone() {
            Agreed::Certified { round, proposal_hash, value } => {
                feed(&mut machine, key.at, Event::Certified { round, proposal_hash, value }, &mut out);
            }
            Agreed::Review { votes, round: _, proposal_hash, value } => {
                let mut reviewed = None;
                for vote in votes {
                    reviewed = reviewed.or(feed(&mut machine, key.at, Event::ReviewVote(vote), &mut out));
                }
                // Upheld: the review's certificate is the new certified value. Each decision
                // counts its own Tendermint rounds, so the value's round for the dispute machine
                // and the final report is the certification it comes from: 0 for the first
                // value, the dispute round for a review.
                if reviewed == Some(value) {
                    let round = u32::from(machine.dispute_round());
                    feed(&mut machine, key.at, Event::Certified { round, proposal_hash, value }, &mut out);
                }
            }
            Agreed::Dispute { filing, .. } => {
                feed(&mut machine, key.at, Event::DisputeFiled(filing), &mut out);
            }
            Agreed::Ruling { dispute_id, value, upheld } => {
                feed(&mut machine, key.at, Event::Ruling { dispute_id, value, upheld }, &mut out);
            }
        }
    }
    feed(&mut machine, horizon, Event::Tick, &mut out);
    (machine, out)
}

/// Whether two actions are the same act. A finality reached by the passing of time says when
/// the fold noticed it, which depends on the horizon; its report does not.
fn same(a: &Timed, b: &Timed) -> bool {
    match (&a.action, &b.action) {
        (Action::Finalize(x), Action::Finalize(y)) => {
            (x.value, x.round, x.by, &x.outcomes) == (y.value, y.round, y.by, &y.outcomes)
        }
        (x, y) => x == y,
    }
}

fn starts_with(actions: &[Timed], prefix: &[Timed]) -> bool {
    actions.len() >= prefix.len() && actions.iter().zip(prefix).all(|(a, b)| same(a, b))
}
