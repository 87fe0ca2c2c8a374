//! Acceptance-test harness: runs the real `terraform` CLI against the provider binary cargo built
//! for this test run and a simulator started inside the test process.
//!
//! Each [`TerraformWorkspace`] is its own temporary directory holding the configuration, a
//! filesystem mirror with the provider, a CLI config, a scratch `HOME` and the simulator's CA, and
//! each test starts its own simulator on OS-chosen ports, so tests run concurrently. Terraform
//! runs with an environment built from an allow-list: nothing from the developer's shell (`ARM_*`,
//! `TF_LOG`, a personal CLI config, proxies) leaks in unless a test sets it with
//! [`TerraformWorkspace::env`]. The harness never reaches a registry or real Azure: the provider
//! comes from the mirror and every HTTPS request goes through the simulator's proxy.
//!
//! Acceptance tests are plain `#[test]` functions. Terraform commands block the calling thread,
//! so the simulators live on a runtime of their own ([`start_simulator`]), not on the test's.

// Each test crate that includes `support` uses its own subset of this harness.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use azure_sim::{RunningSimulator, Seed, SimulatorOptions};
use serde_json::Value;
use tempfile::TempDir;

/// The provider's full source address, as Terraform prints it in schemas and state.
pub const PROVIDER_SOURCE: &str = "registry.terraform.io/azurecmk/azurecmk";

/// A `terraform` block requiring the provider from [`PROVIDER_SOURCE`]; prepend it to test HCL.
pub const REQUIRED_PROVIDERS: &str = r#"terraform {
  required_providers {
    azurecmk = {
      source = "azurecmk/azurecmk"
    }
  }
}
"#;

/// Seed with the ISV and customer tenants, relative to the workspace root.
pub const TWO_TENANTS_SEED: &str = "simulator/seeds/two-tenants.json";

/// How long one terraform command may run before the harness kills it and fails the test.
///
/// Generous because a slow CI machine runs several acceptance tests at once; a hung provider
/// still fails the test instead of stalling the whole run. `AZURECMK_TERRAFORM_TIMEOUT_SECS`
/// overrides it.
const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(600);

/// Variables passed through from the test process; everything else is dropped.
///
/// Kept short on purpose: `ARM_*` would silently configure the provider, `TF_*` would change
/// Terraform's behaviour or logging, `NO_PROXY` could send Azure traffic around the simulator.
const INHERITED_VARIABLES: &[&str] = &["PATH", "TMPDIR", "LANG", "LC_ALL", "TZ", "RUST_BACKTRACE"];

/// The terraform binary for this test process, from `scripts/ensure-terraform.sh`.
///
/// The script prefers `$AZURECMK_TERRAFORM`, then `terraform` on PATH, and otherwise installs
/// Terraform 1.0.3 into the project's `.venv/`; it runs once per test process.
pub fn terraform_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(locate_terraform)
}

fn locate_terraform() -> PathBuf {
    let script = workspace_root().join("scripts/ensure-terraform.sh");
    let output = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|error| panic!("running {}: {error}", script.display()));
    assert!(output.status.success(), "{} exited with {}", script.display(), output.status);

    let path = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    assert!(path.is_file(), "{} printed {}, which is not a file", script.display(), path.display());
    path
}

/// The repository root (the provider package's manifest directory).
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Starts a simulator seeded with the two-tenants seed, on OS-chosen ports.
pub fn start_simulator() -> RunningSimulator {
    let path = workspace_root().join(TWO_TENANTS_SEED);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()));
    start_simulator_with_seed(&text)
}

/// Starts a simulator seeded from `seed_json`, on OS-chosen ports.
pub fn start_simulator_with_seed(seed_json: &str) -> RunningSimulator {
    let seed = Seed::from_json(seed_json).unwrap_or_else(|error| panic!("parsing seed: {error}"));
    let options = SimulatorOptions { seed, proxy_port: 0, admin_port: 0 };
    on_simulator_runtime(azure_sim::start(options))
        .unwrap_or_else(|error| panic!("starting the simulator: {error:#}"))
}

