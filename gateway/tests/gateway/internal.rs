//! The internal API across the suite, as the exam center's staff and systems use it next to the
//! applicants' gateway: a support agent reopens a completed registration and the applicant
//! redoes the step and completes again; a squatted IIN is released and its holder registers;
//! and `examreg-ctl` drives each call against the running suite.

use crate::common::*;
use examreg_kit::auth::with_bearer;
use examreg_proto::identity::v1::{
    self as id, RegistrationEventKind as Kind, identity_service_client::IdentityServiceClient,
};
use examreg_testkit as tk;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use tokio_stream::StreamExt;
use tonic::transport::Channel;

impl Suite {
    fn identity(&self) -> IdentityServiceClient<Channel> {
        let url = &self
            .services
            .iter()
            .find(|(n, _)| *n == "identity")
            .unwrap()
            .1;
        IdentityServiceClient::new(examreg_kit::channel::lazy(url, &tk::tls()).unwrap())
    }

    fn staff(&self) -> String {
        tk::service_token(&self.signing, "support-desk", &STAFF_SCOPES)
    }

    /// The events of the feed from its start, until `n` have come.
    async fn feed(&self, n: usize) -> Vec<(Kind, String)> {
        let request = with_bearer(id::WatchRegistrationsRequest::default(), &self.staff()).unwrap();
        let mut stream = self
            .identity()
            .watch_registrations(request)
            .await
            .unwrap()
            .into_inner();
        let mut events = Vec::new();
        while events.len() < n {
            let message = tokio::time::timeout(Duration::from_secs(5), stream.next())
                .await
                .unwrap_or_else(|_| panic!("the feed stopped at {events:?}"))
                .unwrap()
                .unwrap();
            events.extend(
                message
                    .events
                    .iter()
                    .map(|e| (e.kind(), e.account_id.clone())),
            );
        }
        events
    }

