//! `/v1/me/onboarding` and `/v1/me/registration/complete`: where a logged-in applicant stands
//! after the first login — the selfie, the document photos and the consent (SEED.md steps
//! 8–10), then the personal data and education — and the completion that makes it final.
//! Every answer that names the next step gets it from here.

use crate::{
    error::{ApiError, ApiResult},
    extract::{Client, PhotoTaker, User},
    json::time,
    openapi::{AcceptLanguage, ErrorBody, Step},
    state::AppState,
};
use axum::{Json, extract::State, http::StatusCode};
use examreg_domain::{AccountStatus, DocumentType, Step as OnboardingStep};
use examreg_proto::{
    biometrics::v1 as bio,
    convert::{FromWire, steps_named},
    identity::v1 as id,
    profile::v1 as pb,
};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(show))
        .routes(routes!(complete))
}

/// The onboarding's steps after the first login, in the seed's order: the domain's [`OnboardingStep`]s,
/// then the completion (`openapi::Step` is its schema). The pages get the same list (`web`).
pub fn onboarding_steps() -> impl Iterator<Item = &'static str> {
    OnboardingStep::ALL
        .iter()
        .map(|s| s.as_str())
        .chain(["complete"])
}

pub struct Onboarding {
    /// The reading of the document's machine-readable zone, once its photo is stored.
    pub document_check: Option<bio::DocumentCheck>,
    pub steps: Vec<(&'static str, bool)>,
    pub next_step: &'static str,
    /// The identity document being photographed: front and back of an ID card, or a
    /// passport's data page.
    pub document_type: DocumentType,
}

fn registered(account: &id::Account) -> bool {
    AccountStatus::from_wire(account.status) == Some(AccountStatus::Registered)
}

/// The account, when it may be registered: identity is asked only if the photos are sealed.
/// The completion seals them (after the profile's lock) before identity marks the account
/// registered, and only an erasure unseals a set (identity's account goes last, with its
/// sessions), so an unsealed set's account is not registered; most of an applicant's calls
/// need not ask identity at all. A reopened registration keeps its seal, with the steps to
/// redo listed, and identity is asked as before.
pub async fn account_if_sealed(
    state: &AppState,
    token: &str,
    captures: &bio::GetCaptureStatusResponse,
) -> ApiResult<Option<id::Account>> {
    if captures.sealed_at.is_none() {
        return Ok(None);
    }
    Ok(Some(state.identity.account(token).await?))
}

/// Where the applicant stands, from what the services answered (`account`: see
/// [`account_if_sealed`]).
pub fn from(
    captures: &bio::GetCaptureStatusResponse,
    profile: &pb::Profile,
    account: Option<&id::Account>,
) -> Onboarding {
    let document_type =
        DocumentType::from_wire(captures.document_type).unwrap_or(DocumentType::IdCard);
    Onboarding {
        document_check: captures.document_check.clone(),
        ..steps(
            &steps_named(&captures.missing_steps, &captures.missing),
            &steps_named(&profile.missing_steps, &profile.missing),
            document_type,
            account.is_some_and(registered),
        )
    }
}

/// The next step after a photo or the consent was taken, from what biometrics answered then
/// (what the set still lacks): the photo steps come first, so profile is asked only once they
/// are done, and identity never — biometrics took the write, so the set is not sealed and the
/// registration is not complete.
pub async fn after_capture(
    state: &AppState,
    token: &str,
    captures_missing: &[String],
) -> ApiResult<&'static str> {
    // The photo steps and the consent come before the profile's, so while biometrics lists
    // one of them the profile cannot be next. The document type only hides the back of a
    // passport, which biometrics never lists as missing for a passport.
    let profile_missing = if captures_missing.is_empty() {
        let profile = state.profile.profile(token).await?;
        steps_named(&profile.missing_steps, &profile.missing)
    } else {
        Vec::new()
    };
    Ok(steps(
        captures_missing,
        &profile_missing,
        DocumentType::IdCard,
        false,
    )
    .next_step)
}

fn steps(
    captures_missing: &[String],
    profile_missing: &[String],
    document_type: DocumentType,
    registered: bool,
) -> Onboarding {
    let missing = |step: &str| {
        captures_missing
            .iter()
            .chain(profile_missing)
            .any(|m| m == step)
    };
    let steps: Vec<(&'static str, bool)> = onboarding_steps()
        .filter(|&step| {
            !(document_type == DocumentType::Passport
                && step == OnboardingStep::DocumentBack.as_str())
        })
        .map(|step| {
            let done = match step {
                "complete" => registered,
                other => registered || !missing(other),
            };
            (step, done)
        })
        .collect();
    let next_step = steps
        .iter()
        .find(|(_, done)| !done)
        .map_or("done", |(step, _)| step);
    Onboarding {
        document_check: None,
        steps,
        next_step,
        document_type,
    }
}

/// Where the applicant (or the phone) whose token this is stands: biometrics and profile
/// asked at once, identity after them if the photos are sealed.
pub async fn of(state: &AppState, token: &str) -> ApiResult<Onboarding> {
    let (captures, profile) =
        tokio::try_join!(state.biometrics.status(token), state.profile.profile(token))?;
    let account = account_if_sealed(state, token, &captures).await?;
    Ok(from(&captures, &profile, account.as_ref()))
}

/// Photos and consent may be redone until the registration is complete, not after.
pub async fn ensure_open(state: &AppState, token: &str) -> ApiResult<()> {
    if registered(&state.identity.account(token).await?) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "registration_completed",
        ));
    }
    Ok(())
}

