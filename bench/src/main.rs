//! `examreg-bench`: runs applicants through the whole registration against a running suite
//! (loopback only), measures in the same run what the hardware allows, and writes the report.
//!
//!   examreg-bench [--concurrency C | --rate R] [--count N] [--max-seconds S] [--overload]
//!                 [--login-seconds S] [--base http://127.0.0.1:8080]
//!                 [--mail http://127.0.0.1:1080] [--out DIR]
//!   examreg-bench --bound-only
//!   examreg-bench --render DIR
//!   examreg-bench --pow [--pow-levels 25000,50000,…] [--pow-reps N]
//!
//! Closed loop (`--concurrency`, default 4): C applicants at a time, each starting when one
//! finishes. Fixed arrival rate (`--rate`): R new applicants per second whatever the suite's
//! answers. Stops after N applicants (default 50) or S seconds (default 300).
//!
//! Then, against the same suite: a run at half the achieved rate (the cheap steps' latency
//! when the suite is not saturated), a login-only run (`--login-seconds`, default 20; 0 skips
//! it) and, with `--overload`, a run at twice the achieved rate.
//!
//! `--pow` measures the reference page's proof-of-work worker in Chromium at each level (see
//! `pow`); it needs no suite.
//!
//! `--render DIR` reads `DIR/report.json` (an older run's too), works out the overhead and
//! the goals from its figures, and writes `report.md` again.

mod bound;
mod hop;
mod journey;
mod login;
mod mail;
mod pow;
mod report;

use journey::{Ctx, Photos};
use serde_json::{Value, json};
use std::{
    sync::{Arc, atomic::AtomicU64},
    time::{Duration, Instant},
};

struct Args {
    concurrency: usize,
    rate: Option<f64>,
    count: u64,
    max_seconds: u64,
    base: String,
    mail: String,
    profile: String,
    /// Biometrics' replicas (comma-separated), whose `/metrics` count the document checks
    /// read.
    biometrics: String,
    /// Every service process's `/metrics` as `name=url`, comma-separated: the calls each
    /// answered in the main run, per registration.
    metrics: String,
    out: std::path::PathBuf,
    /// After the measured run, a second one at twice its rate.
    overload: bool,
    /// Seconds of the login-only run (0: none).
    login_seconds: u64,
    /// Measure the bound only (no suite needed) and print it.
    bound_only: bool,
    /// Measure the price of the suite's TLS on a bare gRPC call only (no suite needed).
    tls_price: bool,
    /// Render this directory's report.json again, run nothing.
    render: Option<std::path::PathBuf>,
    /// Measure the proof of work's solves in Chromium at these levels, run nothing else.
    pow: Option<Vec<u64>>,
    pow_reps: usize,
    /// The suite's TLS (`EXAMREG_TLS_*`), for the direct calls to profile and the TLS
    /// price measured beside the hop.
    tls: examreg_kit::tls::Settings,
}

