//! Latencies per step, errors by kind, the suite's processes' CPU and memory, and the report
//! as JSON and markdown.

use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

#[derive(Clone, Default)]
pub(crate) struct Recorder {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    steps: BTreeMap<&'static str, Histogram<u64>>,
    errors: BTreeMap<String, u64>,
}

impl Recorder {
    pub(crate) fn step(&self, name: &'static str, elapsed: Duration) {
        let mut inner = self.inner.lock().expect("recorder lock");
        let histogram = inner.steps.entry(name).or_insert_with(|| {
            Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
        });
        let micros = u64::try_from(elapsed.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let _ = histogram.record(micros.min(600_000_000));
    }

    pub(crate) fn error(&self, kind: String) {
        *self
            .inner
            .lock()
            .expect("recorder lock")
            .errors
            .entry(kind)
            .or_default() += 1;
    }

    /// Per step: count and p50/p90/p99/max in milliseconds; and the errors.
    pub(crate) fn summary(&self) -> (Value, Value) {
        let inner = self.inner.lock().expect("recorder lock");
        let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        let steps: serde_json::Map<String, Value> = inner
            .steps
            .iter()
            .map(|(name, h)| {
                (
                    (*name).to_owned(),
                    json!({
                        "count": h.len(),
                        "p50_ms": ms(h, 0.5),
                        "p90_ms": ms(h, 0.9),
                        "p99_ms": ms(h, 0.99),
                        "max_ms": h.max() as f64 / 1000.0,
                    }),
                )
            })
            .collect();
        (Value::Object(steps), json!(inner.errors))
    }
}

/// CPU seconds the whole machine has spent busy so far (every process and the kernel).
pub(crate) fn machine_busy() -> f64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|stat| {
            let fields: Vec<u64> = stat
                .lines()
                .next()?
                .split_whitespace()
                .skip(1)
                .filter_map(|v| v.parse().ok())
                .collect();
            // user nice system idle iowait irq softirq steal: all but idle and iowait.
            let busy = fields.iter().take(8).enumerate();
            Some(
                busy.filter(|(i, _)| *i != 3 && *i != 4)
                    .map(|(_, v)| v)
                    .sum::<u64>(),
            )
        })
        .map_or(0.0, |ticks| ticks as f64 / 100.0)
}

/// A `/proc/<pid>/status` memory line in KiB.
fn status_kib(dir: &std::path::Path, key: &str) -> u64 {
    std::fs::read_to_string(dir.join("status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .unwrap_or(0)
}

/// Resident memory now of each running `examreg-*` service, in MiB.
pub(crate) fn rss_now() -> BTreeMap<String, f64> {
    suite_processes()
        .into_iter()
        .map(|(name, dir)| (name, status_kib(&dir, "VmRSS:") as f64 / 1024.0))
        .fold(BTreeMap::new(), |mut all, (name, mib)| {
            *all.entry(name).or_insert(0.0) += mib;
            all
        })
}

/// The `/proc` directories of the running suite's services, by service name (and replica).
fn suite_processes() -> Vec<(String, std::path::PathBuf)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let dir = entry.path();
            // argv[0]'s file name: `comm` is cut at 15 characters.
            let cmdline = std::fs::read(dir.join("cmdline")).ok()?;
            let program = cmdline.split(|b| *b == 0).next().unwrap_or_default();
            let program = String::from_utf8_lossy(program);
            let name = program.rsplit('/').next().unwrap_or_default();
            if !name.starts_with("examreg-") || name == "examreg-bench" {
                return None;
            }
            // A second replica (deploy/up --replicas) is reported on its own: `identity#2`.
            let replica = std::fs::read(dir.join("environ")).ok().and_then(|environ| {
                environ
                    .split(|b| *b == 0)
                    .find_map(|var| var.strip_prefix(b"EXAMREG_REPLICA="))
                    .map(|k| String::from_utf8_lossy(k).into_owned())
            });
            let service = name.trim_start_matches("examreg-");
            Some((
                replica.map_or_else(|| service.to_owned(), |k| format!("{service}#{k}")),
                dir,
            ))
        })
        .collect()
}

