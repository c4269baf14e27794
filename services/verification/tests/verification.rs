//! The verification service against the real Redis and maildev of the local stack.

use examreg_kit::auth::{PROOF_AUDIENCE, PROOF_ISSUER, ProofClaims};
use examreg_kit::{
    auth::Keys,
    config::Secret,
    errors::reason_of,
    tokens::{KeySet, SigningKey},
};
use examreg_proto::verification::v1::{
    ConfirmChallengeRequest, Notice, Purpose, ResendChallengeRequest, SendNoticeRequest,
    StartChallengeRequest, verification_service_client::VerificationServiceClient,
};
use examreg_testkit as tk;
use examreg_verification::{Application, Config, store::Limits};
use std::time::Duration;
use tonic::{Code, Request, transport::Channel};

struct TestApp {
    addr: std::net::SocketAddr,
    client: VerificationServiceClient<Channel>,
    identity_key: SigningKey,
    proof_key: SigningKey,
    _stop: tokio::sync::oneshot::Sender<()>,
}

fn limits() -> Limits {
    Limits {
        code_ttl: Duration::from_secs(600),
        resend_cooldown: Duration::from_secs(60),
        max_attempts: 5,
        email_hourly: 5,
        ip_hourly: 1000,
    }
}

fn config(limits: Limits, smtp: &str) -> Config {
    let mut config = Config::defaults();
    config.tls = tk::tls();
    config.key_prefix = tk::unique_prefix("verification");
    config.redis_url = Secret::new(tk::redis_url());
    config.smtp_url = Secret::new(format!("smtp://{smtp}"));
    config.code_key = Secret::new("test-code-key-0123456789abcdef0123456789");
    config.limits = limits;
    config.outbox.retry_base = Duration::from_secs(1);
    config
}

async fn spawn_with(limits: Limits, smtp: &str) -> TestApp {
    spawn_config(config(limits, smtp)).await
}

async fn spawn_config(mut config: Config) -> TestApp {
    let identity_key = SigningKey::generate();
    let proof_key = SigningKey::generate();
    config.proof_key = Some(proof_key.clone());
    let app = Application::build(config, Keys::from(&identity_key))
        .await
        .unwrap();
    let addr = app.addr();
    let (stop, stopped) = tk::stopper();
    tokio::spawn(app.run_until_stopped(stopped));
    let channel = examreg_kit::channel::lazy(&format!("https://{addr}"), &tk::tls()).unwrap();
    TestApp {
        addr,
        client: VerificationServiceClient::new(channel),
        identity_key,
        proof_key,
        _stop: stop,
    }
}

async fn spawn() -> TestApp {
    spawn_with(limits(), &tk::smtp_addr()).await
}

impl TestApp {
    fn req<T>(&self, message: T) -> Request<T> {
        let token = tk::service_token(
            &self.identity_key,
            "gateway",
            &["verification:send", "verification:confirm"],
        );
        examreg_kit::auth::with_bearer(message, &token).unwrap()
    }

