//! Login throttling: two failure budgets, one per login identifier and one per client address
//! (schools share addresses: that one is larger). A slot of each is reserved before the password
//! is checked, so parallel guesses cannot exceed a budget; it is given back when no guess was
//! made, and a spent budget locks its key for a time that doubles with each lockout. The
//! counts live in Postgres, so they hold across replicas.
//!
//! A spent login budget is a lockout (`too_many_attempts`): that login waits. A spent address
//! budget is not: a school's lab shares the address, and one pupil's typos must not lock out
//! the rest. It answers `address_budget_exhausted`, which the gateway turns into a proof of
//! work; the pass it earns comes back as the budget key, with a budget of its own.

use crate::{Throttle, error::Error, store};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use std::time::Duration;

/// Key of a login identifier's budget (hashed: unknown logins are arbitrary input).
pub(crate) fn login_key(login: &str) -> String {
    format!("login:{}", hex::encode(Sha256::digest(login.as_bytes())))
}

fn ip_key(ip: &str) -> String {
    format!("ip:{ip}")
}

/// A login attempt holding its reserved slots until it says how it ended.
pub(crate) struct Attempt<'a> {
    pool: &'a PgPool,
    policy: &'a Throttle,
    login: String,
    /// None when the caller named no address (a service calling for itself).
    ip: Option<String>,
}

impl<'a> Attempt<'a> {
    /// Reserves a slot of both budgets, or refuses with how long to wait.
    pub(crate) async fn reserve(
        pool: &'a PgPool,
        policy: &'a Throttle,
        login: &str,
        client_ip: &str,
    ) -> Result<Self, Error> {
        let attempt = Self {
            pool,
            policy,
            login: login_key(login),
            ip: (!client_ip.is_empty()).then(|| ip_key(client_ip)),
        };
        let window = policy.window.as_secs_f64();
        if store::throttle_reserve(pool, &attempt.login, policy.login_budget, window)
            .await?
            .is_none()
        {
            metrics::counter!("identity_logins_total", "outcome" => "locked").increment(1);
            return Err(Error::TooManyAttempts {
                wait: attempt.locked_for(&attempt.login).await,
            });
        }
        if let Some(ip) = &attempt.ip
            && store::throttle_reserve(pool, ip, policy.ip_budget, window)
                .await?
                .is_none()
        {
            // The login's slot was not used for a guess: give it back.
            store::throttle_succeed(pool, &attempt.login, false).await?;
            metrics::counter!("identity_logins_total", "outcome" => "address_budget").increment(1);
            return Err(Error::AddressBudgetExhausted {
                wait: attempt.locked_for(ip).await,
            });
        }
        Ok(attempt)
    }

    /// How long `key` stays locked (at least a second).
    async fn locked_for(&self, key: &str) -> Duration {
        let secs = store::throttle_locked_for(self.pool, key)
            .await
            .unwrap_or(1.0);
        Duration::from_secs_f64(secs.max(1.0))
    }

    /// No guess was made (the hash never ran): the slots go back.
    pub(crate) async fn abandon(self) -> Result<(), Error> {
        store::throttle_succeed(self.pool, &self.login, false).await?;
        if let Some(ip) = &self.ip {
            store::throttle_succeed(self.pool, ip, false).await?;
        }
        Ok(())
    }

    /// A wrong guess: the slots stay spent, and a spent budget locks its key.
    pub(crate) async fn failed(self) -> Result<(), Error> {
        let t = self.policy;
        let (base, max) = (t.lockout_base.as_secs_f64(), t.lockout_max.as_secs_f64());
        if let Some(secs) =
            store::throttle_fail(self.pool, &self.login, t.login_budget, base, max).await?
        {
            tracing::warn!(secs, "login identifier locked after failed logins");
            metrics::counter!("identity_lockouts_total").increment(1);
        }
        if let Some(ip) = &self.ip {
            store::throttle_fail(self.pool, ip, t.ip_budget, base, max).await?;
        }
        Ok(())
    }

    /// The owner proved the password: the login's history is forgotten, the address's slot
    /// goes back.
    pub(crate) async fn succeeded(self) -> Result<(), Error> {
        store::throttle_succeed(self.pool, &self.login, true).await?;
        if let Some(ip) = &self.ip {
            store::throttle_succeed(self.pool, ip, false).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An attempt reserved in both budgets (the test fails if it is refused).
    async fn attempt<'a>(
        pool: &'a PgPool,
        policy: &'a Throttle,
        login: &str,
        ip: &str,
    ) -> Attempt<'a> {
        Attempt::reserve(pool, policy, login, ip).await.unwrap()
    }

    async fn pool() -> PgPool {
        let pool = PgPool::connect(&examreg_testkit::fresh_database("throttle").await)
            .await
            .unwrap();
        sqlx::migrate!("./migrations").run(&pool).await.unwrap();
        pool
    }

    fn policy() -> Throttle {
        Throttle {
            login_budget: 2,
            ip_budget: 3,
            window: Duration::from_secs(900),
            lockout_base: Duration::from_secs(60),
            lockout_max: Duration::from_secs(3600),
        }
    }

    fn waits(e: Error) -> Duration {
        let Error::TooManyAttempts { wait } = e else {
            panic!("expected a lockout, got {e:?}");
        };
        wait
    }

    fn asks_for_work(e: Error) {
        assert!(
            matches!(e, Error::AddressBudgetExhausted { .. }),
            "expected the address's budget spent, got {e:?}"
        );
    }

    #[tokio::test]
    async fn a_spent_login_budget_locks_that_login_and_a_spent_address_budget_the_address() {
        let (pool, policy) = (pool().await, policy());
        for _ in 0..2 {
            let attempt = attempt(&pool, &policy, "791028302728", "10.0.0.1").await;
            attempt.failed().await.unwrap();
        }
        let locked = Attempt::reserve(&pool, &policy, "791028302728", "10.0.0.1").await;
        let wait = waits(locked.err().unwrap());
        assert!(wait > Duration::from_secs(50) && wait <= Duration::from_secs(60));
        // Another login from the same address has one guess left of the address's three;
        // then the address is not locked but asked for work (a pass comes back as its own key).
        let other = attempt(&pool, &policy, "061211600012", "10.0.0.1").await;
        other.failed().await.unwrap();
        asks_for_work(
            Attempt::reserve(&pool, &policy, "N1234567", "10.0.0.1")
                .await
                .err()
                .unwrap(),
        );
        attempt(&pool, &policy, "N1234567", "pass:0123")
            .await
            .succeeded()
            .await
            .unwrap();
        // From elsewhere, the other login still may try.
        attempt(&pool, &policy, "061211600012", "10.0.0.2")
            .await
            .succeeded()
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn an_abandoned_attempt_costs_nothing_and_a_success_forgets_the_failures() {
        let (pool, policy) = (pool().await, policy());
        for _ in 0..5 {
            attempt(&pool, &policy, "791028302728", "")
                .await
                .abandon()
                .await
                .unwrap();
        }
        attempt(&pool, &policy, "791028302728", "")
            .await
            .failed()
            .await
            .unwrap();
        attempt(&pool, &policy, "791028302728", "")
            .await
            .succeeded()
            .await
            .unwrap();
        // The failure before the success is forgotten: two more wrong guesses are allowed.
        for _ in 0..2 {
            attempt(&pool, &policy, "791028302728", "")
                .await
                .failed()
                .await
                .unwrap();
        }
        waits(
            Attempt::reserve(&pool, &policy, "791028302728", "")
                .await
                .err()
                .unwrap(),
        );
    }
}