/// CPU seconds used so far and peak resident memory of each running `examreg-*` process.
pub(crate) fn processes() -> BTreeMap<String, (f64, u64)> {
    let mut found = BTreeMap::new();
    for (name, dir) in suite_processes() {
        let cpu = std::fs::read_to_string(dir.join("stat"))
            .ok()
            .and_then(|stat| {
                // Fields after the parenthesized command: utime and stime are the 12th and
                // 13th of them, in clock ticks (100 per second on Linux).
                let rest = stat.rsplit_once(')')?.1;
                let fields: Vec<&str> = rest.split_whitespace().collect();
                let ticks: u64 =
                    fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
                Some(ticks as f64 / 100.0)
            })
            .unwrap_or(0.0);
        let peak_kib = status_kib(&dir, "VmHWM:");
        let slot = found.entry(name).or_insert((0.0, 0));
        slot.0 += cpu;
        slot.1 = slot.1.max(peak_kib);
    }
    found
}

/// The markdown table of a report.
pub(crate) fn markdown(report: &Value) -> String {
    let mut out = String::new();
    let f = |v: &Value| {
        v.as_f64()
            .map_or_else(|| "-".to_owned(), |x| format!("{x:.2}"))
    };
    out.push_str(&format!(
        "**{} registrations/s** ({} completed, {} failed in {} s, {}); bound {} registrations/s; \
         achieved/bound **{}**\n\n",
        f(&report["registrations_per_second"]),
        report["completed"],
        report["failed"],
        f(&report["seconds"]),
        report["mode"].as_str().unwrap_or(""),
        f(&report["bound"]["registrations_per_second"]),
        f(&report["achieved_over_bound"]),
    ));
    out.push_str(&format!(
        "Bound: argon2id {} hashes/s on {} cores ({} ms each); photo checks {} / {} / {} ms \
         (face, front, back); the zone's reading {} ms; {} CPU-s per registration. The oval's \
         preview frame {} ms to judge, {} ms an applicant (kept off the bound: shed first).\n\n",
        f(&report["bound"]["argon2_hashes_per_second"]),
        report["machine"]["cores"],
        f(&report["bound"]["hash_ms"]),
        f(&report["bound"]["photo_ms"]["face"]),
        f(&report["bound"]["photo_ms"]["document_front"]),
        f(&report["bound"]["photo_ms"]["document_back"]),
        f(&report["bound"]["mrz_ms"]),
        f(&report["bound"]["cpu_seconds_per_registration"]),
        f(&report["bound"]["frame_ms"]),
        f(&report["bound"]["frame_ms_per_applicant"]),
    ));
    out.push_str(&format!(
        "Document checks: {} finished in the run, {} a second drained; {} CPU-ms a reading in \
         the service under the load.\n\n",
        report["document_checks"]["finished"],
        f(&report["document_checks"]["drained_per_second"]),
        f(&report["document_checks"]["cpu_ms_per_reading"]),
    ));
    if report["hop"]["gateway_hop_p50_ms"].is_number() {
        out.push_str(&format!(
            "Hop: a bare tonic call {} ms at p50; ListRegions straight to profile {} ms, \
             through the gateway {} ms: the gateway hop adds {} ms, {}× the bare call.\n\n",
            f(&report["hop"]["bare_tonic_p50_ms"]),
            f(&report["hop"]["direct_list_regions_p50_ms"]),
            f(&report["hop"]["gateway_list_regions_p50_ms"]),
            f(&report["hop"]["gateway_hop_p50_ms"]),
            f(&report["hop"]["hop_over_bare_tonic"]),
        ));
    }
    out.push_str(
        "| step | count | p50 ms | p90 ms | p99 ms | max ms |\n|---|---|---|---|---|---|\n",
    );
    if let Some(steps) = report["steps"].as_object() {
        for (name, s) in steps {
            out.push_str(&format!(
                "| {name} | {} | {} | {} | {} | {} |\n",
                s["count"],
                f(&s["p50_ms"]),
                f(&s["p90_ms"]),
                f(&s["p99_ms"]),
                f(&s["max_ms"])
            ));
        }
    }
    if let Some(processes) = report["processes"].as_object()
        && !processes.is_empty()
    {
        out.push_str("\n| process | CPU-s per registration | peak RSS MiB |\n|---|---|---|\n");
        for (name, p) in processes {
            out.push_str(&format!(
                "| {name} | {} | {} |\n",
                f(&p["cpu_seconds_per_registration"]),
                f(&p["peak_rss_mib"])
            ));
        }
    }
    if report["overhead"].is_object() {
        out.push_str(&overhead_markdown(report));
    }
    if let Some(idle) = report["idle_rss_mib"].as_object() {
        let list: Vec<String> = idle.iter().map(|(k, v)| format!("{k} {}", f(v))).collect();
        out.push_str(&format!(
            "\nResident memory idle, before the load (MiB): {}\n",
            list.join(", ")
        ));
    }
    let cpu = &report["cpu"];
    if cpu.is_object() {
        out.push_str(&format!(
            "\nCPU in the main run: the services {} CPU-s per registration (the unavoidable part {}), \
             everything else on the machine (Postgres, Redis, Garage, the mail catcher, the load \
             generator, the kernel) {}. On the {} cores left to the services the bound is {} \
             registrations/s: achieved/that **{}**.\n",
            f(&cpu["services_cpu_seconds_per_registration"]),
            f(&report["bound"]["cpu_seconds_per_registration"]),
            f(&cpu["others_cpu_seconds_per_registration"]),
            f(&cpu["cores_left_to_services"]),
            f(&cpu["bound_on_services_cores"]),
            f(&cpu["achieved_over_services_bound"]),
        ));
    }
    let half = &report["half_load"];
    if half.is_object() {
        out.push_str(&format!(
            "\nHalf load ({} arrivals/s): {} of {} completed; send-code (`email`) p50/p99 {}/{} ms, \
             verify-code p50/p99 {}/{} ms, start {}/{} ms.\n",
            f(&half["arrivals_per_second"]),
            half["completed"],
            half["started"],
            f(&half["steps"]["email"]["p50_ms"]),
            f(&half["steps"]["email"]["p99_ms"]),
            f(&half["steps"]["verify"]["p50_ms"]),
            f(&half["steps"]["verify"]["p99_ms"]),
            f(&half["steps"]["start"]["p50_ms"]),
            f(&half["steps"]["start"]["p99_ms"]),
        ));
    }
    let logins = &report["logins"];
    if logins.is_object() && logins["logins"].is_number() {
        out.push_str(&format!(
            "\nLogin only ({} at once, {} s): **{} logins/s, {} per core**; p50/p99 {}/{} ms; \
             identity {} CPU-ms per login, gateway {}, everything else on the machine {}; \
             {} of {} cores busy.\n",
            logins["concurrency"],
            f(&logins["seconds"]),
            f(&logins["logins_per_second"]),
            f(&logins["logins_per_second_per_core"]),
            f(&logins["latency"]["p50_ms"]),
            f(&logins["latency"]["p99_ms"]),
            f(&logins["identity_cpu_ms_per_login"]),
            f(&logins["gateway_cpu_ms_per_login"]),
            f(&logins["others_cpu_ms_per_login"]),
            f(&logins["cores_busy"]),
            report["machine"]["cores"],
        ));
        if let Some(errors) = logins["errors"].as_object()
            && !errors.is_empty()
        {
            let list: Vec<String> = errors.iter().map(|(k, v)| format!("`{k}` × {v}")).collect();
            out.push_str(&format!("Login refusals: {}\n", list.join(", ")));
        }
    }
    let over = &report["overload"];
    if over.is_object() {
        out.push_str(&format!(
            "\nOverload ({} arrivals/s, twice the rate above): {} of {} completed ({} \
             registrations/s), {} turned away; the cheap steps at p50/p99: start {}/{} ms, \
             identifier {}/{} ms, email {}/{} ms, verify {}/{} ms.\n",
            f(&over["arrivals_per_second"]),
            over["completed"],
            over["started"],
            f(&over["registrations_per_second"]),
            over["failed"],
            f(&over["steps"]["start"]["p50_ms"]),
            f(&over["steps"]["start"]["p99_ms"]),
            f(&over["steps"]["identifier"]["p50_ms"]),
            f(&over["steps"]["identifier"]["p99_ms"]),
            f(&over["steps"]["email"]["p50_ms"]),
            f(&over["steps"]["email"]["p99_ms"]),
            f(&over["steps"]["verify"]["p50_ms"]),
            f(&over["steps"]["verify"]["p99_ms"]),
        ));
        if let Some(errors) = over["errors"].as_object() {
            let list: Vec<String> = errors.iter().map(|(k, v)| format!("`{k}` × {v}")).collect();
            out.push_str(&format!("Refusals under overload: {}\n", list.join(", ")));
        }
        if let Some(peak) = over["peak_rss_mib"].as_object() {
            let list: Vec<String> = peak.iter().map(|(k, v)| format!("{k} {}", f(v))).collect();
            out.push_str(&format!("Peak RSS after it (MiB): {}\n", list.join(", ")));
        }
    }
    if let Some(errors) = report["errors"].as_object()
        && !errors.is_empty()
    {
        out.push_str("\nErrors: ");
        let list: Vec<String> = errors.iter().map(|(k, v)| format!("`{k}` × {v}")).collect();
        out.push_str(&list.join(", "));
        out.push('\n');
    }
    out
}

