//! The services as the gateway calls them: one typed facade per service
//! ([`Identity`], [`Verification`], [`Biometrics`], [`Profile`]) whose methods take domain
//! values and give answers, so a handler reads `state.identity.login(…)`. A facade owns what
//! every call needs: who the call is made as ([`As`]: the gateway's own service token or a
//! bearer the caller presented), the retry of UNAVAILABLE while a replica restarts, and the
//! reading of the refusals a handler acts on into typed outcomes. Nothing here knows HTTP
//! routes or flows.

pub use biometrics::{Biometrics, Upload};
pub use identity::{Created, Identity};
pub use profile::Profile;
pub use verification::Verification;

use crate::error::{ApiError, ApiResult};
use examreg_kit::{auth::with_bearer, client::ServiceToken};
use std::{future::Future, time::Duration};
use tonic::{Request, Response, Status, transport::Channel};

/// Who a call is made as.
#[derive(Debug, Clone, Copy)]
pub enum As<'a> {
    /// The gateway itself, with its service token (the flows before an account exists, the
    /// public reference data).
    Gateway,
    /// The token the caller presented, forwarded: an applicant's access or capture token, or
    /// an operator's service token. Each service checks it itself.
    Bearer(&'a str),
    /// An operator's service token with the person it acts for, when the call named one
    /// (`x-examreg-on-behalf-of`; a staff client's calls are refused without it).
    Operator(&'a str, Option<&'a str>),
}

/// `call!(self, who, message => rpc)`: the facade's RPC `rpc` through [`Calls::call`] (and
/// likewise `call_or_refused!`, `call_once!`), so each facade method names only what differs.
macro_rules! call {
    ($facade:ident, $who:expr, $message:expr => $rpc:ident) => {
        $facade
            .calls
            .call(&$facade.client, $who, $message, |mut c, r| async move {
                c.$rpc(r).await
            })
    };
}

macro_rules! call_or_refused {
    ($facade:ident, $who:expr, $message:expr => $rpc:ident) => {
        $facade
            .calls
            .call_or_refused(&$facade.client, $who, $message, |mut c, r| async move {
                c.$rpc(r).await
            })
    };
}

macro_rules! call_once {
    ($facade:ident, $who:expr, $message:expr => $rpc:ident) => {
        $facade
            .calls
            .call_once(&$facade.client, $who, $message, |mut c, r| async move {
                c.$rpc(r).await
            })
    };
}

mod biometrics;
mod identity;
mod profile;
mod verification;

/// What the facades share: the gateway's service token.
#[derive(Clone)]
pub(crate) struct Calls {
    token: ServiceToken,
}

impl Calls {
    pub(crate) fn new(token: ServiceToken) -> Self {
        Self { token }
    }

    /// `message` as a request made as `who`. Failing to get the gateway's own token is the
    /// gateway's problem, never the applicant's: it answers 503, not 401.
    async fn request<M>(&self, who: As<'_>, message: M) -> ApiResult<Request<M>> {
        match who {
            As::Gateway => self.token.request(message).await.map_err(|status| {
                ApiError::unavailable(&format_args!(
                    "no service token from identity: {:?} {}",
                    status.code(),
                    status.message()
                ))
            }),
            As::Bearer(token) => Ok(with_bearer(message, token)?),
            As::Operator(token, person) => {
                let mut request = with_bearer(message, token)?;
                if let Some(person) = person {
                    examreg_kit::auth::on_behalf_of(&mut request, person)?;
                }
                Ok(request)
            }
        }
    }

    /// Calls `rpc` on a clone of `client` with `message` as `who`, again while the answer is a
    /// 503 (the service UNAVAILABLE, a call cut off by a restarting replica, no service token
    /// yet; see [`retrying`]); every failure becomes the public error.
    async fn call<C: Clone, M: Clone, R, Fut>(
        &self,
        client: &C,
        who: As<'_>,
        message: M,
        rpc: impl Fn(C, Request<M>) -> Fut,
    ) -> ApiResult<R>
    where
        Fut: Future<Output = Result<Response<R>, Status>>,
    {
        // The codes the public API answers 503 for.
        let unavailable = |status: &Status| {
            crate::error::http_status(status.code()) == axum::http::StatusCode::SERVICE_UNAVAILABLE
        };
        self.attempts(client, who, message, rpc, unavailable)
            .await?
            .map_err(ApiError::from)
    }

