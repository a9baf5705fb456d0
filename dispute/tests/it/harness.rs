//! Random event sequences for the properties.
//!
//! A case is random rules ([`DisputeParams`]) and a list of abstract steps. Each step is turned
//! into a concrete event *against the machine's current state*, so that random sequences reach
//! every phase: a dispute names the proposal in force (or, sometimes, another one), its bond is
//! the round's requirement, one wei short of it, a multiple of it or anything at all, its id
//! comes from a small set (so duplicates are common), votes name a dispute of the open round
//! (or another), and times jump around the deadlines, the hard deadline, and sometimes back.
//! Proptest shrinks the abstract steps.

use alloy_primitives::{Address, B256};
use fixd_dispute::{Action, DisputeFiling, DisputeParams, Event, ReviewVoteCast, SettlementDisputes};
use fixd_proto::types::dispute::DisputeReason;
use fixd_proto::value::Wad;
use proptest::prelude::*;

/// Maturity of every generated settlement.
pub const M: u64 = 1_000_000;
/// The value the first certificate is near, 2000 USD.
const BASE: u128 = 2_000_000_000_000_000_000_000;

#[derive(Clone, Copy, Debug)]
pub enum TimeStep {
    Same,
    Forward(u64),
    /// The current deadline plus an offset in `-2..=2`.
    NearDeadline(i8),
    /// The hard deadline plus an offset in `-2..=2`.
    NearHard(i8),
    Back(u64),
}

#[derive(Clone, Copy, Debug)]
pub enum BondPick {
    Required,
    OneShort,
    Above(u64),
    Times(u8),
    Raw(u128),
}

#[derive(Clone, Copy, Debug)]
pub enum ValuePick {
    /// The certified value (or, for a certificate, the value awaited).
    Current,
    /// The current value plus or minus a few wei.
    Near(i8),
    /// About 2% away.
    Far(bool),
    Raw(u128),
    /// No value (a vote only).
    NoValue,
}

#[derive(Clone, Copy, Debug)]
pub enum Op {
    Certify { round_step: u8, value: ValuePick, hash: u8 },
    File { id: u8, right_proposal: bool, bond: BondPick },
    Vote { member: u8, dispute: u8, value: ValuePick, recomputes: bool },
    Ruling { dispute: u8, value: ValuePick, upheld: bool },
    Tick,
}

#[derive(Clone, Copy, Debug)]
pub struct Step {
    pub time: TimeStep,
    pub op: Op,
}

#[derive(Clone, Debug)]
pub struct Case {
    pub params: DisputeParams,
    pub steps: Vec<Step>,
}

/// One event fed to the machine, with the machine before and after.
#[derive(Clone, Debug)]
pub struct Record {
    pub now: u64,
    pub event: Event,
    pub before: SettlementDisputes,
    pub actions: Vec<Action>,
    pub after: SettlementDisputes,
}

impl Record {
    /// The time the machine applied: never earlier than its clock.
    pub fn effective_now(&self) -> u64 {
        self.now.max(self.before.clock())
    }
}

#[derive(Clone, Debug)]
pub struct Trace {
    pub params: DisputeParams,
    pub records: Vec<Record>,
}

impl Trace {
    /// The machine after the last event.
    pub fn machine(&self) -> SettlementDisputes {
        match self.records.last() {
            Some(r) => r.after.clone(),
            None => SettlementDisputes::new(self.params.clone()).expect("valid params"),
        }
    }

    /// Adds a tick at the hard deadline (or at the clock if later).
    pub fn finish(mut self) -> Trace {
        let m = self.machine();
        let now = m.hard_deadline().max(m.clock());
        self.push(m, now, Event::Tick);
        self
    }

    fn push(&mut self, mut m: SettlementDisputes, now: u64, event: Event) {
        let before = m.clone();
        let actions = m.on(now, event.clone());
        self.records.push(Record { now, event, before, actions, after: m });
    }

    /// Every action of the trace, in order.
    pub fn actions(&self) -> impl Iterator<Item = (&Record, &Action)> {
        self.records.iter().flat_map(|r| r.actions.iter().map(move |a| (r, a)))
    }
}

/// Runs a case: turns each step into an event against the machine's state and feeds it.
pub fn run(case: &Case) -> Trace {
    let mut trace = Trace { params: case.params.clone(), records: Vec::new() };
    let mut pending: Option<Wad> = None;
    let mut certificates: u8 = 0;
    let mut after_end = 0;
    for step in &case.steps {
        let m = trace.machine();
        // A few steps after the end are enough to see that nothing happens any more.
        if m.is_terminal() {
            after_end += 1;
            if after_end > 4 {
                break;
            }
        }
        let now = time(&m, step.time);
        let event = event(&m, step.op, pending, &mut certificates);
        trace.push(m, now, event);
        for a in &trace.records.last().expect("pushed").actions {
            match a {
                Action::CertifyReviewed { value, .. } => pending = Some(*value),
                Action::WindowOpened { .. } => pending = None,
                _ => {}
            }
        }
    }
    trace
}

