//! The system of record at identity: finding and listing accounts, the audit log, the change
//! feed, each with its scope, against a fresh database of the local stack's Postgres.

use crate::common::*;
use examreg_kit::{auth::with_bearer, errors::reason_of};
use examreg_proto::identity::v1::{
    self as pb, RegistrationEventKind as Kind, find_account_request::By,
};
use examreg_testkit as tk;
use std::{collections::HashSet, time::Duration};
use tokio_stream::StreamExt;
use tonic::{Code, Streaming};

/// A service token with these scopes, for a client of this id.
fn token(app: &TestApp, client: &str, scopes: &[&str]) -> String {
    tk::service_token(&app.key, client, scopes)
}

impl TestApp {
    async fn find(&self, by: By, purpose: &str, token: &str) -> Result<pb::Account, tonic::Status> {
        let request = pb::FindAccountRequest {
            by: Some(by),
            purpose: purpose.into(),
        };
        Ok(self
            .client
            .clone()
            .find_account(with_bearer(request, token).unwrap())
            .await?
            .into_inner()
            .account
            .unwrap())
    }

    /// An account's audit log, without the reads of the log itself (each page read adds one).
    async fn access_log(&self, account: &str) -> Vec<pb::AccessLogEntry> {
        let mut entries = self.log_of(account, "").await;
        entries.retain(|e| e.what != "audit_log");
        entries
    }

    /// The whole audit log of an account, or of an identifier's lookups, read two at a time.
    async fn log_of(&self, account: &str, identifier: &str) -> Vec<pb::AccessLogEntry> {
        let auditor = token(self, "dpo", &["audit:read"]);
        let mut entries = Vec::new();
        let mut page_token = String::new();
        loop {
            let request = pb::ListAccessLogRequest {
                account_id: account.into(),
                page_size: 2,
                page_token,
                identifier: identifier.into(),
            };
            let page = self
                .client
                .clone()
                .list_access_log(with_bearer(request, &auditor).unwrap())
                .await
                .unwrap()
                .into_inner();
            entries.extend(page.entries);
            if page.next_page_token.is_empty() {
                return entries;
            }
            page_token = page.next_page_token;
        }
    }

    /// A new account that completed its registration; its id.
    async fn completed(&self) -> String {
        let iin = self.registered().await;
        let login = self.login(&iin, STRONG).await.unwrap();
        let access = login.tokens.unwrap().access_token;
        let request = with_bearer(pb::CompleteRegistrationRequest {}, &access).unwrap();
        self.client
            .clone()
            .complete_registration(request)
            .await
            .unwrap();
        login.account_id
    }

    async fn account_id(&self, iin: &str) -> String {
        self.login(iin, STRONG).await.unwrap().account_id
    }

    async fn watch(
        &self,
        cursor: &str,
    ) -> Result<Streaming<pb::WatchRegistrationsResponse>, tonic::Status> {
        let follower = token(self, "seats", &["registrations:read"]);
        let request = pb::WatchRegistrationsRequest {
            cursor: cursor.into(),
        };
        Ok(self
            .client
            .clone()
            .watch_registrations(with_bearer(request, &follower).unwrap())
            .await?
            .into_inner())
    }

    async fn support(&self, account: &str, block: bool) {
        let support = token(self, "support-desk", &["support:write"]);
        if block {
            let request = pb::BlockAccountRequest {
                account_id: account.into(),
                reason: "document mismatch".into(),
            };
            let request = with_bearer(request, &support).unwrap();
            self.client.clone().block_account(request).await.unwrap();
        } else {
            let request = pb::UnblockAccountRequest {
                account_id: account.into(),
                reason: "checked at the desk".into(),
            };
            let request = with_bearer(request, &support).unwrap();
            self.client.clone().unblock_account(request).await.unwrap();
        }
    }
}

/// The next `n` events of a stream, each awaited for at most `within`.
async fn next_events(
    stream: &mut Streaming<pb::WatchRegistrationsResponse>,
    n: usize,
    within: Duration,
) -> Vec<pb::RegistrationEvent> {
    let mut events = Vec::new();
    while events.len() < n {
        let message = tokio::time::timeout(within, stream.next())
            .await
            .unwrap_or_else(|_| panic!("no event within {within:?}; got {events:?}"))
            .unwrap()
            .unwrap();
        if let Some(last) = message.events.last() {
            assert_eq!(
                message.cursor, last.cursor,
                "a message's cursor is its last event's"
            );
        }
        events.extend(message.events);
    }
    events
}

fn kinds(events: &[pb::RegistrationEvent]) -> Vec<(Kind, String)> {
    events
        .iter()
        .map(|e| (e.kind(), e.account_id.clone()))
        .collect()
}

