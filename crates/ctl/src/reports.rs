//! Reports over the whole record: the statistics of completed registrations and what the
//! services delete by time; and the directory's import.

use crate::{Ctl, refused, show::*};
use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use examreg_proto::{profile::v1 as prof, retention::v1 as ret};
use serde_json::{Value, json};
use std::{io::Write, path::PathBuf};

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
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

pub(crate) async fn run(
    ctl: &mut Ctl,
    command: Command,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    match command {
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
            let request = ctl.req(prof::CountRegistrationsRequest {
                group_by: group_by.into(),
                completed_from: parse_time(from.as_deref())?,
                completed_before: parse_time(before.as_deref())?,
                time_zone: tz,
            })?;
            let answer = ctl
                .profile
                .count_registrations(request)
                .await
                .map_err(refused)?
                .into_inner();
            if ctl.json {
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
        Command::Retention {
            command: RetentionCommand::Report { account, limit },
        } => retention_report(ctl, account.as_deref(), limit, out).await?,
        Command::ImportInstitutions { file } => {
            let csv = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin()).context("reading standard input")?
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?
            };
            let request = ctl.req(prof::ImportInstitutionsRequest { csv })?;
            let answer = ctl
                .profile
                .import_institutions(request)
                .await
                .map_err(refused)?
                .into_inner();
            if ctl.json {
                writeln!(
                    out,
                    "{}",
                    json!({"added": answer.added, "updated": answer.updated})
                )?;
            } else {
                writeln!(out, "added {}, updated {}", answer.added, answer.updated)?;
            }
        }
    }
    Ok(())
}

/// The retention report: each service's rules, then its runs (all of them, or those that
/// erased `account`), newest first.
async fn retention_report(
    ctl: &mut Ctl,
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
    let services = retention_runs(ctl, subject.as_deref(), limit).await?;
    print_retention(ctl, &services, out)
}

/// Every service's retention rules and runs, newest first (those whose subjects include
/// `subject` when one is given), at most `limit` per service.
pub(crate) async fn retention_runs(
    ctl: &mut Ctl,
    subject: Option<&str>,
    limit: usize,
) -> anyhow::Result<Vec<(String, Vec<ret::RetentionRule>, Vec<ret::RetentionRun>)>> {
    let mut services = Vec::new();
    for client in ctl.retention.clone() {
        let mut client = client;
        let mut page_token = String::new();
        let mut runs: Vec<ret::RetentionRun> = Vec::new();
        let mut answer;
        loop {
            let request = ctl.req(ret::ListRetentionRunsRequest {
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

/// Prints the retention report (see [`retention_report`]).
fn print_retention(
    ctl: &Ctl,
    services: &[(String, Vec<ret::RetentionRule>, Vec<ret::RetentionRun>)],
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    if ctl.json {
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

#[derive(Subcommand, Debug)]
pub(crate) enum RetentionCommand {
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
pub(crate) enum Grouping {
    Day,
    Region,
    Category,
    Institution,
}
