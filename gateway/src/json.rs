//! How values look in the public JSON, where several resources show them.

use chrono::{DateTime, Utc};
use examreg_proto::convert;
use serde_json::{Value, json};

/// A time as the public JSON shows every time: RFC 3339 in UTC to the second
/// (`2026-12-01T10:00:00Z`).
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A service's time as the cabinet and the profile show it: [`rfc3339`], or null.
pub fn time(t: Option<&prost_types::Timestamp>) -> Value {
    convert::datetime(t).map_or(Value::Null, |t| json!(rfc3339(t)))
}

/// `serialize_with` for a time shown as [`rfc3339`].
pub fn secs<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*t))
}

/// `serialize_with` for a time that may be absent, shown as [`rfc3339`] or null.
pub fn secs_or_null<S: serde::Serializer>(
    t: &Option<DateTime<Utc>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => secs(t, s),
        None => s.serialize_none(),
    }
}
