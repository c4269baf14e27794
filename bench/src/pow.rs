//! `examreg-bench --pow`: how long the reference page's Web Worker (`gateway/web/pow.js`, the
//! file itself) takes to solve the gateway's proof-of-work challenges in this machine's
//! Chromium, at each `maxnumber`, a new worker per solve as the page starts one. No suite is
//! needed: a loopback server of its own serves a blank page and the worker.

use examreg_testkit::browser::{Browser, Options};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WORKER: &str = include_str!("../../gateway/web/pow.js");

/// Challenges made in the page (a salt and a secret number, hashed with WebCrypto), each
/// solved by a new worker; `window.powResult` is every level's solves: `{ms, tried}`.
const MEASURE: &str = r"
const [levels, reps] = arguments;
window.powResult = null;
(async () => {
  const hex = (b) => Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, '0')).join('');
  const out = [];
  for (const max of levels) {
    const solves = [];
    for (let i = 0; i < reps; i++) {
      const salt = crypto.randomUUID().replaceAll('-', '') + '?expires=0&maxnumber=' + max;
      const number = Math.floor(Math.random() * (max + 1));
      const challenge = hex(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(salt + number)));
      const started = performance.now();
      const found = await new Promise((resolve) => {
        const worker = new Worker('/pow.js');
        worker.onmessage = (event) => { worker.terminate(); resolve(event.data.number); };
        worker.postMessage({ algorithm: 'SHA-256', challenge, maxnumber: max, salt });
      });
      if (found !== number) throw new Error('the worker found ' + found + ', not ' + number);
      solves.push({ ms: performance.now() - started, tried: number + 1 });
    }
    out.push({ max, solves });
  }
  window.powResult = out;
})().catch((e) => { window.powResult = { error: String(e) }; });
return true;
";

/// Serves `/` (a blank page) and `/pow.js` on a loopback port until dropped; its address.
async fn serve() -> anyhow::Result<(String, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = vec![0_u8; 4096];
                let Ok(n) = tcp.read(&mut head).await else {
                    return;
                };
                let request = String::from_utf8_lossy(&head[..n]);
                let (kind, body) = if request.starts_with("GET /pow.js") {
                    ("text/javascript", WORKER)
                } else {
                    ("text/html", "<!doctype html><title>pow</title>")
                };
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tcp.write_all(answer.as_bytes()).await;
            });
        }
    });
    Ok((format!("http://{addr}"), task))
}

/// Solves `reps` challenges at each of `levels` and prints, per level, the mean and the
/// slowest solve and what a thousand digests cost.
pub(crate) async fn run(levels: &[u64], reps: usize) -> anyhow::Result<Value> {
    let (base, server) = serve().await?;
    let browser = Browser::start(Options {
        test: "bench_pow",
        size: (800, 600),
        phone: false,
        camera: None,
        lang: "ru",
    })
    .await;
    browser.goto(&format!("{base}/")).await;
    browser.execute(MEASURE, json!([levels, reps])).await;
    let result = loop {
        let result = browser.execute("return window.powResult", json!([])).await;
        if !result.is_null() {
            break result;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    browser.close().await;
    server.abort();
    anyhow::ensure!(result.get("error").is_none(), "{result}");
    let mut table = Vec::new();
    println!("| maxnumber | mean solve | slowest | per 1000 digests |");
    println!("|---:|---:|---:|---:|");
    for level in result.as_array().into_iter().flatten() {
        let solves = level["solves"].as_array().cloned().unwrap_or_default();
        let ms: Vec<f64> = solves.iter().filter_map(|s| s["ms"].as_f64()).collect();
        let tried: f64 = solves.iter().filter_map(|s| s["tried"].as_f64()).sum();
        let mean = ms.iter().sum::<f64>() / ms.len().max(1) as f64;
        let slowest = ms.iter().copied().fold(0.0, f64::max);
        let per_thousand = ms.iter().sum::<f64>() / tried.max(1.0) * 1000.0;
        println!(
            "| {} | {mean:.0} ms | {slowest:.0} ms | {per_thousand:.1} ms |",
            level["max"]
        );
        table.push(
            json!({"maxnumber": level["max"], "mean_ms": mean, "slowest_ms": slowest,
                          "ms_per_1000_digests": per_thousand}),
        );
    }
    Ok(Value::Array(table))
}
