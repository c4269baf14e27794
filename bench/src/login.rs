//! The login-only run: the people registered in the main run log in again and again, from
//! many addresses at once, for a fixed time. A login is one argon2id verification with the
//! configured parameters plus a session (Redis, tokens), so this is the hashing pool's
//! throughput as an applicant sees it.

use crate::{journey::PASSWORD, report};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

pub(crate) async fn run(
    http: &reqwest::Client,
    base: &str,
    people: &[String],
    concurrency: usize,
    seconds: u64,
) -> Value {
    if people.is_empty() {
        return json!({"error": "nobody registered in the main run"});
    }
    let recorder = report::Recorder::default();
    let people: Arc<Vec<String>> = Arc::new(people.to_vec());
    let next = Arc::new(AtomicU64::new(0));
    let before = report::processes();
    let busy_before = report::machine_busy();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (http, base, recorder) = (http.clone(), base.to_owned(), recorder.clone());
            let (people, next) = (people.clone(), next.clone());
            tokio::spawn(async move {
                let mut ok = 0u64;
                while Instant::now() < deadline {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let iin = &people[(n as usize) % people.len()];
                    // A new address each time: the per-address limit is not what is measured.
                    let ip = format!("10.200.{}.{}", (n >> 8) & 255, n & 255);
                    let sent = Instant::now();
                    let response = http
                        .post(format!("{base}/v1/sessions"))
                        .header("x-forwarded-for", ip)
                        .json(&json!({"login": iin, "password": PASSWORD}))
                        .send()
                        .await;
                    let elapsed = sent.elapsed();
                    match response {
                        Ok(r) if r.status() == StatusCode::CREATED => {
                            recorder.step("login", elapsed);
                            ok += 1;
                        }
                        Ok(r) => {
                            let status = r.status().as_u16();
                            let retry = crate::journey::retry_after(&r);
                            let body: Value = r.json().await.unwrap_or(Value::Null);
                            let code = body["error"]["code"].as_str().unwrap_or("-");
                            recorder.error(format!("login:{status}:{code}"));
                            if let Some(wait) = retry {
                                tokio::time::sleep(Duration::from_secs(wait)).await;
                            }
                        }
                        Err(_) => recorder.error("login:transport".into()),
                    }
                }
                ok
            })
        })
        .collect();
    let mut logins = 0;
    for worker in workers {
        logins += worker.await.unwrap_or(0);
    }
    let seconds = started.elapsed().as_secs_f64();
    let after = report::processes();
    let busy = report::machine_busy() - busy_before;
    let cores = std::thread::available_parallelism().map_or(1, usize::from) as f64;
    let cpu =
        |name: &str| after.get(name).map_or(0.0, |a| a.0) - before.get(name).map_or(0.0, |b| b.0);
    let (steps, errors) = recorder.summary();
    let rate = logins as f64 / seconds;
    let per_login = |cpu: f64| {
        if logins > 0 {
            cpu * 1000.0 / logins as f64
        } else {
            0.0
        }
    };
    let services: f64 = after.keys().map(|name| cpu(name)).sum();
    json!({
        "concurrency": concurrency,
        "seconds": seconds,
        "logins": logins,
        "logins_per_second": rate,
        "logins_per_second_per_core": rate / cores,
        "identity_cpu_ms_per_login": per_login(cpu("identity")),
        "gateway_cpu_ms_per_login": per_login(cpu("gateway")),
        // The machine's cores in use (steal included), and what the rest of it (Postgres,
        // Redis, the load generator, the kernel) spent per login.
        "cores_busy": busy / seconds,
        "others_cpu_ms_per_login": per_login(busy - services),
        "latency": steps["login"],
        "errors": errors,
    })
}
