//! The OpenAPI document, generated from the handlers and the types they take and give
//! (`utoipa`): each resource's router registers its documented routes with `routes!`, and the
//! document is what those routes say. The shapes several resources share live here: the error
//! body, the `Accept-Language` header, the bearer scheme.

use std::collections::BTreeMap;
use utoipa::{
    IntoParams, Modify, OpenApi, ToSchema,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "examreg gateway",
        version = "1",
        description = "Public HTTP API of the examreg applicant registration. Errors always have \
                       the shape of `Error`; messages follow Accept-Language (kk, ru, en; ru by \
                       default). The gateway listens on three ports: the applicants' (every \
                       operation but those tagged `admin` and `ops`), the operators' (`admin`) \
                       and the platform's (`ops`)."
    ),
    servers((url = "/")),
    tags(
        (name = "admin", description = "Served on the operators' port (`GATEWAY_ADMIN_ADDR`), \
                                        never on the applicants'."),
        (name = "ops", description = "Served on the platform's port (`GATEWAY_OPS_ADDR`): \
                                      probes and metrics."),
        (name = "contract", description = "This document, on the applicants' port.")
    ),
    paths(openapi_json),
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

/// What holds for every operation of the API, added once the routers' paths are in: each
/// address and each pass has its budget of requests per minute (`middleware::rate_limit`), so
/// every `/v1` operation may answer 429 `proof_of_work_required` or `rate_limited`; every JSON body goes through `error::ApiJson`, so
/// an operation that takes one may answer 400 `malformed_request` (no body, not JSON, not
/// `application/json`) and 413 `body_too_large`.
pub fn finish(document: &mut utoipa::openapi::OpenApi) {
    for (path, item) in &mut document.paths.paths {
        if !path.starts_with("/v1/") {
            continue;
        }
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            let takes_json = operation
                .request_body
                .as_ref()
                .is_some_and(|body| body.content.contains_key("application/json"));
            let mut add = |status: &str, description: &str| {
                operation
                    .responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| error_response(description).into());
            };
            add(
                "429",
                "Past the address's soft limit: `proof_of_work_required`, with `proof_of_work` \
                 (solve it and send the same request again with `X-Proof-Of-Work`; the answer's \
                 `X-Pow-Pass` is then sent with every request). Past a pass's limit: \
                 `rate_limited`; see Retry-After",
            );
            if takes_json {
                add(
                    "400",
                    "No body, or one that is not JSON sent as `application/json` (`malformed_request`)",
                );
                add(
                    "413",
                    "The body is larger than the gateway takes (`body_too_large`)",
                );
            }
        }
    }
}

fn error_response(description: &str) -> utoipa::openapi::Response {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Error")))
                .build(),
        )
        .build()
}

/// A string the API takes only as one of `values` (the current version of a text, a code of
/// a fixed list), for `#[schema(schema_with = …)]`.
pub fn one_of<'a>(values: impl IntoIterator<Item = &'a str>) -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .enum_values(Some(values))
        .build()
}

/// An email address as `examreg_domain::Email::parse` takes it, in the usual shapes: a local
/// part of at most 64 characters (with at most one dot, which keeps the pattern free of
/// look-aheads that make generating from it slow), up to four labels of at most 63
/// characters (letters, digits, inner hyphens) and a top-level label of letters (or `xn--…`),
/// 254 characters in all. No `format: email`: validators read that as RFC 5321 with IDNA
/// rules, which is neither what the API takes nor what it refuses.
pub fn email() -> utoipa::openapi::Object {
    const ATOM: &str = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]";
    const LABEL: &str = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
    const TOP: &str = r"(?:[A-Za-z][A-Za-z-]{0,61}[A-Za-z]|[Xx][Nn]--[A-Za-z0-9](?:[A-Za-z0-9-]{0,57}[A-Za-z0-9])?)";
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .description(Some("An email address"))
        .pattern(Some(format!(
            r"^{ATOM}{{1,32}}(?:\.{ATOM}{{1,31}})?@(?:{LABEL}\.){{1,4}}{TOP}$"
        )))
        .max_length(Some(254))
        .examples(["aigerim@mail.kz"])
        .build()
}