/// A latency plot: per step, a bar to p50, a lighter one to p90 and a tick at p99, on a
/// logarithmic millisecond axis (steps range from a millisecond to seconds).
pub(crate) fn svg(report: &Value) -> String {
    let Some(steps) = report["steps"].as_object() else {
        return String::new();
    };
    let (left, width, row) = (130.0, 560.0, 22.0);
    let height = 60.0 + row * steps.len() as f64;
    let x = |ms: f64| left + width * ((ms.max(0.1)).log10() + 1.0) / 5.0; // 0.1 ms … 10 s
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"720\" height=\"{height}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"18\" font-weight=\"bold\">Latency per step (ms, log scale): p50 dark, p90 light, p99 tick</text>\n"
    );
    for (i, tick) in [0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0].iter().enumerate() {
        let tx = x(*tick);
        let label = ["0.1", "1", "10", "100", "1000", "10000"][i];
        out.push_str(&format!(
            "<line x1=\"{tx:.1}\" y1=\"28\" x2=\"{tx:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{tx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#666\">{label}</text>\n",
            height - 22.0,
            height - 8.0
        ));
    }
    for (i, (name, s)) in steps.iter().enumerate() {
        let y = 34.0 + row * i as f64;
        let get = |k: &str| s[k].as_f64().unwrap_or(0.0);
        out.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{name}</text>\
             <rect x=\"{left}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"14\" fill=\"#9ecae1\"/>\
             <rect x=\"{left}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"14\" fill=\"#3182bd\"/>\
             <line x1=\"{p99:.1}\" y1=\"{y:.1}\" x2=\"{p99:.1}\" y2=\"{:.1}\" stroke=\"#de2d26\" stroke-width=\"2\"/>\n",
            left - 8.0,
            y + 11.0,
            (x(get("p90_ms")) - left).max(1.0),
            (x(get("p50_ms")) - left).max(1.0),
            y + 14.0,
            p99 = x(get("p99_ms")),
        ));
    }
    out.push_str("</svg>\n");
    out
}

