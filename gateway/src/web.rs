//! The reference web pages, embedded in the binary and served at `/`: one HTML page, one
//! script with the interface texts, one script with the screens, the proof-of-work worker,
//! one stylesheet. No build
//! step and no separate server. The pages run under a Content-Security-Policy that allows
//! scripts, styles, connections and images from this origin only (and camera frames as blob:
//! images), with no inline script or style, no framing, no plugins.

use axum::{
    Router,
    http::{HeaderMap, HeaderValue, header},
    response::IntoResponse,
    routing::get,
};

use crate::state::AppState;
use examreg_domain::Step;

const INDEX: &str = include_str!("../web/index.html");
const APP_JS: &str = include_str!("../web/app.js");
const TEXTS_JS: &str = include_str!("../web/texts.js");
const APP_CSS: &str = include_str!("../web/app.css");
const POW_JS: &str = include_str!("../web/pow.js");
const MANIFEST: &str = include_str!("../web/manifest.webmanifest");
const ICON_192: &[u8] = include_bytes!("../web/icon-192.png");
const ICON_512: &[u8] = include_bytes!("../web/icon-512.png");

/// Everything the pages load comes from this origin; camera previews are blob: URLs and the
/// QR code of a hand-off is an inline SVG data: image.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     worker-src 'self'; \
     style-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; connect-src 'self'; \
     font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/",
            get(|| async { page(INDEX.as_bytes(), "text/html; charset=utf-8") }),
        )
        .route(
            "/assets/app.js",
            get(|| async { page(app_js().as_bytes(), "text/javascript; charset=utf-8") }),
        )
        .route(
            "/assets/texts.js",
            get(|| async { page(TEXTS_JS.as_bytes(), "text/javascript; charset=utf-8") }),
        )
        .route(
            "/assets/pow.js",
            get(|| async { page(POW_JS.as_bytes(), "text/javascript; charset=utf-8") }),
        )
        .route(
            "/assets/app.css",
            get(|| async { page(APP_CSS.as_bytes(), "text/css; charset=utf-8") }),
        )
        // What makes the page installable on a phone (deploy/icons draws the icons).
        .route(
            "/manifest.webmanifest",
            get(|| async { page(MANIFEST.as_bytes(), "application/manifest+json") }),
        )
        .route(
            "/assets/icon-192.png",
            get(|| async { page(ICON_192, "image/png") }),
        )
        .route(
            "/assets/icon-512.png",
            get(|| async { page(ICON_512, "image/png") }),
        )
}

/// The screens' script with the onboarding's steps written in: the pages walk the list the
/// onboarding answers by, never one of their own.
fn app_js() -> &'static str {
    static SCRIPT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let list = |steps: Vec<&str>| serde_json::to_string(&steps).unwrap_or_default();
        let photos = Step::ALL
            .iter()
            .filter(|s| s.capture().is_some())
            .map(|s| s.as_str())
            .collect();
        APP_JS
            .replace(
                "'{{onboarding_steps}}'",
                &list(crate::onboarding::onboarding_steps().collect()),
            )
            .replace("'{{photo_steps}}'", &list(photos))
    });
    &SCRIPT
}

fn page(body: &'static [u8], content_type: &'static str) -> impl IntoResponse {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Small files that change with each release: always revalidate.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    security_headers(&mut headers);
    (headers, axum::body::Bytes::from_static(body))
}

/// The headers every page response carries.
pub fn security_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(self), microphone=(), geolocation=(), payment=()"),
    );
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pages_need_no_inline_script_or_style_and_keep_tokens_in_the_tab() {
        for unsafe_source in ["'unsafe-inline'", "'unsafe-eval'", "*"] {
            assert!(!CONTENT_SECURITY_POLICY.contains(unsafe_source));
        }
        // Every script is a file of this origin; no inline handlers, no style attributes.
        let scripts = INDEX.matches("<script").count();
        assert_eq!(scripts, INDEX.matches("<script src=\"/assets/").count());
        assert!(!INDEX.contains(" style=") && !INDEX.contains(" onclick="));
        // innerHTML would parse text as markup; the screens set text only.
        assert!(!APP_JS.contains("innerHTML") && !APP_JS.contains("eval("));
        // Only the language outlives the tab; tokens go to sessionStorage.
        for (at, _) in APP_JS.match_indices("localStorage.setItem(") {
            assert!(APP_JS[at..].starts_with("localStorage.setItem('lang'"));
        }
    }

    #[test]
    fn the_served_script_walks_the_onboardings_own_steps() {
        let script = app_js();
        assert!(!script.contains("{{"), "a placeholder is left");
        let list = |name: &str| -> Vec<String> {
            let at = script.find(&format!("const {name} = ")).unwrap() + name.len() + 9;
            let end = at + script[at..].find(';').unwrap();
            serde_json::from_str(&script[at..end]).unwrap()
        };
        let onboarding: Vec<String> = crate::onboarding::onboarding_steps()
            .map(str::to_owned)
            .collect();
        assert_eq!(list("ONBOARDING"), onboarding);
        assert_eq!(onboarding.first().map(String::as_str), Some("face"));
        assert_eq!(onboarding.last().map(String::as_str), Some("complete"));
        assert_eq!(
            list("PHOTO_STEPS"),
            ["face", "document_front", "document_back"]
        );
        // Every step the onboarding names is a value its public schema lists.
        let document: serde_json::Value =
            serde_json::from_str(include_str!("../../docs/openapi.json")).unwrap();
        let values = &document["components"]["schemas"]["NextStep"]["enum"];
        for step in &onboarding {
            assert!(
                values.as_array().unwrap().iter().any(|v| v == step),
                "{step}"
            );
        }
    }

    #[test]
    fn the_manifest_names_icons_of_the_sizes_it_says() {
        let manifest: serde_json::Value = serde_json::from_str(MANIFEST).unwrap();
        assert_eq!(manifest["display"], "standalone");
        assert!(INDEX.contains("<link rel=\"manifest\" href=\"/manifest.webmanifest\">"));
        let icons = manifest["icons"].as_array().unwrap();
        for size in [192, 512] {
            assert!(icons.iter().any(|i| i["sizes"] == format!("{size}x{size}")));
        }
        for icon in icons {
            let png = match icon["src"].as_str().unwrap() {
                "/assets/icon-192.png" => ICON_192,
                "/assets/icon-512.png" => ICON_512,
                other => panic!("{other} is not served"),
            };
            // The PNG header's width and height (IHDR, right after the signature).
            let side = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
            assert_eq!(
                format!("{}x{}", side(16), side(20)),
                icon["sizes"].as_str().unwrap()
            );
        }
    }
}
