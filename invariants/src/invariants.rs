//! The invariants, read through the contract's own getters after every call and compared with
//! the model (see the crate docs for why each matters).

use alloy_primitives::{Address, U256};

use crate::artifact::SettlementOracle as Oracle;
use crate::chain::Chain;
use crate::model::{EscrowState, Model};
use crate::world::{ActorId, SETTLEMENTS, dispute_id, settlement_id, world};

/// Panics with what the run was doing.
macro_rules! check {
    ($cond:expr, $context:expr, $($what:tt)+) => {
        if !$cond {
            panic!("invariant broken after {}: {}", $context, format!($($what)+));
        }
    };
}

fn word(x: u128) -> U256 {
    U256::from(x)
}

/// Every invariant, against the chain's own getters and balances; `after` names the call.
pub fn check(chain: &mut Chain, m: &Model, after: &str) {
    let w = world();
    let o = w.oracle;

    // Solvency: every wei the contract holds is accounted for, to the wei.
    let pool = chain.view(o, &Oracle::poolCall {});
    let reserved = chain.view(o, &Oracle::totalReservedCall {});
    let escrowed = chain.view(o, &Oracle::totalEscrowedCall {});
    let credits = chain.view(o, &Oracle::totalCreditsCall {});
    let burned = chain.view(o, &Oracle::totalBurnedCall {});
    let balance = chain.balance(o);
    check!(
        balance == pool + reserved + escrowed + credits + burned,
        after,
        "balance {balance} != pool {pool} + totalReserved {reserved} + totalEscrowed {escrowed} + totalCredits {credits} + totalBurned {burned}"
    );
    let ledger = [pool, reserved, escrowed, credits, burned];
    let modelled = [m.pool, m.total_reserved, m.total_escrowed, m.total_credits, m.total_burned].map(word);
    check!(
        ledger == modelled,
        after,
        "[pool, totalReserved, totalEscrowed, totalCredits, totalBurned] is {ledger:?}, the model says {modelled:?}"
    );

    // Settlements: published values never change; reservations add up to totalReserved.
    let mut reservations = U256::ZERO;
    for i in 0..SETTLEMENTS as u8 {
        let id = settlement_id(i);
        let got = chain.view(o, &Oracle::getSettlementCall { id });
        let want = m.settlements[usize::from(i)].published.map_or((U256::ZERO, 0, 0), |(v, at)| (v, at, 1));
        check!(
            (got.value, got.publishedAt, got.status) == want,
            after,
            "settlement {i} reads (value, publishedAt, status) = ({}, {}, {}), the model says {want:?}",
            got.value,
            got.publishedAt,
            got.status
        );
        let reservation = chain.view(o, &Oracle::reservationCall { id });
        check!(
            reservation == word(m.settlements[usize::from(i)].reserved),
            after,
            "settlement {i} reserves {reservation}, the model says {}",
            m.settlements[usize::from(i)].reserved
        );
        reservations += reservation;
    }
    check!(reservations == reserved, after, "Σ reservation(id) = {reservations} != totalReserved {reserved}");

    // Escrows: each is open as posted, or gone once settled or reclaimed.
    for ((si, di), escrow) in &m.escrows {
        let got = chain
            .view(o, &Oracle::getEscrowCall { settlementId: settlement_id(*si), disputeId: dispute_id(*di) });
        let want = match escrow.state {
            EscrowState::Open => (escrow.disputer.address(), word(escrow.amount)),
            EscrowState::Settled | EscrowState::Reclaimed => (Address::ZERO, U256::ZERO),
        };
        check!(
            (got.disputer, got.amount) == want,
            after,
            "escrow ({si}, {di}) reads ({}, {}), the model says {:?} {want:?}",
            got.disputer,
            got.amount,
            escrow.state
        );
    }

    // Credits and every balance, to the wei.
    let mut sum = U256::ZERO;
    for actor in ActorId::all() {
        let got = chain.view(o, &Oracle::creditsCall(actor.address()));
        check!(
            got == word(m.credits[usize::from(actor.0)]),
            after,
            "credits of actor {} read {got}, the model says {}",
            actor.0,
            m.credits[usize::from(actor.0)]
        );
        sum += got;
        let balance = chain.balance(actor.address());
        check!(
            balance == word(m.balances[usize::from(actor.0)]),
            after,
            "actor {} holds {balance}, the model says {}",
            actor.0,
            m.balances[usize::from(actor.0)]
        );
    }
    check!(sum == credits, after, "Σ credits = {sum} != totalCredits {credits}");
    let relayer = chain.balance(w.relayer.address());
    check!(
        relayer == word(m.relayer_balance),
        after,
        "the relayer holds {relayer}, the model says {}",
        m.relayer_balance
    );
    check!(
        balance == word(m.oracle_balance),
        after,
        "the oracle holds {balance}, the model says {}",
        m.oracle_balance
    );

    // Owner, committee in force, pending committee.
    let owner = chain.view(o, &Oracle::ownerCall {});
    let pending_owner = chain.view(o, &Oracle::pendingOwnerCall {});
    let want_pending = m.pending_owner.map_or(Address::ZERO, ActorId::address);
    check!(
        (owner, pending_owner) == (m.owner.address(), want_pending),
        after,
        "(owner, pendingOwner) = ({owner}, {pending_owner}), the model says ({}, {want_pending})",
        m.owner.address()
    );
    let committee = chain.view(o, &Oracle::getCommitteeCall {});
    check!(
        committee.members == m.committee.members && committee._1 == U256::from(m.committee.threshold),
        after,
        "the committee in force is {:?} of {}, the model says {:?}",
        committee.members,
        committee._1,
        m.committee
    );
    let pending = chain.view(o, &Oracle::getPendingCommitteeCall {});
    let want = m.pending_committee.as_ref().map_or((Vec::new(), U256::ZERO, U256::ZERO), |(c, eta)| {
        (c.members.clone(), U256::from(c.threshold), U256::from(*eta))
    });
    check!(
        (pending.members.clone(), pending._1, pending._2) == want,
        after,
        "the pending committee is {:?} of {} at {}, the model says {want:?}",
        pending.members,
        pending._1,
        pending._2
    );

    // Delegations are real EIP-7702 code: 0xef0100 ‖ Payee.
    for eoa in [ActorId(3), ActorId(4)] {
        let code = chain.code(eoa.address());
        let want: Vec<u8> = if m.delegated[usize::from(eoa.0)] {
            [&[0xef, 0x01, 0x00][..], w.payee_impl.as_slice()].concat()
        } else {
            Vec::new()
        };
        check!(
            code.as_ref() == want.as_slice(),
            after,
            "actor {} has code {code}, the model says 0x{}",
            eoa.0,
            alloy_primitives::hex::encode(&want)
        );
    }
}
