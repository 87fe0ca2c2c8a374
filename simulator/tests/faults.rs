//! Injected faults through the proxy: error statuses with Retry-After, dropped connections,
//! latency, and rules that run out.

mod common;

use std::time::{Duration, Instant};

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn status_fault_answers_then_runs_out() {
    let harness = Harness::start().await;
    let token = harness.isv_token(ARM_SCOPE).await;
    let rule = json!({"host": "management.azure.com", "method": "GET", "path_contains": "/resourcegroups/",
        "kind": "status", "status": 429, "retry_after": 1, "times": 1});
    let added = harness.admin_post("/admin/faults", rule).await;
    assert_eq!(added.status, StatusCode::CREATED);

    let url =
        arm(&format!("/subscriptions/{ISV_SUBSCRIPTION}/resourcegroups/rg-isv"), "2021-04-01");
    let throttled = harness.call(Method::GET, &url, &token, None).await;
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(throttled.header("retry-after"), Some("1"));
    assert_eq!(throttled.error_code(), "TooManyRequests");
    let served = harness.call(Method::GET, &url, &token, None).await;
    assert_eq!(served.status, StatusCode::OK);
    harness.simulator.shutdown().await;
}

#[tokio::test]
async fn drop_fault_closes_the_connection() {
    let harness = Harness::start().await;
    harness.admin_post("/admin/faults", json!({"host": "*", "method": "POST", "path_contains": "oauth2", "kind": "drop", "times": 1})).await;
    let url = format!("https://login.microsoftonline.com/{ISV_TENANT}/oauth2/v2.0/token");
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", ISV_CLIENT),
        ("client_secret", ISV_SECRET),
        ("scope", ARM_SCOPE),
    ];
    let dropped = harness.client.post(&url).form(&form).send().await;
    assert!(dropped.is_err(), "connection should drop");
    let log = harness.admin_get("/admin/requests").await;
    assert_eq!(log["requests"][0]["status"], 0);
    harness.isv_token(ARM_SCOPE).await;
    harness.simulator.shutdown().await;
}

#[tokio::test]
async fn latency_fault_delays_and_clears() {
    let harness = Harness::start().await;
    harness
        .admin_post(
            "/admin/faults",
            json!({"host": "graph.microsoft.com", "kind": "latency", "latency_ms": 200}),
        )
        .await;
    let token = harness.isv_token(GRAPH_SCOPE).await;
    let started = Instant::now();
    harness.call(Method::GET, &graph("/applications"), &token, None).await;
    assert!(started.elapsed() >= Duration::from_millis(200));

    harness.admin_delete("/admin/faults").await;
    let listed = harness.admin_get("/admin/faults").await;
    assert_eq!(listed["faults"], json!([]));
    harness.simulator.shutdown().await;
}
