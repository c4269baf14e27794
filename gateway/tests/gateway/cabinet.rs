//! The second half of the journey through the gateway: personal data, education, completion
//! and the cabinet, with every service running for real on the local stack.

use crate::common::*;
use examreg_testkit as tk;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tk::photos::SELFIE;

impl Suite {
    async fn get_json(&self, path: &str, lang: &str) -> Value {
        let (status, _, json) = self
            .call(Method::GET, path, None, &[("accept-language", lang)])
            .await;
        assert_eq!(status, StatusCode::OK, "{path}: {json}");
        json
    }
}

fn codes(items: &Value, key: &str) -> Vec<String> {
    items["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i[key].as_str().unwrap().to_owned())
        .collect()
}

/// SEED.md steps 1 to 14 as one applicant does them: registration, login, photos, consent,
/// name, details, education, «Завершить регистрацию», the cabinet.
#[tokio::test]
async fn an_applicant_goes_from_the_first_screen_to_the_cabinet() {
    let s = suite().await;
    let iin = valid_iin();
    let email = tk::unique_email();
    // Steps 1–7: agreement, IIN, email, code, password.
    let account_id = s.register(&iin, &email).await;
    let (status, session) = s.login(&iin, PASSWORD).await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    assert_eq!(session["next_step"], "face");
    let token = session["access_token"].as_str().unwrap().to_owned();

    // Completing now is refused with everything still missing, in order.
    let (status, body) = s.complete(&token).await;
    refusal(status, &body, 409, "registration_incomplete");
    let every_step = "face document_front document_back consent name details education";
    assert_eq!(
        body["error"]["missing"],
        json!(every_step.split(' ').collect::<Vec<_>>())
    );

    // Steps 8–10: selfie, document, consent.
    s.photographed(&token, &["face", "document-front", "document-back"])
        .await;
    let consent = s.get_json("/v1/terms/biometric-consent", "ru").await;
    let (status, body) = s
        .me(
            Method::POST,
            "/v1/me/biometrics/consent",
            &token,
            Some(json!({"consent_version": consent["version"], "accepted": true})),
        )
        .await;
    assert_eq!(
        (status, body["next_step"].as_str()),
        (StatusCode::OK, Some("name")),
        "{body}"
    );

    // Step 11: name.
    let (status, body) = s
        .me(
            Method::PUT,
            "/v1/me/profile/name",
            &token,
            Some(json!({"surname": " Жұмабаев ", "given_name": "Ерлан", "patronymic": "Серікұлы"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["surname"], "Жұмабаев");
    assert_eq!(body["next_step"], "details");

    // Step 12: details, with the values the IIN encodes offered as defaults.
    let (_, profile) = s.me(Method::GET, "/v1/me/profile", &token, None).await;
    let suggested = profile["suggested"].clone();
    assert_eq!(suggested["sex"], "male");
    let regions = s.get_json("/v1/reference/regions", "kk").await;
    assert_eq!(codes(&regions, "code").len(), 20);
    assert!(
        regions["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "Ұлытау облысы")
    );
    let details = |birth: &Value, sex: &str, phone: &str| json!({"sex": sex, "birth_date": birth, "region_code": "KZ-71", "mobile_phone": phone});
    let (status, body) = s
        .me(
            Method::PUT,
            "/v1/me/profile/details",
            &token,
            Some(details(
                &suggested["birth_date"],
                "female",
                "8 701 777 77 77",
            )),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["code"], "sex_mismatch_iin");
    assert_eq!(body["error"]["fields"]["sex"], "mismatch_iin");
    assert_eq!(body["error"]["message"], "The sex does not match your IIN.");
    let (status, body) = s
        .me(
            Method::PUT,
            "/v1/me/profile/details",
            &token,
            Some(details(
                &suggested["birth_date"],
                "male",
                "+7 (916) 123-45-67",
            )),
        )
        .await;
    refusal(status, &body, 422, "phone_not_kz_mobile");
    let (status, body) = s
        .me(
            Method::PUT,
            "/v1/me/profile/details",
            &token,
            Some(details(&suggested["birth_date"], "male", "8 701 777 77 77")),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["mobile_phone"], "+77017777777");
    assert_eq!(body["next_step"], "education");

    // Step 13: education, with the institution found by searching as the applicant types.
    let contingents = s.get_json("/v1/reference/contingents", "ru").await;
    assert!(
        contingents["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["code"] == "bachelor" && c["name"] == "Бакалавр")
    );
    let found = s
        .get_json("/v1/reference/institutions?query=%D1%84%D0%B0%D1%80%D0%B0%D0%B1%D0%B8&region_code=KZ-75", "ru")
        .await;
    assert_eq!(codes(&found, "id"), ["kaznu"]);
    assert_eq!(
        found["items"][0]["name"],
        "Казахский национальный университет имени аль-Фараби"
    );
    let (status, body) = s
        .me(
            Method::PUT,
            "/v1/me/profile/education",
            &token,
            Some(json!({"contingent_code": "bachelor", "institution_id": "kaznu"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["next_step"], "complete");

    // Step 14: «Завершить регистрацию», once the document check (in the background) passed.
    s.verified_document(&token).await;
    let (status, body) = s
        .me(Method::POST, "/v1/me/registration/complete", &token, None)
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("registered")),
        "{body}"
    );
    assert!(body["registered_at"].is_string());
    let (status, again) = s
        .me(Method::POST, "/v1/me/registration/complete", &token, None)
        .await;
    assert_eq!(
        (status, &again["registered_at"]),
        (StatusCode::OK, &body["registered_at"])
    );

    // The cabinet: everything at once, never the images.
    let (status, me) = s.me(Method::GET, "/v1/me", &token, None).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["account"]["account_id"], account_id.as_str());
    assert_eq!(me["account"]["iin"], iin.as_str());
    assert_eq!(me["account"]["status"], "registered");
    assert_eq!(me["account"]["email_verified"], true);
    assert_eq!(me["profile"]["given_name"], "Ерлан");
    assert_eq!(me["profile"]["birth_date"], suggested["birth_date"]);
    assert_eq!(me["education"]["contingent_code"], "bachelor");
    assert_eq!(
        me["education"]["institution"]["name"],
        "Al-Farabi Kazakh National University"
    );
    assert_eq!(me["verification"]["submitted"], true);
    assert_eq!(me["verification"]["photos"].as_array().unwrap().len(), 3);
    assert_eq!(me["next_step"], "done");
    assert!(
        !me.to_string().contains("/9j/"),
        "no image bytes in the cabinet"
    );
    // What was chosen, named in the caller's language, and the acceptances with their dates.
    assert_eq!(me["account"]["citizenship_name"], "Kazakhstan");
    assert_eq!(me["profile"]["region_name"], "Astana");
    assert_eq!(me["education"]["contingent_name"], "Bachelor's graduate");
    let terms = &me["account"]["terms"];
    assert_eq!(
        (&terms["version"], &terms["language"]),
        (&json!("2026-01"), &json!("ru"))
    );
    assert!(terms["accepted_at"].is_string(), "{terms}");
    let consent = &me["verification"]["consent"];
    assert_eq!(
        (&consent["version"], &consent["language"]),
        (&json!("2026-01"), &json!("en"))
    );
    assert!(consent["accepted_at"].is_string(), "{consent}");

    // Each photo's preview: a small JPEG, never cached, its read in the access log.
    let face = me["verification"]["photos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "face")
        .unwrap();
    let preview = s
        .http
        .get(format!("{}{}", s.base, face["preview"].as_str().unwrap()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(preview.status(), StatusCode::OK);
    assert_eq!(preview.headers()["content-type"], "image/jpeg");
    assert_eq!(preview.headers()["cache-control"], "no-store");
    let small = image::load_from_memory(&preview.bytes().await.unwrap()).unwrap();
    assert!(
        small.width().max(small.height()) <= 320,
        "{}x{}",
        small.width(),
        small.height()
    );
    let biometrics = sqlx::PgPool::connect(&s.biometrics_db).await.unwrap();
    let logged: Vec<(String, String)> = sqlx::query_as(
        "SELECT actor, purpose FROM access_log WHERE account_id = $1 AND capture_id IS NOT NULL",
    )
    .bind(uuid::Uuid::parse_str(&account_id).unwrap())
    .fetch_all(&biometrics)
    .await
    .unwrap();
    assert!(
        logged.contains(&(
            "applicant".into(),
            "the applicant's own preview in the cabinet".into()
        )),
        "{logged:?}"
    );
    let (status, _, body) = s
        .call(
            Method::GET,
            "/v1/me/biometrics/passport/preview",
            None,
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await;
    refusal(status, &body, 404, "not_found");
    assert_eq!(s.login(&iin, PASSWORD).await.1["next_step"], "done");

    // Locked after completion: the name, birth date and sex; region and phone stay editable.
    let (status, body) = s
        .me(
            Method::PUT,
            "/v1/me/profile/name",
            &token,
            Some(json!({"surname": "Басқа", "given_name": "Ерлан"})),
        )
        .await;
    refusal(status, &body, 422, "profile_locked");
    let (status, body) = s
        .me(
            Method::PUT,
            "/v1/me/profile/details",
            &token,
            Some(json!({"sex": "male", "birth_date": suggested["birth_date"], "region_code": "KZ-79", "mobile_phone": "+7 747 123 45 67"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["region_code"], "KZ-79");
    // And the photos are final.
    let (status, body) = s.photo(&token, "face", "image/jpeg", SELFIE.to_vec()).await;
    refusal(status, &body, 409, "registration_completed");
}

#[tokio::test]
async fn directories_answer_in_the_requested_language_and_page() {
    let s = suite().await;
    let en = s.get_json("/v1/reference/regions", "en").await;
    let ru = s.get_json("/v1/reference/regions", "ru").await;
    assert_eq!(en["items"][0], json!({"code": "KZ-71", "name": "Astana"}));
    assert_eq!(
        ru["items"][0],
        json!({"code": "KZ-71", "name": "г. Астана"})
    );
    for code in ["KZ-10", "KZ-33", "KZ-62"] {
        assert!(codes(&en, "code").contains(&code.to_owned()), "{code}");
    }
    let page = s
        .get_json("/v1/reference/institutions?page_size=5", "kk")
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 5);
    let next = page["next_page_token"].as_str().unwrap();
    let second = s
        .get_json(
            &format!("/v1/reference/institutions?page_size=5&page_token={next}"),
            "kk",
        )
        .await;
    let first = codes(&page, "id");
    assert!(codes(&second, "id").iter().all(|id| !first.contains(id)));
    let (status, _, body) = s
        .call(
            Method::GET,
            "/v1/reference/institutions?page_size=1000",
            None,
            &[("accept-language", "en")],
        )
        .await;
    refusal(status, &body, 422, "invalid_page_size");
}

async fn count(db: &str, sql: &'static str, account: uuid::Uuid) -> i64 {
    let pool = sqlx::PgPool::connect(db).await.unwrap();
    let n: i64 = sqlx::query_scalar(sql)
        .bind(account)
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    n
}

/// What of the person is left in every store of the suite.
async fn traces(s: &Suite, account: uuid::Uuid, email: &str) -> Vec<String> {
    let mut left = Vec::new();
    for (db, table, sql) in [
        (
            &s.identity_db,
            "accounts",
            "SELECT count(*) FROM accounts WHERE id = $1",
        ),
        (
            &s.identity_db,
            "sessions",
            "SELECT count(*) FROM sessions WHERE account_id = $1",
        ),
        (
            &s.biometrics_db,
            "captures",
            "SELECT count(*) FROM captures WHERE account_id = $1",
        ),
        (
            &s.biometrics_db,
            "consents",
            "SELECT count(*) FROM consents WHERE account_id = $1",
        ),
        (
            &s.biometrics_db,
            "capture_sets",
            // Erasure leaves a tombstone (the id and when) so nothing recreates the person.
            "SELECT count(*) FROM capture_sets WHERE account_id = $1 AND erased_at IS NULL",
        ),
        (
            &s.profile_db,
            "profiles",
            "SELECT count(*) FROM profiles WHERE account_id = $1 AND erased_at IS NULL",
        ),
    ] {
        if count(db, sql, account).await > 0 {
            left.push(table.to_owned());
        }
    }
    let objects = examreg_biometrics::objects::Objects::new(&s.s3)
        .list()
        .await
        .unwrap();
    if !objects.is_empty() {
        left.push(format!("{} objects", objects.len()));
    }
    // Verification's Redis keys: no challenge naming the email, no budget of it, no letter.
    let mut redis =
        examreg_kit::redis::connect(&tk::redis_url(), std::time::Duration::from_secs(10))
            .await
            .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", s.verification_prefix))
        .query_async(&mut redis)
        .await
        .unwrap();
    for key in keys {
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut redis)
            .await
            .unwrap();
        match kind.as_str() {
            "hash" => {
                let fields: Vec<String> = redis::cmd("HVALS")
                    .arg(&key)
                    .query_async(&mut redis)
                    .await
                    .unwrap();
                if fields.iter().any(|f| f.eq_ignore_ascii_case(email)) {
                    left.push(key);
                }
            }
            "stream" => {
                let len: i64 = redis::cmd("XLEN")
                    .arg(&key)
                    .query_async(&mut redis)
                    .await
                    .unwrap();
                if len > 0 {
                    left.push(format!("{key} ({len} letters)"));
                }
            }
            _ if key.contains("budget:email:") => left.push(key),
            _ => {}
        }
    }
    left
}

#[tokio::test]
async fn an_operator_erases_a_person_from_every_store_and_a_second_erasure_finds_nothing() {
    let s = suite().await;
    let iin = valid_iin();
    let email = tk::unique_email();
    let account_id = s.register(&iin, &email).await;
    let account: uuid::Uuid = account_id.parse().unwrap();
    let (_, session) = s.login(&iin, PASSWORD).await;
    let token = session["access_token"].as_str().unwrap().to_owned();
    s.photographed(&token, &["face", "document-front"]).await;
    let consent = s.get_json("/v1/terms/biometric-consent", "ru").await;
    s.me(
        Method::POST,
        "/v1/me/biometrics/consent",
        &token,
        Some(json!({"consent_version": consent["version"], "accepted": true})),
    )
    .await;
    let (status, _) = s
        .me(
            Method::PUT,
            "/v1/me/profile/name",
            &token,
            Some(json!({"surname": "Жұмабаев", "given_name": "Ерлан"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // A recovery started: a live challenge and a letter for the email.
    let (status, _) = s.post("/v1/recovery", json!({"email": email})).await;
    assert_eq!(status, StatusCode::CREATED);
    tk::nth_code(&email, 2).await;
    assert!(!traces(&s, account, &email.to_lowercase()).await.is_empty());

    let path = format!("/v1/admin/people/{account_id}?reason=subject%20request%2012");
    let erase = |token: String| {
        let s = &s;
        let path = path.clone();
        async move {
            let (status, body) = s.me(reqwest::Method::DELETE, &path, &token, None).await;
            (status, body)
        }
    };
    // The applicant's own token, or an operator without the scope: refused, nothing removed.
    assert_eq!(erase(token.clone()).await.0, StatusCode::FORBIDDEN);
    let weak = tk::service_token(&s.signing, "operator", &["accounts:read"]);
    assert_eq!(erase(weak).await.0, StatusCode::FORBIDDEN);
    assert!(
        traces(&s, account, &email.to_lowercase())
            .await
            .contains(&"captures".to_owned())
    );

    let operator = s.eraser();
    // An erasure names its reason (the audit log keeps it): refused without one.
    for query in ["", "?reason=%20", &format!("?reason={}", "x".repeat(501))] {
        let (status, body) = s
            .me(
                Method::DELETE,
                &format!("/v1/admin/people/{account_id}{query}"),
                &operator,
                None,
            )
            .await;
        refusal(status, &body, 422, "reason_required");
    }
    assert!(
        traces(&s, account, &email.to_lowercase())
            .await
            .contains(&"captures".to_owned())
    );
    let (status, body) = erase(operator.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["removed"]["identity"]["account"], true);
    assert_eq!(body["removed"]["biometrics"]["captures"], 2);
    assert_eq!(body["removed"]["profile"]["profile"], true);
    assert_eq!(body["removed"]["verification"]["challenges"], 1, "{body}");
    assert_eq!(
        traces(&s, account, &email.to_lowercase()).await,
        Vec::<String>::new()
    );
    let (status, _) = s.login(&iin, PASSWORD).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The applicant's access token has not expired yet, but its session ended with the
    // erasure: refused, and nothing is recreated (a write already in flight meets the
    // services' tombstones, tested at each service).
    let (status, body) = s
        .me(
            Method::PUT,
            "/v1/me/profile/name",
            &token,
            Some(json!({"surname": "Жұмабаев", "given_name": "Ерлан"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(
        traces(&s, account, &email.to_lowercase()).await,
        Vec::<String>::new()
    );

    let (status, again) = erase(operator).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(
        again["removed"],
        json!({
            "identity": {"account": false},
            "biometrics": {"captures": 0},
            "profile": {"profile": false},
            "verification": {"challenges": 0, "letters": 0},
        })
    );
}

/// The value of a counter in a Prometheus text page (summed over its label sets).
#[tokio::test]
async fn every_service_serves_metrics_and_a_registration_moves_the_counters() {
    let s = suite().await;
    let scrape = |url: String| {
        let http = s.http.clone();
        async move {
            let response = http.get(format!("{url}/metrics")).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{url}");
            response.text().await.unwrap()
        }
    };
    let before = scrape(s.ops_base.clone()).await;
    let iin = valid_iin();
    s.register(&iin, &tk::unique_email()).await;
    let (_, session) = s.login(&iin, PASSWORD).await;
    let (_, wrong) = s.login(&iin, "not the password at all").await;
    assert_eq!(wrong["error"]["code"], "invalid_credentials");
    let token = session["access_token"].as_str().unwrap().to_owned();
    s.photo(&token, "face", "image/jpeg", SELFIE.to_vec()).await;
    s.photo(
        &token,
        "face",
        "image/jpeg",
        tk::photos::jpeg(&image::load_from_memory(SELFIE).unwrap().blur(4.0)),
    )
    .await;

    let gateway = scrape(s.ops_base.clone()).await;
    for (name, labels) in [
        ("registrations_started_total", &[][..]),
        ("accounts_created_total", &[]),
        (
            "gateway_http_requests_total",
            &["route=\"/v1/sessions\"", "status=\"201\""],
        ),
    ] {
        assert!(
            counter(&gateway, name, labels) > counter(&before, name, labels),
            "{name} did not move"
        );
    }
    assert!(gateway.contains("gateway_http_request_duration_seconds_bucket"));
    // Each service: its RPCs counted by outcome and timed, and its own business counters.
    for (service, _) in &s.services {
        let page = s.metrics_of(service).await;
        assert!(
            page.contains(&format!(
                "grpc_server_handled_total{{method=\"/examreg.{service}.v1."
            )),
            "{service}: no RPC counts"
        );
        assert!(
            page.contains("grpc_server_handling_seconds_bucket"),
            "{service}: no latency histogram"
        );
        let expected: &[(&str, &[&str])] = match *service {
            "identity" => &[
                ("identity_accounts_created_total", &[]),
                ("identity_logins_total", &["outcome=\"success\""]),
                ("identity_logins_total", &["outcome=\"failed\""]),
            ],
            "verification" => &[
                (
                    "verification_codes_sent_total",
                    &["purpose=\"registration\""],
                ),
                ("verification_codes_confirmed_total", &[]),
            ],
            "biometrics" => &[
                ("biometrics_captures_stored_total", &["kind=\"face\""]),
                ("biometrics_captures_refused_total", &["reason=\"blurred\""]),
            ],
            _ => &[],
        };
        for (name, labels) in expected {
            assert!(
                counter(&page, name, labels) >= 1.0,
                "{service}: {name} {labels:?}"
            );
        }
    }
    let identity = s.metrics_of("identity").await;
    assert!(
        counter(
            &identity,
            "grpc_server_handled_total",
            &["IdentityService/Login", "code=\"OK\""]
        ) >= 1.0
    );
}
