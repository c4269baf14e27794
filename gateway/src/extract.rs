//! Who is asking: the client (address, agent, language), the applicant behind a bearer
//! token, the phone that took over the photos, the operator. Each is an axum extractor whose
//! rejection is the API's error.

use crate::{config::Config, error::ApiError, i18n, state::AppState};
use axum::{
    extract::ConnectInfo,
    http::{HeaderMap, StatusCode, header},
};
use examreg_kit::auth::Caller;
use std::net::SocketAddr;

/// The client as the gateway sees it, for budgets and audit.
#[derive(Debug, Clone)]
pub struct Client {
    /// The address, as recorded with consents and sessions.
    pub ip: String,
    /// What the per-address budgets count against: the address's network
    /// ([`address_key`]: an IPv6 client's /64, by default), since one subscriber holds a whole
    /// prefix and a budget per address would be a budget per whim.
    pub address: String,
    pub user_agent: String,
    pub lang: i18n::Lang,
    /// The pass of a client vouched for by a proof of work (`middleware::Vouched`).
    pub pass: Option<String>,
}

impl Client {
    pub fn from_parts(config: &Config, headers: &HeaderMap, peer: Option<SocketAddr>) -> Self {
        let ip = forwarded_client(headers, config.trusted_proxies).or(peer.map(|p| p.ip()));
        let address = ip.map_or_else(String::new, |ip| {
            address_key(ip, config.ipv4_prefix, config.ipv6_prefix)
        });
        let ip = ip
            .map(|ip| ip.to_canonical().to_string())
            .unwrap_or_default();
        let user_agent: String = headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .chars()
            .take(256)
            .collect();
        let lang = i18n::Lang::from_header(
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok()),
        );
        Self {
            ip,
            address,
            user_agent,
            lang,
            pass: None,
        }
    }

    /// Who the per-client budgets of the services (letters at verification, failed logins at
    /// identity) count against: the pass when the client earned one (an address shared by a
    /// school is not one client), else the address's network.
    pub fn budget_key(&self) -> String {
        match &self.pass {
            Some(pass) => format!("pass:{pass}"),
            None => self.address.clone(),
        }
    }
}

/// The network an address's budgets count against: the address masked to `v4` bits (IPv4,
/// and IPv4 mapped into IPv6) or `v6` bits (IPv6), written as `network/bits` (a whole address
/// as itself).
pub fn address_key(ip: std::net::IpAddr, v4: u8, v6: u8) -> String {
    use std::net::IpAddr;
    match ip.to_canonical() {
        IpAddr::V4(ip) if v4 >= 32 => ip.to_string(),
        IpAddr::V4(ip) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(v4)).unwrap_or(0);
            format!("{}/{v4}", std::net::Ipv4Addr::from(u32::from(ip) & mask))
        }
        IpAddr::V6(ip) if v6 >= 128 => ip.to_string(),
        IpAddr::V6(ip) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(v6)).unwrap_or(0);
            format!("{}/{v6}", std::net::Ipv6Addr::from(u128::from(ip) & mask))
        }
    }
}

/// The client address our `trusted` proxies vouch for: the `trusted`-th entry from the right
/// of `X-Forwarded-For`, all its lines read in order (a client can write the leftmost entries,
/// and a whole first line, but not what our proxies append). `None` without trusted proxies,
/// when fewer entries arrived than proxies stand in front (the request did not come through
/// them all), or when that entry is not an address.
fn forwarded_client(headers: &HeaderMap, trusted: usize) -> Option<std::net::IpAddr> {
    if trusted == 0 {
        return None;
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|line| line.to_str().ok())
        .collect::<Option<Vec<_>>>()?
        .into_iter()
        .flat_map(|line| line.split(','))
        .map(str::trim)
        .collect();
    let entry = entries.len().checked_sub(trusted).map(|at| entries[at])?;
    entry.parse().ok()
}

impl axum::extract::FromRequestParts<AppState> for Client {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &AppState,
    ) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let mut client = Self::from_parts(&state.config, &parts.headers, peer);
        client.pass = parts
            .extensions
            .get::<crate::middleware::Vouched>()
            .map(|v| v.0.clone());
        Ok(client)
    }
}

/// An end user authenticated by their bearer access token, verified locally.
#[derive(Debug, Clone)]
pub struct User {
    pub account_id: uuid::Uuid,
    pub token: String,
}

/// The request's bearer token, or 401.
pub(crate) fn bearer(parts: &http::request::Parts) -> Result<&str, ApiError> {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated"))
}

impl axum::extract::FromRequestParts<AppState> for User {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &AppState,
    ) -> Result<Self, ApiError> {
        authenticate(parts, state, false).await
    }
}

/// A caller of the photo steps (`PUT /v1/me/biometrics/{kind}`, `GET /v1/me/onboarding`): the
/// applicant, or the phone they handed the photos to (a capture token).
pub struct PhotoTaker(pub User);

