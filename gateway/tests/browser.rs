//! The reference web pages in a real browser: Debian's Chromium over WebDriver, a fake camera
//! playing a real face photograph, codes read from the mail catcher, the whole suite running
//! on the local stack. Screenshots of every screen go to `test-artifacts/browser/<test>/`.

mod common;

use common::*;
use examreg_gateway::i18n::{Lang, message};
use examreg_testkit::{
    self as tk,
    browser::{Browser, Options as BrowserOptions, camera_frame, y4m},
    photos::{SELFIE, id_card, jpeg},
};
use image::DynamicImage;
use serde_json::json;
use std::path::PathBuf;

/// Files a test hands to the browser: the camera's video and photos to upload.
struct Files(PathBuf);

impl Files {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("examreg-{test}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// A webcam's 640 × 480 picture of `photo`.
    fn camera(&self, photo: &DynamicImage) -> PathBuf {
        self.write("camera.y4m", &y4m(photo, 640, 480))
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn selfie() -> DynamicImage {
    image::load_from_memory(SELFIE).unwrap()
}

/// Waits until the photo just taken or chosen is shown with «Переснять» / «Продолжить».
async fn preview(b: &Browser) {
    b.wait_for(
        "the preview",
        "return !document.getElementById('send').hidden",
        serde_json::json!([]),
    )
    .await;
}

/// From the welcome screen through «Войти» to the first photo step.
async fn log_in(b: &Browser, iin: &str) {
    log_in_to(b, iin, "face").await;
}

/// Logs in from the welcome screen and lands on `screen`.
async fn log_in_to(b: &Browser, iin: &str, screen: &str) {
    b.click("#app .primary").await;
    b.on_screen("login").await;
    b.fill("input[name=login]", iin).await;
    b.fill("input[name=password]", PASSWORD).await;
    b.click("button[type=submit]").await;
    b.on_screen(screen).await;
}

/// An IIN whose card (see [`own_back`]) the reader reads: the reader misses a few cards in a
/// hundred (the README's accuracy), and these tests are about the pages, whose retake advice
/// `a_back_whose_zone_was_not_read_is_asked_again_with_the_advice` shows.
fn readable_iin() -> String {
    static READER: std::sync::OnceLock<examreg_biometrics::ocr::Reader> =
        std::sync::OnceLock::new();
    let reader = READER.get_or_init(|| {
        examreg_biometrics::ocr::Reader::load(&tk::mrz_model()).expect("the model loads")
    });
    loop {
        let iin = valid_iin();
        if reader
            .read_photo(&own_back(&iin), examreg_domain::mrz::Format::Td1)
            .is_ok()
        {
            return iin;
        }
    }
}

/// The back of the holder's own ID card: its zone carries their IIN.
fn own_back(iin: &str) -> Vec<u8> {
    tk::cards::id_card_back(
        &examreg_domain::Iin::parse(iin).unwrap(),
        "341231",
        tk::cards::Shot::CLEAN,
    )
}

/// From the first screen to the cabinet, the way a person does it.
async fn register(b: &Browser, s: &Suite, files: &Files, lang: &str) {
    let iin = readable_iin();
    let email = tk::unique_email();
    b.goto(&format!("{}/", s.base)).await;
    b.on_screen("welcome").await;
    b.click(&format!("button[data-lang={lang}]")).await;
    b.wait_for(
        "the language switch",
        "return document.documentElement.lang === arguments[0]",
        serde_json::json!([lang]),
    )
    .await;
    b.click("#app .secondary").await; // «Зарегистрироваться»
    b.on_screen("citizenship").await;
    assert_eq!(b.value("select[name=citizenship]").await, "KZ");
    b.click("button[aria-controls=terms-text]").await;
    b.click("#terms-read").await; // «Ознакомлен»
    b.click("#terms-tick").await;
    b.screenshot("citizenship-accepted").await;
    b.click("button[type=submit]").await; // «Продолжить»

    b.on_screen("identifier").await;
    // A mistyped IIN: the API's reason appears under the field, in the chosen language.
    b.fill("input[name=iin]", "123456789012").await;
    b.click("button[type=submit]").await;
    let error = b
        .wait_for(
            "the error under the IIN",
            "return document.querySelector('[data-field=iin] .error').textContent",
            serde_json::json!([]),
        )
        .await;
    let lang_of = match lang {
        "kk" => Lang::Kk,
        "en" => Lang::En,
        _ => Lang::Ru,
    };
    assert_eq!(error.as_str(), Some(message("invalid_iin", lang_of)));
    assert_eq!(
        b.execute(
            "return document.querySelector('input[name=iin]').getAttribute('aria-invalid')",
            serde_json::json!([])
        )
        .await,
        "true"
    );
    b.screenshot("identifier-error").await;
    b.fill("input[name=iin]", &iin).await;
    b.click("button[type=submit]").await;

    b.on_screen("email").await;
    b.fill("input[name=email]", &email).await;
    b.click("button[type=submit]").await;

    b.on_screen("email_code").await;
    // The resend button counts down to the time the API gave.
    b.wait_for(
        "the resend countdown",
        "const r = document.getElementById('resend'); return r.disabled && /\\d/.test(r.textContent)",
        serde_json::json!([]),
    )
    .await;
    let code = tk::nth_code(&email, 1).await;
    b.fill("input[name=code]", &code).await;
    b.click("button[type=submit]").await;

    b.on_screen("password").await;
    b.fill("input[name=password]", PASSWORD).await;
    b.fill("input[name=password_confirmation]", PASSWORD).await;
    b.click("button[type=submit]").await;

    b.on_screen("login").await;
    assert_eq!(
        b.value("input[name=login]").await,
        iin,
        "the login is filled in"
    );
    b.fill("input[name=password]", PASSWORD).await;
    b.click("button[type=submit]").await;

    // The selfie: the camera plays the photograph; a 3-second countdown, then the preview.
    b.on_screen("face").await;
    b.click("#take").await;
    preview(b).await;
    b.screenshot("face-preview").await;
    b.click("#send").await;

    // The documents, as photos from the phone's gallery.
    let front = files.write("front.jpg", &id_card(true));
    let back = files.write("back.jpg", &own_back(&iin));
    b.on_screen("document_front").await;
    b.upload("#file-document_front", &front).await;
    preview(b).await;
    b.screenshot("document-front-preview").await;
    b.click("#send").await;
    b.on_screen("document_back").await;
    b.upload("#file-document_back", &back).await;
    b.click("#send").await;

    b.on_screen("consent").await;
    b.click("#consent-tick").await;
    b.click("button[type=submit]").await;

    b.on_screen("name").await;
    // A reload in the same tab resumes where the applicant was (the session lives in the tab).
    b.goto(&format!("{}/", s.base)).await;
    b.on_screen("name").await;
    b.fill("input[name=surname]", "Жұмабаев").await;
    b.fill("input[name=given_name]", "Ерлан").await;
    b.click("button[type=submit]").await;

    b.on_screen("details").await;
    // Sex and birth date come filled in from the IIN.
    let born = b.value("input[name=birth_date]").await;
    assert!(
        born.len() == 10 && born.chars().nth(2) == Some('.'),
        "{born}"
    );
    b.select("select[name=region_code]", "KZ-71").await;
    b.fill("input[name=mobile_phone]", "87017777777").await;
    assert_eq!(
        b.value("input[name=mobile_phone]").await,
        "+7 (701) 777-77-77",
        "formatted as typed"
    );
    b.screenshot("details-filled").await;
    b.click("button[type=submit]").await;

    b.on_screen("education").await;
    b.select("select[name=contingent_code]", "bachelor").await;
    b.fill("input[name=institution_id]", "Гумил").await;
    b.wait_for(
        "institution suggestions",
        "return document.querySelector('#institutions li[role=option]')",
        serde_json::json!([]),
    )
    .await;
    b.screenshot("education-suggestions").await;
    // Chosen with the keyboard: down to the first suggestion, Enter.
    b.keys("\u{E015}\u{E007}").await;
    b.wait_for(
        "the chosen institution",
        "const i = document.querySelector('input[name=institution_id]'); \
         return !document.querySelector('#institutions li') && /Гумил/.test(i.value) && i.value",
        serde_json::json!([]),
    )
    .await;
    b.click("button[type=submit]").await;

    b.on_screen("complete").await;
    b.click("button[type=submit]").await; // «Завершить регистрацию»

    b.on_screen("cabinet").await;
    let cabinet = b.text("#app").await;
    assert!(cabinet.contains("Жұмабаев"), "{cabinet}");
    assert!(cabinet.contains(&email), "{cabinet}");
}

#[tokio::test]
async fn a_person_registers_in_the_browser_at_desktop_size_in_russian() {
    let s = suite().await;
    let files = Files::new("desktop");
    let camera = files.camera(&selfie());
    let b = Browser::start(BrowserOptions {
        test: "desktop_ru",
        size: (1280, 900),
        phone: false,
        camera: Some(&camera),
        lang: "ru",
    })
    .await;
    register(&b, &s, &files, "ru").await;
    assert!(b.text("#app").await.contains("Регистрация завершена"));
    b.close().await;
}

#[tokio::test]
async fn a_person_registers_on_a_phone_sized_screen_in_kazakh() {
    let s = suite().await;
    let files = Files::new("phone");
    let camera = files.camera(&selfie());
    let b = Browser::start(BrowserOptions {
        test: "phone_kk",
        size: (375, 812),
        phone: true,
        camera: Some(&camera),
        lang: "ru",
    })
    .await;
    register(&b, &s, &files, "kk").await;
    // (Each screen was checked to fit the phone's width as it came.)
    assert!(b.text("#app").await.contains("Тіркеу аяқталды"));
    b.close().await;
}

#[tokio::test]
async fn a_blurred_selfie_gets_the_retake_advice_in_the_chosen_language() {
    let s = suite().await;
    let iin = valid_iin();
    s.register(&iin, &tk::unique_email()).await;
    let files = Files::new("blurred");
    let blurred = DynamicImage::ImageRgb8(camera_frame(&selfie(), 640, 480)).blur(6.0);
    // The same picture as a file is refused as blurred by the service itself.
    let check = examreg_biometrics::checks::check(
        &jpeg(&blurred),
        examreg_biometrics::checks::CaptureKind::Face,
        &Default::default(),
    );
    assert_eq!(check.unwrap_err().code(), "blurred");
    let camera = files.camera(&blurred);
    let b = Browser::start(BrowserOptions {
        test: "blurred_kk",
        size: (1280, 900),
        phone: false,
        camera: Some(&camera),
        lang: "ru",
    })
    .await;
    b.goto(&format!("{}/", s.base)).await;
    b.on_screen("welcome").await;
    b.click("button[data-lang=kk]").await;
    log_in(&b, &iin).await; // «Кіру»
    b.click("#take").await;
    preview(&b).await;
    b.click("#send").await;
    let advice = b
        .wait_for(
            "the advice",
            "const a = document.querySelector('#app .alert'); return a && a.textContent",
            serde_json::json!([]),
        )
        .await;
    b.screenshot("blurred-advice").await;
    assert_eq!(advice.as_str(), Some(message("photo_blurred", Lang::Kk)));
    // Still on the selfie, with «Переснять» offered.
    assert_eq!(b.screen().await, "face");
    b.click("#retake").await;
    b.close().await;
}

#[tokio::test]
async fn a_back_whose_zone_was_not_read_is_asked_again_with_the_advice() {
    let s = suite().await;
    let iin = valid_iin();
    s.register(&iin, &tk::unique_email()).await;
    let (_, session) = s.login(&iin, PASSWORD).await;
    let token = session["access_token"].as_str().unwrap().to_owned();
    s.photographed(&token, &["face", "document-front"]).await;
    let (status, body) = s
        .photo(&token, "document-back", "image/jpeg", id_card(false))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        s.settled_document_check(&token, "en").await["status"],
        "retake"
    );
    let b = Browser::start(BrowserOptions {
        test: "document_retake",
        size: (1280, 900),
        phone: false,
        camera: None,
        lang: "ru",
    })
    .await;
    b.goto(&format!("{}/", s.base)).await;
    b.on_screen("welcome").await;
    b.click("button[data-lang=en]").await;
    // The back is the step to do again, and its screen says why.
    log_in_to(&b, &iin, "document_back").await;
    let advice = b
        .wait_for(
            "the advice",
            "const a = document.querySelector('#app .alert'); return a && a.textContent",
            serde_json::json!([]),
        )
        .await;
    b.screenshot("document-retake-advice").await;
    assert_eq!(
        advice.as_str(),
        Some(message("document_mrz_unreadable", Lang::En))
    );
    b.close().await;
}

#[tokio::test]
async fn the_pages_are_served_with_their_security_headers() {
    let s = suite().await;
    for (path, kind) in [
        ("/", "text/html"),
        ("/assets/app.js", "text/javascript"),
        ("/assets/texts.js", "text/javascript"),
        ("/assets/pow.js", "text/javascript"),
        ("/assets/app.css", "text/css"),
    ] {
        let response = s
            .http
            .get(format!("{}{path}", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::OK, "{path}");
        let headers = response.headers();
        assert!(headers["content-type"].to_str().unwrap().starts_with(kind));
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert!(
            headers["permissions-policy"]
                .to_str()
                .unwrap()
                .contains("camera=(self)")
        );
    }
}

#[tokio::test]
async fn on_a_busy_network_the_page_solves_the_challenge_and_goes_on() {
    // One request a minute from the address: every later one needs the pass the page earns.
    let s = suite_with(Options {
        rate_limit: 1,
        pow_base: 20_000,
        ..Options::default()
    })
    .await;
    let b = Browser::start(BrowserOptions {
        test: "busy_network",
        size: (1280, 900),
        phone: false,
        camera: None,
        lang: "ru",
    })
    .await;
    b.goto(&format!("{}/", s.base)).await;
    b.on_screen("welcome").await;
    b.click("#app .link").await; // «Забыли пароль»
    b.on_screen("recovery").await;
    b.fill("input[name=login]", &valid_iin()).await;
    b.click("button[type=submit]").await;
    b.on_screen("email_code").await;
    // A wrong code: the answer is the API's own, under the field, not a challenge.
    b.fill("input[name=code]", "000000").await;
    b.click("button[type=submit]").await;
    let error = b
        .wait_for(
            "the error under the code",
            "return document.querySelector('[data-field=code] .error').textContent",
            serde_json::json!([]),
        )
        .await;
    assert_eq!(error.as_str(), Some(message("invalid_code", Lang::Ru)));
    let pass = b
        .execute(
            "return sessionStorage.getItem('pow_pass')",
            serde_json::json!([]),
        )
        .await;
    assert!(
        pass.as_str().is_some_and(|p| p.starts_with("p1.")),
        "{pass}"
    );
    b.close().await;
}

/// Calls `method path` with `token` as the bearer.
async fn as_bearer(
    s: &Suite,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (reqwest::StatusCode, serde_json::Value) {
    let auth = format!("Bearer {token}");
    let (status, _, json) = s
        .call(method, path, body, &[("authorization", auth.as_str())])
        .await;
    (status, json)
}

fn link_id(url: &str) -> String {
    url.split_once("#handoff=")
        .expect("a hand-off link")
        .1
        .to_owned()
}

#[tokio::test]
async fn a_handoff_link_works_once_for_the_photos_only_and_expires() {
    use reqwest::{Method, StatusCode};
    let s = suite_with(Options {
        handoff_ttl: std::time::Duration::from_secs(2),
        ..Options::default()
    })
    .await;
    let iin = valid_iin();
    s.register(&iin, &tk::unique_email()).await;
    let (_, session) = s.login(&iin, PASSWORD).await;
    let access = session["access_token"].as_str().unwrap();

    let (status, link) = as_bearer(&s, access, Method::POST, "/v1/me/handoff", None).await;
    assert_eq!(status, StatusCode::CREATED, "{link}");
    let url = link["url"].as_str().unwrap();
    assert!(url.starts_with("http://localhost:8080/#handoff="), "{url}");
    assert!(
        link["qr"]
            .as_str()
            .unwrap()
            .starts_with("data:image/svg+xml;base64,")
    );

    let id = link_id(url);
    let (status, redeemed) = s.post("/v1/handoff/redeem", json!({"handoff": id})).await;
    assert_eq!(status, StatusCode::OK, "{redeemed}");
    assert_eq!(redeemed["next_step"], "face");
    let capture = redeemed["capture_token"].as_str().unwrap();
    // Once only.
    let (status, again) = s.post("/v1/handoff/redeem", json!({"handoff": id})).await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(again["error"]["code"], "handoff_expired");

    // The phone may take the photos and read where things stand...
    let (status, onboarding) = as_bearer(&s, capture, Method::GET, "/v1/me/onboarding", None).await;
    assert_eq!(status, StatusCode::OK, "{onboarding}");
    let response = s
        .http
        .put(format!("{}/v1/me/biometrics/face", s.base))
        .bearer_auth(capture)
        .header("content-type", "image/jpeg")
        .body(SELFIE.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // ...and nothing else: not the cabinet, not the profile, not another hand-off, not consent.
    for (method, path, body) in [
        (Method::GET, "/v1/me", None),
        (Method::GET, "/v1/me/profile", None),
        (
            Method::PUT,
            "/v1/me/profile/name",
            Some(json!({"surname": "Жұмабаев", "given_name": "Ерлан"})),
        ),
        (Method::POST, "/v1/me/handoff", None),
        (
            Method::POST,
            "/v1/me/biometrics/consent",
            Some(json!({"consent_version": "2026-01", "accepted": true})),
        ),
        (Method::DELETE, "/v1/sessions/current", None),
    ] {
        let (status, body) = as_bearer(&s, capture, method, path, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        assert_eq!(body["error"]["code"], "capture_only", "{path}");
    }

    // A link nobody opens in time expires.
    let (_, late) = as_bearer(&s, access, Method::POST, "/v1/me/handoff", None).await;
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let (status, body) = s
        .post(
            "/v1/handoff/redeem",
            json!({"handoff": link_id(late["url"].as_str().unwrap())}),
        )
        .await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    // Something that is not a link id at all.
    let (status, body) = s
        .post("/v1/handoff/redeem", json!({"handoff": "../../etc"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // After logging out, the desktop cannot hand off any more (identity checks the session).
    let (status, _) = as_bearer(&s, access, Method::DELETE, "/v1/sessions/current", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = as_bearer(&s, access, Method::POST, "/v1/me/handoff", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

#[tokio::test]
async fn the_photos_move_to_a_phone_and_the_desktop_follows() {
    let s = suite().await;
    let iin = readable_iin();
    s.register(&iin, &tk::unique_email()).await;
    let files = Files::new("handoff");
    let camera = files.camera(&selfie());

    // The desktop, without a camera of its own, offers the phone.
    let desktop = Browser::start(BrowserOptions {
        test: "handoff_desktop",
        size: (1280, 900),
        phone: false,
        camera: None,
        lang: "ru",
    })
    .await;
    desktop.goto(&format!("{}/", s.base)).await;
    desktop.on_screen("welcome").await;
    log_in(&desktop, &iin).await;
    desktop.click("#handoff").await;
    desktop.on_screen("handoff").await;
    desktop
        .wait_for(
            "the QR code",
            "const q = document.querySelector('.qr'); return q && q.complete && q.naturalWidth > 0",
            serde_json::json!([]),
        )
        .await;
    let url = desktop.value("input[name=handoff_link]").await;
    // What a phone's camera reads off the screen is that link.
    let screen = image::load_from_memory(&desktop.screenshot("handoff-qr").await)
        .unwrap()
        .to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(screen);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code on the screen");
    assert_eq!(grids[0].decode().unwrap().1, url);
    let link = format!("{}/#handoff={}", s.base, link_id(&url));

    // The phone opens the link, takes the selfie with its camera and the documents from its
    // gallery.
    let phone = Browser::start(BrowserOptions {
        test: "handoff_phone",
        size: (375, 812),
        phone: true,
        camera: Some(&camera),
        lang: "ru",
    })
    .await;
    phone.goto(&link).await;
    phone.on_screen("face").await;
    let address = phone
        .execute("return window.location.href", serde_json::json!([]))
        .await;
    assert!(
        !address.as_str().unwrap().contains("handoff"),
        "the link id left the address bar: {address}"
    );
    assert!(
        phone
            .text("#app")
            .await
            .find("Продолжить на телефоне")
            .is_none(),
        "a phone does not hand off again"
    );
    phone.click("#take").await;
    preview(&phone).await;
    phone.click("#send").await;
    phone.on_screen("document_front").await;
    desktop
        .wait_for(
            "the desktop to see the selfie",
            "return /1\\/3/.test(document.querySelector('[role=status]').textContent)",
            serde_json::json!([]),
        )
        .await;
    desktop.screenshot("handoff-progress").await;
    phone
        .upload(
            "#file-document_front",
            &files.write("front.jpg", &id_card(true)),
        )
        .await;
    phone.click("#send").await;
    phone.on_screen("document_back").await;
    phone
        .upload(
            "#file-document_back",
            &files.write("back.jpg", &own_back(&iin)),
        )
        .await;
    phone.click("#send").await;
    phone.on_screen("handoff_done").await;

    // The desktop moves on by itself.
    desktop.on_screen("consent").await;

    // The same link again: refused, with the reason in the phone's language.
    phone.goto(&link).await;
    phone.on_screen("handoff_refused").await;
    assert_eq!(
        phone.text("#app .alert").await,
        message("handoff_expired", Lang::Ru)
    );
    phone.close().await;
    desktop.close().await;
}

#[tokio::test]
async fn a_forgotten_password_is_replaced_in_the_browser_in_english() {
    let s = suite().await;
    let iin = valid_iin();
    let email = tk::unique_email();
    s.register(&iin, &email).await;
    let b = Browser::start(BrowserOptions {
        test: "recovery_en",
        size: (1280, 900),
        phone: false,
        camera: None,
        lang: "en",
    })
    .await;
    b.goto(&format!("{}/", s.base)).await;
    b.on_screen("welcome").await;
    assert!(
        b.text("#app").await.contains("Forgot password"),
        "English from the browser's language"
    );
    // Registering the IIN again, with another address, ends at the one answer for a taken IIN
    // or email, whose way forward is recovery.
    let other = tk::unique_email();
    b.click("#app .secondary").await;
    b.on_screen("citizenship").await;
    b.click("button[aria-controls=terms-text]").await;
    b.click("#terms-read").await;
    b.click("#terms-tick").await;
    b.click("button[type=submit]").await;
    b.on_screen("identifier").await;
    b.fill("input[name=iin]", &iin).await;
    b.click("button[type=submit]").await;
    b.on_screen("email").await;
    b.fill("input[name=email]", &other).await;
    b.click("button[type=submit]").await;
    b.on_screen("email_code").await;
    b.fill("input[name=code]", &tk::nth_code(&other, 1).await)
        .await;
    b.click("button[type=submit]").await;
    b.on_screen("password").await;
    b.fill("input[name=password]", PASSWORD).await;
    b.fill("input[name=password_confirmation]", PASSWORD).await;
    b.click("button[type=submit]").await;
    b.on_screen("already_registered").await;
    assert!(
        b.text("#app")
            .await
            .contains(message("already_registered", Lang::En)),
        "{}",
        b.text("#app").await
    );
    b.screenshot("already-registered").await;
    b.click("#app .primary").await; // «Forgot password»
    b.on_screen("recovery").await;
    // Sent with the keyboard: Enter in the field submits the form.
    b.fill("input[name=login]", &iin).await;
    b.keys("\u{E007}").await;
    b.on_screen("email_code").await;
    // The registration's letter was the first; the recovery code is the second.
    let code = tk::nth_code(&email, 2).await;
    b.fill("input[name=code]", &code).await;
    b.click("button[type=submit]").await;
    b.on_screen("password").await;
    let new_password = "Көктемгі-жаңа-құпия-8";
    b.fill("input[name=password]", new_password).await;
    b.fill("input[name=password_confirmation]", new_password)
        .await;
    b.click("button[type=submit]").await;
    b.on_screen("login").await;
    b.fill("input[name=login]", &iin).await;
    b.fill("input[name=password]", new_password).await;
    b.click("button[type=submit]").await;
    b.on_screen("face").await;
    b.close().await;
}
