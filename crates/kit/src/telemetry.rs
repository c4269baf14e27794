//! Logs as JSON lines on stdout, filtered by `RUST_LOG` (default `info`), and traces exported
//! over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (off otherwise). W3C trace context
//! travels in gRPC metadata and HTTP headers: [`inject`] on the way out (every request built
//! by `auth::with_bearer` carries it), [`extract`] on the way in (the server bootstrap and the
//! gateway do it), so one registration is one trace across the services.
//!
//! Personal data never reaches a log: domain types print masked, secrets print redacted.

use futures::future::BoxFuture;
use opentelemetry::{
    propagation::{Extractor, Injector, TextMapPropagator},
    trace::TracerProvider as _,
};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::{propagation::TraceContextPropagator, trace::SdkTracerProvider};
use std::task::{Context, Poll};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt, util::SubscriberInitExt};

/// Keeps the trace exporter alive; dropping it flushes pending spans.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
    }
}

/// The log lines every service writes: JSON, with the current span's fields. Tests that
/// read the logs (for personal data that must not be there) install the same layer.
pub fn json_layer<S, W>(writer: W) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_target(true)
        .with_writer(writer)
}

/// Installs the global subscriber once; later calls (tests) only return a handle.
pub fn init(service: &'static str) -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = json_layer(std::io::stdout);
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty());
    let provider = endpoint.as_deref().and_then(|endpoint| {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build();
        match exporter {
            Ok(exporter) => Some(
                SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(
                        opentelemetry_sdk::Resource::builder()
                            .with_service_name(service)
                            .build(),
                    )
                    .build(),
            ),
            Err(e) => {
                eprintln!("OTLP exporter for {endpoint} not started: {e}");
                None
            }
        }
    });
    let otel = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer(service))
            .boxed()
    });
    if tracing_subscriber::registry()
        .with(filter)
        .with(json)
        .with(otel)
        .try_init()
        .is_ok()
    {
        tracing::info!(
            service,
            version = env!("CARGO_PKG_VERSION"),
            otlp = endpoint.is_some(),
            "telemetry ready"
        );
    }
    Telemetry { provider }
}

struct MetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            tonic::metadata::MetadataValue::try_from(value),
        ) {
            self.0.insert(key, value);
        }
    }
}

/// Writes the current span's trace context (`traceparent`) into outgoing gRPC metadata.
pub fn inject(metadata: &mut tonic::metadata::MetadataMap) {
    let context = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&context, &mut MetadataInjector(metadata));
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// A span for an incoming request whose parent is the caller's trace, if it sent one. Its
/// `flow_id` (as a [`fingerprint`]) and `account_id` are recorded once known (see
/// [`journey`]), so an operator finds every trace of one registration by either.
pub fn request_span(kind: &'static str, path: &str, headers: &http::HeaderMap) -> tracing::Span {
    let span = tracing::info_span!(
        "request",
        kind,
        path = %path,
        flow_id = tracing::field::Empty,
        account_id = tracing::field::Empty,
    );
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    let _ = span.set_parent(parent);
    span
}

/// The current span's W3C `traceparent`, to carry a trace through a queue.
pub fn current_traceparent() -> Option<String> {
    let mut carrier = std::collections::HashMap::new();
    TraceContextPropagator::new().inject_context(&tracing::Span::current().context(), &mut carrier);
    carrier.remove("traceparent")
}

/// Links `span` to the trace a `traceparent` names: work taken off a queue (a letter sent
/// by the outbox worker) points back at the request that queued it.
pub fn link_to(span: &tracing::Span, traceparent: &str) {
    use opentelemetry::trace::TraceContextExt;
    let carrier =
        std::collections::HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let context = TraceContextPropagator::new().extract(&carrier);
    let linked = context.span().span_context().clone();
    if linked.is_valid() {
        span.add_link(linked);
    }
}

/// What logs and traces carry instead of an id that is a credential (a registration or
/// recovery flow id, a challenge id): the first 16 hex digits of its SHA-256. An operator
/// holding the id finds its records (`printf %s "$FLOW" | sha256sum | cut -c1-16`); a reader
/// of the logs cannot act as the flow.
pub fn fingerprint(id: &dyn std::fmt::Display) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(id.to_string().as_bytes())[..8])
}

/// Records which registration the current request belongs to (`flow_id` or `account_id`):
/// as a field of the request span (logs and traces), or as a trace attribute of whatever
/// span is current.
pub fn journey(field: &'static str, id: &dyn std::fmt::Display) {
    let value = id.to_string();
    let current = tracing::Span::current();
    if current.metadata().is_some_and(|m| m.name() == "request") {
        current.record(field, value.as_str());
    } else {
        current.set_attribute(field, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::TraceContextExt;

    #[test]
    fn trace_context_travels_from_metadata_to_the_next_span() {
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            let outer = tracing::info_span!("caller");
            let _entered = outer.enter();
            let mut metadata = tonic::metadata::MetadataMap::new();
            inject(&mut metadata);
            let traceparent = metadata
                .get("traceparent")
                .expect("traceparent injected")
                .to_str()
                .unwrap()
                .to_owned();
            let caller_trace = outer.context().span().span_context().trace_id();
            assert!(traceparent.contains(&caller_trace.to_string()));

            let headers = metadata.into_headers();
            let inner = request_span("grpc", "/x", &headers);
            assert_eq!(
                inner.context().span().span_context().trace_id(),
                caller_trace
            );
        });
    }
}

/// Tower layer that runs every gRPC call in a [`request_span`] continuing the caller's trace:
/// the outermost of the server's layers, so what the others log is in it.
#[derive(Clone, Copy, Debug, Default)]
pub struct SpanLayer;

impl<S> tower::Layer<S> for SpanLayer {
    type Service = Spanned<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Spanned(inner)
    }
}

/// The service [`SpanLayer`] wraps.
#[derive(Clone, Debug)]
pub struct Spanned<S>(S);

impl<S, B> tower::Service<http::Request<B>> for Spanned<S>
where
    S: tower::Service<http::Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let span = request_span("grpc", request.uri().path(), request.headers());
        let response = span.in_scope(|| self.0.call(request));
        Box::pin(response.instrument(span))
    }
}
