//! Genesis and committee (DESIGN section 3).

use std::sync::Arc;

use alloy_primitives::{Address, B256};
use serde::{Deserialize, Serialize};

use crate::hash::hash_bcs;
use crate::signing::PublicKey;

/// One committee member.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// A human name, unique in the committee (e.g. `"node-0"`).
    pub name: String,
    /// The member's ed25519 key: its libp2p identity and gossip signer.
    pub ed25519: PublicKey,
    /// The address of the member's secp256k1 key, which signs final reports.
    pub eth_address: Address,
    /// libp2p multiaddresses the member listens on.
    pub listen: Vec<String>,
}

/// Protocol parameters shared by the whole committee. Durations are whole seconds.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtocolParams {
    /// First challenge window after certification. Default 7200 (2 h).
    pub challenge_period_secs: u64,
    /// Challenge window reopened after a dispute is decided. Default 3600 (1 h).
    pub reopened_challenge_period_secs: u64,
    /// Time a round has to reach a certificate before the next leader takes over. Default 60.
    pub round_timeout_secs: u64,
    /// Time a publisher has before the next member takes over. Default 120.
    pub publish_timeout_secs: u64,
    /// Accepted clock skew. Default 5.
    pub max_clock_skew_secs: u64,
    /// Every settlement is final by `M + hard_deadline_secs`. Default 172800 (48 h).
    pub hard_deadline_secs: u64,
    /// Committee review rounds before a dispute goes to the arbitrator. Default 2.
    pub max_rounds: u8,
    /// Smallest bond for a first dispute, wei. Default 10^17 (0.1 ETH).
    #[serde(with = "crate::value::wei")]
    pub min_bond_wei: u128,
    /// Reviewed value beyond this distance from the proposal upholds a dispute. Default 10 bp.
    pub dispute_tolerance_bp: u32,
    /// Reward of an upheld dispute from the insurance pool, in bp of its bond. Default 5000.
    pub reward_bp: u32,
    /// Block confirmations a publication waits for. Default 2.
    pub confirmations: u64,
    /// Largest gossip message, bytes. Default 65536.
    pub max_message_bytes: u32,
}

impl Default for ProtocolParams {
    fn default() -> Self {
        ProtocolParams {
            challenge_period_secs: 7200,
            reopened_challenge_period_secs: 3600,
            round_timeout_secs: 60,
            publish_timeout_secs: 120,
            max_clock_skew_secs: 5,
            hard_deadline_secs: 172_800,
            max_rounds: 2,
            min_bond_wei: 100_000_000_000_000_000,
            dispute_tolerance_bp: 10,
            reward_bp: 5000,
            confirmations: 2,
            max_message_bytes: 65_536,
        }
    }
}

/// The genesis file: who is in the committee and the rules they follow.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    /// A label such as `"fixd-devnet"`.
    pub network: String,
    pub chain_id: u64,
    /// The `SettlementOracle` contract.
    pub contract: Address,
    /// The block the contract was deployed in: its logs are read from there on, in chunks, never
    /// from block 0 (providers cap the range of `eth_getLogs`). 0 when unknown.
    #[serde(default)]
    pub contract_block: u64,
    /// The arbitrator of escalated disputes.
    pub arbitrator: Address,
    pub members: Vec<Member>,
    pub params: ProtocolParams,
}

/// Why a genesis is unusable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    #[error(
        "genesis has {0} members; a committee needs at least 4 (one faulty member tolerated), list them under [[members]]"
    )]
    TooFewMembers(usize),
    #[error("member name {0:?} appears twice; names must be unique")]
    DuplicateName(String),
    #[error("ed25519 key {0} appears twice; every member needs its own key")]
    DuplicateKey(PublicKey),
    #[error("Ethereum address {0} appears twice; every member needs its own secp256k1 key")]
    DuplicateAddress(Address),
    #[error("max_rounds must be at least 1")]
    NoRounds,
}

impl Genesis {
    /// `network_id = keccak256(BCS(genesis))`. Every signature commits to it.
    pub fn network_id(&self) -> B256 {
        hash_bcs(self)
    }

    /// Checks that members are distinct and the parameters make sense.
    pub fn validate(&self) -> Result<(), GenesisError> {
        if self.members.len() < MIN_MEMBERS {
            return Err(GenesisError::TooFewMembers(self.members.len()));
        }
        if self.params.max_rounds == 0 {
            return Err(GenesisError::NoRounds);
        }
        for (i, m) in self.members.iter().enumerate() {
            for other in &self.members[..i] {
                if other.name == m.name {
                    return Err(GenesisError::DuplicateName(m.name.clone()));
                }
                if other.ed25519 == m.ed25519 {
                    return Err(GenesisError::DuplicateKey(m.ed25519));
                }
                if other.eth_address == m.eth_address {
                    return Err(GenesisError::DuplicateAddress(m.eth_address));
                }
            }
        }
        Ok(())
    }

    /// The committee view of the members.
    pub fn committee(&self) -> Committee {
        Committee::new(self.members.clone())
    }
}

/// The smallest committee: with n ≥ 4 a quorum of q = ⌊2n/3⌋ + 1 tolerates f = ⌊(n−1)/3⌋ ≥ 1
/// faulty members.
pub const MIN_MEMBERS: usize = 4;

