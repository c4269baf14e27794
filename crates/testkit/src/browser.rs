//! A real browser for tests: Debian's Chromium driven over WebDriver by its ChromeDriver, with
//! a fake camera that plays a photograph, and screenshots of every screen a test passes kept
//! as artifacts (`test-artifacts/browser/<test>/`, or under `EXAMREG_ARTIFACTS`).
//!
//! The WebDriver protocol is plain JSON over HTTP, so this speaks it with reqwest instead of
//! pulling in a client crate. Chromium runs headless, without a sandbox (tests run as root),
//! and with everything that would reach the network switched off.

use base64::Engine as _;
use image::{DynamicImage, RgbImage, imageops};
use serde_json::{Value, json};
use std::os::unix::process::CommandExt as _;
use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long a wait for the page gives up after: long enough for a loaded CI machine (photo
/// checks of two browsers at once), never a measure of speed.
const WAIT: Duration = Duration::from_secs(60);
pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How the browser is started.
pub struct Options<'a> {
    /// The test's name: its screenshots go to a folder of that name.
    pub test: &'a str,
    /// The viewport, in CSS pixels.
    pub size: (u32, u32),
    /// Emulate a phone (touch, device metrics) rather than a desktop window.
    pub phone: bool,
    /// A Y4M video the fake camera plays in a loop.
    pub camera: Option<&'a Path>,
    /// The browser's preferred language (`Accept-Language`).
    pub lang: &'a str,
}