/// Stops a simulator and waits for its listeners to close.
///
/// Optional: a simulator that is simply dropped keeps serving until the test process exits.
pub fn stop_simulator(simulator: RunningSimulator) {
    on_simulator_runtime(simulator.shutdown());
}

/// Runs `future` on the simulators' runtime and waits for its output.
///
/// The simulators need threads that keep serving while a test blocks on a terraform command, so
/// they get a runtime of their own instead of the test's. Waiting through a channel rather than
/// `block_on` works from any thread, even one already inside a tokio runtime.
fn on_simulator_runtime<F>(future: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("azure-sim")
            .enable_all()
            .build()
            .expect("building the simulator runtime")
    });

    let (sender, receiver) = mpsc::channel();
    runtime.spawn(async move {
        let _ = sender.send(future.await);
    });
    receiver.recv().expect("the simulator runtime dropped a task")
}

/// Ids and deployer credentials of the seeded tenants, for templating provider blocks.
#[derive(Debug, Clone)]
pub struct SeedIds {
    /// The ISV tenant: it runs the SQL server.
    pub isv: TenantIds,
    /// The customer tenant: it owns the key vaults.
    pub customer: TenantIds,
    seed: Value,
}

/// One seeded tenant: its first subscription and resource group, and its deployer app.
#[derive(Clone)]
pub struct TenantIds {
    /// Entra tenant id.
    pub tenant_id: String,
    /// The tenant's first subscription.
    pub subscription_id: String,
    /// The first resource group of that subscription.
    pub resource_group: String,
    /// The deployer application's client id.
    pub client_id: String,
    /// The deployer application's client secret.
    pub client_secret: String,
}

impl fmt::Debug for TenantIds {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("TenantIds")
            .field("tenant_id", &self.tenant_id)
            .field("subscription_id", &self.subscription_id)
            .field("resource_group", &self.resource_group)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .finish()
    }
}

/// The ids in the two-tenants seed.
pub fn seed_ids() -> SeedIds {
    let path = workspace_root().join(TWO_TENANTS_SEED);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()));
    SeedIds::from_json(&text)
}

impl SeedIds {
    /// Reads the ids from seed JSON whose deployers are named `isv-deployer` and
    /// `customer-deployer`.
    pub fn from_json(seed_json: &str) -> Self {
        let seed: Value = serde_json::from_str(seed_json).expect("seed is not JSON");
        let isv = tenant_ids(&seed, "isv");
        let customer = tenant_ids(&seed, "customer");
        Self { isv, customer, seed }
    }

    /// ARM id of the seeded SQL server `name`.
    pub fn sql_server_id(&self, name: &str) -> String {
        let server = self.seeded_object("sql_servers", name);
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Sql/servers/{name}",
            text(server, "subscription_id"),
            text(server, "resource_group"),
        )
    }

    /// ARM id of the seeded key vault `name`.
    pub fn key_vault_id(&self, name: &str) -> String {
        let vault = self.seeded_object("key_vaults", name);
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.KeyVault/vaults/{name}",
            text(vault, "subscription_id"),
            text(vault, "resource_group"),
        )
    }

    /// Data-plane URI of the seeded key vault `name`, with the trailing slash Azure returns.
    pub fn key_vault_uri(&self, name: &str) -> String {
        self.seeded_object("key_vaults", name);
        format!("https://{name}.vault.azure.net/")
    }

    fn seeded_object(&self, collection: &str, name: &str) -> &Value {
        self.seed[collection]
            .as_array()
            .and_then(|objects| objects.iter().find(|object| object["name"] == name))
            .unwrap_or_else(|| panic!("the seed has no {collection} entry named {name}"))
    }
}

