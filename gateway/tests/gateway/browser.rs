//! The reference web pages in a real browser: Debian's Chromium over WebDriver, a fake camera
//! playing a real face photograph, codes read from the mail catcher, the whole suite running
//! on the local stack. Screenshots of every screen go to `test-artifacts/browser/<test>/`.

use crate::common::*;
use examreg_gateway::i18n::{Lang, message};
use examreg_testkit::{
    self as tk,
    browser::{Browser, Options as BrowserOptions, camera_frame, y4m},
    photos::{SELFIE, id_card, jpeg},
};
use image::DynamicImage;
use serde_json::json;
use std::{path::PathBuf, time::Duration};

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

/// Waits until the oval turns green: the face is placed where the selfie check accepts it.
async fn placed(b: &Browser) {
    b.wait_for(
        "the face placed in the oval",
        "return document.querySelector('.guide.oval.placed') !== null",
        serde_json::json!([]),
    )
    .await;
}

/// The selfie taken, by the oval or, when the camera's picture shows no placed face, by the
/// button (pressed once, when it can be).
async fn shoot(b: &Browser) {
    b.wait_for(
        "the selfie taken",
        "if (!document.getElementById('send').hidden) return true; \
         const take = document.getElementById('take'); \
         if (take && !take.disabled && !take.hidden && !take.dataset.pressed) { \
           take.dataset.pressed = '1'; take.click(); } \
         return false",
        serde_json::json!([]),
    )
    .await;
}

/// From the identifier screen: the IIN, the email, its code (the first letter to it) and the
/// password, each submitted.
async fn sign_up(b: &Browser, iin: &str, email: &str) {
    b.on_screen("identifier").await;
    b.fill("input[name=iin]", iin).await;
    b.click("button[type=submit]").await;
    b.on_screen("email").await;
    b.fill("input[name=email]", email).await;
    b.click("button[type=submit]").await;
    b.on_screen("email_code").await;
    b.fill("input[name=code]", &tk::nth_code(email, 1).await)
        .await;
    b.click("button[type=submit]").await;
    b.on_screen("password").await;
    b.fill("input[name=password]", PASSWORD).await;
    b.fill("input[name=password_confirmation]", PASSWORD).await;
    b.click("button[type=submit]").await;
}

/// From the welcome screen through «Войти» to the first photo step.
async fn log_in(b: &Browser, iin: &str) {
    log_in_to(b, iin, "face").await;
}

/// A desktop browser in Russian (screenshots under `test`) logged in as `login` from the
/// welcome screen, landed on `screen`.
async fn logged_in_page(s: &Suite, test: &str, login: &str, screen: &str) -> Browser {
    let b = Browser::start(BrowserOptions {
        test,
        size: (1280, 900),
        phone: false,
        camera: None,
        lang: "ru",
    })
    .await;
    b.goto(&format!("{}/", s.base)).await;
    b.on_screen("welcome").await;
    log_in_to(&b, login, screen).await;
    b
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
/// hundred (the accuracy in docs/benchmark.md), and these tests are about the pages, whose retake advice
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

    // The selfie: the camera plays the photograph; the oval turns green once the face is
    // placed, and 3 seconds later the photo is taken without a click.
    b.on_screen("face").await;
    placed(b).await;
    b.screenshot("face-placed").await;
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
    // The category's institutions as a list, the applicant's region (Astana) first.
    b.wait_for(
        "the category's institutions",
        "const group = document.querySelector('#institutions .group'); \
         return document.querySelectorAll('#institutions input[type=radio]').length > 5 \
           && group === document.querySelector('#institutions').firstElementChild",
        serde_json::json!([]),
    )
    .await;
    b.screenshot("education-list").await;
    b.fill("#institution-query", "Гумил").await;
    b.wait_for(
        "the search's answer",
        "const labels = [...document.querySelectorAll('#institutions label')]; \
         return labels.length === 1 && /Гумил/.test(labels[0].textContent)",
        serde_json::json!([]),
    )
    .await;
    b.click("#institutions input[type=radio]").await;
    b.screenshot("education-chosen").await;
    b.click("button[type=submit]").await;

    b.on_screen("complete").await;
    b.click("button[type=submit]").await; // «Завершить регистрацию»

    b.on_screen("cabinet").await;
    let cabinet = b.text("#app").await;
    assert!(cabinet.contains("Жұмабаев"), "{cabinet}");
    assert!(cabinet.contains(&email), "{cabinet}");
    // An ID card's holder: the IIN under its own label, the three photos' previews (read
    // through the audited path), the agreement and the consent with their dates.
    let iin_label = match lang {
        "kk" => "ЖСН",
        "en" => "IIN",
        _ => "ИИН",
    };
    cabinet_shows(b, iin_label, &iin, 3).await;
}