/// Each service's CPU per registration in the main run beside the work it cannot avoid (two
/// argon2id hashes in identity; three photo checks and the zone's readings in biometrics),
/// replicas summed, and issue 19's goals for what is left (CPU-ms per registration).
const OVERHEAD_GOALS_MS: [(&str, f64); 5] = [
    ("biometrics", 6.0),
    ("gateway", 5.0),
    ("identity", 5.0),
    ("profile", 3.0),
    ("verification", f64::INFINITY),
];
/// The goal for all of the services' overhead together.
const OVERHEAD_GOAL_MS: f64 = 20.0;

pub(crate) fn overhead(report: &Value) -> Value {
    let bound = &report["bound"];
    let get = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let unavoidable_ms = |service: &str| match service {
        "identity" => 2.0 * get(&bound["hash_ms"]),
        // The zone's reading as the service measured it under the load (its own thread's
        // CPU; dearer than in the quiet bound, and no overhead of ours), else the bound's.
        "biometrics" => {
            let checks = &report["document_checks"];
            let reading = get(&checks["cpu_ms_per_reading"]) * get(&checks["finished"])
                / get(&report["completed"]);
            get(&bound["photo_ms"]["face"])
                + get(&bound["photo_ms"]["document_front"])
                + get(&bound["photo_ms"]["document_back"])
                + if reading.is_finite() {
                    reading
                } else {
                    get(&bound["mrz_ms"])
                }
        }
        _ => 0.0,
    };
    let mut rows = serde_json::Map::new();
    let mut total = 0.0;
    for (service, goal) in OVERHEAD_GOALS_MS {
        let cpu_ms: f64 = report["processes"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(name, _)| name.split('#').next() == Some(service))
            .map(|(_, p)| get(&p["cpu_seconds_per_registration"]) * 1000.0)
            .sum();
        let unavoidable = unavoidable_ms(service);
        let overhead = cpu_ms - unavoidable;
        total += overhead;
        // The calls it answered (an older report has none).
        let calls: f64 = report["calls"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(name, _)| name.split('#').next() == Some(service))
            .map(|(_, c)| get(&c["per_registration"]))
            .sum();
        let calls = (calls > 0.0).then_some(calls);
        rows.insert(
            service.to_owned(),
            json!({
                "cpu_ms": cpu_ms,
                "unavoidable_ms": unavoidable,
                "overhead_ms": overhead,
                "goal_ms": goal.is_finite().then_some(goal),
                "calls_per_registration": calls,
                "overhead_us_per_call": calls.map(|c| overhead * 1000.0 / c),
            }),
        );
    }
    json!({"services": rows, "total_overhead_ms": total, "goal_ms": OVERHEAD_GOAL_MS})
}

