//! # fixd-decision
//!
//! What the committee decides about one settlement, as pure machines: certification in rounds
//! (the first certificate and each dispute round's review) and the publication timeline (the
//! challenge window, the agreed dispute history, the final report and the publishing turns).
//! No clock, no I/O, no tokio, no sled, no libp2p: `now` and every event come in as arguments,
//! and what to do comes back as actions that the node (`fixd-node`) carries out.
//!
//! ```text
//!   signed messages (fixd_proto::gossip) + now ──▶ consensus::Certification ──▶ certificate
//!                                                      │ (one per settlement, one per review)
//!                                                      ▼
//!   disputes, rulings, report signatures, chain reads ─▶ publication::Publication
//!        (fold of fixd_dispute::SettlementDisputes       │ window, final report, turns
//!         over the agreed timeline)                      ▼
//!                                          actions: sign, gossip, publish, events
//! ```
//!
//! Layering: `fixd-node → fixd-decision → fixd-dispute → fixd-proto`. Types that the node's
//! store, API and chain service share with these machines ([`consensus::Equivocation`],
//! [`publication::OnChain`]) live here, below them.
//!
//! Modules: [`consensus`] (DESIGN 5.2-5.3, 5.6), [`publication`] (DESIGN 5.4-5.5, 6).

pub mod consensus;
pub mod publication;
