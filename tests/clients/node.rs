//! A Node caller (`tests/node/capture_client.mjs`): @grpc/grpc-js with the API loaded from
//! `proto/` by @grpc/proto-loader, pinned by `tests/node/package-lock.json` (`scripts/test`
//! runs `npm ci`). It captures, reads back, pages, watches and resumes, and reads the
//! `google.rpc.BadRequest` of a bad request from `grpc-status-details-bin`.

use std::path::Path;
use std::process::Command;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_grpc_js_client_captures_pages_watches_and_reads_field_violations() -> TestResult {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if !root.join("tests/node/node_modules/@grpc/grpc-js").exists() {
        return Err(
            "tests/node/node_modules is missing: run `npm ci` in tests/node (scripts/test does)"
                .into(),
        );
    }
    let app = TestApp::spawn(Db::Sqlite).await?;
    let authorization = app.authorize("USD", "100.00", "APPROVE").await?;
    let seen = crate::run_client(
        "node",
        Command::new("node")
            .arg(root.join("tests/node/capture_client.mjs"))
            .arg(app.grpc_addr.to_string())
            .arg(TENANT_A_KEY)
            .arg(&authorization),
    )?;

    assert_eq!(
        seen["statuses"],
        serde_json::json!(["CAPTURE_STATUS_COMPLETED", "CAPTURE_STATUS_COMPLETED"]),
        "{seen}"
    );
    assert_eq!(seen["captured"], serde_json::json!(["USD", "10.00"]));
    assert_eq!(seen["get_matches"], true);
    // Two captures, one a page, newest first, and no third page.
    let pages = seen["pages"].as_array().ok_or("no pages")?;
    assert_eq!(pages.len(), 2, "{seen}");
    let listed: Vec<&str> = pages.iter().filter_map(|p| p[0].as_str()).collect();
    let watched = seen["watched"].as_array().ok_or("no changes")?;
    let first = watched[0][0].as_str().ok_or("no id")?;
    let second = watched[1][0].as_str().ok_or("no id")?;
    assert_eq!(listed, [second, first]);
    // After the trail's first change (the first capture's PROCESSING): the rest, in order.
    assert_eq!(
        watched.iter().map(|c| c[1].clone()).collect::<Vec<_>>(),
        [
            "CAPTURE_STATUS_COMPLETED",
            "CAPTURE_STATUS_PROCESSING",
            "CAPTURE_STATUS_COMPLETED"
        ]
    );
    // Resumed after the first of those: the other two, nothing twice.
    let resumed_after: i64 = seen["resumed_after"].as_str().ok_or("no cursor")?.parse()?;
    let resumed: Vec<i64> = seen["resumed"]
        .as_array()
        .ok_or("no resumed changes")?
        .iter()
        .filter_map(|c| c.as_str()?.parse().ok())
        .collect();
    assert_eq!(resumed.len(), 2, "{seen}");
    assert!(resumed.iter().all(|c| *c > resumed_after), "{seen}");
    assert_eq!(seen["bad_request"]["code"], "INVALID_ARGUMENT", "{seen}");
    assert_eq!(
        seen["bad_request"]["violations"],
        serde_json::json!([["amount.value", "USD allows at most 2 decimal places"]])
    );
    assert_eq!(
        seen["authorization_before"],
        serde_json::json!(["AUTHORIZATION_STATUS_OPEN", "30.00", 2])
    );
    assert_eq!(
        seen["release"],
        serde_json::json!([
            "CAPTURE_STATUS_COMPLETED",
            "RELEASED_BY_VOID_CALL",
            "AUTHORIZATION_STATUS_RELEASED",
            "70.00"
        ])
    );
    app.stop().await
}
