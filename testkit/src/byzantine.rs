//! Byzantine members as real processes: the strategies a faulty member runs, chosen per member
//! at start with `fixd run --byzantine <strategy>[,<strategy>...]`. They exist only with this
//! crate's cargo feature `byzantine` (which turns on `fixd-node/byzantine`, the node's hook
//! points in `fixd_node::byzantine`); only the `fixd` package's end-to-end tests enable it, as a
//! dev-dependency feature. The release build, the Docker image and `scripts/devnet.sh` build
//! without it: there [`ByzantineArgs`] has no flag and [`start`] is `fixd_node::node::start`.
//!
//! The strategies live here, not in the node, because the dependency runs test kit → node: the
//! node only offers hook points (a trait), and this crate implements them.
//!
//! ```text
//!   fixd run --byzantine equivocate ─▶ start ─▶ Misconduct (a fixd_node::byzantine::Conduct)
//!                                              └▶ fixd_node::node::start_byzantine
//! ```
//!
//! | strategy | what the member does | what the honest members must do |
//! |---|---|---|
//! | `equivocate` | besides each proposal and vote it signs, gossips a second one for the same slot (its proposal's value plus 1 wei; a vote for nil instead of a value, or the reverse), bypassing its store's one-signature-per-slot guard | keep the pair as equivocation evidence, ignore it, and decide without it |
//! | `withhold` | signs its votes and report signatures but never sends them, by gossip or catch-up | decide and publish with the other members' signatures |
//! | `partial` | gossips no votes, and shows them in catch-up only to the members of `--byzantine-shows-to` (default: the next member) | the same |
//! | `wrong-value` | proposes the median plus 1% when it leads a round (the `wrong-median` test fault proposes plus 1 wei) | refuse to prevote it; a later round certifies the true median |
//! | `flood` | after its first prevote of a settlement, gossips 10,000 validly signed votes for far-future rounds and review votes for disputes nobody filed | hold no more than the written bound, and decide |
//! | `late-disputes` | holds the disputes and rulings it relays, and releases them [`LATE_RELEASE`] later (hidden from catch-up meanwhile) | hold them as late relays, counted only if the committee's report takes them |
//! | `foreign-reports` | instead of its signature of the decided final report, signs and gossips one of a report for another value (plus 1%); never shows the true one; likewise signs every batch with each report's value 1% off | ignore it, and publish with the other members' signatures, in batches of their own |
//!
//! Each strategy logs `byzantine <strategy>: <what it does>` the first time it acts on a
//! settlement; the tests wait for these lines.

/// `fixd run`'s Byzantine flags; without the feature `byzantine`, none.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct ByzantineArgs {
    /// Run this member as a Byzantine one (test builds with the cargo feature `byzantine`
    /// only): equivocate, withhold, partial, wrong-value, flood, late-disputes or
    /// foreign-reports; several are comma-separated or repeated.
    #[cfg(feature = "byzantine")]
    #[arg(long = "byzantine", value_enum, value_delimiter = ',')]
    pub strategies: Vec<Strategy>,
    /// With `--byzantine partial`: the members (genesis indices, from 0) this member shows its
    /// votes to in catch-up; default: the next member.
    #[cfg(feature = "byzantine")]
    #[arg(long = "byzantine-shows-to", value_delimiter = ',', requires = "strategies")]
    pub shows_to: Vec<usize>,
}

/// Starts the node: honest, or with the strategies of `args` in a build with the feature
/// `byzantine`.
pub async fn start(
    config: fixd_node::config::Config,
    args: &ByzantineArgs,
) -> anyhow::Result<fixd_node::node::NodeHandle> {
    #[cfg(feature = "byzantine")]
    if !args.strategies.is_empty() {
        let conduct = strategies::Misconduct::new(&config, args)?;
        return fixd_node::node::start_byzantine(config, std::sync::Arc::new(conduct)).await;
    }
    let _ = args;
    fixd_node::node::start(config).await
}

#[cfg(feature = "byzantine")]
pub use strategies::{LATE_RELEASE, Misconduct, Strategy};

