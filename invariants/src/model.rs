//! The model: what `SettlementOracle` should do, written from its documentation alone, as a pure
//! state machine over concrete [`Call`]s.
//!
//! [`Model::apply`] says whether a call must succeed and, if so, moves the model as the contract
//! should move: the ledger (pool, reservations, escrows, burned, credits), every account's
//! ETH balance to the wei (gas is free on the test chain), the committee, the owner and the
//! payees' behaviour. The harness runs the same call on the EVM and compares.
//!
//! The rules, as the contract's NatSpec states them:
//! - a bond is escrowed before publication, one per (settlement, dispute), 0 < bond < 2^96; the
//!   settlement's first bond reserves `min(bond · rewardBp / 10⁴, pool, 2^72 − 1)` from the pool;
//! - a report publishes iff the settlement is unpublished, its value fits 128 bits, it carries at
//!   least `threshold` well-formed (65 bytes, `v` 27 or 28, low `s`) signatures of its digest by
//!   members of the committee in force, strictly ascending by address, and every outcome, in
//!   order, settles an open escrow of that settlement with its disputer and bond, conserves the
//!   bond (`bond = refund + pooled + burned`) and pays a reward the budget covers (the
//!   reservation, plus each `pooled`, minus each `reward`); what is left of the budget returns to
//!   the pool;
//! - each payout (`refund + reward`, or a reclaimed bond) is pushed with 30,000 gas: an account
//!   without code takes it, a `Payee` takes it only in mode 0 (mode 1 reverts, mode 2 burns the
//!   gas, mode 3 re-enters and meets the guard); a refused payout becomes a credit;
//! - `withdraw(to)` sends the caller's whole credit to `to` and reverts if `to` refuses it;
//! - a batch (`publishBatch`) succeeds iff its packed reports are a whole, non-zero number of
//!   52-byte reports and its signatures pass the same checks as a report's, over the EIP-712
//!   digest of exactly its reports in its order (neither another batch's nor a single report's,
//!   whose type hash differs); then each report, in order, whose settlement is unpublished
//!   (earlier reports of the batch included) is stored as a report without outcomes is: its value
//!   and the time, and its reservation returns to the pool. The others are skipped. No ETH
//!   moves; the settlement's escrows stay open, to be reclaimed;
//! - committees change only by owner proposal, after the delay, by anyone's `applyCommittee`;
//!   ownership moves in two steps and is never renounced.

use std::collections::BTreeMap;

use alloy_primitives::{Address, U256};

use crate::call::{BatchPublication, BatchSigned, Call, Packing, Party, Publication, Signatures};
use crate::world::{ACTORS, ActorId, ActorKind, DISPUTES, SETTLEMENTS, world};

/// Largest bond: `uint96`.
pub const MAX_BOND: u128 = (1 << 96) - 1;
/// Largest reservation: `uint72`.
pub const MAX_RESERVATION: u128 = (1 << 72) - 1;

/// A committee: its members, strictly ascending, and its threshold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committee {
    pub members: Vec<Address>,
    pub threshold: u64,
}

impl Committee {
    /// Whether the contract accepts it (`storeCommittee`): members strictly ascending and never
    /// the zero address, `0 < threshold ≤ n` and `3 · threshold > 2n`.
    pub fn is_valid(&self) -> bool {
        let n = self.members.len() as u64;
        let t = self.threshold;
        t > 0
            && t <= n
            && 3 * t > 2 * n
            && self.members.windows(2).all(|w| w[0] < w[1])
            && self.members.first().is_some_and(|first| !first.is_zero())
    }

    /// The smallest valid threshold of `n` members: more than two thirds.
    pub fn min_threshold(n: usize) -> u64 {
        (2 * n as u64) / 3 + 1
    }
}

