//! Accounts and the change feed: find and list them, follow the feed, and the support desk's
//! actions (unlock, block, unblock, reopen, release), each with a reason.

use crate::{Ctl, refused, show::*};
use anyhow::{Context, bail};
use clap::Subcommand;
use examreg_domain::AccountStatus;
use examreg_proto::{convert::steps_typed, identity::v1 as id};
use serde_json::{Value, json};
use std::{io::Write, time::Duration};
use tokio_stream::StreamExt;

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
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
        #[arg(long, value_delimiter = ',', value_parser = status)]
        status: Vec<AccountStatus>,
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
}

pub(crate) async fn run(
    ctl: &mut Ctl,
    command: Command,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
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
            let request = ctl.req(id::FindAccountRequest {
                by: Some(by),
                purpose,
            })?;
            let found = ctl.identity.find_account(request).await.map_err(refused)?;
            let account = found
                .into_inner()
                .account
                .context("no account in the answer")?;
            ctl.emit(out, &account_json(&account))?;
        }
        Command::List {
            status,
            from,
            before,
            purpose,
        } => {
            let statuses: Vec<i32> = status
                .iter()
                .map(|&s| id::AccountStatus::from(s) as i32)
                .collect();
            let (from, before) = (parse_time(from.as_deref())?, parse_time(before.as_deref())?);
            let mut accounts = Vec::new();
            let mut page_token = String::new();
            let mut cursor = None;
            loop {
                let request = ctl.req(id::ListAccountsRequest {
                    statuses: statuses.clone(),
                    registered_from: from,
                    registered_before: before,
                    page_size: 500,
                    page_token,
                    purpose: purpose.clone(),
                })?;
                let page = ctl
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
            if ctl.json {
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
                            name_of(a.status, AccountStatus::as_str).to_owned(),
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
        Command::Watch { from, count } => watch(ctl, from, count, out).await?,
        Command::Unlock { account, reason } => {
            let request = ctl.req(id::UnlockLoginRequest {
                account_id: account.clone(),
                reason,
            })?;
            let answer = ctl
                .identity
                .unlock_login(request)
                .await
                .map_err(refused)?
                .into_inner();
            ctl.emit(
                out,
                &json!({"account_id": account, "unlocked": true, "was_locked": answer.was_locked}),
            )?;
        }
        Command::Block { account, reason } => {
            let request = ctl.req(id::BlockAccountRequest {
                account_id: account.clone(),
                reason,
            })?;
            let answer = ctl
                .identity
                .block_account(request)
                .await
                .map_err(refused)?
                .into_inner();
            ctl.emit(out, &json!({"account_id": account, "blocked": true, "revoked_sessions": answer.revoked_sessions}))?;
        }
        Command::Unblock { account, reason } => {
            let request = ctl.req(id::UnblockAccountRequest {
                account_id: account.clone(),
                reason,
            })?;
            ctl.identity
                .unblock_account(request)
                .await
                .map_err(refused)?;
            ctl.emit(out, &json!({"account_id": account, "unblocked": true}))?;
        }
        Command::Reopen {
            account,
            steps,
            reason,
        } => {
            // Typed when every step is one this build knows; otherwise the text alone, which
            // identity checks (and refuses, naming the steps it takes).
            let typed = examreg_domain::Step::list(&steps)
                .map(|_| steps_typed(&steps))
                .unwrap_or_default();
            let request = ctl.req(id::ReopenRegistrationRequest {
                account_id: account.clone(),
                onboarding_steps: typed,
                steps,
                reason,
            })?;
            let answer = ctl
                .identity
                .reopen_registration(request)
                .await
                .map_err(refused)?
                .into_inner();
            let missing = answer.missing.join(",");
            ctl.emit(
                out,
                &json!({"account_id": account, "reopened": true, "missing": missing}),
            )?;
        }
        Command::Release { account, reason } => {
            let request = ctl.req(id::ReleaseIdentifierRequest {
                account_id: account.clone(),
                reason,
            })?;
            let answer = ctl
                .identity
                .release_identifier(request)
                .await
                .map_err(refused)?
                .into_inner();
            ctl.emit(out, &json!({"account_id": account, "released": true, "revoked_sessions": answer.revoked_sessions}))?;
        }
    }
    Ok(())
}

/// Prints events from the cursor on; after a disconnect (identity restarting, say) it
/// waits a moment, renews its token and resumes from the last cursor printed.
async fn watch(
    ctl: &mut Ctl,
    from: Option<String>,
    count: Option<usize>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let mut cursor = from.unwrap_or_default();
    let mut seen = 0;
    loop {
        let request = ctl.req(id::WatchRegistrationsRequest {
            cursor: cursor.clone(),
        })?;
        let stream = match ctl.identity.watch_registrations(request).await {
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
                    if ctl.json {
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
        let _ = ctl.renew().await;
    }
}

/// A status as the command line takes it: its domain text form.
fn status(text: &str) -> Result<AccountStatus, String> {
    AccountStatus::parse(text)
        .ok_or_else(|| format!("{text} is not one of active, registered, blocked"))
}
