//! Small builders shared by the scenarios.

use alloy_primitives::{Address, B256};
use fixd_dispute::{
    Action, DisputeFiling, DisputeParams, Event, Finality, ReviewVoteCast, SettlementDisputes,
};
use fixd_proto::types::dispute::DisputeReason;
use fixd_proto::types::genesis::ProtocolParams;
use fixd_proto::value::Wad;

/// Maturity of the test settlement.
pub const M: u64 = 1_767_225_600;
/// The genesis default minimum bond, 0.1 ETH.
pub const MIN_BOND: u128 = 100_000_000_000_000_000;
/// The insurance pool the test settlement starts with, 1 ETH.
pub const POOL: u128 = 1_000_000_000_000_000_000;
/// Genesis defaults.
pub const CHALLENGE: u64 = 7200;
pub const REOPENED: u64 = 3600;
pub const HARD: u64 = M + 172_800;

/// Genesis defaults, a committee of 4 (q = 3), the pool above.
pub fn params() -> DisputeParams {
    DisputeParams::new(&ProtocolParams::default(), M, 4, 3, POOL)
}

pub fn machine() -> SettlementDisputes {
    SettlementDisputes::new(params()).expect("default params are valid")
}

pub fn hash(i: u8) -> B256 {
    B256::repeat_byte(i)
}

pub fn disputer(i: u8) -> Address {
    Address::repeat_byte(i)
}

/// `units` USD per ETH.
pub fn usd(units: u128) -> Wad {
    Wad::from_units(units).expect("small")
}

pub fn certified(round: u32, proposal: B256, value: Wad) -> Event {
    Event::Certified { round, proposal_hash: proposal, value }
}

/// Dispute `id` of `proposal` by disputer `id`, bonding `bond` wei.
pub fn dispute(id: u8, proposal: B256, bond: u128) -> Event {
    Event::DisputeFiled(DisputeFiling {
        dispute_id: dispute_id(id),
        disputer: disputer(id),
        bond_wei: bond,
        proposal_hash: proposal,
        claimed_value: None,
        reason: DisputeReason::BadData,
    })
}

pub fn dispute_id(id: u8) -> B256 {
    B256::with_last_byte(id)
}

pub fn vote(member: usize, dispute: u8, value: Option<Wad>) -> Event {
    Event::ReviewVote(ReviewVoteCast {
        member,
        dispute_id: dispute_id(dispute),
        value,
        median_recomputes: true,
    })
}

pub fn ruling(dispute: u8, value: Wad, upheld: bool) -> Event {
    Event::Ruling { dispute_id: dispute_id(dispute), value, upheld }
}

/// Members `0..q` vote `value` for dispute `dispute`; returns the actions of the last vote.
pub fn quorum_votes(m: &mut SettlementDisputes, now: u64, dispute: u8, value: Wad) -> Vec<Action> {
    let mut last = Vec::new();
    for member in 0..m.params().quorum {
        last = m.on(now, vote(member, dispute, Some(value)));
    }
    last
}

/// The `Finalize` among `actions`.
pub fn finality(actions: &[Action]) -> Option<&Finality> {
    actions.iter().find_map(|a| match a {
        Action::Finalize(f) => Some(f),
        _ => None,
    })
}

/// The deadline of the `WindowOpened` among `actions`.
pub fn window(actions: &[Action]) -> Option<u64> {
    actions.iter().find_map(|a| match a {
        Action::WindowOpened { deadline, .. } => Some(*deadline),
        _ => None,
    })
}

/// Asserts that `event` at `now` is refused with `reason` and changes nothing but the clock
/// (the machine ends as a tick at `now` would leave it).
pub fn assert_refused(m: &mut SettlementDisputes, now: u64, event: Event, reason: fixd_dispute::Refusal) {
    let mut ticked = m.clone();
    let tick_actions = ticked.on(now, Event::Tick);
    let actions = m.on(now, event);
    let (last, before) = actions.split_last().expect("an answer");
    assert!(
        matches!(last, Action::DisputeRefused { reason: r, .. } if *r == reason),
        "expected refusal {reason:?}, got {actions:?}"
    );
    assert_eq!(before, &tick_actions[..]);
    assert_eq!(*m, ticked, "a refused dispute changes nothing");
}
