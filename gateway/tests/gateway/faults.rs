//! What an attacker or a fault would try against the suite's promises to lose and leak
//! nothing: a photo still arriving as the registration completes, answers kept by a cache,
//! personal data in the services' logs or in Postgres' own log, and services lost in the
//! middle of calls.

use crate::common::*;
use examreg_testkit as tk;
use reqwest::{Method, StatusCode, header::HeaderMap};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn kept_by_no_cache(headers: &HeaderMap) -> bool {
    headers.get("cache-control").and_then(|v| v.to_str().ok()) == Some("no-store")
        && headers.get("pragma").and_then(|v| v.to_str().ok()) == Some("no-cache")
}

#[tokio::test]
async fn answers_carrying_tokens_flows_or_personal_data_are_never_stored_by_a_cache() {
    let s = suite().await;
    let (status, headers, terms) = s.call(Method::GET, "/v1/terms/current", None, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!kept_by_no_cache(&headers), "public text may be cached");
    let (_, headers, _) = s
        .call(Method::GET, "/v1/reference/regions", None, &[])
        .await;
    assert!(!kept_by_no_cache(&headers), "reference data may be cached");

    let (status, headers, flow) = s
        .call(
            Method::POST,
            "/v1/registrations",
            Some(json!({"citizenship": "KZ", "terms_version": terms["version"], "terms_accepted": true})),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(kept_by_no_cache(&headers), "a new flow");
    let flow = flow["flow_id"].as_str().unwrap().to_owned();
    let (_, headers, _) = s
        .call(Method::GET, &format!("/v1/registrations/{flow}"), None, &[])
        .await;
    assert!(kept_by_no_cache(&headers), "a flow resumed");

    let iin = valid_iin();
    s.register(&iin, &tk::unique_email()).await;
    let (status, headers, session) = s
        .call(
            Method::POST,
            "/v1/sessions",
            Some(json!({"login": iin, "password": PASSWORD})),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(kept_by_no_cache(&headers), "tokens");
    let token = session["access_token"].as_str().unwrap();
    let (status, headers, _) = s
        .call(
            Method::POST,
            "/v1/sessions/refresh",
            Some(json!({"refresh_token": session["refresh_token"]})),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(kept_by_no_cache(&headers), "refreshed tokens");
    for path in ["/v1/me", "/v1/me/profile", "/v1/me/onboarding"] {
        let (status, headers, _) = s
            .call(
                Method::GET,
                path,
                None,
                &[("authorization", &format!("Bearer {token}"))],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(kept_by_no_cache(&headers), "{path}");
    }
    // Errors too: a 401 or a 410 says something about a session or a flow.
    let (status, headers, _) = s.call(Method::GET, "/v1/me", None, &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(kept_by_no_cache(&headers), "an error");
    // The pages keep their own caching.
    let (_, headers, _) = s.call(Method::GET, "/", None, &[]).await;
    assert_eq!(headers["cache-control"], "no-cache");
}

/// The current selfie's record: its id and the digest of what is stored.
async fn current_selfie(s: &Suite) -> (uuid::Uuid, Vec<u8>) {
    let pool = sqlx::PgPool::connect(&s.biometrics_db).await.unwrap();
    let row: (uuid::Uuid, Vec<u8>) =
        sqlx::query_as("SELECT id, sha256 FROM captures WHERE kind = 'face'")
            .fetch_one(&pool)
            .await
            .unwrap();
    pool.close().await;
    row
}

#[tokio::test]
async fn a_photo_still_arriving_when_the_registration_completes_is_refused_and_the_selfie_stays() {
    let s = suite().await;
    let token = s.ready_to_complete().await;
    let before = current_selfie(&s).await;
    // A retake (another photo of the same face) whose body is still on its way: the request
    // line, the headers and half the photo now.
    let retake = tk::photos::jpeg(&image::load_from_memory(tk::photos::SELFIE).unwrap().fliph());
    let mut upload = tokio::net::TcpStream::connect(s.base.trim_start_matches("http://"))
        .await
        .unwrap();
    let head = format!(
        "PUT /v1/me/biometrics/face HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: image/jpeg\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        retake.len()
    );
    let (first, rest) = retake.split_at(retake.len() / 2);
    upload.write_all(head.as_bytes()).await.unwrap();
    upload.write_all(first).await.unwrap();
    // The gateway waits for the body; biometrics has not seen the upload yet.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, done) = s.complete(&token).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    // Now the rest of the photo arrives.
    upload.write_all(rest).await.unwrap();
    let mut answer = String::new();
    upload.read_to_string(&mut answer).await.unwrap();
    let status_line = answer.lines().next().unwrap_or_default();
    assert!(status_line.contains(" 409 "), "{answer}");
    let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "registration_completed", "{body}");
    assert_eq!(
        current_selfie(&s).await,
        before,
        "the stored selfie is unchanged"
    );
    // And it was biometrics that refused it, under its seal (the gateway asks nobody else
    // whether the registration is open).
    let refused = counter(
        &s.metrics_of("biometrics").await,
        "grpc_server_handled_total",
        &[
            "method=\"/examreg.biometrics.v1.BiometricsService/UploadCapture\"",
            "code=\"FailedPrecondition\"",
        ],
    );
    assert_eq!(refused, 1.0);
}

/// What `deploy/backfill-seals` says, after running it against the suite's databases.
fn backfill_seals(s: &Suite) -> String {
    let output = std::process::Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/backfill-seals"
    ))
    .env("IDENTITY_DATABASE_URL", &s.identity_db)
    .env("BIOMETRICS_DATABASE_URL", &s.biometrics_db)
    .output()
    .unwrap();
    let said = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert!(
        output.status.success(),
        "{said} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    said
}

#[tokio::test]
async fn a_registration_completed_before_the_seal_existed_is_sealed_by_the_backfill() {
    let s = suite().await;
    let token = s.ready_to_complete().await;
    let (status, done) = s.complete(&token).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    // As a registration completed by an earlier version left it: registered, the set open.
    let biometrics = sqlx::PgPool::connect(&s.biometrics_db).await.unwrap();
    sqlx::query("UPDATE capture_sets SET sealed_at = NULL")
        .execute(&biometrics)
        .await
        .unwrap();
    let before = current_selfie(&s).await;

    assert_eq!(backfill_seals(&s), "capture sets sealed: 1");
    let identity = sqlx::PgPool::connect(&s.identity_db).await.unwrap();
    let registered_at: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT registered_at FROM accounts")
            .fetch_one(&identity)
            .await
            .unwrap();
    let sealed_at: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT sealed_at FROM capture_sets")
            .fetch_one(&biometrics)
            .await
            .unwrap();
    assert_eq!(
        sealed_at,
        Some(registered_at),
        "sealed when it was registered"
    );
    // Run again, it changes nothing.
    assert_eq!(backfill_seals(&s), "capture sets sealed: 0");

    let retake = tk::photos::jpeg(&image::load_from_memory(tk::photos::SELFIE).unwrap().fliph());
    let (status, body) = s.photo(&token, "face", "image/jpeg", retake).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "registration_completed", "{body}");
    assert_eq!(current_selfie(&s).await, before, "the selfie is unchanged");
}

#[tokio::test]
async fn no_iin_email_or_flow_id_reaches_the_services_logs_or_the_postgres_log() {
    let logs = tk::logs::ServiceLogs::capture();
    let postgres = tk::logs::PostgresLog::from_now();
    let deferred = tk::unique_email();
    let smtp = tk::smtp::SmtpServer::in_front_of(&tk::smtp_addr(), &[&deferred]).await;
    let s = suite_with(Options {
        smtp: smtp.addr.to_string(),
        ..Options::default()
    })
    .await;
    let password = json!({"password": PASSWORD, "password_confirmation": PASSWORD});
    // A duplicate registration: the IIN is taken, then the email is.
    let (iin, email) = (valid_iin(), tk::unique_email());
    s.register(&iin, &email).await;
    let (second_email, other_iin) = (tk::unique_email(), valid_iin());
    let taken_iin = s.prove_email(&iin, &second_email, 1).await;
    let taken_email = s.prove_email(&other_iin, &email, 2).await;
    for (flow, code) in [
        (&taken_iin, "already_registered"),
        (&taken_email, "already_registered"),
    ] {
        let (status, body) = s
            .post(
                &format!("/v1/registrations/{flow}/password"),
                password.clone(),
            )
            .await;
        refusal(status, &body, 409, code);
    }
    // A recovery, through to the new password. Letter 3 to the email said an account exists;
    // it is awaited first, as letters queued together may arrive in either order.
    tk::wait_for_mails(&email, 3, Duration::from_secs(20)).await;
    let recovery = s.recover(&iin, &email, 4, PASSWORD).await;
    // A letter the mail server keeps deferring (its replies name the address).
    let deferred_flow = s.start("KZ").await;
    let deferred_iin = valid_iin();
    let (status, _) = s
        .put(
            &format!("/v1/registrations/{deferred_flow}/identifier"),
            json!({"iin": deferred_iin}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s
        .put(
            &format!("/v1/registrations/{deferred_flow}/email"),
            json!({"email": deferred}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while smtp.deferrals_of(&deferred) < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the letter was not tried twice"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    // The scans read real logs: the services' lines name the masked address of the deferred
    // letter, and Postgres logs a failing statement with our marker.
    let services = logs.text();
    assert!(services.contains("outbox: letter deferred"), "{services}");
    assert!(services.contains(&examreg_domain::mask_email(&deferred)));
    let marker = format!("privacy-scan-{}", uuid::Uuid::new_v4().simple());
    let pool = sqlx::PgPool::connect(&s.identity_db).await.unwrap();
    assert!(
        sqlx::query(sqlx::AssertSqlSafe(format!("SELECT '{marker}'::int")))
            .execute(&pool)
            .await
            .is_err()
    );
    pool.close().await;
    let mut server = String::new();
    for _ in 0..50 {
        server = postgres.since();
        if server.contains(&marker) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        server.contains(&marker),
        "the Postgres log is the one the server writes"
    );

    let secrets = [
        ("IIN", iin.clone()),
        ("IIN", other_iin),
        ("IIN", deferred_iin),
        ("email", email.clone()),
        ("email", second_email),
        ("email", deferred.clone()),
        ("flow id", taken_iin),
        ("flow id", taken_email),
        ("flow id", recovery),
        ("flow id", deferred_flow),
    ];
    for (what, secret) in &secrets {
        let secret = secret.to_lowercase();
        assert!(
            !services.to_lowercase().contains(&secret),
            "a {what} in the services' logs: {}",
            services
                .lines()
                .find(|l| l.to_lowercase().contains(&secret))
                .unwrap_or_default()
        );
        assert!(
            !server.to_lowercase().contains(&secret),
            "a {what} in the Postgres log: {}",
            server
                .lines()
                .find(|l| l.to_lowercase().contains(&secret))
                .unwrap_or_default()
        );
    }
}

/// Runs `requests` while the connections to `service` are cut again and again (every 40 ms,
/// for 150 ms), as a service that dies and comes back, or a network that breaks, would do:
/// their answers, in order.
async fn while_cut<F>(
    s: &Suite,
    service: &str,
    requests: Vec<F>,
) -> Vec<(StatusCode, HeaderMap, Value)>
where
    F: std::future::Future<Output = (StatusCode, HeaderMap, Value)>,
{
    let done = std::sync::atomic::AtomicBool::new(false);
    let cutter = async {
        while !done.load(std::sync::atomic::Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(40)).await;
            s.cut(service, Duration::from_millis(150)).await;
        }
    };
    let answers = async {
        let answers = futures::future::join_all(requests).await;
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        answers
    };
    tokio::join!(cutter, answers).1
}

/// No answer of a cut is a 500: each is the step's success or a 503 with Retry-After.
fn no_internal_errors(step: &str, answers: &[(StatusCode, HeaderMap, Value)]) {
    for (status, headers, body) in answers {
        assert!(
            status.is_success()
                || (*status == StatusCode::SERVICE_UNAVAILABLE
                    && body["error"]["code"] == "dependency_unavailable"
                    && headers.contains_key("retry-after")),
            "{step}: {status} {body}"
        );
    }
}

#[tokio::test]
async fn a_service_lost_in_the_middle_of_calls_is_a_503_and_every_step_can_be_done_again() {
    let s = &suite_with(Options {
        relays: true,
        ..Options::default()
    })
    .await;
    let applicants: Vec<(String, String)> =
        (0..6).map(|_| (valid_iin(), tk::unique_email())).collect();
    let bearer = |token: &str| format!("Bearer {token}");

    // verification: the code letters, while its connections are cut.
    let mut flows = Vec::new();
    for (iin, _) in &applicants {
        let flow = s.start("KZ").await;
        let (status, body) = s
            .put(
                &format!("/v1/registrations/{flow}/identifier"),
                json!({"iin": iin}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        flows.push(flow);
    }
    let email_step = |flow: &str, email: &str| {
        let path = format!("/v1/registrations/{flow}/email");
        let body = json!({"email": email});
        async move { s.call(Method::PUT, &path, Some(body), &[]).await }
    };
    let answers = while_cut(
        s,
        "verification",
        flows
            .iter()
            .zip(&applicants)
            .map(|(flow, (_, email))| email_step(flow, email))
            .collect(),
    )
    .await;
    no_internal_errors("the email step", &answers);
    for ((flow, (_, email)), (status, _, _)) in flows.iter().zip(&applicants).zip(&answers) {
        if !status.is_success() {
            let (status, _, body) = email_step(flow, email).await;
            assert_eq!(status, StatusCode::OK, "the email step again: {body}");
        }
        // Whatever happened, a letter with a code is there (perhaps two); the latest works.
        let mails = tk::wait_for_mails(email, 1, Duration::from_secs(30)).await;
        let code = tk::code_in(mails.last().unwrap());
        let (status, body) = s
            .post(
                &format!("/v1/registrations/{flow}/email/verify"),
                json!({"code": code}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    // identity: the accounts made (not idempotent: a proof is spent), while cut.
    let password_step = |flow: &str| {
        let path = format!("/v1/registrations/{flow}/password");
        let body = json!({"password": PASSWORD, "password_confirmation": PASSWORD});
        async move { s.call(Method::POST, &path, Some(body), &[]).await }
    };
    let answers = while_cut(
        s,
        "identity",
        flows.iter().map(|f| password_step(f)).collect(),
    )
    .await;
    no_internal_errors("the password step", &answers);
    let mut tokens = Vec::new();
    for ((flow, (iin, _)), (status, _, first)) in flows.iter().zip(&applicants).zip(&answers) {
        // Done again: the account the first one made, or made now.
        let (again, _, body) = password_step(flow).await;
        if status.is_success() {
            assert_eq!(
                (again, body["error"]["code"].as_str()),
                (StatusCode::CONFLICT, Some("flow_completed")),
                "the password step again after {first}"
            );
        } else {
            assert_eq!(
                again,
                StatusCode::CREATED,
                "the password step again: {body}"
            );
        }
        let (status, session) = s.login(iin, PASSWORD).await;
        assert_eq!(status, StatusCode::CREATED, "{session}");
        tokens.push(session["access_token"].as_str().unwrap().to_owned());
    }

    // biometrics: the selfies' uploads, while cut.
    let upload = |token: &str| {
        let auth = bearer(token);
        async move {
            let request = s
                .http
                .put(format!("{}/v1/me/biometrics/face", s.base))
                .header("authorization", auth)
                .header("content-type", "image/jpeg")
                .body(tk::photos::SELFIE.to_vec());
            let response = request.send().await.unwrap();
            let (status, headers) = (response.status(), response.headers().clone());
            let body = response.json::<Value>().await.unwrap_or(Value::Null);
            (status, headers, body)
        }
    };
    let answers = while_cut(s, "biometrics", tokens.iter().map(|t| upload(t)).collect()).await;
    no_internal_errors("the selfie", &answers);
    for (token, (status, _, _)) in tokens.iter().zip(&answers) {
        if !status.is_success() {
            let (status, _, body) = upload(token).await;
            assert!(status.is_success(), "the selfie again: {status} {body}");
        }
        let onboarding = s.onboarding(token).await;
        let face = onboarding["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|step| step["step"] == "face")
            .unwrap()
            .clone();
        assert_eq!(face["done"], true, "{onboarding}");
    }

    // profile: the names written, while cut.
    let name_step = |token: &str| {
        let auth = bearer(token);
        async move {
            s.call(
                Method::PUT,
                "/v1/me/profile/name",
                Some(json!({"surname": "Нұрланов", "given_name": "Арман"})),
                &[("authorization", auth.as_str())],
            )
            .await
        }
    };
    let answers = while_cut(s, "profile", tokens.iter().map(|t| name_step(t)).collect()).await;
    no_internal_errors("the name step", &answers);
    for (token, (status, _, _)) in tokens.iter().zip(&answers) {
        if !status.is_success() {
            let (status, _, body) = name_step(token).await;
            assert!(status.is_success(), "the name step again: {status} {body}");
        }
        let (status, _, profile) = s
            .call(
                Method::GET,
                "/v1/me/profile",
                None,
                &[("authorization", bearer(token).as_str())],
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(profile["surname"], "Нұрланов", "{profile}");
    }
    // The cuts did land in the middle of calls: some were lost on the way and said so.
    // (One recorder serves this process: any service's page shows the gateway's counters.)
    let lost = counter(
        &s.metrics_of("identity").await,
        "grpc_client_calls_lost_total",
        &[],
    );
    assert!(lost > 0.0, "no call was cut in the middle");
}

/// The resident memory of process `pid` now and at its peak (`VmRSS`, `VmHWM`), in bytes.
fn memory_of(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
            .unwrap()
            * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A photo upload of `declared` bytes over a raw connection, as large uploads are sent: with
/// `Expect: 100-continue`, so a refusal before the body is read reaches the client before a
/// byte of it goes out; then its body `chunk` bytes at a time every `every` (all at once when
/// zero) until the gateway answers. The answer's status and body.
async fn upload_raw(
    base: &str,
    token: &str,
    declared: usize,
    chunk: usize,
    every: Duration,
) -> (u16, String) {
    let connection = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .unwrap();
    let (reader, mut writer) = connection.into_split();
    let mut reader = tokio::io::BufReader::new(reader);
    let head = format!(
        "PUT /v1/me/biometrics/face HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: image/jpeg\r\nContent-Length: {declared}\r\nExpect: 100-continue\r\n\
         Connection: close\r\n\r\n"
    );
    writer.write_all(head.as_bytes()).await.unwrap();
    let status_of = |line: &str| {
        line.split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    };
    let mut line = String::new();
    tokio::io::AsyncBufReadExt::read_line(&mut reader, &mut line)
        .await
        .unwrap();
    let mut status: u16 = status_of(&line);
    if status == 100 {
        // The blank line after "100 Continue", then the body while the answer is awaited.
        let mut blank = String::new();
        tokio::io::AsyncBufReadExt::read_line(&mut reader, &mut blank)
            .await
            .unwrap();
        // The write half stays open until the answer is read: a client that shuts it down
        // is taken for one that went away.
        let writer = &mut writer;
        let sending = async move {
            let bytes = vec![0xFF_u8; chunk];
            let mut sent = 0;
            while sent < declared {
                let n = chunk.min(declared - sent);
                if writer.write_all(&bytes[..n]).await.is_err() {
                    return;
                }
                sent += n;
                if !every.is_zero() {
                    tokio::time::sleep(every).await;
                }
            }
        };
        let answer = async {
            let mut line = String::new();
            let _ = tokio::io::AsyncBufReadExt::read_line(&mut reader, &mut line).await;
            line
        };
        let ((), final_line) = tokio::join!(sending, answer);
        status = status_of(&final_line);
    }
    let mut rest = String::new();
    let _ = reader.read_to_string(&mut rest).await;
    let body = rest.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

#[tokio::test]
async fn slow_and_heavy_uploads_and_a_crowd_of_previews_stay_within_the_pods_memory() {
    const MIB: u64 = 1024 * 1024;
    let suite = crate::common::processes::start(
        None,
        &[
            ("GATEWAY_RATE_LIMIT_PER_MINUTE", "100000".into()),
            ("GATEWAY_BODY_GRACE_SECS", "2".into()),
            ("GATEWAY_BODY_MIN_RATE_BYTES_PER_SEC", "200000".into()),
        ],
    )
    .await;
    let (_, _, uploader) = suite.registered(&valid_iin(), PASSWORD).await;
    let uploader = uploader["access_token"].as_str().unwrap().to_owned();
    let (_, _, other) = suite.registered(&valid_iin(), PASSWORD).await;
    let other = format!("Bearer {}", other["access_token"].as_str().unwrap());
    let auth = format!("Bearer {uploader}");
    let selfie = suite
        .http
        .put(format!("{}/v1/me/biometrics/face", suite.base))
        .header("authorization", &auth)
        .header("content-type", "image/jpeg")
        .body(tk::photos::SELFIE.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(selfie.status(), StatusCode::OK);
    let (gateway, biometrics) = (suite.pid("gateway"), suite.pid("biometrics"));

    let done = std::sync::atomic::AtomicBool::new(false);
    let peak = std::sync::Mutex::new((0_u64, 0_u64));
    let watch = async {
        while !done.load(std::sync::atomic::Ordering::Relaxed) {
            {
                let mut peak = peak.lock().unwrap();
                peak.0 = peak.0.max(memory_of(gateway).0);
                peak.1 = peak.1.max(memory_of(biometrics).0);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let ten_mb = 10_000_000;
    let storm = async {
        // First the heavy: twenty photos of 10 MB sent as fast as the network goes and two
        // hundred previews at once; then the slow: thirty photos of 10 MB trickling at
        // 100 KB/s. Another applicant goes on all the while.
        let preview = [("authorization", auth.as_str())];
        let heavy = async {
            let fast =
                futures::future::join_all((0..20).map(|_| {
                    upload_raw(&suite.base, &uploader, ten_mb, 256 * 1024, Duration::ZERO)
                }));
            let previews = futures::future::join_all((0..200).map(|_| {
                suite.call(
                    Method::GET,
                    "/v1/me/biometrics/face/preview",
                    None,
                    &preview,
                )
            }));
            tokio::join!(fast, previews)
        };
        let slow = async {
            futures::future::join_all((0..30).map(|_| {
                upload_raw(
                    &suite.base,
                    &uploader,
                    ten_mb,
                    10_000,
                    Duration::from_millis(100),
                )
            }))
            .await
        };
        let phases = async {
            let (fast, previews) = heavy.await;
            (fast, previews, slow.await)
        };
        let others = async {
            let mut answers = Vec::new();
            for _ in 0..20 {
                answers.push(
                    suite
                        .call(
                            Method::GET,
                            "/v1/me/onboarding",
                            None,
                            &[("authorization", other.as_str())],
                        )
                        .await
                        .0,
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            answers
        };
        let ((fast, previews, slow), others) = tokio::join!(phases, others);
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        (slow, fast, previews, others)
    };
    let ((slow, fast, previews, others), ()) = tokio::join!(storm, watch);

    // The trickles were cut (or, past the budget, refused at once); the fast ones beyond the
    // budget were refused before they were read; nothing failed inside.
    for (status, body) in &slow {
        assert!(
            (*status == 408 && body.contains("body_too_slow"))
                || (*status == 503 && body.contains("uploads_busy")),
            "a slow upload: {status} {body}"
        );
    }
    assert!(slow.iter().any(|(status, _)| *status == 408), "{slow:?}");
    assert!(
        fast.iter()
            .any(|(status, body)| *status == 503 && body.contains("uploads_busy")),
        "the budget refused none of twenty 10 MB uploads at once"
    );
    for (status, body) in &fast {
        assert!(
            *status != 500 && *status != 0,
            "a fast upload: {status} {body}"
        );
    }
    // Previews beyond biometrics' reads at once are refused with a retry hint, never failed.
    for (status, body) in &previews {
        assert!(
            *status == StatusCode::OK
                || (*status == StatusCode::TOO_MANY_REQUESTS
                    && body["error"]["code"] == "overloaded"),
            "a preview: {status} {body}"
        );
    }
    assert!(previews.iter().any(|(status, _)| *status == StatusCode::OK));
    assert!(others.iter().all(|s| *s == StatusCode::OK), "{others:?}");
    // And the memory held: the pods' limits (k8s/base: gateway 256 MiB, biometrics 1 GiB).
    let (gateway_now, gateway_peak) = memory_of(gateway);
    let (_, biometrics_peak) = memory_of(biometrics);
    let seen = *peak.lock().unwrap();
    eprintln!(
        "resident: gateway peak {} MiB (now {} MiB), biometrics peak {} MiB; sampled {:?} MiB",
        gateway_peak / MIB,
        gateway_now / MIB,
        biometrics_peak / MIB,
        (seen.0 / MIB, seen.1 / MIB)
    );
    assert!(
        gateway_peak < 256 * MIB,
        "gateway peaked at {} MiB",
        gateway_peak / MIB
    );
    assert!(
        biometrics_peak < 1024 * MIB,
        "biometrics peaked at {} MiB",
        biometrics_peak / MIB
    );
}
