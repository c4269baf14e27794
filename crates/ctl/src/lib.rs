//! `examreg-ctl`: the exam center staff's command line for the internal gRPC API. It trades a
//! service client's id and secret (read from a file) for a service token at identity, then
//! calls the service that owns the data: identity for accounts, the change feed, the support
//! actions and its audit log; profile for profiles and statistics; biometrics for the photos'
//! status, its access log and the document review queue (list, show, decide); every service
//! for what it deletes by time (`retention report`). Tables for people, `--json` for scripts.

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use examreg_kit::{
    auth::{on_behalf_of, with_bearer},
    errors::reason_of,
};
use examreg_proto::{
    biometrics::v1::{self as bio, biometrics_service_client::BiometricsServiceClient},
    convert::{datetime, timestamp},
    identity::v1::{self as id, identity_service_client::IdentityServiceClient},
    profile::v1::{self as prof, profile_service_client::ProfileServiceClient},
    retention::v1::{self as ret, retention_service_client::RetentionServiceClient},
};
use serde_json::{Value, json};
use std::{io::Write, path::PathBuf, time::Duration};
use tokio_stream::StreamExt;
use tonic::transport::Channel;

#[derive(Parser, Debug)]
#[command(
    name = "examreg-ctl",
    about = "The exam center's command line for examreg's internal API"
)]
pub struct Cli {
    /// identity's gRPC address.
    #[arg(
        long,
        env = "IDENTITY_URL",
        default_value = "http://127.0.0.1:50051",
        global = true
    )]
    identity: String,
    /// profile's gRPC address.
    #[arg(
        long,
        env = "PROFILE_URL",
        default_value = "http://127.0.0.1:50054",
        global = true
    )]
    profile: String,
    /// biometrics' gRPC address.
    #[arg(
        long,
        env = "BIOMETRICS_URL",
        default_value = "http://127.0.0.1:50053",
        global = true
    )]
    biometrics: String,
    /// verification's gRPC address.
    #[arg(
        long,
        env = "VERIFICATION_URL",
        default_value = "http://127.0.0.1:50052",
        global = true
    )]
    verification: String,
    /// The service client this is (it needs the scopes of the commands used).
    #[arg(
        long,
        env = "EXAMREG_CLIENT_ID",
        default_value = "operator",
        global = true
    )]
    client_id: String,
    /// A file holding the client's secret (never pass a secret on the command line).
    #[arg(long, env = "EXAMREG_CLIENT_SECRET_FILE", global = true)]
    secret_file: Option<PathBuf>,
    /// The person at the keyboard (a staff login): a staff client's calls must name them, and
    /// the audit logs record `client/person`.
    #[arg(long, env = "EXAMREG_ON_BEHALF_OF", global = true)]
    on_behalf_of: Option<String>,
    /// JSON instead of tables (one object per line for `watch`).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Finds an account by IIN, passport number or email (scope accounts:lookup).
    Find {
        #[arg(long, conflicts_with_all = ["passport", "email"], required_unless_present_any = ["passport", "email"])]
        iin: Option<String>,
        #[arg(long, conflicts_with = "email")]
        passport: Option<String>,
        #[arg(long)]
        email: Option<String>,
        /// Why (recorded in the access log).
        #[arg(long)]
        purpose: String,
    },
    /// Lists accounts, every page (scope registrations:read).
    List {
        /// Only these statuses (active, registered, blocked).
        #[arg(long, value_delimiter = ',')]
        status: Vec<Status>,
        /// Only registered at or after this time (RFC 3339).
        #[arg(long)]
        from: Option<String>,
        /// Only registered before this time (RFC 3339).
        #[arg(long)]
        before: Option<String>,
        #[arg(long)]
        purpose: String,
    },
    /// Follows the change feed from a cursor (scope registrations:read), reconnecting and
    /// resuming after a disconnect.
    Watch {
        /// The last cursor processed; the oldest event kept when absent.
        #[arg(long)]
        from: Option<String>,
        /// Stop after this many events.
        #[arg(long)]
        count: Option<usize>,
    },
    /// Lifts the lockout of an account's login (scope support:write).
    Unlock {
        account: String,
        #[arg(long)]
        reason: String,
    },
    /// Blocks an account and ends its sessions (scope support:write).
    Block {
        account: String,
        #[arg(long)]
        reason: String,
    },
    /// Lifts a block (scope support:write).
    Unblock {
        account: String,
        #[arg(long)]
        reason: String,
    },
    /// Reopens steps of a registration for the applicant to redo (scope support:write).
    Reopen {
        account: String,
        /// face, document_front, document_back, consent, name, details, education.
        #[arg(long, value_delimiter = ',', required = true)]
        steps: Vec<String>,
        #[arg(long)]
        reason: String,
    },
    /// Frees a squatted IIN or passport number for its real holder; the account holding it is
    /// blocked (scope support:write).
    Release {
        account: String,
        #[arg(long)]
        reason: String,
    },
    /// A person's access log across identity, profile and biometrics (scope audit:read).
    AccessLog { account: String },
    /// Who looked up an IIN, a passport number or an email, and whether it found an account
    /// (scope audit:read; the log keeps only the SHA-256 of what was looked up).
    Lookups { identifier: String },
    /// One person's data as JSON, for a subject access request: the account and its sessions,
    /// the profile, the photos' records, the consent and where it was given, what the
    /// document's zone says, the reviews, the access logs, and what was deleted and when
    /// (scopes accounts:read, profile:read, audit:read; the reads are logged with the
    /// purpose).
    Export {
        account: String,
        #[arg(long, default_value = "subject access request")]
        purpose: String,
    },
    /// The document review queue, every page, oldest first: open reviews, or all with `--all`
    /// (scope review:write).
    Reviews {
        #[arg(long)]
        all: bool,
    },
    /// One document review: what the zone says, the profile's names beside the zone's, and
    /// the set's photos (scope review:write; the read is in the person's access log).
    Review { review: String },
    /// Decides a document review with a reason (scope review:write).
    Decide {
        review: String,
        #[arg(long, value_enum)]
        decision: Decision,
        #[arg(long)]
        reason: String,
    },
    /// Completed registrations counted by day, region, category or institution (scope
    /// stats:read).
    Stats {
        #[arg(long, value_enum)]
        by: Grouping,
        /// Only completed at or after this time (RFC 3339).
        #[arg(long)]
        from: Option<String>,
        /// Only completed before this time (RFC 3339).
        #[arg(long)]
        before: Option<String>,
        /// The IANA time zone days are cut in.
        #[arg(long, default_value = "Asia/Almaty")]
        tz: String,
    },
    /// What the services delete by time (scope audit:read).
    Retention {
        #[command(subcommand)]
        command: RetentionCommand,
    },
    /// Adds or updates institutions (schools, colleges, universities) from a CSV file with the
    /// header `id,region_code,kind,name_kk,name_ru,name_en`, all rows or none (scope
    /// directory:admin).
    ImportInstitutions {
        /// The CSV file (UTF-8); `-` reads standard input.
        file: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum RetentionCommand {
    /// Every service's rules with their periods, and the runs that deleted something, newest
    /// first; with `--account`, only the runs that erased that account (its id is matched by
    /// its SHA-256, which is all a run keeps).
    Report {
        #[arg(long)]
        account: Option<String>,
        /// At most this many runs per service.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Decision {
    Approve,
    Retake,
    Reject,
}

fn review_json(r: &bio::Review) -> Value {
    json!({
        "review_id": r.review_id,
        "account_id": r.account_id,
        "capture_id": r.capture_id,
        "mismatches": r.mismatches,
        "opened_at": datetime(r.opened_at.as_ref()).map(|t| t.to_rfc3339()),
        "decision": r.decision,
        "reason": r.reason,
        "decided_by": r.decided_by,
        "decided_at": datetime(r.decided_at.as_ref()).map(|t| t.to_rfc3339()),
    })
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Status {
    Active,
    Registered,
    Blocked,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Grouping {
    Day,
    Region,
    Category,
    Institution,
}

/// The clients and the token of one run.
struct Ctl {
    identity: IdentityServiceClient<Channel>,
    profile: ProfileServiceClient<Channel>,
    biometrics: BiometricsServiceClient<Channel>,
    /// Each service's retention evidence, in the order the report prints them.
    retention: Vec<RetentionServiceClient<Channel>>,
    client_id: String,
    secret: String,
    token: String,
    on_behalf_of: Option<String>,
    json: bool,
}

/// A gRPC failure said for a person: the code, the stable reason and the message.
fn refused(status: tonic::Status) -> anyhow::Error {
    let reason = reason_of(&status).reason;
    let reason = if reason.is_empty() {
        String::new()
    } else {
        format!(" {reason}")
    };
    anyhow::anyhow!("{:?}{reason}: {}", status.code(), status.message())
}

fn time(at: Option<&prost_types::Timestamp>) -> String {
    datetime(at).map(|t| t.to_rfc3339()).unwrap_or_default()
}

fn parse_time(text: Option<&str>) -> anyhow::Result<Option<prost_types::Timestamp>> {
    text.map(|t| {
        chrono::DateTime::parse_from_rfc3339(t)
            .map(|t| timestamp(t.to_utc()))
            .with_context(|| format!("{t} is not an RFC 3339 time"))
    })
    .transpose()
}

fn status_name(status: i32) -> &'static str {
    match id::AccountStatus::try_from(status) {
        Ok(id::AccountStatus::Active) => "active",
        Ok(id::AccountStatus::Registered) => "registered",
        Ok(id::AccountStatus::Blocked) => "blocked",
        Ok(id::AccountStatus::Unspecified) | Err(_) => "unknown",
    }
}

fn event_name(kind: i32) -> &'static str {
    use id::RegistrationEventKind as K;
    match K::try_from(kind) {
        Ok(K::AccountCreated) => "account_created",
        Ok(K::RegistrationCompleted) => "registration_completed",
        Ok(K::RegistrationReopened) => "registration_reopened",
        Ok(K::AccountBlocked) => "account_blocked",
        Ok(K::AccountUnblocked) => "account_unblocked",
        Ok(K::AccountErased) => "account_erased",
        Ok(K::IdentifierReleased) => "identifier_released",
        Ok(K::Unspecified) | Err(_) => "unknown",
    }
}

fn account_json(a: &id::Account) -> Value {
    let (kind, identifier) = match &a.identifier {
        Some(id::account::Identifier::Iin(v)) => ("iin", v.as_str()),
        Some(id::account::Identifier::PassportNumber(v)) => ("passport_number", v.as_str()),
        None => ("none", ""),
    };
    let terms = a.terms.as_ref();
    json!({
        "account_id": a.account_id,
        "status": status_name(a.status),
        "citizenship": a.citizenship,
        kind: identifier,
        "identifier_released": a.identifier_released,
        "email": a.email,
        "created_at": time(a.created_at.as_ref()),
        "registered_at": time(a.registered_at.as_ref()),
        "terms": {
            "version": terms.map(|t| t.version.as_str()).unwrap_or_default(),
            "accepted_at": time(terms.and_then(|t| t.accepted_at.as_ref())),
            "sha256": terms.map(|t| t.sha256.as_str()).unwrap_or_default(),
            "language": terms.map(|t| t.language.as_str()).unwrap_or_default(),
        },
    })
}

fn profile_json(p: &prof::Profile) -> Value {
    json!({
        "surname": p.surname,
        "given_name": p.given_name,
        "patronymic": p.patronymic,
        "sex": match prof::Sex::try_from(p.sex) {
            Ok(prof::Sex::Male) => "male",
            Ok(prof::Sex::Female) => "female",
            Ok(prof::Sex::Unspecified) | Err(_) => "",
        },
        "birth_date": p.birth_date,
        "region_code": p.region_code,
        "mobile_phone": p.mobile_phone,
        "contingent_code": p.contingent_code,
        "institution": p.institution.as_ref().map(|i| json!({
            "id": i.id,
            "name": i.name.as_ref().map(|n| json!({"kk": n.kk, "ru": n.ru, "en": n.en})),
        })),
        "locked_at": time(p.locked_at.as_ref()),
        "missing": p.missing,
        "redo": p.redo,
    })
}

/// A photo's kind as the wire names it.
fn kind_name(kind: i32) -> &'static str {
    match bio::CaptureKind::try_from(kind) {
        Ok(bio::CaptureKind::Face) => "face",
        Ok(bio::CaptureKind::DocumentFront) => "document_front",
        Ok(bio::CaptureKind::DocumentBack) => "document_back",
        Ok(bio::CaptureKind::Unspecified) | Err(_) => "",
    }
}

/// What a document's machine-readable zone says.
fn zone_json(z: &bio::ReadZone) -> Value {
    json!({
        "format": z.format,
        "document_code": z.document_code,
        "issuing_state": z.issuing_state,
        "document_number": z.document_number,
        "birth_date": z.birth_date,
        "sex": z.sex,
        "expiry_date": z.expiry_date,
        "nationality": z.nationality,
        "optional_data": z.optional_data,
        "surname": z.surname,
        "given_names": z.given_names,
    })
}

/// Everything biometrics holds of a person, for an export.
fn biometrics_json(b: &bio::ExportPersonDataResponse) -> Value {
    json!({
        "status": b.status.as_ref().map(captures_json),
        "photos": b.captures.iter().map(|c| json!({
            "capture_id": c.capture_id,
            "kind": kind_name(c.kind),
            "captured_at": time(c.captured_at.as_ref()),
            "sha256": c.sha256, "size_bytes": c.size_bytes, "width": c.width, "height": c.height,
        })).collect::<Vec<_>>(),
        "consent": b.consent.as_ref().map(|c| json!({
            "version": c.version, "accepted_at": time(c.accepted_at.as_ref()),
            "client_ip": c.client_ip, "user_agent": c.user_agent,
        })),
        "document_zone": b.zone.as_ref().map(zone_json),
        "reviews": b.reviews.iter().map(review_json).collect::<Vec<_>>(),
        "erased_at": time(b.erased_at.as_ref()),
    })
}

fn captures_json(s: &bio::GetCaptureStatusResponse) -> Value {
    json!({
        "document_type": match bio::DocumentType::try_from(s.document_type) {
            Ok(bio::DocumentType::Passport) => "passport",
            Ok(bio::DocumentType::IdCard) => "id_card",
            Ok(bio::DocumentType::Unspecified) | Err(_) => "",
        },
        "captures": s.captures.iter().map(|c| json!({
            "kind": kind_name(c.kind),
            "capture_id": c.capture_id,
            "captured_at": time(c.captured_at.as_ref()),
        })).collect::<Vec<_>>(),
        "consent": {
            "given": s.consent_given,
            "version": s.consent_version,
            "accepted_at": time(s.consent_accepted_at.as_ref()),
            "sha256": s.consent_sha256,
            "language": s.consent_language,
        },
        "sealed_at": time(s.sealed_at.as_ref()),
        "missing": s.missing,
        "redo": s.redo,
    })
}

/// Rows as an aligned table under a header.
fn table(out: &mut dyn Write, header: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for row in rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

/// A JSON object as `key: value` lines, nested objects flattened with dots.
fn fields(out: &mut dyn Write, value: &Value, prefix: &str) -> std::io::Result<()> {
    if let Value::Object(map) = value {
        for (key, v) in map {
            let name = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            match v {
                Value::Object(_) => fields(out, v, &name)?,
                Value::String(s) => writeln!(out, "{name}: {s}")?,
                other @ (Value::Null | Value::Bool(_) | Value::Number(_) | Value::Array(_)) => {
                    writeln!(out, "{name}: {other}")?;
                }
            }
        }
    }
    Ok(())
}

impl Ctl {
    async fn connect(cli: &Cli) -> anyhow::Result<Self> {
        let path = cli
            .secret_file
            .as_ref()
            .context("--secret-file (or EXAMREG_CLIENT_SECRET_FILE) names the client's secret")?;
        let secret = std::fs::read_to_string(path)
            .with_context(|| format!("reading {}", path.display()))?
            .trim()
            .to_owned();
        let channel = |url: &str| {
            examreg_kit::channel::lazy(url).with_context(|| format!("{url} is not a gRPC address"))
        };
        let mut ctl = Self {
            identity: IdentityServiceClient::new(channel(&cli.identity)?),
            profile: ProfileServiceClient::new(channel(&cli.profile)?),
            biometrics: BiometricsServiceClient::new(channel(&cli.biometrics)?),
            retention: [
                &cli.identity,
                &cli.verification,
                &cli.biometrics,
                &cli.profile,
            ]
            .into_iter()
            .map(|url| channel(url).map(RetentionServiceClient::new))
            .collect::<anyhow::Result<_>>()?,
            client_id: cli.client_id.clone(),
            secret,
            token: String::new(),
            on_behalf_of: cli.on_behalf_of.clone(),
            json: cli.json,
        };
        ctl.renew().await?;
        Ok(ctl)
    }

    /// A fresh service token (they live minutes: a long `watch` renews it on reconnecting).
    async fn renew(&mut self) -> anyhow::Result<()> {
        let request = id::IssueServiceTokenRequest {
            client_id: self.client_id.clone(),
            client_secret: self.secret.clone(),
        };
        self.token = self
            .identity
            .issue_service_token(request)
            .await
            .map_err(refused)?
            .into_inner()
            .access_token;
        Ok(())
    }

    fn req<T>(&self, message: T) -> anyhow::Result<tonic::Request<T>> {
        let mut request = with_bearer(message, &self.token).map_err(refused)?;
        if let Some(person) = &self.on_behalf_of {
            on_behalf_of(&mut request, person).map_err(refused)?;
        }
        Ok(request)
    }

    async fn account(&mut self, account: &str, purpose: &str) -> anyhow::Result<id::Account> {
        let request = self.req(id::GetAccountRequest {
            account_id: account.to_owned(),
            purpose: purpose.to_owned(),
        })?;
        let answer = self.identity.get_account(request).await.map_err(refused)?;
        answer
            .into_inner()
            .account
            .context("identity answered without an account")
    }

    /// The three access logs of a person, merged in time order.
    async fn access_log(&mut self, account: &str) -> anyhow::Result<Vec<Value>> {
        let mut entries = Vec::new();
        let mut page_token = String::new();
        loop {
            let request = self.req(id::ListAccessLogRequest {
                account_id: account.to_owned(),
                page_size: 500,
                page_token,
                identifier: String::new(),
            })?;
            let page = self
                .identity
                .list_access_log(request)
                .await
                .map_err(refused)?
                .into_inner();
            entries.extend(page.entries.iter().map(|e| {
                json!({"at": time(e.at.as_ref()), "service": "identity", "actor": e.actor,
                       "kind": e.kind, "what": e.what, "note": e.note})
            }));
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        let mut page_token = String::new();
        loop {
            let request = self.req(prof::ListAccessLogRequest {
                account_id: account.to_owned(),
                page_size: 500,
                page_token,
            })?;
            let page = self
                .profile
                .list_access_log(request)
                .await
                .map_err(refused)?
                .into_inner();
            entries.extend(page.entries.iter().map(|e| {
                json!({"at": time(e.at.as_ref()), "service": "profile", "actor": e.actor,
                       "kind": "read", "what": e.what, "note": e.purpose})
            }));
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        let mut page_token = String::new();
        loop {
            let request = self.req(bio::ListAccessLogRequest {
                account_id: account.to_owned(),
                page_size: 500,
                page_token,
            })?;
            let page = self
                .biometrics
                .list_access_log(request)
                .await
                .map_err(refused)?
                .into_inner();
            entries.extend(page.entries.iter().map(|e| {
                let what = if e.capture_id.is_empty() {
                    e.what.clone()
                } else {
                    format!("{} {}", e.what, e.capture_id)
                };
                json!({"at": time(e.at.as_ref()), "service": "biometrics", "actor": e.actor,
                       "kind": "read", "what": what, "note": e.purpose})
            }));
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        // RFC 3339 in UTC sorts as text; the sort is stable, so each service keeps its order.
        entries.sort_by(|a, b| a["at"].as_str().cmp(&b["at"].as_str()));
        Ok(entries)
    }

    fn emit(&self, out: &mut dyn Write, value: &Value) -> anyhow::Result<()> {
        if self.json {
            writeln!(out, "{value}")?;
        } else {
            fields(out, value, "")?;
        }
        Ok(())
    }

    async fn run(&mut self, command: Command, out: &mut dyn Write) -> anyhow::Result<()> {
        match command {
            Command::Find {
                iin,
                passport,
                email,
                purpose,
            } => {
                use id::find_account_request::By;
                let by = match (iin, passport, email) {
                    (Some(iin), _, _) => By::Iin(iin),
                    (None, Some(passport), _) => By::PassportNumber(passport),
                    (None, None, Some(email)) => By::Email(email),
                    (None, None, None) => bail!("--iin, --passport or --email"),
                };
                let request = self.req(id::FindAccountRequest {
                    by: Some(by),
                    purpose,
                })?;
                let found = self.identity.find_account(request).await.map_err(refused)?;
                let account = found
                    .into_inner()
                    .account
                    .context("no account in the answer")?;
                self.emit(out, &account_json(&account))?;
            }
            Command::List {
                status,
                from,
                before,
                purpose,
            } => {
                let statuses: Vec<i32> = status
                    .iter()
                    .map(|s| match s {
                        Status::Active => id::AccountStatus::Active,
                        Status::Registered => id::AccountStatus::Registered,
                        Status::Blocked => id::AccountStatus::Blocked,
                    } as i32)
                    .collect();
                let (from, before) = (parse_time(from.as_deref())?, parse_time(before.as_deref())?);
                let mut accounts = Vec::new();
                let mut page_token = String::new();
                let mut cursor = None;
                loop {
                    let request = self.req(id::ListAccountsRequest {
                        statuses: statuses.clone(),
                        registered_from: from,
                        registered_before: before,
                        page_size: 500,
                        page_token,
                        purpose: purpose.clone(),
                    })?;
                    let page = self
                        .identity
                        .list_accounts(request)
                        .await
                        .map_err(refused)?
                        .into_inner();
                    cursor.get_or_insert(page.feed_cursor);
                    accounts.extend(page.accounts);
                    if page.next_page_token.is_empty() {
                        break;
                    }
                    page_token = page.next_page_token;
                }
                let cursor = cursor.unwrap_or_default();
                if self.json {
                    let list: Vec<Value> = accounts.iter().map(account_json).collect();
                    writeln!(out, "{}", json!({"accounts": list, "feed_cursor": cursor}))?;
                } else {
                    let rows: Vec<Vec<String>> = accounts
                        .iter()
                        .map(|a| {
                            let j = account_json(a);
                            let identifier = j.get("iin").or_else(|| j.get("passport_number"));
                            vec![
                                a.account_id.clone(),
                                status_name(a.status).to_owned(),
                                identifier
                                    .and_then(Value::as_str)
                                    .unwrap_or_default()
                                    .to_owned(),
                                a.email.clone(),
                                time(a.registered_at.as_ref()),
                            ]
                        })
                        .collect();
                    table(
                        out,
                        &["ACCOUNT", "STATUS", "IDENTIFIER", "EMAIL", "REGISTERED"],
                        &rows,
                    )?;
                    writeln!(
                        out,
                        "{} accounts; follow changes with: watch --from {cursor}",
                        accounts.len()
                    )?;
                }
            }
            Command::Watch { from, count } => self.watch(from, count, out).await?,
            Command::Unlock { account, reason } => {
                let request = self.req(id::UnlockLoginRequest {
                    account_id: account.clone(),
                    reason,
                })?;
                let answer = self
                    .identity
                    .unlock_login(request)
                    .await
                    .map_err(refused)?
                    .into_inner();
                self.emit(out, &json!({"account_id": account, "unlocked": true, "was_locked": answer.was_locked}))?;
            }
            Command::Block { account, reason } => {
                let request = self.req(id::BlockAccountRequest {
                    account_id: account.clone(),
                    reason,
                })?;
                let answer = self
                    .identity
                    .block_account(request)
                    .await
                    .map_err(refused)?
                    .into_inner();
                self.emit(out, &json!({"account_id": account, "blocked": true, "revoked_sessions": answer.revoked_sessions}))?;
            }
            Command::Unblock { account, reason } => {
                let request = self.req(id::UnblockAccountRequest {
                    account_id: account.clone(),
                    reason,
                })?;
                self.identity
                    .unblock_account(request)
                    .await
                    .map_err(refused)?;
                self.emit(out, &json!({"account_id": account, "unblocked": true}))?;
            }
            Command::Reopen {
                account,
                steps,
                reason,
            } => {
                let request = self.req(id::ReopenRegistrationRequest {
                    account_id: account.clone(),
                    steps,
                    reason,
                })?;
                let answer = self
                    .identity
                    .reopen_registration(request)
                    .await
                    .map_err(refused)?
                    .into_inner();
                let missing = answer.missing.join(",");
                self.emit(
                    out,
                    &json!({"account_id": account, "reopened": true, "missing": missing}),
                )?;
            }
            Command::Release { account, reason } => {
                let request = self.req(id::ReleaseIdentifierRequest {
                    account_id: account.clone(),
                    reason,
                })?;
                let answer = self
                    .identity
                    .release_identifier(request)
                    .await
                    .map_err(refused)?
                    .into_inner();
                self.emit(out, &json!({"account_id": account, "released": true, "revoked_sessions": answer.revoked_sessions}))?;
            }
            Command::Lookups { identifier } => {
                let mut entries = Vec::new();
                let mut page_token = String::new();
                loop {
                    let request = self.req(id::ListAccessLogRequest {
                        identifier: identifier.clone(),
                        page_size: 500,
                        page_token,
                        ..Default::default()
                    })?;
                    let page = self
                        .identity
                        .list_access_log(request)
                        .await
                        .map_err(refused)?
                        .into_inner();
                    entries.extend(page.entries.iter().map(|e| {
                        json!({"at": time(e.at.as_ref()), "actor": e.actor, "what": e.what,
                               "note": e.note, "account_id": e.account_id})
                    }));
                    if page.next_page_token.is_empty() {
                        break;
                    }
                    page_token = page.next_page_token;
                }
                if self.json {
                    writeln!(out, "{}", json!({"lookups": entries}))?;
                } else {
                    let cell = |e: &Value, k: &str| e[k].as_str().unwrap_or_default().to_owned();
                    let rows: Vec<Vec<String>> = entries
                        .iter()
                        .map(|e| {
                            let mut row: Vec<String> = ["at", "actor", "what", "note"]
                                .iter()
                                .map(|k| cell(e, k))
                                .collect();
                            let found = cell(e, "account_id");
                            row.push(if found.is_empty() {
                                "(none)".into()
                            } else {
                                found
                            });
                            row
                        })
                        .collect();
                    table(out, &["AT", "ACTOR", "WHAT", "PURPOSE", "FOUND"], &rows)?;
                }
            }
            Command::AccessLog { account } => {
                let entries = self.access_log(&account).await?;
                if self.json {
                    writeln!(
                        out,
                        "{}",
                        json!({"account_id": account, "entries": entries})
                    )?;
                } else {
                    let cell = |e: &Value, k: &str| e[k].as_str().unwrap_or_default().to_owned();
                    let rows: Vec<Vec<String>> = entries
                        .iter()
                        .map(|e| {
                            ["at", "service", "actor", "kind", "what", "note"]
                                .iter()
                                .map(|k| cell(e, k))
                                .collect()
                        })
                        .collect();
                    table(
                        out,
                        &["AT", "SERVICE", "ACTOR", "KIND", "WHAT", "PURPOSE / REASON"],
                        &rows,
                    )?;
                }
            }
            Command::Export { account, purpose } => {
                let record = self.account(&account, &purpose).await?;
                let request = self.req(prof::GetProfileRequest {
                    account_id: account.clone(),
                    purpose: purpose.clone(),
                })?;
                let profile = self
                    .profile
                    .get_profile(request)
                    .await
                    .map_err(refused)?
                    .into_inner()
                    .profile;
                let request = self.req(id::ListSessionsRequest {
                    account_id: account.clone(),
                    purpose: purpose.clone(),
                })?;
                let sessions = self
                    .identity
                    .list_sessions(request)
                    .await
                    .map_err(refused)?
                    .into_inner()
                    .sessions;
                let request = self.req(bio::ExportPersonDataRequest {
                    account_id: account.clone(),
                    purpose: purpose.clone(),
                })?;
                let biometrics = self
                    .biometrics
                    .export_person_data(request)
                    .await
                    .map_err(refused)?
                    .into_inner();
                let log = self.access_log(&account).await?;
                // What was deleted of the person, and when: the services' changes (a reopened
                // step's photo replaced, an erasure) and the retention's runs that name them.
                let subject = examreg_kit::record::subject(
                    account
                        .parse()
                        .context("the account is an account id (a UUID)")?,
                );
                let runs: Vec<Value> = self
                    .retention_runs(Some(&subject), usize::MAX)
                    .await?
                    .iter()
                    .flat_map(|(service, _, runs)| {
                        runs.iter().map(move |r| {
                            json!({"service": service, "rule": r.rule, "ran_at": time(r.ran_at.as_ref())})
                        })
                    })
                    .collect();
                let export = json!({
                    "exported_at": chrono::Utc::now().to_rfc3339(),
                    "account": account_json(&record),
                    "sessions": sessions.iter().map(|s| json!({
                        "session_id": s.session_id, "created_at": time(s.created_at.as_ref()),
                        "ended_at": time(s.revoked_at.as_ref()), "ended_because": s.revoked_reason,
                        "client_ip": s.client_ip, "user_agent": s.user_agent,
                    })).collect::<Vec<_>>(),
                    "profile": profile.as_ref().map(profile_json),
                    "biometrics": biometrics_json(&biometrics),
                    "access_log": log,
                    "deleted": {
                        "changes": biometrics.changes.iter().map(|c| json!({
                            "change_id": c.change_id, "action": c.action, "steps": c.steps,
                            "by": c.actor, "at": time(c.at.as_ref()),
                        })).collect::<Vec<_>>(),
                        "retention_runs": runs,
                    },
                });
                writeln!(out, "{}", serde_json::to_string_pretty(&export)?)?;
            }
            Command::Reviews { all } => {
                let mut reviews = Vec::new();
                let mut page_token = String::new();
                loop {
                    let request = self.req(bio::ListReviewsRequest {
                        include_decided: all,
                        page_size: 500,
                        page_token: page_token.clone(),
                    })?;
                    let page = self
                        .biometrics
                        .list_reviews(request)
                        .await
                        .map_err(refused)?
                        .into_inner();
                    reviews.extend(page.reviews);
                    if page.next_page_token.is_empty() {
                        break;
                    }
                    page_token = page.next_page_token;
                }
                if self.json {
                    let reviews: Vec<Value> = reviews.iter().map(review_json).collect();
                    writeln!(out, "{}", json!({"reviews": reviews}))?;
                } else {
                    let rows: Vec<Vec<String>> = reviews
                        .iter()
                        .map(|r| {
                            let v = review_json(r);
                            vec![
                                r.review_id.clone(),
                                r.account_id.clone(),
                                v["opened_at"].as_str().unwrap_or_default().to_owned(),
                                r.mismatches.join(","),
                                r.decision.clone(),
                            ]
                        })
                        .collect();
                    table(
                        out,
                        &["REVIEW", "ACCOUNT", "OPENED", "MISMATCHES", "DECISION"],
                        &rows,
                    )?;
                }
            }
            Command::Review { review } => {
                let request = self.req(bio::GetReviewRequest { review_id: review })?;
                let got = self
                    .biometrics
                    .get_review(request)
                    .await
                    .map_err(refused)?
                    .into_inner();
                let mut value = got.review.as_ref().map(review_json).unwrap_or_default();
                value["zone"] = got.zone.as_ref().map_or(Value::Null, zone_json);
                value["profile_names"] = got.names.as_ref().map_or(Value::Null, |n| {
                    json!({"surname": n.surname, "given_names": n.given_names, "agree": n.agree})
                });
                value["captures"] = got
                    .captures
                    .iter()
                    .map(|c| c.capture_id.clone())
                    .collect::<Vec<_>>()
                    .into();
                self.emit(out, &value)?;
            }
            Command::Decide {
                review,
                decision,
                reason,
            } => {
                let decision = match decision {
                    Decision::Approve => "approve",
                    Decision::Retake => "retake",
                    Decision::Reject => "reject",
                };
                let request = self.req(bio::DecideReviewRequest {
                    review_id: review,
                    decision: decision.into(),
                    reason,
                })?;
                let answer = self
                    .biometrics
                    .decide_review(request)
                    .await
                    .map_err(refused)?
                    .into_inner();
                let decided = answer.review.as_ref().map(review_json).unwrap_or_default();
                self.emit(out, &decided)?;
            }
            Command::ImportInstitutions { file } => {
                let csv = if file.as_os_str() == "-" {
                    std::io::read_to_string(std::io::stdin()).context("reading standard input")?
                } else {
                    std::fs::read_to_string(&file)
                        .with_context(|| format!("reading {}", file.display()))?
                };
                let request = self.req(prof::ImportInstitutionsRequest { csv })?;
                let answer = self
                    .profile
                    .import_institutions(request)
                    .await
                    .map_err(refused)?
                    .into_inner();
                if self.json {
                    writeln!(
                        out,
                        "{}",
                        json!({"added": answer.added, "updated": answer.updated})
                    )?;
                } else {
                    writeln!(out, "added {}, updated {}", answer.added, answer.updated)?;
                }
            }
            Command::Retention {
                command: RetentionCommand::Report { account, limit },
            } => {
                self.retention_report(account.as_deref(), limit, out)
                    .await?
            }
            Command::Stats {
                by,
                from,
                before,
                tz,
            } => {
                let group_by = match by {
                    Grouping::Day => prof::RegistrationGrouping::Day,
                    Grouping::Region => prof::RegistrationGrouping::Region,
                    Grouping::Category => prof::RegistrationGrouping::Category,
                    Grouping::Institution => prof::RegistrationGrouping::Institution,
                };
                let request = self.req(prof::CountRegistrationsRequest {
                    group_by: group_by.into(),
                    completed_from: parse_time(from.as_deref())?,
                    completed_before: parse_time(before.as_deref())?,
                    time_zone: tz,
                })?;
                let answer = self
                    .profile
                    .count_registrations(request)
                    .await
                    .map_err(refused)?
                    .into_inner();
                if self.json {
                    let counts: Vec<Value> = answer
                        .counts
                        .iter()
                        .map(|c| json!({"key": c.key, "count": c.count}))
                        .collect();
                    writeln!(
                        out,
                        "{}",
                        json!({"counts": counts, "total": answer.total,
                               "suppressed": answer.suppressed})
                    )?;
                } else {
                    let rows: Vec<Vec<String>> = answer
                        .counts
                        .iter()
                        .map(|c| {
                            let key = if c.key.is_empty() {
                                "(small groups)"
                            } else {
                                &c.key
                            };
                            vec![key.to_owned(), c.count.to_string()]
                        })
                        .collect();
                    table(out, &["KEY", "COUNT"], &rows)?;
                    writeln!(out, "total: {}", answer.total)?;
                    if answer.suppressed {
                        writeln!(
                            out,
                            "(groups too small to show without singling people out are merged or withheld)"
                        )?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The retention report: each service's rules, then its runs (all of them, or those that
    /// erased `account`), newest first.
    async fn retention_report(
        &mut self,
        account: Option<&str>,
        limit: usize,
        out: &mut dyn Write,
    ) -> anyhow::Result<()> {
        let subject = match account {
            Some(id) => Some(examreg_kit::record::subject(
                id.parse().context("--account is an account id (a UUID)")?,
            )),
            None => None,
        };
        let services = self.retention_runs(subject.as_deref(), limit).await?;
        self.print_retention(&services, out)
    }

    /// Every service's retention rules and runs, newest first (those whose subjects include
    /// `subject` when one is given), at most `limit` per service.
    async fn retention_runs(
        &mut self,
        subject: Option<&str>,
        limit: usize,
    ) -> anyhow::Result<Vec<(String, Vec<ret::RetentionRule>, Vec<ret::RetentionRun>)>> {
        let mut services = Vec::new();
        for client in self.retention.clone() {
            let mut client = client;
            let mut page_token = String::new();
            let mut runs: Vec<ret::RetentionRun> = Vec::new();
            let mut answer;
            loop {
                let request = self.req(ret::ListRetentionRunsRequest {
                    page_size: 500,
                    page_token,
                })?;
                answer = client
                    .list_retention_runs(request)
                    .await
                    .map_err(refused)?
                    .into_inner();
                runs.extend(
                    answer
                        .runs
                        .drain(..)
                        .filter(|run| subject.is_none_or(|s| run.subjects.iter().any(|h| h == s))),
                );
                if answer.next_page_token.is_empty() || runs.len() >= limit {
                    break;
                }
                page_token = std::mem::take(&mut answer.next_page_token);
            }
            runs.truncate(limit);
            services.push((answer.service, answer.rules, runs));
        }
        Ok(services)
    }

    /// Prints the retention report (see [`Ctl::retention_report`]).
    fn print_retention(
        &self,
        services: &[(String, Vec<ret::RetentionRule>, Vec<ret::RetentionRun>)],
        out: &mut dyn Write,
    ) -> anyhow::Result<()> {
        if self.json {
            let services: Vec<Value> = services
                .iter()
                .map(|(service, rules, runs)| {
                    json!({
                        "service": service,
                        "rules": rules.iter().map(|r| json!({"rule": r.name, "data": r.data, "period": r.period})).collect::<Vec<_>>(),
                        "runs": runs.iter().map(|r| json!({"ran_at": time(r.ran_at.as_ref()), "rule": r.rule, "deleted": r.deleted, "subjects": r.subjects})).collect::<Vec<_>>(),
                    })
                })
                .collect();
            writeln!(out, "{}", json!({"services": services}))?;
            return Ok(());
        }
        let rules: Vec<Vec<String>> = services
            .iter()
            .flat_map(|(service, rules, _)| {
                rules.iter().map(move |r| {
                    vec![
                        service.clone(),
                        r.name.clone(),
                        r.period.clone(),
                        r.data.clone(),
                    ]
                })
            })
            .collect();
        table(out, &["SERVICE", "RULE", "PERIOD", "DELETES"], &rules)?;
        writeln!(out)?;
        let runs: Vec<Vec<String>> = services
            .iter()
            .flat_map(|(service, _, runs)| {
                runs.iter().map(move |r| {
                    vec![
                        time(r.ran_at.as_ref()),
                        service.clone(),
                        r.rule.clone(),
                        r.deleted.to_string(),
                    ]
                })
            })
            .collect();
        if runs.is_empty() {
            writeln!(out, "no run deleted anything")?;
        } else {
            table(out, &["RAN AT", "SERVICE", "RULE", "DELETED"], &runs)?;
        }
        Ok(())
    }

    /// Prints events from the cursor on; after a disconnect (identity restarting, say) it
    /// waits a moment, renews its token and resumes from the last cursor printed.
    async fn watch(
        &mut self,
        from: Option<String>,
        count: Option<usize>,
        out: &mut dyn Write,
    ) -> anyhow::Result<()> {
        let mut cursor = from.unwrap_or_default();
        let mut seen = 0;
        loop {
            let request = self.req(id::WatchRegistrationsRequest {
                cursor: cursor.clone(),
            })?;
            let stream = match self.identity.watch_registrations(request).await {
                Ok(stream) => Some(stream.into_inner()),
                Err(status) if status.code() == tonic::Code::Unavailable => None,
                Err(status) => return Err(refused(status)),
            };
            if let Some(mut stream) = stream {
                while let Some(message) = stream.next().await {
                    let message = match message {
                        Ok(message) => message,
                        Err(status) if status.code() == tonic::Code::Unavailable => break,
                        Err(status) => return Err(refused(status)),
                    };
                    for event in message.events {
                        if self.json {
                            writeln!(
                                out,
                                "{}",
                                json!({"cursor": event.cursor, "kind": event_name(event.kind),
                                "account_id": event.account_id, "occurred_at": time(event.occurred_at.as_ref())})
                            )?;
                        } else {
                            writeln!(
                                out,
                                "{}  {}  {}  {}",
                                event.cursor,
                                time(event.occurred_at.as_ref()),
                                event_name(event.kind),
                                event.account_id
                            )?;
                        }
                        out.flush()?;
                        cursor = event.cursor;
                        seen += 1;
                        if count.is_some_and(|n| seen >= n) {
                            return Ok(());
                        }
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            // A refusal here (identity still starting) is retried like a lost stream.
            let _ = self.renew().await;
        }
    }
}

/// Runs the command line `args` (the program name first), writing to `out`.
pub async fn run<I, T>(args: I, out: &mut dyn Write) -> anyhow::Result<()>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = Cli::try_parse_from(args)?;
    let mut ctl = Ctl::connect(&cli).await?;
    ctl.run(cli.command, out).await
}
