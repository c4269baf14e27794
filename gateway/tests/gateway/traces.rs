//! One login is one trace across processes: the suite runs as separate binaries exporting
//! OTLP to a small receiver in this test, and the spans of every process share the login's
//! trace id, each service's request span being a child of a gateway span.

use examreg_testkit as tk;
use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::any_value::Value as AnyValue,
    trace::v1::Span,
};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// Spans received, with the service that sent them.
#[derive(Clone, Default)]
struct Receiver(Arc<Mutex<Vec<(String, Span)>>>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.0.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            let service = resource
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .and_then(|a| string_of(a.value.as_ref()?.value.as_ref()?))
                .unwrap_or_default();
            for scope in resource.scope_spans {
                for span in scope.spans {
                    spans.push((service.clone(), span));
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn string_of(value: &AnyValue) -> Option<String> {
    if let AnyValue::StringValue(s) = value {
        Some(s.clone())
    } else {
        None
    }
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| string_of(a.value.as_ref()?.value.as_ref()?))
}

#[tokio::test]
async fn a_login_is_one_trace_across_the_gateway_and_every_service_it_touches() {
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let otlp = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(receiver.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    let processes = crate::common::processes::start(Some(&otlp), &[]).await;
    // Register through the public API, then log in: the login crosses the gateway, identity,
    // biometrics and profile.
    let iin = tk::random_iin(examreg_domain::Sex::Female);
    let (flow_id, account_id, _) = processes.registered(&iin, "Жасыл-алма-көктемде-7").await;
    // Spans carry the flow's fingerprint, never the flow id itself (it is the flow's credential).
    let flow_tag = examreg_kit::telemetry::fingerprint(&flow_id);
    // The gateway's span of the login, then every process's spans of the same trace.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (login, trace) = loop {
        let spans = receiver.0.lock().unwrap().clone();
        let login = spans.iter().find(|(service, span)| {
            service == "gateway" && attribute(span, "path").as_deref() == Some("/v1/sessions")
        });
        if let Some((_, login)) = login {
            let trace: Vec<(String, Span)> = spans
                .iter()
                .filter(|(_, s)| s.trace_id == login.trace_id)
                .cloned()
                .collect();
            let services: std::collections::HashSet<&str> =
                trace.iter().map(|(s, _)| s.as_str()).collect();
            if ["gateway", "identity", "biometrics", "profile"]
                .iter()
                .all(|s| services.contains(s))
            {
                break (login.clone(), trace);
            }
        }
        assert!(
            Instant::now() < deadline,
            "the login's spans did not all arrive: {:?}",
            spans
                .iter()
                .map(|(s, span)| (s.clone(), span.name.clone()))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        attribute(&login, "account_id").as_deref(),
        Some(account_id.as_str())
    );
    let gateway_ids: Vec<&[u8]> = trace
        .iter()
        .filter(|(s, _)| s == "gateway")
        .map(|(_, span)| span.span_id.as_slice())
        .collect();
    let mut by_service: HashMap<&str, Vec<&Span>> = HashMap::new();
    for (service, span) in &trace {
        by_service.entry(service.as_str()).or_default().push(span);
    }
    for (service, rpc) in [
        ("identity", "/examreg.identity.v1.IdentityService/Login"),
        (
            "biometrics",
            "/examreg.biometrics.v1.BiometricsService/GetCaptureStatus",
        ),
        ("profile", "/examreg.profile.v1.ProfileService/GetProfile"),
    ] {
        let request = by_service[service]
            .iter()
            .find(|span| attribute(span, "path").as_deref() == Some(rpc))
            .unwrap_or_else(|| panic!("{service}: no span for {rpc}"));
        assert!(
            gateway_ids.contains(&request.parent_span_id.as_slice()),
            "{service}'s request span is a child of a gateway span"
        );
        // And the service's own work (SQL, argon2, ...) hangs below its request span.
        let children = by_service[service]
            .iter()
            .filter(|span| span.parent_span_id == request.span_id)
            .count();
        assert!(children > 0, "{service}: the request span has no children");
    }
    // Every span of the registration's steps carries its flow id.
    let flow_spans = receiver
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|(service, span)| {
            service == "gateway" && attribute(span, "flow_id").as_deref() == Some(flow_tag.as_str())
        })
        .count();
    assert!(
        flow_spans >= 5,
        "{flow_spans} gateway spans carry the flow id"
    );
    // The letter's delivery is a trace of its own, linked back to the request that queued it.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let spans = receiver.0.lock().unwrap().clone();
        let delivery = spans.iter().find(|(service, span)| {
            service == "verification" && span.name == "smtp_delivery" && !span.links.is_empty()
        });
        if let Some((_, delivery)) = delivery {
            let linked = &delivery.links[0];
            assert!(spans.iter().any(|(service, span)| service == "gateway"
                && span.trace_id == linked.trace_id
                && attribute(span, "flow_id").as_deref() == Some(flow_tag.as_str())));
            break;
        }
        assert!(Instant::now() < deadline, "no linked delivery span");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