pub struct Browser {
    http: reqwest::Client,
    driver: Child,
    url: String,
    session: String,
    artifacts: PathBuf,
    shots: AtomicUsize,
    profile: PathBuf,
    phone: bool,
    /// axe-core's source, run on every screen.
    axe: String,
    /// The driver's group was killed and the driver reaped.
    stopped: bool,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Where a test's artifacts go: `EXAMREG_ARTIFACTS`, or `test-artifacts/` at the root of the
/// workspace the test runs in (found from the working directory at run time: a path baked in
/// at compile time would name whichever checkout last built this crate into a shared target
/// directory).
pub fn artifacts_dir(test: &str) -> PathBuf {
    let root = std::env::var_os("EXAMREG_ARTIFACTS").map_or_else(
        || {
            let here = std::env::current_dir().expect("a working directory");
            here.ancestors()
                .find(|dir| dir.join("Cargo.lock").exists())
                .unwrap_or(&here)
                .join("test-artifacts")
        },
        PathBuf::from,
    );
    root.join("browser").join(test)
}

impl Browser {
    pub async fn start(options: Options<'_>) -> Self {
        assert!(
            Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists(),
            "the browser tests need Debian's chromium and chromium-driver \
             (deploy/test installs them: apt-get install chromium chromium-driver)"
        );
        let axe = std::fs::read_to_string(crate::axe_core()).unwrap_or_else(|e| {
            panic!(
                "the browser tests run axe-core on every screen (deploy/axe-core installs it at {}): {e}",
                crate::axe_core().display()
            )
        });
        let port = free_port();
        // A process group of its own, which the Chromium it starts joins: a failed test
        // stops them all (see Drop).
        let driver = Command::new(CHROMEDRIVER)
            .process_group(0)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let started = Instant::now();
        loop {
            let ready = http.get(format!("{url}/status")).send().await;
            if let Ok(r) = ready
                && let Ok(v) = r.json::<Value>().await
                && v["value"]["ready"] == true
            {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile =
            std::env::temp_dir().join(format!("examreg-chromium-{}", uuid::Uuid::new_v4()));
        let (w, h) = options.size;
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-quic".into(),
            "--disable-default-apps".into(),
            "--disable-extensions".into(),
            "--no-first-run".into(),
            "--use-fake-ui-for-media-stream".into(),
            "--use-fake-device-for-media-stream".into(),
            format!("--lang={}", options.lang),
            format!("--user-data-dir={}", profile.display()),
            format!("--window-size={w},{h}"),
        ];
        if let Some(video) = options.camera {
            args.push(format!(
                "--use-file-for-fake-video-capture={}",
                video.display()
            ));
        }
        let mut chrome = json!({
            "binary": CHROMIUM,
            "args": args,
            "prefs": {"intl.accept_languages": options.lang},
        });
        if options.phone {
            chrome["mobileEmulation"] = json!({
                "deviceMetrics": {"width": w, "height": h, "pixelRatio": 2.0, "touch": true, "mobile": true},
                "userAgent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Mobile Safari/537.36",
            });
        }
        let created: Value = http
            .post(format!("{url}/session"))
            .json(&json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": chrome,
                "timeouts": {"implicit": 0, "pageLoad": 30000, "script": 30000},
            }}}))
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .expect("a JSON answer");
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromium did not start: {created}"))
            .to_owned();
        let artifacts = artifacts_dir(options.test);
        let _ = std::fs::remove_dir_all(&artifacts);
        std::fs::create_dir_all(&artifacts).expect("the artifacts folder");
        Self {
            http,
            driver,
            stopped: false,
            url,
            session,
            artifacts,
            shots: AtomicUsize::new(0),
            profile,
            phone: options.phone,
            axe,
        }
    }

    /// One WebDriver command; its `value`, or a panic with the driver's error.
    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.url, self.session);
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .expect("a JSON answer");
        if answer["value"]["error"].is_string() {
            panic!("WebDriver {path}: {}", answer["value"]);
        }
        answer["value"].clone()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.command(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({"url": url})).await;
    }

    /// Runs `script` in the page (its `arguments` are `args`) and returns what it returns.
    pub async fn execute(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": args}))
            .await
    }

    /// Waits (up to 20 s) until `script` returns something truthy, and returns it.
    pub async fn wait_for(&self, what: &str, script: &str, args: Value) -> Value {
        let started = Instant::now();
        loop {
            let value = self.execute(script, args.clone()).await;
            let truthy = match &value {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::String(s) => !s.is_empty(),
                Value::Number(_) | Value::Array(_) | Value::Object(_) => true,
            };
            if truthy {
                return value;
            }
            if started.elapsed() > WAIT {
                self.screenshot(&format!("timeout-{what}")).await;
                let screen = self.screen().await;
                let alert = self
                    .execute(
                        "const a = document.querySelector('.alert'); return a ? a.textContent : ''",
                        json!([]),
                    )
                    .await;
                panic!("waited {WAIT:?} for {what}; on screen {screen:?}, alert {alert}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The screen the page shows (`<main data-screen>`).
    pub async fn screen(&self) -> String {
        self.execute(
            "return document.getElementById('app').dataset.screen",
            json!([]),
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// Waits for the screen `name`, saves a screenshot of it and checks it with axe-core (no
    /// serious or critical violation); on a phone, also checks that nothing on it is wider
    /// than the screen.
    pub async fn on_screen(&self, name: &str) {
        self.wait_for(
            &format!("the {name} screen"),
            "return document.getElementById('app').dataset.screen === arguments[0]",
            json!([name]),
        )
        .await;
        self.screenshot(name).await;
        let violations = self.accessibility().await;
        assert!(
            violations.is_empty(),
            "on the {name} screen, axe-core finds: {violations:#?}"
        );
        if self.phone {
            let overflow = self
                .execute(
                    "const w = document.documentElement.clientWidth; \
                     const out = [...document.querySelectorAll('body *')] \
                       .filter((e) => e.getClientRects().length && e.getBoundingClientRect().right > w + 0.5) \
                       .map((e) => e.tagName + ' ' + (e.textContent || '').slice(0, 40)); \
                     return out.length ? out : null",
                    json!([]),
                )
                .await;
            assert!(
                overflow.is_null(),
                "on the {name} screen, wider than the phone: {overflow}"
            );
        }
    }

    /// axe-core's serious and critical violations on the page as it is, each as
    /// "rule (impact): what it says — the elements".
    pub async fn accessibility(&self) -> Vec<String> {
        self.execute(
            &format!("{}\n;window.axe = axe; return true;", self.axe),
            json!([]),
        )
        .await;
        let found = self
            .post(
                "/execute/async",
                json!({"script": "const done = arguments[arguments.length - 1]; \
                    window.axe.run(document, {resultTypes: ['violations']}) \
                      .then((r) => done(r.violations \
                        .filter((v) => v.impact === 'serious' || v.impact === 'critical') \
                        .map((v) => `${v.id} (${v.impact}): ${v.help} — ` + \
                          v.nodes.map((n) => n.target.join(' ')).join(', ')))) \
                      .catch((e) => done([`axe-core failed: ${e}`]));",
                    "args": []}),
            )
            .await;
        found
            .as_array()
            .map(|list| {
                list.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_else(|| vec![format!("axe-core answered {found}")])
    }

    /// A Chrome DevTools Protocol command (e.g. `Page.getInstallabilityErrors`) and its
    /// answer.
    pub async fn devtools(&self, command: &str, params: Value) -> Value {
        self.post(
            "/goog/cdp/execute",
            json!({"cmd": command, "params": params}),
        )
        .await
    }

    async fn element(&self, css: &str) -> String {
        self.wait_for(
            css,
            "const e = document.querySelector(arguments[0]); return !!e && e.offsetParent !== null && !e.disabled",
            json!([css]),
        )
        .await;
        let found = self
            .post("/element", json!({"using": "css selector", "value": css}))
            .await;
        found[ELEMENT].as_str().expect("an element id").to_owned()
    }

    /// Clicks the element matching `css` once it is visible and enabled.
    pub async fn click(&self, css: &str) {
        let id = self.element(css).await;
        self.post(&format!("/element/{id}/click"), json!({})).await;
    }

    /// Types `text` into the (cleared) input matching `css`, key by key.
    pub async fn fill(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.post(&format!("/element/{id}/clear"), json!({})).await;
        self.post(&format!("/element/{id}/value"), json!({"text": text}))
            .await;
    }

    /// Presses keys in the element that has the focus (WebDriver key codes, e.g. `\u{E007}`
    /// for Enter, `\u{E015}` for the down arrow).
    pub async fn keys(&self, keys: &str) {
        let active = self
            .command(reqwest::Method::GET, "/element/active", None)
            .await;
        let id = active[ELEMENT].as_str().expect("a focused element");
        self.post(&format!("/element/{id}/value"), json!({"text": keys}))
            .await;
    }

    /// Hands a file to an `<input type=file>` (hidden ones too).
    pub async fn upload(&self, css: &str, path: &Path) {
        let found = self
            .post("/element", json!({"using": "css selector", "value": css}))
            .await;
        let id = found[ELEMENT].as_str().expect("an element id");
        self.post(
            &format!("/element/{id}/value"),
            json!({"text": path.display().to_string()}),
        )
        .await;
    }

    /// Chooses `value` in the `<select>` matching `css`, as a person would.
    pub async fn select(&self, css: &str, value: &str) {
        self.element(css).await;
        self.execute(
            "const s = document.querySelector(arguments[0]); s.value = arguments[1]; \
             s.dispatchEvent(new Event('change', {bubbles: true})); return s.value === arguments[1]",
            json!([css, value]),
        )
        .await;
    }

    /// The value of an input.
    pub async fn value(&self, css: &str) -> String {
        self.execute(
            "const e = document.querySelector(arguments[0]); return e ? e.value : null",
            json!([css]),
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// The visible text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        self.execute(
            "const e = document.querySelector(arguments[0]); return e ? e.innerText : null",
            json!([css]),
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// Saves a PNG of the viewport as `NN-name.png` in the test's artifacts, and returns it.
    pub async fn screenshot(&self, name: &str) -> Vec<u8> {
        let shot = self
            .command(reqwest::Method::GET, "/screenshot", None)
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot.as_str().unwrap_or_default())
            .expect("a base64 PNG");
        let n = self.shots.fetch_add(1, Ordering::Relaxed) + 1;
        let path = self.artifacts.join(format!("{n:02}-{name}.png"));
        std::fs::write(&path, &png).expect("the screenshot is saved");
        png
    }

    /// Ends the session (Chromium exits) and stops the driver.
    pub async fn close(mut self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.url, self.session))
            .send()
            .await;
        self.stop();
        let _ = std::fs::remove_dir_all(&self.profile);
    }

    /// Kills the driver's process group (the Chromium it started joined it), then reaps the
    /// driver; once only, so the group's number cannot have gone to another process.
    fn stop(&mut self) {
        // Until the driver is reaped its number is its own, and so is its group's.
        if std::mem::replace(&mut self.stopped, true) {
            return;
        }
        // By the system call itself: procps' `kill -KILL -<pgid>` reads only the group's
        // first digit, so a group 1… became `kill(-1)`, every process the user may signal.
        if let Some(group) = i32::try_from(self.driver.id())
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A failed test never reaches close(): do not leave the driver, or the Chromium it
        // started (whose fake camera would keep a core busy), behind.
        self.stop();
    }
}

/// A one-frame Y4M video (4:2:0, full-range BT.601, as Chromium's fake camera reads it) of
/// `photo` fitted into a `width` × `height` frame on a grey background.
pub fn y4m(photo: &DynamicImage, width: u32, height: u32) -> Vec<u8> {
    y4m_scenes(&[(photo, 1)], width, height)
}

/// A Y4M video at 10 frames a second of each photo in turn, `frames` frames each (the fake
/// camera plays it in a loop): a face that comes and goes.
pub fn y4m_scenes(scenes: &[(&DynamicImage, usize)], width: u32, height: u32) -> Vec<u8> {
    let mut out = format!("YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n").into_bytes();
    for (photo, frames) in scenes {
        let planes = yuv420(&camera_frame(photo, width, height));
        for _ in 0..*frames {
            out.extend_from_slice(b"FRAME\n");
            out.extend_from_slice(&planes);
        }
    }
    out
}

/// A frame's Y, Cb and Cr planes (4:2:0, full-range BT.601).
fn yuv420(frame: &RgbImage) -> Vec<u8> {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let mut out = Vec::with_capacity(w * h * 3 / 2);
    let px = |x: usize, y: usize| {
        let p = frame.get_pixel(x as u32, y as u32).0;
        (f64::from(p[0]), f64::from(p[1]), f64::from(p[2]))
    };
    for y in 0..h {
        for x in 0..w {
            let (r, g, b) = px(x, y);
            out.push(
                (0.299 * r + 0.587 * g + 0.114 * b)
                    .round()
                    .clamp(0.0, 255.0) as u8,
            );
        }
    }
    let mut cb = Vec::with_capacity(w * h / 4);
    let mut cr = Vec::with_capacity(w * h / 4);
    for y in (0..h).step_by(2) {
        for x in (0..w).step_by(2) {
            let (mut r, mut g, mut b) = (0.0, 0.0, 0.0);
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                let p = px((x + dx).min(w - 1), (y + dy).min(h - 1));
                r += p.0 / 4.0;
                g += p.1 / 4.0;
                b += p.2 / 4.0;
            }
            cb.push(
                (128.0 - 0.168_736 * r - 0.331_264 * g + 0.5 * b)
                    .round()
                    .clamp(0.0, 255.0) as u8,
            );
            cr.push(
                (128.0 + 0.5 * r - 0.418_688 * g - 0.081_312 * b)
                    .round()
                    .clamp(0.0, 255.0) as u8,
            );
        }
    }
    out.extend(cb);
    out.extend(cr);
    out
}

/// `photo` scaled to fit a `width` × `height` frame, centred on grey: what the camera sees.
pub fn camera_frame(photo: &DynamicImage, width: u32, height: u32) -> RgbImage {
    let fitted = photo
        .resize(width, height, imageops::FilterType::CatmullRom)
        .to_rgb8();
    let mut frame = RgbImage::from_pixel(width, height, image::Rgb([128, 128, 128]));
    let x = (width - fitted.width()) / 2;
    let y = (height - fitted.height()) / 2;
    imageops::overlay(&mut frame, &fitted, i64::from(x), i64::from(y));
    frame
}