/// The life of an escrow: it ends as exactly one of settled or reclaimed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EscrowState {
    Open,
    /// Settled by the publication of its settlement's report.
    Settled,
    /// Returned to its disputer by `reclaimBond`.
    Reclaimed,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Escrow {
    pub disputer: ActorId,
    pub amount: u128,
    pub state: EscrowState,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settlement {
    /// `(value, publishedAt)` once published: never to change again.
    pub published: Option<(U256, u64)>,
    /// Whether a bond was posted (and the reservation made).
    pub bonded: bool,
    /// The reward reserved until publication.
    pub reserved: u128,
}

/// What the model expects of a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expectation {
    pub succeeds: bool,
    /// Why, in a few words, for a failure message.
    pub because: &'static str,
}

/// A call that must succeed, and why.
pub const fn ok(because: &'static str) -> Expectation {
    Expectation { succeeds: true, because }
}

/// A call that must fail, and why.
pub const fn fails(because: &'static str) -> Expectation {
    Expectation { succeeds: false, because }
}

/// The deployment parameters of one case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub committee: Committee,
    pub delay: u64,
    pub reward_bp: u128,
    /// Whether Dave and Erin (actors 3 and 4) start delegated to `Payee`.
    pub delegated: [bool; 2],
    /// Starting modes of actors 3 to 7 (a mode of an undelegated EOA is not set).
    pub modes: [u8; 5],
    /// The clock at deployment.
    pub start: u64,
}

/// Every account starts with this much ETH: 2^120 wei.
pub const START_BALANCE: u128 = 1 << 120;

/// The state the contract should be in, and every balance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Model {
    pub now: u64,
    pub delay: u64,
    pub reward_bp: u128,
    pub owner: ActorId,
    pub pending_owner: Option<ActorId>,
    pub committee: Committee,
    /// The committee before the last `applyCommittee`, if any: its signatures no longer count.
    pub previous_committee: Option<Committee>,
    /// A proposed committee and its eta.
    pub pending_committee: Option<(Committee, u64)>,
    pub settlements: [Settlement; SETTLEMENTS],
    /// Every escrow ever posted, by (settlement, dispute).
    pub escrows: BTreeMap<(u8, u8), Escrow>,
    pub pool: u128,
    pub total_reserved: u128,
    pub total_escrowed: u128,
    pub total_burned: u128,
    pub total_credits: u128,
    pub credits: [u128; ACTORS],
    /// ETH of each actor.
    pub balances: [u128; ACTORS],
    pub relayer_balance: u128,
    pub oracle_balance: u128,
    /// Each actor's `Payee.mode` (in its own storage, kept across delegations).
    pub modes: [u8; ACTORS],
    /// Whether an EOA's code is a delegation to `Payee`.
    pub delegated: [bool; ACTORS],
}

impl Model {
    /// The state right after the harness's setup: deployed, delegated and armed as `config` says.
    pub fn new(config: &Config) -> Self {
        let mut modes = [0; ACTORS];
        let mut delegated = [false; ACTORS];
        delegated[3] = config.delegated[0];
        delegated[4] = config.delegated[1];
        for (i, mode) in config.modes.iter().enumerate() {
            let actor = ActorId(3 + i as u8);
            if actor.kind() == ActorKind::Payee || delegated[usize::from(actor.0)] {
                modes[usize::from(actor.0)] = *mode;
            }
        }
        Self {
            now: config.start,
            delay: config.delay,
            reward_bp: config.reward_bp,
            owner: ActorId(0),
            pending_owner: None,
            committee: config.committee.clone(),
            previous_committee: None,
            pending_committee: None,
            settlements: Default::default(),
            escrows: BTreeMap::new(),
            pool: 0,
            total_reserved: 0,
            total_escrowed: 0,
            total_burned: 0,
            total_credits: 0,
            credits: [0; ACTORS],
            balances: std::array::from_fn(|i| if ActorId(i as u8).is_eoa() { START_BALANCE } else { 0 }),
            relayer_balance: START_BALANCE,
            oracle_balance: 0,
            modes,
            delegated,
        }
    }

    /// Whether `party` takes a payment (pushed with 30,000 gas, or all gas by `withdraw`).
    pub fn accepts(&self, party: Party) -> bool {
        match party {
            Party::Relayer => true,
            Party::Oracle => false,
            Party::Actor(actor) => {
                let i = usize::from(actor.0);
                match actor.kind() {
                    ActorKind::Eoa => true,
                    ActorKind::DelegatingEoa => !self.delegated[i] || self.modes[i] == 0,
                    ActorKind::Payee => self.modes[i] == 0,
                }
            }
        }
    }