#[tokio::test]
async fn an_account_is_found_by_iin_passport_or_email_with_its_terms_and_every_read_is_logged() {
    let app = spawn().await;
    let iin = valid_iin();
    let email = tk::unique_email();
    app.create(app.account(&iin, &email)).await.unwrap();
    let passport_email = tk::unique_email();
    let mut foreign = app.account(&valid_iin(), &passport_email);
    foreign.citizenship = "UZ".into();
    foreign.identifier = Some(pb::create_account_request::Identifier::PassportNumber(
        "fa 1234567".into(),
    ));
    app.create(foreign).await.unwrap();
    let desk = token(&app, "support-desk", &["accounts:lookup"]);

    let found = app
        .find(
            By::Iin(format!(" {iin} ")),
            "ticket 4711: applicant calls",
            &desk,
        )
        .await
        .unwrap();
    assert_eq!(
        found.identifier,
        Some(pb::account::Identifier::Iin(iin.clone()))
    );
    assert_eq!(found.email, email);
    assert_eq!(found.citizenship, "KZ");
    assert_eq!(found.status(), pb::AccountStatus::Active);
    let terms = found.terms.clone().unwrap();
    assert_eq!(terms.version, "2026-01");
    assert!(terms.accepted_at.is_some());
    assert!(found.created_at.is_some() && found.registered_at.is_none());
    // The same account by its email in any case; a passport by its spelling as typed.
    let by_email = app
        .find(By::Email(email.to_uppercase()), "ticket 4712", &desk)
        .await
        .unwrap();
    assert_eq!(by_email.account_id, found.account_id);
    let by_passport = app
        .find(By::PassportNumber("FA1234567".into()), "ticket 4713", &desk)
        .await
        .unwrap();
    assert_eq!(
        by_passport.identifier,
        Some(pb::account::Identifier::PassportNumber("FA1234567".into()))
    );
    assert_eq!(by_passport.citizenship, "UZ");

    // Unknown: not found. An IIN never finds a passport account, nor a bad value anything.
    let nobody = valid_iin();
    let err = app
        .find(By::Iin(nobody.clone()), "ticket 4714", &desk)
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "account_not_found");
    // The miss is on record all the same, under the IIN's SHA-256 only: the officer finds it
    // by the IIN, and the entry names no account. So are the lookups that found one, and the
    // officer's own reads of the log.
    let misses = app.log_of("", &nobody).await;
    let seen: Vec<(&str, &str, &str, &str)> = misses
        .iter()
        .map(|e| {
            (
                e.actor.as_str(),
                e.what.as_str(),
                e.note.as_str(),
                e.account_id.as_str(),
            )
        })
        .collect();
    assert_eq!(seen[0], ("support-desk", "account", "ticket 4714", ""));
    let hits = app.log_of("", &email.to_uppercase()).await;
    assert_eq!(hits[0].note, "ticket 4712");
    assert_eq!(hits[0].account_id, found.account_id);
    let pool = sqlx::PgPool::connect(app.database.expose()).await.unwrap();
    let clear: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE subject = $1")
        .bind(&nobody)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(clear, 0, "the log keeps no identifier in clear");
    // Each read of the log is recorded as it is read: the next read shows it.
    app.log_of(&found.account_id, "").await;
    let whole = app.log_of(&found.account_id, "").await;
    assert!(
        whole
            .iter()
            .any(|e| e.actor == "dpo" && e.what == "audit_log"),
        "{whole:?}"
    );
    // The recovery's lookup (an IIN turned into the email its code goes to) too, found or not.
    let gateway = token(&app, "gateway", &["accounts:recover"]);
    let lookup = |by: pb::lookup_recovery_request::By| {
        with_bearer(pb::LookupRecoveryRequest { by: Some(by) }, &gateway).unwrap()
    };
    app.client
        .clone()
        .lookup_recovery(lookup(pb::lookup_recovery_request::By::Login(iin.clone())))
        .await
        .unwrap();
    let stranger = tk::unique_email();
    let err = app
        .client
        .clone()
        .lookup_recovery(lookup(pb::lookup_recovery_request::By::Email(
            stranger.clone(),
        )))
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "account_not_found");
    let recovered = app.access_log(&found.account_id).await;
    assert!(
        recovered
            .iter()
            .any(|e| e.actor == "gateway" && e.what == "recovery_email"),
        "{recovered:?}"
    );
    let missed = app.log_of("", &stranger).await;
    assert_eq!(
        (
            missed[0].actor.as_str(),
            missed[0].what.as_str(),
            missed[0].account_id.as_str()
        ),
        ("gateway", "recovery_email", "")
    );
    let err = app
        .find(By::Iin("123456789012".into()), "ticket 4715", &desk)
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "invalid_iin");
    let err = app
        .find(By::Iin(iin.clone()), "  ", &desk)
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "purpose_required");
    let err = app
        .find(By::Iin(iin.clone()), &"x".repeat(501), &desk)
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "purpose_required");
    // Without the scope, and with the applicant's own token: refused.
    let reader = token(&app, "seats", &["accounts:read", "registrations:read"]);
    let err = app
        .find(By::Iin(iin.clone()), "x", &reader)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let own = app.login(&iin, STRONG).await.unwrap();
    let own_token = own.tokens.unwrap().access_token;
    let err = app
        .find(By::Iin(iin.clone()), "x", &own_token)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    // A service's GetAccount needs a purpose and is logged; the applicant's own is not.
    let get = |token: &str, purpose: &str| {
        with_bearer(
            pb::GetAccountRequest {
                account_id: found.account_id.clone(),
                purpose: purpose.into(),
            },
            token,
        )
        .unwrap()
    };
    let err = app
        .client
        .clone()
        .get_account(get(&reader, ""))
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "purpose_required");
    let read = app
        .client
        .clone()
        .get_account(get(&reader, "seat assignment"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read.account.unwrap().terms.unwrap().version, "2026-01");
    app.client
        .clone()
        .get_account(get(&own_token, ""))
        .await
        .unwrap();

    let log = app.access_log(&found.account_id).await;
    let seen: Vec<(&str, &str, &str, &str)> = log
        .iter()
        .map(|e| {
            (
                e.actor.as_str(),
                e.kind.as_str(),
                e.what.as_str(),
                e.note.as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (
                "support-desk",
                "read",
                "account",
                "ticket 4711: applicant calls"
            ),
            ("support-desk", "read", "account", "ticket 4712"),
            (
                "gateway",
                "read",
                "recovery_email",
                "a recovery the applicant asked for"
            ),
            ("seats", "read", "account", "seat assignment"),
        ]
    );
    assert!(log.iter().all(|e| e.at.is_some()));
    // Only the data-protection officer's scope reads the log.
    let request = pb::ListAccessLogRequest {
        account_id: found.account_id.clone(),
        ..Default::default()
    };
    let err = app
        .client
        .clone()
        .list_access_log(with_bearer(request, &desk).unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn support_actions_are_in_the_audit_log_with_the_operator_and_the_reason() {
    let app = spawn().await;
    let iin = app.registered().await;
    let account = app.account_id(&iin).await;
    app.support(&account, true).await;
    app.support(&account, false).await;
    let eraser = token(&app, "operator", &["accounts:delete"]);
    let erase = |reason: &str| {
        let request = pb::DeleteAccountRequest {
            account_id: account.clone(),
            reason: reason.into(),
        };
        with_bearer(request, &eraser).unwrap()
    };
    let err = app
        .client
        .clone()
        .delete_account(erase(" "))
        .await
        .unwrap_err();
    assert_eq!(reason_of(&err).reason, "reason_required");
    // The services that erase their parts are not running here: the erasure is recorded all
    // the same, before they are called (the suite's tests see it finished).
    let err = app
        .client
        .clone()
        .delete_account(erase("subject request 12"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    // Kept after the erasure, naming nobody but by the id.
    let log = app.access_log(&account).await;
    let seen: Vec<(&str, &str, &str)> = log
        .iter()
        .map(|e| (e.actor.as_str(), e.kind.as_str(), e.note.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("support-desk", "block", "document mismatch"),
            ("support-desk", "unblock", "checked at the desk"),
            ("operator", "erase", "subject request 12"),
        ]
    );
}

#[tokio::test]
async fn a_reopening_is_recorded_before_the_owners_act_and_holds_the_completion_until_they_have() {
    // Nothing answers at the owners' addresses.
    let app = spawn_with(|config| {
        config.biometrics_url = format!("https://{}", tk::free_addr());
        config.profile_url = format!("https://{}", tk::free_addr());
        config.verification_url = format!("https://{}", tk::free_addr());
    })
    .await;
    let iin = app.registered().await;
    let login = app.login(&iin, STRONG).await.unwrap();
    let (account, access) = (login.account_id, login.tokens.unwrap().access_token);
    let complete = || with_bearer(pb::CompleteRegistrationRequest {}, &access).unwrap();
    app.client
        .clone()
        .complete_registration(complete())
        .await
        .unwrap();
    let mut feed = app.watch("").await.unwrap();
    next_events(&mut feed, 2, Duration::from_secs(5)).await;

    let support = token(&app, "support-desk", &["support:write"]);
    let request = pb::ReopenRegistrationRequest {
        account_id: account.clone(),
        steps: vec!["face".into()],
        reason: "the selfie shows two people".into(),
        ..Default::default()
    };
    let err = app
        .client
        .clone()
        .reopen_registration(with_bearer(request, &support).unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    let log = app.access_log(&account).await;
    let last = log.last().unwrap();
    assert_eq!(
        (last.actor.as_str(), last.kind.as_str(), last.what.as_str()),
        ("support-desk", "reopen", "face")
    );
    let events = next_events(&mut feed, 1, Duration::from_secs(5)).await;
    assert_eq!(events[0].kind(), Kind::RegistrationReopened);
    // The selfie is not reopened at biometrics yet: completing now would skip it.
    let err = app
        .client
        .clone()
        .complete_registration(complete())
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason_of(&err).reason.as_str()),
        (Code::Unavailable, "change_pending")
    );
    assert!(reason_of(&err).retry_after.is_some());
}

#[tokio::test]
async fn the_retention_deletes_ended_sessions_old_audit_entries_and_feed_events_and_keeps_the_proof()
 {
    use examreg_proto::retention::v1::{
        ListRetentionRunsRequest, retention_service_client::RetentionServiceClient,
    };
    let app = spawn_with(|config| {
        config.retain_sessions = Some(Duration::from_secs(1));
        config.retain_audit = Some(Duration::from_secs(2));
        config.feed_retention = Duration::from_secs(2);
        config.sweep_every = Duration::from_secs(1);
    })
    .await;
    let iin = app.registered().await;
    let login = app.login(&iin, STRONG).await.unwrap();
    let account = login.account_id.clone();
    let access = login.tokens.unwrap().access_token;
    app.client
        .clone()
        .logout(with_bearer(pb::LogoutRequest {}, &access).unwrap())
        .await
        .unwrap();
    app.support(&account, true).await;
    let pool = sqlx::PgPool::connect(app.database.expose()).await.unwrap();
    let left = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let gone = async {
        loop {
            let sessions = left("SELECT count(*) FROM sessions").await;
            let audit = left("SELECT count(*) FROM audit_log").await;
            // The newest event stays, so the feed's head remains visible.
            let events = left("SELECT count(*) FROM registration_events").await;
            if sessions + audit == 0 && events == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), gone)
        .await
        .expect("the retention deleted them");
    // The account itself is not the rules' business (it was active a moment ago).
    assert_eq!(left("SELECT count(*) FROM accounts").await, 1);

    // The proof: each rule's runs, with how many, for the data-protection officer only.
    let mut evidence = RetentionServiceClient::new(
        examreg_kit::channel::lazy(&format!("https://{}", app.addr()), &tk::tls()).unwrap(),
    );
    let ask = |token: &str| with_bearer(ListRetentionRunsRequest::default(), token).unwrap();
    let err = evidence
        .list_retention_runs(ask(&token(&app, "support-desk", &["support:write"])))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let report = evidence
        .list_retention_runs(ask(&token(&app, "dpo", &["audit:read"])))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(report.service, "identity");
    let periods: Vec<(&str, &str)> = report
        .rules
        .iter()
        .map(|r| (r.name.as_str(), r.period.as_str()))
        .collect();
    assert!(
        periods.contains(&("sessions", "1 second after the session ended")),
        "{periods:?}"
    );
    assert!(periods.contains(&("exam_cycle", "off")), "{periods:?}");
    let deleted = |rule: &str| -> i64 {
        report
            .runs
            .iter()
            .filter(|r| r.rule == rule)
            .map(|r| r.deleted)
            .sum()
    };
    assert_eq!(deleted("sessions"), 1);
    assert_eq!(deleted("audit_log"), 1, "the block's entry");
    assert!(deleted("feed_events") >= 1);
    assert!(
        report
            .runs
            .iter()
            .all(|r| r.subjects.is_empty() && r.ran_at.is_some())
    );
}

#[tokio::test]
async fn pages_hold_every_account_once_while_accounts_are_created() {
    let app = spawn().await;
    let mut before = HashSet::new();
    for _ in 0..12 {
        before.insert(app.account_id(&app.registered().await).await);
    }
    let lister = token(&app, "seats", &["registrations:read"]);
    let page = |page_token: String, page_size: i32| {
        with_bearer(
            pb::ListAccountsRequest {
                page_size,
                page_token,
                purpose: "seat assignment".into(),
                ..Default::default()
            },
            &lister,
        )
        .unwrap()
    };
    // Accounts arrive while the pages are read.
    let creating = {
        let client = app.client.clone();
        let requests: Vec<_> = (0..10)
            .map(|_| app.req(app.account(&valid_iin(), &tk::unique_email())))
            .collect();
        tokio::spawn(async move {
            let mut created = Vec::new();
            for request in requests {
                created.push(
                    client
                        .clone()
                        .create_account(request)
                        .await
                        .unwrap()
                        .into_inner()
                        .account_id,
                );
            }
            created
        })
    };
    let mut seen = Vec::new();
    let mut page_token = String::new();
    loop {
        let answer = app
            .client
            .clone()
            .list_accounts(page(page_token, 5))
            .await
            .unwrap()
            .into_inner();
        assert!(answer.accounts.len() <= 5);
        seen.extend(answer.accounts.into_iter().map(|a| a.account_id));
        if answer.next_page_token.is_empty() {
            break;
        }
        page_token = answer.next_page_token;
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let created = creating.await.unwrap();
    let unique: HashSet<_> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "an account was listed twice");
    assert!(before.is_subset(&unique), "an account was missed");
    let all: HashSet<_> = before.iter().chain(&created).cloned().collect();
    assert!(unique.is_subset(&all));

    // Bad input is refused with its field; page sizes are bounded.
    let err = app
        .client
        .clone()
        .list_accounts(page("not-a-token".into(), 5))
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "invalid_page_token");
    let all_at_once = app
        .client
        .clone()
        .list_accounts(page(String::new(), 100_000))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all_at_once.accounts.len(), all.len());
    let request = pb::ListAccountsRequest {
        purpose: "x".into(),
        statuses: vec![42],
        ..Default::default()
    };
    let err = app
        .client
        .clone()
        .list_accounts(with_bearer(request, &lister).unwrap())
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "invalid_status");
    let request = pb::ListAccountsRequest::default();
    let err = app
        .client
        .clone()
        .list_accounts(with_bearer(request, &lister).unwrap())
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "purpose_required");
    let reader = token(&app, "seats", &["accounts:read", "accounts:lookup"]);
    let request = pb::ListAccountsRequest {
        purpose: "x".into(),
        ..Default::default()
    };
    let err = app
        .client
        .clone()
        .list_accounts(with_bearer(request, &reader).unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn registered_accounts_are_listed_by_status_and_time_and_each_listing_is_logged() {
    let app = spawn().await;
    let pending = app.account_id(&app.registered().await).await;
    let start = examreg_proto::convert::timestamp(chrono::Utc::now());
    let done = app.completed().await;
    let lister = token(&app, "seats", &["registrations:read"]);
    let list = |statuses: Vec<i32>, from: Option<prost_types::Timestamp>| {
        with_bearer(
            pb::ListAccountsRequest {
                statuses,
                registered_from: from,
                purpose: "seat assignment".into(),
                ..Default::default()
            },
            &lister,
        )
        .unwrap()
    };
    let ids = |answer: pb::ListAccountsResponse| -> Vec<String> {
        answer.accounts.into_iter().map(|a| a.account_id).collect()
    };
    let registered = app
        .client
        .clone()
        .list_accounts(list(vec![pb::AccountStatus::Registered as i32], None))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(registered), std::slice::from_ref(&done));
    let since = app
        .client
        .clone()
        .list_accounts(list(vec![], Some(start)))
        .await
        .unwrap()
        .into_inner();
    assert!(since.accounts[0].registered_at.is_some());
    assert_eq!(ids(since), std::slice::from_ref(&done));
    let everyone = app
        .client
        .clone()
        .list_accounts(list(vec![], None))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(everyone), [pending.clone(), done.clone()]);
    assert_eq!(app.access_log(&done).await.len(), 3);
    assert_eq!(app.access_log(&pending).await.len(), 1);
}

