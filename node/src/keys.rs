//! A member's two keys, on disk.
//!
//! A keys directory holds (all written by `fixd init`):
//!
//! | file | content | mode |
//! |---|---|---|
//! | `ed25519.pem` | the ed25519 key (libp2p identity, gossip signer) as PKCS#8 PEM, `BEGIN PRIVATE KEY` | 0600 |
//! | `secp256k1.key` | the secp256k1 key (signs final reports) as `0x` + 64 hex digits and a newline | 0600 |
//! | `member.toml` | the public part for the genesis: name, ed25519 public key, Ethereum address, listen addresses | 0644 |
//!
//! Secret files are created with mode 0600 and refused when another user can read them.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use alloy_primitives::{Address, B256};
use alloy_signer_local::PrivateKeySigner;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, spki::der::pem::LineEnding};
use fixd_proto::signing::PublicKey;
use fixd_proto::types::genesis::Member;

pub const ED25519_FILE: &str = "ed25519.pem";
pub const SECP256K1_FILE: &str = "secp256k1.key";
pub const MEMBER_FILE: &str = "member.toml";

/// Why keys cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} already exists; refusing to overwrite a key (move it away or pick another --dir)")]
    Exists { path: PathBuf },
    #[error("{path} is not a valid {what}: {reason}")]
    Invalid { path: PathBuf, what: &'static str, reason: String },
    #[error("{path} is readable by other users (mode {mode:o}); run `chmod 600 {path}`")]
    Permissions { path: PathBuf, mode: u32 },
    #[error("the operating system gave no randomness for a new key: {0}")]
    Random(String),
}

/// A member's secret keys.
#[derive(Clone)]
pub struct Keys {
    pub ed25519: SigningKey,
    pub secp256k1: PrivateKeySigner,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("ed25519", &self.public_key())
            .field("eth_address", &self.eth_address())
            .finish_non_exhaustive()
    }
}

impl Keys {
    /// Fresh random keys.
    pub fn generate() -> Result<Self, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
        let ed25519 = SigningKey::from_bytes(&seed);
        loop {
            getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
            // Fails only for the zero scalar or one at least the group order: draw again.
            if let Ok(secp256k1) = PrivateKeySigner::from_bytes(&B256::from(seed)) {
                return Ok(Keys { ed25519, secp256k1 });
            }
        }
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey::of(&self.ed25519)
    }

    pub fn eth_address(&self) -> Address {
        self.secp256k1.address()
    }

    /// The public part, as listed in the genesis.
    pub fn member(&self, name: &str, listen: Vec<String>) -> Member {
        Member { name: name.to_owned(), ed25519: self.public_key(), eth_address: self.eth_address(), listen }
    }

    /// Writes both secret keys into `dir` (created if needed), refusing to overwrite.
    pub fn write(&self, dir: &Path) -> Result<(), KeyError> {
        std::fs::create_dir_all(dir).map_err(|source| KeyError::Io { path: dir.to_owned(), source })?;
        let pem = self.ed25519.to_pkcs8_pem(LineEnding::LF).map_err(|e| KeyError::Invalid {
            path: dir.join(ED25519_FILE),
            what: "ed25519 key",
            reason: e.to_string(),
        })?;
        write_secret(&dir.join(ED25519_FILE), pem.as_bytes())?;
        let hex = format!("0x{}\n", hex::encode(self.secp256k1.to_bytes()));
        write_secret(&dir.join(SECP256K1_FILE), hex.as_bytes())
    }

    /// Reads both secret keys from `dir`.
    pub fn read(dir: &Path) -> Result<Self, KeyError> {
        let ed_path = dir.join(ED25519_FILE);
        let pem = read_secret(&ed_path)?;
        let ed25519 = SigningKey::from_pkcs8_pem(&pem).map_err(|e| KeyError::Invalid {
            path: ed_path,
            what: "PKCS#8 PEM ed25519 key",
            reason: e.to_string(),
        })?;
        let secp_path = dir.join(SECP256K1_FILE);
        let text = read_secret(&secp_path)?;
        let invalid = |reason: String| KeyError::Invalid {
            path: secp_path.clone(),
            what: "secp256k1 key (0x + 64 hex digits)",
            reason,
        };
        let bytes = hex::decode(text.trim().trim_start_matches("0x")).map_err(|e| invalid(e.to_string()))?;
        let bytes: [u8; 32] =
            bytes.try_into().map_err(|b: Vec<u8>| invalid(format!("{} bytes, expected 32", b.len())))?;
        let secp256k1 =
            PrivateKeySigner::from_bytes(&B256::from(bytes)).map_err(|e| invalid(e.to_string()))?;
        Ok(Keys { ed25519, secp256k1 })
    }
}

fn write_secret(path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::AlreadyExists => KeyError::Exists { path: path.to_owned() },
        _ => KeyError::Io { path: path.to_owned(), source },
    })?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|source| KeyError::Io { path: path.to_owned(), source })
}

fn read_secret(path: &Path) -> Result<String, KeyError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta =
            std::fs::metadata(path).map_err(|source| KeyError::Io { path: path.to_owned(), source })?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Permissions { path: path.to_owned(), mode });
        }
    }
    std::fs::read_to_string(path).map_err(|source| KeyError::Io { path: path.to_owned(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_files_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keys::generate().unwrap();
        keys.write(dir.path()).unwrap();
        let back = Keys::read(dir.path()).unwrap();
        assert_eq!(back.public_key(), keys.public_key());
        assert_eq!(back.eth_address(), keys.eth_address());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for f in [ED25519_FILE, SECP256K1_FILE] {
                let mode = std::fs::metadata(dir.path().join(f)).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{f}");
            }
        }
        let pem = std::fs::read_to_string(dir.path().join(ED25519_FILE)).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    }

    #[test]
    fn never_overwrites_and_refuses_readable_secrets() {
        let dir = tempfile::tempdir().unwrap();
        Keys::generate().unwrap().write(dir.path()).unwrap();
        let err = Keys::generate().unwrap().write(dir.path()).unwrap_err();
        assert!(matches!(err, KeyError::Exists { .. }), "{err}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let path = dir.path().join(SECP256K1_FILE);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = Keys::read(dir.path()).unwrap_err().to_string();
            assert!(err.contains("chmod 600"), "{err}");
        }
    }

    #[test]
    fn a_garbled_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        Keys::generate().unwrap().write(dir.path()).unwrap();
        let path = dir.path().join(SECP256K1_FILE);
        std::fs::remove_file(&path).unwrap();
        write_secret(&path, b"0x1234\n").unwrap();
        let err = Keys::read(dir.path()).unwrap_err().to_string();
        assert!(err.contains("secp256k1") && err.contains("2 bytes, expected 32"), "{err}");
    }
}
