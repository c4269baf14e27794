//! The identity service against a fresh database of the local stack's Postgres.

use crate::common::*;
use examreg_identity::{Application, Config};
use examreg_kit::{
    auth::{PROOF_AUDIENCE, PROOF_ISSUER, ProofClaims, unix_now, with_bearer},
    config::Secret,
    errors::reason_of,
    tokens::{KeySet, SigningKey},
};
use examreg_proto::identity::v1::{
    self as pb, create_account_request::Identifier, identity_service_client::IdentityServiceClient,
};
use examreg_testkit as tk;
use std::time::Duration;
use tonic::Code;
use uuid::Uuid;

#[tokio::test]
async fn an_applicant_registers_logs_in_refreshes_and_logs_out() {
    let app = spawn().await;
    let iin = valid_iin();
    let email = tk::unique_email();
    let id = app
        .create(app.account(&iin, &email.to_uppercase()))
        .await
        .unwrap();
    let login = app.login(&iin, STRONG).await.unwrap();
    assert_eq!(login.account_id, id);
    assert_eq!(login.status, pb::AccountStatus::Active as i32);
    let tokens = login.tokens.unwrap();
    assert_eq!(tokens.expires_in, 900);
    // The access token works as the user's own credential.
    let me = app
        .client
        .clone()
        .get_account(with_bearer(pb::GetAccountRequest::default(), &tokens.access_token).unwrap())
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap();
    assert_eq!(me.email, email);
    assert_eq!(
        me.identifier,
        Some(pb::account::Identifier::Iin(iin.clone()))
    );
    let next = app.refresh(&tokens.refresh_token).await.unwrap();
    assert_ne!(next.refresh_token, tokens.refresh_token);
    app.client
        .clone()
        .logout(with_bearer(pb::LogoutRequest {}, &next.access_token).unwrap())
        .await
        .unwrap();
    let err = app.refresh(&next.refresh_token).await.unwrap_err();
    assert_eq!(reason(&err), "invalid_refresh_token");
    // Identity itself refuses the logged-out access token within a second, as every verifier
    // does (its own keys hear the revocation from its Postgres listener).
    app.refused_within_a_second(&next.access_token).await;
}

#[tokio::test]
async fn a_blocked_account_loses_its_sessions_at_once_and_logs_in_again_once_unblocked() {
    let app = spawn().await;
    let iin = app.registered().await;
    let (phone, laptop) = (
        app.login(&iin, STRONG).await.unwrap().tokens.unwrap(),
        app.login(&iin, STRONG).await.unwrap().tokens.unwrap(),
    );
    let account = app.login(&iin, STRONG).await.unwrap().account_id;
    let support = tk::service_token(&app.key, "support-desk", &["support:write"]);
    let block = |reason: &str| {
        with_bearer(
            pb::BlockAccountRequest {
                account_id: account.clone(),
                reason: reason.into(),
            },
            &support,
        )
        .unwrap()
    };
    // A reason is required; the scope too (a user's own token is not enough).
    let err = app
        .client
        .clone()
        .block_account(block(" "))
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "reason_required");
    let own = with_bearer(
        pb::BlockAccountRequest {
            account_id: account.clone(),
            reason: "x".into(),
        },
        &phone.access_token,
    )
    .unwrap();
    let err = app.client.clone().block_account(own).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let answer = app
        .client
        .clone()
        .block_account(block("identity document does not match"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.revoked_sessions, 3);
    for tokens in [&phone, &laptop] {
        app.refused_within_a_second(&tokens.access_token).await;
        assert!(app.refresh(&tokens.refresh_token).await.is_err());
    }
    assert!(
        app.login(&iin, STRONG).await.is_err(),
        "a blocked account cannot log in"
    );
    // Blocking again changes nothing; an unknown account is not found.
    let again = app
        .client
        .clone()
        .block_account(block("again"))
        .await
        .unwrap();
    assert_eq!(again.into_inner().revoked_sessions, 0);
    let unknown = with_bearer(
        pb::BlockAccountRequest {
            account_id: uuid::Uuid::new_v4().to_string(),
            reason: "x".into(),
        },
        &support,
    )
    .unwrap();
    let err = app.client.clone().block_account(unknown).await.unwrap_err();
    assert_eq!(reason(&err), "account_not_found");
    // Unblocked, the applicant logs in anew, as the status it had.
    let unblock = with_bearer(
        pb::UnblockAccountRequest {
            account_id: account.clone(),
            reason: "checked at the desk".into(),
        },
        &support,
    )
    .unwrap();
    app.client.clone().unblock_account(unblock).await.unwrap();
    let login = app.login(&iin, STRONG).await.unwrap();
    assert_eq!(login.status, pb::AccountStatus::Active as i32);
}

