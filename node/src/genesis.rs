//! Reading, writing and building genesis files.
//!
//! A genesis is TOML (`.toml`) or JSON (any other extension). Its `network_id` is
//! `keccak256(BCS(genesis))`, so every member must hold the same content, whatever the format.

use std::path::{Path, PathBuf};

use alloy_primitives::Address;
use fixd_proto::types::genesis::{Genesis, GenesisError, Member, ProtocolParams};

use crate::keys::Keys;

/// Why a genesis cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum GenesisFileError {
    #[error("cannot read genesis {path}: {source}; pass the committee's genesis file with --genesis")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a valid genesis: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Invalid { path: PathBuf, source: GenesisError },
    #[error(
        "this node's keys are not in the genesis {path}: ed25519 {ed25519} / {eth_address} match no member; \
         check keys_dir, or add this member's member.toml to the genesis"
    )]
    NotAMember { path: PathBuf, ed25519: String, eth_address: Address },
    #[error(
        "this node's ed25519 key belongs to member {name:?} in {path}, whose Ethereum address is {expected}, \
         but secp256k1.key is {found}; the two keys in keys_dir must come from the same `fixd init`"
    )]
    MixedKeys { path: PathBuf, name: String, expected: Address, found: Address },
}

fn is_toml(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "toml")
}

/// Reads and validates a genesis file.
pub fn load(path: &Path) -> Result<Genesis, GenesisFileError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| GenesisFileError::Read { path: path.to_owned(), source })?;
    let genesis: Genesis = if is_toml(path) {
        toml::from_str(&text).map_err(|e| e.to_string())
    } else {
        serde_json::from_str(&text).map_err(|e| e.to_string())
    }
    .map_err(|message| GenesisFileError::Parse {
        path: path.to_owned(),
        message: message.trim_end().to_owned(),
    })?;
    genesis.validate().map_err(|source| GenesisFileError::Invalid { path: path.to_owned(), source })?;
    Ok(genesis)
}

/// Writes a genesis file, TOML or JSON by extension.
pub fn save(path: &Path, genesis: &Genesis) -> Result<(), GenesisFileError> {
    let text = if is_toml(path) {
        toml::to_string_pretty(genesis).expect("a genesis is always TOML-encodable")
    } else {
        serde_json::to_string_pretty(genesis).expect("a genesis is always JSON-encodable") + "\n"
    };
    std::fs::write(path, text).map_err(|source| GenesisFileError::Write { path: path.to_owned(), source })
}

/// Reads a `member.toml` written by `fixd init`.
pub fn load_member(path: &Path) -> Result<Member, GenesisFileError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| GenesisFileError::Read { path: path.to_owned(), source })?;
    toml::from_str(&text)
        .map_err(|e| GenesisFileError::Parse { path: path.to_owned(), message: e.to_string() })
}

/// Builds a genesis from the members' public parts and the chain settings.
pub fn build(
    network: String,
    chain_id: u64,
    contract: Address,
    contract_block: u64,
    arbitrator: Address,
    members: Vec<Member>,
    params: ProtocolParams,
) -> Result<Genesis, GenesisError> {
    let genesis = Genesis { network, chain_id, contract, contract_block, arbitrator, members, params };
    genesis.validate()?;
    Ok(genesis)
}

/// Finds this node in the genesis and checks that both of its keys belong to the same member.
pub fn member_index(genesis: &Genesis, keys: &Keys, path: &Path) -> Result<usize, GenesisFileError> {
    let committee = genesis.committee();
    let Some(index) = committee.index_of(&keys.public_key()) else {
        return Err(GenesisFileError::NotAMember {
            path: path.to_owned(),
            ed25519: keys.public_key().to_string(),
            eth_address: keys.eth_address(),
        });
    };
    let member = &genesis.members[index];
    if member.eth_address != keys.eth_address() {
        return Err(GenesisFileError::MixedKeys {
            path: path.to_owned(),
            name: member.name.clone(),
            expected: member.eth_address,
            found: keys.eth_address(),
        });
    }
    Ok(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committee(n: usize) -> (Vec<Keys>, Genesis) {
        let keys: Vec<Keys> = (0..n).map(|_| Keys::generate().unwrap()).collect();
        let members = keys.iter().enumerate().map(|(i, k)| k.member(&format!("node-{i}"), vec![])).collect();
        let genesis =
            build("t".into(), 31337, Address::ZERO, 0, Address::ZERO, members, ProtocolParams::default())
                .unwrap();
        (keys, genesis)
    }

    #[test]
    fn toml_and_json_hold_the_same_network() {
        let dir = tempfile::tempdir().unwrap();
        let (_, genesis) = committee(4);
        for name in ["genesis.toml", "genesis.json"] {
            let path = dir.path().join(name);
            save(&path, &genesis).unwrap();
            let back = load(&path).unwrap();
            assert_eq!(back.network_id(), genesis.network_id(), "{name}");
        }
    }

    #[test]
    fn a_stranger_is_refused_by_name() {
        let (keys, genesis) = committee(4);
        let path = Path::new("genesis.toml");
        assert_eq!(member_index(&genesis, &keys[2], path).unwrap(), 2);
        let stranger = Keys::generate().unwrap();
        let err = member_index(&genesis, &stranger, path).unwrap_err().to_string();
        assert!(err.contains("not in the genesis") && err.contains("member.toml"), "{err}");
        let mixed = Keys { ed25519: keys[1].ed25519.clone(), secp256k1: keys[0].secp256k1.clone() };
        let err = member_index(&genesis, &mixed, path).unwrap_err().to_string();
        assert!(err.contains("node-1") && err.contains("same `fixd init`"), "{err}");
    }

    #[test]
    fn a_bad_genesis_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("genesis.toml");
        std::fs::write(&path, "network = 'x'\nchain_id = 'one'\n").unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("chain_id"), "{err}");
    }
}
