//! Keys and session tokens: 256 random bits, shown once, stored only as
//! SHA-256 hashes. A hash of a high-entropy secret needs no slow KDF, and
//! lookups by hash leak nothing useful through timing; the operator key,
//! which is compared rather than looked up, is compared in constant time.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A new random secret with a readable prefix, e.g. `ek_client_…`.
pub fn generate(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

pub fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Whether `given` is `expected`, in time independent of where they differ.
pub fn matches(given: &str, expected_hash: &[u8; 32]) -> bool {
    hash(given).ct_eq(expected_hash).into()
}