fn time(m: &SettlementDisputes, t: TimeStep) -> u64 {
    let clock = m.clock().max(M);
    match t {
        TimeStep::Same => clock,
        TimeStep::Forward(d) => clock.saturating_add(d),
        TimeStep::NearDeadline(o) => m.deadline().unwrap_or(clock).saturating_add_signed(o.into()),
        TimeStep::NearHard(o) => m.hard_deadline().saturating_add_signed(o.into()),
        TimeStep::Back(d) => clock.saturating_sub(d),
    }
}

fn dispute_id(id: u8) -> B256 {
    B256::with_last_byte(id)
}

/// Mostly a dispute of the open round; an arbitrary id when `pick ≥ 4` or none is open.
fn pick_dispute(m: &SettlementDisputes, pick: u8) -> B256 {
    let open: Vec<B256> = m
        .disputes()
        .iter()
        .filter(|d| d.dispute_round == m.dispute_round() && d.decision.is_none())
        .map(|d| d.filing.dispute_id)
        .collect();
    match open.len() {
        0 => dispute_id(pick),
        len if pick < 4 => open[usize::from(pick) % len],
        _ => dispute_id(pick),
    }
}

fn value(current: Wad, pick: ValuePick) -> Option<Wad> {
    let c = current.raw();
    let raw = match pick {
        ValuePick::Current => c,
        ValuePick::Near(k) => c.saturating_add_signed(k.into()),
        ValuePick::Far(true) => c.saturating_add(c / 50 + 1),
        ValuePick::Far(false) => c.saturating_sub(c / 50 + 1),
        ValuePick::Raw(r) => r,
        ValuePick::NoValue => return None,
    };
    Some(Wad::from_raw(raw))
}

fn event(m: &SettlementDisputes, op: Op, pending: Option<Wad>, certificates: &mut u8) -> Event {
    let current = m.certified().map_or(Wad::from_raw(BASE), |c| c.value);
    match op {
        Op::Certify { round_step, value: pick, hash } => {
            *certificates = certificates.wrapping_add(1);
            let value = match (pick, pending) {
                (ValuePick::Current, Some(p)) => p,
                _ => value(current, pick).unwrap_or(current),
            };
            let round = m.certified().map_or(0, |c| c.round).saturating_add(round_step.into());
            // A fresh hash per certificate, except when `hash` is 0: then a repeat of hash 1.
            let proposal_hash = if hash == 0 {
                B256::repeat_byte(1)
            } else {
                B256::left_padding_from(&[0xc0, *certificates])
            };
            Event::Certified { round, proposal_hash, value }
        }
        Op::File { id, right_proposal, bond } => {
            let required = m.required_bond().unwrap_or(m.params().min_bond_wei);
            let bond_wei = match bond {
                BondPick::Required => required,
                BondPick::OneShort => required.saturating_sub(1),
                BondPick::Above(x) => required.saturating_add(x.into()),
                BondPick::Times(k) => required.saturating_mul(k.into()),
                BondPick::Raw(r) => r,
            };
            let proposal_hash = match (right_proposal, m.certified()) {
                (true, Some(c)) => c.proposal_hash,
                _ => B256::repeat_byte(0xee),
            };
            Event::DisputeFiled(DisputeFiling {
                dispute_id: dispute_id(id),
                disputer: Address::with_last_byte(id),
                bond_wei,
                proposal_hash,
                claimed_value: None,
                reason: DisputeReason::Other,
            })
        }
        Op::Vote { member, dispute, value: pick, recomputes } => Event::ReviewVote(ReviewVoteCast {
            // Mostly a member; from 240 up, an index that may be out of the committee.
            member: if member < 240 {
                usize::from(member) % m.params().committee_size
            } else {
                usize::from(member - 240)
            },
            dispute_id: pick_dispute(m, dispute),
            value: value(current, pick),
            median_recomputes: recomputes,
        }),
        Op::Ruling { dispute, value: pick, upheld } => Event::Ruling {
            dispute_id: pick_dispute(m, dispute),
            value: value(current, pick).unwrap_or(current),
            upheld,
        },
        Op::Tick => Event::Tick,
    }
}

// ----- strategies -----

/// Reads bounded fields out of random bits. Steps are decoded from two plain integers rather
/// than built from nested `prop_oneof!`s: generating those costs ten times more in a debug
/// build, and the integers still shrink towards the simplest step (`Same`, `Tick`).
struct Bits(u128);

impl Bits {
    /// A number in `0..n`.
    fn take(&mut self, n: u128) -> u128 {
        let v = self.0 % n;
        self.0 /= n;
        v
    }