    async fn start(&self, email: &str) -> String {
        self.client
            .clone()
            .start_challenge(self.req(StartChallengeRequest {
                email: email.into(),
                purpose: Purpose::Registration.into(),
                locale: "ru".into(),
                client_ip: "127.0.0.1".into(),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner()
            .challenge_id
    }

    async fn confirm(&self, challenge: &str, code: &str) -> Result<ProofClaims, tonic::Status> {
        let answer = self
            .client
            .clone()
            .confirm_challenge(self.req(ConfirmChallengeRequest {
                challenge_id: challenge.into(),
                code: code.into(),
            }))
            .await?
            .into_inner();
        Ok(KeySet::from_signing_keys([&self.proof_key])
            .verify(&answer.proof, PROOF_ISSUER, PROOF_AUDIENCE)
            .expect("the proof verifies"))
    }
}

fn wrong(code: &str) -> String {
    format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000)
}

#[tokio::test]
async fn a_mailed_code_yields_a_proof_for_that_email_and_purpose() {
    // A lifetime other than the default, as the letter must say it.
    let five_minutes = Limits {
        code_ttl: Duration::from_secs(300),
        ..limits()
    };
    let app = spawn_with(five_minutes, &tk::smtp_addr()).await;
    let email = tk::unique_email();
    let challenge = app.start(&email.to_uppercase()).await;
    let mails = tk::wait_for_mails(&email, 1, Duration::from_secs(20)).await;
    assert_eq!(mails[0].subject, "Подтверждение регистрации в ИСО");
    assert!(
        mails[0]
            .text
            .contains("Уважаемый пользователь для продолжения регистрации, введите код:")
    );
    assert!(
        mails[0].text.contains("Код действует 5 минут."),
        "{}",
        mails[0].text
    );
    // The seed's sign-off, on two lines (however the mail's line ends arrive).
    let lines: Vec<&str> = mails[0]
        .text
        .lines()
        .map(str::trim_end)
        .filter(|line| !line.is_empty())
        .collect();
    assert!(
        lines.ends_with(&[
            "С уважением,",
            "РОО \"Национальный центр независимой экзаменации\""
        ]),
        "{lines:?}"
    );
    assert!(mails[0].html.contains(&tk::code_in(&mails[0])));
    let proof = app
        .confirm(&challenge, &tk::code_in(&mails[0]))
        .await
        .unwrap();
    assert_eq!(proof.sub, email);
    assert_eq!(proof.purpose, "registration");
    // The code worked once: the challenge is gone.
    let again = app
        .confirm(&challenge, &tk::code_in(&mails[0]))
        .await
        .unwrap_err();
    assert_eq!(reason_of(&again).reason, "challenge_expired");
}

#[tokio::test]
async fn verify_rejects_the_sixth_code_after_five_wrong_ones_burn_the_challenge() {
    let app = spawn().await;
    let email = tk::unique_email();
    let challenge = app.start(&email).await;
    let code = tk::nth_code(&email, 1).await;
    for attempt in 1..=4 {
        let err = app.confirm(&challenge, &wrong(&code)).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "attempt {attempt}");
        assert_eq!(reason_of(&err).reason, "invalid_code");
    }
    let fifth = app.confirm(&challenge, &wrong(&code)).await.unwrap_err();
    assert_eq!(reason_of(&fifth).reason, "challenge_burnt");
    // The sixth attempt fails even with the right code.
    let sixth = app.confirm(&challenge, &code).await.unwrap_err();
    assert_eq!(sixth.code(), Code::FailedPrecondition);
    assert_eq!(reason_of(&sixth).reason, "challenge_burnt");
}

#[tokio::test]
async fn forty_concurrent_wrong_guesses_never_succeed_and_spend_the_challenge() {
    let app = spawn().await;
    let email = tk::unique_email();
    let challenge = app.start(&email).await;
    let code = tk::nth_code(&email, 1).await;
    let guesses = (0..40u32).map(|i| {
        let app = &app;
        let challenge = challenge.clone();
        // Forty distinct wrong codes.
        let guess = format!("{:06}", (code.parse::<u32>().unwrap() + 1 + i) % 1_000_000);
        async move { app.confirm(&challenge, &guess).await }
    });
    let results = futures::future::join_all(guesses).await;
    assert!(results.iter().all(Result::is_err));
    let wrong = results
        .iter()
        .filter(|r| reason_of(r.as_ref().unwrap_err()).reason == "invalid_code")
        .count();
    assert_eq!(
        wrong, 4,
        "exactly four guesses were judged before the fifth burnt it"
    );
    let err = app.confirm(&challenge, &code).await.unwrap_err();
    assert_eq!(reason_of(&err).reason, "challenge_burnt");
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let app = spawn_with(
        Limits {
            code_ttl: Duration::from_secs(1),
            ..limits()
        },
        &tk::smtp_addr(),
    )
    .await;
    let email = tk::unique_email();
    let challenge = app.start(&email).await;
    let code = tk::nth_code(&email, 1).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let err = app.confirm(&challenge, &code).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(reason_of(&err).reason, "challenge_expired");
}

#[tokio::test]
async fn resend_too_early_is_refused_with_a_retry_time_and_changes_nothing() {
    let app = spawn().await;
    let email = tk::unique_email();
    let challenge = app.start(&email).await;
    let code = tk::nth_code(&email, 1).await;
    let err = app
        .client
        .clone()
        .resend_challenge(app.req(ResendChallengeRequest {
            challenge_id: challenge.clone(),
            locale: "ru".into(),
            client_ip: "127.0.0.1".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    let reason = reason_of(&err);
    assert_eq!(reason.reason, "resend_too_early");
    let wait = reason.retry_after.unwrap();
    assert!(
        wait > Duration::from_secs(50) && wait <= Duration::from_secs(60),
        "{wait:?}"
    );
    // The first code still works.
    assert!(app.confirm(&challenge, &code).await.is_ok());
}

#[tokio::test]
async fn resend_after_the_cooldown_sends_a_new_code_and_retires_the_old() {
    let app = spawn_with(
        Limits {
            resend_cooldown: Duration::from_millis(300),
            ..limits()
        },
        &tk::smtp_addr(),
    )
    .await;
    let email = tk::unique_email();
    let challenge = app.start(&email).await;
    let first = tk::nth_code(&email, 1).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    app.client
        .clone()
        .resend_challenge(app.req(ResendChallengeRequest {
            challenge_id: challenge.clone(),
            locale: "kk".into(),
            client_ip: "127.0.0.1".into(),
        }))
        .await
        .unwrap();
    let mails = tk::wait_for_mails(&email, 2, Duration::from_secs(20)).await;
    assert_eq!(mails[1].subject, "ИСО-да тіркелуді растау");
    let second = tk::code_in(&mails[1]);
    if first != second {
        assert_eq!(
            reason_of(&app.confirm(&challenge, &first).await.unwrap_err()).reason,
            "invalid_code"
        );
    }
    assert!(app.confirm(&challenge, &second).await.is_ok());
}

#[tokio::test]
async fn the_hourly_budget_per_email_stops_a_flood_of_codes() {
    let app = spawn().await;
    let email = tk::unique_email();
    for _ in 0..5 {
        app.start(&email).await;
    }
    let err = app
        .client
        .clone()
        .start_challenge(app.req(StartChallengeRequest {
            email: email.clone(),
            purpose: Purpose::Registration.into(),
            locale: "ru".into(),
            client_ip: "127.0.0.1".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert_eq!(reason_of(&err).reason, "send_budget_exhausted");
    assert!(reason_of(&err).retry_after.unwrap() > Duration::from_secs(3000));
}

#[tokio::test]
async fn bad_input_gets_field_errors() {
    let app = spawn().await;
    let err = app
        .client
        .clone()
        .start_challenge(app.req(StartChallengeRequest {
            email: "not-an-email".into(),
            purpose: Purpose::Registration.into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        reason_of(&err).fields,
        vec![("email".to_owned(), "invalid_email".to_owned())]
    );
    let err = app
        .confirm(&uuid::Uuid::new_v4().to_string(), "12ab56")
        .await
        .unwrap_err();
    assert_eq!(reason_of(&err).reason, "invalid_code_format");
}

#[tokio::test]
async fn calls_without_a_token_or_without_the_scope_are_refused() {
    let app = spawn().await;
    let message = || StartChallengeRequest {
        email: tk::unique_email(),
        purpose: Purpose::Registration.into(),
        ..Default::default()
    };
    let err = app
        .client
        .clone()
        .start_challenge(message())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let stranger = SigningKey::generate();
    let forged = examreg_kit::auth::with_bearer(
        message(),
        &tk::service_token(&stranger, "gateway", &["verification:send"]),
    )
    .unwrap();
    assert_eq!(
        app.client
            .clone()
            .start_challenge(forged)
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    let token = tk::service_token(&app.identity_key, "profile", &["verification:confirm"]);
    let err = app
        .client
        .clone()
        .start_challenge(examreg_kit::auth::with_bearer(message(), &token).unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn a_letter_queued_while_smtp_is_down_arrives_when_it_is_back() {
    let mut relay = tk::Relay::down(&tk::smtp_addr()).await;
    let app = spawn_with(limits(), &relay.addr.to_string()).await;
    let email = tk::unique_email();
    let challenge = app.start(&email).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        tk::mails_to(&email).await.is_empty(),
        "nothing can be delivered yet"
    );
    relay.up().await;
    let mails = tk::wait_for_mails(&email, 1, Duration::from_secs(90)).await;
    assert!(
        app.confirm(&challenge, &tk::code_in(&mails[0]))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_letter_held_by_a_replica_that_stopped_is_delivered_by_the_next_one() {
    let mut relay = tk::Relay::down(&tk::smtp_addr()).await;
    let mut first = config(limits(), &relay.addr.to_string());
    first.outbox.claim_after = Duration::from_secs(1);
    first.outbox.retry_base = Duration::from_secs(1);
    let second = first.clone();
    let app = spawn_config(first).await;
    let email = tk::unique_email();
    let challenge = app.start(&email).await;
    // The first replica takes the letter, fails to deliver it, and stops holding it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    drop(app);
    relay.up().await;
    let next = spawn_config(second).await;
    let mails = tk::wait_for_mails(&email, 1, Duration::from_secs(60)).await;
    assert_eq!(mails.len(), 1);
    // The challenge lives in Redis, so the next replica confirms it too.
    let proof = next
        .confirm(&challenge, &tk::code_in(&mails[0]))
        .await
        .unwrap();
    assert_eq!(proof.sub, email);
}

#[tokio::test]
async fn reflection_lists_the_services_and_health_only() {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let app = spawn().await;
    let channel = examreg_kit::channel::lazy(&format!("https://{}", app.addr), &tk::tls()).unwrap();
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = ServerReflectionClient::new(channel)
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("no service list");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "examreg.retention.v1.RetentionService",
            "examreg.verification.v1.VerificationService",
            "grpc.health.v1.Health"
        ]
    );
}

/// The queue's keys under a test's prefix (see `outbox`).
fn mail_key(config: &Config, name: &str) -> String {
    format!("{}mail:{{mail}}:{name}", config.key_prefix)
}

async fn redis() -> examreg_kit::redis::Redis {
    examreg_kit::redis::connect(&tk::redis_url(), Duration::from_secs(10))
        .await
        .unwrap()
}

/// Waits until `done` holds, checking every 50 ms, for at most `within`.
async fn eventually(within: Duration, what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !done().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {within:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn dead_letters(config: &Config) -> Vec<std::collections::HashMap<String, String>> {
    /// Per entry: its id and its fields.
    type Entries = Vec<(String, Vec<(String, Vec<u8>)>)>;
    let entries: Entries = redis::cmd("XRANGE")
        .arg(mail_key(config, "dead"))
        .arg("-")
        .arg("+")
        .query_async(&mut redis().await)
        .await
        .unwrap();
    entries
        .into_iter()
        .map(|(_, fields)| {
            fields
                .into_iter()
                .filter(|(name, _)| name != "letter")
                .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
                .collect()
        })
        .collect()
}

/// The ids of the letters still queued.
async fn queued(config: &Config) -> Vec<String> {
    redis::cmd("HKEYS")
        .arg(mail_key(config, "letters"))
        .query_async(&mut redis().await)
        .await
        .unwrap()
}

/// An address a mail server defers forever, that server, and a configuration sending there
/// with the given first wait and attempts.
async fn deferring(
    retry_base: Duration,
    max_attempts: u32,
) -> (String, tk::smtp::SmtpServer, Config) {
    let stuck = tk::unique_email();
    let smtp = tk::smtp::SmtpServer::start(&[&stuck]).await;
    let mut config = config(limits(), &smtp.addr.to_string());
    config.outbox.retry_base = retry_base;
    config.outbox.max_attempts = max_attempts;
    (stuck, smtp, config)
}

#[tokio::test]
async fn a_recipient_the_relay_keeps_deferring_holds_back_nobody_and_ends_in_the_dead_letters() {
    let (stuck, smtp, config) = deferring(Duration::from_millis(400), 4).await;
    let app = spawn_config(config.clone()).await;
    app.start(&stuck).await;
    eventually(Duration::from_secs(10), "the first deferral", async || {
        smtp.deferrals_of(&stuck) >= 1
    })
    .await;
    // Applicants who ask after it get their codes at once, while it waits its own backoff.
    let others: Vec<String> = (0..3).map(|_| tk::unique_email()).collect();
    for other in &others {
        app.start(other).await;
    }
    eventually(Duration::from_secs(5), "the others' letters", async || {
        others.iter().all(|o| smtp.accepted_for(o).len() == 1)
    })
    .await;
    // After the configured attempts it is dead, with its reason, and the queue is empty.
    eventually(Duration::from_secs(20), "the dead letter", async || {
        !dead_letters(&config).await.is_empty()
    })
    .await;
    assert_eq!(smtp.deferrals_of(&stuck), 4);
    assert!(smtp.accepted_for(&stuck).is_empty());
    let dead = dead_letters(&config).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["attempts"], "4", "{dead:?}");
    let reason = &dead[0]["reason"];
    assert!(reason.starts_with("too_many_attempts: "), "{reason}");
    assert!(reason.contains("450"), "{reason}");
    assert!(!reason.contains(&stuck), "the address is masked: {reason}");
    assert!(
        reason.contains(&examreg_domain::mask_email(&stuck)),
        "{reason}"
    );
    let queued: u64 = redis::cmd("ZCARD")
        .arg(mail_key(&config, "born"))
        .query_async(&mut redis().await)
        .await
        .unwrap();
    assert_eq!(queued, 0);
}

#[tokio::test]
async fn a_letter_that_cannot_be_opened_or_buried_stays_queued_and_the_rest_go_out() {
    let (stuck, smtp, config) = deferring(Duration::from_millis(200), 2).await;
    let mut redis = redis().await;
    // A letter sealed with some other key, queued before the service starts.
    let _: () = redis::pipe()
        .hset(
            mail_key(&config, "letters"),
            "foreign",
            b"sealed elsewhere, 0123456789".as_slice(),
        )
        .zadd(mail_key(&config, "due"), "foreign", 0)
        .zadd(mail_key(&config, "born"), "foreign", 0)
        .query_async(&mut redis)
        .await
        .unwrap();
    // The dead letters cannot be written (the key holds something else).
    let _: () = redis::cmd("SET")
        .arg(mail_key(&config, "dead"))
        .arg("not a stream")
        .query_async(&mut redis)
        .await
        .unwrap();
    let app = spawn_config(config.clone()).await;
    app.start(&stuck).await;
    let other = tk::unique_email();
    app.start(&other).await;
    eventually(Duration::from_secs(10), "the other letter", async || {
        smtp.accepted_for(&other).len() == 1
    })
    .await;
    eventually(Duration::from_secs(10), "the attempts", async || {
        smtp.deferrals_of(&stuck) >= 3
    })
    .await;
    // Both are still queued: the foreign one untouched, the dead one not dropped.
    let letters = queued(&config).await;
    assert_eq!(letters.len(), 2, "{letters:?}");
    assert!(letters.contains(&"foreign".to_owned()));
    // Once the dead letters can be written, the stuck letter moves there; the foreign stays.
    let _: () = redis::cmd("DEL")
        .arg(mail_key(&config, "dead"))
        .query_async(&mut redis)
        .await
        .unwrap();
    eventually(Duration::from_secs(20), "the dead letter", async || {
        dead_letters(&config).await.len() == 1
    })
    .await;
    assert_eq!(queued(&config).await, ["foreign"]);
}

#[tokio::test]
async fn letters_left_in_the_stream_of_the_earlier_version_are_delivered_once_by_two_replicas() {
    let config = config(limits(), &tk::smtp_addr());
    let sealer = examreg_verification::outbox_sealer(&config.code_key);
    let emails: Vec<String> = (0..12).map(|_| tk::unique_email()).collect();
    let letters = examreg_verification::letters::Letters::load(None).unwrap();
    for (i, email) in emails.iter().enumerate() {
        let letter = letters.code(
            email,
            examreg_verification::store::Purpose::Registration,
            "ru",
            &format!("{:06}", 246_800 + i),
            Duration::from_secs(600),
        );
        let _: String = redis::cmd("XADD")
            .arg(format!("{}outbox", config.key_prefix))
            .arg("*")
            .arg("letter")
            .arg(sealer.seal(&letter))
            .query_async(&mut redis().await)
            .await
            .unwrap();
    }
    // Two replicas of the new version start together and both find the old stream.
    let (_a, _b) = tokio::join!(spawn_config(config.clone()), spawn_config(config.clone()));
    for (i, email) in emails.iter().enumerate() {
        let mails = tk::wait_for_mails(email, 1, Duration::from_secs(30)).await;
        assert_eq!(tk::code_in(&mails[0]), format!("{:06}", 246_800 + i));
    }
    // Nothing left to send: the stream is empty, the queue too, and no replica is moving
    // letters; so each address has what it will ever get.
    eventually(
        Duration::from_secs(30),
        "the old stream moved and sent",
        async || {
            let left: u64 = redis::cmd("XLEN")
                .arg(format!("{}outbox", config.key_prefix))
                .query_async(&mut redis().await)
                .await
                .unwrap();
            let adopting: bool = redis::cmd("EXISTS")
                .arg(format!("{}outbox:adopting", config.key_prefix))
                .query_async(&mut redis().await)
                .await
                .unwrap();
            left == 0 && !adopting && queued(&config).await.is_empty()
        },
    )
    .await;
    for email in &emails {
        assert_eq!(tk::mails_to(email).await.len(), 1, "one letter per address");
    }
}

impl TestApp {
    async fn start_request(&self, request: StartChallengeRequest) -> Result<String, tonic::Status> {
        Ok(self
            .client
            .clone()
            .start_challenge(self.req(request))
            .await?
            .into_inner()
            .challenge_id)
    }

    async fn notice(&self, proof: &str, notice: Notice) -> Result<bool, tonic::Status> {
        Ok(self
            .client
            .clone()
            .send_notice(self.req(SendNoticeRequest {
                email_proof: proof.into(),
                notice: notice.into(),
                locale: "en".into(),
            }))
            .await?
            .into_inner()
            .sent)
    }
}

fn decoy(subject: &str) -> StartChallengeRequest {
    StartChallengeRequest {
        purpose: Purpose::Recovery.into(),
        locale: "ru".into(),
        client_ip: "127.0.0.1".into(),
        decoy: true,
        budget_subject: subject.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_decoy_sends_nothing_never_confirms_and_keeps_a_real_challenges_rules() {
    let app = spawn_with(
        Limits {
            max_attempts: 3,
            ..limits()
        },
        &tk::smtp_addr(),
    )
    .await;
    let login = tk::random_iin(examreg_domain::Sex::Female);
    let challenge = app.start_request(decoy(&login)).await.unwrap();
    // The cooldown holds as for a real challenge.
    let err = app
        .client
        .clone()
        .resend_challenge(app.req(ResendChallengeRequest {
            challenge_id: challenge.clone(),
            locale: "ru".into(),
            client_ip: "127.0.0.1".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(reason_of(&err).reason, "resend_too_early");
    // Wrong codes to the cap, then burnt: no code ever confirms it.
    let mut reasons = Vec::new();
    for code in ["000000", "123456", "999999", "654321"] {
        reasons.push(reason_of(&app.confirm(&challenge, code).await.unwrap_err()).reason);
    }
    assert_eq!(
        reasons,
        [
            "invalid_code",
            "invalid_code",
            "challenge_burnt",
            "challenge_burnt"
        ]
    );
    // The subject's budget counts decoys and real challenges alike: four more starts spend it
    // (five an hour), a real challenge for the same subject is then refused as well.
    for _ in 0..4 {
        app.start_request(decoy(&login)).await.unwrap();
    }
    let real = StartChallengeRequest {
        email: tk::unique_email(),
        decoy: false,
        ..decoy(&login)
    };
    let err = app.start_request(real).await.unwrap_err();
    assert_eq!(reason_of(&err).reason, "send_budget_exhausted");
    let err = app.start_request(decoy(&login)).await.unwrap_err();
    assert_eq!(reason_of(&err).reason, "send_budget_exhausted");
    // A decoy with nothing to count its budget against is refused.
    let err = app.start_request(decoy("  ")).await.unwrap_err();
    assert_eq!(reason_of(&err).reason, "invalid_email");
}

#[tokio::test]
async fn a_notice_goes_once_per_proof_to_the_address_the_proof_names() {
    let app = spawn().await;
    let email = tk::unique_email();
    let challenge = app.start(&email).await;
    let code = tk::nth_code(&email, 1).await;
    let proof = app
        .client
        .clone()
        .confirm_challenge(app.req(ConfirmChallengeRequest {
            challenge_id: challenge,
            code,
        }))
        .await
        .unwrap()
        .into_inner()
        .proof;
    assert!(app.notice(&proof, Notice::AccountExists).await.unwrap());
    let mails = tk::wait_for_mails(&email, 2, Duration::from_secs(20)).await;
    assert_eq!(mails[1].subject, "An account already exists in ISO");
    assert!(
        mails[1].text.contains("Forgot password"),
        "{}",
        mails[1].text
    );
    // A retry sends nothing twice.
    assert!(!app.notice(&proof, Notice::AccountExists).await.unwrap());
    // Proofs this service did not sign, or signed for recovery, send nothing.
    let forged = SigningKey::generate().sign(&ProofClaims {
        iss: PROOF_ISSUER.into(),
        aud: PROOF_AUDIENCE.into(),
        sub: tk::unique_email(),
        purpose: "registration".into(),
        jti: uuid::Uuid::new_v4().to_string(),
        iat: examreg_kit::auth::unix_now(),
        exp: examreg_kit::auth::unix_now() + 600,
    });
    let recovery = app.proof_key.sign(&ProofClaims {
        iss: PROOF_ISSUER.into(),
        aud: PROOF_AUDIENCE.into(),
        sub: email.clone(),
        purpose: "recovery".into(),
        jti: uuid::Uuid::new_v4().to_string(),
        iat: examreg_kit::auth::unix_now(),
        exp: examreg_kit::auth::unix_now() + 600,
    });
    for bad in [forged.as_str(), recovery.as_str(), "not-a-proof"] {
        let err = app.notice(bad, Notice::AccountExists).await.unwrap_err();
        assert_eq!(reason_of(&err).reason, "invalid_email_proof");
    }
    let err = app.notice(&proof, Notice::Unspecified).await.unwrap_err();
    assert_eq!(reason_of(&err).reason, "invalid_notice");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(tk::mails_to(&email).await.len(), 2, "one code, one notice");
}

#[tokio::test]
async fn a_send_the_address_budget_refuses_costs_the_email_nothing() {
    let app = spawn_with(
        Limits {
            email_hourly: 2,
            ip_hourly: 1,
            ..limits()
        },
        &tk::smtp_addr(),
    )
    .await;
    let from = |email: &str, client_ip: &str| StartChallengeRequest {
        email: email.into(),
        purpose: Purpose::Registration.into(),
        locale: "ru".into(),
        client_ip: client_ip.into(),
        ..Default::default()
    };
    let (first, second) = (tk::unique_email(), tk::unique_email());
    app.start_request(from(&first, "10.0.0.1")).await.unwrap();
    // The address has spent its budget: the second email is refused for the address, and
    // that refusal is not counted against the email…
    for _ in 0..3 {
        let err = app
            .start_request(from(&second, "10.0.0.1"))
            .await
            .unwrap_err();
        assert_eq!(reason_of(&err).reason, "address_budget_exhausted");
    }
    // …so from clients the gateway vouches for (each pass a budget of one here), the email
    // still has both its sends, and no more.
    for pass in ["pass:01", "pass:02"] {
        app.start_request(from(&second, pass)).await.unwrap();
    }
    let err = app
        .start_request(from(&second, "pass:03"))
        .await
        .unwrap_err();
    assert_eq!(reason_of(&err).reason, "send_budget_exhausted");
}

#[tokio::test]
async fn the_retention_deletes_dead_letters_past_their_period_and_keeps_the_proof() {
    use examreg_proto::retention::v1::{
        ListRetentionRunsRequest, retention_service_client::RetentionServiceClient,
    };
    let (stuck, _smtp, mut config) = deferring(Duration::from_millis(200), 2).await;
    config.retain_dead_letters = Some(Duration::from_secs(2));
    config.sweep_every = Duration::from_secs(1);
    let app = spawn_config(config.clone()).await;
    app.start(&stuck).await;
    eventually(Duration::from_secs(20), "the dead letter", async || {
        dead_letters(&config).await.len() == 1
    })
    .await;
    eventually(
        Duration::from_secs(20),
        "the dead letter's deletion",
        async || dead_letters(&config).await.is_empty(),
    )
    .await;
    let dpo = tk::service_token(&app.identity_key, "dpo", &["audit:read"]);
    let report = RetentionServiceClient::new(
        examreg_kit::channel::lazy(&format!("https://{}", app.addr), &tk::tls()).unwrap(),
    )
    .list_retention_runs(
        examreg_kit::auth::with_bearer(ListRetentionRunsRequest::default(), &dpo).unwrap(),
    )
    .await
    .unwrap()
    .into_inner();
    assert_eq!(report.service, "verification");
    assert_eq!(
        report.rules[0].period,
        "2 seconds after the letter was given up"
    );
    let runs: Vec<(&str, i64)> = report
        .runs
        .iter()
        .map(|r| (r.rule.as_str(), r.deleted))
        .collect();
    assert_eq!(runs, [("dead_letters", 1)]);
    assert!(report.runs[0].ran_at.is_some());
}