impl TenantIds {
    /// A `provider "azurecmk"` block signing in as this tenant's deployer, with `alias` if given.
    pub fn provider_block(&self, alias: Option<&str>) -> String {
        let alias_line = match alias {
            Some(alias) => format!("  alias           = {}\n", hcl_string(alias)),
            None => String::new(),
        };
        format!(
            "provider \"azurecmk\" {{\n{alias_line}\
             \x20 tenant_id       = {}\n\
             \x20 subscription_id = {}\n\
             \x20 client_id       = {}\n\
             \x20 client_secret   = {}\n\
             }}\n",
            hcl_string(&self.tenant_id),
            hcl_string(&self.subscription_id),
            hcl_string(&self.client_id),
            hcl_string(&self.client_secret),
        )
    }
}

/// Finds the tenant whose deployer is `<role>-deployer`, then its first subscription.
fn tenant_ids(seed: &Value, role: &str) -> TenantIds {
    let deployer_name = format!("{role}-deployer");
    let (tenant, deployer) = seed["tenants"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|tenant| {
            let deployers = tenant["deployers"].as_array()?;
            let deployer =
                deployers.iter().find(|d| d["display_name"] == deployer_name.as_str())?;
            Some((tenant, deployer))
        })
        .unwrap_or_else(|| panic!("the seed has no tenant with a deployer named {deployer_name}"));
    let tenant_id = text(tenant, "id");

    let subscription = seed["subscriptions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|subscription| subscription["tenant_id"] == tenant_id.as_str())
        .unwrap_or_else(|| panic!("the seed has no subscription in tenant {tenant_id}"));
    let resource_group = subscription["resource_groups"]
        .get(0)
        .map(|group| text(group, "name"))
        .unwrap_or_else(|| panic!("the seed has no resource group in tenant {tenant_id}"));

    TenantIds {
        subscription_id: text(subscription, "id"),
        resource_group,
        client_id: text(deployer, "client_id"),
        client_secret: text(deployer, "client_secret"),
        tenant_id,
    }
}

fn text(object: &Value, field: &str) -> String {
    object[field]
        .as_str()
        .unwrap_or_else(|| panic!("seed object has no string field {field}: {object}"))
        .to_owned()
}

/// Quotes `value` as an HCL string literal, escaping what HCL would otherwise interpret.
pub fn hcl_string(value: &str) -> String {
    let escaped = value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
        .replace("${", "$${")
        .replace("%{", "%%{");
    format!("\"{escaped}\"")
}

/// What one terraform command did.
#[derive(Debug)]
pub struct TerraformOutput {
    /// The command line, without the binary's path.
    pub command: String,
    /// How the process ended.
    pub status: ExitStatus,
    /// Everything it wrote to stdout.
    pub stdout: String,
    /// Everything it wrote to stderr.
    pub stderr: String,
    /// The working directory, kept when the test panics.
    pub workspace: PathBuf,
}

impl TerraformOutput {
    /// The exit code, or -1 when a signal ended the process.
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }

    /// Whether the command exited 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Stdout then stderr, for substring checks that should not care which stream has it.
    pub fn combined(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// Panics with both streams unless the command exited 0.
    pub fn assert_success(self) -> Self {
        assert!(self.success(), "expected success\n{self}");
        self
    }
}

impl fmt::Display for TerraformOutput {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(formatter, "terraform {} exited with {}", self.command, self.status)?;
        writeln!(formatter, "workspace: {}", self.workspace.display())?;
        writeln!(formatter, "--- stdout ---\n{}", self.stdout.trim_end())?;
        write!(formatter, "--- stderr ---\n{}", self.stderr.trim_end())
    }
}

/// A Terraform working directory wired to the provider under test and one simulator.
///
/// Dropped normally, it deletes its directory; dropped during a panic, it keeps it and prints
/// where, so the configuration, state and `.terraform/` can be inspected.
pub struct TerraformWorkspace {
    directory: Option<TempDir>,
    root: PathBuf,
    work_dir: PathBuf,
    environment: BTreeMap<OsString, OsString>,
    test_environment: BTreeMap<OsString, Option<OsString>>,
    timeout: Duration,
}

