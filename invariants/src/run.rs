//! One run: the contract deployed in revm beside the [`Model`]; every call goes to both, and
//! after each the two must agree and the invariants must hold.

use std::sync::OnceLock;

use alloy_primitives::{Address, Bytes, U256};
use alloy_sol_types::{SolCall, SolConstructor, SolError, SolInterface};

use crate::artifact::{Bytecodes, PNToken, PNVault, Payee, SettlementOracle as Oracle};
use crate::call::{BatchedReport, Call, OutcomeSpec, Packing, Party, Publication};
use crate::chain::{Chain, Outcome};
use crate::model::{Committee, Config, EscrowState, Expectation, Model, START_BALANCE};
use crate::plan::{BatchPlan, PublishPlan, ReportDefect, SignatureDefect, SignedPick, SignerPick, ValuePick};
use crate::world::{ActorId, ActorKind, SETTLEMENTS, dispute_id, settlement_id, world};
use crate::{invariants, sign, stats};

fn bytecodes() -> &'static Bytecodes {
    static CODE: OnceLock<Bytecodes> = OnceLock::new();
    CODE.get_or_init(|| Bytecodes::load().unwrap_or_else(|e| panic!("{e}")))
}

/// Where the oracle's creation code was read from.
pub fn oracle_artifact() -> &'static std::path::Path {
    &bytecodes().oracle_path
}

/// Deploys `SettlementOracle` as the relayer's first deployment (at `world().oracle`, the
/// address the reports' EIP-712 domain names), owned by Alice, with `committee` in force.
pub fn deploy_oracle(chain: &mut Chain, committee: &Committee, delay: u64, reward_bp: u128) -> Address {
    let w = world();
    let args = Oracle::constructorCall {
        initialOwner: ActorId(0).address(),
        members: committee.members.clone(),
        committeeThreshold: U256::from(committee.threshold),
        committeeDelaySecs: U256::from(delay),
        rewardBasisPoints: U256::from(reward_bp),
    }
    .abi_encode();
    let init: Bytes = [bytecodes().oracle.as_ref(), &args].concat().into();
    let oracle =
        chain.deploy(w.relayer.address(), init).unwrap_or_else(|o| panic!("oracle deployment failed: {o:?}"));
    assert_eq!(oracle, w.oracle, "the oracle is the relayer's first deployment");
    oracle
}

/// The EVM and the model, in step.
#[derive(Debug)]
pub struct Run {
    pub chain: Chain,
    pub model: Model,
}

impl Drop for Run {
    fn drop(&mut self) {
        stats::ORACLE.count_chain(&self.chain);
    }
}

impl Run {
    /// Deploys the oracle, the delegation target and the three `Payee` actors as `config` says,
    /// delegates and arms, and checks that the chain starts where the model does.
    pub fn deploy(config: &Config) -> Self {
        let w = world();
        let code = bytecodes();
        let mut funded: Vec<Address> = ActorId::all().filter(|a| a.is_eoa()).map(ActorId::address).collect();
        funded.push(w.relayer.address());
        let mut chain = Chain::new(&funded, U256::from(START_BALANCE), config.start);
        let relayer = w.relayer.address();
        deploy_oracle(&mut chain, &config.committee, config.delay, config.reward_bp);
        for expected in [w.payee_impl, w.actors[5], w.actors[6], w.actors[7]] {
            let payee = chain.deploy(relayer, code.payee.clone()).expect("Payee deploys");
            assert_eq!(payee, expected, "payees are deployed in order");
        }
        stats::ORACLE.count_run();
        let mut run = Self { chain, model: Model::new(config) };
        for (i, on) in config.delegated.iter().enumerate() {
            if *on {
                let delegated = run.execute(&Call::Delegate { eoa: ActorId(3 + i as u8), on: true });
                assert!(delegated.is_success(), "setup: delegation failed: {delegated:?}");
            }
        }
        for (i, mode) in config.modes.iter().enumerate() {
            let target = ActorId(3 + i as u8);
            if target.kind() == ActorKind::Payee || config.delegated[i] {
                let armed = run.execute(&Call::Arm { target, mode: *mode, settlement: 0, dispute: 0 });
                assert!(armed.is_success(), "setup: arming failed: {armed:?}");
            }
        }
        invariants::check(&mut run.chain, &run.model, "deployment");
        run
    }

    /// Runs `call` on the model and the chain; panics unless they agree and every invariant
    /// holds afterwards. What the model expected (and the contract did).
    pub fn step(&mut self, call: &Call) -> Expectation {
        let m = &self.model;
        let (credits, published, reserved) = (m.total_credits, m.published(), m.total_reserved);
        let expected = self.model.apply(call);
        let m = &self.model;
        let effects = stats::Effects {
            credited: m.total_credits > credits,
            published: m.published() - published,
            released: m.total_reserved < reserved,
        };
        stats::count_call(call, &expected, effects);
        let outcome = self.execute(call);
        must_agree(&outcome, &expected, call);
        invariants::check(&mut self.chain, &self.model, &format!("{call:?}"));
        expected
    }

