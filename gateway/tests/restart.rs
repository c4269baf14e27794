//! Operators restart services during a registration rush (a rollout, a node drain). Each
//! service drains on its shutdown signal and the gateway retries calls that found a service
//! unavailable, so no applicant's registration fails.

mod common;

use common::*;
use examreg_testkit as tk;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::{sync::Arc, time::Duration};
use tk::photos::{SELFIE, id_card};

/// One applicant's whole journey, asserting every step succeeds.
async fn journey(s: &Suite) {
    let iin = valid_iin();
    s.register(&iin, &tk::unique_email()).await;
    let (status, session) = s.login(&iin, PASSWORD).await;
    assert_eq!(status, StatusCode::CREATED, "login: {session}");
    let token = session["access_token"].as_str().unwrap().to_owned();
    let auth = format!("Bearer {token}");
    let me = |method: Method, path: &'static str, body: Value| {
        let auth = auth.clone();
        async move {
            let (status, _, body) = s
                .call(
                    method,
                    path,
                    Some(body),
                    &[("authorization", auth.as_str())],
                )
                .await;
            assert!(status.is_success(), "{path}: {status} {body}");
            body
        }
    };
    for (kind, photo) in [
        ("face", SELFIE.to_vec()),
        ("document-front", id_card(true)),
        ("document-back", id_card(false)),
    ] {
        let (status, body) = s.photo(&token, kind, "image/jpeg", photo).await;
        assert_eq!(status, StatusCode::OK, "{kind}: {body}");
    }
    me(
        Method::POST,
        "/v1/me/biometrics/consent",
        json!({"consent_version": "2026-01", "accepted": true}),
    )
    .await;
    me(
        Method::PUT,
        "/v1/me/profile/name",
        json!({"surname": "Нұрланов", "given_name": "Арман"}),
    )
    .await;
    let profile = me(Method::GET, "/v1/me/profile", Value::Null).await;
    me(
        Method::PUT,
        "/v1/me/profile/details",
        json!({"sex": "male", "birth_date": profile["suggested"]["birth_date"],
               "region_code": "KZ-55", "mobile_phone": "8 777 123 45 67"}),
    )
    .await;
    me(
        Method::PUT,
        "/v1/me/profile/education",
        json!({"contingent_code": "bachelor", "institution_id": "toraighyrov"}),
    )
    .await;
    let done = me(Method::POST, "/v1/me/registration/complete", Value::Null).await;
    assert_eq!(done["status"], "registered");
}

#[tokio::test]
async fn restarting_each_service_while_applicants_register_fails_no_registration() {
    let s = Arc::new(suite().await);
    let journeys: Vec<_> = (0..6)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { journey(&s).await })
        })
        .collect();
    // Every service in turn, again and again, until every applicant is through.
    let services = ["identity", "verification", "biometrics", "profile"];
    let mut restarts = 0;
    while journeys.iter().any(|j| !j.is_finished()) {
        tokio::time::sleep(Duration::from_millis(150)).await;
        s.restart(
            services[restarts % services.len()],
            Duration::from_millis(200),
        )
        .await;
        restarts += 1;
    }
    for journey in journeys {
        journey.await.expect("the registration succeeded");
    }
    assert!(
        restarts >= services.len(),
        "every service restarted at least once ({restarts} restarts)"
    );
    println!("6 registrations completed across {restarts} service restarts");
}