impl TerraformWorkspace {
    /// Creates the directory with `hcl` as `main.tf`, the provider mirror, the CLI config and the
    /// simulator's CA.
    pub fn new(hcl: &str, simulator: &RunningSimulator) -> Self {
        let directory = tempfile::Builder::new()
            .prefix("azurecmk-acceptance-")
            .tempdir()
            .expect("creating the workspace directory");
        let root = directory.path().to_path_buf();
        let work_dir = root.join("work");
        let home = root.join("home");
        for dir in [&work_dir, &home] {
            create_dir(dir);
        }

        let mirror = root.join("mirror");
        install_provider_into_mirror(&mirror);
        let cli_config = root.join("terraform.rc");
        write_file(&cli_config, &cli_config_text(&mirror));
        let ca_file = root.join("simulator-ca.pem");
        write_file(&ca_file, simulator.ca_pem());

        let settings = HarnessSettings {
            home: &home,
            cli_config: &cli_config,
            ca_file: &ca_file,
            proxy_url: &simulator.proxy_url(),
        };
        let environment = terraform_environment(std::env::vars_os(), &settings);
        let workspace = Self {
            directory: Some(directory),
            root,
            work_dir,
            environment,
            test_environment: BTreeMap::new(),
            timeout: command_timeout(),
        };
        workspace.write_main(hcl);
        workspace
    }

    /// The directory terraform runs in (it holds `main.tf` and the state).
    pub fn path(&self) -> &Path {
        &self.work_dir
    }

    /// Sets a variable for every later command, e.g. `ARM_*` or `TF_LOG`.
    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Self {
        let key = key.as_ref().to_os_string();
        self.test_environment.insert(key, Some(value.as_ref().to_os_string()));
        self
    }

