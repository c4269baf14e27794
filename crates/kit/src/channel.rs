//! Channels to the other services: lazily connecting, each call balanced over the replicas a
//! name resolves to ([`balance`]), with the settings every client endpoint shares, and the
//! grpc.health.v1 probe that the balancer, the `healthcheck` subcommand and the gateway's
//! readiness ask.

use crate::tls::Settings as Tls;
use std::{net::SocketAddr, sync::Arc, time::Duration};
use tonic::transport::Endpoint;

pub mod balance;

/// Asks a gRPC server's health service whether it is SERVING: the `healthcheck` subcommand of
/// every binary, used by container probes and by scripts waiting for start-up. A server with a
/// certificate (`tls`) is asked over TLS as `localhost`, the name its certificate carries for
/// the probe.
pub async fn healthcheck(addr: SocketAddr, tls: &Tls) -> Result<(), String> {
    let scheme = if tls.cert.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{addr}");
    let mut endpoint = Endpoint::from_shared(url.clone())
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(2));
    if let Some(client) = tls.client(&url).map_err(|e| e.to_string())? {
        endpoint = endpoint
            .tls_config(client.domain_name("localhost"))
            .map_err(|e| e.to_string())?;
    }
    // A refused certificate is a few causes down.
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| crate::errors::with_causes(&e))?;
    serving(channel).await
}

/// Whether the server behind `channel` answers grpc.health.v1 as SERVING: the probe of the
/// `healthcheck` subcommand and of the gateway's readiness.
pub async fn serving(channel: tonic::transport::Channel) -> Result<(), String> {
    let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
    let answer = client
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map_err(|e| e.message().to_owned())?;
    let status = answer.into_inner().status;
    if status == tonic_health::pb::health_check_response::ServingStatus::Serving as i32 {
        Ok(())
    } else {
        Err(format!("health status {status}"))
    }
}

/// Why a channel cannot be made: its URL, or its TLS material.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error(transparent)]
    Url(#[from] tonic::transport::Error),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

/// What every client endpoint is made with: connect within 3 s, answer within 15 s, HTTP/2
/// pings every 30 s, and the channel's TLS.
pub type Configure = Arc<dyn Fn(Endpoint) -> Endpoint + Send + Sync>;

/// The settings of every client endpoint of `url`, with TLS for an `https://` one (checked
/// here, so that applying it to each replica's endpoint cannot fail).
fn client_settings(url: &str, tls: &Tls) -> Result<Configure, ChannelError> {
    let tls = tls.client(url)?;
    if let Some(tls) = &tls {
        Endpoint::from_static("https://localhost").tls_config(tls.clone())?;
    }
    Ok(Arc::new(move |endpoint: Endpoint| {
        let endpoint = endpoint
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(15))
            .http2_keep_alive_interval(Duration::from_secs(30));
        match &tls {
            Some(tls) => endpoint
                .tls_config(tls.clone())
                .expect("the TLS settings were applied once already"),
            None => endpoint,
        }
    }))
}

/// A lazily connecting channel to another service, each call balanced over the replicas its
/// host name resolves to (`balance`); a URL with an IP address is one server, and one that
/// lists `ip:port,ip:port` balances over those replicas (outside Kubernetes, or the local
/// benchmark's). An `https://` URL is TLS, verified with `tls`'s CA bundle for the URL's
/// host (`replicas` for a list: the name the local stack's certificates carry). Call it
/// within a Tokio runtime.
pub fn lazy(url: &str, tls: &Tls) -> Result<tonic::transport::Channel, ChannelError> {
    let timing = balance::Timing::default();
    match listed_replicas(url) {
        Some((template, addrs)) => balanced(
            &template,
            tls,
            Arc::new(move |_, _| {
                let addrs = addrs.clone();
                Box::pin(async move { Ok(addrs) })
            }),
            timing,
        ),
        None => balanced(url, tls, balance::dns(), timing),
    }
}

/// `scheme://ip:port,ip:port[/path]`: a URL for the balancer (named `replicas`, resolved by
/// the list) and the listed addresses. None for any other URL.
fn listed_replicas(url: &str) -> Option<(String, Vec<std::net::SocketAddr>)> {
    let (scheme, rest) = url.split_once("://")?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if !authority.contains(',') {
        return None;
    }
    let addrs: Vec<std::net::SocketAddr> = authority
        .split(',')
        .map(|addr| addr.trim().parse().ok())
        .collect::<Option<_>>()?;
    let port = addrs.first()?.port();
    Some((format!("{scheme}://replicas:{port}/{path}"), addrs))
}

/// [`lazy`] with its own resolver and timing (the tests' replicas behind one name).
pub fn balanced(
    url: &str,
    tls: &Tls,
    resolve: balance::Resolve,
    timing: balance::Timing,
) -> Result<tonic::transport::Channel, ChannelError> {
    let configure = client_settings(url, tls)?;
    Ok(balance::channel(url, configure, resolve, timing)?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_url_may_list_its_replicas() {
        let (template, addrs) =
            super::listed_replicas("http://127.0.0.1:50051, [::1]:50052").unwrap();
        assert_eq!(template, "http://replicas:50051/");
        assert_eq!(
            addrs,
            [
                "127.0.0.1:50051".parse().unwrap(),
                "[::1]:50052".parse().unwrap()
            ]
        );
        assert!(super::listed_replicas("http://identity:50051").is_none());
        assert!(super::listed_replicas("http://identity:50051,other:50051").is_none());
    }
}
