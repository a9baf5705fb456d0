//! The contracts under test: their ABI, bound at compile time from the committed artifacts, and
//! their creation bytecode, read at run time so that the run can be pointed at another build.
//!
//! The ABI of `SettlementOracle` comes from `contracts/out/SettlementOracle.json` through
//! alloy's `sol!`, as `node/src/chain/contract.rs` binds it. The bytecode is read when the run
//! starts, from that file or from the file that `FIXD_ORACLE_ARTIFACT` names (and likewise
//! `FIXD_PAYEE_ARTIFACT` for the test-only `Payee`): a scratch build with a planted bug, for
//! example, to see the run fail.

use std::path::{Path, PathBuf};

use alloy_primitives::Bytes;

use crate::Error;

alloy_sol_types::sol!(
    #[derive(Debug, PartialEq, Eq)]
    SettlementOracle,
    "../contracts/out/SettlementOracle.json"
);

alloy_sol_types::sol!(
    #[derive(Debug, PartialEq, Eq)]
    Payee,
    "../contracts/out/Payee.json"
);

/// Names another `SettlementOracle` artifact (same ABI) to run against.
pub const ORACLE_ARTIFACT_ENV: &str = "FIXD_ORACLE_ARTIFACT";
/// Names another `Payee` artifact (same ABI) to run against.
pub const PAYEE_ARTIFACT_ENV: &str = "FIXD_PAYEE_ARTIFACT";

/// The creation bytecode of both contracts.
#[derive(Clone, Debug)]
pub struct Bytecodes {
    /// `SettlementOracle`'s creation code, without constructor arguments.
    pub oracle: Bytes,
    /// `Payee`'s creation code (it has no constructor arguments).
    pub payee: Bytes,
    /// Where `oracle` was read from, for the report of a run.
    pub oracle_path: PathBuf,
}

impl Bytecodes {
    /// Reads both artifacts: the committed ones under `contracts/out/`, or those the environment
    /// variables name.
    pub fn load() -> Result<Self, Error> {
        let oracle_path = artifact_path(ORACLE_ARTIFACT_ENV, "SettlementOracle.json");
        let payee_path = artifact_path(PAYEE_ARTIFACT_ENV, "Payee.json");
        Ok(Self { oracle: read_bytecode(&oracle_path)?, payee: read_bytecode(&payee_path)?, oracle_path })
    }
}

fn artifact_path(env: &str, file: &str) -> PathBuf {
    match std::env::var_os(env) {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../contracts/out").join(file),
    }
}

/// The `bytecode` field of a solc artifact as `contracts/build.mjs` writes it (`0x…`).
fn read_bytecode(path: &Path) -> Result<Bytes, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| Error::ReadArtifact { path: path.to_owned(), source })?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|source| Error::ParseArtifact { path: path.to_owned(), source })?;
    let hex = json
        .get("bytecode")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| Error::NoBytecode { path: path.to_owned() })?;
    hex.parse::<Bytes>().map_err(|_| Error::NoBytecode { path: path.to_owned() })
}