    /// Removes a variable, including one the harness sets, for every later command.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Self {
        self.test_environment.insert(key.as_ref().to_os_string(), None);
        self
    }

    /// Replaces `main.tf`, to change the configuration between steps.
    pub fn write_main(&self, hcl: &str) {
        self.write_file("main.tf", hcl);
    }

    /// Writes another file into the working directory, such as `terraform.tfvars`.
    pub fn write_file(&self, name: &str, contents: &str) {
        write_file(&self.work_dir.join(name), contents);
    }

    /// `terraform init`; panics unless it succeeds.
    pub fn init(&self) -> TerraformOutput {
        self.run(&["init", "-input=false", "-no-color"]).assert_success()
    }

    /// `terraform apply -auto-approve`; panics unless it succeeds.
    pub fn apply(&self) -> TerraformOutput {
        self.try_apply().assert_success()
    }

    /// `terraform apply -auto-approve`, whatever its outcome.
    pub fn try_apply(&self) -> TerraformOutput {
        self.run(&["apply", "-auto-approve", "-input=false", "-no-color"])
    }

    /// `terraform plan -detailed-exitcode`: [`TerraformOutput::code`] is 0 for no changes and 2
    /// for changes; panics on an error (1).
    pub fn plan(&self) -> TerraformOutput {
        let output = self.run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
        assert!(matches!(output.code(), 0 | 2), "expected a plan\n{output}");
        output
    }

    /// `terraform import ADDRESS ID`; panics unless it succeeds.
    pub fn import(&self, address: &str, id: &str) -> TerraformOutput {
        self.try_import(address, id).assert_success()
    }

    /// `terraform import ADDRESS ID`, whatever its outcome.
    pub fn try_import(&self, address: &str, id: &str) -> TerraformOutput {
        self.run(&["import", "-input=false", "-no-color", address, id])
    }

    /// `terraform destroy -auto-approve`; panics unless it succeeds.
    pub fn destroy(&self) -> TerraformOutput {
        self.try_destroy().assert_success()
    }

    /// `terraform destroy -auto-approve`, whatever its outcome.
    pub fn try_destroy(&self) -> TerraformOutput {
        self.run(&["destroy", "-auto-approve", "-input=false", "-no-color"])
    }

    /// `terraform state show ADDRESS`; panics unless it succeeds.
    pub fn state_show(&self, address: &str) -> TerraformOutput {
        self.run(&["state", "show", "-no-color", address]).assert_success()
    }

    /// `terraform output -json`, parsed.
    pub fn output_json(&self) -> Value {
        self.json(&["output", "-json"])
    }

    /// `terraform show -json`: the current state, parsed.
    pub fn show_json(&self) -> Value {
        self.json(&["show", "-json"])
    }

    /// `terraform providers schema -json`, parsed; needs [`TerraformWorkspace::init`] first.
    pub fn providers_schema_json(&self) -> Value {
        self.json(&["providers", "schema", "-json"])
    }

    /// The attribute values of the resource at `address` in the current state.
    pub fn resource_values(&self, address: &str) -> Value {
        let state = self.show_json();
        find_resource(&state["values"]["root_module"], address)
            .map(|resource| resource["values"].clone())
            .unwrap_or_else(|| {
                panic!("no {address} in state (workspace {})\n{state:#}", self.root.display())
            })
    }

    /// Plans and panics unless Terraform reports no changes.
    pub fn assert_no_changes(&self) {
        let output = self.plan();
        assert_eq!(output.code(), 0, "expected no changes\n{output}");
    }

    /// Plans and panics unless Terraform reports changes.
    pub fn assert_changes(&self) -> TerraformOutput {
        let output = self.plan();
        assert_eq!(output.code(), 2, "expected changes\n{output}");
        output
    }

    /// Applies and panics unless the apply fails with `substring` in its output.
    pub fn assert_apply_fails_with(&self, substring: &str) -> TerraformOutput {
        let output = self.try_apply();
        assert!(!output.success(), "expected apply to fail with {substring:?}\n{output}");
        assert!(
            output.combined().contains(substring),
            "expected apply to fail with {substring:?}\n{output}"
        );
        output
    }

    /// Runs `terraform ARGS` in the working directory, whatever its outcome.
    pub fn run(&self, args: &[&str]) -> TerraformOutput {
        let command_line = args.join(" ");
        let mut command = self.command(args);
        let mut child = command.spawn().unwrap_or_else(|error| {
            panic!("starting {} {command_line}: {error}", terraform_binary().display())
        });

        // Drain both pipes on their own threads: a chatty command would otherwise fill one
        // pipe and block while the harness waits for it to exit.
        let stdout = drain(child.stdout.take().expect("piped stdout"));
        let stderr = drain(child.stderr.take().expect("piped stderr"));
        let waited = wait_with_timeout(child, self.timeout);

        let output = TerraformOutput {
            command: command_line,
            status: waited.status,
            stdout: collect(stdout),
            stderr: collect(stderr),
            workspace: self.root.clone(),
        };
        assert!(!waited.timed_out, "killed after {:?}\n{output}", self.timeout);
        output
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(terraform_binary());
        command
            .args(args)
            .current_dir(&self.work_dir)
            .env_clear()
            .envs(&self.environment)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so a timeout can kill Terraform and its provider processes
            // together.
            .process_group(0);
        for (key, value) in &self.test_environment {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        command
    }

    fn json(&self, args: &[&str]) -> Value {
        let output = self.run(args).assert_success();
        serde_json::from_str(&output.stdout)
            .unwrap_or_else(|error| panic!("stdout is not JSON: {error}\n{output}"))
    }
}

impl Drop for TerraformWorkspace {
    fn drop(&mut self) {
        if thread::panicking()
            && let Some(directory) = self.directory.take()
        {
            let kept = directory.keep();
            eprintln!("terraform workspace kept at {}", kept.display());
        }
    }
}

/// Paths and URLs the harness points Terraform at.
struct HarnessSettings<'a> {
    home: &'a Path,
    cli_config: &'a Path,
    ca_file: &'a Path,
    proxy_url: &'a str,
}

