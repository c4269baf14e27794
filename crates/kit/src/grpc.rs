//! The gRPC server bootstrap every service uses: bind (port 0 allowed, real address reported),
//! serve the service's routes behind the auth layer next to grpc.health.v1 and server
//! reflection (v1 and v1alpha), and stop gracefully: on the shutdown signal health turns
//! NOT_SERVING, the server goes on serving for [`LINGER`] (its callers take it out of their
//! sets meanwhile), then the listener closes and in-flight calls are drained before `serve`
//! returns.

use crate::auth::{AuthLayer, Keys};
use std::{future::Future, net::SocketAddr, time::Duration};
use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic_health::ServingStatus;

/// Binds a listener; `127.0.0.1:0` gives a free port, which `local_addr` reports.
pub async fn bind(addr: SocketAddr) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

/// How long a server keeps serving after its shutdown signal, health already NOT_SERVING:
/// more than the callers' probe interval and timeout (`balance::Timing`, 1 s each).
pub const LINGER: Duration = Duration::from_millis(2500);

/// Serves `routes` until `shutdown` resolves, then drains in-flight calls.
///
/// `service_names` are the fully qualified gRPC service names reported as SERVING by health;
/// `public_paths` are the RPC paths that need no token.
pub async fn serve(
    listener: TcpListener,
    routes: Routes,
    service_names: &[&str],
    keys: Keys,
    public_paths: &'static [&'static str],
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let (reporter, health) = tonic_health::server::health_reporter();
    for name in service_names {
        reporter
            .set_service_status(*name, ServingStatus::Serving)
            .await;
    }
    // Reflection lists this service's own API and health, not every examreg proto.
    let reflection = || {
        let mut builder = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(examreg_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name("grpc.health.v1.Health");
        for name in service_names {
            builder = builder.with_service_name(*name);
        }
        builder
    };
    let reflection_v1 = reflection().build_v1().expect("descriptor sets are valid");
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .expect("descriptor sets are valid");

    let names: Vec<String> = service_names.iter().map(|s| (*s).to_owned()).collect();
    let draining = async move {
        shutdown.await;
        tracing::info!("shutdown requested: draining in-flight calls");
        reporter.set_not_serving_for_all(&names).await;
        // Still serving while the callers' probes see NOT_SERVING and take this replica out
        // of their sets (`balance`), so that no call meets a closed port.
        tokio::time::sleep(LINGER).await;
    };

    let mut routes = routes
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    // Prometheus scrapes over HTTP/1.1 on the same port (no token: counts, no personal data).
    let metrics = crate::metrics::recorder();
    let router = routes.axum_router_mut();
    *router = std::mem::take(router).route(
        crate::metrics::PATH,
        axum::routing::get(move || {
            let metrics = metrics.clone();
            async move { metrics.render() }
        }),
    );

    tonic::transport::Server::builder()
        .accept_http1(true)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .layer(AuthLayer::new(keys, public_paths))
        .add_routes(routes)
        .serve_with_incoming_shutdown(
            // Small answers go out at once: without TCP_NODELAY a reply split over two
            // segments waits for the caller's delayed ACK (~40 ms per call, measured).
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            draining,
        )
        .await
}

trait NotServingForAll {
    async fn set_not_serving_for_all(&self, names: &[String]);
}

impl NotServingForAll for tonic_health::server::HealthReporter {
    async fn set_not_serving_for_all(&self, names: &[String]) {
        for name in names {
            self.set_service_status(name, ServingStatus::NotServing)
                .await;
        }
        self.set_service_status("", ServingStatus::NotServing).await;
    }
}

/// Resolves on SIGTERM or SIGINT: the production shutdown signal.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler installs");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

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
pub fn channel(url: &str) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    let timing = crate::balance::Timing::default();
    match listed_replicas(url) {
        Some((template, addrs)) => balanced(
            &template,
            std::sync::Arc::new(move |_, _| {
                let addrs = addrs.clone();
                Box::pin(async move { Ok(addrs) })
            }),
            timing,
        ),
        None => balanced(url, crate::balance::dns(), timing),
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

/// [`channel`] with its own resolver and timing (the tests' replicas behind one name).
pub fn balanced(
    url: &str,
    resolve: crate::balance::Resolve,
    timing: crate::balance::Timing,
) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    crate::balance::channel(url, client_settings, resolve, timing)
}

/// A shutdown trigger for background tasks: `signal()` futures resolve once `fire()` is called
/// (or the trigger is dropped), so every task tied to it stops with the service.
#[derive(Clone)]
pub struct Trigger(std::sync::Arc<tokio::sync::watch::Sender<bool>>);

impl Default for Trigger {
    fn default() -> Self {
        Self(std::sync::Arc::new(tokio::sync::watch::channel(false).0))
    }
}

impl Trigger {
    pub fn signal(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.0.subscribe();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    }

    pub fn fire(&self) {
        self.0.send_replace(true);
    }
}

/// Runs `task` now and then every `every` until `stop` resolves (a run in progress finishes
/// first): the shape of every sweeper and refresher in the suite.
pub async fn periodically<F, Fut>(every: Duration, stop: impl Future<Output = ()>, mut task: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    tokio::pin!(stop);
    loop {
        task().await;
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(every) => {}
        }
    }
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