    /// An index into `weights`, each chosen in proportion to its weight.
    fn weighted(&mut self, weights: &[u128]) -> usize {
        let mut x = self.take(weights.iter().sum());
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }
}

fn bond_pick(b: &mut Bits, raw: u128) -> BondPick {
    match b.weighted(&[5, 3, 2, 2, 1, 1]) {
        0 => BondPick::Required,
        1 => BondPick::OneShort,
        2 => BondPick::Above(b.take(1000) as u64),
        3 => BondPick::Times(2 + b.take(3) as u8),
        4 => BondPick::Raw(raw),
        _ => BondPick::Raw(u128::MAX),
    }
}

fn value_pick(b: &mut Bits, raw: u128) -> ValuePick {
    match b.weighted(&[4, 3, 4, 1, 1]) {
        0 => ValuePick::Current,
        1 => ValuePick::Near(b.take(7) as i8 - 3),
        2 => ValuePick::Far(b.take(2) == 1),
        3 => ValuePick::Raw(raw),
        _ => ValuePick::NoValue,
    }
}

/// One step from random bits (`raw` is used whole when a pick wants any `u128`).
fn decode_step(bits: u64, raw: u128) -> Step {
    let b = &mut Bits(u128::from(bits));
    let time = match b.weighted(&[12, 24, 2, 2, 1, 2]) {
        0 => TimeStep::Same,
        1 => TimeStep::Forward(b.take(300) as u64),
        2 => TimeStep::Forward(b.take(5_000) as u64),
        3 => TimeStep::NearDeadline(b.take(5) as i8 - 2),
        4 => TimeStep::NearHard(b.take(5) as i8 - 2),
        _ => TimeStep::Back(b.take(5_000) as u64),
    };
    let op = match b.weighted(&[2, 2, 5, 8, 1]) {
        0 => Op::Tick,
        1 => Op::Certify { round_step: b.take(3) as u8, value: value_pick(b, raw), hash: b.take(8) as u8 },
        2 => Op::File { id: b.take(10) as u8, right_proposal: b.take(10) != 0, bond: bond_pick(b, raw) },
        3 => Op::Vote {
            member: b.take(256) as u8,
            dispute: b.take(6) as u8,
            value: value_pick(b, raw),
            recomputes: b.take(5) != 0,
        },
        _ => Op::Ruling { dispute: b.take(4) as u8, value: value_pick(b, raw), upheld: b.take(2) == 1 },
    };
    Step { time, op }
}

fn step() -> impl Strategy<Value = Step> {
    (any::<u64>(), any::<u128>()).prop_map(|(bits, raw)| decode_step(bits, raw))
}

fn params() -> impl Strategy<Value = DisputeParams> {
    (
        (1usize..=7, any::<u8>(), 0u8..=3),
        prop_oneof![3 => 1u128..1_000, 1 => Just(100_000_000_000_000_000u128), 1 => any::<u128>().prop_map(|b| (b >> 2).max(1))],
        prop_oneof![Just(10u32), 0u32..=200],
        prop_oneof![Just(5000u32), 0u32..=30_000],
        prop_oneof![6 => 1_000u64..20_000, 1 => 0u64..1_000],
        prop_oneof![6 => 500u64..10_000, 1 => 0u64..500],
        prop_oneof![6 => 20_000u64..200_000, 1 => 0u64..20_000, 1 => Just(172_800u64)],
        prop_oneof![Just(0u128), 0u128..10_000, any::<u128>()],
    )
        .prop_map(|((n, q_seed, max_rounds), min_bond, tol, reward, challenge, reopened, hard, pool)| {
            // Mostly the BFT quorum 2f+1, sometimes any quorum from 1 to n.
            let quorum = if q_seed % 2 == 0 { 2 * ((n - 1) / 3) + 1 } else { 1 + usize::from(q_seed) % n };
            DisputeParams {
                maturity: M,
                challenge_period_secs: challenge,
                reopened_challenge_period_secs: reopened,
                hard_deadline_secs: hard,
                max_rounds,
                min_bond_wei: min_bond,
                dispute_tolerance_bp: tol,
                reward_bp: reward,
                committee_size: n,
                quorum,
                insurance_pool_wei: pool,
            }
        })
}

/// A random case: usually opens with a certificate, then up to 120 random steps.
pub fn case() -> impl Strategy<Value = Case> {
    let first = Step {
        time: TimeStep::Forward(120),
        op: Op::Certify { round_step: 1, value: ValuePick::Current, hash: 1 },
    };
    (params(), prop::bool::weighted(0.9), prop::collection::vec(step(), 0..120)).prop_map(
        move |(params, certify_first, mut steps)| {
            if certify_first {
                steps.insert(0, first);
            }
            Case { params, steps }
        },
    )
}
