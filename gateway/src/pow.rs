//! Proof of work past an address's soft limits: a school's computer lab or a mobile carrier's
//! NAT puts hundreds of applicants behind one address, so the per-address limits cannot be a
//! wall. Past them a client is asked to solve a challenge (the ALTCHA scheme: self-hosted, no
//! third party) and earns a pass; with the pass it has budgets of its own, as if it had an
//! address to itself. The strict budgets (per email, per login) do not move.
//!
//! A challenge is stateless: `salt` (random, with its expiry and its `maxnumber`), `challenge`
//! = hex(SHA-256(salt ‖ decimal number)) for a secret number in `0..=maxnumber`, and
//! `signature` = hex(HMAC-SHA256(key, challenge)). The client finds the number by trying them in
//! turn and sends back `X-Proof-Of-Work: base64(JSON {algorithm, challenge, number, salt,
//! signature})`; each solution works once.
//!
//! A pass's price grows by `base / step` with every pass the address minted in the ten-minute
//! window ([`Pow::price`]), and a challenge carries the price it was issued at (its
//! `maxnumber`, in the signed salt). It is judged when redeemed, against the price then
//! ([`Pow::accepts`]): it mints a pass while at most `slack` passes were minted at the address
//! since it was issued. So the pupils of a lab who solve at the same moment all get their
//! passes, and a stockpile collected while the address was cheap mints `slack + 1` passes at
//! most before each one costs today's price.
//!
//! A pass is `p1.<id>.<expiry>.<HMAC>`, sent back in `X-Pow-Pass` on every request; it carries
//! no personal data and is only worth its own budgets.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// The header a solution comes in.
pub const SOLUTION_HEADER: &str = "x-proof-of-work";
/// The header a pass comes in, both ways.
pub const PASS_HEADER: &str = "x-pow-pass";
/// How long a challenge may take to solve.
const CHALLENGE_TTL_SECS: i64 = 300;
/// The window over which an address's passes raise its difficulty.
pub const WINDOW_SECS: i64 = 600;
const ALGORITHM: &str = "SHA-256";

/// The keys and the difficulty curve.
#[derive(Clone)]
pub struct Pow {
    key: Vec<u8>,
    /// The price of an address's first pass in the window, in `maxnumber`: the mean work is
    /// half of it.
    pub base: u64,
    /// Each this many passes an address minted in the window add `base` to its price.
    pub step: u64,
    /// How many passes may be minted at an address between a challenge's issue and its
    /// redemption before it is stale: the clients of one lab solving at the same moment.
    pub slack: u64,
    pub pass_ttl: Duration,
}

/// A solution that checked: the challenge (to spend once) and the work it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Solved {
    pub challenge: String,
    pub maxnumber: u64,
}

/// A challenge, as the client gets it (in the 429's error object, `proof_of_work`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Challenge {
    /// Always `SHA-256`.
    pub algorithm: String,
    /// Hex SHA-256 of `salt` followed by the number, in decimal.
    pub challenge: String,
    /// The number is in `0..=maxnumber`.
    pub maxnumber: u64,
    pub salt: String,
    pub signature: String,
}

/// A solved challenge, as the client sends it back.
#[derive(Debug, Deserialize, Serialize)]
pub struct Solution {
    pub algorithm: String,
    pub challenge: String,
    pub number: u64,
    pub salt: String,
    pub signature: String,
}

fn sha256_hex(salt: &str, number: u64) -> String {
    hex::encode(
        Sha256::new()
            .chain_update(salt)
            .chain_update(number.to_string())
            .finalize(),
    )
}

impl Pow {
    pub fn new(key: &[u8], base: u64, step: u64, slack: u64, pass_ttl: Duration) -> Self {
        Self {
            key: key.to_vec(),
            base: base.max(1),
            step: step.max(1),
            slack,
            pass_ttl,
        }
    }

    fn mac(&self, label: &[u8], parts: &[&str]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(label);
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac
    }

