//! What the center holds of one person: the access logs, who looked up an identifier, and
//! the export for a subject access request.

use crate::{Ctl, refused, reports::retention_runs, show::*};
use anyhow::Context;
use clap::Subcommand;
use examreg_proto::{
    biometrics::v1 as bio, convert::steps_named, identity::v1 as id, profile::v1 as prof,
};
use serde_json::{Value, json};
use std::io::Write;

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
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
}

pub(crate) async fn run(
    ctl: &mut Ctl,
    command: Command,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    match command {
        Command::AccessLog { account } => {
            let entries = access_log(ctl, &account).await?;
            if ctl.json {
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
        Command::Lookups { identifier } => {
            let mut entries = Vec::new();
            let mut page_token = String::new();
            loop {
                let request = ctl.req(id::ListAccessLogRequest {
                    identifier: identifier.clone(),
                    page_size: 500,
                    page_token,
                    ..Default::default()
                })?;
                let page = ctl
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
            if ctl.json {
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
        Command::Export { account, purpose } => {
            let record = ctl.account(&account, &purpose).await?;
            let request = ctl.req(prof::GetProfileRequest {
                account_id: account.clone(),
                purpose: purpose.clone(),
            })?;
            let profile = ctl
                .profile
                .get_profile(request)
                .await
                .map_err(refused)?
                .into_inner()
                .profile;
            let request = ctl.req(id::ListSessionsRequest {
                account_id: account.clone(),
                purpose: purpose.clone(),
            })?;
            let sessions = ctl
                .identity
                .list_sessions(request)
                .await
                .map_err(refused)?
                .into_inner()
                .sessions;
            let request = ctl.req(bio::ExportPersonDataRequest {
                account_id: account.clone(),
                purpose: purpose.clone(),
            })?;
            let biometrics = ctl
                .biometrics
                .export_person_data(request)
                .await
                .map_err(refused)?
                .into_inner();
            let log = access_log(ctl, &account).await?;
            // What was deleted of the person, and when: the services' changes (a reopened
            // step's photo replaced, an erasure) and the retention's runs that name them.
            let subject = examreg_kit::record::subject(
                account
                    .parse()
                    .context("the account is an account id (a UUID)")?,
            );
            let runs: Vec<Value> = retention_runs(ctl, Some(&subject), usize::MAX)
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
                        "change_id": c.change_id, "action": c.action,
                        "steps": steps_named(&c.onboarding_steps, &c.steps),
                        "by": c.actor, "at": time(c.at.as_ref()),
                    })).collect::<Vec<_>>(),
                    "retention_runs": runs,
                },
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&export)?)?;
        }
    }
    Ok(())
}

/// The three access logs of a person, merged in time order.
async fn access_log(ctl: &mut Ctl, account: &str) -> anyhow::Result<Vec<Value>> {
    let ctl = &*ctl;
    let account = account.to_owned();
    let mut entries = every_page(|page_token| {
        let request = ctl.req(id::ListAccessLogRequest {
            account_id: account.clone(),
            page_size: 500,
            page_token,
            identifier: String::new(),
        });
        let mut identity = ctl.identity.clone();
        async move {
            let page = identity
                .list_access_log(request?)
                .await
                .map_err(refused)?
                .into_inner();
            let entries = page.entries.iter().map(|e| {
                json!({"at": time(e.at.as_ref()), "service": "identity", "actor": e.actor,
                       "kind": e.kind, "what": e.what, "note": e.note})
            });
            Ok((entries.collect(), page.next_page_token))
        }
    })
    .await?;
    entries.extend(
        every_page(|page_token| {
            let request = ctl.req(prof::ListAccessLogRequest {
                account_id: account.clone(),
                page_size: 500,
                page_token,
            });
            let mut profile = ctl.profile.clone();
            async move {
                let page = profile
                    .list_access_log(request?)
                    .await
                    .map_err(refused)?
                    .into_inner();
                let entries = page.entries.iter().map(|e| {
                    json!({"at": time(e.at.as_ref()), "service": "profile", "actor": e.actor,
                           "kind": "read", "what": e.what, "note": e.purpose})
                });
                Ok((entries.collect(), page.next_page_token))
            }
        })
        .await?,
    );
    entries.extend(
        every_page(|page_token| {
            let request = ctl.req(bio::ListAccessLogRequest {
                account_id: account.clone(),
                page_size: 500,
                page_token,
            });
            let mut biometrics = ctl.biometrics.clone();
            async move {
                let page = biometrics
                    .list_access_log(request?)
                    .await
                    .map_err(refused)?
                    .into_inner();
                let entries = page.entries.iter().map(|e| {
                    let what = if e.capture_id.is_empty() {
                        e.what.clone()
                    } else {
                        format!("{} {}", e.what, e.capture_id)
                    };
                    json!({"at": time(e.at.as_ref()), "service": "biometrics", "actor": e.actor,
                           "kind": "read", "what": what, "note": e.purpose})
                });
                Ok((entries.collect(), page.next_page_token))
            }
        })
        .await?,
    );
    // RFC 3339 in UTC sorts as text; the sort is stable, so each service keeps its order.
    entries.sort_by(|a, b| a["at"].as_str().cmp(&b["at"].as_str()));
    Ok(entries)
}

/// Every page of a keyset-paged list: `fetch` is given each page's token (empty for the
/// first) and answers the page's items and the next token (empty after the last).
async fn every_page<F, Fut>(mut fetch: F) -> anyhow::Result<Vec<Value>>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<(Vec<Value>, String)>>,
{
    let (mut items, mut token) = (Vec::new(), String::new());
    loop {
        let (page, next) = fetch(token).await?;
        items.extend(page);
        if next.is_empty() {
            return Ok(items);
        }
        token = next;
    }
}