/// Builds terraform's environment: the allow-listed inherited variables, then the harness's own.
fn terraform_environment(
    inherited: impl Iterator<Item = (OsString, OsString)>,
    settings: &HarnessSettings<'_>,
) -> BTreeMap<OsString, OsString> {
    let mut environment: BTreeMap<OsString, OsString> =
        inherited.filter(|(key, _)| INHERITED_VARIABLES.iter().any(|name| key == name)).collect();
    let harness = [
        ("HOME", settings.home.as_os_str()),
        ("TF_CLI_CONFIG_FILE", settings.cli_config.as_os_str()),
        ("CHECKPOINT_DISABLE", OsStr::new("1")),
        ("TF_IN_AUTOMATION", OsStr::new("1")),
        ("TF_INPUT", OsStr::new("0")),
        ("HTTPS_PROXY", OsStr::new(settings.proxy_url)),
        ("SSL_CERT_FILE", settings.ca_file.as_os_str()),
    ];
    for (key, value) in harness {
        environment.insert(key.into(), value.to_os_string());
    }
    environment
}

/// The CLI config that installs `azurecmk/*` from `mirror` and never asks the registry for it.
fn cli_config_text(mirror: &Path) -> String {
    let mirror = hcl_string(&mirror.to_string_lossy());
    let pattern = hcl_string("registry.terraform.io/azurecmk/*");
    format!(
        "provider_installation {{\n\
         \x20 filesystem_mirror {{\n\
         \x20   path    = {mirror}\n\
         \x20   include = [{pattern}]\n\
         \x20 }}\n\
         \x20 direct {{\n\
         \x20   exclude = [{pattern}]\n\
         \x20 }}\n\
         }}\n"
    )
}

/// Copies the provider binary cargo built into an unpacked filesystem-mirror layout.
fn install_provider_into_mirror(mirror: &Path) {
    let version = env!("CARGO_PKG_VERSION");
    let package_dir = mirror
        .join("registry.terraform.io/azurecmk/azurecmk")
        .join(version)
        .join(terraform_platform());
    create_dir(&package_dir);

    // A copy, not a symlink: `terraform init` records the binary's checksum in the lock file and
    // every later command checks it, so a rebuild of target/ in the middle of a test (another
    // cargo command on the same tree) would fail the test through a link.
    let binary = Path::new(env!("CARGO_BIN_EXE_terraform-provider-azurecmk"));
    let target = package_dir.join(format!("terraform-provider-azurecmk_v{version}"));
    std::fs::copy(binary, &target)
        .unwrap_or_else(|error| panic!("copying {}: {error}", binary.display()));
}

/// Terraform's name for this machine's platform, such as `linux_amd64`.
fn terraform_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    };
    format!("{}_{arch}", std::env::consts::OS)
}

fn command_timeout() -> Duration {
    std::env::var("AZURECMK_TERRAFORM_TIMEOUT_SECS")
        .ok()
        .and_then(|seconds| seconds.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_COMMAND_TIMEOUT)
}

/// How a command ended.
struct Waited {
    status: ExitStatus,
    /// Whether the harness killed it for running past its timeout.
    timed_out: bool,
}

/// Waits for `child`; past `timeout`, kills its process group.
fn wait_with_timeout(mut child: std::process::Child, timeout: Duration) -> Waited {
    let process_group = child.id();
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        let _ = sender.send(child.wait().expect("waiting for terraform"));
    });

    match receiver.recv_timeout(timeout) {
        Ok(status) => Waited { status, timed_out: false },
        Err(RecvTimeoutError::Timeout) => {
            kill_process_group(process_group);
            let status = receiver.recv().expect("the terraform waiter stopped");
            Waited { status, timed_out: true }
        }
        Err(RecvTimeoutError::Disconnected) => panic!("the terraform waiter stopped"),
    }
}

