//! One applicant through the whole seed journey over the public HTTP API, each step timed.

use crate::{mail::Mailbox, report::Recorder};
use chrono::{Days, NaiveDate};
use examreg_domain::{Iin, Sex};
use examreg_testkit::photos::{SELFIE, id_card};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

pub(crate) const PASSWORD: &str = "Жасыл-алма-көктемде-7";

/// What every applicant shares.
pub(crate) struct Ctx {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    pub(crate) mailbox: Mailbox,
    pub(crate) recorder: Recorder,
    pub(crate) photos: Photos,
    pub(crate) next: AtomicU64,
    /// One applicant's access token, for the hop measurement after the load.
    pub(crate) token: std::sync::Mutex<Option<String>>,
    /// The IINs of the people who completed, for the login-only run.
    pub(crate) registered: std::sync::Mutex<Vec<String>>,
}

/// The photos every applicant shares, and one back of an ID card for the bound (in the
/// journey each person's back is their own, its zone carrying their IIN).
pub(crate) struct Photos {
    pub(crate) face: Vec<u8>,
    pub(crate) front: Vec<u8>,
    pub(crate) back: Vec<u8>,
    /// What the selfie's page sends while the oval waits: the camera's 320 × 240 picture.
    pub(crate) frame: Vec<u8>,
}

impl Photos {
    pub(crate) fn load() -> Self {
        let holder = Iin::parse(&examreg_testkit::random_iin(Sex::Female)).expect("a valid IIN");
        Self {
            face: SELFIE.to_vec(),
            front: id_card(true),
            back: examreg_testkit::cards::id_card_back(
                &holder,
                "341231",
                examreg_testkit::cards::Shot::CLEAN,
            ),
            frame: examreg_testkit::photos::camera_jpeg(
                &examreg_testkit::photos::selfie(),
                320,
                240,
            ),
        }
    }
}

/// A person who has not registered yet: a valid IIN (born 1990–2008), its birth date and sex,
/// a fresh email and an address of their own (the gateway's per-IP limits are per person).
struct Person {
    iin: Iin,
    email: String,
    ip: String,
}

impl Person {
    fn new(n: u64) -> Self {
        let iin = loop {
            let birth = NaiveDate::from_ymd_opt(1990, 1, 1).expect("literal")
                + Days::new(rand::random::<u64>() % 6900);
            let sex = if rand::random() {
                Sex::Male
            } else {
                Sex::Female
            };
            if let Some(iin) = Iin::compose(birth, sex, rand::random::<u16>() % 10_000) {
                break iin;
            }
        };
        let tag: u64 = rand::random();
        Self {
            iin,
            email: format!("bench.{tag:016x}@example.kz"),
            ip: format!("10.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255),
        }
    }
}

struct Step<'a> {
    ctx: &'a Ctx,
    person: &'a Person,
    token: Option<String>,
}

impl Step<'_> {
    /// Sends one request as this person and records its latency under `name`; an answer other
    /// than `expect` ends the journey with an error kind `name:status:code`. Past the first
    /// screen a person told `overloaded` does what the answer asks — waits its Retry-After and
    /// sends the step again (for up to a minute; each such wait counts as
    /// `name:429:overloaded:retried`); at the first screen it is turned away.
    async fn call(
        &self,
        name: &'static str,
        method: Method,
        path: &str,
        body: Body,
        expect: StatusCode,
    ) -> Result<Value, String> {
        let patience = Instant::now() + Duration::from_secs(60);
        loop {
            match self
                .once(name, method.clone(), path, body.clone(), expect)
                .await
            {
                Err(Refused::Overloaded(wait))
                    if name != "start" && Instant::now() + wait < patience =>
                {
                    self.ctx
                        .recorder
                        .error(format!("{name}:429:overloaded:retried"));
                    tokio::time::sleep(wait).await;
                }
                Err(Refused::Overloaded(_)) => return Err(format!("{name}:429:overloaded")),
                Err(Refused::Other(kind)) => return Err(kind),
                Ok(value) => return Ok(value),
            }
        }
    }

    async fn once(
        &self,
        name: &'static str,
        method: Method,
        path: &str,
        body: Body,
        expect: StatusCode,
    ) -> Result<Value, Refused> {
        let mut request = self
            .ctx
            .http
            .request(method, format!("{}{path}", self.ctx.base))
            .header("x-forwarded-for", &self.person.ip)
            .header("accept-language", "ru");
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        request = match body {
            Body::None => request,
            Body::Json(value) => request.json(&value),
            Body::Jpeg(bytes) => request.header("content-type", "image/jpeg").body(bytes),
        };
        let started = Instant::now();
        let response = request.send().await;
        let elapsed = started.elapsed();
        let response =
            response.map_err(|e| Refused::Other(format!("{name}:transport:{}", kind_of(&e))))?;
        let status = response.status();
        let retry_after = retry_after(&response).unwrap_or(1);
        let value: Value = response.json().await.unwrap_or(Value::Null);
        self.ctx.recorder.step(name, elapsed);
        if status != expect {
            let code = value["error"]["code"].as_str().unwrap_or("-");
            if status == StatusCode::TOO_MANY_REQUESTS && code == "overloaded" {
                return Err(Refused::Overloaded(Duration::from_secs(retry_after)));
            }
            return Err(Refused::Other(format!("{name}:{}:{code}", status.as_u16())));
        }
        Ok(value)
    }
}