    /// Sends `call` to the chain.
    pub fn execute(&mut self, call: &Call) -> Outcome {
        let w = world();
        let (oracle, relayer) = (w.oracle, w.relayer.address());
        let (s, d) = (settlement_id, dispute_id);
        match call {
            Call::PostBond { by, settlement, dispute, amount } => {
                let value = U256::from(*amount);
                if by.is_eoa() {
                    let data = Oracle::postBondCall { settlementId: s(*settlement), disputeId: d(*dispute) };
                    self.send(by.address(), oracle, value, &data)
                } else {
                    let data = Payee::postCall { settlementId_: s(*settlement), disputeId_: d(*dispute) };
                    self.send(relayer, by.address(), value, &data)
                }
            }
            Call::FundPool { by, amount } => {
                self.send(by.address(), oracle, U256::from(*amount), &Oracle::fundPoolCall {})
            }
            Call::Publish(p) => {
                let data = Oracle::publishCall { report: sign::report(p), signatures: sign::signatures(p) };
                self.send(relayer, oracle, U256::ZERO, &data)
            }
            Call::PublishBatch(b) => {
                let data = Oracle::publishBatchCall {
                    reports: sign::packed_reports(b),
                    signatures: sign::batch_signatures(b),
                };
                self.send(relayer, oracle, U256::ZERO, &data)
            }
            Call::ReclaimBond { by, settlement, dispute } => {
                let data = Oracle::reclaimBondCall { settlementId: s(*settlement), disputeId: d(*dispute) };
                self.send(by.address(), oracle, U256::ZERO, &data)
            }
            Call::Withdraw { by, to } => {
                if by.is_eoa() {
                    self.send(by.address(), oracle, U256::ZERO, &Oracle::withdrawCall { to: to.address() })
                } else {
                    self.send(relayer, by.address(), U256::ZERO, &Payee::withdrawToCall { to: to.address() })
                }
            }
            Call::Arm { target, mode, settlement, dispute } => {
                let data = Payee::armCall {
                    oracle_: oracle,
                    mode_: *mode,
                    settlementId_: s(*settlement),
                    disputeId_: d(*dispute),
                };
                self.send(relayer, target.address(), U256::ZERO, &data)
            }
            Call::Delegate { eoa, on } => {
                let key = eoa.key().expect("only EOAs delegate");
                self.chain.delegate(relayer, key, if *on { w.payee_impl } else { Address::ZERO })
            }
            Call::ProposeCommittee { by, members, threshold } => {
                let data = Oracle::proposeCommitteeCall {
                    newMembers: members.clone(),
                    newThreshold: U256::from(*threshold),
                };
                self.send(by.address(), oracle, U256::ZERO, &data)
            }
            Call::CancelCommittee { by } => {
                self.send(by.address(), oracle, U256::ZERO, &Oracle::cancelCommitteeCall {})
            }
            Call::ApplyCommittee { by } => {
                self.send(by.address(), oracle, U256::ZERO, &Oracle::applyCommitteeCall {})
            }
            Call::TransferOwnership { by, to } => {
                let new_owner = to.map_or(Address::ZERO, ActorId::address);
                self.send(
                    by.address(),
                    oracle,
                    U256::ZERO,
                    &Oracle::transferOwnershipCall { newOwner: new_owner },
                )
            }
            Call::AcceptOwnership { by } => {
                self.send(by.address(), oracle, U256::ZERO, &Oracle::acceptOwnershipCall {})
            }
            Call::RenounceOwnership { by } => {
                self.send(by.address(), oracle, U256::ZERO, &Oracle::renounceOwnershipCall {})
            }
            Call::Warp { seconds } => {
                let now = self.chain.timestamp() + seconds;
                self.chain.set_timestamp(now);
                Outcome::Success(Bytes::new())
            }
        }
    }

    fn send(&mut self, from: Address, to: Address, value: U256, call: &impl SolCall) -> Outcome {
        self.chain.transact(from, to, value, call.abi_encode().into())
    }