impl axum::extract::FromRequestParts<AppState> for PhotoTaker {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &AppState,
    ) -> Result<Self, ApiError> {
        authenticate(parts, state, true).await.map(Self)
    }
}

async fn authenticate(
    parts: &http::request::Parts,
    state: &AppState,
    capture_allowed: bool,
) -> Result<User, ApiError> {
    let token = bearer(parts)?;
    match state.keys.authenticate_fresh(token).await {
        Ok(Caller::User { account_id, .. }) => {
            examreg_kit::telemetry::journey("account_id", &account_id);
            Ok(User {
                account_id,
                token: token.to_owned(),
            })
        }
        Ok(Caller::Capture { account_id, .. }) if capture_allowed => {
            examreg_kit::telemetry::journey("account_id", &account_id);
            Ok(User {
                account_id,
                token: token.to_owned(),
            })
        }
        Ok(Caller::Capture { .. }) => Err(ApiError::new(StatusCode::FORBIDDEN, "capture_only")),
        // The list of ended sessions is not current: the token may be good, so not a 401.
        Err(status) if status.code() == tonic::Code::Unavailable => {
            Err(ApiError::unavailable(&status.message()))
        }
        Ok(Caller::Service { .. } | Caller::Change { .. }) | Err(_) => {
            Err(ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated"))
        }
    }
}

/// An operator authenticated by a service token carrying `people:erase`, with the person at
/// the keyboard when the request names one (`X-Examreg-On-Behalf-Of`, forwarded to the
/// services; a staff client's calls are refused without it there).
pub struct Operator {
    pub client_id: String,
    pub token: String,
    pub person: Option<String>,
}

impl axum::extract::FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &AppState,
    ) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        let caller = state
            .keys
            .authenticate_fresh(token)
            .await
            .map_err(|_| ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated"))?;
        match caller {
            Caller::Service { .. } => {
                let client_id = caller
                    .require_scope("people:erase")
                    .map_err(|_| ApiError::new(StatusCode::FORBIDDEN, "forbidden"))?
                    .to_owned();
                let person = parts
                    .headers
                    .get(examreg_kit::auth::ON_BEHALF_OF)
                    .map(|v| v.to_str().unwrap_or("\u{fffd}").to_owned());
                Ok(Self {
                    client_id,
                    token: token.to_owned(),
                    person,
                })
            }
            Caller::User { .. } | Caller::Capture { .. } | Caller::Change { .. } => {
                Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(lines: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append("x-forwarded-for", line.parse().unwrap());
        }
        headers
    }

    #[test]
    fn the_client_is_the_address_our_proxies_append_not_what_the_client_writes() {
        let ip = |lines: &[&str], trusted| forwarded_client(&headers(lines), trusted);
        // One proxy of ours appends its own line after the client's forged one.
        assert_eq!(ip(&["6.6.6.6", "10.1.2.3"], 1), "10.1.2.3".parse().ok());
        // Or appends to the client's line.
        assert_eq!(ip(&["6.6.6.6, 10.1.2.3"], 1), "10.1.2.3".parse().ok());
        // Two proxies (a CDN, then the ingress): the second from the right.
        assert_eq!(
            ip(&["6.6.6.6, 10.1.2.3", "172.16.0.9"], 2),
            "10.1.2.3".parse().ok()
        );
        assert_eq!(ip(&["2001:db8::1"], 1), "2001:db8::1".parse().ok());
        // Without trusted proxies the header means nothing.
        assert_eq!(ip(&["10.1.2.3"], 0), None);
        // Fewer entries than proxies, or garbage where the address should be: not believed.
        assert_eq!(ip(&["10.1.2.3"], 2), None);
        assert_eq!(ip(&["10.1.2.3, unknown"], 1), None);
        assert_eq!(ip(&[], 1), None);
    }

    #[test]
    fn an_ipv6_client_is_budgeted_by_its_network_and_an_ipv4_one_by_its_address() {
        let key = |ip: &str, v4, v6| address_key(ip.parse().unwrap(), v4, v6);
        assert_eq!(key("203.0.113.7", 32, 64), "203.0.113.7");
        assert_eq!(key("203.0.113.7", 24, 64), "203.0.113.0/24");
        assert_eq!(key("::ffff:203.0.113.7", 32, 64), "203.0.113.7");
        // Every address of one /64 is one key; the next /64 is another.
        let one = key("2001:db8:1:2::1", 32, 64);
        assert_eq!(one, "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2:ffff:ffff:ffff:ffff", 32, 64), one);
        assert_ne!(key("2001:db8:1:3::1", 32, 64), one);
        assert_eq!(key("2001:db8:1:2::1", 32, 56), "2001:db8:1::/56");
        assert_eq!(key("2001:db8:1:2::1", 32, 128), "2001:db8:1:2::1");
    }
}
