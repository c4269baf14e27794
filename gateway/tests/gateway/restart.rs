//! Operators restart services during a registration rush (a rollout, a node drain). Each
//! service drains on its shutdown signal and the gateway retries calls that found a service
//! unavailable, so no applicant's registration fails.

use crate::common::*;
use reqwest::StatusCode;
use std::{sync::Arc, time::Duration};

/// One applicant's whole journey, asserting every step succeeds.
async fn journey(s: &Suite) {
    let token = s.ready_to_complete().await;
    let (status, done) = s.complete(&token).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["status"], "registered");
}

#[tokio::test]
async fn restarting_each_service_while_applicants_register_fails_no_registration() {
    let s = Arc::new(suite().await);
    let spawn = |n: usize| -> Vec<tokio::task::JoinHandle<()>> {
        (0..n)
            .map(|_| {
                let s = s.clone();
                tokio::spawn(async move { journey(&s).await })
            })
            .collect()
    };
    let mut journeys = spawn(6);
    // Every service in turn, again and again, until every applicant is through and each
    // service was restarted at least once while some were on their way (a stop lingers
    // `kit::server::LINGER` before it closes, so more applicants come while the turn goes on).
    let services = ["identity", "verification", "biometrics", "profile"];
    let mut restarts = 0;
    loop {
        if journeys.iter().all(|j| j.is_finished()) {
            if restarts >= services.len() {
                break;
            }
            journeys.extend(spawn(2));
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
        s.restart(
            services[restarts % services.len()],
            Duration::from_millis(200),
        )
        .await;
        restarts += 1;
    }
    let registered = journeys.len();
    for journey in journeys {
        journey.await.expect("the registration succeeded");
    }
    assert!(restarts >= services.len());
    println!("{registered} registrations completed across {restarts} service restarts");
}
