//! Channels to the other services: lazily connecting, each call balanced over the replicas a
//! name resolves to ([`balance`]), with the settings every client endpoint shares, and the
//! grpc.health.v1 probe that the balancer, the `healthcheck` subcommand and the gateway's
//! readiness ask.

use std::{net::SocketAddr, time::Duration};

pub mod balance;

/// Asks a gRPC server's health service whether it is SERVING: the `healthcheck` subcommand of
/// every binary, used by container probes and by scripts waiting for start-up.
pub async fn healthcheck(addr: SocketAddr) -> Result<(), String> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(2));
    let channel = endpoint.connect().await.map_err(|e| e.to_string())?;
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

/// The settings of every client endpoint: connect within 3 s, answer within 15 s, HTTP/2
/// pings every 30 s.
fn client_settings(endpoint: tonic::transport::Endpoint) -> tonic::transport::Endpoint {
    endpoint
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(15))
        .http2_keep_alive_interval(Duration::from_secs(30))
}

/// A lazily connecting channel to another service, each call balanced over the replicas its
/// host name resolves to (`balance`); a URL with an IP address is one server, and one that
/// lists `ip:port,ip:port` balances over those replicas (outside Kubernetes, or the local
/// benchmark's). Call it within a Tokio runtime.
pub fn lazy(url: &str) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    let timing = balance::Timing::default();
    match listed_replicas(url) {
        Some((template, addrs)) => balanced(
            &template,
            std::sync::Arc::new(move |_, _| {
                let addrs = addrs.clone();
                Box::pin(async move { Ok(addrs) })
            }),
            timing,
        ),
        None => balanced(url, balance::dns(), timing),
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
    resolve: balance::Resolve,
    timing: balance::Timing,
) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    balance::channel(url, client_settings, resolve, timing)
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
