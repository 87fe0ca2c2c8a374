//! Smoke test of the acceptance setup: Terraform installs the provider cargo built from the
//! harness's filesystem mirror, starts it, and lists its schema.
//!
//! It checks the wiring every other acceptance test relies on (mirror layout, CLI config,
//! handshake, GetProviderSchema), not any resource's behaviour.

mod support;

use support::terraform::{self, PROVIDER_SOURCE, REQUIRED_PROVIDERS, TerraformWorkspace};

#[test]
fn terraform_installs_the_provider_and_lists_its_schema() {
    let simulator = terraform::start_simulator();
    let ids = terraform::seed_ids();
    let config = format!("{REQUIRED_PROVIDERS}\n{}", ids.isv.provider_block(None));
    let workspace = TerraformWorkspace::new(&config, &simulator);

    let init = workspace.init();
    assert!(init.stdout.contains("azurecmk/azurecmk"), "init did not mention the provider\n{init}");
    let schemas = workspace.providers_schema_json();

    let provider = &schemas["provider_schemas"][PROVIDER_SOURCE];
    assert!(provider.is_object(), "{PROVIDER_SOURCE} missing from the schemas: {schemas:#}");
    let attributes = &provider["provider"]["block"]["attributes"];
    assert_eq!(attributes["tenant_id"]["type"], "string", "provider attributes: {attributes:#}");
    assert_eq!(
        attributes["client_secret"]["sensitive"], true,
        "provider attributes: {attributes:#}"
    );

    terraform::stop_simulator(simulator);
}

/// The harness's own steps on a configuration without resources, so a broken harness shows up
/// apart from a broken provider.
#[test]
fn harness_drives_init_apply_plan_and_destroy() {
    let simulator = terraform::start_simulator();
    let config = "variable \"greeting\" {\n  type = string\n}\n\
                  output \"greeting\" {\n  value = var.greeting\n}\n";
    let mut workspace = TerraformWorkspace::new(config, &simulator);
    workspace.env("TF_VAR_greeting", "hello");

    workspace.init();
    workspace.apply();
    assert_eq!(workspace.output_json()["greeting"]["value"], "hello");
    workspace.assert_no_changes();

    workspace.write_main(&format!("{config}output \"farewell\" {{\n  value = \"bye\"\n}}\n"));
    workspace.assert_changes();
    let failure = workspace.run(&["apply", "-auto-approve", "-no-color", "-var", "missing=1"]);
    assert!(!failure.success(), "an undeclared variable must fail\n{failure}");
    workspace.destroy();

    terraform::stop_simulator(simulator);
}