/// Issue 19's goals, each with its figure from this run: (what, figure, goal, met).
pub(crate) fn goals(report: &Value) -> Vec<(String, f64, String, bool)> {
    let get = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let mut out = Vec::new();
    let total = get(&report["overhead"]["total_overhead_ms"]);
    out.push((
        "services' CPU beyond the unavoidable work, ms per registration".to_owned(),
        total,
        format!("≤ {OVERHEAD_GOAL_MS}"),
        total <= OVERHEAD_GOAL_MS,
    ));
    for (service, goal) in OVERHEAD_GOALS_MS.iter().filter(|(_, g)| g.is_finite()) {
        let figure = get(&report["overhead"]["services"][*service]["overhead_ms"]);
        out.push((
            format!("{service}'s overhead, ms per registration"),
            figure,
            format!("≤ {goal}"),
            figure <= *goal,
        ));
    }
    let ratio = get(&report["cpu"]["achieved_over_services_bound"]);
    out.push((
        "achieved over the bound on the cores left to the services".to_owned(),
        ratio,
        "≥ 0.8".to_owned(),
        ratio >= 0.8,
    ));
    let hop = get(&report["hop"]["gateway_hop_p50_ms"]);
    out.push((
        "what the gateway adds to a call at p50, ms".to_owned(),
        hop,
        "≤ 0.25".to_owned(),
        hop <= 0.25,
    ));
    for (step, what) in [("email", "send-code"), ("verify", "verify-code")] {
        let p99 = get(&report["half_load"]["steps"][step]["p99_ms"]);
        out.push((
            format!("{what} p99 at half load, ms"),
            p99,
            "≤ 5".to_owned(),
            p99 <= 5.0,
        ));
    }
    let logins = get(&report["logins"]["logins_per_second"])
        / get(&report["bound"]["argon2_hashes_per_second"]);
    out.push((
        "login-only over the logins the hash allows".to_owned(),
        logins,
        "≥ 0.9".to_owned(),
        logins >= 0.9,
    ));
    out
}

/// The overhead table and the goals' standing, in markdown.
fn overhead_markdown(report: &Value) -> String {
    let f = |v: &Value| {
        v.as_f64()
            .map_or_else(|| "-".to_owned(), |x| format!("{x:.1}"))
    };
    let mut out = String::from(
        "\n| process | CPU-ms per registration | of which unavoidable | overhead | goal | calls \
         answered per registration | overhead µs per call |\n\
         |---|---|---|---|---|---|---|\n",
    );
    if let Some(rows) = report["overhead"]["services"].as_object() {
        for (service, row) in rows {
            out.push_str(&format!(
                "| {service} | {} | {} | {} | {} | {} | {} |\n",
                f(&row["cpu_ms"]),
                f(&row["unavoidable_ms"]),
                f(&row["overhead_ms"]),
                row["goal_ms"]
                    .as_f64()
                    .map_or_else(|| "–".to_owned(), |g| format!("≤ {g}")),
                f(&row["calls_per_registration"]),
                row["overhead_us_per_call"]
                    .as_f64()
                    .map_or_else(|| "-".to_owned(), |x| format!("{x:.0}")),
            ));
        }
    }
    if let Some(processes) = report["calls"].as_object() {
        out.push_str("\nCalls answered per registration, by method (0.5 or more):\n\n");
        for (process, calls) in processes {
            let mut methods: Vec<(&String, f64)> = calls["methods"]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(m, n)| Some((m, n.as_f64()?)))
                .filter(|(_, n)| *n >= 0.5)
                .collect();
            methods.sort_by(|a, b| b.1.total_cmp(&a.1));
            let listed: Vec<String> = methods
                .iter()
                .map(|(m, n)| format!("`{m}` {n:.1}"))
                .collect();
            out.push_str(&format!(
                "- {process} ({}): {}\n",
                f(&calls["per_registration"]),
                listed.join(", ")
            ));
        }
    }
    out.push_str("\n| goal | this run | wanted | met |\n|---|---|---|---|\n");
    for (what, figure, wanted, met) in goals(report) {
        out.push_str(&format!(
            "| {what} | {figure:.2} | {wanted} | {} |\n",
            if met { "yes" } else { "no" }
        ));
    }
    out
}
