//! Envelope encryption of stored photos: every object gets a fresh 256-bit data key; the photo
//! is sealed with it (AES-256-GCM), and the data key is sealed with a master key named by its
//! id. The object carries the master key's id, so master keys can rotate: new objects use the
//! current key, old ones stay readable while their key is configured. The storage server only
//! ever sees ciphertext. The associated data binds a ciphertext to its object key and owner,
//! so a blob copied under another applicant's key does not open.
//!
//! Layout: `EXRB1` ‖ id length (1 byte) ‖ master key id ‖ wrapped key nonce (12) ‖ wrapped data
//! key (32 + 16 tag) ‖ nonce (12) ‖ ciphertext (+ 16 tag).

use aes_gcm::{
    Aes256Gcm, KeyInit, Nonce,
    aead::{Aead, AeadCore, OsRng, Payload},
};
use std::collections::HashMap;

const MAGIC: &[u8; 5] = b"EXRB1";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    #[error("not a sealed object")]
    Format,
    #[error("sealed with master key {0:?}, which is not configured")]
    UnknownKey(String),
    #[error("the object does not open: wrong key, wrong owner or tampered")]
    Tampered,
    #[error("bad master keys: {0}")]
    Config(String),
}

/// The master keys: one current for sealing, all for opening.
#[derive(Clone)]
pub struct MasterKeys {
    current: String,
    keys: HashMap<String, Aes256Gcm>,
}

impl std::fmt::Debug for MasterKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "MasterKeys(current={}, ids={:?})",
            self.current,
            self.keys.keys()
        )
    }
}

impl MasterKeys {
    /// `id:hex64,id:hex64,…` — the first is current. Ids are 1–64 characters of `[A-Za-z0-9._-]`.
    pub fn parse(spec: &str) -> Result<Self, EnvelopeError> {
        let mut keys = HashMap::new();
        let mut current = None;
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (id, hex_key) = entry
                .split_once(':')
                .ok_or_else(|| EnvelopeError::Config("each key is id:hex".into()))?;
            let valid_id = (1..=64).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
            if !valid_id {
                return Err(EnvelopeError::Config(format!("bad key id {id:?}")));
            }
            let bytes = hex::decode(hex_key)
                .ok()
                .filter(|b| b.len() == 32)
                .ok_or_else(|| EnvelopeError::Config(format!("key {id} is not 64 hex digits")))?;
            let cipher = Aes256Gcm::new_from_slice(&bytes)
                .map_err(|e| EnvelopeError::Config(e.to_string()))?;
            if keys.insert(id.to_owned(), cipher).is_some() {
                return Err(EnvelopeError::Config(format!("key id {id} twice")));
            }
            current.get_or_insert_with(|| id.to_owned());
        }
        let current = current.ok_or_else(|| EnvelopeError::Config("no master key".into()))?;
        Ok(Self { current, keys })
    }

    pub fn current_id(&self) -> &str {
        &self.current
    }

    /// Seals `plain` for the object described by `aad`.
    pub fn seal(&self, plain: &[u8], aad: &[u8]) -> Vec<u8> {
        let master = &self.keys[&self.current];
        let data_key: [u8; 32] = rand::random();
        let wrap_nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let wrapped = master
            .encrypt(
                &wrap_nonce,
                Payload {
                    msg: data_key.as_slice(),
                    aad,
                },
            )
            .expect("AES-GCM seals a key");
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = Aes256Gcm::new(&data_key.into())
            .encrypt(&nonce, Payload { msg: plain, aad })
            .expect("AES-GCM seals");
        let id = self.current.as_bytes();
        let mut out =
            Vec::with_capacity(MAGIC.len() + 1 + id.len() + 12 + wrapped.len() + 12 + sealed.len());
        out.extend_from_slice(MAGIC);
        out.push(u8::try_from(id.len()).expect("ids are at most 64 bytes"));
        out.extend_from_slice(id);
        out.extend_from_slice(&wrap_nonce);
        out.extend_from_slice(&wrapped);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens an object sealed by [`seal`](Self::seal) with the same `aad`.
    pub fn open(&self, blob: &[u8], aad: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
        let rest = blob
            .strip_prefix(MAGIC.as_slice())
            .ok_or(EnvelopeError::Format)?;
        let (&id_len, rest) = rest.split_first().ok_or(EnvelopeError::Format)?;
        let id_len = usize::from(id_len);
        if rest.len() < id_len + 12 + 48 + 12 + 16 {
            return Err(EnvelopeError::Format);
        }
        let (id, rest) = rest.split_at(id_len);
        let id = std::str::from_utf8(id).map_err(|_| EnvelopeError::Format)?;
        let master = self
            .keys
            .get(id)
            .ok_or_else(|| EnvelopeError::UnknownKey(id.to_owned()))?;
        let (wrap_nonce, rest) = rest.split_at(12);
        let (wrapped, rest) = rest.split_at(48);
        let (nonce, sealed) = rest.split_at(12);
        let nonce_of = |bytes: &[u8]| -> Result<Nonce<_>, EnvelopeError> {
            let array: [u8; 12] = bytes.try_into().map_err(|_| EnvelopeError::Format)?;
            Ok(Nonce::from(array))
        };
        let data_key = master
            .decrypt(&nonce_of(wrap_nonce)?, Payload { msg: wrapped, aad })
            .map_err(|_| EnvelopeError::Tampered)?;
        Aes256Gcm::new_from_slice(&data_key)
            .map_err(|_| EnvelopeError::Tampered)?
            .decrypt(&nonce_of(nonce)?, Payload { msg: sealed, aad })
            .map_err(|_| EnvelopeError::Tampered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "k2026a:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const K2: &str = "k2026b:1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100";

    #[test]
    fn seals_and_opens_and_binds_the_owner() {
        let keys = MasterKeys::parse(K1).unwrap();
        let blob = keys.seal(b"a photo", b"captures/abc|account-1|face");
        assert!(
            !blob.windows(7).any(|w| w == b"a photo"),
            "no plaintext in the blob"
        );
        assert_eq!(
            keys.open(&blob, b"captures/abc|account-1|face").unwrap(),
            b"a photo"
        );
        assert_eq!(
            keys.open(&blob, b"captures/abc|account-2|face"),
            Err(EnvelopeError::Tampered)
        );
        let mut flipped = blob.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(
            keys.open(&flipped, b"captures/abc|account-1|face"),
            Err(EnvelopeError::Tampered)
        );
        assert_eq!(keys.open(b"JFIF....", b""), Err(EnvelopeError::Format));
        // Two seals of the same photo differ (fresh data key and nonces).
        assert_ne!(keys.seal(b"a photo", b"x"), keys.seal(b"a photo", b"x"));
    }

    #[test]
    fn master_keys_rotate() {
        let old = MasterKeys::parse(K1).unwrap();
        let blob = old.seal(b"photo", b"aad");
        let rotated = MasterKeys::parse(&format!("{K2},{K1}")).unwrap();
        assert_eq!(rotated.current_id(), "k2026b");
        assert_eq!(rotated.open(&blob, b"aad").unwrap(), b"photo");
        let only_new = MasterKeys::parse(K2).unwrap();
        assert_eq!(
            only_new.open(&blob, b"aad"),
            Err(EnvelopeError::UnknownKey("k2026a".into()))
        );
    }

    #[test]
    fn refuses_bad_key_specs() {
        for bad in ["", "nokey", "id:1234", "bad id:00", &format!("{K1},{K1}")] {
            assert!(MasterKeys::parse(bad).is_err(), "{bad:?}");
        }
    }
}