fn args() -> anyhow::Result<Args> {
    let mut args = Args {
        concurrency: 4,
        rate: None,
        count: 50,
        max_seconds: 300,
        base: "http://127.0.0.1:8080".into(),
        mail: "http://127.0.0.1:1080".into(),
        profile: "https://127.0.0.1:50054".into(),
        biometrics: "http://127.0.0.1:9053".into(),
        metrics: "gateway=http://127.0.0.1:8082,identity=http://127.0.0.1:9051,\
                  verification=http://127.0.0.1:9052,biometrics=http://127.0.0.1:9053,\
                  profile=http://127.0.0.1:9054"
            .into(),
        overload: false,
        login_seconds: 20,
        bound_only: false,
        tls_price: false,
        render: None,
        pow: None,
        pow_reps: 10,
        out: "bench-report".into(),
        tls: {
            let mut env = examreg_kit::config::Env::from_process();
            let tls = examreg_kit::tls::Settings::from_env(&mut env);
            env.finish()?;
            tls
        },
    };
    let mut given = std::env::args().skip(1);
    while let Some(flag) = given.next() {
        let mut value = || {
            given
                .next()
                .ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--concurrency" => args.concurrency = value()?.parse()?,
            "--rate" => args.rate = Some(value()?.parse()?),
            "--count" => args.count = value()?.parse()?,
            "--max-seconds" => args.max_seconds = value()?.parse()?,
            "--base" => args.base = value()?,
            "--mail" => args.mail = value()?,
            "--profile" => args.profile = value()?,
            "--biometrics" => args.biometrics = value()?,
            "--metrics" => args.metrics = value()?,
            "--out" => args.out = value()?.into(),
            "--overload" => args.overload = true,
            "--login-seconds" => args.login_seconds = value()?.parse()?,
            "--bound-only" => args.bound_only = true,
            "--tls-price" => args.tls_price = true,
            "--render" => args.render = Some(value()?.into()),
            "--pow" => {
                args.pow
                    .get_or_insert_with(|| vec![12_500, 25_000, 50_000, 100_000, 200_000, 400_000]);
            }
            "--pow-levels" => {
                args.pow = Some(
                    value()?
                        .split(',')
                        .map(str::parse)
                        .collect::<Result<_, _>>()?,
                );
            }
            "--pow-reps" => args.pow_reps = value()?.parse()?,
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    for url in [args.base.as_str(), &args.mail, &args.profile]
        .into_iter()
        .chain(args.biometrics.split(','))
        .chain(
            args.metrics
                .split(',')
                .map(|entry| entry.split_once('=').map_or(entry, |(_, url)| url)),
        )
    {
        let host = url
            .trim()
            .trim_start_matches("http://")
            .trim_start_matches("https://");
        anyhow::ensure!(
            host.starts_with("127.0.0.1") || host.starts_with("localhost"),
            "{url}: the benchmark targets loopback only"
        );
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    if let Some(levels) = &args.pow {
        pow::run(levels, args.pow_reps).await?;
        return Ok(());
    }
    if args.tls_price {
        let price = hop::tls_price(&args.tls).await?;
        println!("{}", serde_json::to_string_pretty(&price)?);
        return Ok(());
    }
    if let Some(dir) = &args.render {
        let mut report: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("report.json"))?)?;
        finish(&mut report);
        let markdown = report::markdown(&report);
        std::fs::write(dir.join("report.md"), &markdown)?;
        println!("{markdown}");
        return Ok(());
    }
    if !args.bound_only {
        let left = drained(&args.biometrics).await;
        if left > 0.0 {
            eprintln!("{left} document checks an earlier run left were read before measuring");
        }
    }
    let photos = Photos::load();
    let model = std::env::var_os("BIOMETRICS_MRZ_MODEL")
        .map_or_else(examreg_testkit::mrz_model, std::path::PathBuf::from);
    let reader = examreg_biometrics::ocr::Reader::load(&model)?;
    eprintln!(
        "measuring the bound (argon2id on every core, the three photo checks, the zone's reading)…"
    );
    let bound_before = bound::parts(&photos, &reader).await?;
    if args.bound_only {
        let bound = bound::bound(&bound_before, &bound::parts(&photos, &reader).await?);
        println!("{}", serde_json::to_string_pretty(&bound)?);
        return Ok(());
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .pool_max_idle_per_host(256)
        .build()?;
    let ctx = Arc::new(Ctx {
        mailbox: mail::Mailbox::start(http.clone(), args.mail.clone()),
        http,
        base: args.base.clone(),
        recorder: report::Recorder::default(),
        photos,
        next: AtomicU64::new(0),
        token: std::sync::Mutex::new(None),
        registered: std::sync::Mutex::new(Vec::new()),
    });
    let idle_rss = report::rss_now();
    let before = report::processes();
    let busy_before = report::machine_busy();
    anyhow::ensure!(
        !before.is_empty(),
        "no examreg-* process found: start the suite first (deploy/bench does)"
    );
    let checks_before = document_checks(&ctx.http, &args.biometrics).await;
    let calls_before = calls(&ctx.http, &args.metrics).await;
    let deadline = Instant::now() + Duration::from_secs(args.max_seconds);
    let started = Instant::now();
    let ((completed, failed), mode) = match args.rate {
        Some(rate) => (
            open_loop(&ctx, rate, args.count, deadline).await,
            format!("{rate} arrivals/s"),
        ),
        None => (
            closed_loop(&ctx, args.concurrency, args.count, deadline).await,
            format!("{} concurrent", args.concurrency),
        ),
    };
    let seconds = started.elapsed().as_secs_f64();
    let checks = document_checks(&ctx.http, &args.biometrics)
        .await
        .since(&checks_before, seconds);
    let calls_after = calls(&ctx.http, &args.metrics).await;
    let after = report::processes();
    let busy = report::machine_busy() - busy_before;
    let token = ctx.token.lock().expect("token lock").clone();
    let hop = match token {
        Some(token) => hop::measure(&ctx.http, &args.base, &args.profile, &args.tls, &token)
            .await
            .unwrap_or_else(|e| json!({"error": e.to_string()})),
        None => json!({"error": "no applicant logged in"}),
    };
    let (steps, errors) = ctx.recorder.summary();
    let per_registration = |cpu: f64| {
        if completed > 0 {
            cpu / completed as f64
        } else {
            0.0
        }
    };
    let processes: serde_json::Map<String, Value> = after
        .iter()
        .map(|(name, (cpu, peak_kib))| {
            let used = cpu - before.get(name).map_or(0.0, |b| b.0);
            (
                name.clone(),
                json!({
                    "cpu_seconds": used,
                    "cpu_seconds_per_registration": per_registration(used),
                    "peak_rss_mib": *peak_kib as f64 / 1024.0,
                }),
            )
        })
        .collect();
    let rate = completed as f64 / seconds;
    let services_cpu: f64 = processes
        .values()
        .filter_map(|p| p["cpu_seconds"].as_f64())
        .sum();
    let half = if rate > 0.0 {
        eprintln!("half load: {:.1} arrivals/s for 20 s…", rate / 2.0);
        rate_run(&ctx, rate / 2.0, 20.0).await
    } else {
        Value::Null
    };
    let people = ctx.registered.lock().expect("registered lock").clone();
    let logins = if args.login_seconds > 0 {
        eprintln!("login only: {} s…", args.login_seconds);
        login::run(&ctx.http, &args.base, &people, 8, args.login_seconds).await
    } else {
        Value::Null
    };
    let overload = if args.overload && rate > 0.0 {
        eprintln!("overload: {:.1} arrivals/s for 30 s…", 2.0 * rate);
        rate_run(&ctx, 2.0 * rate, 30.0).await
    } else {
        Value::Null
    };
    eprintln!("measuring the bound again, on the idle suite…");
    let bound = bound::bound(&bound_before, &bound::parts(&ctx.photos, &reader).await?);
    let mut report = json!({
        "idle_rss_mib": idle_rss,
        "half_load": half,
        "logins": logins,
        "overload": overload,
        "machine": machine(),
        "mode": mode,
        "completed": completed,
        "failed": failed,
        "seconds": seconds,
        "registrations_per_second": rate,
        "bound": bound,
        "hop": hop,
        "document_checks": checks,
        "achieved_over_bound": rate / bound["registrations_per_second"].as_f64().unwrap_or(f64::NAN),
        "cpu": cpu_split(&bound, rate, seconds, busy, services_cpu),
        "steps": steps,
        "errors": errors,
        "processes": processes,
        "calls": calls_since(&calls_before, &calls_after, completed),
    });
    finish(&mut report);
    std::fs::create_dir_all(&args.out)?;
    std::fs::write(
        args.out.join("report.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    let markdown = report::markdown(&report);
    std::fs::write(args.out.join("report.md"), &markdown)?;
    std::fs::write(args.out.join("latency.svg"), report::svg(&report))?;
    println!("{markdown}");
    eprintln!("report written to {}", args.out.display());
    Ok(())
}

/// Adds what is worked out from a report's figures: the overhead per service and the goals.
fn finish(report: &mut Value) {
    report["overhead"] = report::overhead(report);
    report["goals"] = report::goals(report)
        .into_iter()
        .map(|(what, figure, wanted, met)| {
            json!({"goal": what, "figure": figure, "wanted": wanted, "met": met})
        })
        .collect();
}

/// Each process's calls answered so far, by process (as `--metrics` names it: `identity#2`
/// for a second replica, as the process table does) and method (an RPC's last path segment,
/// a gateway route as `GET /v1/...`), every outcome counted: `grpc_server_handled_total` and
/// `gateway_http_requests_total`.
type Calls = std::collections::BTreeMap<String, std::collections::BTreeMap<String, f64>>;

async fn calls(http: &reqwest::Client, metrics: &str) -> Calls {
    let mut out = Calls::new();
    for entry in metrics.split(',').filter(|e| !e.is_empty()) {
        let Some((name, url)) = entry.split_once('=') else {
            continue;
        };
        let page = match http.get(format!("{}/metrics", url.trim())).send().await {
            Ok(response) => response.text().await.unwrap_or_default(),
            Err(_) => continue,
        };
        out.insert(name.trim().to_owned(), parse_calls(&page));
    }
    out
}

/// The calls a Prometheus page counts, by method or route.
fn parse_calls(page: &str) -> std::collections::BTreeMap<String, f64> {
    let label = |line: &str, key: &str| -> Option<String> {
        let start = line.find(&format!("{key}=\""))? + key.len() + 2;
        let end = start + line[start..].find('"')?;
        Some(line[start..end].to_owned())
    };
    let mut out = std::collections::BTreeMap::new();
    for line in page.lines() {
        let method = if line.starts_with("grpc_server_handled_total{") {
            label(line, "method").map(|m| m.rsplit('/').next().unwrap_or_default().to_owned())
        } else if line.starts_with("gateway_http_requests_total{") {
            label(line, "method")
                .zip(label(line, "route"))
                .map(|(m, r)| format!("{m} {r}"))
        } else {
            None
        };
        let count = line.rsplit(' ').next().and_then(|n| n.parse::<f64>().ok());
        if let (Some(method), Some(count)) = (method, count) {
            *out.entry(method).or_insert(0.0) += count;
        }
    }
    out
}

/// The calls of the main run per registration: each process's total and its methods.
fn calls_since(before: &Calls, after: &Calls, completed: u64) -> Value {
    let per = |n: f64| n / completed.max(1) as f64;
    after
        .iter()
        .map(|(process, methods)| {
            let methods: serde_json::Map<String, Value> = methods
                .iter()
                .map(|(method, n)| {
                    let was = before.get(process).and_then(|m| m.get(method)).copied();
                    (method.clone(), json!(per(n - was.unwrap_or(0.0))))
                })
                .filter(|(_, n)| n.as_f64().is_some_and(|n| n > 0.0))
                .collect();
            let total: f64 = methods.values().filter_map(Value::as_f64).sum();
            (
                process.clone(),
                json!({"per_registration": total, "methods": methods}),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// Waits until no document check is queued: checks an earlier run left behind (its overload
/// phase ends with some waiting) would be read during this one and take its CPU. Returns how
/// many were queued at first. Biometrics' gauge is refreshed every ten seconds; one that never
/// shows (a suite without it) is waited for 15 s at most.
async fn drained(biometrics: &str) -> f64 {
    let http = reqwest::Client::new();
    let started = Instant::now();
    let mut first = None;
    loop {
        let mut pending = None;
        for replica in biometrics.split(',') {
            if let Ok(response) = http.get(format!("{replica}/metrics")).send().await {
                let page = response.text().await.unwrap_or_default();
                // The cluster's queue, the same in every replica.
                pending = metric(&page, "biometrics_document_checks_pending").or(pending);
            }
        }
        let waited = started.elapsed();
        match pending {
            Some(n) if n <= 0.0 => return first.unwrap_or(0.0),
            Some(n) => {
                first.get_or_insert(n);
                if waited > Duration::from_secs(900) {
                    eprintln!(
                        "{n} document checks still queued after 15 minutes; measuring anyway"
                    );
                    return first.unwrap_or(n);
                }
            }
            None if waited > Duration::from_secs(15) => return 0.0,
            None => {}
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// The sum of a metric's samples on Prometheus pages (every label set, every replica); None
/// when no sample of it is there.
fn metric(pages: &str, name: &str) -> Option<f64> {
    pages
        .lines()
        .filter(|line| {
            line.starts_with(&format!("{name}{{")) || line.starts_with(&format!("{name} "))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .fold(None, |sum, n| Some(sum.unwrap_or(0.0) + n))
}

/// What biometrics' `/metrics` counted of the document checks: checks finished, and the
/// CPU seconds of the readings with their number.
struct Checks {
    finished: f64,
    read_seconds: f64,
    reads: f64,
}

async fn document_checks(http: &reqwest::Client, biometrics: &str) -> Checks {
    let mut pages = String::new();
    for replica in biometrics.split(',') {
        if let Ok(response) = http.get(format!("{replica}/metrics")).send().await {
            pages.push_str(&response.text().await.unwrap_or_default());
            pages.push('\n');
        }
    }
    let sum = |name: &str| metric(&pages, name).unwrap_or(0.0);
    Checks {
        finished: sum("biometrics_document_checks_total"),
        read_seconds: sum("biometrics_document_read_seconds_sum"),
        reads: sum("biometrics_document_read_seconds_count"),
    }
}

impl Checks {
    /// The checks of the run that began at `before` and lasted `seconds`: how many, how fast
    /// the queue drained, and the service's CPU per reading under the load.
    fn since(&self, before: &Checks, seconds: f64) -> Value {
        let finished = self.finished - before.finished;
        let reads = self.reads - before.reads;
        json!({
            "finished": finished,
            "drained_per_second": finished / seconds,
            "cpu_ms_per_reading": if reads > 0.0 { (self.read_seconds - before.read_seconds) / reads * 1000.0 } else { f64::NAN },
        })
    }
}

/// Where the machine's CPU went in the main run: the suite's services, and everything else
/// on the same two cores (Postgres, Redis, Garage, the mail catcher, this load generator,
/// the kernel). In production the stores and the clients are elsewhere, so the bound on the
/// CPU the services actually had tells how close the services themselves run to it.
fn cpu_split(bound: &Value, rate: f64, seconds: f64, busy: f64, services: f64) -> Value {
    let cores = std::thread::available_parallelism().map_or(2, usize::from) as f64;
    let unavoidable = bound["cpu_seconds_per_registration"]
        .as_f64()
        .unwrap_or(f64::NAN);
    let others = (busy - services).max(0.0);
    let left_to_services = cores - others / seconds;
    let services_bound = left_to_services / unavoidable;
    json!({
        "machine_busy_cpu_seconds": busy,
        "services_cpu_seconds": services,
        "others_cpu_seconds": others,
        "others_cpu_seconds_per_registration": if rate > 0.0 { others / (rate * seconds) } else { 0.0 },
        "services_cpu_seconds_per_registration": if rate > 0.0 { services / (rate * seconds) } else { 0.0 },
        "cores_left_to_services": left_to_services,
        "bound_on_services_cores": services_bound,
        "achieved_over_services_bound": rate / services_bound,
    })
}

/// C applicants at a time until `count` have run.
async fn closed_loop(
    ctx: &Arc<Ctx>,
    concurrency: usize,
    count: u64,
    deadline: Instant,
) -> (u64, u64) {
    let remaining = Arc::new(AtomicU64::new(count));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let ctx = ctx.clone();
            let remaining = remaining.clone();
            tokio::spawn(async move {
                let (mut ok, mut failed) = (0, 0);
                while Instant::now() < deadline
                    && remaining
                        .fetch_update(
                            std::sync::atomic::Ordering::Relaxed,
                            std::sync::atomic::Ordering::Relaxed,
                            |n| n.checked_sub(1),
                        )
                        .is_ok()
                {
                    match journey::run(ctx.clone()).await {
                        Ok(()) => ok += 1,
                        Err(kind) => {
                            ctx.recorder.error(kind);
                            failed += 1;
                        }
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    let mut totals = (0, 0);
    for worker in workers {
        let (ok, failed) = worker.await.unwrap_or((0, 0));
        totals.0 += ok;
        totals.1 += failed;
    }
    totals
}

/// New applicants at `rate` for about `seconds` (at least 30 of them). At half the sustainable
/// rate this shows the cheap steps' latency on an unsaturated suite; at twice it, that the suite
/// stays up, refuses what it cannot take (429 `overloaded` with Retry-After) and keeps the cheap
/// steps fast.
async fn rate_run(ctx: &Arc<Ctx>, rate: f64, seconds: f64) -> Value {
    let over = Arc::new(Ctx {
        http: ctx.http.clone(),
        base: ctx.base.clone(),
        mailbox: ctx.mailbox.clone(),
        recorder: report::Recorder::default(),
        photos: Photos::load(),
        next: AtomicU64::new(ctx.next.load(std::sync::atomic::Ordering::Relaxed) + 1_000),
        token: std::sync::Mutex::new(None),
        registered: std::sync::Mutex::new(Vec::new()),
    });
    let count = ((rate * seconds) as u64).max(30);
    let started = Instant::now();
    let (completed, failed) = open_loop(
        &over,
        rate,
        count,
        Instant::now() + Duration::from_secs(120),
    )
    .await;
    let seconds = started.elapsed().as_secs_f64();
    let (steps, errors) = over.recorder.summary();
    let peak: serde_json::Map<String, Value> = report::processes()
        .into_iter()
        .map(|(name, (_, peak_kib))| (name, json!(peak_kib as f64 / 1024.0)))
        .collect();
    json!({
        "arrivals_per_second": rate,
        "started": count,
        "completed": completed,
        "failed": failed,
        "seconds": seconds,
        "registrations_per_second": completed as f64 / seconds,
        "steps": steps,
        "errors": errors,
        "peak_rss_mib": peak,
    })
}

/// A new applicant every 1/R seconds, whatever the answers, until `count` have started.
async fn open_loop(ctx: &Arc<Ctx>, rate: f64, count: u64, deadline: Instant) -> (u64, u64) {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(0.001)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut running = Vec::new();
    for _ in 0..count {
        tick.tick().await;
        if Instant::now() >= deadline {
            break;
        }
        let ctx = ctx.clone();
        running.push(tokio::spawn(async move {
            let outcome = journey::run(ctx.clone()).await;
            if let Err(kind) = &outcome {
                ctx.recorder.error(kind.clone());
            }
            outcome.is_ok()
        }));
    }
    let mut totals = (0, 0);
    for applicant in running {
        if applicant.await.unwrap_or(false) {
            totals.0 += 1;
        } else {
            totals.1 += 1;
        }
    }
    totals
}

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    let memory_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    json!({
        "cores": std::thread::available_parallelism().map_or(0, usize::from),
        "cpu": cpu,
        "memory_gib": memory_gib,
        "date": chrono::Utc::now().format("%Y-%m-%d").to_string(),
    })
}
