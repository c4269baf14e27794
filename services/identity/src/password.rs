//! Passwords: the policy an applicant's password must meet, and argon2id hashing off the async
//! runtime behind a bound (hashing is the most expensive thing identity does; unbounded, a
//! login flood would starve every other request).

use argon2::{
    Algorithm, Argon2, Block, Params, PasswordHash, Version,
    password_hash::{Output, ParamsString, Salt, SaltString},
};
use examreg_kit::work::{Gate, Overloaded};
use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

/// Why a password is refused; `code()` is the stable reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("the password must be at least 8 characters")]
    TooShort,
    #[error("the password must be at most 128 characters")]
    TooLong,
    #[error("the password must not contain your IIN, passport number or email name")]
    ContainsPersonalData,
    #[error("the password is too common or easy to guess")]
    TooWeak,
}

impl PolicyError {
    pub fn code(self) -> &'static str {
        match self {
            Self::TooShort => "too_short",
            Self::TooLong => "too_long",
            Self::ContainsPersonalData => "contains_personal_data",
            Self::TooWeak => "too_weak",
        }
    }
}

/// Checks a password against the policy. `personal` holds the applicant's own identifiers
/// (IIN or passport number, the email's local part): a password containing any of them is
/// refused outright, and they are given to the strength estimator so variations of them score
/// low too.
pub fn check_policy(password: &str, personal: &[&str]) -> Result<(), PolicyError> {
    let length = password.chars().count();
    if length < 8 {
        return Err(PolicyError::TooShort);
    }
    if length > 128 {
        return Err(PolicyError::TooLong);
    }
    let lower = password.to_lowercase();
    if personal
        .iter()
        .map(|p| p.trim().to_lowercase())
        .any(|p| p.chars().count() >= 4 && lower.contains(&p))
    {
        return Err(PolicyError::ContainsPersonalData);
    }
    // zxcvbn's cost grows with length; past 64 characters a password is strong by length.
    if length <= 64 {
        let estimate = zxcvbn::zxcvbn(password, personal);
        if (estimate.score() as u8) < 3 {
            return Err(PolicyError::TooWeak);
        }
    }
    Ok(())
}

/// Hashes and verifies with argon2id on blocking threads: a bounded number at a time, a
/// bounded number waiting, the rest refused with a retry hint.
#[derive(Clone)]
pub struct Hasher {
    params: Params,
    gate: Gate,
    /// argon2's working memory (19 MiB and more), kept between hashes: at most one block per
    /// hash running, so memory stays bounded and no hash pays for a fresh allocation.
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
    /// A hash of a random password with the current parameters: an unknown login is checked
    /// against it, so it costs the same time as a known one.
    dummy: Arc<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("argon2: {0}")]
    Argon2(String),
    #[error("hashing task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error(transparent)]
    Overloaded(#[from] Overloaded),
}

/// The outcome of a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    No,
    Yes,
    /// Right password, but stored with other parameters: store a fresh hash.
    YesRehash,
}

impl Hasher {
    /// `memory_kib`, `iterations`, `parallelism` as argon2 takes them (OWASP's minimum for
    /// argon2id is 19456 KiB, 2, 1); `concurrency` hashes at once, `queue` more waiting.
    pub fn new(
        memory_kib: u32,
        iterations: u32,
        parallelism: u32,
        concurrency: usize,
        queue: usize,
    ) -> Result<Self, HashError> {
        let params = Params::new(memory_kib, iterations, parallelism, None)
            .map_err(|e| HashError::Argon2(e.to_string()))?;
        let dummy_password: [u8; 16] = rand::random();
        let dummy = hash_with(&params, &hex::encode(dummy_password), &mut Vec::new())?;
        Ok(Self {
            params,
            gate: Gate::new("argon2", concurrency, queue, Duration::from_secs(1)),
            memory: Arc::default(),
            dummy: Arc::new(dummy),
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(Params, &mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let _permit = self.gate.enter().await?;
        let params = self.params.clone();
        let pool = self.memory.clone();
        let span = tracing::Span::current();
        Ok(tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            examreg_kit::work::background_priority();
            let mut memory = pool
                .lock()
                .map(|mut p| p.pop())
                .ok()
                .flatten()
                .unwrap_or_default();
            let result = work(params, &mut memory);
            if let Ok(mut pool) = pool.lock() {
                pool.push(memory);
            }
            result
        })
        .await?)
    }

    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let password = password.to_owned();
        self.run(move |params, memory| hash_with(&params, &password, memory))
            .await?
    }

