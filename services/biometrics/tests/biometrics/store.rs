//! Capture records against a fresh database of the local stack.

use examreg_biometrics::store::{self, NewCapture};
use examreg_domain::{CaptureKind, DocumentType};
use examreg_testkit as tk;
use uuid::Uuid;

async fn pool() -> sqlx::PgPool {
    let pool = sqlx::PgPool::connect(&tk::fresh_database("biometrics").await)
        .await
        .unwrap();
    sqlx::migrate!("./migrations").run(&pool).await.unwrap();
    pool
}

fn capture<'a>(account: Uuid, kind: &'a str, key: &'a str) -> NewCapture<'a> {
    NewCapture {
        id: Uuid::new_v4(),
        account_id: account,
        kind: CaptureKind::parse(kind).unwrap(),
        object_key: key,
        master_key_id: "dev1",
        sha256: &[0; 32],
        size_bytes: 1000,
        width: 640,
        height: 480,
        scores: serde_json::json!({"sharpness": 700.0}),
        document_type: None,
        holder: None,
    }
}

#[tokio::test]
async fn a_retake_leaves_exactly_one_current_capture_and_names_the_object_to_delete() {
    let pool = pool().await;
    let account = Uuid::new_v4();
    assert_eq!(
        store::replace_capture(&pool, &capture(account, "face", "p/one"))
            .await
            .unwrap()
            .unwrap(),
        Vec::<String>::new()
    );
    let replaced = store::replace_capture(&pool, &capture(account, "face", "p/two"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(replaced, ["p/one"]);
    store::replace_capture(&pool, &capture(account, "document_front", "p/three"))
        .await
        .unwrap()
        .unwrap();
    let rows = store::captures_of(&pool, account).await.unwrap();
    let kinds: Vec<&str> = rows.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(kinds, ["document_front", "face"]);
    // The replaced object is referenced by nothing: the sweeper may delete it.
    let keys = ["p/one", "p/two", "p/three", "p/never"].map(String::from);
    let mut orphans = store::unreferenced(&pool, &keys).await.unwrap();
    orphans.sort();
    assert_eq!(orphans, ["p/never", "p/one"]);
    // Another applicant's captures are separate.
    assert!(
        store::captures_of(&pool, Uuid::new_v4())
            .await
            .unwrap()
            .is_empty()
    );
}

/// The document type of an account's capture set.
async fn document_type(pool: &sqlx::PgPool, account: Uuid) -> &'static str {
    store::capture_set(pool, account)
        .await
        .unwrap()
        .document_type
        .as_str()
}

#[tokio::test]
async fn switching_to_a_passport_drops_the_back_of_the_id_card_in_the_same_transaction() {
    let pool = pool().await;
    let account = Uuid::new_v4();
    store::replace_capture(&pool, &capture(account, "document_back", "p/back"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(document_type(&pool, account).await, "id_card");
    let front = NewCapture {
        document_type: Some(DocumentType::Passport),
        ..capture(account, "document_front", "p/front")
    };
    assert_eq!(
        store::replace_capture(&pool, &front)
            .await
            .unwrap()
            .unwrap(),
        ["p/back"]
    );
    assert_eq!(document_type(&pool, account).await, "passport");
    let kinds: Vec<&str> = store::captures_of(&pool, account)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.kind.as_str())
        .collect();
    assert_eq!(kinds, ["document_front"]);
}