    /// The price, in `maxnumber`, of the next pass of an address that minted `passes` in the
    /// window: `base` more for each `step` of them. (`REDEEM` in `middleware` computes the
    /// same in Redis.)
    pub fn price(&self, passes: u64) -> u64 {
        self.base
            .saturating_add(self.base.saturating_mul(passes) / self.step)
    }

    /// Whether a solution of a challenge issued at `maxnumber` still mints a pass for an
    /// address that minted `passes` (`REDEEM` in `middleware` decides the same in Redis).
    pub fn accepts(&self, maxnumber: u64, passes: u64) -> bool {
        maxnumber >= self.price(passes.saturating_sub(self.slack))
    }

    /// How many passes challenges of `maxnumber` mint one after another in a fresh window,
    /// however many of them were collected.
    pub fn stockpile_mints(&self, maxnumber: u64) -> u64 {
        (0..).take_while(|&p| self.accepts(maxnumber, p)).count() as u64
    }

    /// A fresh challenge of `maxnumber`, valid from `now` (unix seconds).
    pub fn challenge(&self, maxnumber: u64, now: i64) -> Challenge {
        let nonce: [u8; 12] = rand::random();
        let salt = format!(
            "{}?expires={}&maxnumber={maxnumber}",
            hex::encode(nonce),
            now + CHALLENGE_TTL_SECS
        );
        let number = rand::thread_rng().gen_range(0..=maxnumber);
        let challenge = sha256_hex(&salt, number);
        let signature = hex::encode(
            self.mac(b"challenge", &[&challenge])
                .finalize()
                .into_bytes(),
        );
        Challenge {
            algorithm: ALGORITHM.into(),
            challenge,
            maxnumber,
            salt,
            signature,
        }
    }

    /// The challenge a header's solution solves and the work in it, if it is ours, unexpired
    /// and right (whether it was used already is the caller's to check). The salt is under the
    /// signature (the challenge is its digest), so its expiry and `maxnumber` are ours.
    pub fn check(&self, header: &str, now: i64) -> Option<Solved> {
        let json = base64::engine::general_purpose::STANDARD
            .decode(header.trim())
            .ok()?;
        let solution: Solution = serde_json::from_slice(&json).ok()?;
        let mut params = solution.salt.split_once('?')?.1.split('&');
        let expires: i64 = params.next()?.strip_prefix("expires=")?.parse().ok()?;
        let maxnumber: u64 = params.next()?.strip_prefix("maxnumber=")?.parse().ok()?;
        let signature = hex::decode(&solution.signature).ok()?;
        let ours = solution.algorithm == ALGORITHM
            && expires >= now
            && self
                .mac(b"challenge", &[&solution.challenge])
                .verify_slice(&signature)
                .is_ok()
            && params.next().is_none()
            && solution.number <= maxnumber
            && sha256_hex(&solution.salt, solution.number) == solution.challenge;
        ours.then_some(Solved {
            challenge: solution.challenge,
            maxnumber,
        })
    }

    /// A new pass, from `now`: its id and the token the client keeps.
    pub fn pass(&self, now: i64) -> (String, String) {
        let id = hex::encode(rand::random::<[u8; 16]>());
        let expires = now + i64::try_from(self.pass_ttl.as_secs()).unwrap_or(3600);
        let expires = expires.to_string();
        let mac = hex::encode(self.mac(b"pass", &[&id, &expires]).finalize().into_bytes());
        let token = format!("p1.{id}.{expires}.{mac}");
        (id, token)
    }