    /// As [`Calls::call`], but the service's answer is handed back as it is, for the facade to
    /// read its refusals; only UNAVAILABLE is retried, and only it and a missing service token
    /// are errors.
    async fn call_or_refused<C: Clone, M: Clone, R, Fut>(
        &self,
        client: &C,
        who: As<'_>,
        message: M,
        rpc: impl Fn(C, Request<M>) -> Fut,
    ) -> ApiResult<Result<R, Status>>
    where
        Fut: Future<Output = Result<Response<R>, Status>>,
    {
        let unavailable = |status: &Status| status.code() == tonic::Code::Unavailable;
        self.attempts(client, who, message, rpc, unavailable).await
    }

    /// The attempts of one call: again while `retried` says so of the answer.
    async fn attempts<C: Clone, M: Clone, R, Fut>(
        &self,
        client: &C,
        who: As<'_>,
        message: M,
        rpc: impl Fn(C, Request<M>) -> Fut,
        retried: impl Fn(&Status) -> bool,
    ) -> ApiResult<Result<R, Status>>
    where
        Fut: Future<Output = Result<Response<R>, Status>>,
    {
        retrying(|| async {
            let request = self.request(who, message.clone()).await?;
            let sent = crate::upstream::bearer(&request);
            let mut answer = rpc(client.clone(), request)
                .await
                .map_err(examreg_kit::errors::lost_as_unavailable);
            // The gateway's own token refused (identity rotated away from the key that signed
            // it): a new one, once. Only a refusal of the token itself, which names no reason:
            // `invalid_credentials` (a wrong password) is UNAUTHENTICATED too, and repeating
            // that login would spend a second slot of its failure budgets.
            if let (As::Gateway, Err(status), Some(sent)) = (who, &answer, sent)
                && status.code() == tonic::Code::Unauthenticated
                && examreg_kit::errors::reason_of(status).reason.is_empty()
            {
                self.token.forget(&sent).await;
                let request = self.request(who, message.clone()).await?;
                answer = rpc(client.clone(), request)
                    .await
                    .map_err(examreg_kit::errors::lost_as_unavailable);
            }
            match answer {
                Err(status) if retried(&status) => Err(status.into()),
                other => Ok(other.map(Response::into_inner)),
            }
        })
        .await
    }

    /// One call, not retried: for the calls whose repeat is not harmless (a refresh token
    /// presented twice revokes its session).
    async fn call_once<C, M, R, F, Fut>(
        &self,
        client: &C,
        who: As<'_>,
        message: M,
        rpc: F,
    ) -> ApiResult<R>
    where
        C: Clone,
        F: FnOnce(C, Request<M>) -> Fut,
        Fut: Future<Output = Result<Response<R>, Status>>,
    {
        let request = self.request(who, message).await?;
        Ok(rpc(client.clone(), request)
            .await
            .map_err(examreg_kit::errors::lost_as_unavailable)?
            .into_inner())
    }
}

/// The bearer token a request carries.
fn bearer<M>(request: &Request<M>) -> Option<String> {
    examreg_kit::auth::bearer_of(request).map(str::to_owned)
}

/// How long the gateway keeps calling a service that is unavailable (a replica restarting or
/// draining): long enough for a rolling restart, short enough for a person waiting.
const RETRY_DEADLINE: Duration = Duration::from_secs(10);

/// Runs `attempt` again while it fails with 503 (a service or identity's token endpoint
/// UNAVAILABLE), with a doubling pause, until `RETRY_DEADLINE`. Every call the gateway retries
/// is safe to repeat: reads, writes that set values, and calls whose repeat a drained replica
/// cannot have seen (graceful shutdown finishes what it accepted). Refreshing a session is the
/// exception and is never retried ([`Calls::call_once`]).
pub async fn retrying<R, Fut>(mut attempt: impl FnMut() -> Fut) -> ApiResult<R>
where
    Fut: Future<Output = ApiResult<R>>,
{
    let deadline = std::time::Instant::now() + RETRY_DEADLINE;
    let mut pause = Duration::from_millis(50);
    loop {
        match attempt().await {
            Err(e)
                if e.status == axum::http::StatusCode::SERVICE_UNAVAILABLE
                    && std::time::Instant::now() + pause < deadline =>
            {
                metrics::counter!("gateway_retries_total").increment(1);
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            other => return other,
        }
    }
}

/// Whether the service behind `channel` answers its health check as serving, within 2 s.
pub(crate) async fn serving(channel: &Channel) -> bool {
    tokio::time::timeout(
        Duration::from_secs(2),
        examreg_kit::channel::serving(channel.clone()),
    )
    .await
    .is_ok_and(|answer| answer.is_ok())
}
