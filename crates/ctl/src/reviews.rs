//! The document review queue: list, show and decide.

use crate::{Ctl, refused, show::*};
use clap::{Subcommand, ValueEnum};
use examreg_proto::biometrics::v1 as bio;
use serde_json::{Value, json};
use std::io::Write;

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
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
}

pub(crate) async fn run(
    ctl: &mut Ctl,
    command: Command,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    match command {
        Command::Reviews { all } => {
            let mut reviews = Vec::new();
            let mut page_token = String::new();
            loop {
                let request = ctl.req(bio::ListReviewsRequest {
                    include_decided: all,
                    page_size: 500,
                    page_token: page_token.clone(),
                })?;
                let page = ctl
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
            if ctl.json {
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
            let request = ctl.req(bio::GetReviewRequest { review_id: review })?;
            let got = ctl
                .biometrics
                .get_review(request)
                .await
                .map_err(refused)?
                .into_inner();
            let mut value = got.review.as_ref().map(review_json).unwrap_or_default();
            value["zone"] = got.zone.as_ref().map_or(Value::Null, zone_json);
            value["profile_names"] = got.names.as_ref().map_or(
                Value::Null,
                |n| json!({"surname": n.surname, "given_names": n.given_names, "agree": n.agree}),
            );
            value["captures"] = got
                .captures
                .iter()
                .map(|c| c.capture_id.clone())
                .collect::<Vec<_>>()
                .into();
            ctl.emit(out, &value)?;
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
            let request = ctl.req(bio::DecideReviewRequest {
                review_id: review,
                decision: decision.into(),
                reason,
            })?;
            let answer = ctl
                .biometrics
                .decide_review(request)
                .await
                .map_err(refused)?
                .into_inner();
            let decided = answer.review.as_ref().map(review_json).unwrap_or_default();
            ctl.emit(out, &decided)?;
        }
    }
    Ok(())
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub(crate) enum Decision {
    Approve,
    Retake,
    Reject,
}