    /// The id of a pass we issued that has not expired.
    pub fn check_pass(&self, token: &str, now: i64) -> Option<String> {
        let mut parts = token.trim().split('.');
        let (Some("p1"), Some(id), Some(expires), Some(mac), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let mac = hex::decode(mac).ok()?;
        let ours = expires.parse::<i64>().ok()? >= now
            && self.mac(b"pass", &[id, expires]).verify_slice(&mac).is_ok();
        ours.then(|| id.to_owned())
    }
}

/// Solves a challenge the way a client does: every number in turn. For tests and tools (the
/// web page's worker does the same in JavaScript).
pub fn solve(challenge: &Challenge) -> Option<String> {
    let number = (0..=challenge.maxnumber)
        .find(|n| sha256_hex(&challenge.salt, *n) == challenge.challenge)?;
    let solution = Solution {
        algorithm: challenge.algorithm.clone(),
        challenge: challenge.challenge.clone(),
        number,
        salt: challenge.salt.clone(),
        signature: challenge.signature.clone(),
    };
    Some(base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&solution).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pow() -> Pow {
        Pow::new(
            b"test-key-0123456789abcdef0123456789",
            500,
            10,
            10,
            Duration::from_secs(60),
        )
    }

    #[test]
    fn a_solved_challenge_checks_and_a_tampered_or_expired_one_does_not() {
        let pow = pow();
        let challenge = pow.challenge(500, 1_000);
        let solution = solve(&challenge).unwrap();
        assert_eq!(
            pow.check(&solution, 1_000),
            Some(Solved {
                challenge: challenge.challenge.clone(),
                maxnumber: 500
            })
        );
        assert_eq!(pow.check(&solution, 1_000 + CHALLENGE_TTL_SECS + 1), None);
        // Another key's challenge, a wrong number, a salt with a later expiry: refused.
        let other = Pow::new(
            b"another-key-0123456789abcdef012345",
            500,
            10,
            10,
            Duration::from_secs(60),
        );
        assert_eq!(other.check(&solution, 1_000), None);
        let json = base64::engine::general_purpose::STANDARD
            .decode(&solution)
            .unwrap();
        let mut parsed: Solution = serde_json::from_slice(&json).unwrap();
        parsed.number += 1;
        let encode = |s: &Solution| {
            base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(s).unwrap())
        };
        assert_eq!(pow.check(&encode(&parsed), 1_000), None);
        parsed.number -= 1;
        parsed.salt = parsed.salt.replace("?expires=", "?expires=9");
        assert_eq!(pow.check(&encode(&parsed), 1_000), None);
        // A salt that claims more work than it was issued with is another challenge: its
        // digest no longer matches.
        let mut inflated: Solution = serde_json::from_slice(&json).unwrap();
        inflated.salt = inflated.salt.replace("maxnumber=500", "maxnumber=500000");
        assert_eq!(pow.check(&encode(&inflated), 1_000), None);
        assert_eq!(pow.check("not base64 at all", 1_000), None);
    }

    #[test]
    fn the_price_rises_with_the_passes_an_address_minted() {
        let pow = pow();
        assert_eq!(pow.price(0), 500);
        assert_eq!(pow.price(9), 950);
        assert_eq!(pow.price(10), 1_000);
        assert_eq!(pow.price(200), 10_500);
        // No overflow, however many.
        assert!(pow.price(u64::MAX) > pow.price(1_000_000));
        // A challenge is worth a pass while at most `slack` (10) passes were minted after it
        // was issued.
        assert!(pow.accepts(500, 0) && pow.accepts(500, 10) && !pow.accepts(500, 11));
        assert!(pow.accepts(1_000, 20) && !pow.accepts(1_000, 21));
        // However many base challenges were stockpiled, they mint eleven passes.
        assert_eq!(pow.stockpile_mints(500), 11);
        assert_eq!(pow.stockpile_mints(pow.price(100)), 111);
    }

    #[test]
    fn a_pass_is_ours_until_it_expires() {
        let pow = pow();
        let (id, token) = pow.pass(1_000);
        assert_eq!(pow.check_pass(&token, 1_060), Some(id.clone()));
        assert_eq!(pow.check_pass(&token, 1_061), None);
        let forged = token.replace(&id, &"0".repeat(32));
        assert_eq!(pow.check_pass(&forged, 1_000), None);
        assert_eq!(pow.check_pass(&format!("{token}.x"), 1_000), None);
        assert_eq!(pow.check_pass("", 1_000), None);
    }
}