/// The cabinet's account part names the identifier `label` with `value`, and `photos`
/// previews have loaded.
async fn cabinet_shows(b: &Browser, label: &str, value: &str, photos: usize) {
    let shown = b
        .wait_for(
            "the cabinet's previews",
            "const imgs = [...document.querySelectorAll('.photo img')]; \
             if (imgs.length !== arguments[0] || !imgs.every((i) => i.complete && i.naturalWidth > 0)) return null; \
             const dl = document.querySelector('[aria-labelledby=account-title] dl'); \
             return [dl.querySelector('dt').textContent, dl.querySelector('dd').textContent, \
                     document.querySelectorAll('[aria-labelledby=consents-title] dd').length, \
                     document.getElementById('registration-status').textContent]",
            json!([photos]),
        )
        .await;
    assert_eq!(shown[0], label, "{shown}");
    assert_eq!(shown[1], value, "{shown}");
    assert_eq!(shown[2], 2, "{shown}");
    assert!(
        shown[3]
            .as_str()
            .unwrap()
            .chars()
            .any(|c| c.is_ascii_digit()),
        "the registration's time: {shown}"
    );
    b.screenshot("cabinet-full").await;
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
    shoot(&b).await;
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
        ("/manifest.webmanifest", "application/manifest+json"),
        ("/assets/icon-192.png", "image/png"),
        ("/assets/icon-512.png", "image/png"),
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
async fn the_page_installs_on_a_phone() {
    let s = suite().await;
    let b = Browser::start(BrowserOptions {
        test: "installable",
        size: (375, 812),
        phone: true,
        camera: None,
        lang: "kk",
    })
    .await;
    b.goto(&format!("{}/", s.base)).await;
    b.on_screen("welcome").await;
    // Chromium's own verdict: the manifest parses, its icons load, nothing keeps the page
    // from being installed.
    let manifest = b.devtools("Page.getAppManifest", json!({})).await;
    assert_eq!(manifest["errors"], json!([]), "{manifest}");
    assert!(
        manifest["url"]
            .as_str()
            .unwrap()
            .ends_with("/manifest.webmanifest")
    );
    let installable = b.devtools("Page.getInstallabilityErrors", json!({})).await;
    assert_eq!(
        installable["installabilityErrors"],
        json!([]),
        "{installable}"
    );
    b.close().await;
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

#[tokio::test]
async fn a_page_whose_token_expired_refreshes_once_for_its_parallel_calls_and_stays_logged_in() {
    let access_ttl = Duration::from_secs(5);
    let s = suite_with(Options {
        access_ttl,
        ..Options::default()
    })
    .await;
    let iin = valid_iin();
    s.register(&iin, &tk::unique_email()).await;
    let (_, session) = s.login(&iin, PASSWORD).await;
    s.fill_in(session["access_token"].as_str().unwrap()).await;
    let b = logged_in_page(&s, "expired_token", &iin, "complete").await;
    // The page's token expires (verifiers allow the leeway past it) while the applicant reads.
    tokio::time::sleep(access_ttl + examreg_kit::tokens::LEEWAY + Duration::from_secs(2)).await;
    let refreshes = || async {
        counter(
            &s.metrics_of("identity").await,
            "grpc_server_handled_total",
            &["RefreshSession"],
        )
    };
    assert_eq!(refreshes().await, 0.0);
    // The final screen again: `/v1/me` and `/v1/me/onboarding` at once, both refused.
    b.execute(
        "document.getElementById('app').dataset.screen = 'stale'; route('complete'); return true",
        json!([]),
    )
    .await;
    b.on_screen("complete").await;
    assert_eq!(refreshes().await, 1.0, "one refresh for both calls");
    b.click("button[type=submit]").await; // «Завершить регистрацию»
    b.on_screen("cabinet").await;
    let tokens = b
        .execute(
            "return [sessionStorage.getItem('access'), sessionStorage.getItem('refresh')]",
            json!([]),
        )
        .await;
    assert!(tokens[0].is_string() && tokens[1].is_string(), "{tokens}");
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
    placed(&phone).await;
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
    sign_up(&b, &iin, &other).await;
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

#[tokio::test]
async fn a_school_graduate_picks_the_school_from_a_list_once_its_directory_is_imported() {
    let s = suite().await;
    let b = Browser::start(BrowserOptions {
        test: "directories_ru",
        size: (1280, 900),
        phone: false,
        camera: None,
        lang: "ru",
    })
    .await;
    // Every citizenship has its name: a French citizen finds «Франция».
    b.goto(&format!("{}/", s.base)).await;
    b.on_screen("welcome").await;
    b.click("#app .secondary").await;
    b.on_screen("citizenship").await;
    let france = b
        .execute(
            "return document.querySelector('select[name=citizenship] option[value=FR]').textContent",
            json!([]),
        )
        .await;
    assert_eq!(france, "Франция");
    b.select("select[name=citizenship]", "FR").await;
    b.screenshot("citizenship-france").await;

    // An applicant with everything but the education done (region KZ-55, Pavlodar).
    let iin = valid_iin();
    s.register(&iin, &tk::unique_email()).await;
    let (_, session) = s.login(&iin, PASSWORD).await;
    s.fill_in_up_to_education(session["access_token"].as_str().unwrap())
        .await;
    b.goto(&format!("{}/", s.base)).await;
    b.on_screen("welcome").await;
    log_in_to(&b, &iin, "education").await;
    let categories = || {
        b.execute(
            "return [...document.querySelectorAll('select[name=contingent_code] option')] \
               .map(o => o.value).filter(v => v)",
            json!([]),
        )
    };
    // No school is in the directory yet: the category is not offered.
    assert_eq!(
        categories().await,
        json!(["bachelor", "master", "university_student"])
    );
    b.screenshot("education-universities-only").await;

    let csv = std::env::temp_dir().join(format!("schools-{}.csv", uuid::Uuid::new_v4()));
    std::fs::write(
        &csv,
        "id,region_code,kind,name_kk,name_ru,name_en\n\
         pvl-school-7,KZ-55,school,№7 жалпы білім беретін мектеп,Общеобразовательная школа №7,Secondary School No. 7\n\
         pvl-lyceum-1,KZ-55,school,№1 лицей,Лицей №1,Lyceum No. 1\n\
         ast-school-50,KZ-71,school,№50 мектеп-гимназия,Школа-гимназия №50,School-Gymnasium No. 50\n",
    )
    .unwrap();
    let imported = ctl(&s, &["import-institutions", csv.to_str().unwrap()])
        .await
        .unwrap();
    assert_eq!(imported.trim(), "added 3, updated 0");
    std::fs::remove_file(&csv).unwrap();

    b.goto(&format!("{}/", s.base)).await;
    b.on_screen("education").await;
    assert_eq!(
        categories().await,
        json!([
            "bachelor",
            "master",
            "university_student",
            "school_graduate"
        ])
    );
    b.select("select[name=contingent_code]", "school_graduate")
        .await;
    // The applicant's region's schools first, under their heading, then the others.
    let shown = b
        .wait_for(
            "the schools",
            "const rows = [...document.querySelectorAll('#institutions .group, #institutions label')]; \
             return rows.length === 5 && rows.map(r => r.textContent)",
            json!([]),
        )
        .await;
    assert_eq!(
        shown,
        json!([
            "В вашем регионе",
            "Лицей №1",
            "Общеобразовательная школа №7",
            "В других регионах",
            "Школа-гимназия №50"
        ])
    );
    b.screenshot("education-schools").await;
    b.click("label[for='inst-pvl-school-7']").await;
    b.click("button[type=submit]").await;
    b.on_screen("complete").await;
    let token = session["access_token"].as_str().unwrap();
    let (_, me) = s.me(reqwest::Method::GET, "/v1/me", token, None).await;
    assert_eq!(me["education"]["institution"]["id"], "pvl-school-7", "{me}");
    b.close().await;
}

/// A photograph of a coffee cup: no face in it.
fn coffee_cup() -> image::DynamicImage {
    image::load_from_memory(include_bytes!(
        "../../../services/biometrics/tests/fixtures/coffee.jpg"
    ))
    .unwrap()
}

#[tokio::test]
async fn the_oval_stays_neutral_for_a_coffee_cup_and_the_button_still_takes_the_photo() {
    let s = suite().await;
    let iin = valid_iin();
    s.register(&iin, &tk::unique_email()).await;
    let files = Files::new("coffee");
    let coffee = coffee_cup();
    let camera = files.camera(&coffee);
    let b = Browser::start(BrowserOptions {
        test: "coffee_ru",
        size: (1280, 900),
        phone: false,
        camera: Some(&camera),
        lang: "ru",
    })
    .await;
    b.goto(&format!("{}/", s.base)).await;
    b.on_screen("welcome").await;
    log_in(&b, &iin).await;
    // The frames are judged and the advice shown: no face in the oval.
    let said = b
        .wait_for(
            "the advice for the cup",
            "const s = document.querySelector('#app [role=status]'); \
             return s && s.textContent === arguments[0] && s.textContent",
            json!([message("photo_no_face", Lang::Ru)]),
        )
        .await;
    assert_eq!(said, message("photo_no_face", Lang::Ru));
    // Well past a countdown's 3 seconds: still neutral, nothing taken.
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let state = b
        .execute(
            "return { placed: !!document.querySelector('.guide.oval.placed'), \
                      countdown: document.querySelector('.countdown').textContent, \
                      taken: !document.getElementById('send').hidden }",
            json!([]),
        )
        .await;
    assert_eq!(
        state,
        json!({"placed": false, "countdown": "", "taken": false})
    );
    b.screenshot("coffee-neutral").await;
    // The button is the way still: it takes the photo, and the service refuses it.
    b.click("#take").await;
    preview(&b).await;
    b.click("#send").await;
    let advice = b
        .wait_for(
            "the refusal",
            "const a = document.querySelector('#app .alert'); return a && a.textContent",
            json!([]),
        )
        .await;
    assert_eq!(advice.as_str(), Some(message("photo_no_face", Lang::Ru)));
    b.close().await;
}

#[tokio::test]
async fn a_passport_holder_sees_the_passport_number_and_its_data_page_in_the_cabinet() {
    let s = suite().await;
    // A citizen of Russia registers with the passport and does every step (through the API).
    let number = format!("75{:07}", uuid::Uuid::new_v4().as_u128() % 10_000_000);
    let flow = s.start("RU").await;
    s.prove_email_with(
        &flow,
        json!({"passport_number": number}),
        &tk::unique_email(),
        1,
    )
    .await;
    s.set_password(&flow).await;
    let (_, session) = s.login(&number, PASSWORD).await;
    let token = session["access_token"].as_str().unwrap().to_owned();
    let page = s.good_photo(&token, "document-front").await;
    for (kind, photo) in [
        ("face", tk::photos::SELFIE.to_vec()),
        ("document-front?document_type=passport", page),
    ] {
        let (status, body) = s.photo(&token, kind, "image/jpeg", photo).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{kind}: {body}");
    }
    // The page's holder: born 2006-05-21, male (see testkit's passport_page).
    for (method, path, body) in [
        (
            reqwest::Method::POST,
            "/v1/me/biometrics/consent",
            json!({"consent_version": "2026-01", "accepted": true}),
        ),
        (
            reqwest::Method::PUT,
            "/v1/me/profile/name",
            json!({"surname": "Иванов", "given_name": "Пётр"}),
        ),
        (
            reqwest::Method::PUT,
            "/v1/me/profile/details",
            json!({"sex": "male", "birth_date": "2006-05-21", "region_code": "KZ-75", "mobile_phone": "8 777 123 45 67"}),
        ),
        (
            reqwest::Method::PUT,
            "/v1/me/profile/education",
            json!({"contingent_code": "bachelor", "institution_id": "kaznu"}),
        ),
    ] {
        let (status, answer) = s.me(method, path, &token, Some(body)).await;
        assert!(status.is_success(), "{path}: {status} {answer}");
    }
    assert_eq!(
        s.settled_document_check(&token, "ru").await["status"],
        "verified"
    );
    let (status, body) = s.complete(&token).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");

    let b = logged_in_page(&s, "passport_cabinet_ru", &number, "cabinet").await;
    cabinet_shows(&b, "Номер паспорта", &number, 2).await;
    let cabinet = b.text("#app").await;
    assert!(cabinet.contains("Страница паспорта с данными"), "{cabinet}");
    assert!(cabinet.contains("Россия"), "{cabinet}");
    assert!(!cabinet.contains("ИИН"), "{cabinet}");
    b.close().await;
}

#[tokio::test]
async fn a_changed_agreement_is_what_the_page_shows_and_its_hash_is_what_the_account_keeps() {
    // The exam center publishes a new agreement: the gateway reads it from its directory.
    let texts = published_texts();
    let s = suite_with(Options {
        texts_dir: Some(texts.clone()),
        ..Options::default()
    })
    .await;
    let b = Browser::start(BrowserOptions {
        test: "agreement_kk",
        size: (1280, 900),
        phone: false,
        camera: None,
        lang: "kk",
    })
    .await;
    b.goto(&format!("{}/", s.base)).await;
    b.on_screen("welcome").await;
    b.click("#app .secondary").await;
    b.on_screen("citizenship").await;
    b.click("button[aria-controls=terms-text]").await;
    let shown = b.text("#terms-text").await;
    assert_eq!(shown, "Жаңа редакция: тестілеу орындары туралы.");
    b.screenshot("agreement-new").await;
    b.click("#terms-read").await;
    b.click("#terms-tick").await;
    b.click("button[type=submit]").await;

    let iin = valid_iin();
    let email = tk::unique_email();
    sign_up(&b, &iin, &email).await;
    b.on_screen("login").await;

    // The account keeps the version, the language and the SHA-256 of the file shown.
    let identity = sqlx::PgPool::connect(&s.identity_db).await.unwrap();
    let kept: (String, Option<String>, Option<String>) = sqlx::query_as(
        "SELECT terms_version, terms_sha256, terms_language FROM accounts WHERE login = $1",
    )
    .bind(&iin)
    .fetch_one(&identity)
    .await
    .unwrap();
    assert_eq!(
        kept,
        (
            "2026-12".into(),
            Some(sha256_of(&texts.join("terms.2026-12.kk.txt"))),
            Some("kk".into())
        )
    );
    b.close().await;
    std::fs::remove_dir_all(&texts).unwrap();
}

#[tokio::test]
async fn the_countdown_stops_when_the_face_leaves_the_oval() {
    let s = suite().await;
    let iin = valid_iin();
    s.register(&iin, &tk::unique_email()).await;
    let files = Files::new("leaving");
    let coffee = coffee_cup();
    // The face for 2 seconds, then the cup for 3, over and over: placed, but never for the
    // 3 seconds the countdown wants.
    let camera = files.write(
        "leaving.y4m",
        &tk::browser::y4m_scenes(&[(&selfie(), 20), (&coffee, 30)], 640, 480),
    );
    let b = Browser::start(BrowserOptions {
        test: "leaving_ru",
        size: (1280, 900),
        phone: false,
        camera: Some(&camera),
        lang: "ru",
    })
    .await;
    b.goto(&format!("{}/", s.base)).await;
    b.on_screen("welcome").await;
    log_in(&b, &iin).await;
    b.execute(
        "window.placedTimes = 0; const g = document.querySelector('.guide.oval'); \
         new MutationObserver(() => { if (g.classList.contains('placed')) window.placedTimes += 1; }) \
           .observe(g, { attributes: true, attributeFilter: ['class'] });",
        json!([]),
    )
    .await;
    placed(&b).await;
    b.screenshot("leaving-placed").await;
    // Two turns of the video later the face was placed again and again, and no photo was
    // taken: each countdown stopped when the cup came.
    tokio::time::sleep(std::time::Duration::from_secs(10)).await;
    let state = b
        .execute(
            "return { placed: window.placedTimes, taken: !document.getElementById('send').hidden }",
            json!([]),
        )
        .await;
    assert_eq!(state["taken"], false, "{state}");
    assert!(state["placed"].as_u64().unwrap() >= 2, "{state}");
    b.screenshot("leaving-not-taken").await;
    b.close().await;
}
