//! The `azure-sim` binary: writes the CA and an atomic ready file, serves through the proxy, and
//! exits cleanly on SIGTERM.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{ISV_CLIENT, ISV_SECRET, ISV_TENANT};
use serde_json::Value;

#[tokio::test]
async fn binary_writes_ready_file_and_stops_on_sigterm() {
    let directory = std::env::temp_dir().join(format!("azure-sim-test-{}", std::process::id()));
    std::fs::create_dir_all(&directory).expect("temp dir");
    let ready_path = directory.join("ready.json");
    let ca_path = directory.join("ca.pem");
    let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/seeds/two-tenants.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_azure-sim"))
        .args(["--seed", seed, "--ca-out"])
        .arg(&ca_path)
        .arg("--ready-file")
        .arg(&ready_path)
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn azure-sim");

    let started = Instant::now();
    while !ready_path.exists() {
        assert!(started.elapsed() < Duration::from_secs(20), "ready file never appeared");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ready: Value =
        serde_json::from_str(&std::fs::read_to_string(&ready_path).unwrap()).unwrap();
    let proxy = ready["proxy"].as_str().expect("proxy");
    assert!(proxy.starts_with("http://127.0.0.1:"));
    assert!(ready["admin"].as_str().unwrap().starts_with("http://127.0.0.1:"));
    let ca = std::fs::read(ready["ca"].as_str().unwrap()).expect("ca file");

    let client = reqwest::Client::builder()
        .proxy(reqwest::Proxy::https(proxy).unwrap())
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .build()
        .unwrap();
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", ISV_CLIENT),
        ("client_secret", ISV_SECRET),
        ("scope", "https://management.azure.com/.default"),
    ];
    let url = format!("https://login.microsoftonline.com/{ISV_TENANT}/oauth2/v2.0/token");
    let response = client.post(url).form(&form).send().await.expect("token");
    assert_eq!(response.status(), reqwest::StatusCode::OK);

    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = child.wait().expect("wait");
    assert!(exit.success(), "exit status {exit:?}");
    let _ = std::fs::remove_dir_all(&directory);
}