    /// A registered applicant: the account id, the IIN and an access token.
    async fn completed(&self) -> (String, String, String) {
        let iin = valid_iin();
        let account = self.register(&iin, &tk::unique_email()).await;
        let (_, session) = self.login(&iin, PASSWORD).await;
        let token = session["access_token"].as_str().unwrap().to_owned();
        self.fill_in(&token).await;
        let (status, body) = self.complete(&token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        (account, iin, token)
    }
}

fn next_step(onboarding: &Value) -> &str {
    onboarding["next_step"].as_str().unwrap()
}

#[tokio::test]
async fn support_reopens_a_registration_and_the_applicant_retakes_the_selfie_and_completes_again() {
    let s = suite().await;
    let (account, _, token) = s.completed().await;
    assert_eq!(next_step(&s.onboarding(&token).await), "done");

    let reopen = |steps: &[&str], token: &str| {
        with_bearer(
            id::ReopenRegistrationRequest {
                account_id: account.clone(),
                steps: steps.iter().map(|s| s.to_string()).collect(),
                reason: "the selfie shows two people".into(),
                ..Default::default()
            },
            token,
        )
        .unwrap()
    };
    // The applicant cannot reopen their own registration; a wrong step changes nothing.
    let err = s
        .identity()
        .reopen_registration(reopen(&["face"], &token))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    let err = s
        .identity()
        .reopen_registration(reopen(&["face", "password"], &s.staff()))
        .await
        .unwrap_err();
    assert_eq!(examreg_kit::errors::reason_of(&err).reason, "invalid_steps");
    // The typed steps are read before the text forms: a value this build does not know is
    // refused, whatever the text says.
    let mut unknown = reopen(&["face"], &s.staff());
    unknown.get_mut().onboarding_steps = vec![99];
    let err = s.identity().reopen_registration(unknown).await.unwrap_err();
    assert_eq!(examreg_kit::errors::reason_of(&err).reason, "invalid_steps");
    assert_eq!(next_step(&s.onboarding(&token).await), "done");

    let answer = s
        .identity()
        .reopen_registration(reopen(&["face"], &s.staff()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.missing, ["face", "complete"]);
    // The same, typed (the completion is not a step).
    assert_eq!(
        answer.missing_steps,
        [examreg_proto::onboarding::v1::Step::Face as i32]
    );
    let onboarding = s.onboarding(&token).await;
    assert_eq!(next_step(&onboarding), "face", "{onboarding}");
    let undone: Vec<&str> = onboarding["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|step| step["done"] == false)
        .map(|step| step["step"].as_str().unwrap())
        .collect();
    assert_eq!(undone, ["face", "complete"]);
    // Completing before the retake names what is missing; the document stays final.
    let (status, body) = s.complete(&token).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["missing"], json!(["face"]));
    let (status, body) = s
        .photo(
            &token,
            "document-front",
            "image/jpeg",
            tk::photos::id_card(true),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "registration_completed");

    s.photographed(&token, &["face"]).await;
    assert_eq!(next_step(&s.onboarding(&token).await), "complete");
    let (status, body) = s.complete(&token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(next_step(&s.onboarding(&token).await), "done");
    let (status, _) = s
        .photo(&token, "face", "image/jpeg", tk::photos::SELFIE.to_vec())
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "final again");

    let events = s.feed(4).await;
    assert_eq!(
        events,
        [
            (Kind::AccountCreated, account.clone()),
            (Kind::RegistrationCompleted, account.clone()),
            (Kind::RegistrationReopened, account.clone()),
            (Kind::RegistrationCompleted, account.clone()),
        ]
    );
}

impl Suite {
    /// Identity's audit log of an account: (actor, kind, what, note) of each entry.
    async fn audit(&self, account: &str) -> Vec<(String, String, String, String)> {
        let request = id::ListAccessLogRequest {
            account_id: account.to_owned(),
            ..Default::default()
        };
        self.identity()
            .list_access_log(with_bearer(request, &self.staff()).unwrap())
            .await
            .unwrap()
            .into_inner()
            .entries
            .into_iter()
            .filter(|e| e.kind != "read")
            .map(|e| (e.actor, e.kind, e.what, e.note))
            .collect()
    }

    fn channel(&self, service: &str) -> Channel {
        let url = &self.services.iter().find(|(n, _)| *n == service).unwrap().1;
        examreg_kit::channel::lazy(url, &tk::tls()).unwrap()
    }
}

/// A count the statement gives for an account id.
async fn count(db: &str, sql: &'static str, account: &str) -> i64 {
    let pool = sqlx::PgPool::connect(db).await.unwrap();
    let n = sqlx::query_scalar(sql)
        .bind(account.parse::<uuid::Uuid>().unwrap())
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    n
}

/// The rows of the `changes` table of a service's database for an account: (action, steps).
async fn changes_at(db: &str, account: &str) -> Vec<(String, Vec<String>)> {
    let pool = sqlx::PgPool::connect(db).await.unwrap();
    let rows = sqlx::query_as("SELECT action, steps FROM changes WHERE account_id = $1::uuid")
        .bind(account)
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    rows
}

#[tokio::test]
async fn no_client_changes_a_registration_past_identity_and_a_reopening_cut_short_is_finished_by_a_retry()
 {
    use examreg_proto::{
        biometrics::v1::{self as bio, biometrics_service_client::BiometricsServiceClient},
        profile::v1::{self as prof, profile_service_client::ProfileServiceClient},
        verification::v1::{self as ver, verification_service_client::VerificationServiceClient},
    };
    let s = suite().await;
    let (account, _, token) = s.completed().await;
    // A client holding every scope there is, identity's name included, calls the owners
    // directly: each refuses, and nothing changes.
    let mighty = tk::service_token(
        &s.signing,
        "identity",
        &[
            "support:write",
            "biometrics:admin",
            "profile:admin",
            "verification:erase",
            "accounts:delete",
        ],
    );
    let refused = |status: tonic::Status| {
        assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
        assert_eq!(
            examreg_kit::errors::reason_of(&status).reason,
            "change_not_recorded"
        );
    };
    let mut biometrics = BiometricsServiceClient::new(s.channel("biometrics"));
    let mut profile = ProfileServiceClient::new(s.channel("profile"));
    let mut verification = VerificationServiceClient::new(s.channel("verification"));
    let steps = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let request = bio::ReopenCapturesRequest {
        account_id: account.clone(),
        steps: steps(&["face"]),
        ..Default::default()
    };
    refused(
        biometrics
            .reopen_captures(with_bearer(request, &mighty).unwrap())
            .await
            .unwrap_err(),
    );
    let request = bio::DeleteBiometricDataRequest {
        account_id: account.clone(),
    };
    refused(
        biometrics
            .delete_biometric_data(with_bearer(request, &mighty).unwrap())
            .await
            .unwrap_err(),
    );
    let request = prof::ReopenProfileRequest {
        account_id: account.clone(),
        steps: steps(&["name"]),
        ..Default::default()
    };
    refused(
        profile
            .reopen_profile(with_bearer(request, &mighty).unwrap())
            .await
            .unwrap_err(),
    );
    let request = prof::DeleteProfileRequest {
        account_id: account.clone(),
    };
    refused(
        profile
            .delete_profile(with_bearer(request, &mighty).unwrap())
            .await
            .unwrap_err(),
    );
    let request = ver::EraseEmailRequest {
        email: tk::unique_email(),
        account_id: account.clone(),
        login: String::new(),
    };
    refused(
        verification
            .erase_email(with_bearer(request, &mighty).unwrap())
            .await
            .unwrap_err(),
    );
    assert_eq!(next_step(&s.onboarding(&token).await), "done");
    let (status, _) = s
        .photo(&token, "face", "image/jpeg", tk::photos::SELFIE.to_vec())
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "the selfie stays sealed");

    // A reopening of the selfie and the name while profile is down: identity has recorded it
    // (its log, the feed) before calling the owners, so it is visible although cut short.
    let reopen = || {
        with_bearer(
            id::ReopenRegistrationRequest {
                account_id: account.clone(),
                steps: steps(&["face", "name"]),
                reason: "the selfie shows two people, ticket 7".into(),
                ..Default::default()
            },
            &s.staff(),
        )
        .unwrap()
    };
    let profile_config = s.stop("profile").await;
    let err = s
        .identity()
        .reopen_registration(reopen())
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    let reopened = (
        "support-desk".to_owned(),
        "reopen".to_owned(),
        "face,name".to_owned(),
        "the selfie shows two people, ticket 7".to_owned(),
    );
    assert_eq!(s.audit(&account).await, std::slice::from_ref(&reopened));
    let events = s.feed(3).await;
    assert_eq!(events[2], (Kind::RegistrationReopened, account.clone()));

    // Profile is back; the support agent repeats the call: the recorded change is carried out,
    // and nothing is recorded twice.
    s.start_again(profile_config).await;
    let answer = s
        .identity()
        .reopen_registration(reopen())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.missing, ["face", "name", "complete"]);
    assert_eq!(s.audit(&account).await, [reopened]);
    let once = vec![("reopen".to_owned(), steps(&["face", "name"]))];
    assert_eq!(changes_at(&s.biometrics_db, &account).await, once);
    assert_eq!(changes_at(&s.profile_db, &account).await, once);
    let onboarding = s.onboarding(&token).await;
    assert_eq!(next_step(&onboarding), "face", "{onboarding}");
    s.photographed(&token, &["face"]).await;
    let (status, body) = s
        .me(
            reqwest::Method::PUT,
            "/v1/me/profile/name",
            &token,
            Some(json!({"surname": "Жұмабаев", "given_name": "Ерлан"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = s.complete(&token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn an_erasure_cut_short_is_recorded_at_once_and_finished_by_identity_itself() {
    let s = suite().await;
    let iin = valid_iin();
    let email = tk::unique_email();
    let account = s.register(&iin, &email).await;
    let verification = s.stop("verification").await;
    let path = format!("/v1/admin/people/{account}?reason=subject%20request%2040");
    let (status, body) = s
        .me(reqwest::Method::DELETE, &path, &s.eraser(), None)
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    // Recorded and in force: the log and the feed say so, the person cannot log in.
    assert_eq!(
        s.audit(&account).await,
        [(
            "operator".to_owned(),
            "erase".to_owned(),
            String::new(),
            "subject request 40".to_owned()
        )]
    );
    let events = s.feed(2).await;
    assert_eq!(events[1], (Kind::AccountErased, account.clone()));
    let (status, _) = s.login(&iin, PASSWORD).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Verification is back: identity carries the erasure out by itself within seconds.
    s.start_again(verification).await;
    let identity = sqlx::PgPool::connect(&s.identity_db).await.unwrap();
    let finished = async {
        loop {
            let open: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM changes WHERE account_id = $1::uuid AND finished_at IS NULL",
            )
            .bind(&account)
            .fetch_one(&identity)
            .await
            .unwrap();
            if open == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), finished)
        .await
        .expect("identity finishes the erasure");
    let accounts: i64 = sqlx::query_scalar("SELECT count(*) FROM accounts WHERE id = $1::uuid")
        .bind(&account)
        .fetch_one(&identity)
        .await
        .unwrap();
    assert_eq!(accounts, 0);
    // A repeat finds nothing left, and records nothing more.
    let (status, body) = s
        .me(reqwest::Method::DELETE, &path, &s.eraser(), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["removed"]["identity"]["account"], false);
    assert_eq!(s.audit(&account).await.len(), 1);
}

/// Where each needle still shows in any table of the suite's databases, any Redis key of its
/// prefixes (keys and values), and (with `objects`) every object in the bucket: `place: needle`,
/// or `object key` (the suite's only person's, where the caller asks).
async fn traces_of(s: &Suite, needles: &[String], objects: bool) -> Vec<String> {
    let mut found = Vec::new();
    let mut look = |place: String, text: &str| {
        let text = text.to_lowercase();
        for needle in needles {
            if text.contains(&needle.to_lowercase()) {
                found.push(format!("{place}: {needle}"));
            }
        }
    };
    for db in [&s.identity_db, &s.biometrics_db, &s.profile_db] {
        let pool = sqlx::PgPool::connect(db).await.unwrap();
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        for table in tables {
            let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                // The names come from the catalogue, not from input.
                "SELECT row_to_json(t)::text FROM \"{table}\" t"
            )))
            .fetch_all(&pool)
            .await
            .unwrap();
            for row in rows {
                look(table.clone(), &row);
            }
        }
        pool.close().await;
    }
    // A single server or a cluster (every primary scanned), as the suite runs on.
    let store = examreg_kit::redis::connect(&tk::redis_url(), Duration::from_secs(5))
        .await
        .unwrap();
    let mut redis = store.clone();
    for prefix in [&s.verification_prefix, &s.gateway_prefix] {
        let keys = examreg_kit::redis::scan_match(&store, &format!("{prefix}*"))
            .await
            .unwrap();
        for key in keys {
            let kind: String = redis::cmd("TYPE")
                .arg(&key)
                .query_async(&mut redis)
                .await
                .unwrap();
            let read = match kind.as_str() {
                "string" => redis::cmd("GET"),
                "hash" => redis::cmd("HGETALL"),
                "set" => redis::cmd("SMEMBERS"),
                "list" => {
                    let mut c = redis::cmd("LRANGE");
                    c.arg(&key).arg(0).arg(-1);
                    c
                }
                "zset" => {
                    let mut c = redis::cmd("ZRANGE");
                    c.arg(&key).arg(0).arg(-1);
                    c
                }
                _ => {
                    let mut c = redis::cmd("XRANGE");
                    c.arg(&key).arg("-").arg("+");
                    c
                }
            };
            let mut read = read;
            if matches!(kind.as_str(), "string" | "hash" | "set") {
                read.arg(&key);
            }
            let value: redis::Value = read.query_async(&mut redis).await.unwrap();
            look(key.clone(), &format!("{key} {value:?}"));
        }
    }
    if objects {
        for (key, _) in examreg_biometrics::objects::Objects::new(&s.s3)
            .list()
            .await
            .unwrap()
        {
            found.push(format!("object {key}"));
        }
    }
    found
}

#[tokio::test]
async fn an_erasure_leaves_nothing_of_the_person_in_any_table_redis_key_or_object() {
    let smtp = tk::smtp::SmtpServer::in_front_of(&tk::smtp_addr(), &[]).await;
    let flow_ttl = Duration::from_secs(30);
    let s = suite_with(Options {
        smtp: smtp.addr.to_string(),
        flow_ttl,
        ..Options::default()
    })
    .await;
    // A person who used every feature: two logins, the photos and the profile, a document
    // that went to a reviewer, a reopening, two recoveries, one of whose letters a relay defers.
    let iin = valid_iin();
    let email = tk::unique_email();
    let account = s.register(&iin, &email).await;
    s.login(&iin, PASSWORD).await;
    let (_, session) = s.login(&iin, PASSWORD).await;
    let token = session["access_token"].as_str().unwrap().to_owned();
    s.fill_in(&token).await;
    let birth_date = s
        .me(reqwest::Method::GET, "/v1/me/profile", &token, None)
        .await
        .1["birth_date"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = examreg_domain::Iin::parse(&valid_iin()).unwrap();
    assert_eq!(
        s.read_back(&token, &other, 8, "en").await["status"],
        "under_review"
    );
    let queue = parsed(&ctl(&s, &["reviews", "--json"]).await.unwrap());
    let review = queue["reviews"][0]["review_id"]
        .as_str()
        .unwrap()
        .to_owned();
    ctl(
        &s,
        &[
            "decide",
            &review,
            "--decision",
            "approve",
            "--reason",
            "new card of Нұрланов Арман",
        ],
    )
    .await
    .unwrap();
    let (status, body) = s.complete(&token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let request = id::ReopenRegistrationRequest {
        account_id: account.clone(),
        steps: vec!["face".into()],
        reason: "ticket 12".into(),
        ..Default::default()
    };
    s.identity()
        .reopen_registration(with_bearer(request, &s.staff()).unwrap())
        .await
        .unwrap();
    s.photographed(&token, &["face"]).await;
    let (status, body) = s.complete(&token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = s.post("/v1/recovery", json!({"email": email})).await;
    assert_eq!(status, StatusCode::CREATED);
    tk::nth_code(&email, 2).await;
    smtp.defer(&email);
    let (status, _) = s.post("/v1/recovery", json!({"login": iin})).await;
    assert_eq!(status, StatusCode::CREATED);
    let deferred = async {
        while smtp.deferrals_of(&email) == 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), deferred)
        .await
        .expect("the relay deferred the letter");
    let last_flow = std::time::Instant::now();

    let needles: Vec<String> = vec![
        iin.clone(),
        email.to_lowercase(),
        "7771234567".into(),
        "Нұрланов".into(),
        "Арман".into(),
        birth_date,
        other.as_str().to_owned(),
        "ABDRAKHMANOVA".into(),
        "045612378".into(),
    ];
    assert!(
        traces_of(&s, &needles, true).await.len() > 5,
        "the scan sees the person"
    );
    let path = format!("/v1/admin/people/{account}?reason=subject%20request%2077");
    let (status, body) = s
        .me(reqwest::Method::DELETE, &path, &s.eraser(), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["removed"]["verification"]["letters"], 1, "{body}");
    // The recoveries' flows were never tied to an account: they hold the email and the IIN
    // until they expire (GATEWAY_FLOW_TTL_SECS), and no longer.
    tokio::time::sleep(flow_ttl.saturating_sub(last_flow.elapsed()) + Duration::from_secs(1)).await;
    assert_eq!(traces_of(&s, &needles, true).await, Vec::<String>::new());
    // What stays are the tombstones and the records, by account id only.
    let log = s.audit(&account).await;
    assert!(
        log.iter()
            .any(|(_, kind, _, note)| kind == "erase" && note == "subject request 77")
    );
}

/// Whether identity still has the account.
async fn account_exists(s: &Suite, account: &str) -> bool {
    let pool = sqlx::PgPool::connect(&s.identity_db).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM accounts WHERE id = $1::uuid")
        .bind(account)
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    n > 0
}

/// Waits (a minute at most) until identity has erased the account: the retention records the
/// erasure and identity's finisher carries it out.
async fn erased_in_time(s: &Suite, account: &str) {
    let gone = async {
        while account_exists(s, account).await {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), gone)
        .await
        .unwrap_or_else(|_| panic!("{account} was not erased by the retention"));
}

/// The runs of the retention report that erased `account`: (service, rule, deleted).
async fn runs_that_erased(s: &Suite, account: &str) -> Vec<(String, String, i64)> {
    let report = parsed(
        &ctl(s, &["retention", "report", "--account", account, "--json"])
            .await
            .unwrap(),
    );
    let mut runs = Vec::new();
    for service in report["services"].as_array().unwrap() {
        for run in service["runs"].as_array().unwrap() {
            runs.push((
                service["service"].as_str().unwrap().to_owned(),
                run["rule"].as_str().unwrap().to_owned(),
                run["deleted"].as_i64().unwrap(),
            ));
        }
    }
    runs
}

#[tokio::test]
async fn the_retention_erases_a_registration_left_incomplete_and_all_of_a_cycle_once_it_ends() {
    let s = suite().await;
    let (completed, _, completed_token) = s.completed().await;
    // Someone who began — a login, a selfie, a name — and never came back.
    let iin = valid_iin();
    let email = tk::unique_email();
    let idle = s.register(&iin, &email).await;
    let (_, session) = s.login(&iin, PASSWORD).await;
    let token = session["access_token"].as_str().unwrap().to_owned();
    s.photographed(&token, &["face"]).await;
    let (status, body) = s
        .me(
            reqwest::Method::PUT,
            "/v1/me/profile/name",
            &token,
            Some(json!({"surname": "Сапарова", "given_name": "Дина"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Identity rolls out with a period of a second for registrations never completed.
    s.restart_with("identity", Duration::ZERO, |config| {
        let ServiceConfig::Identity(config) = config else {
            unreachable!()
        };
        config.retain_incomplete = Some(Duration::from_secs(1));
        config.sweep_every = Duration::from_secs(1);
    })
    .await;
    erased_in_time(&s, &idle).await;
    let needles = vec![iin.clone(), email.to_lowercase(), "Сапарова".to_owned()];
    assert_eq!(traces_of(&s, &needles, false).await, Vec::<String>::new());
    assert_eq!(
        count(
            &s.biometrics_db,
            "SELECT count(*) FROM captures WHERE account_id = $1",
            &idle
        )
        .await,
        0
    );
    // The completed registration is untouched, and the report proves what went, and when.
    let (status, body) = s
        .me(reqwest::Method::GET, "/v1/me", &completed_token, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        runs_that_erased(&s, &idle).await,
        [(
            "identity".to_owned(),
            "incomplete_registration".to_owned(),
            1
        )]
    );
    assert_eq!(runs_that_erased(&s, &completed).await, []);
    let printed = ctl(&s, &["retention", "report"]).await.unwrap();
    assert!(printed.contains("incomplete_registration"), "{printed}");
    assert!(
        printed.contains("1 second after the last activity"),
        "{printed}"
    );
    let log = s.audit(&idle).await;
    assert!(
        log.iter().any(|(actor, kind, _, note)| actor == "retention"
            && kind == "erase"
            && note.contains("incomplete_registration")),
        "{log:?}"
    );

    // The operator sets the end of the exam cycle, and it has passed: the completed one goes.
    s.restart_with("identity", Duration::ZERO, |config| {
        let ServiceConfig::Identity(config) = config else {
            unreachable!()
        };
        config.cycle_end = Some(chrono::Utc::now());
    })
    .await;
    erased_in_time(&s, &completed).await;
    assert_eq!(
        runs_that_erased(&s, &completed).await,
        [("identity".to_owned(), "exam_cycle".to_owned(), 1)]
    );
}

#[tokio::test]
async fn a_staff_clients_calls_name_the_person_at_the_keyboard_and_the_logs_record_them() {
    let s = suite().await;
    let (account, _, _) = s.completed().await;
    // The operator's tool is a staff client: a call that names nobody, or a malformed name,
    // is refused and changes nothing.
    for person in [None, Some("two words")] {
        let err = ctl_as(&s, person, &["block", &account, "--reason", "fraud check"])
            .await
            .unwrap_err();
        assert!(err.to_string().contains("on_behalf_of_required"), "{err}");
    }
    assert_eq!(s.audit(&account).await, []);
    ctl(&s, &["block", &account, "--reason", "fraud check"])
        .await
        .unwrap();
    let person = format!("operator/{STAFF_PERSON}");
    assert_eq!(
        s.audit(&account).await,
        [(
            person.clone(),
            "block".to_owned(),
            String::new(),
            "fraud check".to_owned()
        )]
    );
    // Its reads too, at every service that keeps an access log.
    ctl(&s, &["export", &account]).await.unwrap();
    let log = parsed(&ctl(&s, &["access-log", &account, "--json"]).await.unwrap());
    for service in ["identity", "profile", "biometrics"] {
        assert!(
            log["entries"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["service"] == service && e["actor"] == person.as_str()),
            "{service}: {log}"
        );
    }

    // The gateway's erasure forwards the person from its header to identity.
    let request = id::IssueServiceTokenRequest {
        client_id: "operator".into(),
        client_secret: OPERATOR_SECRET.into(),
    };
    let token = s
        .identity()
        .issue_service_token(request)
        .await
        .unwrap()
        .into_inner()
        .access_token;
    let path = format!("/v1/admin/people/{account}?reason=request%2031");
    let (status, body) = s.me(reqwest::Method::DELETE, &path, &token, None).await;
    refusal(status, &body, 403, "on_behalf_of_required");
    assert!(account_exists(&s, &account).await);
    let (status, _, body) = s
        .call(
            reqwest::Method::DELETE,
            &path,
            None,
            &[
                ("authorization", &format!("Bearer {token}")),
                ("x-examreg-on-behalf-of", STAFF_PERSON),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let erased = s.audit(&account).await;
    assert_eq!(erased[1].0, person);
    assert_eq!(erased[1].1, "erase");
}

#[tokio::test]
async fn a_released_iin_lets_its_holder_register_through_the_gateway() {
    let s = suite().await;
    let iin = valid_iin();
    let squatter = s.register(&iin, &tk::unique_email()).await;
    let flow = s.prove_email(&iin, &tk::unique_email(), 1).await;
    let (status, body) = s
        .post(
            &format!("/v1/registrations/{flow}/password"),
            json!({"password": PASSWORD, "password_confirmation": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "already_registered");

    let request = id::ReleaseIdentifierRequest {
        account_id: squatter.clone(),
        reason: "the holder showed the ID card at the desk, ticket 31".into(),
    };
    s.identity()
        .release_identifier(with_bearer(request, &s.staff()).unwrap())
        .await
        .unwrap();
    // The squatter's data at the other services is erased under the release's recorded
    // change; the account stays at identity as the record of the release.
    let erased = vec![("erase".to_owned(), Vec::new())];
    assert_eq!(changes_at(&s.biometrics_db, &squatter).await, erased);
    assert_eq!(changes_at(&s.profile_db, &squatter).await, erased);
    let holder = s.register(&iin, &tk::unique_email()).await;
    let (status, session) = s.login(&iin, PASSWORD).await;
    assert!(status.is_success(), "{status}: {session}");
    assert_eq!(session["account_id"], holder.as_str());
    let request = id::FindAccountRequest {
        by: Some(id::find_account_request::By::Iin(iin.clone())),
        purpose: "ticket 31".into(),
    };
    let found = s
        .identity()
        .find_account(with_bearer(request, &s.staff()).unwrap())
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap();
    assert_eq!(found.account_id, holder);
}

fn parsed(text: &str) -> Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[tokio::test]
async fn the_staff_command_line_drives_the_internal_api() {
    let s = suite().await;
    let (account, iin, _) = s.completed().await;

    let found = parsed(
        &ctl(
            &s,
            &["find", "--iin", &iin, "--purpose", "ticket 1", "--json"],
        )
        .await
        .unwrap(),
    );
    assert_eq!(found["account_id"], account.as_str());
    assert_eq!(
        (found["status"].as_str(), found["iin"].as_str()),
        (Some("registered"), Some(iin.as_str()))
    );
    assert_eq!(
        found["terms"]["version"].as_str().map(str::is_empty),
        Some(false)
    );
    let table = ctl(&s, &["find", "--iin", &iin, "--purpose", "ticket 2"])
        .await
        .unwrap();
    assert!(table.lines().any(|l| l == "status: registered"), "{table}");
    let err = ctl(&s, &["find", "--iin", "123456789012", "--purpose", "x"])
        .await
        .unwrap_err();
    assert!(format!("{err}").contains("invalid_iin"), "{err}");

    let listed = parsed(
        &ctl(
            &s,
            &[
                "list",
                "--status",
                "registered",
                "--purpose",
                "seats",
                "--json",
            ],
        )
        .await
        .unwrap(),
    );
    assert_eq!(listed["accounts"][0]["account_id"], account.as_str());
    assert_eq!(listed["accounts"].as_array().unwrap().len(), 1);
    let watched = ctl(&s, &["watch", "--count", "2", "--json"]).await.unwrap();
    let kinds: Vec<String> = watched
        .lines()
        .map(|l| parsed(l)["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["account_created", "registration_completed"]);
    // Completed today: not in the statistics before the day is over; a day later, one
    // person alone is withheld rather than shown.
    let stats = || async {
        parsed(
            &ctl(&s, &["stats", "--by", "region", "--json"])
                .await
                .unwrap(),
        )
    };
    assert_eq!(stats().await["total"], 0);
    let profile = sqlx::PgPool::connect(&s.profile_db).await.unwrap();
    sqlx::query("UPDATE profiles SET locked_at = locked_at - interval '1 day'")
        .execute(&profile)
        .await
        .unwrap();
    assert_eq!(
        stats().await,
        json!({"counts": [], "total": 0, "suppressed": true})
    );

    let unlocked = parsed(
        &ctl(
            &s,
            &["unlock", &account, "--reason", "called the desk", "--json"],
        )
        .await
        .unwrap(),
    );
    assert_eq!(unlocked["was_locked"], false);
    let reopened = ctl(
        &s,
        &[
            "reopen",
            &account,
            "--steps",
            "face,education",
            "--reason",
            "blurred",
        ],
    )
    .await
    .unwrap();
    assert!(
        reopened.contains("missing: face,education,complete"),
        "{reopened}"
    );
    let blocked = parsed(
        &ctl(
            &s,
            &["block", &account, "--reason", "fraud check", "--json"],
        )
        .await
        .unwrap(),
    );
    assert_eq!(blocked["blocked"], true);
    ctl(&s, &["unblock", &account, "--reason", "cleared"])
        .await
        .unwrap();

    let export = parsed(&ctl(&s, &["export", &account]).await.unwrap());
    assert_eq!(export["account"]["iin"], iin.as_str());
    assert_eq!(export["profile"]["surname"], "Нұрланов");
    assert_eq!(export["profile"]["redo"], json!(["education"]));
    let biometrics = &export["biometrics"];
    assert_eq!(biometrics["status"]["consent"]["given"], true);
    assert_eq!(biometrics["status"]["redo"], json!(["face"]));
    // Everything still held: each photo's record, where the consent was given, what the
    // document's zone says, the sessions with their addresses and browsers.
    let photos = biometrics["photos"].as_array().unwrap();
    assert_eq!(photos.len(), 3, "{biometrics}");
    assert!(
        photos
            .iter()
            .all(|p| p["sha256"].as_str().unwrap().len() == 64)
    );
    assert!(
        !biometrics["consent"]["client_ip"]
            .as_str()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        biometrics["document_zone"]["optional_data"]
            .as_str()
            .unwrap()[..12],
        *iin
    );
    let sessions = export["sessions"].as_array().unwrap();
    assert!(!sessions.is_empty(), "{export}");
    assert!(
        sessions
            .iter()
            .all(|s| !s["client_ip"].as_str().unwrap().is_empty())
    );
    // What was deleted, and when: the reopening's records at biometrics.
    let changes = export["deleted"]["changes"].as_array().unwrap();
    assert_eq!(changes[0]["action"], "reopen", "{export}");
    assert_eq!(changes[0]["steps"], json!(["face", "education"]));
    assert!(
        export["deleted"]["retention_runs"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let log = export["access_log"].as_array().unwrap();
    let has = |service: &str, kind: &str, note: &str| {
        log.iter()
            .any(|e| e["service"] == service && e["kind"] == kind && e["note"] == note)
    };
    assert!(has("identity", "read", "ticket 1"), "{log:?}");
    assert!(has("identity", "read", "seats"), "{log:?}");
    assert!(has("identity", "reopen", "blurred"), "{log:?}");
    assert!(
        has("identity", "unlock_login", "called the desk"),
        "{log:?}"
    );
    assert!(has("identity", "block", "fraud check"), "{log:?}");
    assert!(has("profile", "read", "subject access request"), "{log:?}");
    assert!(
        has("biometrics", "read", "subject access request"),
        "{log:?}"
    );
    let printed = ctl(&s, &["access-log", &account]).await.unwrap();
    assert!(
        printed.lines().next().unwrap().starts_with("AT"),
        "{printed}"
    );
    assert!(printed.contains("unlock_login"), "{printed}");

    let released = parsed(
        &ctl(
            &s,
            &["release", &account, "--reason", "holder came", "--json"],
        )
        .await
        .unwrap(),
    );
    assert_eq!(released["released"], true);
    let err = ctl(&s, &["find", "--iin", &iin, "--purpose", "x"])
        .await
        .unwrap_err();
    assert!(format!("{err}").contains("account_not_found"), "{err}");
}

#[tokio::test]
async fn a_card_that_is_not_the_holders_waits_for_a_person_who_decides_with_the_command_line() {
    let s = suite().await;
    let token = s.logged_in().await;
    s.fill_in(&token).await;
    // Then somebody else's card: the zone's IIN is not the account's.
    let other = examreg_domain::Iin::parse(&valid_iin()).unwrap();
    assert_eq!(
        s.read_back(&token, &other, 8, "en").await["status"],
        "under_review"
    );
    let queue = parsed(&ctl(&s, &["reviews", "--json"]).await.unwrap());
    let review = queue["reviews"]
        .as_array()
        .unwrap()
        .last()
        .expect("an open review")
        .clone();
    assert!(
        review["mismatches"]
            .as_array()
            .unwrap()
            .contains(&json!("iin"))
    );
    let id = review["review_id"].as_str().unwrap().to_owned();
    // A retake asked with a reason reaches the applicant with it.
    let decided = parsed(
        &ctl(
            &s,
            &[
                "decide",
                &id,
                "--decision",
                "retake",
                "--reason",
                "the numbers are blurred",
                "--json",
            ],
        )
        .await
        .unwrap(),
    );
    assert_eq!(decided["decision"], "retake");
    let check = s.onboarding(&token).await["document_check"].clone();
    assert_eq!(check["status"], "retake");
    assert_eq!(check["code"], "document_retake_requested");
    assert_eq!(check["reason"], "the numbers are blurred");
    let (status, body) = s.complete(&token).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "document_retake_requested");
    assert_eq!(body["error"]["missing"], json!(["document_back"]));
    // Decided once: a second decision is refused.
    let err = ctl(
        &s,
        &["decide", &id, "--decision", "approve", "--reason", "x"],
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("review_decided"), "{err}");
    // The next photo's review, approved: the applicant's document counts as verified.
    assert_eq!(
        s.read_back(&token, &other, 9, "en").await["status"],
        "under_review"
    );
    let queue = parsed(&ctl(&s, &["reviews", "--json"]).await.unwrap());
    let id = queue["reviews"].as_array().unwrap().last().unwrap()["review_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The applicant asks to complete meanwhile: held, and the profile's names are put beside
    // the card's for the reviewer (they differ: a signal, not a verdict).
    let (status, body) = s.complete(&token).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "document_review");
    let shown = parsed(&ctl(&s, &["review", &id, "--json"]).await.unwrap());
    assert_eq!(shown["zone"]["issuing_state"], "KAZ");
    assert_eq!(
        shown["zone"]["optional_data"].as_str().unwrap()[..12],
        *other.as_str()
    );
    assert_eq!(shown["zone"]["surname"], "ABDRAKHMANOVA");
    assert_eq!(
        shown["profile_names"],
        json!({"surname": "NURLANOV", "given_names": "ARMAN", "agree": false})
    );
    assert_eq!(shown["captures"].as_array().unwrap().len(), 3);
    ctl(
        &s,
        &[
            "decide",
            &id,
            "--decision",
            "approve",
            "--reason",
            "a new card; the old number is on file",
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        s.onboarding(&token).await["document_check"]["status"],
        "verified"
    );
    // Approved: the registration completes.
    let (status, body) = s.complete(&token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let all = parsed(&ctl(&s, &["reviews", "--all", "--json"]).await.unwrap());
    let decisions: Vec<&str> = all["reviews"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["decision"].as_str())
        .collect();
    assert!(
        decisions.contains(&"retake") && decisions.contains(&"approve"),
        "{all}"
    );
}