#[tokio::test]
async fn a_bad_iin_checksum_is_refused_with_the_field() {
    let app = spawn().await;
    let email = tk::unique_email();
    let err = app
        .create(app.account("791028302729", &email))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(reason(&err), "invalid_iin");
    assert_eq!(
        reason_of(&err).fields,
        vec![("iin".to_owned(), "invalid_checksum".to_owned())]
    );
}

#[tokio::test]
async fn a_citizen_of_kazakhstan_cannot_register_with_a_passport() {
    let app = spawn().await;
    let email = tk::unique_email();
    let mut request = app.account(&valid_iin(), &email);
    request.identifier = Some(Identifier::PassportNumber("N12345678".into()));
    let err = app.create(request.clone()).await.unwrap_err();
    assert_eq!(reason(&err), "iin_required");
    // A foreign citizen can, and logs in with the normalized number.
    request.citizenship = "UZ".into();
    request.identifier = Some(Identifier::PassportNumber(format!(
        "fa {}",
        &Uuid::new_v4().simple().to_string()[..7]
    )));
    request.email_proof = app.proof(&email, "registration");
    app.create(request.clone()).await.unwrap();
    let Some(Identifier::PassportNumber(number)) = request.identifier else {
        unreachable!()
    };
    assert!(
        app.login(&number.replace(' ', "").to_uppercase(), STRONG)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_taken_iin_and_a_taken_email_get_one_answer_and_spend_the_proof() {
    let app = spawn().await;
    let iin = valid_iin();
    let email = tk::unique_email();
    app.create(app.account(&iin, &email)).await.unwrap();
    let other_iin = loop {
        let candidate = valid_iin();
        if candidate != iin {
            break candidate;
        }
    };
    let taken_iin = app.account(&iin, &tk::unique_email());
    let taken_email = app.account(&other_iin, &email.to_uppercase());
    let mut answers = Vec::new();
    for request in [taken_iin, taken_email] {
        let err = app.create(request.clone()).await.unwrap_err();
        answers.push((err.code(), reason(&err), err.message().to_owned()));
        // The proof went with the refusal: the same request again is refused for the proof,
        // so each probe costs a fresh code.
        assert_eq!(app.refusal(request).await, "invalid_email_proof");
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0].0, Code::AlreadyExists);
    assert_eq!(answers[0].1, "already_registered");
    // Without a valid proof, a duplicate says nothing about existing accounts.
    let mut unproven = app.account(&iin, &email);
    unproven.email_proof = "forged".into();
    assert_eq!(app.refusal(unproven).await, "invalid_email_proof");
}

#[tokio::test]
async fn an_email_proof_works_once_and_only_for_its_email_and_purpose() {
    let app = spawn().await;
    let email = tk::unique_email();
    let first = app.account(&valid_iin(), &email);
    let proof = first.email_proof.clone();
    app.create(first).await.unwrap();
    let mut again = app.account(&valid_iin(), &tk::unique_email());
    again.email_proof = proof;
    assert_eq!(app.refusal(again).await, "invalid_email_proof");
    let mut wrong_purpose = app.account(&valid_iin(), &tk::unique_email());
    wrong_purpose.email_proof = app.proof(&wrong_purpose.email, "recovery");
    assert_eq!(app.refusal(wrong_purpose).await, "invalid_email_proof");
    let mut foreign = app.account(&valid_iin(), &tk::unique_email());
    foreign.email_proof = SigningKey::generate().sign(&ProofClaims {
        iss: PROOF_ISSUER.into(),
        aud: PROOF_AUDIENCE.into(),
        sub: foreign.email.clone(),
        purpose: "registration".into(),
        jti: Uuid::new_v4().to_string(),
        iat: unix_now(),
        exp: unix_now() + 600,
    });
    assert_eq!(app.refusal(foreign).await, "invalid_email_proof");
}

#[tokio::test]
async fn weak_common_and_personal_passwords_are_refused() {
    let app = spawn().await;
    let iin = valid_iin();
    for (password, why) in [
        ("short1!", "too_short"),
        ("password123", "too_weak"),
        ("qwertyuiop", "too_weak"),
        (&format!("Kz{iin}!") as &str, "contains_personal_data"),
    ] {
        let mut request = app.account(&iin, &tk::unique_email());
        request.password = password.into();
        let err = app.create(request).await.unwrap_err();
        assert_eq!(reason(&err), "weak_password", "{password}");
        assert_eq!(
            reason_of(&err).fields,
            vec![("password".to_owned(), why.to_owned())],
            "{password}"
        );
    }
    let email = tk::unique_email();
    let mut request = app.account(&iin, &email);
    request.password = format!("{}-Secure-2026", email.split('@').next().unwrap());
    assert_eq!(
        reason_of(&app.create(request).await.unwrap_err()).fields[0].1,
        "contains_personal_data"
    );
}

#[tokio::test]
async fn parallel_wrong_passwords_lock_the_login_within_its_budget() {
    let app = spawn().await;
    let iin = app.registered().await;
    let attempts = (0..20).map(|i| {
        let app = &app;
        let iin = iin.clone();
        async move { app.login(&iin, &format!("wrong-password-{i}")).await }
    });
    let results = futures::future::join_all(attempts).await;
    let judged = results
        .iter()
        .filter(|r| {
            r.as_ref()
                .is_err_and(|e| reason(e) == "invalid_credentials")
        })
        .count();
    let throttled = results
        .iter()
        .filter(|r| r.as_ref().is_err_and(|e| reason(e) == "too_many_attempts"))
        .count();
    assert_eq!(judged, 5, "no more guesses than the budget were checked");
    assert_eq!(throttled, 15);
    // Now even the right password waits, with a retry time.
    let err = app.login(&iin, STRONG).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    let wait = reason_of(&err).retry_after.unwrap();
    assert!(
        wait >= Duration::from_secs(50) && wait <= Duration::from_secs(60),
        "{wait:?}"
    );
}

#[tokio::test]
async fn an_unknown_login_gets_the_same_answer_as_a_wrong_password() {
    let app = spawn().await;
    let iin = app.registered().await;
    let wrong = app.login(&iin, "not-the-password").await.unwrap_err();
    let unknown = app
        .login("N00000000", "not-the-password")
        .await
        .unwrap_err();
    assert_eq!(
        (wrong.code(), reason(&wrong)),
        (unknown.code(), reason(&unknown))
    );
    assert_eq!(wrong.message(), unknown.message());
}

#[tokio::test]
async fn with_the_grace_off_reusing_a_spent_refresh_token_revokes_the_whole_family() {
    let app = spawn_with(|config| config.refresh_grace = Duration::ZERO).await;
    let iin = app.registered().await;
    let first = app.login(&iin, STRONG).await.unwrap().tokens.unwrap();
    let second = app.refresh(&first.refresh_token).await.unwrap();
    let err = app.refresh(&first.refresh_token).await.unwrap_err();
    assert_eq!(reason(&err), "refresh_token_reused");
    // The legitimate holder's newer token died with the family.
    assert_eq!(
        reason(&app.refresh(&second.refresh_token).await.unwrap_err()),
        "invalid_refresh_token"
    );
}

#[tokio::test]
async fn simultaneous_refreshes_with_one_token_all_succeed_and_the_session_lives_on() {
    let app = spawn().await;
    let iin = app.registered().await;
    for racers in [2, 5] {
        let first = app.login(&iin, STRONG).await.unwrap().tokens.unwrap();
        let pairs =
            futures::future::join_all((0..racers).map(|_| app.refresh(&first.refresh_token))).await;
        let pairs: Vec<pb::TokenPair> = pairs
            .into_iter()
            .map(|pair| pair.expect("every racer gets a pair"))
            .collect();
        // Each racer has a pair of its own, and every one of them goes on working: nothing
        // was taken for a theft.
        let mut refresh: Vec<&str> = pairs.iter().map(|p| p.refresh_token.as_str()).collect();
        refresh.sort_unstable();
        refresh.dedup();
        assert_eq!(refresh.len(), racers, "{racers} racers, each its own token");
        for pair in &pairs {
            app.client
                .clone()
                .get_account(
                    with_bearer(pb::GetAccountRequest::default(), &pair.access_token).unwrap(),
                )
                .await
                .expect("the session lives on");
            app.refresh(&pair.refresh_token)
                .await
                .expect("each new refresh token renews once");
        }
    }
}

#[tokio::test]
async fn a_spent_refresh_token_reused_after_the_grace_revokes_the_whole_family() {
    let grace = Duration::from_secs(1);
    let app = spawn_with(|config| config.refresh_grace = grace).await;
    let iin = app.registered().await;
    let first = app.login(&iin, STRONG).await.unwrap().tokens.unwrap();
    let second = app.refresh(&first.refresh_token).await.unwrap();
    // Within the grace: a pair of the same session.
    let again = app.refresh(&first.refresh_token).await.unwrap();
    tokio::time::sleep(grace + Duration::from_millis(500)).await;
    let err = app.refresh(&first.refresh_token).await.unwrap_err();
    assert_eq!(reason(&err), "refresh_token_reused");
    for pair in [&second, &again] {
        assert_eq!(
            reason(&app.refresh(&pair.refresh_token).await.unwrap_err()),
            "invalid_refresh_token"
        );
        app.refused_within_a_second(&pair.access_token).await;
    }
}

#[tokio::test]
async fn the_grace_gives_nothing_once_the_session_has_ended() {
    let app = spawn().await;
    let iin = app.registered().await;
    let first = app.login(&iin, STRONG).await.unwrap().tokens.unwrap();
    let second = app.refresh(&first.refresh_token).await.unwrap();
    app.client
        .clone()
        .logout(with_bearer(pb::LogoutRequest {}, &second.access_token).unwrap())
        .await
        .unwrap();
    // The token was spent a moment ago, but its session was logged out: no pair.
    let err = app.refresh(&first.refresh_token).await.unwrap_err();
    assert_ne!(err.code(), Code::Ok);
    assert!(
        ["invalid_refresh_token", "refresh_token_reused"].contains(&reason(&err).as_str()),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_session_ends_at_its_lifetime_however_often_it_is_refreshed() {
    let lifetime = Duration::from_secs(3);
    let app = spawn_with(|config| config.session_lifetime = lifetime).await;
    let iin = app.registered().await;
    let login = app.login(&iin, STRONG).await.unwrap().tokens.unwrap();
    let began = std::time::SystemTime::now();
    let mut pair = app.refresh(&login.refresh_token).await.unwrap();
    // Refreshing does not move the end: the refresh token expires with the session.
    let ends = pair.refresh_expires_at.unwrap();
    let ends = std::time::UNIX_EPOCH + Duration::from_secs(u64::try_from(ends.seconds).unwrap());
    assert!(
        ends <= began + lifetime + Duration::from_secs(1),
        "{ends:?}"
    );
    while began.elapsed().unwrap() < lifetime + Duration::from_secs(1) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        match app.refresh(&pair.refresh_token).await {
            Ok(next) => pair = next,
            Err(e) => {
                assert_eq!(reason(&e), "invalid_refresh_token");
                assert!(began.elapsed().unwrap() >= lifetime - Duration::from_secs(1));
                return;
            }
        }
    }
    panic!("the session outlived its lifetime");
}

#[tokio::test]
async fn a_blocked_account_refreshes_no_more() {
    let app = spawn().await;
    let iin = app.registered().await;
    let pair = app.login(&iin, STRONG).await.unwrap().tokens.unwrap();
    let db = sqlx::PgPool::connect(app.database.expose()).await.unwrap();
    sqlx::query("UPDATE accounts SET status = 'blocked' WHERE login = $1")
        .bind(&iin)
        .execute(&db)
        .await
        .unwrap();
    assert_eq!(
        reason(&app.refresh(&pair.refresh_token).await.unwrap_err()),
        "invalid_refresh_token"
    );
}

#[tokio::test]
async fn a_password_reset_needs_a_recovery_proof_and_ends_every_session() {
    let app = spawn().await;
    let iin = valid_iin();
    let email = tk::unique_email();
    app.create(app.account(&iin, &email)).await.unwrap();
    let phone = app.login(&iin, STRONG).await.unwrap().tokens.unwrap();
    let laptop = app.login(&iin, STRONG).await.unwrap().tokens.unwrap();
    let reset = |proof: String| {
        let app = &app;
        async move {
            app.client
                .clone()
                .reset_password(app.req(pb::ResetPasswordRequest {
                    recovery_proof: proof,
                    new_password: "Тау-көлі-жазда-таза-42".into(),
                }))
                .await
        }
    };
    assert_eq!(
        reason(&reset(app.proof(&email, "registration")).await.unwrap_err()),
        "invalid_email_proof"
    );
    let answer = reset(app.proof(&email, "recovery"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.revoked_sessions, 2);
    for tokens in [phone, laptop] {
        assert!(app.refresh(&tokens.refresh_token).await.is_err());
    }
    assert_eq!(
        reason(&app.login(&iin, STRONG).await.unwrap_err()),
        "invalid_credentials"
    );
    assert!(app.login(&iin, "Тау-көлі-жазда-таза-42").await.is_ok());
}

#[tokio::test]
async fn calls_without_a_token_or_scope_are_refused_and_clients_get_scoped_tokens() {
    let app = spawn().await;
    let err = app
        .client
        .clone()
        .create_account(app.account(&valid_iin(), &tk::unique_email()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let narrow = tk::service_token(&app.key, "profile", &["accounts:read"]);
    let err = app
        .client
        .clone()
        .create_account(
            with_bearer(app.account(&valid_iin(), &tk::unique_email()), &narrow).unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // A user's own access token cannot create accounts either.
    let iin = app.registered().await;
    let user = app
        .login(&iin, STRONG)
        .await
        .unwrap()
        .tokens
        .unwrap()
        .access_token;
    let err = app
        .client
        .clone()
        .create_account(with_bearer(app.account(&valid_iin(), &tk::unique_email()), &user).unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    let issued = app.issue_service_token(GATEWAY_SECRET).await.unwrap();
    assert!(issued.scopes.contains(&"accounts:create".to_owned()));
    app.create_with(
        &issued.access_token,
        app.account(&valid_iin(), &tk::unique_email()),
    )
    .await
    .unwrap();
    let err = app.issue_service_token("guess").await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let jwks = app
        .client
        .clone()
        .get_jwks(pb::GetJwksRequest {})
        .await
        .unwrap()
        .into_inner()
        .jwks_json;
    assert!(KeySet::from_jwks(&jwks).unwrap().contains(app.key.kid()));
}

#[tokio::test]
async fn shutdown_drains_the_calls_in_flight() {
    let key = SigningKey::generate();
    let mut config = config(&key, &SigningKey::generate()).await;
    // One hash at a time, so the logins queue up and are still running at shutdown.
    config.hash_concurrency = 1;
    let app = Application::build(config).await.unwrap();
    let addr = app.addr();
    let (stop, stopped) = tk::stopper();
    let server = tokio::spawn(app.run_until_stopped(stopped));
    let client = IdentityServiceClient::new(
        examreg_kit::channel::lazy(&format!("https://{addr}"), &tk::tls()).unwrap(),
    );
    let token = tk::service_token(&key, "gateway", &["sessions:create"]);
    // Warm the connection so the logins below reach the server at once.
    client
        .clone()
        .get_jwks(pb::GetJwksRequest {})
        .await
        .unwrap();
    let logins: Vec<_> = (0..8)
        .map(|i| {
            let mut client = client.clone();
            let request = with_bearer(
                pb::LoginRequest {
                    login: valid_iin(),
                    password: format!("no-such-password-{i}"),
                    client_ip: format!("10.9.0.{i}"),
                    user_agent: "tests".into(),
                    ..Default::default()
                },
                &token,
            )
            .unwrap();
            tokio::spawn(async move { client.login(request).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(30)).await;
    stop.send(()).unwrap();
    for login in logins {
        let answer = login.await.unwrap();
        // Every call accepted before the shutdown got its real answer, not a broken connection.
        assert_eq!(reason(&answer.unwrap_err()), "invalid_credentials");
    }
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_sweeper_removes_only_what_can_no_longer_matter() {
    let database = tk::fresh_database("identity").await;
    let mut config = Config::defaults();
    config.tls = tk::tls();
    config.database_url = Secret::new(database.clone());
    config.signing_key = Some(SigningKey::generate());
    config.proof_keys = KeySet::from_signing_keys([&SigningKey::generate()]);
    drop(Application::build(config).await.unwrap()); // applies the migrations
    let pool = sqlx::PgPool::connect(&database).await.unwrap();
    let (expired, live) = (Uuid::new_v4(), Uuid::new_v4());
    sqlx::query("INSERT INTO consumed_proofs (jti, expires_at) VALUES ($1, now() - interval '1 minute'), ($2, now() + interval '1 hour')")
        .bind(expired)
        .bind(live)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO login_throttle (key, failures, window_started_at, locked_until) VALUES
         ('stale', 3, now() - interval '2 hours', NULL),
         ('locked', 5, now() - interval '2 hours', now() + interval '10 minutes'),
         ('recent', 2, now(), NULL)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let swept = examreg_identity::store::sweep(&pool, 900.0).await.unwrap();
    assert_eq!((swept.proofs, swept.throttles), (1, 1));
    let proofs: Vec<Uuid> = sqlx::query_scalar("SELECT jti FROM consumed_proofs")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(proofs, vec![live]);
    let mut keys: Vec<String> = sqlx::query_scalar("SELECT key FROM login_throttle")
        .fetch_all(&pool)
        .await
        .unwrap();
    keys.sort();
    assert_eq!(keys, ["locked", "recent"]);
}

/// The first message of a revocation stream opened with `token`.
async fn revocations(
    app: &TestApp,
    token: &str,
) -> Result<pb::WatchRevocationsResponse, tonic::Status> {
    let mut stream = app
        .client
        .clone()
        .watch_revocations(with_bearer(pb::WatchRevocationsRequest {}, token).unwrap())
        .await?
        .into_inner();
    Ok(stream.message().await?.expect("the whole list first"))
}

#[tokio::test]
async fn a_revocation_outlives_every_token_it_revokes_leeway_included() {
    // A short access lifetime: the capture token (fifteen minutes) is the longest-lived one.
    let app = spawn_with(|config| config.access_ttl = Duration::from_secs(2)).await;
    let iin = app.registered().await;
    let tokens = app.login(&iin, STRONG).await.unwrap().tokens.unwrap();
    let capture = app
        .client
        .clone()
        .issue_capture_token(
            with_bearer(pb::IssueCaptureTokenRequest {}, &tokens.access_token).unwrap(),
        )
        .await
        .unwrap()
        .into_inner()
        .capture_token;
    let keys = KeySet::from_signing_keys([&app.key]);
    let exp = |token: &str| {
        keys.verify::<examreg_kit::auth::Claims>(
            token,
            examreg_kit::auth::ISSUER,
            examreg_kit::auth::AUDIENCE,
        )
        .unwrap()
        .exp
    };
    let last_accepted = exp(&tokens.access_token).max(exp(&capture))
        + i64::try_from(examreg_kit::tokens::LEEWAY.as_secs()).unwrap();
    app.client
        .clone()
        .logout(with_bearer(pb::LogoutRequest {}, &tokens.access_token).unwrap())
        .await
        .unwrap();
    let watcher = tk::service_token(&app.key, "watcher", &["revocations:watch"]);
    let list = revocations(&app, &watcher).await.unwrap();
    let session = examreg_kit::auth::Keys::from(&app.key)
        .authenticate(&tokens.access_token)
        .unwrap()
        .require_user()
        .unwrap()
        .1;
    let until = list
        .revocations
        .iter()
        .find(|r| r.session_id == session.to_string())
        .expect("the logout is in the list")
        .until;
    // Verifiers accept a token until `exp` + the leeway: the revocation must still stand then.
    assert!(
        until >= last_accepted,
        "revoked until {until}, but a token of the session is accepted until {last_accepted}"
    );
    // And the leeway is real: a token a few seconds past its expiry still verifies.
    let late = app.key.sign(&examreg_kit::auth::Claims {
        exp: unix_now() - i64::try_from(examreg_kit::tokens::LEEWAY.as_secs()).unwrap() + 3,
        ..examreg_kit::auth::Claims::access(Uuid::new_v4(), session, Duration::ZERO)
    });
    assert!(
        keys.verify::<examreg_kit::auth::Claims>(
            &late,
            examreg_kit::auth::ISSUER,
            examreg_kit::auth::AUDIENCE
        )
        .is_ok()
    );
}

#[tokio::test]
async fn the_revocation_stream_answers_only_our_verifiers_and_only_so_many_at_once() {
    let app = spawn_with(|config| config.streams_per_client = 2).await;
    let iin = app.registered().await;
    let user = app.login(&iin, STRONG).await.unwrap().tokens.unwrap();
    // No token, a garbage one, an applicant's, a client's without the scope: refused.
    let bare = app
        .client
        .clone()
        .watch_revocations(pb::WatchRevocationsRequest {})
        .await
        .unwrap_err();
    assert_eq!(bare.code(), Code::Unauthenticated);
    assert_eq!(
        revocations(&app, "not-a-token").await.unwrap_err().code(),
        Code::Unauthenticated
    );
    assert_eq!(
        revocations(&app, &user.access_token)
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    let unscoped = tk::service_token(&app.key, "gateway", &["accounts:create"]);
    assert_eq!(
        revocations(&app, &unscoped).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    // One client holds two at most; the third is refused with a retry hint; another client
    // still gets its own.
    let watcher = tk::service_token(&app.key, "watcher", &["revocations:watch"]);
    let open = |token: String| {
        let mut client = app.client.clone();
        async move {
            client
                .watch_revocations(with_bearer(pb::WatchRevocationsRequest {}, &token).unwrap())
                .await
                .map(tonic::Response::into_inner)
        }
    };
    let first = open(watcher.clone()).await.unwrap();
    let _second = open(watcher.clone()).await.unwrap();
    let refused = open(watcher.clone()).await.unwrap_err();
    assert_eq!(
        (refused.code(), reason(&refused)),
        (Code::ResourceExhausted, "too_many_streams".to_owned())
    );
    assert!(reason_of(&refused).retry_after.is_some());
    let other = tk::service_token(&app.key, "biometrics", &["revocations:watch"]);
    open(other).await.unwrap();
    // A stream that ends gives its place back (once its task notices, at the next heartbeat).
    drop(first);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match open(watcher.clone()).await {
            Ok(_) => break,
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted);
                assert!(
                    std::time::Instant::now() < deadline,
                    "the place never came back"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[tokio::test]
async fn a_registration_sent_again_finds_its_account_and_nothing_else_reuses_its_proof() {
    let app = spawn().await;
    let first = app.account(&valid_iin(), &tk::unique_email());
    let id = app.create(first.clone()).await.unwrap();
    // The same request again, as after an answer lost on the way: the account it made.
    assert_eq!(app.create(first.clone()).await.unwrap(), id);
    // The same proof for another identifier or with another password: spent.
    let mut other_iin = first.clone();
    other_iin.identifier = Some(Identifier::Iin(valid_iin()));
    assert_eq!(app.refusal(other_iin).await, "invalid_email_proof");
    let mut other_password = first.clone();
    other_password.password = "Көк-теңіз-жағасында-9".into();
    assert_eq!(app.refusal(other_password).await, "invalid_email_proof");
}