#[cfg(feature = "byzantine")]
mod strategies {
    use std::collections::HashSet;
    use std::sync::Mutex;
    use std::time::Duration;

    use alloy::primitives::B256;
    use fixd_node::byzantine::{Conduct, Signer};
    use fixd_proto::gossip::GossipMessage;
    use fixd_proto::signing::PublicKey;
    use fixd_proto::types::certificate::{DecisionId, Proposal, RoundProposal, Vote, VoteStep};
    use fixd_proto::value::Wad;

    use super::ByzantineArgs;

    /// How long `late-disputes` holds a relay: far past any receiver's `max_clock_skew`.
    pub const LATE_RELEASE: Duration = Duration::from_secs(30);

    /// One way of being faulty.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
    pub enum Strategy {
        /// Sign and gossip a second, different proposal and vote for every slot.
        Equivocate,
        /// Sign votes and report signatures, never send them.
        Withhold,
        /// Gossip no votes; show them in catch-up only to --byzantine-shows-to.
        Partial,
        /// Propose the median plus 1% when leading a round.
        WrongValue,
        /// Flood far-future votes and review votes for unknown disputes.
        Flood,
        /// Release relayed disputes and rulings late.
        LateDisputes,
        /// Sign and gossip report and batch signatures for other values than the decided
        /// reports.
        ForeignReports,
    }

