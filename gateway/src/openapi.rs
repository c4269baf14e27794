//! The OpenAPI document, generated from the handlers and the types they take and give
//! (`utoipa`): each resource's router registers its documented routes with `routes!`, and the
//! document is what those routes say. The shapes several resources share live here: the error
//! body, the `Accept-Language` header, the bearer scheme.
//!
//! Resources not yet described this way still come from the hand-written document
//! (`static/openapi.json`), merged under the generated one: a path the code describes is
//! never taken from the file.

use std::collections::BTreeMap;
use utoipa::{
    IntoParams, Modify, OpenApi, ToSchema,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

/// The hand-written document of the paths not generated yet.
const HAND_WRITTEN: &str = include_str!("../static/openapi.json");

#[derive(OpenApi)]
#[openapi(
    info(
        title = "examreg gateway",
        version = "1",
        description = "Public HTTP API of the examreg applicant registration. Errors always have \
                       the shape of `Error`; messages follow Accept-Language (kk, ru, en; ru by \
                       default)."
    ),
    servers((url = "/")),
    components(schemas(ErrorBody, Step)),
    modifiers(&Bearer)
)]
struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The document's frame (info, servers, shared components), for the routers to fill.
pub fn frame() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The document as served: what the routers generated, then every path they do not describe
/// from the hand-written file.
pub fn document(generated: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let hand_written: utoipa::openapi::OpenApi =
        serde_json::from_str(HAND_WRITTEN).expect("static/openapi.json is an OpenAPI document");
    let mut document = generated;
    document.merge(hand_written);
    document
}

/// Every error answer: `{"error": {"code", "message", "fields"}}`.
#[derive(ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code (docs/errors.md lists them all).
    #[schema(example = "invalid_iin")]
    pub code: String,
    /// Localized by Accept-Language.
    pub message: String,
    /// The fields at fault, each with a reason (`required`, `invalid`, …).
    pub fields: Option<BTreeMap<String, String>>,
}

/// Where the applicant goes next: a step of the registration flow (`identifier` … `login`)
/// or of the onboarding after the first login (`face` … `complete`), or `done`.
#[derive(serde::Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = NextStep)]
pub enum Step {
    Identifier,
    Email,
    EmailCode,
    Password,
    Login,
    Face,
    DocumentFront,
    DocumentBack,
    Consent,
    Name,
    Details,
    Education,
    Complete,
    Done,
}

/// A flow's id in a path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path, names("flow_id"))]
pub struct FlowId(
    /// The `flow_id` the flow started with.
    #[param(format = Uuid)]
    pub String,
);

/// The refusals every step of a registration or recovery flow may answer with.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum FlowRefusals {
    /// Unknown flow id, or one of the other kind of flow (`not_found`).
    #[response(status = 404)]
    NotFound(#[to_schema] ErrorBody),
    /// Step out of order (`step_out_of_order`), the flow already completed (`flow_completed`),
    /// or changed by a concurrent request (`flow_changed`).
    #[response(status = 409)]
    Conflict(#[to_schema] ErrorBody),
    /// The flow expired (`flow_expired`): start again.
    #[response(status = 410)]
    Gone(#[to_schema] ErrorBody),
    /// Validation failed; `fields` names the fields.
    #[response(status = 422)]
    Invalid(#[to_schema] ErrorBody),
    /// Too many requests, or a budget spent (codes, resends); see Retry-After.
    #[response(status = 429)]
    TooMany(#[to_schema] ErrorBody),
    /// A dependency is down; retry later.
    #[response(status = 503)]
    Unavailable(#[to_schema] ErrorBody),
}

/// What a flow's step answers: the next step.
#[derive(serde::Serialize, ToSchema)]
pub struct Next {
    #[schema(value_type = Step)]
    pub next_step: &'static str,
}

/// When another code may be sent.
#[derive(serde::Serialize, ToSchema)]
pub struct Resend {
    #[serde(serialize_with = "crate::json::secs_or_null")]
    pub resend_available_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The language of the answer's texts and messages.
#[derive(IntoParams)]
#[into_params(parameter_in = Header, names("Accept-Language"))]
pub struct AcceptLanguage(
    /// kk, ru or en; ru when absent or none of them.
    #[param(example = "kk, ru;q=0.9")]
    pub Option<String>,
);

#[cfg(test)]
mod tests {
    use super::*;

    fn generated() -> utoipa::openapi::OpenApi {
        crate::startup::described().split_for_parts().1
    }

    #[test]
    fn the_code_describes_its_paths_and_the_file_adds_only_the_rest() {
        let generated = generated();
        let described: Vec<String> = generated.paths.paths.keys().cloned().collect();
        let served = serde_json::to_value(document(generated)).unwrap();
        if std::env::var_os("EXAMREG_PRINT_OPENAPI").is_some() {
            println!("{}", serde_json::to_string_pretty(&served).unwrap());
        }
        for path in &described {
            let operations = served["paths"][path].as_object().unwrap();
            for (method, operation) in operations {
                assert!(operation["operationId"].is_string(), "{method} {path}");
            }
        }
        let hand_written: serde_json::Value = serde_json::from_str(HAND_WRITTEN).unwrap();
        for path in hand_written["paths"].as_object().unwrap().keys() {
            assert!(served["paths"][path].is_object(), "{path} lost");
        }
        // The constraints the API enforces are in the document.
        let parameters = served["paths"]["/v1/reference/institutions"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .clone();
        let page_size = parameters
            .iter()
            .find(|p| p["name"] == "page_size")
            .unwrap();
        assert_eq!(
            (
                &page_size["schema"]["minimum"],
                &page_size["schema"]["maximum"]
            ),
            (&serde_json::json!(1), &serde_json::json!(100))
        );
        assert!(served["components"]["schemas"]["Error"].is_object());
        assert_eq!(
            served["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
    }
}