#[tokio::test]
async fn the_feed_tells_each_change_at_once_and_resumes_from_a_cursor_across_a_restart() {
    let app = spawn().await;
    let mut feed = app.watch("").await.unwrap();
    let iin = app.registered().await;
    let account = app.account_id(&iin).await;
    // The stream's first read; the promise of a second is for the completion below.
    let created = next_events(&mut feed, 1, Duration::from_secs(5)).await;
    assert_eq!(kinds(&created), [(Kind::AccountCreated, account.clone())]);
    // The completion, within a second of its commit.
    let access = app
        .login(&iin, STRONG)
        .await
        .unwrap()
        .tokens
        .unwrap()
        .access_token;
    app.client
        .clone()
        .complete_registration(with_bearer(pb::CompleteRegistrationRequest {}, &access).unwrap())
        .await
        .unwrap();
    let completed = next_events(&mut feed, 1, Duration::from_secs(1)).await;
    assert_eq!(
        kinds(&completed),
        [(Kind::RegistrationCompleted, account.clone())]
    );
    assert!(completed[0].occurred_at.is_some());
    let cursor = completed[0].cursor.clone();
    // A repeated completion is no new event.
    app.client
        .clone()
        .complete_registration(with_bearer(pb::CompleteRegistrationRequest {}, &access).unwrap())
        .await
        .unwrap();

    // The follower goes away; changes go on; it resumes from its cursor and misses nothing.
    drop(feed);
    app.support(&account, true).await;
    app.support(&account, true).await;
    let other_iin = app.registered().await;
    let other = app.account_id(&other_iin).await;
    let mut feed = app.watch(&cursor).await.unwrap();
    let missed = next_events(&mut feed, 2, Duration::from_secs(5)).await;
    assert_eq!(
        kinds(&missed),
        [
            (Kind::AccountBlocked, account.clone()),
            (Kind::AccountCreated, other.clone())
        ]
    );
    let cursor = missed[1].cursor.clone();

    // Identity restarts: the stream ends, and the follower resumes on the new one.
    let app = app.restart(|_| {}).await;
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(_)) = feed.next().await {}
    })
    .await;
    assert!(ended.is_ok(), "the stream outlived the restart");
    app.support(&account, false).await;
    let mut feed = app.watch(&cursor).await.unwrap();
    let after = next_events(&mut feed, 1, Duration::from_secs(5)).await;
    assert_eq!(kinds(&after), [(Kind::AccountUnblocked, account.clone())]);
    // From the start, everything in order, once.
    let mut all = app.watch("").await.unwrap();
    let everything = next_events(&mut all, 5, Duration::from_secs(5)).await;
    let cursors: Vec<i64> = everything
        .iter()
        .map(|e| e.cursor.parse().unwrap())
        .collect();
    assert_eq!(cursors, [1, 2, 3, 4, 5]);

    // A quiet feed still speaks: an empty message with the cursor.
    let quiet = tokio::time::timeout(Duration::from_secs(8), all.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(quiet.events.is_empty());
    assert_eq!(quiet.cursor, "5");

    // Cursors the feed never gave are refused; so are followers without the scope.
    for bad in ["6", "-1", "abc"] {
        let err = app.watch(bad).await.unwrap_err();
        assert_eq!(reason(&err), "invalid_cursor", "{bad}");
    }
    let request = pb::WatchRegistrationsRequest::default();
    let reader = token(&app, "seats", &["accounts:read"]);
    let err = app
        .client
        .clone()
        .watch_registrations(with_bearer(request.clone(), &reader).unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let own = app
        .login(&other_iin, STRONG)
        .await
        .unwrap()
        .tokens
        .unwrap()
        .access_token;
    let err = app
        .client
        .clone()
        .watch_registrations(with_bearer(request, &own).unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    // Past the retention, the events go (the newest stays to mark the position), and a cursor
    // before them is told so.
    let app = app
        .restart(|c| {
            c.feed_retention = Duration::ZERO;
            // The first run was the earlier replica's, at its start; with a second's period
            // this one runs the next.
            c.sweep_every = Duration::from_secs(1);
        })
        .await;
    let swept = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match app.watch("1").await {
                Err(err) if reason(&err) == "cursor_expired" => return,
                Err(err) => panic!("{err:?}"),
                Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    })
    .await;
    assert!(swept.is_ok(), "the old events were not swept");
    let mut kept = app.watch("").await.unwrap();
    let newest = next_events(&mut kept, 1, Duration::from_secs(5)).await;
    assert_eq!(newest[0].cursor, "5");
    assert!(app.watch("5").await.is_ok());
}

#[tokio::test]
async fn a_released_identifier_lets_its_holder_register_and_the_squatter_keeps_only_a_record() {
    let app = spawn().await;
    let iin = valid_iin();
    app.create(app.account(&iin, &tk::unique_email()))
        .await
        .unwrap();
    let squatter = app.login(&iin, STRONG).await.unwrap();
    let holder_email = tk::unique_email();
    let err = app
        .create(app.account(&iin, &holder_email))
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "already_registered");
    let mut feed = app.watch("1").await.unwrap();

    let support = token(&app, "support-desk", &["support:write"]);
    let release = |token: &str, reason: &str| {
        with_bearer(
            pb::ReleaseIdentifierRequest {
                account_id: squatter.account_id.clone(),
                reason: reason.into(),
            },
            token,
        )
        .unwrap()
    };
    let err = app
        .client
        .clone()
        .release_identifier(release(&support, ""))
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "reason_required");
    let lookup = token(&app, "support-desk", &["accounts:lookup"]);
    let err = app
        .client
        .clone()
        .release_identifier(release(&lookup, "x"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let answer = app
        .client
        .clone()
        .release_identifier(release(&support, "holder showed ID card 123 at the desk"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.revoked_sessions, 1);
    app.refused_within_a_second(&squatter.tokens.unwrap().access_token)
        .await;
    assert_eq!(
        reason(&app.login(&iin, STRONG).await.unwrap_err()),
        "invalid_credentials"
    );

    // The holder registers with the IIN (and a new proof), and the IIN finds the holder.
    let holder = app.create(app.account(&iin, &holder_email)).await.unwrap();
    app.login(&iin, STRONG).await.unwrap();
    let found = app
        .find(By::Iin(iin.clone()), "ticket 77", &lookup)
        .await
        .unwrap();
    assert_eq!(found.account_id, holder);
    assert!(!found.identifier_released);
    // The squatter's record keeps what it held, blocked, and cannot be unblocked into it.
    let reader = token(&app, "support-desk", &["accounts:read"]);
    let record = app
        .client
        .clone()
        .get_account(
            with_bearer(
                pb::GetAccountRequest {
                    account_id: squatter.account_id.clone(),
                    purpose: "ticket 77".into(),
                },
                &reader,
            )
            .unwrap(),
        )
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap();
    assert_eq!(
        record.identifier,
        Some(pb::account::Identifier::Iin(iin.clone()))
    );
    assert!(record.identifier_released);
    assert_eq!(record.status(), pb::AccountStatus::Blocked);
    let request = pb::UnblockAccountRequest {
        account_id: squatter.account_id.clone(),
        reason: "by mistake".into(),
    };
    let err = app
        .client
        .clone()
        .unblock_account(with_bearer(request, &support).unwrap())
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "identifier_released");
    // Releasing again changes nothing but the log.
    app.client
        .clone()
        .release_identifier(release(&support, "again"))
        .await
        .unwrap();
    let events = next_events(&mut feed, 2, Duration::from_secs(5)).await;
    assert_eq!(
        kinds(&events),
        [
            (Kind::IdentifierReleased, squatter.account_id.clone()),
            (Kind::AccountCreated, holder.clone())
        ]
    );
    let log = app.access_log(&squatter.account_id).await;
    let actions: Vec<(&str, &str, &str)> = log
        .iter()
        .filter(|e| e.kind != "read")
        .map(|e| (e.kind.as_str(), e.what.as_str(), e.note.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            (
                "release_identifier",
                "iin",
                "holder showed ID card 123 at the desk"
            ),
            ("release_identifier", "", "again"),
        ]
    );
}

#[tokio::test]
async fn unlocking_a_login_forgets_its_failures() {
    let app = spawn().await;
    let iin = app.registered().await;
    let account = app.account_id(&iin).await;
    for _ in 0..5 {
        let _ = app.login(&iin, "wrong-password-1").await;
    }
    let err = app.login(&iin, STRONG).await.unwrap_err();
    assert_eq!(reason(&err), "too_many_attempts");
    let support = token(&app, "support-desk", &["support:write"]);
    let unlock = |account: &str| {
        with_bearer(
            pb::UnlockLoginRequest {
                account_id: account.into(),
                reason: "applicant identified by phone".into(),
            },
            &support,
        )
        .unwrap()
    };
    let answer = app
        .client
        .clone()
        .unlock_login(unlock(&account))
        .await
        .unwrap();
    assert!(answer.into_inner().was_locked);
    app.login(&iin, STRONG).await.unwrap();
    let again = app
        .client
        .clone()
        .unlock_login(unlock(&account))
        .await
        .unwrap();
    assert!(!again.into_inner().was_locked);
    let err = app
        .client
        .clone()
        .unlock_login(unlock(&uuid::Uuid::new_v4().to_string()))
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "account_not_found");
    let log = app.access_log(&account).await;
    assert_eq!(
        log.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        ["unlock_login", "unlock_login"]
    );
}

