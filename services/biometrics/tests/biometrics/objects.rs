//! The object store against the local stack's Garage: what it holds is ciphertext only.

use examreg_biometrics::{
    envelope::MasterKeys,
    objects::{ObjectError, Objects, S3Config},
};
use examreg_kit::config::Secret;
use examreg_testkit as tk;

const SELFIE: &[u8] = include_bytes!("../fixtures/selfie.jpg");
const MASTER: &str = "dev1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

fn config(endpoint: String) -> S3Config {
    let (id, secret) = tk::s3_credentials();
    S3Config {
        endpoint,
        region: "garage".into(),
        bucket: "examreg-biometrics".into(),
        prefix: tk::unique_prefix("captures").replace(':', "/"),
        access_key_id: id,
        secret_access_key: Secret::new(secret),
    }
}

#[tokio::test]
async fn garage_holds_only_ciphertext_and_gives_it_back() {
    let objects = Objects::new(&config(tk::s3_endpoint()));
    let keys = MasterKeys::parse(MASTER).unwrap();
    let key = objects.new_key();
    assert!(key.starts_with(objects.prefix()));
    let aad = format!("{key}|account|face");
    objects
        .put(&key, keys.seal(SELFIE, aad.as_bytes()))
        .await
        .unwrap();

    let stored = objects.get(&key).await.unwrap();
    assert!(
        image::load_from_memory(&stored).is_err(),
        "the stored object is not an image"
    );
    assert_eq!(keys.open(&stored, aad.as_bytes()).unwrap(), SELFIE);
    let listed = objects.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].0, key);

    objects.delete(&key).await.unwrap();
    assert!(matches!(objects.get(&key).await, Err(ObjectError::Missing)));
    assert!(objects.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_stopped_store_is_reported_unavailable() {
    let relay = tk::Relay::down("127.0.0.1:3900").await;
    let objects = Objects::new(&config(format!("http://{}", relay.addr)));
    let err = objects
        .put(&objects.new_key(), b"sealed".to_vec())
        .await
        .unwrap_err();
    assert!(matches!(err, ObjectError::Unavailable(_)), "{err:?}");
}
