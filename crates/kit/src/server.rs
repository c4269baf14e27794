//! The gRPC server start-up every service uses: bind (port 0 allowed, real address reported),
//! serve the service's routes behind three layers (the request's span, its count and time, its
//! caller's token: `telemetry::SpanLayer`, `metrics::MetricsLayer`, `auth::AuthLayer`) next to
//! grpc.health.v1 and server reflection (v1 and v1alpha), and stop gracefully: on the shutdown
//! signal health turns NOT_SERVING, the server goes on serving for [`LINGER`] (its callers take
//! it out of their sets meanwhile), then the listener closes and in-flight calls are drained
//! before `serve` returns.

use crate::{
    auth::{AuthLayer, Keys},
    metrics::MetricsLayer,
    telemetry::SpanLayer,
};
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
        .layer(
            tower::ServiceBuilder::new()
                .layer(SpanLayer)
                .layer(MetricsLayer)
                .layer(AuthLayer::new(keys, public_paths)),
        )
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
