//! End-to-end checks of the go-plugin transport: the binary is launched the way Terraform
//! launches it, and the handshake, mutual TLS, side services and exit behaviour are observed
//! from the outside.

mod support;

use std::path::Path;
use std::time::Duration;

use azurecmk::plugin::proto::Empty;
use azurecmk::plugin::proto::grpc_controller_client::GrpcControllerClient;
use azurecmk::plugin::proto::grpc_stdio_client::GrpcStdioClient;
use azurecmk::server::proto::get_provider_schema;
use azurecmk::server::proto::provider_client::ProviderClient;
use support::{HostIdentity, MAGIC_COOKIE, connect, launch_provider, launch_provider_with};
use tokio::io::AsyncReadExt;
use tokio_stream::StreamExt;

/// How long the provider may take to exit after being told to.
const EXIT_TIMEOUT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn refuses_to_start_outside_a_plugin_host() {
    /// Variables set, and fragments stderr must contain.
    type Case = (&'static str, Vec<(&'static str, &'static str)>, &'static [&'static str]);
    let cases: &[Case] = &[
        ("no magic cookie", vec![], &["This binary is a plugin", "terraform-provider-azurecmk"]),
        (
            "wrong magic cookie",
            vec![(MAGIC_COOKIE.0, "not-the-cookie")],
            &["This binary is a plugin"],
        ),
        (
            "host offers only protocol 5",
            vec![MAGIC_COOKIE, ("PLUGIN_PROTOCOL_VERSIONS", "5")],
            &["protocol 6 is required", "offers only version(s) 5"],
        ),
    ];
    for (name, env, expected) in cases {
        let env: Vec<(String, String)> =
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let output = support::spawn_provider(&env).wait_with_output().await.expect("run");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{name}: {stderr}");
        assert!(output.stdout.is_empty(), "{name}: stdout must stay empty");
        for fragment in *expected {
            assert!(stderr.contains(fragment), "{name}: {stderr:?} lacks {fragment:?}");
        }
    }
}

#[tokio::test]
async fn mutual_tls_handshake_then_graceful_shutdown() {
    let mut provider = launch_provider().await;
    let handshake = provider.handshake.clone();
    assert_eq!(handshake.protocol_version, "6", "{}", handshake.line);
    assert_eq!(handshake.network, "unix", "{}", handshake.line);
    assert!(handshake.address.starts_with(provider.socket_dir.path().to_str().expect("utf-8")));
    assert!(Path::new(&handshake.address).exists());
    let (_, server_cert) =
        x509_parser::parse_x509_certificate(&handshake.server_cert_der).expect("x509 server cert");
    assert!(server_cert.is_ca(), "go-plugin's client trusts the server cert as its own root");

    // go-plugin's client opens the stdio stream first; it must stay open without data.
    let mut stdio = GrpcStdioClient::new(provider.channel.clone())
        .stream_stdio(Empty {})
        .await
        .expect("stdio stream")
        .into_inner();
    let early = tokio::time::timeout(Duration::from_millis(200), stdio.next()).await;
    assert!(early.is_err(), "stdio stream must stay open and silent: {early:?}");

    // The provider routes are reachable through the same channel.
    let status = ProviderClient::new(provider.channel.clone())
        .get_provider_schema(get_provider_schema::Request {})
        .await;
    if let Err(status) = &status {
        assert_ne!(status.code(), tonic::Code::Unavailable, "{status:?}");
    }

    GrpcControllerClient::new(provider.channel.clone()).shutdown(Empty {}).await.expect("shutdown");
    let exit = tokio::time::timeout(EXIT_TIMEOUT, provider.child.wait())
        .await
        .expect("exit after shutdown")
        .expect("wait");
    assert!(exit.success(), "{exit:?}");
    assert!(!Path::new(&handshake.address).exists(), "socket file must be removed at exit");

    let mut rest = String::new();
    provider.stdout.read_to_string(&mut rest).await.expect("stdout");
    assert_eq!(rest, "", "stdout carries only the handshake line");
}

#[tokio::test]
async fn clients_without_the_host_certificate_are_refused() {
    let provider = launch_provider().await;
    let stranger = HostIdentity::generate();
    let cases = [("a different certificate", Some(&stranger)), ("no certificate", None)];

    for (name, identity) in cases {
        let refused = match connect(&provider.handshake, identity).await {
            Err(_) => true,
            Ok(channel) => GrpcControllerClient::new(channel).shutdown(Empty {}).await.is_err(),
        };
        assert!(refused, "{name}: the TLS layer must refuse this client");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let refusals = provider.stderr().matches("refused a connection at the TLS handshake").count();
    // A client may reconnect after a refusal, so each stranger is refused at least once.
    assert!(refusals >= cases.len(), "a TLS refusal per stranger:\n{}", provider.stderr());

    // The legitimate host still gets through afterwards.
    let channel = connect(&provider.handshake, provider.identity.as_ref()).await.expect("connect");
    GrpcControllerClient::new(channel).shutdown(Empty {}).await.expect("shutdown");
}

#[tokio::test]
async fn interrupt_is_ignored_until_the_host_shuts_down() {
    let mut provider = launch_provider().await;
    let pid = provider.child.id().expect("pid").to_string();
    let sent = std::process::Command::new("kill").args(["-INT", &pid]).status().expect("kill");
    assert!(sent.success());

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(provider.child.try_wait().expect("try_wait").is_none(), "SIGINT must not end us");

    GrpcControllerClient::new(provider.channel.clone()).shutdown(Empty {}).await.expect("shutdown");
    let exit = tokio::time::timeout(EXIT_TIMEOUT, provider.child.wait())
        .await
        .expect("exit after shutdown")
        .expect("wait");
    assert!(exit.success(), "{exit:?}");
}

#[tokio::test]
async fn plaintext_without_a_client_certificate() {
    let mut provider = launch_provider_with(false).await;
    assert!(provider.handshake.line.ends_with("|grpc|"), "{}", provider.handshake.line);

    GrpcControllerClient::new(provider.channel.clone()).shutdown(Empty {}).await.expect("shutdown");
    let exit = tokio::time::timeout(EXIT_TIMEOUT, provider.child.wait())
        .await
        .expect("exit after shutdown")
        .expect("wait");
    assert!(exit.success(), "{exit:?}");
}

/// Every resource and data source the design names, as Terraform sees them over the wire.
#[tokio::test]
async fn schema_lists_every_resource_and_data_source() {
    let provider = launch_provider().await;
    let schema = ProviderClient::new(provider.channel.clone())
        .get_provider_schema(get_provider_schema::Request {})
        .await
        .expect("GetProviderSchema")
        .into_inner();
    assert!(schema.diagnostics.is_empty(), "{:?}", schema.diagnostics);

    let mut resources: Vec<&str> = schema.resource_schemas.keys().map(String::as_str).collect();
    resources.sort_unstable();
    assert_eq!(
        resources,
        [
            "azurecmk_application_installation",
            "azurecmk_cross_tenant_key_grant",
            "azurecmk_federated_app_credential",
            "azurecmk_key_vault_key",
            "azurecmk_multi_tenant_application",
            "azurecmk_sql_tde_cross_tenant_protector",
            "azurecmk_user_assigned_identity",
        ]
    );
    let data_sources: Vec<&str> = schema.data_source_schemas.keys().map(String::as_str).collect();
    assert_eq!(data_sources, ["azurecmk_key_vault_key"]);

    for (name, resource) in &schema.resource_schemas {
        let block = resource.block.as_ref().expect("a block");
        let attribute_names: Vec<&str> = block.attributes.iter().map(|a| a.name.as_str()).collect();
        assert!(attribute_names.contains(&"id"), "{name} has no id: {attribute_names:?}");
        let timeouts = block.block_types.iter().any(|nested| nested.type_name == "timeouts");
        assert!(timeouts, "{name} has no timeouts block");
        for attribute in &block.attributes {
            let has_type = !attribute.r#type.is_empty();
            assert!(has_type != attribute.nested_type.is_some(), "{name}.{}", attribute.name);
            assert!(!attribute.description.is_empty(), "{name}.{} is undocumented", attribute.name);
        }
    }
    let provider_block = schema.provider.and_then(|p| p.block).expect("provider block");
    let secret = provider_block
        .attributes
        .iter()
        .find(|a| a.name == "client_secret")
        .expect("client_secret");
    assert!(secret.sensitive, "client_secret must be sensitive");
}