    /// Verifies against `stored`, or against the dummy hash when there is no account.
    pub async fn verify(
        &self,
        password: &str,
        stored: Option<&str>,
    ) -> Result<Verified, HashError> {
        let password = password.to_owned();
        let real = stored.is_some();
        let stored = stored.map_or_else(|| (*self.dummy).clone(), str::to_owned);
        let verified = self
            .run(move |params, memory| -> Result<Verified, HashError> {
                let hash =
                    PasswordHash::new(&stored).map_err(|e| HashError::Argon2(e.to_string()))?;
                if !matches(&hash, password.as_bytes(), memory)? {
                    return Ok(Verified::No);
                }
                let current = hash.algorithm.as_str() == "argon2id"
                    && Params::try_from(&hash).is_ok_and(|p| {
                        p.m_cost() == params.m_cost()
                            && p.t_cost() == params.t_cost()
                            && p.p_cost() == params.p_cost()
                    });
                Ok(if current {
                    Verified::Yes
                } else {
                    Verified::YesRehash
                })
            })
            .await??;
        Ok(if real { verified } else { Verified::No })
    }
}

fn argon2_error(e: impl std::fmt::Display) -> HashError {
    HashError::Argon2(e.to_string())
}

/// One argon2 computation in `memory` (grown to the parameters' size, kept for the next).
fn compute(
    algorithm: Algorithm,
    version: Version,
    params: &Params,
    password: &[u8],
    salt: Salt<'_>,
    output_len: usize,
    memory: &mut Vec<Block>,
) -> Result<Output, HashError> {
    let mut salt_buffer = [0u8; 64];
    let salt = salt.decode_b64(&mut salt_buffer).map_err(argon2_error)?;
    memory.resize(params.block_count(), Block::default());
    let argon2 = Argon2::new(algorithm, version, params.clone());
    Output::init_with(output_len, |out| {
        argon2
            .hash_password_into_with_memory(password, salt, out, &mut memory[..])
            .map_err(Into::into)
    })
    .map_err(argon2_error)
}

/// A new argon2id hash of `password` in PHC string form, the same as
/// `Argon2::hash_password` writes, computed in reused memory.
fn hash_with(
    params: &Params,
    password: &str,
    memory: &mut Vec<Block>,
) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    let output_len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let output = compute(
        Algorithm::Argon2id,
        Version::V0x13,
        params,
        password.as_bytes(),
        salt.as_salt(),
        output_len,
        memory,
    )?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(argon2_error)?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(hash.to_string())
}