    impl std::fmt::Display for Strategy {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            use clap::ValueEnum;
            let value = self.to_possible_value().expect("no strategy is skipped");
            f.write_str(value.get_name())
        }
    }

    /// A member running one or more [`Strategy`]s.
    #[derive(Debug)]
    pub struct Misconduct {
        strategies: Vec<Strategy>,
        /// This member's key: only its own messages are tampered with.
        me: PublicKey,
        /// The members `partial` shows its votes to.
        shows_to: Vec<usize>,
        /// (strategy, settlement) pairs already logged, and settlements already flooded.
        logged: Mutex<HashSet<(Strategy, B256)>>,
    }

    impl Misconduct {
        /// The strategies of `args` for the member whose keys `config` names.
        pub fn new(config: &fixd_node::config::Config, args: &ByzantineArgs) -> anyhow::Result<Self> {
            let keys = fixd_node::keys::Keys::read(&config.keys_dir)?;
            let genesis = fixd_node::genesis::load(&config.genesis)?;
            let me = fixd_node::genesis::member_index(&genesis, &keys, &config.genesis)?;
            let n = genesis.members.len();
            if let Some(k) = args.shows_to.iter().find(|&&k| k >= n) {
                anyhow::bail!(
                    "--byzantine-shows-to {k} is not a member: the genesis has members 0 to {}",
                    n - 1
                );
            }
            let shows_to = if args.shows_to.is_empty() { vec![(me + 1) % n] } else { args.shows_to.clone() };
            Ok(Misconduct::with(args.strategies.clone(), keys.public_key(), shows_to))
        }

        /// `strategies` for the member whose ed25519 key is `me`; `partial` shows its votes to
        /// the members `shows_to`.
        pub fn with(strategies: Vec<Strategy>, me: PublicKey, shows_to: Vec<usize>) -> Self {
            Misconduct { strategies, me, shows_to, logged: Mutex::new(HashSet::new()) }
        }

        fn runs(&self, strategy: Strategy) -> bool {
            self.strategies.contains(&strategy)
        }

        /// Whether `strategy` acts on settlement `id` for the first time; logs what it does then.
        fn first(&self, strategy: Strategy, id: &B256, doing: &str) -> bool {
            let first = self.logged.lock().expect("byzantine log lock").insert((strategy, *id));
            if first {
                tracing::warn!(%strategy, settlement = %id, "byzantine {strategy}: {doing}");
            }
            first
        }

        /// `equivocate`: a second vote for the vote's slot.
        fn twin_vote(&self, signer: &Signer, vote: &Vote) -> GossipMessage {
            let proposal_hash = match vote.proposal_hash {
                Some(_) => None,
                None => Some(B256::repeat_byte(0xe9)),
            };
            GossipMessage::Vote(signer.sign(Vote { proposal_hash, ..vote.clone() }))
        }

        /// `equivocate`: a second round proposal for the proposal's slot, its value 1 wei more.
        fn twin_proposal(&self, signer: &Signer, proposal: &RoundProposal) -> Option<GossipMessage> {
            let inner = &proposal.proposal;
            // A re-proposal carries another leader's candidate, which this member cannot re-sign.
            if inner.signer != self.me {
                return None;
            }
            let candidate = Proposal { value: plus(inner.payload.value, 1), ..inner.payload.clone() };
            let twin = RoundProposal { proposal: signer.sign(candidate), ..proposal.clone() };
            Some(GossipMessage::proposal(signer.sign(twin)))
        }
    }

    /// `value` plus `wei`, or plus 1% when `wei` is 0.
    fn plus(value: Wad, wei: u128) -> Wad {
        let raw = value.raw();
        let delta = if wei == 0 { (raw / 100).max(1) } else { wei };
        Wad::from_raw(raw.saturating_add(delta))
    }

    impl Conduct for Misconduct {
        fn propose(&self, mut proposal: Proposal) -> Proposal {
            if self.runs(Strategy::WrongValue) {
                let wrong = plus(proposal.value, 0);
                self.first(
                    Strategy::WrongValue,
                    &proposal.settlement_id,
                    &format!("proposing {wrong} instead of the median {}", proposal.value),
                );
                proposal.value = wrong;
            }
            proposal
        }

        fn outgoing(&self, signer: &Signer, message: GossipMessage) -> Vec<(Duration, GossipMessage)> {
            if *message.signer() != self.me {
                return vec![(Duration::ZERO, message)];
            }
            let id = *message.settlement_id();
            let mut out = Vec::new();
            match &message {
                GossipMessage::Vote(vote) => {
                    if self.runs(Strategy::Equivocate) {
                        self.first(
                            Strategy::Equivocate,
                            &id,
                            "gossiping a second, different vote for each slot",
                        );
                        out.push((Duration::ZERO, self.twin_vote(signer, &vote.payload)));
                    }
                    let v = &vote.payload;
                    let first_prevote =
                        v.decision == DecisionId::Value && v.round == 0 && v.step == VoteStep::Prevote;
                    if self.runs(Strategy::Flood)
                        && first_prevote
                        && self.first(
                            Strategy::Flood,
                            &id,
                            "flooding far-future votes and review votes for unknown disputes",
                        )
                    {
                        let flood =
                            fixd_node::test_faults::flood_messages(&signer.ed25519, &signer.network_id, v);
                        out.extend(flood.into_iter().map(|m| (Duration::ZERO, m)));
                    }
                    if self.runs(Strategy::Withhold) {
                        self.first(
                            Strategy::Withhold,
                            &id,
                            "signing votes and report signatures, sending none",
                        );
                    } else if self.runs(Strategy::Partial) {
                        let shown = format!(
                            "gossiping no votes; showing them in catch-up only to members {:?}",
                            self.shows_to
                        );
                        self.first(Strategy::Partial, &id, &shown);
                    } else {
                        out.insert(0, (Duration::ZERO, message));
                    }
                }
                GossipMessage::Proposal(proposal) => {
                    out.push((Duration::ZERO, message.clone()));
                    if self.runs(Strategy::Equivocate)
                        && let Some(twin) = self.twin_proposal(signer, &proposal.payload)
                    {
                        let round = proposal.payload.round;
                        tracing::warn!(settlement = %id, round, "byzantine equivocate: gossiping a second proposal for round {round}");
                        out.push((Duration::ZERO, twin));
                    }
                }
                GossipMessage::ReportSignature(signature) => {
                    if self.runs(Strategy::Withhold) {
                        self.first(
                            Strategy::Withhold,
                            &id,
                            "signing votes and report signatures, sending none",
                        );
                    } else if self.runs(Strategy::ForeignReports) {
                        let mut report = signature.payload.report.clone();
                        report.value = plus(report.value, 0);
                        self.first(
                            Strategy::ForeignReports,
                            &id,
                            &format!(
                                "signing a report of {} instead of the decided {}",
                                report.value, signature.payload.report.value
                            ),
                        );
                        out.push((
                            Duration::ZERO,
                            GossipMessage::ReportSignature(signer.sign_report(report)),
                        ));
                    } else {
                        out.push((Duration::ZERO, message));
                    }
                }
                GossipMessage::BatchSignature(signature) if self.runs(Strategy::ForeignReports) => {
                    let mut batch = signature.payload.batch.clone();
                    for report in &mut batch.reports {
                        report.value = plus(report.value, 0);
                    }
                    // Logged once per batch, not per settlement (its reports are logged already).
                    self.first(
                        Strategy::ForeignReports,
                        &fixd_proto::hash::hash_bcs(&batch),
                        &format!(
                            "signing a batch of {} reports, each 1% off the decided",
                            batch.reports.len()
                        ),
                    );
                    out.push((Duration::ZERO, GossipMessage::BatchSignature(signer.sign_batch(batch))));
                }
                GossipMessage::Dispute(_) | GossipMessage::Ruling(_) if self.runs(Strategy::LateDisputes) => {
                    self.first(
                        Strategy::LateDisputes,
                        &id,
                        &format!("holding the relays it accepts for {LATE_RELEASE:?}"),
                    );
                    out.push((LATE_RELEASE, message));
                }
                _ => out.push((Duration::ZERO, message)),
            }
            out
        }

        fn shows(&self, asker: Option<usize>, message: &GossipMessage) -> bool {
            if *message.signer() != self.me {
                return true;
            }
            match message {
                GossipMessage::Vote(_) if self.runs(Strategy::Withhold) => false,
                GossipMessage::Vote(_) if self.runs(Strategy::Partial) => {
                    asker.is_some_and(|k| self.shows_to.contains(&k))
                }
                GossipMessage::ReportSignature(_) => {
                    !self.runs(Strategy::Withhold) && !self.runs(Strategy::ForeignReports)
                }
                GossipMessage::Dispute(_) | GossipMessage::Ruling(_) => !self.runs(Strategy::LateDisputes),
                _ => true,
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use alloy::primitives::Address;
        use alloy::signers::local::PrivateKeySigner;
        use ed25519_dalek::SigningKey;
        use fixd_proto::types::report::FinalReport;

        use super::*;

        fn signer(seed: u8) -> Signer {
            Signer {
                ed25519: SigningKey::from_bytes(&[seed; 32]),
                secp256k1: PrivateKeySigner::from_bytes(&B256::repeat_byte(seed)).unwrap(),
                network_id: B256::repeat_byte(0x11),
                chain_id: 31337,
                contract: Address::repeat_byte(0x22),
            }
        }

        fn member(strategies: &[Strategy], signer: &Signer) -> Misconduct {
            Misconduct::with(strategies.to_vec(), signer.public_key(), vec![2])
        }

        fn vote(signer: &Signer, step: VoteStep) -> GossipMessage {
            let vote = Vote {
                settlement_id: B256::repeat_byte(0x33),
                decision: DecisionId::Value,
                round: 0,
                step,
                proposal_hash: Some(B256::repeat_byte(0x44)),
            };
            GossipMessage::Vote(signer.sign(vote))
        }

        fn report_signature(signer: &Signer) -> GossipMessage {
            let report = FinalReport {
                settlement_id: B256::repeat_byte(0x33),
                value: Wad::from_raw(2_500 * 10u128.pow(18)),
                round: 0,
                outcomes: Vec::new(),
            };
            GossipMessage::ReportSignature(signer.sign_report(report))
        }

        fn now(out: &[(Duration, GossipMessage)]) -> Vec<&GossipMessage> {
            out.iter().filter(|(delay, _)| delay.is_zero()).map(|(_, m)| m).collect()
        }

        #[test]
        fn equivocate_sends_a_second_vote_for_the_same_slot() {
            let me = signer(1);
            let original = vote(&me, VoteStep::Prevote);
            let out = member(&[Strategy::Equivocate], &me).outgoing(&me, original.clone());
            let sent = now(&out);
            assert_eq!(sent.len(), 2);
            assert_eq!(sent[0], &original, "the vote it signed goes first");
            let slot = |m: &GossipMessage| (*m.signer(), m.kind(), m.decision(), m.round(), m.step());
            assert_eq!(slot(sent[1]), slot(&original));
            assert_ne!(sent[1].hash(), original.hash());
        }

        #[test]
        fn withhold_sends_no_vote_or_report_signature_and_relays_others() {
            let (me, other) = (signer(1), signer(2));
            let member = member(&[Strategy::Withhold], &me);
            for message in [vote(&me, VoteStep::Precommit), report_signature(&me)] {
                assert!(member.outgoing(&me, message.clone()).is_empty());
                assert!(!member.shows(Some(2), &message), "catch-up shows {message:?}");
            }
            let others = vote(&other, VoteStep::Precommit);
            assert_eq!(now(&member.outgoing(&me, others.clone())), vec![&others]);
            assert!(member.shows(Some(0), &others));
        }

        #[test]
        fn partial_shows_votes_only_to_the_chosen_members() {
            let me = signer(1);
            let member = member(&[Strategy::Partial], &me);
            let prevote = vote(&me, VoteStep::Prevote);
            assert!(member.outgoing(&me, prevote.clone()).is_empty(), "no vote is gossiped");
            assert!(member.shows(Some(2), &prevote));
            assert!(!member.shows(Some(0), &prevote));
            assert!(!member.shows(None, &prevote));
            assert!(member.shows(Some(0), &report_signature(&me)), "only votes are hidden");
        }

        #[test]
        fn foreign_reports_signs_another_value_instead() {
            let me = signer(1);
            let decided = report_signature(&me);
            let out = member(&[Strategy::ForeignReports], &me).outgoing(&me, decided.clone());
            let (GossipMessage::ReportSignature(sent), GossipMessage::ReportSignature(decided)) =
                (now(&out)[0], &decided)
            else {
                panic!("a report signature is sent: {out:?}");
            };
            assert_eq!(out.len(), 1, "the decided one is never sent");
            assert!(sent.payload.report.value > decided.payload.report.value);
            let domain = fixd_proto::eip712::domain(me.chain_id, me.contract);
            fixd_proto::eip712::verify_typed(
                &domain,
                &sent.payload.report,
                &sent.payload.signature,
                me.secp256k1.address(),
            )
            .expect("a valid signature of the other report");
        }

        #[test]
        fn wrong_value_proposes_the_median_plus_one_percent() {
            let me = signer(1);
            let proposal = Proposal {
                settlement_id: B256::repeat_byte(0x33),
                round: 0,
                value: Wad::from_raw(2_000 * 10u128.pow(18)),
                source: fixd_proto::types::certificate::ProposalSource::Observations,
                inputs: Vec::new(),
                inputs_root: B256::ZERO,
                challenge_deadline: 0,
                proposed_at: 0,
            };
            let wrong = member(&[Strategy::WrongValue], &me).propose(proposal.clone());
            assert_eq!(wrong.value, Wad::from_raw(2_020 * 10u128.pow(18)));
            assert_eq!(member(&[Strategy::Flood], &me).propose(proposal.clone()), proposal);
        }

        #[test]
        fn flood_follows_the_first_prevote_once() {
            let me = signer(1);
            let member = member(&[Strategy::Flood], &me);
            let first = member.outgoing(&me, vote(&me, VoteStep::Prevote));
            assert_eq!(first.len(), 1 + fixd_node::test_faults::FLOOD_MESSAGES as usize);
            assert_eq!(member.outgoing(&me, vote(&me, VoteStep::Prevote)).len(), 1, "once per settlement");
        }
    }
}