/// Every call of the system of record, refused (PERMISSION_DENIED) to a service token holding
/// every scope but its own, and to an applicant's own token.
#[tokio::test]
async fn each_call_is_refused_without_its_scope_and_to_an_applicant() {
    use futures::{FutureExt, future::BoxFuture};
    type Call = Box<dyn Fn(String) -> BoxFuture<'static, Result<(), tonic::Status>>>;
    let app = spawn().await;
    let iin = app.registered().await;
    let account = app.account_id(&iin).await;
    let applicant = app
        .login(&iin, STRONG)
        .await
        .unwrap()
        .tokens
        .unwrap()
        .access_token;
    const SCOPES: [&str; 6] = [
        "accounts:lookup",
        "accounts:read",
        "registrations:read",
        "support:write",
        "audit:read",
        "accounts:delete",
    ];
    let client = app.client.clone();
    let call = |f: fn(
        IdentityClient,
        String,
        String,
    ) -> BoxFuture<'static, Result<(), tonic::Status>>|
     -> Call {
        let (client, account) = (client.clone(), account.clone());
        Box::new(move |token| f(client.clone(), account.clone(), token))
    };
    type IdentityClient =
        examreg_proto::identity::v1::identity_service_client::IdentityServiceClient<
            tonic::transport::Channel,
        >;
    let calls: Vec<(&str, &str, Call)> = vec![
        (
            "FindAccount",
            "accounts:lookup",
            call(|mut c, _, t| {
                async move {
                    let r = pb::FindAccountRequest {
                        by: Some(By::Email("a@example.kz".into())),
                        purpose: "x".into(),
                    };
                    c.find_account(with_bearer(r, &t).unwrap()).await.map(drop)
                }
                .boxed()
            }),
        ),
        (
            "ListAccounts",
            "registrations:read",
            call(|mut c, _, t| {
                async move {
                    let r = pb::ListAccountsRequest {
                        purpose: "x".into(),
                        ..Default::default()
                    };
                    c.list_accounts(with_bearer(r, &t).unwrap()).await.map(drop)
                }
                .boxed()
            }),
        ),
        (
            "WatchRegistrations",
            "registrations:read",
            call(|mut c, _, t| {
                async move {
                    let r = pb::WatchRegistrationsRequest::default();
                    c.watch_registrations(with_bearer(r, &t).unwrap())
                        .await
                        .map(drop)
                }
                .boxed()
            }),
        ),
        (
            "UnlockLogin",
            "support:write",
            call(|mut c, a, t| {
                async move {
                    let r = pb::UnlockLoginRequest {
                        account_id: a,
                        reason: "x".into(),
                    };
                    c.unlock_login(with_bearer(r, &t).unwrap()).await.map(drop)
                }
                .boxed()
            }),
        ),
        (
            "BlockAccount",
            "support:write",
            call(|mut c, a, t| {
                async move {
                    let r = pb::BlockAccountRequest {
                        account_id: a,
                        reason: "x".into(),
                    };
                    c.block_account(with_bearer(r, &t).unwrap()).await.map(drop)
                }
                .boxed()
            }),
        ),
        (
            "UnblockAccount",
            "support:write",
            call(|mut c, a, t| {
                async move {
                    let r = pb::UnblockAccountRequest {
                        account_id: a,
                        reason: "x".into(),
                    };
                    c.unblock_account(with_bearer(r, &t).unwrap())
                        .await
                        .map(drop)
                }
                .boxed()
            }),
        ),
        (
            "ReopenRegistration",
            "support:write",
            call(|mut c, a, t| {
                async move {
                    let r = pb::ReopenRegistrationRequest {
                        account_id: a,
                        steps: vec!["face".into()],
                        reason: "x".into(),
                        ..Default::default()
                    };
                    c.reopen_registration(with_bearer(r, &t).unwrap())
                        .await
                        .map(drop)
                }
                .boxed()
            }),
        ),
        (
            "ReleaseIdentifier",
            "support:write",
            call(|mut c, a, t| {
                async move {
                    let r = pb::ReleaseIdentifierRequest {
                        account_id: a,
                        reason: "x".into(),
                    };
                    c.release_identifier(with_bearer(r, &t).unwrap())
                        .await
                        .map(drop)
                }
                .boxed()
            }),
        ),
        (
            "ListAccessLog",
            "audit:read",
            call(|mut c, a, t| {
                async move {
                    let r = pb::ListAccessLogRequest {
                        account_id: a,
                        ..Default::default()
                    };
                    c.list_access_log(with_bearer(r, &t).unwrap())
                        .await
                        .map(drop)
                }
                .boxed()
            }),
        ),
    ];
    for (name, scope, call) in &calls {
        let others: Vec<&str> = SCOPES.iter().copied().filter(|s| s != scope).collect();
        let wrong = token(&app, "seats", &others);
        for (who, token) in [
            ("a token without the scope", wrong),
            ("the applicant", applicant.clone()),
        ] {
            let err = call(token).await.expect_err(name);
            assert_eq!(
                err.code(),
                Code::PermissionDenied,
                "{name} for {who}: {err:?}"
            );
        }
    }
    // GetAccount answers an applicant's token with the applicant's own account (whatever
    // account it names); a service needs the scope.
    let others: Vec<&str> = SCOPES
        .iter()
        .copied()
        .filter(|s| *s != "accounts:read")
        .collect();
    let request = pb::GetAccountRequest {
        account_id: account.clone(),
        purpose: "x".into(),
    };
    let err = app
        .client
        .clone()
        .get_account(with_bearer(request, &token(&app, "seats", &others)).unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // Nothing was changed by the refused calls.
    assert!(app.login(&iin, STRONG).await.is_ok());
    assert!(app.access_log(&account).await.is_empty());
}

#[tokio::test]
async fn concurrent_changes_reach_the_feed_gap_free_each_once() {
    let app = spawn().await;
    let mut feed = app.watch("").await.unwrap();
    let requests: Vec<_> = (0..16)
        .map(|_| app.req(app.account(&valid_iin(), &tk::unique_email())))
        .collect();
    let created = futures::future::join_all(requests.into_iter().map(|request| {
        let mut client = app.client.clone();
        async move {
            client
                .create_account(request)
                .await
                .unwrap()
                .into_inner()
                .account_id
        }
    }))
    .await;
    let events = next_events(&mut feed, created.len(), Duration::from_secs(10)).await;
    let cursors: Vec<i64> = events.iter().map(|e| e.cursor.parse().unwrap()).collect();
    assert_eq!(
        cursors,
        (1..=16).collect::<Vec<i64>>(),
        "gap-free, in order"
    );
    let accounts: HashSet<String> = events.iter().map(|e| e.account_id.clone()).collect();
    assert_eq!(accounts, created.into_iter().collect::<HashSet<_>>());
}

/// How many times the feed read Postgres, by its streams or its poller, in this process.
fn feed_reads(by: &str) -> f64 {
    examreg_kit::metrics::recorder()
        .render()
        .lines()
        .filter(|l| {
            l.starts_with("identity_feed_reads_total{") && l.contains(&format!("by=\"{by}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn idle_streams_cost_no_query_each_and_an_event_still_reaches_every_one() {
    let app = spawn().await;
    let mut streams = Vec::new();
    for _ in 0..40 {
        streams.push(app.watch("").await.unwrap());
    }
    // Forty streams with nothing to read, for three seconds: the replica's poller reads the
    // head about once a second, the streams read nothing.
    let (stream_reads, poller_reads) = (feed_reads("stream"), feed_reads("poller"));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(feed_reads("stream"), stream_reads, "an idle stream queried");
    let polled = feed_reads("poller") - poller_reads;
    assert!((1.0..=5.0).contains(&polled), "{polled} head reads in 3 s");
    // One registration: every stream is woken and gets it.
    let account = app.completed().await;
    for stream in &mut streams {
        let events = next_events(stream, 2, Duration::from_secs(5)).await;
        assert!(events.iter().all(|e| e.account_id == account), "{events:?}");
    }
}