    /// Ends the run: publishes every unpublished settlement by the committee in force (those
    /// without escrows in one valid batch, the others each with a valid report that settles the
    /// escrows of even disputes, so the others are refused), reclaims every escrow left,
    /// withdraws every credit to the relayer, and checks that nothing is left but the pool and
    /// the burned: every escrow ended as exactly one of settled or reclaimed, and not one wei
    /// was made or lost.
    pub fn drain(&mut self) {
        let (batched, alone): (Vec<u8>, Vec<u8>) = (0..SETTLEMENTS as u8)
            .filter(|s| self.model.settlements[usize::from(*s)].published.is_none())
            .partition(|s| self.model.open_escrows(*s).is_empty());
        if !batched.is_empty() {
            let plan = BatchPlan {
                reports: batched
                    .iter()
                    .map(|s| BatchedReport { settlement: *s, value: u128::from(*s) * 1_000, round: 0 })
                    .collect(),
                packing: Packing::Whole,
                signed: SignedPick::Own,
                signers: SignerPick::Quorum { start: 0 },
                signature_defect: SignatureDefect::None,
            };
            let published = self.step(&Call::PublishBatch(plan.resolve(&self.model)));
            assert!(published.succeeds, "drain: the model refused a valid batch ({})", published.because);
        }
        for settlement in alone {
            let plan = PublishPlan {
                settlement,
                value: ValuePick::Of(u128::from(settlement) * 1_000),
                round: 0,
                picks: Vec::new(),
                defect: ReportDefect::None,
                signers: SignerPick::Quorum { start: settlement },
                signature_defect: SignatureDefect::None,
            };
            let mut publication: Publication = plan.resolve(&self.model);
            let mut budget = self.model.settlements[usize::from(settlement)].reserved;
            for (dispute, escrow) in self.model.open_escrows(settlement) {
                if dispute % 2 == 1 {
                    continue;
                }
                let bond = escrow.amount;
                let (refund, pooled) = (bond / 3, bond / 3);
                budget += pooled;
                let reward = budget / 2;
                budget -= reward;
                publication.outcomes.push(OutcomeSpec::conserving(
                    dispute,
                    escrow.disputer,
                    bond,
                    refund,
                    pooled,
                    reward,
                ));
            }
            let published = self.step(&Call::Publish(publication));
            assert!(published.succeeds, "drain: the model refused a valid report ({})", published.because);
        }
        let open: Vec<(u8, u8)> = self
            .model
            .escrows
            .iter()
            .filter(|(_, e)| e.state == EscrowState::Open)
            .map(|(k, _)| *k)
            .collect();
        for (settlement, dispute) in open {
            let reclaimed = self.step(&Call::ReclaimBond { by: ActorId(1), settlement, dispute });
            assert!(reclaimed.succeeds, "drain: escrow ({settlement}, {dispute}) was not reclaimable");
        }
        for by in ActorId::all() {
            if self.model.credits[usize::from(by.0)] > 0 {
                let withdrawn = self.step(&Call::Withdraw { by, to: Party::Relayer });
                assert!(withdrawn.succeeds, "drain: actor {} could not withdraw its credit", by.0);
            }
        }
        let m = &self.model;
        for ((s, d), escrow) in &m.escrows {
            assert!(
                matches!(escrow.state, EscrowState::Settled | EscrowState::Reclaimed),
                "escrow ({s}, {d}) ended neither settled nor reclaimed: {escrow:?}"
            );
        }
        assert_eq!((m.total_escrowed, m.total_reserved, m.total_credits), (0, 0, 0), "the drained ledger");
        // The five EOAs and the relayer were funded; contracts start empty.
        let funded = ActorId::all().filter(|a| a.is_eoa()).count() as u128 + 1;
        let start = START_BALANCE * funded;
        assert_eq!(m.total_eth(), start, "ETH was made or lost");
        let mut on_chain = self.chain.balance(world().oracle) + self.chain.balance(world().relayer.address());
        for actor in ActorId::all() {
            on_chain += self.chain.balance(actor.address());
        }
        assert_eq!(on_chain, U256::from(start), "ETH on chain was made or lost");
    }
}

/// Panics unless the contract did what the model says it must, with the call, the model's
/// reason and the revert decoded.
pub fn must_agree(outcome: &Outcome, expected: &Expectation, call: &dyn std::fmt::Debug) {
    if outcome.is_success() != expected.succeeds {
        panic!(
            "the contract {} where the model says it must {} ({}): {call:?}{}",
            if outcome.is_success() { "accepted a call" } else { "refused a call" },
            if expected.succeeds { "succeed" } else { "fail" },
            expected.because,
            explain(outcome),
        );
    }
}

/// The revert, decoded where the oracle's, the vault's or the tokens' ABI knows it.
pub fn explain(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Success(_) => String::new(),
        Outcome::Revert(data) => {
            if let Ok(error) = Oracle::SettlementOracleErrors::abi_decode(data) {
                format!("; it reverted with {error:?}")
            } else if let Ok(error) = PNVault::PNVaultErrors::abi_decode(data) {
                format!("; it reverted with {error:?}")
            } else if let Ok(error) = PNToken::PNTokenErrors::abi_decode(data) {
                format!("; it reverted with {error:?}")
            } else if let Ok(reason) = alloy_sol_types::Revert::abi_decode(data) {
                format!("; it reverted with {reason:?}")
            } else if let Ok(panic) = alloy_sol_types::Panic::abi_decode(data) {
                format!("; it reverted with {panic:?} (0x11: arithmetic over- or underflow)")
            } else {
                format!("; it reverted with 0x{}", alloy_primitives::hex::encode(data))
            }
        }
        Outcome::Halt(reason) => format!("; it halted: {reason}"),
    }
}
