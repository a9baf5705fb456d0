//! The contracts under test: their ABI, bound at compile time from the committed artifacts, and
//! their creation bytecode, read at run time so that the run can be pointed at another build.
//!
//! The ABI of `SettlementOracle` comes from `contracts/out/SettlementOracle.json` through
//! alloy's `sol!`, as `node/src/chain/contract.rs` binds it (and the consumers' as
//! `node/src/chain/consumers.rs` binds them). The bytecode is read when the run starts, from
//! that file or from the file that `FIXD_ORACLE_ARTIFACT` names (and likewise
//! `FIXD_PAYEE_ARTIFACT` for the test-only `Payee`; `FIXD_READER_ARTIFACT`,
//! `FIXD_VAULT_ARTIFACT` and `FIXD_PN_HOLDER_ARTIFACT` for the vault's run): a scratch build
//! with a planted bug, for example, to see the run fail. `PNToken` has no variable of its own:
//! `PNVault` deploys it from its own creation code, so a scratch vault carries its token.

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

alloy_sol_types::sol!(
    #[derive(Debug, PartialEq, Eq)]
    SettlementReader,
    "../contracts/out/SettlementReader.json"
);

alloy_sol_types::sol!(
    #[derive(Debug, PartialEq, Eq)]
    PNVault,
    "../contracts/out/PNVault.json"
);

alloy_sol_types::sol!(
    #[derive(Debug, PartialEq, Eq)]
    PNToken,
    "../contracts/out/PNToken.json"
);

alloy_sol_types::sol!(
    #[derive(Debug, PartialEq, Eq)]
    PNHolder,
    "../contracts/out/PNHolder.json"
);

/// Names another `SettlementOracle` artifact (same ABI) to run against.
pub const ORACLE_ARTIFACT_ENV: &str = "FIXD_ORACLE_ARTIFACT";
/// Names another `Payee` artifact (same ABI) to run against.
pub const PAYEE_ARTIFACT_ENV: &str = "FIXD_PAYEE_ARTIFACT";

/// Names another `SettlementReader` artifact (same ABI) for the vault's run.
pub const READER_ARTIFACT_ENV: &str = "FIXD_READER_ARTIFACT";
/// Names another `PNVault` artifact (same ABI) for the vault's run.
pub const VAULT_ARTIFACT_ENV: &str = "FIXD_VAULT_ARTIFACT";
/// Names another `PNHolder` artifact (same ABI) for the vault's run.
pub const PN_HOLDER_ARTIFACT_ENV: &str = "FIXD_PN_HOLDER_ARTIFACT";

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
        Ok(Self {
            oracle: read_bytecode(&oracle_path, ORACLE_ARTIFACT_ENV)?,
            payee: read_bytecode(&payee_path, PAYEE_ARTIFACT_ENV)?,
            oracle_path,
        })
    }
}

/// The creation bytecode of the consumers the vault's run deploys over the oracle.
#[derive(Clone, Debug)]
pub struct ConsumerBytecodes {
    /// `SettlementReader`'s creation code, without constructor arguments.
    pub reader: Bytes,
    /// `PNVault`'s (which deploys its `PNToken` implementation itself).
    pub vault: Bytes,
    /// The test-only `PNHolder`'s.
    pub holder: Bytes,
    /// Where `vault` was read from, for the report of a run.
    pub vault_path: PathBuf,
}

impl ConsumerBytecodes {
    /// Reads the three artifacts: the committed ones under `contracts/out/`, or those the
    /// environment variables name.
    pub fn load() -> Result<Self, Error> {
        let reader_path = artifact_path(READER_ARTIFACT_ENV, "SettlementReader.json");
        let vault_path = artifact_path(VAULT_ARTIFACT_ENV, "PNVault.json");
        let holder_path = artifact_path(PN_HOLDER_ARTIFACT_ENV, "PNHolder.json");
        Ok(Self {
            reader: read_bytecode(&reader_path, READER_ARTIFACT_ENV)?,
            vault: read_bytecode(&vault_path, VAULT_ARTIFACT_ENV)?,
            holder: read_bytecode(&holder_path, PN_HOLDER_ARTIFACT_ENV)?,
            vault_path,
        })
    }
}

fn artifact_path(env: &str, file: &str) -> PathBuf {
    match std::env::var_os(env) {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../contracts/out").join(file),
    }
}

/// The `bytecode` field of a solc artifact as `contracts/build.mjs` writes it (`0x…`); `env`
/// is the variable that could name another, for the error.
fn read_bytecode(path: &Path, env: &'static str) -> Result<Bytes, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::ReadArtifact {
        path: path.to_owned(),
        env,
        source,
    })?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|source| Error::ParseArtifact { path: path.to_owned(), source })?;
    let hex = json
        .get("bytecode")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| Error::NoBytecode { path: path.to_owned() })?;
    hex.parse::<Bytes>().map_err(|_| Error::NoBytecode { path: path.to_owned() })
}