    /// The open escrows of `settlement`, by dispute.
    pub fn open_escrows(&self, settlement: u8) -> Vec<(u8, &Escrow)> {
        (0..DISPUTES as u8)
            .filter_map(|d| self.escrows.get(&(settlement, d)).map(|e| (d, e)))
            .filter(|(_, e)| e.state == EscrowState::Open)
            .collect()
    }

    fn balance_mut(&mut self, party: Party) -> &mut u128 {
        match party {
            Party::Actor(actor) => &mut self.balances[usize::from(actor.0)],
            Party::Relayer => &mut self.relayer_balance,
            Party::Oracle => &mut self.oracle_balance,
        }
    }

    /// Who pays the value of `by`'s call: the actor, or the relayer for a contract.
    fn payer(by: ActorId) -> Party {
        if by.is_eoa() { Party::Actor(by) } else { Party::Relayer }
    }

    /// Moves `amount` from `from` to `to`.
    fn transfer(&mut self, from: Party, to: Party, amount: u128) {
        let source = self.balance_mut(from);
        *source = source.checked_sub(amount).expect("the run never spends more than an account holds");
        *self.balance_mut(to) += amount;
    }

    /// `pay(to, amount)`: pushed if `to` takes it, else credited.
    fn pay(&mut self, to: ActorId, amount: u128) {
        if amount == 0 {
            return;
        }
        if self.accepts(Party::Actor(to)) {
            self.transfer(Party::Oracle, Party::Actor(to), amount);
        } else {
            self.credits[usize::from(to.0)] += amount;
            self.total_credits += amount;
        }
    }

