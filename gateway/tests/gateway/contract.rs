//! The API keeps to its document: schemathesis (from PyPI, pinned in deploy/requirements.txt)
//! generates requests from the generated OpenAPI document, valid and invalid, sends them to
//! the whole suite, and checks every answer against the document: no 5xx, only documented
//! statuses, bodies and headers of the documented shape, valid data accepted and invalid data
//! refused. What the document cannot say is in `schemathesis.toml`, with its reasons.

use reqwest::StatusCode;
use serde_json::json;
use std::path::Path;

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_the_api_as_documented() {
    let suite = crate::common::suite_with(crate::common::Options {
        // Thousands of requests from one address: the budget is not what is tested here.
        rate_limit: 1_000_000,
        ..Default::default()
    })
    .await;
    let applicant = suite.logged_in().await;
    let sacrifice = suite.logged_in().await;
    let operator = suite.eraser();
    // Live ids where the document can only say "an id": a registration and a recovery under
    // way and a hand-off link, so that those operations are tried past "not live".
    let registration = suite.start("KZ").await;
    let (status, recovery) = suite
        .post("/v1/recovery", json!({"login": crate::common::valid_iin()}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{recovery}");
    let (status, link) = suite
        .me(reqwest::Method::POST, "/v1/me/handoff", &applicant, None)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{link}");
    let handoff = link["url"]
        .as_str()
        .unwrap()
        .rsplit("#handoff=")
        .next()
        .unwrap();
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemathesis.toml");
    // Its own working directory, so nothing it writes lands in the repository.
    let scratch = std::env::temp_dir().join(format!("examreg-schemathesis-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    // The document is read from the applicants' port; each port's operations are run
    // against the port that serves them (the tags say which).
    let runs = [
        (
            vec!["--exclude-tag", "admin", "--exclude-tag", "ops"],
            suite.base.clone(),
        ),
        (vec!["--include-tag", "admin"], suite.admin_base.clone()),
        (vec!["--include-tag", "ops"], suite.ops_base.clone()),
    ];
    let mut outputs = Vec::new();
    for (filter, base) in runs {
        let mut st = std::process::Command::new("st");
        st.current_dir(&scratch)
            .env("EXAMREG_ST_APPLICANT", &applicant)
            .env("EXAMREG_ST_SACRIFICE", &sacrifice)
            .env("EXAMREG_ST_OPERATOR", &operator)
            .env("EXAMREG_ST_REGISTRATION", &registration)
            .env("EXAMREG_ST_RECOVERY", recovery["flow_id"].as_str().unwrap())
            .env("EXAMREG_ST_HANDOFF", handoff)
            .env("NO_COLOR", "1")
            .arg("--config-file")
            .arg(&config)
            .args([
                "run",
                "--checks",
                "all",
                "--phases",
                "examples,coverage,fuzzing",
            ])
            .args(filter)
            .args(["--url", &base])
            .arg(format!("{}/openapi.json", suite.base));
        // The suite serves on this runtime while schemathesis runs.
        outputs.push(
            tokio::task::spawn_blocking(move || st.output())
                .await
                .unwrap()
                .expect("schemathesis (`st`) on PATH: deploy/test installs it"),
        );
    }
    let _ = std::fs::remove_dir_all(&scratch);
    for output in outputs {
        let report = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "schemathesis found the API and its document apart:\n{report}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        println!("{report}");
        // It ran the operations, not an empty document.
        assert!(report.contains("API Operations"), "{report}");
    }
}
