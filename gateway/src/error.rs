//! The one error shape of the public API:
//! `{"error": {"code", "message", "fields"}}` with a fitting status and `Retry-After` on 429.
//! Handlers return [`ApiError`] without knowing the language; the `localize` middleware writes
//! the body in the request's `Accept-Language`.

use crate::i18n::{self, Lang};
use axum::{
    extract::{FromRequest, Request, rejection::JsonRejection},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use examreg_kit::errors::reason_of;
use std::{collections::BTreeMap, time::Duration};
use tonic::Code;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub fields: BTreeMap<String, String>,
    pub retry_after: Option<Duration>,
    /// Extra members of the error object (e.g. the missing steps).
    pub extra: Option<serde_json::Value>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &str) -> Self {
        Self {
            status,
            code: code.to_owned(),
            fields: BTreeMap::new(),
            retry_after: None,
            extra: None,
        }
    }

    pub fn field(mut self, field: &str, reason: &str) -> Self {
        self.fields.insert(field.to_owned(), reason.to_owned());
        self
    }

    pub fn validation(code: &str, field: &str, reason: &str) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code).field(field, reason)
    }

    pub fn retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    pub fn flow_expired() -> Self {
        Self::new(StatusCode::GONE, "flow_expired")
    }

    pub fn internal(what: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %what, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal")
    }

    pub fn unavailable(what: &dyn std::fmt::Display) -> Self {
        tracing::warn!(error = %what, "dependency unavailable");
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "dependency_unavailable")
            .retry_after(Duration::from_secs(5))
    }
}

/// The HTTP status a service's gRPC code becomes (before a reason may refine it).
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::InvalidArgument | Code::OutOfRange => StatusCode::UNPROCESSABLE_ENTITY,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::FailedPrecondition => StatusCode::CONFLICT,
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        Code::Ok | Code::Unknown | Code::Internal | Code::Unimplemented | Code::DataLoss => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

/// Maps a service's error to the public shape, keeping its stable reason.
impl From<tonic::Status> for ApiError {
    fn from(status: tonic::Status) -> Self {
        let reason = reason_of(&status);
        let http = http_status(status.code());
        let code = match (reason.reason.as_str(), http) {
            // The public names of verification's reasons.
            ("challenge_expired", _) => "code_expired".to_owned(),
            ("challenge_burnt", _) => "code_attempts_exhausted".to_owned(),
            ("", StatusCode::SERVICE_UNAVAILABLE) => "dependency_unavailable".to_owned(),
            ("", StatusCode::UNAUTHORIZED) => "unauthenticated".to_owned(),
            ("", StatusCode::FORBIDDEN) => "forbidden".to_owned(),
            ("", _) => "internal".to_owned(),
            (reason, _) => reason.to_owned(),
        };
        let http = match code.as_str() {
            "code_expired" | "code_attempts_exhausted" => StatusCode::UNPROCESSABLE_ENTITY,
            _ => http,
        };
        if http.is_server_error() {
            tracing::warn!(grpc = ?status.code(), message = status.message(), "service call failed");
        }
        let mut error = Self::new(http, &code);
        for (field, why) in reason.fields {
            error.fields.insert(field, why);
        }
        if http == StatusCode::TOO_MANY_REQUESTS || http == StatusCode::SERVICE_UNAVAILABLE {
            error.retry_after = reason.retry_after.or(Some(Duration::from_secs(5)));
        }
        error
    }
}

/// The not-yet-localized error a response carries to the `localize` middleware.
#[derive(Clone)]
struct Pending(ApiError);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        if let Some(wait) = self.retry_after {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            if let Ok(value) = HeaderValue::from_str(&secs.max(1).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response.extensions_mut().insert(Pending(self));
        response
    }
}

/// The stable code of the error a response carries, before it is localized.
pub fn code_of(response: &Response) -> Option<&str> {
    response
        .extensions()
        .get::<Pending>()
        .map(|Pending(error)| error.code.as_str())
}

/// Renders errors in the caller's language.
pub async fn localize(request: Request, next: Next) -> Response {
    let lang = Lang::from_header(
        request
            .headers()
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    );
    let mut response = next.run(request).await;
    if let Some(Pending(error)) = response.extensions_mut().remove::<Pending>() {
        let mut body = serde_json::json!({
            "code": error.code,
            "message": i18n::message(&error.code, lang),
        });
        if !error.fields.is_empty() {
            body["fields"] = serde_json::to_value(&error.fields).unwrap_or_default();
        }
        if let Some(serde_json::Value::Object(extra)) = error.extra {
            for (k, v) in extra {
                body[k] = v;
            }
        }
        let (mut parts, _) = response.into_parts();
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        parts.headers.insert(
            header::CONTENT_LANGUAGE,
            HeaderValue::from_static(lang.tag()),
        );
        parts.headers.remove(header::CONTENT_LENGTH);
        let json = serde_json::json!({ "error": body }).to_string();
        return Response::from_parts(parts, axum::body::Body::from(json));
    }
    response
}

/// JSON body extractor whose rejections use the API's error shape.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    axum::Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            ),
            Err(JsonRejection::JsonDataError(e)) => {
                // A field of the wrong type or a missing required field.
                let text = e.body_text();
                let field = text
                    .split('`')
                    .nth(1)
                    .filter(|f| f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or("body")
                    .to_owned();
                Err(
                    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
                        .field(&field, "invalid"),
                )
            }
            Err(_) => Err(ApiError::new(StatusCode::BAD_REQUEST, "malformed_request")),
        }
    }
}