    /// Whether `publish` or `publishBatch` must accept these signatures under the committee in
    /// force (each signing the digest it is checked against unless `wrong_digest`).
    pub fn signatures_check(&self, signatures: &Signatures) -> Result<(), &'static str> {
        if signatures.extra_byte || signatures.truncated {
            return Err("signatures are not a whole number of 65-byte signatures");
        }
        if (signatures.specs.len() as u64) < self.committee.threshold {
            return Err("fewer signatures than the threshold");
        }
        let mut previous = Address::ZERO;
        for s in &signatures.specs {
            if s.high_s {
                return Err("a high-s signature");
            }
            if s.bad_v {
                return Err("a signature with v not 27 or 28");
            }
            if s.wrong_digest {
                return Err("a signature of another digest");
            }
            let signer = world().keys[usize::from(s.key)].address();
            if signer <= previous {
                return Err("signers not strictly ascending");
            }
            if !self.committee.members.contains(&signer) {
                return Err("a signer outside the committee in force");
            }
            previous = signer;
        }
        Ok(())
    }

    /// Whether every outcome settles an open escrow within the budget; the budget left.
    pub fn outcomes_check(&self, p: &Publication) -> Result<u128, &'static str> {
        let mut budget = self.settlements[usize::from(p.settlement)].reserved;
        let mut settled = Vec::new();
        for o in &p.outcomes {
            let escrow = match self.escrows.get(&(p.settlement, o.dispute)) {
                Some(e) if e.state == EscrowState::Open && !settled.contains(&o.dispute) => e,
                _ => return Err("an outcome without an open escrow"),
            };
            if escrow.disputer != o.disputer {
                return Err("an outcome with the wrong disputer");
            }
            if escrow.amount != o.bond {
                return Err("an outcome with the wrong bond");
            }
            if o.refund.checked_add(o.pooled).and_then(|x| x.checked_add(o.burned)) != Some(o.bond) {
                return Err("an outcome that does not conserve its bond");
            }
            budget += o.pooled;
            budget = budget.checked_sub(o.reward).ok_or("a reward above the budget")?;
            settled.push(o.dispute);
        }
        Ok(budget)
    }

    /// What `call` must do; if it must succeed, the model moves as the contract must.
    pub fn apply(&mut self, call: &Call) -> Expectation {
        match call {
            Call::PostBond { by, settlement, dispute, amount } => {
                let (s, amount) = (usize::from(*settlement), *amount);
                if self.settlements[s].published.is_some() {
                    return fails("bond on a published settlement");
                }
                if amount == 0 {
                    return fails("zero bond");
                }
                if amount > MAX_BOND {
                    return fails("bond above 2^96 - 1");
                }
                if self.escrows.contains_key(&(*settlement, *dispute)) {
                    return fails("escrow exists");
                }
                self.transfer(Self::payer(*by), Party::Oracle, amount);
                self.escrows.insert(
                    (*settlement, *dispute),
                    Escrow { disputer: *by, amount, state: EscrowState::Open },
                );
                self.total_escrowed += amount;
                if !self.settlements[s].bonded {
                    let reserve = (amount * self.reward_bp / 10_000).min(self.pool).min(MAX_RESERVATION);
                    self.settlements[s].bonded = true;
                    self.settlements[s].reserved = reserve;
                    self.pool -= reserve;
                    self.total_reserved += reserve;
                }
                ok("bond escrowed")
            }
            Call::FundPool { by, amount } => {
                if *amount == 0 {
                    return fails("zero funding");
                }
                self.transfer(Party::Actor(*by), Party::Oracle, *amount);
                self.pool += amount;
                ok("pool funded")
            }
            Call::Publish(p) => self.publish(p),
            Call::PublishBatch(b) => self.publish_batch(b),
            Call::ReclaimBond { settlement, dispute, .. } => {
                if self.settlements[usize::from(*settlement)].published.is_none() {
                    return fails("reclaim before publication");
                }
                let Some(escrow) = self.escrows.get_mut(&(*settlement, *dispute)) else {
                    return fails("reclaim of no escrow");
                };
                if escrow.state != EscrowState::Open {
                    return fails("reclaim of a settled or reclaimed escrow");
                }
                escrow.state = EscrowState::Reclaimed;
                let (to, amount) = (escrow.disputer, escrow.amount);
                self.total_escrowed -= amount;
                self.pay(to, amount);
                ok("escrow reclaimed")
            }
            Call::Withdraw { by, to } => {
                let amount = self.credits[usize::from(by.0)];
                if amount == 0 {
                    return fails("nothing to withdraw");
                }
                if !self.accepts(*to) {
                    return fails("the recipient refuses the withdrawal");
                }
                self.credits[usize::from(by.0)] = 0;
                self.total_credits -= amount;
                self.transfer(Party::Oracle, *to, amount);
                ok("credit withdrawn")
            }
            Call::Arm { target, mode, .. } => {
                let i = usize::from(target.0);
                let has_code = target.kind() == ActorKind::Payee || self.delegated[i];
                if has_code {
                    self.modes[i] = *mode;
                }
                ok("armed (a call to an account without code does nothing)")
            }
            Call::Delegate { eoa, on } => {
                self.delegated[usize::from(eoa.0)] = *on;
                ok("delegation set")
            }
            Call::ProposeCommittee { by, members, threshold } => {
                if *by != self.owner {
                    return fails("proposal by a stranger");
                }
                let committee = Committee { members: members.clone(), threshold: *threshold };
                if !committee.is_valid() {
                    return fails("invalid committee");
                }
                self.pending_committee = Some((committee, self.now + self.delay));
                ok("committee proposed")
            }
            Call::CancelCommittee { by } => {
                if *by != self.owner {
                    return fails("cancel by a stranger");
                }
                if self.pending_committee.take().is_none() {
                    return fails("nothing to cancel");
                }
                ok("proposal cancelled")
            }
            Call::ApplyCommittee { .. } => match &self.pending_committee {
                None => fails("nothing to apply"),
                Some((_, eta)) if self.now < *eta => fails("committee not due"),
                Some(_) => {
                    let (committee, _) = self.pending_committee.take().expect("matched above");
                    self.previous_committee = Some(std::mem::replace(&mut self.committee, committee));
                    ok("committee applied")
                }
            },
            Call::TransferOwnership { by, to } => {
                if *by != self.owner {
                    return fails("transfer by a stranger");
                }
                self.pending_owner = *to;
                ok("ownership offered")
            }
            Call::AcceptOwnership { by } => {
                if self.pending_owner != Some(*by) {
                    return fails("accept by other than the pending owner");
                }
                self.owner = *by;
                self.pending_owner = None;
                ok("ownership accepted")
            }
            Call::RenounceOwnership { .. } => fails("ownership is never renounced"),
            Call::Warp { seconds } => {
                self.now += seconds;
                ok("time passes")
            }
        }
    }

    fn publish(&mut self, p: &Publication) -> Expectation {
        let s = usize::from(p.settlement);
        if self.settlements[s].published.is_some() {
            return fails("already published");
        }
        if p.value > U256::from(u128::MAX) {
            return fails("value above 2^128 - 1");
        }
        if let Err(why) = self.signatures_check(&p.signatures) {
            return fails(why);
        }
        let left = match self.outcomes_check(p) {
            Ok(left) => left,
            Err(why) => return fails(why),
        };
        // The budget `left` already counts the reservation that `record` takes.
        self.record(p.settlement, p.value);
        self.pool += left;
        for o in &p.outcomes {
            let escrow = self.escrows.get_mut(&(p.settlement, o.dispute)).expect("checked above");
            escrow.state = EscrowState::Settled;
            self.total_escrowed -= o.bond;
            self.total_burned += o.burned;
        }
        for o in &p.outcomes {
            self.pay(o.disputer, o.refund + o.reward);
        }
        ok("a valid report by a quorum of the committee in force")
    }

    fn publish_batch(&mut self, b: &BatchPublication) -> Expectation {
        if b.reports.is_empty() {
            return fails("an empty batch");
        }
        if b.packing != Packing::Whole {
            return fails("reports are not a whole number of 52-byte reports");
        }
        if let Err(why) = self.signatures_check(&b.signatures) {
            return fails(why);
        }
        match &b.signed {
            BatchSigned::Batch(signed) if *signed == b.reports => {}
            BatchSigned::Batch(_) => return fails("signatures of another batch"),
            BatchSigned::Report(_) => return fails("signatures of one report's digest, not the batch's"),
        }
        let mut published = 0;
        for r in &b.reports {
            if self.settlements[usize::from(r.settlement)].published.is_none() {
                let reserved = self.record(r.settlement, U256::from(r.value));
                self.pool += reserved;
                published += 1;
            }
        }
        if published == 0 {
            return ok("a valid batch whose every settlement was already published");
        }
        ok("a valid batch by a quorum of the committee in force")
    }

    /// Publishes an unpublished settlement's value now and takes its reservation off
    /// `totalReserved`: what the caller settles from it, or returns to the pool.
    fn record(&mut self, settlement: u8, value: U256) -> u128 {
        let settlement = &mut self.settlements[usize::from(settlement)];
        assert!(settlement.published.is_none(), "the model published settlement {settlement:?} twice");
        settlement.published = Some((value, self.now));
        let reserved = std::mem::take(&mut settlement.reserved);
        self.total_reserved -= reserved;
        reserved
    }

    /// How many settlements are published.
    pub fn published(&self) -> usize {
        self.settlements.iter().filter(|s| s.published.is_some()).count()
    }

    /// Σ of every balance the run tracks: constant, since ETH is neither made nor lost.
    pub fn total_eth(&self) -> u128 {
        self.balances.iter().sum::<u128>() + self.relayer_balance + self.oracle_balance
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::{BatchedReport, OutcomeSpec, SignatureSpec};

    fn members(n: usize) -> Vec<Address> {
        let mut members: Vec<Address> = world().keys.iter().take(n).map(|k| k.address()).collect();
        members.sort();
        members
    }

    fn model(reward_bp: u128) -> Model {
        Model::new(&Config {
            committee: Committee { members: members(4), threshold: 3 },
            delay: 60,
            reward_bp,
            delegated: [false, false],
            modes: [0, 0, 1, 0, 0],
            start: 1_000,
        })
    }

    /// A quorum (three of the four members) over the digest checked.
    fn quorum() -> Signatures {
        let specs = members(4)[..3]
            .iter()
            .map(|a| SignatureSpec {
                key: world().keys.iter().position(|k| k.address() == *a).unwrap() as u8,
                wrong_digest: false,
                high_s: false,
                bad_v: false,
            })
            .collect();
        Signatures { specs, extra_byte: false, truncated: false }
    }

    fn publication(settlement: u8, outcomes: Vec<OutcomeSpec>) -> Publication {
        Publication { settlement, value: U256::from(5), round: 0, outcomes, signatures: quorum() }
    }

    fn batched(settlement: u8, value: u128) -> BatchedReport {
        BatchedReport { settlement, value, round: 1 }
    }

    fn outcome(dispute: u8, disputer: u8, bond: u128, pooled: u128, reward: u128) -> OutcomeSpec {
        OutcomeSpec {
            dispute,
            disputer: ActorId(disputer),
            bond,
            refund: 0,
            reward,
            pooled,
            burned: bond - pooled,
        }
    }

    #[test]
    fn a_committee_needs_more_than_two_thirds_ascending_nonzero_members() {
        let valid = |n: usize, threshold: u64| Committee { members: members(n), threshold }.is_valid();
        assert!(valid(1, 1) && valid(3, 3) && valid(4, 3) && valid(5, 4));
        assert!(!valid(3, 2) && !valid(4, 2) && !valid(4, 5) && !valid(4, 0) && !valid(0, 0));
        let mut descending = members(4);
        descending.reverse();
        assert!(!Committee { members: descending, threshold: 3 }.is_valid());
        let mut with_zero = members(3);
        with_zero.insert(0, Address::ZERO);
        assert!(!Committee { members: with_zero, threshold: 4 }.is_valid());
    }

    #[test]
    fn the_first_bond_reserves_its_reward_capped_by_the_pool() {
        let mut m = model(5_000);
        assert!(m.apply(&Call::FundPool { by: ActorId(0), amount: 300 }).succeeds);
        assert!(
            m.apply(&Call::PostBond { by: ActorId(1), settlement: 0, dispute: 0, amount: 1_000 }).succeeds
        );
        assert_eq!((m.settlements[0].reserved, m.pool, m.total_reserved), (300, 0, 300));
        assert!(m.apply(&Call::FundPool { by: ActorId(0), amount: 10_000 }).succeeds);
        assert!(
            m.apply(&Call::PostBond { by: ActorId(2), settlement: 0, dispute: 1, amount: 1_000 }).succeeds
        );
        assert_eq!(m.settlements[0].reserved, 300, "only the first bond reserves");
        assert!(!m.apply(&Call::PostBond { by: ActorId(2), settlement: 0, dispute: 1, amount: 5 }).succeeds);
    }

    #[test]
    fn rewards_come_from_the_budget_in_report_order() {
        let mut m = model(0);
        for (dispute, by) in [(0, 1), (1, 2)] {
            assert!(
                m.apply(&Call::PostBond { by: ActorId(by), settlement: 3, dispute, amount: 100 }).succeeds
            );
        }
        // The second reward is paid from the first outcome's pooled half: in this order only.
        let reversed = publication(3, vec![outcome(1, 2, 100, 0, 50), outcome(0, 1, 100, 50, 0)]);
        assert_eq!(m.outcomes_check(&reversed), Err("a reward above the budget"));
        let ordered = publication(3, vec![outcome(0, 1, 100, 50, 0), outcome(1, 2, 100, 0, 50)]);
        assert_eq!(m.outcomes_check(&ordered), Ok(0));
        assert!(m.apply(&Call::Publish(ordered)).succeeds);
        assert_eq!((m.total_escrowed, m.total_burned, m.pool), (0, 150, 0));
        assert!(!m.apply(&Call::ReclaimBond { by: ActorId(0), settlement: 3, dispute: 0 }).succeeds);
    }

    #[test]
    fn a_refused_payout_is_credited_and_withdrawn_only_to_a_taker() {
        let mut m = model(0);
        let payee = ActorId(5); // armed in mode 1: it reverts
        assert!(m.apply(&Call::PostBond { by: payee, settlement: 0, dispute: 0, amount: 40 }).succeeds);
        let report = publication(0, vec![OutcomeSpec { refund: 40, burned: 0, ..outcome(0, 5, 40, 0, 0) }]);
        assert!(m.apply(&Call::Publish(report)).succeeds);
        assert_eq!((m.credits[5], m.total_credits, m.balances[5]), (40, 40, 0));
        assert!(!m.apply(&Call::Withdraw { by: payee, to: Party::Actor(payee) }).succeeds);
        assert!(!m.apply(&Call::Withdraw { by: payee, to: Party::Oracle }).succeeds);
        assert!(m.apply(&Call::Withdraw { by: payee, to: Party::Relayer }).succeeds);
        // The relayer paid the contract's bond (`Payee.post`) and now takes its refund.
        assert_eq!((m.credits[5], m.relayer_balance), (0, START_BALANCE));
    }

    #[test]
    fn a_batch_publishes_each_unpublished_settlement_once_and_releases_its_reservation() {
        let mut m = model(5_000);
        assert!(m.apply(&Call::FundPool { by: ActorId(0), amount: 1_000 }).succeeds);
        assert!(m.apply(&Call::PostBond { by: ActorId(1), settlement: 2, dispute: 0, amount: 600 }).succeeds);
        assert_eq!((m.pool, m.total_reserved), (700, 300));
        assert!(m.apply(&Call::Publish(publication(4, Vec::new()))).succeeds);
        let published_at = m.now;
        m.apply(&Call::Warp { seconds: 10 });
        let reports = vec![batched(2, u128::MAX), batched(4, 9), batched(2, 1), batched(6, 0)];
        let batch = BatchPublication::of(reports, quorum());
        assert_eq!(
            m.apply(&Call::PublishBatch(batch.clone())).because,
            "a valid batch by a quorum of the committee in force"
        );
        let now = m.now;
        assert_eq!(
            m.settlements[2].published,
            Some((U256::from(u128::MAX), now)),
            "the first report of 2 wins"
        );
        assert_eq!(m.settlements[4].published, Some((U256::from(5), published_at)), "4 is skipped");
        assert_eq!(m.settlements[6].published, Some((U256::ZERO, now)));
        assert_eq!(
            (m.pool, m.total_reserved, m.total_escrowed, m.settlements[2].reserved),
            (1_000, 0, 600, 0)
        );
        assert_eq!(
            m.apply(&Call::PublishBatch(batch)).because,
            "a valid batch whose every settlement was already published"
        );
        assert!(m.apply(&Call::ReclaimBond { by: ActorId(0), settlement: 2, dispute: 0 }).succeeds);
        assert_eq!((m.total_escrowed, m.balances[1]), (0, START_BALANCE));
    }

    #[test]
    fn a_batch_signed_over_anything_else_or_badly_packed_publishes_nothing() {
        let mut m = model(0);
        let reports = vec![batched(0, 1), batched(1, 2)];
        let spoiled = [
            BatchPublication {
                packing: Packing::ExtraByte,
                ..BatchPublication::of(reports.clone(), quorum())
            },
            BatchPublication {
                packing: Packing::MissingByte,
                ..BatchPublication::of(reports.clone(), quorum())
            },
            BatchPublication::of(Vec::new(), quorum()),
            BatchPublication {
                signed: BatchSigned::Batch(reports[..1].to_vec()),
                ..BatchPublication::of(reports.clone(), quorum())
            },
            BatchPublication {
                signed: BatchSigned::Report(reports[0]),
                ..BatchPublication::of(reports[..1].to_vec(), quorum())
            },
            BatchPublication::of(reports.clone(), Signatures { truncated: true, ..quorum() }),
        ];
        for batch in spoiled {
            assert!(!m.apply(&Call::PublishBatch(batch.clone())).succeeds, "{batch:?} published");
        }
        assert!(m.settlements.iter().all(|s| s.published.is_none()));
    }
}
