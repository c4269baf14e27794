//! End to end through the gateway's public HTTP API, with identity, verification and
//! biometrics running for real on the local stack's Postgres, Redis, Garage and maildev.

use examreg_kit::service::{Probe, healthcheck};

use crate::common::*;
use examreg_testkit as tk;
use futures::stream::{FuturesUnordered, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use tk::photos::{SELFIE, id_card, jpeg};

#[tokio::test]
async fn an_applicant_registers_logs_in_refreshes_logs_out_and_recovers_the_password() {
    let s = suite().await;
    let iin = valid_iin();
    let email = tk::unique_email();
    let account = s.register(&iin, &email).await;

    let (status, session) = s.login(&iin, PASSWORD).await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    assert_eq!(
        session["next_step"], "face",
        "the first login starts identity verification"
    );
    assert_eq!(session["account_id"], account.as_str());

    let (status, renewed) = s
        .post(
            "/v1/sessions/refresh",
            json!({"refresh_token": session["refresh_token"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{renewed}");
    let access = renewed["access_token"].as_str().unwrap().to_owned();
    let (status, _) = s
        .me(
            reqwest::Method::DELETE,
            "/v1/sessions/current",
            &access,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = s
        .post(
            "/v1/sessions/refresh",
            json!({"refresh_token": renewed["refresh_token"]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    // Forgot password: by login, the code goes to the account's email.
    let (status, flow) = s.post("/v1/recovery", json!({"login": iin})).await;
    assert_eq!(status, StatusCode::CREATED, "{flow}");
    assert_eq!(flow["next_step"], "email_code");
    let flow = flow["flow_id"].as_str().unwrap().to_owned();
    let letters = tk::wait_for_mails(&email, 2, Duration::from_secs(20)).await;
    assert_eq!(letters[1].subject, "Восстановление пароля в ИСО");
    let (status, body) = s
        .post(
            &format!("/v1/recovery/{flow}/verify"),
            json!({"code": tk::code_in(&letters[1])}),
        )
        .await;
    assert_eq!(
        (status, body["next_step"].as_str()),
        (StatusCode::OK, Some("password")),
        "{body}"
    );
    let new_password = "Тау-көлі-жазда-таза-42";
    let (status, body) = s
        .post(
            &format!("/v1/recovery/{flow}/password"),
            json!({"password": new_password, "password_confirmation": new_password}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(s.login(&iin, PASSWORD).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(s.login(&iin, new_password).await.0, StatusCode::CREATED);
}

#[tokio::test]
async fn a_bad_iin_gets_the_error_shape_in_the_requested_language() {
    let s = suite().await;
    let flow = s.start("KZ").await;
    let (status, _, body) = s
        .call(
            reqwest::Method::PUT,
            &format!("/v1/registrations/{flow}/identifier"),
            Some(json!({"iin": "791028302729"})),
            &[("accept-language", "kk-KZ")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["code"], "invalid_iin");
    assert_eq!(body["error"]["fields"]["iin"], "invalid_checksum");
    assert_eq!(
        body["error"]["message"],
        "ЖСН қате енгізілген: 12 цифрды тексеріңіз."
    );
    let (_, body) = s
        .put(
            &format!("/v1/registrations/{flow}/identifier"),
            json!({"iin": "791028302729"}),
        )
        .await;
    assert_eq!(
        body["error"]["message"], "ИИН введён неверно: проверьте 12 цифр.",
        "Russian by default"
    );
    // A passport number is for non-residents only.
    let (status, body) = s
        .put(
            &format!("/v1/registrations/{flow}/identifier"),
            json!({"passport_number": "N12345678"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["code"], "iin_required");
    // Nothing changed: the flow still waits for the identifier.
    let (_, state) = s.get(&format!("/v1/registrations/{flow}")).await;
    assert_eq!(state["next_step"], "identifier");
}

#[tokio::test]
async fn steps_go_in_order_and_bad_bodies_are_refused_cleanly() {
    let s = suite().await;
    let flow = s.start("UZ").await;
    s.refused(
        reqwest::Method::PUT,
        &format!("/v1/registrations/{flow}/email"),
        json!({"email": tk::unique_email()}),
        (409, "step_out_of_order"),
    )
    .await;
    s.refused(
        reqwest::Method::POST,
        "/v1/registrations",
        json!({"citizenship": "KZ", "terms_version": "2026-01", "terms_accepted": false}),
        (422, "terms_not_accepted"),
    )
    .await;
    let (status, body) = s
        .post(
            "/v1/registrations",
            json!({"citizenship": "XX", "terms_version": "2026-01", "terms_accepted": true}),
        )
        .await;
    assert_eq!(
        body["error"]["fields"]["citizenship"], "invalid",
        "{status}"
    );
    let response = s
        .http
        .post(format!("{}/v1/registrations", s.base))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "malformed_request");
    let huge = "x".repeat(64 * 1024);
    s.refused(
        reqwest::Method::POST,
        "/v1/registrations",
        json!({"citizenship": huge}),
        (413, "body_too_large"),
    )
    .await;
    let (status, body) = s
        .post(
            &format!("/v1/registrations/{}/email/verify", uuid::Uuid::new_v4()),
            json!({"code": "123456"}),
        )
        .await;
    refusal(status, &body, 410, "flow_expired");
    let (status, _, _) = s
        .call(reqwest::Method::DELETE, "/v1/sessions/current", None, &[])
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_taken_iin_and_a_taken_email_get_one_answer_a_spent_code_and_a_letter() {
    let s = suite().await;
    let (iin, email) = (valid_iin(), tk::unique_email());
    s.register(&iin, &email).await;
    // A prober with a mailbox of their own tries someone's registered IIN…
    let prober = tk::unique_email();
    let taken_iin = s.prove_email(&iin, &prober, 1).await;
    // …and a free IIN with a registered email (whose owner reads the code here).
    let taken_email = s.prove_email(&valid_iin(), &email, 2).await;
    let password = json!({"password": PASSWORD, "password_confirmation": PASSWORD});
    let mut answers = Vec::new();
    for flow in [&taken_iin, &taken_email] {
        let path = format!("/v1/registrations/{flow}/password");
        let (status, headers, body) = s
            .call(
                reqwest::Method::POST,
                &path,
                Some(password.clone()),
                &[("accept-language", "kk")],
            )
            .await;
        refusal(status, &body, 409, "already_registered");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Құпиясөзді ұмыттыңыз ба?")
        );
        answers.push((status, headers.get("content-type").cloned(), body));
        // The code was spent on the answer: the flow is back at the email step, and the
        // password again is out of order until a fresh code is proven.
        let (status, shown) = s.get(&format!("/v1/registrations/{flow}")).await;
        assert_eq!(
            (status, shown["next_step"].as_str()),
            (StatusCode::OK, Some("email"))
        );
        s.refused(
            reqwest::Method::POST,
            &path,
            password.clone(),
            (409, "step_out_of_order"),
        )
        .await;
    }
    assert_eq!(
        answers[0], answers[1],
        "a taken IIN and a taken email answer alike"
    );
    // Each proven address gets one letter saying an account exists, in the asker's language,
    // pointing to recovery and to the support desk: the same letter for either case.
    let mut letters = Vec::new();
    for (address, count) in [(&prober, 2), (&email, 3)] {
        let mails = tk::wait_for_mails(address, count, Duration::from_secs(20)).await;
        let letter = &mails[count - 1];
        assert_eq!(letter.subject, "ИСО-да тіркелгі бұрыннан бар");
        assert!(
            letter.text.contains("Құпиясөзді ұмыттыңыз ба?"),
            "{}",
            letter.text
        );
        assert!(
            letter.text.contains("support@examreg.local"),
            "{}",
            letter.text
        );
        assert!(
            !letter.text.contains(&iin),
            "the letter does not name the IIN"
        );
        letters.push((letter.subject.clone(), letter.text.clone()));
    }
    assert_eq!(letters[0], letters[1]);
    // Proving the address again costs a fresh code, and the same answer comes back.
    let (status, body) = s
        .put(
            &format!("/v1/registrations/{taken_iin}/email"),
            json!({"email": prober}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let code = tk::nth_code(&prober, 3).await;
    let (status, body) = s
        .post(
            &format!("/v1/registrations/{taken_iin}/email/verify"),
            json!({"code": code}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    s.refused(
        reqwest::Method::POST,
        &format!("/v1/registrations/{taken_iin}/password"),
        password,
        (409, "already_registered"),
    )
    .await;
    tk::wait_for_mails(&prober, 4, Duration::from_secs(20)).await;
}

#[tokio::test]
async fn mismatched_and_weak_passwords_are_refused_with_their_field() {
    let s = suite().await;
    let iin = valid_iin();
    let email = tk::unique_email();
    let flow = s.prove_email(&iin, &email, 1).await;
    let path = format!("/v1/registrations/{flow}/password");
    let (status, body) = s
        .post(
            &path,
            json!({"password": PASSWORD, "password_confirmation": "other"}),
        )
        .await;
    refusal(status, &body, 422, "password_mismatch");
    assert_eq!(body["error"]["fields"]["password_confirmation"], "mismatch");
    let (status, body) = s
        .post(
            &path,
            json!({"password": "qwerty123", "password_confirmation": "qwerty123"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["fields"]["password"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("too_weak"))
    );
    // The refused attempts changed nothing: a good password still completes the flow.
    let (status, _) = s
        .post(
            &path,
            json!({"password": PASSWORD, "password_confirmation": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn resend_too_early_is_429_with_retry_after() {
    let s = suite().await;
    let flow = s.start("KZ").await;
    s.put(
        &format!("/v1/registrations/{flow}/identifier"),
        json!({"iin": valid_iin()}),
    )
    .await;
    s.put(
        &format!("/v1/registrations/{flow}/email"),
        json!({"email": tk::unique_email()}),
    )
    .await;
    let (status, headers, body) = s
        .call(
            reqwest::Method::POST,
            &format!("/v1/registrations/{flow}/email/resend"),
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["error"]["code"], "resend_too_early");
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((50..=60).contains(&wait), "{wait}");
}

#[tokio::test]
async fn an_expired_flow_answers_410() {
    let s = suite_with(Options {
        flow_ttl: Duration::from_secs(1),
        ..Options::default()
    })
    .await;
    let flow = s.start("KZ").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, body) = s
        .put(
            &format!("/v1/registrations/{flow}/identifier"),
            json!({"iin": valid_iin()}),
        )
        .await;
    refusal(status, &body, 410, "flow_expired");
}

/// One answer of a recovery script: what it was, the status, the body with ids and times
/// taken out, the times as seconds from when the answer came, and Retry-After.
#[derive(Debug)]
struct Answer {
    step: &'static str,
    status: StatusCode,
    body: Value,
    times: Vec<f64>,
    retry_after: Option<f64>,
    /// The flow a start made (not compared: ids are random).
    flow: Option<String>,
}

impl Answer {
    /// Takes the flow id and the timestamps out of the body.
    fn new(
        step: &'static str,
        status: StatusCode,
        retry_after: Option<f64>,
        mut body: Value,
    ) -> Self {
        let now = chrono::Utc::now();
        let (mut times, mut flow) = (Vec::new(), None);
        if let Some(map) = body.as_object_mut() {
            for (key, value) in map.iter_mut() {
                if key == "flow_id" {
                    flow = value.as_str().map(str::to_owned);
                    *value = json!("<flow>");
                } else if let Some(at) = value
                    .as_str()
                    .and_then(|v| chrono::DateTime::parse_from_rfc3339(v).ok())
                {
                    times.push((at.with_timezone(&chrono::Utc) - now).as_seconds_f64());
                    *value = json!("<time>");
                }
            }
        }
        Self {
            step,
            status,
            body,
            times,
            retry_after,
            flow,
        }
    }
}

async fn answer(s: &Suite, step: &'static str, path: &str, body: Option<Value>) -> Answer {
    let (status, headers, body) = s
        .call(
            reqwest::Method::POST,
            path,
            body,
            &[("accept-language", "en")],
        )
        .await;
    let retry_after = headers
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse::<f64>().unwrap());
    Answer::new(step, status, retry_after, body)
}

/// Runs the same recovery script for `login`: starts, resends to the budget, wrong codes to
/// the cap (in parallel), a code after expiry; every answer in order.
async fn recovery_script(s: &Suite, login: &str) -> Vec<Answer> {
    let mut answers = Vec::new();
    let start = || answer(s, "start", "/v1/recovery", Some(json!({"login": login})));
    let started = |answer: &Answer| {
        assert_eq!(answer.status, StatusCode::CREATED, "{answer:?}");
        answer.flow.clone().unwrap()
    };
    // Flow A: a resend before the cooldown, wrong codes in parallel past the cap.
    answers.push(start().await);
    let a = started(&answers[0]);
    answers.push(
        answer(
            s,
            "resend A early",
            &format!("/v1/recovery/{a}/resend"),
            None,
        )
        .await,
    );
    let verify_a = format!("/v1/recovery/{a}/verify");
    let wrong = ["000000", "111111", "222222", "333333"]
        .map(|code| answer(s, "wrong code A", &verify_a, Some(json!({"code": code}))));
    // In parallel the order is the scheduler's: compared as a sorted list.
    let mut parallel = futures::future::join_all(wrong).await;
    parallel.sort_by_key(|a| a.body.to_string());
    answers.extend(parallel);
    let after_cap = Some(json!({"code": "444444"}));
    answers.push(answer(s, "wrong code A after the cap", &verify_a, after_cap).await);
    // Flow B: a code after the challenge expired, and a resend then.
    let b = started(&start().await);
    tokio::time::sleep(CODE_TTL + Duration::from_millis(500)).await;
    let code = Some(json!({"code": "555555"}));
    answers.push(
        answer(
            s,
            "code B after expiry",
            &format!("/v1/recovery/{b}/verify"),
            code,
        )
        .await,
    );
    answers.push(
        answer(
            s,
            "resend B after expiry",
            &format!("/v1/recovery/{b}/resend"),
            None,
        )
        .await,
    );
    // Flow C: resends, each after the cooldown, to the budget; then a new flow is refused too.
    let c = started(&start().await);
    for _ in 0..2 {
        tokio::time::sleep(COOLDOWN + Duration::from_millis(200)).await;
        answers.push(answer(s, "resend C", &format!("/v1/recovery/{c}/resend"), None).await);
    }
    answers.push(start().await);
    answers
}

const CODE_TTL: Duration = Duration::from_secs(3);
const COOLDOWN: Duration = Duration::from_secs(1);

#[tokio::test]
async fn recovery_for_an_unknown_login_answers_exactly_as_for_a_known_one() {
    let s = suite_with(Options {
        codes: Some(examreg_verification::store::Limits {
            code_ttl: CODE_TTL,
            resend_cooldown: COOLDOWN,
            max_attempts: 3,
            email_hourly: 4,
            ip_hourly: 1000,
        }),
        ..Options::default()
    })
    .await;
    let (known, email) = (valid_iin(), tk::unique_email());
    s.register(&known, &email).await;
    let unknown = valid_iin();
    // Side by side, so that the two scripts' clocks (cooldowns, budget windows) agree.
    let (known_answers, unknown_answers) =
        tokio::join!(recovery_script(&s, &known), recovery_script(&s, &unknown));
    assert_eq!(known_answers.len(), unknown_answers.len());
    for (k, u) in known_answers.iter().zip(&unknown_answers) {
        assert_eq!(
            (k.step, k.status, &k.body),
            (u.step, u.status, &u.body),
            "{k:?} / {u:?}"
        );
        assert_eq!(k.times.len(), u.times.len(), "{k:?} / {u:?}");
        for (kt, ut) in k.times.iter().zip(&u.times) {
            assert!((kt - ut).abs() < 1.5, "{k:?} / {u:?}");
        }
        match (k.retry_after, u.retry_after) {
            (Some(kr), Some(ur)) => assert!((kr - ur).abs() <= 1.0, "{k:?} / {u:?}"),
            (kr, ur) => assert_eq!(kr, ur, "{k:?} / {u:?}"),
        }
    }
    // The script did meet every rule: the cooldown, the cap, the expiry and the budget.
    let codes: Vec<&str> = known_answers
        .iter()
        .map(|a| a.body["error"]["code"].as_str().unwrap_or("ok"))
        .collect();
    assert_eq!(
        codes,
        [
            "ok",
            "resend_too_early",
            "code_attempts_exhausted",
            "code_attempts_exhausted",
            "invalid_code",
            "invalid_code",
            "code_attempts_exhausted",
            "code_expired",
            "code_expired",
            "ok",
            "send_budget_exhausted",
            "send_budget_exhausted",
        ]
    );
    // Only the known login's mailbox got letters: one per code sent.
    assert_eq!(
        tk::wait_for_mails(&email, 5, Duration::from_secs(20))
            .await
            .len(),
        5
    );
}

/// Three ports, three audiences: the applicants' answers nothing of the operators' or the
/// platform's, the operators' nothing of the applicants', the platform's only its probes and
/// metrics; the docs viewer is where `GATEWAY_DOCS` puts it.
#[tokio::test]
async fn each_audience_reaches_only_its_own_port() {
    let s = suite().await;
    let status_at = |base: &str, method: reqwest::Method, path: &str| {
        let request = s.http.request(method, format!("{base}{path}"));
        async move { request.send().await.unwrap().status() }
    };
    let (get, delete) = (reqwest::Method::GET, reqwest::Method::DELETE);
    let erase = "/v1/admin/people/0190b6a4-0000-7000-8000-000000000000?reason=x";
    let (public, admin, ops) = (&s.base, &s.admin_base, &s.ops_base);
    let found = StatusCode::OK;
    let missing = StatusCode::NOT_FOUND;
    for (base, method, path, expected) in [
        // The applicants' port: the API, the pages and the contract, nothing of the others.
        (public, &get, "/openapi.json", found),
        (public, &get, "/metrics", missing),
        (public, &get, "/readyz", missing),
        (public, &get, "/healthz", missing),
        (public, &get, "/docs/", missing),
        (public, &delete, erase, missing),
        // The operators' port knows the erasure (it wants an operator) and the docs.
        (admin, &delete, erase, StatusCode::UNAUTHORIZED),
        (admin, &get, "/docs/", found),
        (admin, &get, "/", missing),
        (admin, &get, "/v1/reference/regions", missing),
        (admin, &get, "/metrics", missing),
        (admin, &get, "/readyz", missing),
        // The platform's port: probes and metrics only.
        (ops, &get, "/metrics", found),
        (ops, &get, "/readyz", found),
        (ops, &get, "/healthz", found),
        (ops, &get, "/", missing),
        (ops, &get, "/v1/reference/regions", missing),
        (ops, &get, "/openapi.json", missing),
        (ops, &get, "/docs/", missing),
        (ops, &delete, erase, missing),
    ] {
        assert_eq!(
            status_at(base, method.clone(), path).await,
            expected,
            "{method} {base}{path}"
        );
    }
    // The docs viewer on the applicants' port, where an operator chooses it; or nowhere.
    let public = suite_with(Options {
        docs: examreg_gateway::config::Docs::Public,
        ..Options::default()
    })
    .await;
    assert_eq!(
        status_at(&public.base, get.clone(), "/docs/").await,
        StatusCode::OK
    );
    assert_eq!(
        status_at(&public.admin_base, get.clone(), "/docs/").await,
        StatusCode::NOT_FOUND
    );
    let off = suite_with(Options {
        docs: examreg_gateway::config::Docs::Off,
        ..Options::default()
    })
    .await;
    for base in [&off.base, &off.admin_base] {
        assert_eq!(
            status_at(base, get.clone(), "/docs/").await,
            StatusCode::NOT_FOUND
        );
    }
}

#[tokio::test]
async fn ops_endpoints_answer_and_the_openapi_document_covers_every_route() {
    let s = suite().await;
    let (status, body) = s.get("/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The `healthcheck` subcommand's probes, as the containers run them.
    let address = |url: &str| -> std::net::SocketAddr {
        let url = url.trim_start_matches("http://");
        url.trim_start_matches("https://").parse().unwrap()
    };
    healthcheck(
        address(&s.ops_base),
        Probe::Http("/healthz"),
        &Default::default(),
    )
    .await
    .unwrap();
    let refused = healthcheck(
        address(&s.ops_base),
        Probe::Http("/v1/nothing-here"),
        &Default::default(),
    )
    .await;
    assert!(refused.is_err(), "a 404 is not healthy: {refused:?}");
    for (name, url) in &s.services {
        healthcheck(address(url), Probe::Grpc, &tk::tls())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let (_, doc) = s.get("/openapi.json").await;
    // Every path a resource's router declares, read from the sources of every module so a new
    // route (or a new module) cannot be missed.
    let mut routes: Vec<String> = Vec::new();
    let mut described: Vec<String> = Vec::new();
    let mut sources = vec![std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src"
    ))];
    while let Some(dir) = sources.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources.push(path);
                continue;
            }
            let source = std::fs::read_to_string(&path).unwrap();
            for (at, _) in source.match_indices(".route(") {
                let rest = source[at + ".route(".len()..].trim_start();
                let Some(rest) = rest.strip_prefix('"') else {
                    continue;
                };
                let route = &rest[..rest.find('"').unwrap()];
                if route.starts_with("/v1/") {
                    routes.push(route.to_owned());
                }
            }
            // Routes described for the document (`routes!` registers them from the same
            // attribute).
            for (at, _) in source.match_indices("#[utoipa::path(") {
                let attribute = &source[at..at + source[at..].find(")]").unwrap()];
                let path = attribute.split("path = \"").nth(1).unwrap();
                let route = &path[..path.find('"').unwrap()];
                assert!(
                    attribute.contains("operation_id = \""),
                    "{route} has no operation_id"
                );
                described.push(route.to_owned());
                routes.push(route.to_owned());
            }
        }
    }
    assert!(routes.len() > 25, "{routes:?}");
    for route in &routes {
        assert!(
            doc["paths"][route.as_str()].is_object(),
            "{route} missing from openapi.json"
        );
    }
    // A described route is in the document as the code describes it, with its operationId.
    assert!(described.len() >= 6, "{described:?}");
    for route in &described {
        let operations = doc["paths"][route.as_str()].as_object().unwrap();
        assert!(
            operations.values().all(|o| o["operationId"].is_string()),
            "{route}: {operations:?}"
        );
    }
    let (_, _, list) = s
        .call(
            reqwest::Method::GET,
            "/v1/reference/citizenships",
            None,
            &[("accept-language", "en")],
        )
        .await;
    assert_eq!(
        list["items"][0],
        json!({"code": "KZ", "name": "Kazakhstan"})
    );
    // Every country is named, a French citizen's in Russian too.
    let (_, _, list) = s
        .call(
            reqwest::Method::GET,
            "/v1/reference/citizenships",
            None,
            &[("accept-language", "ru")],
        )
        .await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 249);
    assert!(items.contains(&json!({"code": "FR", "name": "Франция"})));
    assert!(items.iter().all(|c| c["name"] != c["code"]), "{items:?}");
    let metrics = s.text("/metrics").await;
    assert!(metrics.contains("gateway_http_requests_total"), "{metrics}");
    let docs = s
        .http
        .get(format!("{}/docs", s.admin_base))
        .send()
        .await
        .unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(
        docs.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    let page = docs.text().await.unwrap();
    assert!(page.contains("swagger-ui"), "{page}");
    // Everything the page loads is the gateway's own: no address elsewhere.
    assert!(!page.contains("https://"), "{page}");
    let initializer = s.text("/docs/swagger-initializer.js").await;
    assert!(initializer.contains("/openapi.json"), "{initializer}");
    // CORS answers only the configured origin.
    let preflight = s
        .http
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/v1/registrations", s.base),
        )
        .header("origin", "https://abiturient.example.kz")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://abiturient.example.kz"
    );
}

#[tokio::test]
async fn behind_a_proxy_the_budget_follows_the_address_it_appends_not_a_forged_first_line() {
    let s = suite_with(Options {
        rate_limit: 5,
        trusted_proxies: 1,
        ..Options::default()
    })
    .await;
    let from = |lines: Vec<String>| {
        let s = &s;
        async move {
            let headers: Vec<(&str, &str)> = lines
                .iter()
                .map(|l| ("x-forwarded-for", l.as_str()))
                .collect();
            let (status, _, _) = s
                .call(reqwest::Method::GET, "/v1/terms/current", None, &headers)
                .await;
            status
        }
    };
    // A new forged first line every time, and the same address our proxy appends: the
    // budget of five a minute (ten if the minute turns) still runs out.
    let mut statuses = Vec::new();
    for i in 0..11 {
        statuses.push(from(vec![format!("6.6.6.{i}"), "10.9.9.9".into()]).await);
    }
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    // Another applicant behind the same proxy has a budget of their own.
    assert_eq!(from(vec!["10.9.9.10".into()]).await, StatusCode::OK);
}

#[tokio::test]
async fn past_the_per_address_limit_a_client_is_asked_for_a_proof_of_work() {
    let s = suite_with(Options {
        rate_limit: 5,
        ..Options::default()
    })
    .await;
    for _ in 0..5 {
        let (status, _) = s.get("/v1/terms/current").await;
        assert_eq!(status, StatusCode::OK);
    }
    // The budget is per clock minute: if a minute turned during the test, the next window has
    // five more, so the challenge comes at the latest with the eleventh request.
    let mut refused = None;
    for _ in 0..6 {
        let (status, body) = s.get("/v1/terms/current").await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(body);
            break;
        }
    }
    let body = refused.expect("the per-address limit asked for work");
    assert_eq!(body["error"]["code"], "proof_of_work_required");
    let challenge = &body["error"]["proof_of_work"];
    assert_eq!(
        challenge["maxnumber"], 2_000,
        "no pass earned yet: the base difficulty"
    );
    for member in ["challenge", "salt", "signature"] {
        assert!(challenge[member].is_string(), "{body}");
    }
    // Operations endpoints are outside the budget.
    let (status, _) = s.get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_burst_from_one_address_gets_no_more_than_its_budget() {
    // Requests far below the budget go on beside their count (`middleware::Budgets`); a
    // burst of forty at once must still get exactly the budget's ten through.
    let s = suite_with(Options {
        rate_limit: 10,
        ..Options::default()
    })
    .await;
    let minute = || chrono::Utc::now().timestamp() / 60;
    let began = minute();
    let statuses: Vec<StatusCode> =
        futures::future::join_all((0..40).map(|_| async { s.get("/v1/terms/current").await.0 }))
            .await;
    let served = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(served + refused, 40, "{statuses:?}");
    // A minute that turned mid-burst gives a second budget.
    let budget = if minute() == began { 10 } else { 20 };
    assert!(
        served <= budget && served >= 10,
        "{served} served: {statuses:?}"
    );
    // And the next request, sent alone, is refused too.
    if minute() == began {
        let (status, body) = s.get("/v1/terms/current").await;
        refusal(status, &body, 429, "proof_of_work_required");
    }
}

#[tokio::test]
async fn concurrent_requests_on_one_flow_never_undo_each_other() {
    let s = suite().await;
    let flow = s.start("KZ").await;
    let iins: Vec<String> = (0..8).map(|_| valid_iin()).collect();
    let puts = iins.iter().map(|iin| {
        let path = format!("/v1/registrations/{flow}/identifier");
        let s = &s;
        async move { s.put(&path, json!({"iin": iin})).await }
    });
    let results = futures::future::join_all(puts).await;
    let mut won = Vec::new();
    for ((status, body), iin) in results.iter().zip(&iins) {
        match *status {
            StatusCode::OK => won.push(iin.clone()),
            StatusCode::CONFLICT => assert_eq!(body["error"]["code"], "flow_changed"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(!won.is_empty());
    // The flow holds the identifier of the last request that won, and nothing was lost.
    let (_, state) = s.get(&format!("/v1/registrations/{flow}")).await;
    assert_eq!(state["next_step"], "email");
    let shown = state["identifier"].as_str().unwrap();
    assert!(
        won.iter()
            .any(|iin| examreg_domain::mask_identifier(iin) == shown),
        "{shown} not among {won:?}"
    );
}

/// A service down takes its own routes out, not the gateway: `/readyz` stays ready while
/// Redis answers and says which service does not; `/readyz?all` waits for every one.
#[tokio::test]
async fn a_service_down_takes_out_its_routes_and_not_the_gateway() {
    let s = suite().await;
    let token = s.logged_in().await;
    let (status, body) = s.get("/readyz?all").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let config = s.stop("biometrics").await;
    let (status, body) = s.get("/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"redis": true, "identity": true, "verification": true, "biometrics": false, "profile": true})
    );
    let (status, body) = s.get("/readyz?all").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    // The photos wait; everything else goes on.
    let (status, body) = s.photo(&token, "face", "image/jpeg", SELFIE.to_vec()).await;
    refusal(status, &body, 503, "dependency_unavailable");
    let (status, body) = s.get("/v1/reference/regions").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let flow = s.start("KZ").await;
    assert!(!flow.is_empty());
    let metrics = s
        .http
        .get(format!("{}/metrics", s.ops_base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"gateway_dependency_up{dependency="biometrics"} 0"#),
        "{metrics}"
    );
    s.start_again(config).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = s.get("/readyz?all").await;
        if status == StatusCode::OK {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, body) = s.photo(&token, "face", "image/jpeg", SELFIE.to_vec()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_gateway_refused_by_identity_answers_503_not_401() {
    let s = suite_with(Options {
        client_secret: "not-the-secret",
        ..Options::default()
    })
    .await;
    let flow = s.start("KZ").await;
    s.put(
        &format!("/v1/registrations/{flow}/identifier"),
        json!({"iin": valid_iin()}),
    )
    .await;
    let (status, headers, body) = s
        .call(
            reqwest::Method::PUT,
            &format!("/v1/registrations/{flow}/email"),
            Some(json!({"email": tk::unique_email()})),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "dependency_unavailable");
    assert!(headers.contains_key("retry-after"));
    // Nothing moved: the flow still waits for the email.
    let (_, state) = s.get(&format!("/v1/registrations/{flow}")).await;
    assert_eq!(state["next_step"], "email");
}

#[tokio::test]
async fn a_passport_needs_its_data_page_only_and_the_choice_can_change() {
    let s = suite().await;
    let token = s.logged_in().await;
    assert_eq!(s.onboarding(&token).await["document_type"], "id_card");
    let (status, body) = s
        .photo(
            &token,
            "document-front?document_type=visa",
            "image/jpeg",
            id_card(true),
        )
        .await;
    refusal(status, &body, 422, "invalid_document_type");
    let (status, body) = s.photo(&token, "face", "image/jpeg", SELFIE.to_vec()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // An ID card's back first, then the applicant decides to use the passport instead.
    let (status, _) = s
        .photo(&token, "document-back", "image/jpeg", id_card(false))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = s
        .photo(
            &token,
            "document-front?document_type=passport",
            "image/jpeg",
            id_card(true),
        )
        .await;
    assert_eq!(
        (status, body["next_step"].as_str()),
        (StatusCode::OK, Some("consent")),
        "{body}"
    );
    let onboarding = s.onboarding(&token).await;
    assert_eq!(onboarding["document_type"], "passport");
    let steps: Vec<&str> = onboarding["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| step["step"].as_str().unwrap())
        .collect();
    assert!(!steps.contains(&"document_back"), "{onboarding}");
    // A passport has no back side to upload.
    let (status, body) = s
        .photo(&token, "document-back", "image/jpeg", id_card(false))
        .await;
    refusal(status, &body, 422, "document_back_not_needed");
    assert_eq!(
        body["error"]["message"],
        "A passport needs only its photo page; there is no back side to upload."
    );
    // Back to the ID card: the back (dropped with the switch) is needed again.
    let (status, body) = s
        .photo(
            &token,
            "document-front?document_type=id_card",
            "image/jpeg",
            id_card(true),
        )
        .await;
    assert_eq!(
        (status, body["next_step"].as_str()),
        (StatusCode::OK, Some("document_back")),
        "{body}"
    );
}

#[tokio::test]
async fn garage_stopped_during_uploads_answers_503_records_nothing_and_the_retry_succeeds() {
    let mut garage = tk::Relay::down(&tk::s3_addr()).await;
    garage.up().await;
    let s = suite_with(Options {
        s3_endpoint: format!("http://{}", garage.addr),
        ..Options::default()
    })
    .await;
    let token = s.logged_in().await;
    let (status, body) = s.photo(&token, "face", "image/jpeg", SELFIE.to_vec()).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    garage.stop().await;
    let (status, body) = s
        .photo(&token, "document-front", "image/jpeg", id_card(true))
        .await;
    refusal(status, &body, 503, "dependency_unavailable");
    let onboarding = s.onboarding(&token).await;
    assert_eq!(onboarding["next_step"], "document_front", "{onboarding}");

    garage.up().await;
    let (status, body) = s
        .photo(&token, "document-front", "image/jpeg", id_card(true))
        .await;
    assert_eq!(
        (status, body["next_step"].as_str()),
        (StatusCode::OK, Some("document_back")),
        "{body}"
    );
}

#[tokio::test]
async fn after_login_the_applicant_photographs_face_and_document_consents_and_moves_on_to_name() {
    let s = suite().await;
    let iin = valid_iin();
    s.register(&iin, &tk::unique_email()).await;
    let (_, session) = s.login(&iin, PASSWORD).await;
    assert_eq!(session["next_step"], "face");
    let token = session["access_token"].as_str().unwrap().to_owned();

    let (status, body) = s
        .photo(&token, "face", "text/plain", b"hello".to_vec())
        .await;
    refusal(status, &body, 415, "unsupported_media_type");
    let blurred = jpeg(&image::load_from_memory(SELFIE).unwrap().blur(4.0));
    let (status, body) = s.photo(&token, "face", "image/jpeg", blurred).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "photo_blurred");
    assert_eq!(body["error"]["fields"]["photo"], "blurred");
    assert_eq!(
        body["error"]["message"],
        "The photo is blurred. Hold the camera still and retake it."
    );
    assert!(body["error"]["checks"]["sharpness"].as_f64().unwrap() < 60.0);
    let (status, body) = s
        .photo(&token, "face", "image/jpeg", vec![0xFF; 11 * 1024 * 1024])
        .await;
    refusal(status, &body, 413, "body_too_large");

    let (status, body) = s.photo(&token, "face", "image/jpeg", SELFIE.to_vec()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["accepted"], true);
    assert_eq!(body["checks"]["faces"], 1);
    assert_eq!(body["next_step"], "document_front");
    // «Переснять»: a retake is accepted the same way.
    assert_eq!(
        s.photo(&token, "face", "image/jpeg", SELFIE.to_vec())
            .await
            .0,
        StatusCode::OK
    );
    let (status, body) = s
        .photo(&token, "document-front", "image/jpeg", id_card(true))
        .await;
    assert_eq!(
        (status, body["next_step"].as_str()),
        (StatusCode::OK, Some("document_back")),
        "{body}"
    );
    let back = s.good_photo(&token, "document-back").await;
    let (status, body) = s.photo(&token, "document-back", "image/jpeg", back).await;
    assert_eq!(
        (status, body["next_step"].as_str()),
        (StatusCode::OK, Some("consent")),
        "{body}"
    );

    let consent = |version: &str| json!({"consent_version": version, "accepted": true});
    let post = |body: Value| {
        let s = &s;
        let token = token.clone();
        async move {
            let response = s
                .http
                .post(format!("{}/v1/me/biometrics/consent", s.base))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = post(consent("1999-01")).await;
    refusal(status, &body, 422, "consent_version_outdated");
    let (_, text) = s.get("/v1/terms/biometric-consent").await;
    let (status, body) = post(consent(text["version"].as_str().unwrap())).await;
    assert_eq!(
        (status, body["next_step"].as_str()),
        (StatusCode::OK, Some("name")),
        "{body}"
    );

    let onboarding: Value = s
        .http
        .get(format!("{}/v1/me/onboarding", s.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(onboarding["next_step"], "name");
    assert_eq!(
        onboarding["steps"][3],
        json!({"step": "consent", "done": true})
    );
    // A later login resumes where the applicant stopped.
    assert_eq!(s.login(&iin, PASSWORD).await.1["next_step"], "name");
}

#[tokio::test]
async fn a_login_flood_beyond_the_hashing_queue_gets_429_with_retry_after_and_shuts_the_door_briefly()
 {
    let pause = Duration::from_secs(4);
    let s = suite_with(Options {
        hashing: (1, 1),
        admission_pause: pause,
        ..Options::default()
    })
    .await;
    // Three applicants, three logins each at once (each within its login's failure budget).
    let mut iins = Vec::new();
    for _ in 0..3 {
        let iin = valid_iin();
        s.register(&iin, &tk::unique_email()).await;
        iins.push(iin);
    }
    // A registration already under way when the flood comes.
    let under_way = s.start("KZ").await;
    let mut logins: FuturesUnordered<_> = iins
        .iter()
        .flat_map(|iin| std::iter::repeat_n(iin.clone(), 3))
        .map(|iin| {
            let (http, base) = (s.http.clone(), s.base.clone());
            tokio::spawn(async move {
                let response = http
                    .post(format!("{base}/v1/sessions"))
                    .header("accept-language", "en")
                    .json(&json!({"login": iin, "password": PASSWORD}))
                    .send()
                    .await
                    .unwrap();
                let retry_after = response.headers().get("retry-after").cloned();
                (
                    response.status(),
                    retry_after,
                    response.json::<Value>().await.unwrap(),
                )
            })
        })
        .collect();
    let (mut ok, mut refused) = (0, 0);
    let mut door_checked = false;
    while let Some(login) = logins.next().await {
        let (status, retry_after, body) = login.unwrap();
        match status {
            StatusCode::CREATED => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert_eq!(body["error"]["code"], "overloaded", "{body}");
                assert!(retry_after.is_some(), "429 carries Retry-After");
                refused += 1;
                if !door_checked {
                    door_checked = true;
                    // Right after the refusal a new registration is turned away at the door,
                    // told when to come back...
                    let (status, headers, body) = s
                        .call(
                            reqwest::Method::POST,
                            "/v1/registrations",
                            Some(json!({"citizenship": "KZ", "terms_version": "2026-01", "terms_accepted": true})),
                            &[("accept-language", "kk")],
                        )
                        .await;
                    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
                    assert_eq!(body["error"]["code"], "overloaded");
                    assert_eq!(headers["content-language"], "kk");
                    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
                    assert!((1..=pause.as_secs()).contains(&wait), "{wait}");
                    // ...while the one under way goes on.
                    let (status, body) = s
                        .put(
                            &format!("/v1/registrations/{under_way}/identifier"),
                            json!({"iin": valid_iin()}),
                        )
                        .await;
                    assert_eq!(status, StatusCode::OK, "{body}");
                }
            }
            other => panic!("{other}: {body}"),
        }
    }
    assert!(ok >= 2 && refused >= 1, "{ok} logged in, {refused} refused");
    assert!(door_checked);
    // Once the pause has passed without another refusal, the door opens again.
    tokio::time::sleep(pause).await;
    s.start("KZ").await;
}

#[tokio::test]
async fn a_photo_costs_the_upload_alone_and_identity_is_not_asked() {
    let s = suite().await;
    let token = s.logged_in().await;
    // Every service of the suite runs in this test's process: one page has every count.
    let handled = |page: &str, method: &str| {
        counter(
            page,
            "grpc_server_handled_total",
            &[&format!("method=\"/examreg.{method}\"")],
        )
    };
    let before = s.metrics_of("identity").await;
    let (status, body) = s.photo(&token, "face", "image/jpeg", SELFIE.to_vec()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["next_step"], "document_front");
    let after = s.metrics_of("identity").await;
    let calls = |method: &str| handled(&after, method) - handled(&before, method);
    assert_eq!(calls("biometrics.v1.BiometricsService/UploadCapture"), 1.0);
    for unasked in [
        "identity.v1.IdentityService/GetAccount",
        "biometrics.v1.BiometricsService/GetCaptureStatus",
        "profile.v1.ProfileService/GetProfile",
    ] {
        assert_eq!(calls(unasked), 0.0, "{unasked}");
    }
}

#[tokio::test]
async fn identity_is_asked_where_the_applicant_stands_only_once_the_photos_are_sealed() {
    let s = suite().await;
    let token = s.logged_in().await;
    let get_account = |page: String| {
        counter(
            &page,
            "grpc_server_handled_total",
            &["method=\"/examreg.identity.v1.IdentityService/GetAccount\""],
        )
    };
    // Before the completion: a profile write, the onboarding, a completion refused.
    let before = get_account(s.metrics_of("identity").await);
    let (status, body) = s
        .me(
            reqwest::Method::PUT,
            "/v1/me/profile/name",
            &token,
            Some(json!({"surname": "Нұрланов", "given_name": "Арман"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["next_step"], "face");
    assert_eq!(s.onboarding(&token).await["next_step"], "face");
    let (status, body) = s.complete(&token).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "registration_incomplete");
    assert_eq!(get_account(s.metrics_of("identity").await), before);

    // Registered (the set sealed): identity says so, and is asked.
    s.fill_in(&token).await;
    let (status, body) = s.complete(&token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let before = get_account(s.metrics_of("identity").await);
    let onboarding = s.onboarding(&token).await;
    assert_eq!(onboarding["next_step"], "done", "{onboarding}");
    let (status, body) = s.complete(&token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "registered");
    assert_eq!(get_account(s.metrics_of("identity").await), before + 2.0);
}

/// Up to the code letter, as a device behind the school's address does it.
async fn apply_behind_a_shared_address(s: &Suite, email: &str) -> Device {
    let mut device = Device::default();
    let (get, post, put) = (
        reqwest::Method::GET,
        reqwest::Method::POST,
        reqwest::Method::PUT,
    );
    let (status, terms) = s
        .call_solving(&mut device, get, "/v1/terms/current", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{terms}");
    let start =
        json!({"citizenship": "KZ", "terms_version": terms["version"], "terms_accepted": true});
    let (status, flow) = s
        .call_solving(&mut device, post, "/v1/registrations", Some(start))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{flow}");
    let flow = flow["flow_id"].as_str().unwrap().to_owned();
    let path = format!("/v1/registrations/{flow}/identifier");
    let (status, body) = s
        .call_solving(
            &mut device,
            put.clone(),
            &path,
            Some(json!({"iin": valid_iin()})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let path = format!("/v1/registrations/{flow}/email");
    let (status, body) = s
        .call_solving(&mut device, put, &path, Some(json!({"email": email})))
        .await;
    assert_eq!(
        (status, body["next_step"].as_str()),
        (StatusCode::OK, Some("email_code")),
        "{body}"
    );
    device
}

#[tokio::test]
async fn two_hundred_applicants_behind_one_address_all_get_their_codes_by_solving_challenges() {
    let s = suite_with(Options {
        rate_limit: 30,
        codes: Some(examreg_verification::store::Limits {
            ip_hourly: 5,
            ..examreg_verification::Config::defaults().limits
        }),
        ..Options::default()
    })
    .await;
    let emails: Vec<String> = (0..200).map(|_| tk::unique_email()).collect();
    let devices: Vec<Device> = futures::stream::iter(&emails)
        .map(|email| apply_behind_a_shared_address(&s, email))
        .buffer_unordered(16)
        .collect()
        .await;
    // Every applicant's code arrived.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let all = tk::all_mails().await;
        let missing = emails
            .iter()
            .filter(|e| !all.iter().any(|m| m.is_to(e)))
            .count();
        if missing == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{missing} applicants got no code"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Past the address's soft limits (30 requests a minute, 5 letters an hour) each one
    // solved a challenge, once: its pass carried it through the rest of its journey.
    let unasked = devices.iter().filter(|d| d.solved == 0).count();
    assert!(
        unasked <= 5,
        "{unasked} applicants sent their letter without a pass"
    );
    // A pass lasts a journey: each device solved once (the passes others minted while it
    // solved were within the slack).
    assert!(
        devices.iter().all(|d| d.solved <= 1),
        "a pass lasts a journey"
    );
    // The challenges grew harder as the address earned passes (over 190 of them; should a
    // ten-minute window turn mid-test, one side still has half: at least 1.5 × the base).
    let hardest = devices.iter().flat_map(|d| &d.maxnumbers).max().unwrap();
    assert!(*hardest >= 3_000, "{hardest}");

    // A client that does not solve is refused past the threshold, and so are a forged pass
    // and a solution used twice.
    let start = json!({"citizenship": "KZ", "terms_version": "x", "terms_accepted": true});
    // (Should the minute have turned since the crowd, its first 30 requests are under the
    // soft limit again and get the version's refusal: the 31st is past it.)
    let (mut status, mut body) = s.post("/v1/registrations", start.clone()).await;
    for _ in 0..31 {
        if status != StatusCode::UNPROCESSABLE_ENTITY {
            break;
        }
        (status, body) = s.post("/v1/registrations", start.clone()).await;
    }
    refusal(status, &body, 429, "proof_of_work_required");
    let challenge: examreg_gateway::pow::Challenge =
        serde_json::from_value(body["error"]["proof_of_work"].clone()).unwrap();
    assert_eq!(challenge.algorithm, "SHA-256");
    let forged = [(
        "x-pow-pass",
        "p1.00000000000000000000000000000000.9999999999.00",
    )];
    let (status, _, body) = s
        .call(reqwest::Method::GET, "/v1/terms/current", None, &forged)
        .await;
    refusal(status, &body, 429, "proof_of_work_required");
    let solution = examreg_gateway::pow::solve(&challenge).unwrap();
    let with_solution = [("x-proof-of-work", solution.as_str())];
    let (status, headers, _) = s
        .call(
            reqwest::Method::GET,
            "/v1/terms/current",
            None,
            &with_solution,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let pass = headers["x-pow-pass"].to_str().unwrap().to_owned();
    let (status, _, body) = s
        .call(
            reqwest::Method::GET,
            "/v1/terms/current",
            None,
            &with_solution,
        )
        .await;
    refusal(status, &body, 429, "proof_of_work_required");
    // A pass's own budget is hard: past it, `rate_limited` with Retry-After.
    let with_pass = [("x-pow-pass", pass.as_str())];
    let mut served = 0;
    let refused = loop {
        let (status, headers, body) = s
            .call(reqwest::Method::GET, "/v1/terms/current", None, &with_pass)
            .await;
        if status != StatusCode::OK {
            break (status, headers.get("retry-after").cloned(), body);
        }
        served += 1;
        // A minute that turns mid-loop starts the count again, once.
        assert!(served < 62, "a pass's budget held no line");
    };
    refusal(refused.0, &refused.2, 429, "rate_limited");
    assert!(refused.1.is_some() && served >= 29, "{served}");
}

#[tokio::test]
async fn the_document_check_reads_the_back_says_what_to_do_and_holds_the_completion() {
    let s = suite().await;
    let iin = valid_iin();
    s.register(&iin, &tk::unique_email()).await;
    let (_, session) = s.login(&iin, PASSWORD).await;
    let token = session["access_token"].as_str().unwrap().to_owned();
    assert!(s.onboarding(&token).await.get("document_check").is_none());
    // Every step done, with the holder's own card: verified (`fill_in` waits for it).
    s.fill_in(&token).await;
    let complete = |lang: &'static str| {
        let auth = format!("Bearer {token}");
        let s = &s;
        async move {
            let (status, _, body) = s
                .call(
                    reqwest::Method::POST,
                    "/v1/me/registration/complete",
                    None,
                    &[("authorization", &auth), ("accept-language", lang)],
                )
                .await;
            (status, body)
        }
    };
    // A retake without a readable zone: retake it, in Russian by default. The back is a
    // step to do again, and the completion says so in the check's own words.
    let (status, body) = s
        .photo(&token, "document-back", "image/jpeg", id_card(false))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let check = s.settled_document_check(&token, "ru").await;
    assert_eq!(check["status"], "retake", "{check}");
    assert_eq!(check["code"], "document_mrz_unreadable");
    assert_eq!(
        check["message"],
        "Сфотографируйте оборотную сторону целиком, без бликов."
    );
    let onboarding = s.onboarding(&token).await;
    assert_eq!(onboarding["next_step"], "document_back", "{onboarding}");
    let (status, body) = complete("ru").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "document_mrz_unreadable", "{body}");
    assert_eq!(body["error"]["message"], check["message"]);
    assert_eq!(body["error"]["missing"], json!(["document_back"]));
    assert_eq!(body["error"]["document_check"]["status"], "retake");
    // The holder's own card again: verified.
    let holder = examreg_domain::Iin::parse(&iin).unwrap();
    let check = s.read_back(&token, &holder, 5, "en").await;
    assert_eq!(check["status"], "verified", "{check}");
    assert!(check.get("code").is_none());
    // Somebody else's card (a squatter's try): a person looks, the applicant is told so, and
    // the registration waits for that person.
    let other = examreg_domain::Iin::parse(&valid_iin()).unwrap();
    let check = s.read_back(&token, &other, 6, "kk").await;
    assert_eq!(check["status"], "under_review", "{check}");
    assert_eq!(check["code"], "document_review");
    assert!(check["message"].as_str().unwrap().contains("қызметкері"));
    assert_eq!(s.onboarding(&token).await["next_step"], "complete");
    let (status, body) = complete("en").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "document_review", "{body}");
    assert_eq!(body["error"]["missing"], json!([]));
    // Nothing was made final: the profile is not locked, the account not registered.
    let (_, _, me) = s
        .call(
            reqwest::Method::GET,
            "/v1/me",
            None,
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await;
    assert_eq!(me["account"]["status"], "active", "{me}");
    assert_eq!(me["profile"]["locked"], false, "{me}");
}

#[tokio::test]
async fn a_changed_agreement_file_is_what_applicants_see_and_its_hash_is_what_the_record_keeps() {
    let dir = published_texts();
    let s = suite_with(Options {
        texts_dir: Some(dir.clone()),
        ..Options::default()
    })
    .await;
    let get = reqwest::Method::GET;
    let (status, _, kk) = s
        .call(
            get.clone(),
            "/v1/terms/current",
            None,
            &[("accept-language", "kk")],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let kk_file = dir.join("terms.2026-12.kk.txt");
    assert_eq!(
        kk,
        json!({
            "version": "2026-12",
            "language": "kk",
            "title": "Пайдаланушы келісімі",
            "text": "Жаңа редакция: тестілеу орындары туралы.",
            "sha256": sha256_of(&kk_file),
        })
    );

    // The version before, and a text of the current version that was never published, are
    // refused, and no flow is started.
    let start = |version: &str, sha256: &str| {
        json!({"citizenship": "KZ", "terms_version": version, "terms_sha256": sha256,
               "terms_accepted": true})
    };
    let old = sha256_of(&dir.join("terms.2026-01.ru.txt"));
    let (status, body) = s.post("/v1/registrations", start("2026-01", &old)).await;
    refusal(status, &body, 422, "terms_version_outdated");
    let (status, body) = s.post("/v1/registrations", start("2026-12", &old)).await;
    refusal(status, &body, 422, "terms_version_outdated");
    assert_eq!(body["error"]["fields"]["terms_version"], "outdated");

    // Shown the Kazakh text, accepted from a browser that asks for Russian: the Kazakh text
    // is what the account keeps.
    let sha = kk["sha256"].as_str().unwrap();
    let (status, _, flow) = s
        .call(
            reqwest::Method::POST,
            "/v1/registrations",
            Some(start("2026-12", sha)),
            &[("accept-language", "ru")],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{flow}");
    let flow = flow["flow_id"].as_str().unwrap();
    let iin = valid_iin();
    s.prove_email_of(flow, &iin, &tk::unique_email(), 1).await;
    let account: uuid::Uuid = s.set_password(flow).await.parse().unwrap();
    let identity = sqlx::PgPool::connect(&s.identity_db).await.unwrap();
    let kept: (String, Option<String>, Option<String>) = sqlx::query_as(
        "SELECT terms_version, terms_sha256, terms_language FROM accounts WHERE id = $1",
    )
    .bind(account)
    .fetch_one(&identity)
    .await
    .unwrap();
    assert_eq!(
        kept,
        (
            "2026-12".into(),
            Some(sha256_of(&kk_file)),
            Some("kk".into())
        )
    );

    // The consent: the new text in English, with no hash sent, is recorded as the English one.
    let (_, session) = s.login(&iin, PASSWORD).await;
    let token = session["access_token"].as_str().unwrap();
    let (status, _, consent) = s
        .call(
            get,
            "/v1/terms/biometric-consent",
            None,
            &[("accept-language", "en")],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(consent["version"], "2026-12");
    assert_eq!(consent["title"], "User agreement (биометрия)");
    let auth = format!("Bearer {token}");
    let (status, _, body) = s
        .call(
            reqwest::Method::POST,
            "/v1/me/biometrics/consent",
            Some(json!({"consent_version": "2026-12", "accepted": true})),
            &[("authorization", &auth), ("accept-language", "en")],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let biometrics = sqlx::PgPool::connect(&s.biometrics_db).await.unwrap();
    let kept: (String, Option<String>, Option<String>) =
        sqlx::query_as("SELECT version, sha256, language FROM consents WHERE account_id = $1")
            .bind(account)
            .fetch_one(&biometrics)
            .await
            .unwrap();
    assert_eq!(
        kept,
        (
            "2026-12".into(),
            Some(sha256_of(&dir.join("biometric-consent.2026-12.en.txt"))),
            Some("en".into())
        )
    );

    // A directory missing a language of a version keeps the gateway from starting, and says
    // which file is missing.
    std::fs::remove_file(dir.join("terms.2026-12.en.txt")).unwrap();
    let mut config = examreg_gateway::Config::defaults();
    config.texts_dir = Some(dir.clone());
    config.pow_key = examreg_kit::config::Secret::new("test-pow-key-0123456789abcdef0123456789");
    let error = examreg_gateway::Application::build(config, Default::default())
        .await
        .err()
        .expect("a gateway without the English agreement does not start")
        .to_string();
    assert!(error.contains("terms.2026-12.en.txt is missing"), "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Waits until at least `margin` is left of the current ten-minute proof-of-work window, so a
/// test's passes are all priced in one window.
async fn well_inside_a_pow_window(margin: Duration) {
    let window = u64::try_from(examreg_gateway::pow::WINDOW_SECS).unwrap();
    let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap();
    let left = window - now % window;
    if left < margin.as_secs() {
        tokio::time::sleep(Duration::from_secs(left + 1)).await;
    }
}

#[tokio::test]
async fn stockpiled_challenges_mint_no_more_passes_than_the_slack_allows_then_cost_todays_price() {
    let s = suite_with(Options {
        rate_limit: 1,
        ..Options::default()
    })
    .await;
    well_inside_a_pow_window(Duration::from_secs(60)).await;
    // Forty challenges collected from one address while it has no pass: all at the base price.
    let mut challenges = Vec::new();
    while challenges.len() < 40 {
        let (status, body) = s.get("/v1/terms/current").await;
        if body["error"]["code"] == "proof_of_work_required" {
            let challenge: examreg_gateway::pow::Challenge =
                serde_json::from_value(body["error"]["proof_of_work"].clone()).unwrap();
            challenges.push(challenge);
        } else {
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    }
    assert!(challenges.iter().all(|c| c.maxnumber == 2_000));
    let solutions: Vec<String> = challenges
        .iter()
        .map(|c| examreg_gateway::pow::solve(c).unwrap())
        .collect();
    // Redeemed one after another: a pass while no more than the slack were minted since.
    let mut minted = 0;
    let mut asked_instead = Vec::new();
    for solution in &solutions {
        let (status, headers, body) = s
            .call(
                reqwest::Method::GET,
                "/v1/terms/current",
                None,
                &[("x-proof-of-work", solution.as_str())],
            )
            .await;
        if headers.contains_key("x-pow-pass") {
            assert_eq!(status, StatusCode::OK, "{body}");
            minted += 1;
        } else {
            refusal(status, &body, 429, "proof_of_work_required");
            asked_instead.push(
                body["error"]["proof_of_work"]["maxnumber"]
                    .as_u64()
                    .unwrap(),
            );
        }
    }
    let config = examreg_gateway::Config::defaults();
    let schedule = examreg_gateway::pow::Pow::new(
        b"any",
        2_000,
        config.pow_step,
        config.pow_slack,
        Duration::ZERO,
    );
    let allowed = schedule.stockpile_mints(2_000);
    assert_eq!(
        minted, allowed,
        "40 base challenges mint {allowed} passes, not {minted}"
    );
    assert!(allowed < 40);
    // The rest are asked to pay today's price.
    assert!(
        asked_instead.iter().all(|m| *m == schedule.price(allowed)),
        "{asked_instead:?}"
    );
    // And a solution counts once.
    let (status, _, body) = s
        .call(
            reqwest::Method::GET,
            "/v1/terms/current",
            None,
            &[("x-proof-of-work", solutions[0].as_str())],
        )
        .await;
    refusal(status, &body, 429, "proof_of_work_required");
}

/// A login from `from` (the address our proxy appends).
async fn login_from(
    s: &Suite,
    from: &str,
    login: &str,
    password: &str,
    solution: Option<&str>,
) -> (StatusCode, Value) {
    let mut headers = vec![("x-forwarded-for", from)];
    if let Some(solution) = solution {
        headers.push(("x-proof-of-work", solution));
    }
    let body = json!({"login": login, "password": password});
    let (status, _, body) = s
        .call(reqwest::Method::POST, "/v1/sessions", Some(body), &headers)
        .await;
    (status, body)
}

#[tokio::test]
async fn failures_from_every_address_of_one_ipv6_network_share_one_budget() {
    let s = suite_with(Options {
        trusted_proxies: 1,
        ..Options::default()
    })
    .await;
    let budget = Options::default().ip_failure_budget;
    // 150 wrong logins, each from another address of one /64 and for another identifier.
    let mut answers = Vec::new();
    for i in 0..150 {
        let from = format!("2001:db8:77:1:{i:x}::9");
        let (status, body) = login_from(&s, &from, &valid_iin(), "wrong-password-1", None).await;
        answers.push((
            status,
            body["error"]["code"].as_str().unwrap_or("").to_owned(),
        ));
    }
    let failed = answers
        .iter()
        .filter(|(status, code)| {
            *status == StatusCode::UNAUTHORIZED && code == "invalid_credentials"
        })
        .count();
    let asked = answers
        .iter()
        .filter(|(status, code)| {
            *status == StatusCode::TOO_MANY_REQUESTS && code == "proof_of_work_required"
        })
        .count();
    assert_eq!(
        (failed, asked),
        (
            usize::try_from(budget).unwrap(),
            150 - usize::try_from(budget).unwrap()
        ),
        "the network's one budget, then proofs of work"
    );
    // The next /64 is another subscriber, with a budget of its own.
    let (status, body) = login_from(
        &s,
        "2001:db8:77:2::9",
        &valid_iin(),
        "wrong-password-1",
        None,
    )
    .await;
    refusal(status, &body, 401, "invalid_credentials");
}

#[tokio::test]
async fn after_a_lab_spends_its_failure_budget_a_classmate_logs_in_by_solving_a_challenge() {
    let s = suite_with(Options {
        trusted_proxies: 1,
        ip_failure_budget: 5,
        ..Options::default()
    })
    .await;
    let iin = valid_iin();
    s.register(&iin, &tk::unique_email()).await;
    let lab = "10.20.30.40";
    // Pupils' typos on their own logins spend the lab address's budget.
    for _ in 0..5 {
        let (status, body) = login_from(&s, lab, &valid_iin(), "wrong-password-1", None).await;
        refusal(status, &body, 401, "invalid_credentials");
    }
    // The classmate with the right password is not locked out: asked for work.
    let (status, body) = login_from(&s, lab, &iin, PASSWORD, None).await;
    refusal(status, &body, 429, "proof_of_work_required");
    let challenge: examreg_gateway::pow::Challenge =
        serde_json::from_value(body["error"]["proof_of_work"].clone()).unwrap();
    let solution = examreg_gateway::pow::solve(&challenge).unwrap();
    let (status, body) = login_from(&s, lab, &iin, PASSWORD, Some(&solution)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(body["access_token"].is_string());
    // The per-login lockout stays as strict: five wrong passwords from anywhere lock the login,
    // and then even the right one waits.
    for i in 0..5 {
        let (status, body) =
            login_from(&s, &format!("10.99.0.{i}"), &iin, "wrong-password-1", None).await;
        refusal(status, &body, 401, "invalid_credentials");
    }
    let (status, body) = login_from(&s, "10.99.1.1", &iin, PASSWORD, None).await;
    refusal(status, &body, 429, "too_many_attempts");
}

/// In production a binary will not start on the local stack's defaults: it exits 2 before
/// binding, naming each variable production must set (or sets to a local value).
#[tokio::test]
async fn in_production_a_binary_refuses_the_local_stacks_defaults() {
    let bin = crate::common::processes::binaries();
    for (name, env, named) in [
        (
            "verification",
            vec![("VERIFICATION_MAIL_FROM", "ИСО <noreply@examreg.local>")],
            vec![
                "VERIFICATION_MAIL_FROM",
                "VERIFICATION_SUPPORT_CONTACT",
                "IDENTITY_URL",
                "EXAMREG_TLS_CERT_FILE",
            ],
        ),
        (
            "biometrics",
            vec![],
            vec![
                "BIOMETRICS_DOCUMENTS_VALID_UNTIL",
                "IDENTITY_URL",
                "EXAMREG_TLS_CA_FILE",
            ],
        ),
        (
            "gateway",
            vec![("GATEWAY_PUBLIC_URL", "http://localhost:8080")],
            vec![
                "GATEWAY_PUBLIC_URL",
                "GATEWAY_CORS_ORIGINS",
                "PROFILE_URL",
                "EXAMREG_TLS_KEY_FILE",
            ],
        ),
    ] {
        let output = std::process::Command::new(bin.join(format!("examreg-{name}")))
            .env_clear()
            .env("EXAMREG_ENVIRONMENT", "production")
            .envs(env)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name}: {said}");
        for variable in named {
            assert!(
                said.contains(variable),
                "{name} did not name {variable}: {said}"
            );
        }
    }
}