/// Sends SIGKILL to every process in the group (Terraform and the providers it started).
fn kill_process_group(process_group: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{process_group}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

/// The captured bytes as text, without colour codes.
fn collect(reader: JoinHandle<Vec<u8>>) -> String {
    let text = String::from_utf8_lossy(&reader.join().unwrap_or_default()).into_owned();
    strip_ansi_escapes(&text)
}

/// Removes terminal escape sequences (`ESC [ ... letter`).
///
/// Some commands (`providers schema`, `output`) take no `-no-color` flag yet colour their
/// diagnostics, which would otherwise split the words tests search for.
fn strip_ansi_escapes(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut characters = text.chars();
    while let Some(character) = characters.next() {
        if character != '\u{1b}' {
            plain.push(character);
            continue;
        }
        if characters.next() == Some('[') {
            // Parameters and intermediates run up to the final byte, in '@'..='~'.
            for inner in characters.by_ref() {
                if ('@'..='~').contains(&inner) {
                    break;
                }
            }
        }
    }
    plain
}

/// Finds `address` in a `show -json` module, searching child modules too.
fn find_resource<'a>(module: &'a Value, address: &str) -> Option<&'a Value> {
    let in_module = module["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|resource| resource["address"] == address);
    in_module.or_else(|| {
        module["child_modules"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|child| find_resource(child, address))
    })
}

fn create_dir(path: &Path) {
    std::fs::create_dir_all(path)
        .unwrap_or_else(|error| panic!("creating {}: {error}", path.display()));
}

