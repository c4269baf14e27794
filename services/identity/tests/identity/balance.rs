//! Calls spread across identity's replicas: three replicas on loopback behind one name (the
//! client's resolver answers with their addresses, as a headless Service's DNS does), each
//! behind a relay that counts the bytes its callers sent.

use examreg_kit::channel::balance::{Resolve, Timing};
use examreg_proto::identity::v1::{self as pb, identity_service_client::IdentityServiceClient};
use examreg_testkit as tk;
use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};
use tonic::transport::Channel;

/// A resolver whose answer the test sets.
fn resolver(addrs: &Arc<Mutex<Vec<SocketAddr>>>) -> Resolve {
    let addrs = addrs.clone();
    Arc::new(move |host: String, port: u16| {
        let answer = addrs.lock().unwrap().clone();
        Box::pin(async move {
            assert_eq!((host.as_str(), port), ("identity", 50051));
            Ok(answer)
        })
    })
}

/// `n` calls, `concurrency` at a time, with `token`; how many failed.
async fn calls(
    token: &str,
    client: &IdentityServiceClient<Channel>,
    n: usize,
    concurrency: usize,
) -> usize {
    let request = || {
        examreg_kit::auth::with_bearer(
            pb::GetAccountRequest {
                account_id: uuid::Uuid::now_v7().to_string(),
                purpose: "balance test".into(),
            },
            token,
        )
        .unwrap()
    };
    let mut failed = 0;
    let mut left = n;
    while left > 0 {
        let batch = left.min(concurrency);
        left -= batch;
        let answers = futures::future::join_all((0..batch).map(|_| {
            let mut client = client.clone();
            let request = request();
            async move { client.get_account(request).await }
        }))
        .await;
        // A call that reached a replica is answered NOT_FOUND (no such account).
        failed += answers
            .iter()
            .filter(|a| !matches!(a, Err(s) if s.code() == tonic::Code::NotFound))
            .count();
    }
    failed
}

/// Calls, five at a time, for `how_long`, in the background; how many failed.
fn load(
    client: &IdentityServiceClient<Channel>,
    token: &str,
    how_long: Duration,
) -> tokio::task::JoinHandle<usize> {
    let client = client.clone();
    let token = token.to_owned();
    tokio::spawn(async move {
        let until = tokio::time::Instant::now() + how_long;
        let mut failed = 0;
        while tokio::time::Instant::now() < until {
            failed += calls(&token, &client, 20, 5).await;
        }
        failed
    })
}

/// Bytes each relay took since `before`.
fn taken(relays: &[tk::Relay], before: &[u64]) -> Vec<u64> {
    relays
        .iter()
        .zip(before)
        .map(|(r, b)| r.bytes_in() - b)
        .collect()
}

#[tokio::test]
async fn calls_spread_over_the_replicas_a_new_one_takes_calls_and_a_removed_one_costs_none() {
    let first = crate::common::spawn().await;
    let token = tk::service_token(&first.key, "gateway", &["accounts:read"]);
    let token = token.as_str();
    let mut replicas = vec![first.replica().await, first.replica().await];
    let mut relays = Vec::new();
    for app in std::iter::once(&first).chain(&replicas) {
        let mut relay = tk::Relay::down(&app.addr().to_string()).await;
        relay.up().await;
        relays.push(relay);
    }
    let addrs = Arc::new(Mutex::new(
        relays.iter().map(|r| r.addr).collect::<Vec<_>>(),
    ));
    let timing = Timing {
        resolve_every: Duration::from_millis(200),
        probe_every: Duration::from_millis(200),
        probe_timeout: Duration::from_millis(500),
    };
    let client = IdentityServiceClient::new(
        // The name the local stack's certificate carries for identity.
        examreg_kit::channel::balanced(
            "https://identity:50051",
            &tk::tls(),
            resolver(&addrs),
            timing,
        )
        .unwrap(),
    );

    // Spread: 900 calls, 10 at a time, within ±20 % of an even share each.
    assert_eq!(calls(token, &client, 30, 10).await, 0);
    let before: Vec<u64> = relays.iter().map(tk::Relay::bytes_in).collect();
    assert_eq!(calls(token, &client, 900, 10).await, 0);
    let shares = taken(&relays, &before);
    let mean = shares.iter().sum::<u64>() as f64 / 3.0;
    for share in &shares {
        assert!(
            (*share as f64 - mean).abs() <= mean * 0.2,
            "uneven: {shares:?}"
        );
    }

    // A fourth replica joins under load: within seconds it takes its share.
    let fourth = first.replica().await;
    let mut relay = tk::Relay::down(&fourth.addr().to_string()).await;
    relay.up().await;
    addrs.lock().unwrap().push(relay.addr);
    relays.push(relay);
    replicas.push(fourth);
    let joined = tokio::time::Instant::now();
    let before: Vec<u64> = relays.iter().map(tk::Relay::bytes_in).collect();
    loop {
        assert_eq!(calls(token, &client, 40, 10).await, 0);
        let shares = taken(&relays, &before);
        let total: u64 = shares.iter().sum();
        if shares[3] * 10 >= total {
            break;
        }
        assert!(
            joined.elapsed() < Duration::from_secs(10),
            "the new replica takes no calls: {shares:?}"
        );
    }

    // The second replica is removed from the name, then stops, while calls go on: none fails.
    let leaving = load(&client, token, Duration::from_secs(2));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let gone = relays[1].addr;
    addrs.lock().unwrap().retain(|a| *a != gone);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let removed = replicas.remove(0);
    drop(removed);
    assert_eq!(
        leaving.await.unwrap(),
        0,
        "a call failed while a replica left"
    );
    let before = relays[1].bytes_in();
    assert_eq!(calls(token, &client, 100, 10).await, 0);
    assert_eq!(
        relays[1].bytes_in(),
        before,
        "the removed replica still takes calls"
    );

    // A replica that dies leaves the set once its probe fails, and comes back when it serves.
    relays[2].stop().await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(calls(token, &client, 200, 10).await, 0);
    relays[2].up().await;
    let back = tokio::time::Instant::now();
    let before = relays[2].bytes_in();
    loop {
        assert_eq!(calls(token, &client, 40, 10).await, 0);
        if relays[2].bytes_in() > before + 2_000 {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "the revived replica takes no calls"
        );
    }

    // A rollout: a replica told to stop while its name still resolves (the DNS answer lags a
    // pod's end). It answers NOT_SERVING and goes on serving a moment, the callers take it
    // out, and only then does it close: no call fails.
    let rolling = load(
        &client,
        token,
        examreg_kit::server::LINGER + Duration::from_secs(2),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopping = replicas.remove(1);
    drop(stopping._stop);
    let stopped = tokio::spawn(stopping.serving);
    assert_eq!(
        rolling.await.unwrap(),
        0,
        "a call failed while a replica stopped"
    );
    stopped.await.unwrap().unwrap().unwrap();
}