/// A step of the onboarding and whether it is done.
#[derive(Serialize, ToSchema)]
pub struct StepState {
    #[schema(value_type = Step)]
    step: &'static str,
    done: bool,
}

/// Where the applicant stands.
#[derive(Serialize, ToSchema)]
pub struct Progress {
    /// In the order the applicant does them; a passport has no `document_back`.
    steps: Vec<StepState>,
    #[schema(value_type = Step)]
    next_step: &'static str,
    /// The document being photographed.
    #[schema(value_type = String, pattern = "^(id_card|passport)$")]
    document_type: DocumentType,
    /// What the reading of the document's machine-readable zone came to; absent until the
    /// photo that bears it (an ID card's back, a passport's photo page) is stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    document_check: Option<DocumentState>,
}

/// Where the document check stands, as the applicant is told it.
#[derive(Serialize, ToSchema)]
pub struct DocumentState {
    /// `checking` (a few seconds after the upload), `verified` (by the reading, or approved
    /// by a person), `retake` (the zone was not read, or a person asks: photograph the
    /// document again), `expired` (another document is needed), `under_review` (its data did
    /// not match; a person checks it) or `rejected` (contact the support desk).
    #[schema(pattern = "^(checking|verified|retake|expired|under_review|rejected)$")]
    status: &'static str,
    /// The stable code of what to do: `document_check_pending`, `document_mrz_unreadable`,
    /// `document_retake_requested`, `document_expired`, `document_review` or
    /// `document_rejected`; absent when verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'static str>,
    /// The code's message in the request's language.
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'static str>,
    /// What the person who decided wrote, for a retake they asked or a rejection.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

impl DocumentState {
    fn of(
        check: &bio::DocumentCheck,
        document_type: DocumentType,
        lang: crate::i18n::Lang,
    ) -> Self {
        let (status, code) = match (
            check.decision.as_str(),
            check.state.as_str(),
            check.outcome.as_str(),
        ) {
            // A person's decision outranks what the reading said.
            ("approve", _, _) => ("verified", None),
            ("retake", _, _) => ("retake", Some("document_retake_requested")),
            ("reject", _, _) => ("rejected", Some("document_rejected")),
            (_, "read", "verified") => ("verified", None),
            (_, "read", "expired") => ("expired", Some("document_expired")),
            (_, "unreadable", _) => ("retake", Some("document_mrz_unreadable")),
            (_, "read" | "failed", _) => ("under_review", Some("document_review")),
            _ => ("checking", Some("document_check_pending")),
        };
        let message = code.map(|code| {
            let key = match (code, document_type) {
                ("document_mrz_unreadable", DocumentType::Passport) => {
                    "document_mrz_unreadable.passport"
                }
                (other, DocumentType::IdCard | DocumentType::Passport) => other,
            };
            crate::i18n::message(key, lang)
        });
        let reason = (matches!(check.decision.as_str(), "retake" | "reject")
            && !check.decision_reason.is_empty())
        .then(|| check.decision_reason.clone());
        Self {
            status,
            code,
            message,
            reason,
        }
    }
}

/// Where the logged-in applicant (or the phone taking the photos) stands: the steps with
/// their state and the next one.
#[utoipa::path(
    get,
    path = "/v1/me/onboarding",
    tag = "onboarding",
    operation_id = "getOnboarding",
    security(("bearer" = [])),
    params(AcceptLanguage),
    responses(
        (status = 200, description = "The steps", body = Progress),
        (status = 401, description = "No valid access or capture token (`unauthenticated`)", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later", body = ErrorBody),
    )
)]
async fn show(
    State(state): State<AppState>,
    client: Client,
    PhotoTaker(user): PhotoTaker,
) -> ApiResult<Json<Progress>> {
    let onboarding = of(&state, &user.token).await?;
    let document_check = onboarding
        .document_check
        .as_ref()
        .map(|check| DocumentState::of(check, onboarding.document_type, client.lang));
    Ok(Json(Progress {
        steps: onboarding
            .steps
            .iter()
            .map(|&(step, done)| StepState { step, done })
            .collect(),
        next_step: onboarding.next_step,
        document_type: onboarding.document_type,
        document_check,
    }))
}