/// Whether `password` gives `stored`'s hash with `stored`'s own algorithm, version and
/// parameters (compared in constant time by `Output`).
fn matches(
    stored: &PasswordHash<'_>,
    password: &[u8],
    memory: &mut Vec<Block>,
) -> Result<bool, HashError> {
    let (Some(salt), Some(expected)) = (stored.salt, stored.hash) else {
        return Ok(false);
    };
    let algorithm = Algorithm::try_from(stored.algorithm).map_err(argon2_error)?;
    let version = stored
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(argon2_error)?
        .unwrap_or_default();
    let params = Params::try_from(stored).map_err(argon2_error)?;
    let output = compute(
        algorithm,
        version,
        &params,
        password,
        salt,
        expected.len(),
        memory,
    )?;
    Ok(output == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_short_long_common_and_guessable_passwords() {
        assert_eq!(check_policy("Kx9#q2", &[]), Err(PolicyError::TooShort));
        assert_eq!(
            check_policy(&"Kx9#q2Lm".repeat(17), &[]),
            Err(PolicyError::TooLong)
        );
        for common in [
            "password",
            "12345678",
            "qwerty123",
            "Password1",
            "iloveyou1",
            "11111111",
            "abcdefgh",
        ] {
            assert_eq!(
                check_policy(common, &[]),
                Err(PolicyError::TooWeak),
                "{common}"
            );
        }
    }

    #[test]
    fn refuses_passwords_built_from_the_applicants_own_data() {
        let iin = "791028302728";
        assert_eq!(
            check_policy("My791028302728!", &[iin, "aigerim.n"]),
            Err(PolicyError::ContainsPersonalData)
        );
        assert_eq!(
            check_policy("Aigerim.N-2026!x", &[iin, "aigerim.n"]),
            Err(PolicyError::ContainsPersonalData)
        );
        assert_eq!(
            check_policy("xN12345678yz!Q", &["N12345678"]),
            Err(PolicyError::ContainsPersonalData)
        );
    }

    #[test]
    fn accepts_a_strong_password() {
        assert_eq!(
            check_policy("Жасыл-алма-көктемде-7", &["791028302728"]),
            Ok(())
        );
        assert_eq!(check_policy("correct horse battery staple", &[]), Ok(()));
        assert_eq!(check_policy(&"Zq8!vT3#pL".repeat(12), &[]), Ok(()));
    }

    #[tokio::test]
    async fn verifies_and_asks_for_a_rehash_when_parameters_change() {
        let weak = Hasher::new(8, 1, 1, 2, 8).unwrap();
        let strong = Hasher::new(19456, 2, 1, 2, 8).unwrap();
        let old = weak.hash("correct horse battery staple").await.unwrap();
        assert_eq!(
            weak.verify("correct horse battery staple", Some(&old))
                .await
                .unwrap(),
            Verified::Yes
        );
        assert_eq!(
            strong
                .verify("correct horse battery staple", Some(&old))
                .await
                .unwrap(),
            Verified::YesRehash
        );
        assert_eq!(
            strong.verify("wrong horse", Some(&old)).await.unwrap(),
            Verified::No
        );
        let new = strong.hash("correct horse battery staple").await.unwrap();
        assert!(new.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        // No account: the dummy hash is checked and the answer is always no.
        assert_eq!(
            strong.verify("anything at all", None).await.unwrap(),
            Verified::No
        );
    }

    #[tokio::test]
    async fn a_flood_beyond_the_queue_is_refused_not_queued() {
        let hasher = Hasher::new(19456, 2, 1, 1, 2).unwrap();
        let attempts: Vec<_> = (0..8)
            .map(|_| {
                let hasher = hasher.clone();
                tokio::spawn(async move { hasher.hash("correct horse battery staple").await })
            })
            .collect();
        let mut refused = 0;
        let mut hashed = 0;
        for attempt in attempts {
            match attempt.await.unwrap() {
                Ok(_) => hashed += 1,
                Err(HashError::Overloaded(o)) => {
                    assert_eq!(o.retry_after, Duration::from_secs(1));
                    refused += 1;
                }
                Err(e) => panic!("{e}"),
            }
        }
        // One running and two waiting at most; the others were turned away at once.
        assert!(
            hashed >= 3 && refused >= 1,
            "{hashed} hashed, {refused} refused"
        );
        assert_eq!(hashed + refused, 8);
    }

    #[tokio::test]
    async fn hashes_in_reused_memory_agree_with_the_reference_implementation() {
        use argon2::{PasswordHasher, PasswordVerifier};
        let hasher = Hasher::new(19456, 2, 1, 1, 4).unwrap();
        let ours = hasher.hash("correct horse battery staple").await.unwrap();
        // The reference verifies ours…
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse battery staple", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"wrong", &parsed)
                .is_err()
        );
        // …and we verify the reference's, twice in the same reused memory.
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let theirs = Argon2::default()
            .hash_password(b"correct horse battery staple", &salt)
            .unwrap()
            .to_string();
        for _ in 0..2 {
            assert_eq!(
                hasher
                    .verify("correct horse battery staple", Some(&theirs))
                    .await
                    .unwrap(),
                Verified::Yes
            );
            assert_eq!(
                hasher
                    .verify("correct horse battery stapler", Some(&theirs))
                    .await
                    .unwrap(),
                Verified::No
            );
        }
        // One hash at a time: one block of memory kept.
        assert_eq!(hasher.memory.lock().unwrap().len(), 1);
    }
}
