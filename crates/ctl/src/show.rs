//! How the answers are shown: tables and `key: value` lines for people, JSON for scripts, and
//! the wire's values in the words the domain gives them.

use anyhow::Context;
use examreg_domain::{AccountStatus, CaptureKind, DocumentType, Sex};
use examreg_proto::{
    biometrics::v1 as bio,
    convert::{FromWire, datetime, steps_named, timestamp},
    identity::v1 as id,
    profile::v1 as prof,
};
use serde_json::{Value, json};
use std::io::Write;

pub(crate) fn time(at: Option<&prost_types::Timestamp>) -> String {
    datetime(at).map(|t| t.to_rfc3339()).unwrap_or_default()
}

pub(crate) fn parse_time(text: Option<&str>) -> anyhow::Result<Option<prost_types::Timestamp>> {
    text.map(|t| {
        chrono::DateTime::parse_from_rfc3339(t)
            .map(|t| timestamp(t.to_utc()))
            .with_context(|| format!("{t} is not an RFC 3339 time"))
    })
    .transpose()
}

/// The text form of a wire value of one of the domain's closed sets (`examreg_domain`'s,
/// converted in `examreg_proto::convert`); empty when unset (a profile without its details)
/// or a value this build does not know.
pub(crate) fn name_of<T: FromWire>(value: i32, text: fn(T) -> &'static str) -> &'static str {
    T::from_wire(value).map_or("", text)
}

/// A change feed event's kind, as the wire's enum names it without its prefix
/// (`account_created`, `registration_completed`, ...): the words scripts that follow the feed
/// with `watch --json` match on.
pub(crate) fn event_name(kind: i32) -> String {
    id::RegistrationEventKind::try_from(kind).map_or_else(
        |_| "unknown".to_owned(),
        |k| {
            k.as_str_name()
                .trim_start_matches("REGISTRATION_EVENT_KIND_")
                .to_ascii_lowercase()
        },
    )
}

pub(crate) fn account_json(a: &id::Account) -> Value {
    let (kind, identifier) = match &a.identifier {
        Some(id::account::Identifier::Iin(v)) => ("iin", v.as_str()),
        Some(id::account::Identifier::PassportNumber(v)) => ("passport_number", v.as_str()),
        None => ("none", ""),
    };
    let terms = a.terms.as_ref();
    json!({
        "account_id": a.account_id,
        "status": name_of(a.status, AccountStatus::as_str),
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

pub(crate) fn profile_json(p: &prof::Profile) -> Value {
    json!({
        "surname": p.surname,
        "given_name": p.given_name,
        "patronymic": p.patronymic,
        "sex": name_of(p.sex, Sex::as_str),
        "birth_date": p.birth_date,
        "region_code": p.region_code,
        "mobile_phone": p.mobile_phone,
        "contingent_code": p.contingent_code,
        "institution": p.institution.as_ref().map(|i| json!({
            "id": i.id,
            "name": i.name.as_ref().map(|n| json!({"kk": n.kk, "ru": n.ru, "en": n.en})),
        })),
        "locked_at": time(p.locked_at.as_ref()),
        "missing": steps_named(&p.missing_steps, &p.missing),
        "redo": steps_named(&p.redo_steps, &p.redo),
    })
}

/// What a document's machine-readable zone says.
pub(crate) fn zone_json(z: &bio::ReadZone) -> Value {
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
pub(crate) fn biometrics_json(b: &bio::ExportPersonDataResponse) -> Value {
    json!({
        "status": b.status.as_ref().map(captures_json),
        "photos": b.captures.iter().map(|c| json!({
            "capture_id": c.capture_id,
            "kind": name_of(c.kind, CaptureKind::as_str),
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

pub(crate) fn captures_json(s: &bio::GetCaptureStatusResponse) -> Value {
    json!({
        "document_type": name_of(s.document_type, DocumentType::as_str),
        "captures": s.captures.iter().map(|c| json!({
            "kind": name_of(c.kind, CaptureKind::as_str),
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
        "missing": steps_named(&s.missing_steps, &s.missing),
        "redo": steps_named(&s.redo_steps, &s.redo),
    })
}

pub(crate) fn review_json(r: &bio::Review) -> Value {
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

/// Rows as an aligned table under a header.
pub(crate) fn table(
    out: &mut dyn Write,
    header: &[&str],
    rows: &[Vec<String>],
) -> std::io::Result<()> {
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
pub(crate) fn fields(out: &mut dyn Write, value: &Value, prefix: &str) -> std::io::Result<()> {
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