fn write_file(path: &Path, contents: &str) {
    std::fs::write(path, contents)
        .unwrap_or_else(|error| panic!("writing {}: {error}", path.display()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terraform_environment_keeps_only_allow_listed_variables() {
        struct Case {
            name: &'static str,
            inherited: (&'static str, &'static str),
            expected: Option<&'static str>,
        }
        let cases = [
            Case { name: "path kept", inherited: ("PATH", "/bin"), expected: Some("/bin") },
            Case { name: "arm dropped", inherited: ("ARM_CLIENT_SECRET", "s"), expected: None },
            Case { name: "tf log dropped", inherited: ("TF_LOG", "TRACE"), expected: None },
            Case { name: "no proxy dropped", inherited: ("NO_PROXY", "*"), expected: None },
            Case { name: "lower proxy dropped", inherited: ("https_proxy", "x"), expected: None },
            Case {
                name: "personal cli config replaced",
                inherited: ("TF_CLI_CONFIG_FILE", "/root/.terraformrc"),
                expected: Some("/ws/terraform.rc"),
            },
            Case {
                name: "home replaced",
                inherited: ("HOME", "/root"),
                expected: Some("/ws/home"),
            },
            Case {
                name: "ca replaced",
                inherited: ("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt"),
                expected: Some("/ws/ca.pem"),
            },
        ];
        let settings = HarnessSettings {
            home: Path::new("/ws/home"),
            cli_config: Path::new("/ws/terraform.rc"),
            ca_file: Path::new("/ws/ca.pem"),
            proxy_url: "http://127.0.0.1:1",
        };

        for case in cases {
            let (key, value) = case.inherited;
            let inherited = [(OsString::from(key), OsString::from(value))].into_iter();
            let environment = terraform_environment(inherited, &settings);
            let actual = environment.get(OsStr::new(key)).map(|value| value.to_str().unwrap());
            assert_eq!(actual, case.expected, "case {}", case.name);
            assert_eq!(
                environment.get(OsStr::new("HTTPS_PROXY")).unwrap(),
                "http://127.0.0.1:1",
                "case {}",
                case.name
            );
        }
    }

    #[test]
    fn hcl_string_escapes_what_hcl_interprets() {
        let cases = [
            ("plain", "abc", r#""abc""#),
            ("quote", r#"a"b"#, r#""a\"b""#),
            ("backslash", r"a\b", r#""a\\b""#),
            ("interpolation", "${x}", r#""$${x}""#),
            ("directive", "%{if}", r#""%%{if}""#),
            ("newline", "a\nb", r#""a\nb""#),
        ];
        for (name, input, expected) in cases {
            assert_eq!(hcl_string(input), expected, "case {name}");
        }
    }

    #[test]
    fn seed_ids_come_from_the_two_tenants_seed() {
        let ids = seed_ids();
        let isv_subscription = "/subscriptions/11111111-0000-4000-8000-0000000000a1";
        let customer_subscription = "/subscriptions/22222222-0000-4000-8000-0000000000a1";
        let server_id = format!(
            "{isv_subscription}/resourceGroups/rg-isv/providers/Microsoft.Sql/servers/isv-sql-01"
        );
        let vault_id = format!(
            "{customer_subscription}/resourceGroups/rg-customer/providers/Microsoft.KeyVault\
             /vaults/contoso-cmk-kv"
        );
        let cases = [
            ("isv tenant", ids.isv.tenant_id.clone(), "11111111-0000-4000-8000-000000000001"),
            ("isv client", ids.isv.client_id.clone(), "11111111-0000-4000-8000-0000000000c1"),
            ("isv group", ids.isv.resource_group.clone(), "rg-isv"),
            (
                "customer subscription",
                format!("/subscriptions/{}", ids.customer.subscription_id),
                customer_subscription,
            ),
            (
                "customer secret",
                ids.customer.client_secret.clone(),
                "customer-deployer-secret-not-real",
            ),
            ("server id", ids.sql_server_id("isv-sql-01"), &server_id),
            ("vault id", ids.key_vault_id("contoso-cmk-kv"), &vault_id),
            (
                "vault uri",
                ids.key_vault_uri("contoso-cmk-rbac"),
                "https://contoso-cmk-rbac.vault.azure.net/",
            ),
        ];
        for (name, actual, expected) in cases {
            assert_eq!(actual, expected, "case {name}");
        }
    }

    #[test]
    fn tenant_ids_debug_hides_the_secret() {
        let ids = seed_ids();
        let debug = format!("{:?}", ids.customer);
        assert!(!debug.contains(&ids.customer.client_secret), "{debug}");
        assert!(debug.contains("<redacted>"), "{debug}");
    }

    #[test]
    fn provider_block_renders_alias_and_credentials() {
        let ids = seed_ids();
        let block = ids.isv.provider_block(Some("isv"));
        assert!(block.starts_with("provider \"azurecmk\" {\n  alias           = \"isv\"\n"));
        assert!(block.contains(&format!("  tenant_id       = \"{}\"\n", ids.isv.tenant_id)));
        assert!(block.contains(&format!("  client_secret   = \"{}\"\n", ids.isv.client_secret)));
        assert!(block.ends_with("}\n"));
        assert!(!ids.isv.provider_block(None).contains("alias"));
    }

    #[test]
    fn strip_ansi_escapes_leaves_plain_text() {
        let cases = [
            ("plain", "Error: no", "Error: no"),
            ("colour", "\u{1b}[31m\u{1b}[1mError: \u{1b}[0mbad", "Error: bad"),
            ("box drawing kept", "\u{1b}[31m\u{2502}\u{1b}[0m x", "\u{2502} x"),
            ("truncated sequence", "a\u{1b}[3", "a"),
        ];
        for (name, input, expected) in cases {
            assert_eq!(strip_ansi_escapes(input), expected, "case {name}");
        }
    }

    #[test]
    fn cli_config_installs_azurecmk_from_the_mirror_only() {
        let text = cli_config_text(Path::new("/ws/mirror"));
        let expected = r#"provider_installation {
  filesystem_mirror {
    path    = "/ws/mirror"
    include = ["registry.terraform.io/azurecmk/*"]
  }
  direct {
    exclude = ["registry.terraform.io/azurecmk/*"]
  }
}
"#;
        assert_eq!(text, expected);
    }
}
