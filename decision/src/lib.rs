//! # fixd-decision
//!
//! What the committee decides about one settlement, as pure machines: one Tendermint instance
//! per decision (the first value, each dispute round's review, the final report), the
//! publication timeline (the challenge window, the agreed dispute history, the final report
//! and the publishing turns), and the settlement driver that owns them. No clock, no I/O, no tokio, no sled, no libp2p:
//! `now` and every input come in as arguments, and what to do comes back as effects that the
//! node's settlement service (`fixd-node`) carries out.
//!
//! ```text
//!   inputs: signed messages (fixd_proto::gossip), own messages, bond checks, recomputations,
//!           chain reads, ticks, + now
//!        │
//!        ▼
//!   driver::SettlementDriver ──▶ consensus::Certification ──▶ certificate
//!        │   (one per settlement)  consensus::Certification<Review> per dispute round
//!        │                         consensus::Certification<Reports>: the final report
//!        │                         publication::Publication (fold of fixd_dispute over the
//!        │                           agreed timeline: window, final report, turns)
//!        ▼
//!   effects: Keep, Sign, Gossip, Watch, Publish, CheckBond, Recompute, CatchUp, Event
//! ```
//!
//! Layering: `fixd-node → fixd-decision → fixd-dispute → fixd-proto`. Types that the node's
//! store, API and chain service share with these machines ([`consensus::Equivocation`],
//! [`publication::OnChain`], [`driver::SigningSlot`], [`events::EventKind`]) live here, below
//! them.
//!
//! Modules: [`consensus`] (DESIGN 5.2-5.3, 5.6), [`publication`] (DESIGN 5.4-5.5, 6),
//! [`driver`] (DESIGN 5-6), [`events`] (DESIGN 7).

pub mod consensus;
pub mod driver;
pub mod events;
pub mod publication;
pub mod tendermint;
