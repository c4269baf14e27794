//! Signed tokens: compact JWS with EdDSA (Ed25519) and a `kid` in the header. Identity signs
//! access and service tokens; verification signs email proofs. Every verifier holds a
//! [`KeySet`] (kid → public key) and accepts only EdDSA, only its own audience and issuer.
//!
//! A key's id is derived from the key itself (a SHA-256 thumbprint), so rotating means adding
//! a key, never renaming one, and no config can pair a key with the wrong id.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("not an Ed25519 private key in PKCS#8 PEM: {0}")]
    Private(String),
    #[error("not an Ed25519 public key in SPKI PEM: {0}")]
    Public(String),
    #[error("not a JWK Set of Ed25519 keys: {0}")]
    Jwks(String),
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token is malformed")]
    Malformed,
    #[error("token was signed by an unknown key")]
    UnknownKey,
    #[error("token is invalid: {0}")]
    Invalid(jsonwebtoken::errors::Error),
}

fn kid_of(public: &ed25519_dalek::VerifyingKey) -> String {
    let digest = Sha256::digest(public.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..12])
}

/// An Ed25519 private key that signs tokens.
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    public: ed25519_dalek::VerifyingKey,
    encoding: EncodingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey(kid={})", self.kid)
    }
}

impl SigningKey {
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let key = ed25519_dalek::SigningKey::from_pkcs8_pem(pem.trim())
            .map_err(|e| KeyError::Private(e.to_string()))?;
        Self::from_dalek(&key)
    }

    fn from_dalek(key: &ed25519_dalek::SigningKey) -> Result<Self, KeyError> {
        let der = key
            .to_pkcs8_der()
            .map_err(|e| KeyError::Private(e.to_string()))?;
        let public = key.verifying_key();
        Ok(Self {
            kid: kid_of(&public),
            public,
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
        })
    }

    /// A fresh random key, for tests and for tools that provision keys.
    pub fn generate() -> Self {
        let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        Self::from_dalek(&key).expect("a generated key encodes")
    }

    /// PKCS#8 PEM of a fresh key, for provisioning.
    pub fn generate_pem() -> String {
        let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        key.to_pkcs8_pem(Default::default())
            .expect("a generated key encodes")
            .to_string()
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The SPKI PEM of the public half, for services configured with a verifying key.
    pub fn public_pem(&self) -> String {
        self.public
            .to_public_key_pem(Default::default())
            .expect("a public key encodes")
    }

    pub fn jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "alg": "EdDSA",
            "use": "sig",
            "kid": self.kid,
            "x": URL_SAFE_NO_PAD.encode(self.public.as_bytes()),
        })
    }

    pub fn sign<C: Serialize>(&self, claims: &C) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("EdDSA signing cannot fail")
    }
}

/// Public keys by id, and the rules a token must meet.
#[derive(Clone, Default)]
pub struct KeySet {
    keys: HashMap<String, DecodingKey>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.keys.keys()).finish()
    }
}

impl KeySet {
    pub fn from_signing_keys<'a>(keys: impl IntoIterator<Item = &'a SigningKey>) -> Self {
        let keys = keys
            .into_iter()
            .map(|k| {
                let x = URL_SAFE_NO_PAD.encode(k.public.as_bytes());
                let decoding = DecodingKey::from_ed_components(&x).expect("own key decodes");
                (k.kid.clone(), decoding)
            })
            .collect();
        Self { keys }
    }

    /// Every `PUBLIC KEY` PEM block in `text` (several for rotation).
    pub fn from_public_pems(text: &str) -> Result<Self, KeyError> {
        let mut keys = HashMap::new();
        let marker = "-----END PUBLIC KEY-----";
        for block in text.split_inclusive(marker).filter(|b| b.contains(marker)) {
            let public = ed25519_dalek::VerifyingKey::from_public_key_pem(block.trim())
                .map_err(|e| KeyError::Public(e.to_string()))?;
            let x = URL_SAFE_NO_PAD.encode(public.as_bytes());
            let decoding =
                DecodingKey::from_ed_components(&x).map_err(|e| KeyError::Public(e.to_string()))?;
            keys.insert(kid_of(&public), decoding);
        }
        if keys.is_empty() {
            return Err(KeyError::Public("no PUBLIC KEY block".into()));
        }
        Ok(Self { keys })
    }

    pub fn from_jwks(json: &str) -> Result<Self, KeyError> {
        #[derive(serde::Deserialize)]
        struct Jwks {
            keys: Vec<Jwk>,
        }
        #[derive(serde::Deserialize)]
        struct Jwk {
            kty: String,
            crv: String,
            kid: String,
            x: String,
        }
        let jwks: Jwks = serde_json::from_str(json).map_err(|e| KeyError::Jwks(e.to_string()))?;
        let mut keys = HashMap::new();
        for jwk in jwks.keys {
            if jwk.kty != "OKP" || jwk.crv != "Ed25519" {
                continue;
            }
            let decoding = DecodingKey::from_ed_components(&jwk.x)
                .map_err(|e| KeyError::Jwks(e.to_string()))?;
            keys.insert(jwk.kid, decoding);
        }
        Ok(Self { keys })
    }

    pub fn contains(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }

    /// The key ids.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// This set with `other`'s keys added, but only those of this set's that `keep` keeps.
    pub fn merged(&self, other: &Self, keep: impl Fn(&str) -> bool) -> Self {
        let mut keys: HashMap<String, DecodingKey> = self
            .keys
            .iter()
            .filter(|(kid, _)| keep(kid))
            .map(|(kid, key)| (kid.clone(), key.clone()))
            .collect();
        keys.extend(other.keys.iter().map(|(k, v)| (k.clone(), v.clone())));
        Self { keys }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Verifies signature, expiry ([`LEEWAY`] past `exp`), issuer and audience, and decodes the
    /// claims.
    pub fn verify<C: DeserializeOwned>(
        &self,
        token: &str,
        issuer: &str,
        audience: &str,
    ) -> Result<C, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Malformed);
        }
        let kid = header.kid.ok_or(TokenError::Malformed)?;
        let key = self.keys.get(&kid).ok_or(TokenError::UnknownKey)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = LEEWAY.as_secs();
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        jsonwebtoken::decode::<C>(token, key, &validation)
            .map(|data| data.claims)
            .map_err(TokenError::Invalid)
    }
}

