//! Garage as a cluster: three real nodes with replication factor 3 (started by the test, on
//! loopback). A node killed while photos are being stored and read costs no upload and no
//! download; started again it rejoins, and takes its part in the writes once another node is
//! down.

use examreg_biometrics::{
    envelope::MasterKeys,
    objects::{Objects, S3Config},
};
use examreg_kit::config::Secret;
use examreg_testkit::{self as tk, garage::GarageCluster};
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

const SELFIE: &[u8] = include_bytes!("../fixtures/selfie.jpg");
const MASTER: &str = "dev1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

fn config(cluster: &GarageCluster, node: usize, prefix: &str) -> S3Config {
    S3Config {
        endpoint: cluster.s3_endpoint(node),
        region: "garage".into(),
        bucket: GarageCluster::BUCKET.into(),
        prefix: prefix.to_owned(),
        access_key_id: cluster.key.0.clone(),
        secret_access_key: Secret::new(cluster.key.1.clone()),
    }
}

/// Stores one sealed photo and reads it back; the key and any failure.
async fn store_and_read(objects: &Objects, keys: &MasterKeys) -> (String, Result<(), String>) {
    let key = objects.new_key();
    let aad = format!("{key}|account|face");
    let outcome = async {
        objects
            .put(&key, keys.seal(SELFIE, aad.as_bytes()))
            .await
            .map_err(|e| format!("put: {e:?}"))?;
        let stored = objects.get(&key).await.map_err(|e| format!("get: {e:?}"))?;
        let opened = keys
            .open(&stored, aad.as_bytes())
            .map_err(|e| format!("open: {e:?}"))?;
        if opened == SELFIE {
            Ok(())
        } else {
            Err("read back something else".to_owned())
        }
    }
    .await;
    (key, outcome)
}

/// Every key reads back as the photo it was stored as.
async fn all_readable(objects: &Objects, keys: &MasterKeys, stored: &[String]) {
    for key in stored {
        let body = objects
            .get(key)
            .await
            .unwrap_or_else(|e| panic!("{key}: {e:?}"));
        let aad = format!("{key}|account|face");
        assert_eq!(keys.open(&body, aad.as_bytes()).unwrap(), SELFIE, "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_during_uploads_costs_no_upload_or_download_and_rejoins() {
    let mut cluster = GarageCluster::start(3).await;
    let keys = Arc::new(MasterKeys::parse(MASTER).unwrap());
    let prefix = tk::unique_prefix("captures").replace(':', "/");
    let objects = Arc::new(Objects::new(&config(&cluster, 0, &prefix)));

    // Photos stored and read without pause by four applicants at once.
    let running = Arc::new(AtomicBool::new(true));
    let mut writers = Vec::new();
    for _ in 0..4 {
        let (objects, keys, running) = (objects.clone(), keys.clone(), running.clone());
        writers.push(tokio::spawn(async move {
            let mut done = Vec::new();
            while running.load(Ordering::Relaxed) {
                done.push(store_and_read(&objects, &keys).await);
            }
            done
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Node 2 dies in the middle of it; the others go on for a while.
    cluster.kill(2);
    tokio::time::sleep(Duration::from_secs(4)).await;
    running.store(false, Ordering::Relaxed);
    let mut stored = Vec::new();
    for writer in writers {
        for (key, outcome) in writer.await.unwrap() {
            assert_eq!(outcome, Ok(()), "{key}");
            stored.push(key);
        }
    }
    assert!(stored.len() >= 20, "only {} photos stored", stored.len());
    assert_eq!(
        cluster.health(0).await["connectedNodes"],
        2,
        "the node is down"
    );
    // Every photo, those stored before and after the death, reads back.
    all_readable(&objects, &keys, &stored).await;

    // Node 2 comes back on its data and rejoins.
    cluster.start_node(2).await;
    cluster.wait_healthy(3).await;
    // Now node 1 dies: the writes need node 2's copy to make their quorum of two, so they
    // succeed only if node 2 has rejoined; what was stored while node 2 was down reads back
    // from nodes 0 and 2.
    cluster.kill(1);
    for _ in 0..10 {
        let (key, outcome) = store_and_read(&objects, &keys).await;
        assert_eq!(outcome, Ok(()), "{key}");
        stored.push(key);
    }
    all_readable(&objects, &keys, &stored).await;
    // Read through node 2 itself.
    all_readable(&Objects::new(&config(&cluster, 2, &prefix)), &keys, &stored).await;
    cluster.start_node(1).await;
    cluster.wait_healthy(3).await;
}
