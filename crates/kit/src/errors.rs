//! gRPC errors with rich details, so callers (the gateway above all) can act on a stable reason
//! instead of parsing messages: every error built here carries an `ErrorInfo` whose `reason` is
//! a snake_case code, field violations for bad input, and `RetryInfo` for rate limits.
//! Internal failures are logged with their cause chain and reach the caller as a bare INTERNAL.

use std::time::Duration;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo.domain` of every examreg error.
pub const DOMAIN: &str = "examreg";

/// An error with a stable reason code.
pub fn status(code: Code, reason: &str, message: impl Into<String>) -> Status {
    let details = ErrorDetails::with_error_info(reason, DOMAIN, []);
    Status::with_error_details(code, message, details)
}

/// INVALID_ARGUMENT naming the fields that are wrong and why (`field → reason code`).
pub fn invalid(reason: &str, message: impl Into<String>, fields: &[(&str, &str)]) -> Status {
    let mut details = ErrorDetails::with_error_info(reason, DOMAIN, []);
    for (field, why) in fields {
        details.add_bad_request_violation(*field, *why);
    }
    Status::with_error_details(Code::InvalidArgument, message, details)
}

/// RESOURCE_EXHAUSTED with the time after which a retry may succeed.
pub fn rate_limited(reason: &str, message: impl Into<String>, retry_after: Duration) -> Status {
    let mut details = ErrorDetails::with_error_info(reason, DOMAIN, []);
    details.set_retry_info(Some(retry_after));
    Status::with_error_details(Code::ResourceExhausted, message, details)
}

/// UNAVAILABLE for a state that passes by itself, with the time after which a retry may succeed.
pub fn retry_later(reason: &str, message: impl Into<String>, retry_after: Duration) -> Status {
    let mut details = ErrorDetails::with_error_info(reason, DOMAIN, []);
    details.set_retry_info(Some(retry_after));
    Status::with_error_details(Code::Unavailable, message, details)
}

/// An error with its causes, on one line (`outer: cause: its cause`).
pub fn with_causes(error: &dyn std::error::Error) -> String {
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    chain
}

/// INTERNAL with a generic message; the cause chain goes to the log only.
pub fn internal(error: &(dyn std::error::Error + 'static)) -> Status {
    let chain = with_causes(error);
    tracing::error!(error = %chain, "internal error");
    status(Code::Internal, "internal", "internal error")
}

/// UNAVAILABLE for a dependency that is down: safe to retry.
pub fn unavailable(what: &str, error: &(dyn std::error::Error + 'static)) -> Status {
    tracing::warn!(dependency = what, error = %error, "dependency unavailable");
    status(
        Code::Unavailable,
        "dependency_unavailable",
        format!("{what} is unavailable"),
    )
}

/// Whether a call failed on the way rather than by the service's answer: the connection broke,
/// the stream was reset, the peer died in the middle of the call. tonic builds such a status
/// itself from the transport's error, keeps that error as its source (an answer the service
/// sent, decoded from its trailers, has none) and often names it UNKNOWN ("transport error")
/// or INTERNAL ("h2 protocol error"), which a caller would take for a bug.
pub fn lost_in_transit(status: &Status) -> bool {
    std::error::Error::source(status).is_some()
        && matches!(
            status.code(),
            Code::Unknown | Code::Internal | Code::Cancelled
        )
}

/// A call lost on the way said as what it is, UNAVAILABLE (callers may try again); any other
/// status as it came.
pub fn lost_as_unavailable(status: Status) -> Status {
    if !lost_in_transit(&status) {
        return status;
    }
    tracing::warn!(code = ?status.code(), error = %status.message(), "a call was lost on the way");
    metrics::counter!("grpc_client_calls_lost_total").increment(1);
    Status::unavailable(format!(
        "the call was lost on the way: {}",
        status.message()
    ))
}

/// A failed call to the service `what`, said as this service's: a dependency that is down,
/// slow past the deadline or lost the call is UNAVAILABLE `dependency_unavailable`; its
/// refusals pass through as they are.
pub fn upstream(what: &str, status: Status) -> Status {
    let status = lost_as_unavailable(status);
    if matches!(
        status.code(),
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled
    ) {
        unavailable(what, &status)
    } else {
        status
    }
}

/// What a caller reads back from an error built here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reason {
    pub reason: String,
    pub fields: Vec<(String, String)>,
    pub retry_after: Option<Duration>,
}

pub fn reason_of(status: &Status) -> Reason {
    let details = status.get_error_details();
    Reason {
        reason: details
            .error_info()
            .map(|info| info.reason.clone())
            .unwrap_or_default(),
        fields: details
            .bad_request()
            .map(|br| {
                br.field_violations
                    .iter()
                    .map(|v| (v.field.clone(), v.description.clone()))
                    .collect()
            })
            .unwrap_or_default(),
        retry_after: details.retry_info().and_then(|r| r.retry_delay),
    }
}

/// A Postgres error as a status: UNAVAILABLE (retryable) when the database cannot be reached
/// or the pool is exhausted, INTERNAL otherwise.
#[cfg(feature = "postgres")]
pub fn db(e: sqlx::Error) -> Status {
    // A statement Postgres cancelled (the statement timeout: 57014) is the store being slow.
    let cancelled = e
        .as_database_error()
        .is_some_and(|d| d.code().as_deref() == Some("57014"));
    let cause = if cancelled {
        "statement_timeout"
    } else if matches!(e, sqlx::Error::PoolTimedOut) {
        "pool_timeout"
    } else if matches!(e, sqlx::Error::Io(_) | sqlx::Error::PoolClosed) {
        "connection"
    } else {
        return internal(&e);
    };
    // Counted for the alert on pool and statement timeouts (`postgres_unavailable_total`).
    metrics::counter!("postgres_unavailable_total", "cause" => cause).increment(1);
    unavailable("postgres", &e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_round_trip() {
        let s = invalid("invalid_iin", "bad", &[("iin", "invalid_checksum")]);
        let r = reason_of(&s);
        assert_eq!(r.reason, "invalid_iin");
        assert_eq!(
            r.fields,
            vec![("iin".to_owned(), "invalid_checksum".to_owned())]
        );
        let s = rate_limited("resend_too_early", "wait", Duration::from_secs(42));
        assert_eq!(reason_of(&s).retry_after, Some(Duration::from_secs(42)));
        assert_eq!(s.code(), Code::ResourceExhausted);
    }
}