/// The seconds an answer's Retry-After asks to wait.
pub(crate) fn retry_after(response: &reqwest::Response) -> Option<u64> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
}

enum Refused {
    /// Refused with `overloaded`, to be tried again after this long.
    Overloaded(Duration),
    Other(String),
}

#[derive(Clone)]
enum Body {
    None,
    Json(Value),
    Jpeg(Vec<u8>),
}

fn kind_of(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "other"
    }
}

/// Runs one applicant from the first screen to the cabinet.
pub(crate) async fn run(ctx: Arc<Ctx>) -> Result<(), String> {
    let n = ctx.next.fetch_add(1, Ordering::Relaxed);
    let person = Person::new(n);
    let started = Instant::now();
    let mut s = Step {
        ctx: &ctx,
        person: &person,
        token: None,
    };
    use Body::{Jpeg, Json};
    use Method as M;
    let ok = StatusCode::OK;
    let flow = s
        .call(
            "start",
            M::POST,
            "/v1/registrations",
            Json(json!({"citizenship": "KZ", "terms_version": "2026-01", "terms_accepted": true})),
            StatusCode::CREATED,
        )
        .await?;
    let flow = flow["flow_id"].as_str().unwrap_or_default().to_owned();
    let at = |step: &str| format!("/v1/registrations/{flow}/{step}");
    s.call(
        "identifier",
        M::PUT,
        &at("identifier"),
        Json(json!({"iin": person.iin.as_str()})),
        ok,
    )
    .await?;
    s.call(
        "email",
        M::PUT,
        &at("email"),
        Json(json!({"email": person.email})),
        ok,
    )
    .await?;
    let mail_started = Instant::now();
    let code = ctx
        .mailbox
        .code_for(&person.email, Duration::from_secs(60))
        .await
        .ok_or_else(|| "mail:timeout:-".to_owned())?;
    ctx.recorder.step("mail", mail_started.elapsed());
    s.call(
        "verify",
        M::POST,
        &at("email/verify"),
        Json(json!({"code": code})),
        ok,
    )
    .await?;
    s.call(
        "password",
        M::POST,
        &at("password"),
        Json(json!({"password": PASSWORD, "password_confirmation": PASSWORD})),
        StatusCode::CREATED,
    )
    .await?;
    let session = s
        .call(
            "login",
            M::POST,
            "/v1/sessions",
            Json(json!({"login": person.iin.as_str(), "password": PASSWORD})),
            StatusCode::CREATED,
        )
        .await?;
    s.token = session["access_token"].as_str().map(str::to_owned);
    ctx.token.lock().expect("token lock").clone_from(&s.token);
    let photos = &ctx.photos;
    s.call(
        "face",
        M::PUT,
        "/v1/me/biometrics/face",
        Jpeg(photos.face.clone()),
        ok,
    )
    .await?;
    s.call(
        "document_front",
        M::PUT,
        "/v1/me/biometrics/document-front",
        Jpeg(photos.front.clone()),
        ok,
    )
    .await?;
    let iin = person.iin.clone();
    let back = tokio::task::spawn_blocking(move || {
        examreg_testkit::cards::id_card_back(&iin, "341231", examreg_testkit::cards::Shot::CLEAN)
    })
    .await
    .map_err(|_| "document_back:draw:-".to_owned())?;
    s.call(
        "document_back",
        M::PUT,
        "/v1/me/biometrics/document-back",
        Jpeg(back),
        ok,
    )
    .await?;
    let back_stored = Instant::now();
    s.call(
        "consent",
        M::POST,
        "/v1/me/biometrics/consent",
        Json(json!({"consent_version": "2026-01", "accepted": true})),
        ok,
    )
    .await?;
    s.call(
        "name",
        M::PUT,
        "/v1/me/profile/name",
        Json(json!({"surname": "Жұмабаев", "given_name": "Ерлан"})),
        ok,
    )
    .await?;
    s.call(
        "details",
        M::PUT,
        "/v1/me/profile/details",
        Json(json!({
            "sex": person.iin.sex().as_str(),
            "birth_date": person.iin.birth_date().format("%Y-%m-%d").to_string(),
            "region_code": "KZ-71",
            "mobile_phone": "8 701 777 77 77",
        })),
        ok,
    )
    .await?;
    s.call(
        "education",
        M::PUT,
        "/v1/me/profile/education",
        Json(json!({"contingent_code": "bachelor", "institution_id": "enu"})),
        ok,
    )
    .await?;
    // The completion waits for the document check, read in the background since the back was
    // stored. As the page does, the applicant asks to complete and, while the check is still
    // being read (409 `document_check_pending`), waits two seconds and asks again; from the
    // back's upload to the completion is the check's latency as the applicant sees it.
    loop {
        match s
            .call(
                "complete",
                M::POST,
                "/v1/me/registration/complete",
                Body::None,
                ok,
            )
            .await
        {
            Ok(_) => break,
            Err(kind)
                if kind == "complete:409:document_check_pending"
                    && back_stored.elapsed() < Duration::from_secs(300) =>
            {
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(kind) => return Err(kind),
        }
    }
    ctx.recorder.step("document_check", back_stored.elapsed());
    ctx.recorder.step("registration", started.elapsed());
    ctx.registered
        .lock()
        .expect("registered lock")
        .push(person.iin.as_str().to_owned());
    Ok(())
}