/// The registration, complete.
#[derive(Serialize, ToSchema)]
pub struct Completed {
    #[schema(example = "registered", pattern = "^registered$")]
    status: &'static str,
    #[schema(value_type = Option<String>, format = DateTime)]
    registered_at: Value,
}

fn incomplete(missing: Vec<String>) -> ApiError {
    let mut error = ApiError::new(StatusCode::CONFLICT, "registration_incomplete");
    error.extra = Some(json!({"missing": missing}));
    error
}

/// The completion held by the document check, if it holds it: nothing else is missing (but
/// the zone-bearing photo, when the check asks for it again) and the check is not passed.
/// The error's code and message are the check's, with `missing` and the `document_check`.
fn held(
    check: Option<&bio::DocumentCheck>,
    missing: &[String],
    document_type: DocumentType,
    lang: crate::i18n::Lang,
) -> Option<ApiError> {
    let zone_step = document_type.zone_step().as_str();
    if missing.iter().any(|step| step != zone_step) {
        return None;
    }
    let state = DocumentState::of(check?, document_type, lang);
    let mut error = ApiError::new(StatusCode::CONFLICT, state.code?);
    error.extra =
        Some(json!({"missing": missing, "message": state.message, "document_check": state}));
    Some(error)
}

/// «Завершить регистрацию»: every service confirms its part (biometrics' part includes a
/// document check that passed: the zone read and agreeing, or a person's approval), the
/// profile locks, biometrics seals the photos and consent, then identity marks the account
/// registered. Calling it again answers the same.
#[utoipa::path(
    post,
    path = "/v1/me/registration/complete",
    tag = "onboarding",
    operation_id = "completeRegistration",
    security(("bearer" = [])),
    params(AcceptLanguage),
    responses(
        (status = 200, description = "Registered", body = Completed),
        (status = 401, description = "No valid access token (`unauthenticated`)", body = ErrorBody),
        (status = 403, description = "A capture token cannot complete (`capture_only`)", body = ErrorBody),
        (status = 409, description = "`registration_incomplete`, with `missing`: the steps still to do; or the document check holds it, with its code (`document_check_pending`, `document_review`, `document_rejected`, `document_mrz_unreadable`, `document_expired`, `document_retake_requested`), `missing` and the `document_check`", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later", body = ErrorBody),
    )
)]
async fn complete(
    State(state): State<AppState>,
    client: Client,
    user: User,
) -> ApiResult<Json<Completed>> {
    let token = &user.token;
    // While the document is read the page asks again every two seconds: those calls reach
    // biometrics and profile only.
    let (captures, profile) =
        tokio::try_join!(state.biometrics.status(token), state.profile.profile(token))?;
    if let Some(account) = account_if_sealed(&state, token, &captures).await?
        && registered(&account)
    {
        return Ok(Json(Completed {
            status: "registered",
            registered_at: time(account.registered_at.as_ref()),
        }));
    }
    // The account exists only once its email was proven (identity consumes the proof when it
    // creates the account), so the email needs no separate check here.
    let missing: Vec<String> = steps_named(&captures.missing_steps, &captures.missing)
        .into_iter()
        .chain(steps_named(&profile.missing_steps, &profile.missing))
        .collect();
    let document_type =
        DocumentType::from_wire(captures.document_type).unwrap_or(DocumentType::IdCard);
    let sex = examreg_domain::Sex::from_wire(profile.sex).map_or("", examreg_domain::Sex::as_str);
    // The document check first: its message says what to do (wait, retake, call the desk).
    if let Some(error) = held(
        captures.document_check.as_ref(),
        &missing,
        document_type,
        client.lang,
    ) {
        // The profile's names go beside the zone's for whoever reviews it (never a seal).
        if captures
            .document_check
            .as_ref()
            .is_some_and(|check| check.outcome == "review" && check.decision.is_empty())
        {
            state.biometrics.seal(token, &profile, sex, true).await?;
        }
        return Err(error);
    }
    if !missing.is_empty() {
        return Err(incomplete(missing));
    }
    // Locked first: from here on the name, birth date and sex are what was confirmed. If
    // identity fails next, the applicant retries; the lock is idempotent.
    let lock = state.profile.lock(token).await?;
    if !lock.locked {
        return Err(incomplete(steps_named(&lock.missing_steps, &lock.missing)));
    }
    // Then the photos and the consent, sealed by biometrics under the set's own lock: an
    // upload still arriving now is refused there, whatever was checked above.
    let seal = state.biometrics.seal(token, &profile, sex, false).await?;
    if !seal.sealed {
        let missing = steps_named(&seal.missing_steps, &seal.missing);
        return Err(held(
            seal.document_check.as_ref(),
            &missing,
            document_type,
            client.lang,
        )
        .unwrap_or_else(|| incomplete(missing)));
    }
    let done = state.identity.complete_registration(token).await?;
    metrics::counter!("registrations_completed_total").increment(1);
    Ok(Json(Completed {
        status: "registered",
        registered_at: time(done.registered_at.as_ref()),
    }))
}