/// A body with exactly one of two fields, the other blank or absent (a blank one counts as
/// absent), as a `oneOf` of the two cases.
pub fn exactly_one(
    first: (&str, utoipa::openapi::Object),
    second: (&str, utoipa::openapi::Object),
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::{ObjectBuilder, OneOfBuilder, Type, schema::SchemaType};
    let blank = || {
        ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
            .pattern(Some(r"^\s*$"))
    };
    let case = |(field, value): (&str, utoipa::openapi::Object), other: &str| {
        ObjectBuilder::new()
            .property(field, value)
            .required(field)
            .property(other, blank())
    };
    let (first_name, second_name) = (first.0, second.0);
    OneOfBuilder::new()
        .item(case(first, second_name))
        .item(case(second, first_name))
        .into()
}

/// A box the applicant must tick: `true`, and nothing else.
pub fn must_be_true() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::Boolean)
        .enum_values(Some([true]))
        .build()
}

/// This document, on the applicants' port (where clients pin it) and beside the docs viewer
/// (served by those routers, so described here).
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "contract",
    operation_id = "openapi",
    responses((status = 200, description = "This document, OpenAPI 3.1", content_type = "application/json"))
)]
#[allow(dead_code)]
fn openapi_json() {}

/// Every error answer: `{"error": {"code", "message", "fields", …}}`, with what some codes
/// carry besides.
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
    /// With `proof_of_work_required`: the challenge to solve (the ALTCHA scheme: find the
    /// number in `0..=maxnumber` whose SHA-256 of `salt` followed by it in decimal, in hex, is
    /// `challenge`), sent back as `X-Proof-Of-Work: base64(JSON {algorithm, challenge, number,
    /// salt, signature})`.
    pub proof_of_work: Option<crate::pow::Challenge>,
    /// With a refused photo (`photo_*`): the measurements behind the refusal.
    pub checks: Option<crate::capture::Checks>,
    /// With `registration_incomplete`, and the document check's codes at completion: the steps
    /// still to do.
    pub missing: Option<Vec<String>>,
    /// With the document check's codes at completion (`document_check_pending`,
    /// `document_review`, …): where the check stands, as the onboarding shows it.
    pub document_check: Option<crate::onboarding::DocumentState>,
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
    /// changed by a concurrent request (`flow_changed`), or, at the registration's password
    /// step, an account already holds the IIN, passport number or email (`already_registered`:
    /// one answer for either; the email's code is spent, the flow is back at the email step,
    /// and the address gets a letter on how to recover the account or reach the support desk).
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
    /// The contract clients pin is the committed `docs/openapi.json`: a change of the API
    /// shows there, in the diff, or this fails. `EXAMREG_BLESS=1` rewrites it.
    #[test]
    fn the_committed_document_is_the_one_served() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
        let served = serde_json::to_string_pretty(&crate::startup::document()).unwrap() + "\n";
        if std::env::var_os("EXAMREG_BLESS").is_some() {
            std::fs::write(&path, &served).unwrap();
            return;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == served,
            "docs/openapi.json is not the document the gateway serves: run \
             `EXAMREG_BLESS=1 cargo test -p examreg-gateway --lib openapi` and commit the change \
             (and, for a change that breaks clients, see docs/compatibility.md)"
        );
    }

    #[test]
    fn every_operation_has_an_id_and_the_enforced_constraints_are_there() {
        let served = serde_json::to_value(crate::startup::document()).unwrap();
        if std::env::var_os("EXAMREG_PRINT_OPENAPI").is_some() {
            println!("{}", serde_json::to_string_pretty(&served).unwrap());
        }
        let paths = served["paths"].as_object().unwrap();
        assert!(paths.len() >= 36, "{}", paths.len());
        for (path, operations) in paths {
            for (method, operation) in operations.as_object().unwrap() {
                assert!(operation["operationId"].is_string(), "{method} {path}");
                assert!(operation["responses"].is_object(), "{method} {path}");
            }
        }
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
        // Every API operation may be refused by the address's budget.
        for (path, operations) in paths.iter().filter(|(p, _)| p.starts_with("/v1/")) {
            for (method, operation) in operations.as_object().unwrap() {
                assert!(operation["responses"]["429"].is_object(), "{method} {path}");
            }
        }
        let code = &served["components"]["schemas"]["CodeBody"]["properties"]["code"];
        assert_eq!(code["pattern"], "^[0-9]{6}$");
        assert!(served["components"]["schemas"]["Error"].is_object());
        assert_eq!(
            served["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
    }
}
