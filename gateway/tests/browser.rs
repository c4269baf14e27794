//! The reference web pages in a real browser: Debian's Chromium over WebDriver, a fake camera
//! playing a real face photograph, codes read from the mail catcher, the whole suite running
//! on the local stack. Screenshots of every screen go to `test-artifacts/browser/<test>/`.

mod common;

use common::*;
use examreg_gateway::i18n::{Lang, message};
use examreg_testkit::{
    self as tk,
    browser::{Browser, Options, camera_frame, y4m},
    photos::{SELFIE, id_card, jpeg},
};
use image::DynamicImage;
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

/// From the first screen to the cabinet, the way a person does it.
async fn register(b: &Browser, s: &Suite, files: &Files, lang: &str) {
    let iin = valid_iin();
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
    b.wait_for(
        "the preview",
        "return !document.getElementById('send').hidden",
        serde_json::json!([]),
    )
    .await;
    b.screenshot("face-preview").await;
    b.click("#send").await;

    // The documents, as photos from the phone's gallery.
    let front = files.write("front.jpg", &id_card(true));
    let back = files.write("back.jpg", &id_card(false));
    b.on_screen("document_front").await;
    b.upload("#file-document_front", &front).await;
    b.wait_for(
        "the preview",
        "return !document.getElementById('send').hidden",
        serde_json::json!([]),
    )
    .await;
    b.screenshot("document-front-preview").await;
    b.click("#send").await;
    b.on_screen("document_back").await;
    b.upload("#file-document_back", &back).await;
    b.click("#send").await;

    b.on_screen("consent").await;
    b.click("#consent-tick").await;
    b.click("button[type=submit]").await;

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
    b.click("#institutions li[role=option]").await;
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
    let b = Browser::start(Options {
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
    let b = Browser::start(Options {
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
        examreg_biometrics::checks::Kind::Face,
        &Default::default(),
    );
    assert_eq!(check.unwrap_err().code(), "blurred");
    let camera = files.camera(&blurred);
    let b = Browser::start(Options {
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
    b.click("#app .primary").await; // «Кіру»
    b.on_screen("login").await;
    b.fill("input[name=login]", &iin).await;
    b.fill("input[name=password]", PASSWORD).await;
    b.click("button[type=submit]").await;
    b.on_screen("face").await;
    b.click("#take").await;
    b.wait_for(
        "the preview",
        "return !document.getElementById('send').hidden",
        serde_json::json!([]),
    )
    .await;
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
async fn the_pages_are_served_with_their_security_headers() {
    let s = suite().await;
    for (path, kind) in [
        ("/", "text/html"),
        ("/assets/app.js", "text/javascript"),
        ("/assets/texts.js", "text/javascript"),
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