/// The committee: n members, tolerating f = ⌊(n−1)/3⌋ faults, with quorum q = ⌊2n/3⌋ + 1.
///
/// The quorum is the smallest number of members that is more than two thirds of n, as in
/// Tendermint (and as `arc-malachitebft-core-types`' default threshold with one vote each). Any
/// two quorums then share more than f members, so at least one honest member: two quorums
/// cannot certify two values in one round. And q ≤ n − f, so the honest members alone reach a
/// quorum. These are the only place the quorum is computed; the contract's threshold is set to
/// [`Committee::q`].
///
/// Shared, not copied: every decision and publication of every settlement holds the committee,
/// and a clone is a reference count (a burst of 10,000 settlements held some 24 MB of copies).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committee {
    members: Arc<[Member]>,
}

impl Committee {
    pub fn new(members: Vec<Member>) -> Self {
        Committee { members: members.into() }
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// n, the committee size.
    pub fn n(&self) -> usize {
        self.members.len()
    }

    /// f = ⌊(n−1)/3⌋, the faults tolerated.
    pub fn f(&self) -> usize {
        self.n().saturating_sub(1) / 3
    }

    /// q = ⌊2n/3⌋ + 1, the quorum: more than two thirds of the members.
    pub fn q(&self) -> usize {
        2 * self.n() / 3 + 1
    }

    /// The index of the member with this ed25519 key.
    pub fn index_of(&self, key: &PublicKey) -> Option<usize> {
        self.members.iter().position(|m| &m.ed25519 == key)
    }

    /// The index of the member with this Ethereum address.
    pub fn index_of_address(&self, address: &Address) -> Option<usize> {
        self.members.iter().position(|m| &m.eth_address == address)
    }

    /// The round-r leader, a rotation from a first leader drawn from the settlement id:
    /// `members[(keccak256(settlement_id)[..16] as a big-endian u128 + r) mod n]`. Every member
    /// leads once in any n consecutive rounds, so f faulty leaders delay a decision by at most
    /// f rounds (Tendermint's round-robin proposer).
    pub fn leader(&self, settlement_id: &B256, round: u32) -> usize {
        let h = alloy_primitives::keccak256(settlement_id);
        let n = self.n().max(1) as u128;
        // Reduce the top 16 bytes as a big-endian integer; the bias is below 2^-120.
        let first = u128::from_be_bytes(h[..16].try_into().expect("16 bytes")) % n;
        ((first + u128::from(round)) % n) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(i: u8) -> Member {
        Member {
            name: format!("node-{i}"),
            ed25519: PublicKey(B256::repeat_byte(i)),
            eth_address: Address::repeat_byte(i),
            listen: vec![],
        }
    }

    #[test]
    fn quorum_follows_n() {
        for (n, f, q) in
            [(4, 1, 3), (5, 1, 4), (6, 1, 5), (7, 2, 5), (10, 3, 7), (16, 5, 11), (31, 10, 21), (100, 33, 67)]
        {
            let c = Committee::new((0..n).map(member).collect());
            assert_eq!((c.n(), c.f(), c.q()), (n as usize, f, q), "n = {n}");
        }
    }

    /// For every n from 4 to 100: two quorums share an honest member (safety), the honest
    /// members alone are a quorum (liveness), and q is the least count above 2n/3.
    #[test]
    fn quorums_intersect_in_an_honest_member_and_honest_members_reach_one() {
        for n in MIN_MEMBERS as u8..=100u8 {
            let c = Committee::new((0..n).map(member).collect());
            let (n, f, q) = (c.n(), c.f(), c.q());
            assert!(f >= 1, "n = {n}");
            assert!(2 * q > n + f, "n = {n}: two quorums of {q} share at most f = {f} members");
            assert!(q <= n - f, "n = {n}: the {} honest members reach q = {q}", n - f);
            assert!(3 * q > 2 * n && 3 * (q - 1) <= 2 * n, "n = {n}: q = {q} is the least above 2n/3");
        }
    }

    #[test]
    fn a_committee_of_fewer_than_four_is_refused() {
        for n in 0..4u8 {
            let g = Genesis {
                network: "t".into(),
                chain_id: 1,
                contract: Address::ZERO,
                contract_block: 0,
                arbitrator: Address::ZERO,
                members: (1..=n).map(member).collect(),
                params: ProtocolParams::default(),
            };
            let err = g.validate().unwrap_err();
            assert_eq!(err, GenesisError::TooFewMembers(n as usize));
            assert!(err.to_string().contains("at least 4"), "{err}");
        }
    }

    #[test]
    fn leader_rotates_over_rounds() {
        let c = Committee::new((0..4).map(member).collect());
        let id = B256::repeat_byte(7);
        let leaders: std::collections::BTreeSet<_> = (0..4).map(|r| c.leader(&id, r)).collect();
        assert_eq!(leaders.len(), 4, "any 4 rounds reach every one of 4 members");
        assert_eq!(c.leader(&id, 5), (c.leader(&id, 0) + 5) % 4, "a rotation");
    }

    #[test]
    fn duplicates_are_named() {
        let mut g = Genesis {
            network: "t".into(),
            chain_id: 1,
            contract: Address::ZERO,
            contract_block: 0,
            arbitrator: Address::ZERO,
            members: (1..=4).map(member).collect(),
            params: ProtocolParams::default(),
        };
        assert_eq!(g.validate(), Ok(()));
        g.members[1].name = "node-1".into();
        assert_eq!(g.validate(), Err(GenesisError::DuplicateName("node-1".into())));
        g.members[1] = member(1);
        g.members[1].name = "x".into();
        assert!(matches!(g.validate(), Err(GenesisError::DuplicateKey(_))));
    }
}