/// How long past its `exp` a token is still accepted (clocks of pods differ a little). A
/// session's revocation must outlive its tokens by this much too.
pub const LEEWAY: std::time::Duration = std::time::Duration::from_secs(30);

/// Builds a JWK Set document from signing keys.
pub fn jwks_json<'a>(keys: impl IntoIterator<Item = &'a SigningKey>) -> String {
    let keys: Vec<_> = keys.into_iter().map(SigningKey::jwk).collect();
    serde_json::json!({ "keys": keys }).to_string()
}

/// Reads one or more Ed25519 private keys from config (PEM blocks one after the other, for a
/// rotation: the first signs, all are published); a wrong one is a config problem naming
/// `var`.
pub fn signing_keys_from_env(env: &mut crate::config::Env, var: &str) -> Vec<SigningKey> {
    let secret = env.required_secret(var);
    let marker = "-----END PRIVATE KEY-----";
    let mut keys = Vec::new();
    for block in secret
        .expose()
        .split_inclusive(marker)
        .filter(|b| b.contains(marker))
    {
        match SigningKey::from_pem(block) {
            Ok(key) => keys.push(key),
            Err(e) => env.invalid(var, e.to_string()),
        }
    }
    if keys.is_empty() && !secret.expose().trim().is_empty() {
        env.invalid(var, "no PRIVATE KEY block");
    }
    keys
}

/// Reads an Ed25519 private key from config; a wrong key is a config problem naming `var`.
pub fn signing_key_from_env(env: &mut crate::config::Env, var: &str) -> Option<SigningKey> {
    let secret = env.required_secret(var);
    if secret.expose().is_empty() {
        return None;
    }
    match SigningKey::from_pem(secret.expose()) {
        Ok(key) => Some(key),
        Err(e) => {
            env.invalid(var, e.to_string());
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Claims {
        iss: String,
        aud: String,
        sub: String,
        exp: i64,
    }

    fn claims(exp_in: i64) -> Claims {
        Claims {
            iss: "examreg-test".into(),
            aud: "examreg".into(),
            sub: "someone".into(),
            exp: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64
                + exp_in,
        }
    }

    #[test]
    fn a_token_verifies_through_pem_and_jwks_key_sets() {
        let key = SigningKey::from_pem(&SigningKey::generate_pem()).unwrap();
        let token = key.sign(&claims(60));
        let by_jwks = KeySet::from_jwks(&jwks_json([&key])).unwrap();
        let by_pem = KeySet::from_public_pems(&key.public_pem()).unwrap();
        for set in [by_jwks, by_pem, KeySet::from_signing_keys([&key])] {
            let got: Claims = set.verify(&token, "examreg-test", "examreg").unwrap();
            assert_eq!(got.sub, "someone");
        }
    }

    #[test]
    fn refuses_foreign_keys_expired_tokens_and_wrong_audience() {
        let key = SigningKey::generate();
        let other = SigningKey::generate();
        let set = KeySet::from_signing_keys([&key]);
        let foreign = other.sign(&claims(60));
        assert!(matches!(
            set.verify::<Claims>(&foreign, "examreg-test", "examreg"),
            Err(TokenError::UnknownKey)
        ));
        let expired = key.sign(&claims(-120));
        assert!(
            set.verify::<Claims>(&expired, "examreg-test", "examreg")
                .is_err()
        );
        let token = key.sign(&claims(60));
        assert!(
            set.verify::<Claims>(&token, "examreg-test", "other")
                .is_err()
        );
        assert!(
            set.verify::<Claims>(&token, "someone-else", "examreg")
                .is_err()
        );
        // A token whose signature was tampered with.
        let mut tampered = token.clone();
        tampered.pop();
        tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
        assert!(
            set.verify::<Claims>(&tampered, "examreg-test", "examreg")
                .is_err()
        );
        assert!(
            set.verify::<Claims>("not.a.token", "examreg-test", "examreg")
                .is_err()
        );
    }
}
