//! What a provider, a resource and a data source implement, free of any protocol detail.
//!
//! `server` drives these traits from Terraform's RPCs. Each trait is generic over `P`, the
//! provider's configured state (for us: the Azure clients of one provider block), which the server
//! hands to every call after `ConfigureProvider`.

use std::sync::Arc;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::diag::Diagnostics;
use super::plan::Plan;
use super::schema::Schema;
use super::value::Value;

/// What every resource and data source call receives.
pub struct Context<'a, P> {
    /// The configured provider.
    pub provider: &'a P,
    /// Cancelled when Terraform asks the provider to stop (Ctrl-C): stop waiting, return what
    /// exists so it lands in state.
    pub cancel: CancellationToken,
}

/// The outcome of create or update: the state to record, even on failure when something was made.
#[derive(Debug, Default)]
pub struct ApplyResult {
    /// The new state. On failure, `Some` records what Azure already holds so that nothing is
    /// orphaned; `None` means nothing exists (or, for update, keep the prior state).
    pub state: Option<Value>,
    /// What to tell the user.
    pub diagnostics: Diagnostics,
}

impl ApplyResult {
    /// A success with this state.
    pub fn done(state: Value) -> ApplyResult {
        ApplyResult { state: Some(state), diagnostics: Diagnostics::new() }
    }

    /// A failure with nothing to record.
    pub fn failed(diagnostics: impl Into<Diagnostics>) -> ApplyResult {
        ApplyResult { state: None, diagnostics: diagnostics.into() }
    }

    /// A failure after something was made: record it anyway.
    pub fn partial(state: Value, diagnostics: impl Into<Diagnostics>) -> ApplyResult {
        ApplyResult { state: Some(state), diagnostics: diagnostics.into() }
    }
}

impl From<Result<Value, Diagnostics>> for ApplyResult {
    fn from(result: Result<Value, Diagnostics>) -> ApplyResult {
        match result {
            Ok(state) => ApplyResult::done(state),
            Err(diagnostics) => ApplyResult::failed(diagnostics),
        }
    }
}

/// The outcome of refreshing a resource.
#[derive(Debug)]
pub enum ReadResult {
    /// It exists; here is its current state (plus any warnings).
    Found(Value, Diagnostics),
    /// It no longer exists; Terraform drops it from state and plans to create it.
    Gone(Diagnostics),
    /// Reading failed; the prior state stays.
    Failed(Diagnostics),
}

impl ReadResult {
    /// The outcome of a lookup that found the object (`Some`), found it gone (`None`) or failed;
    /// `gone` gives the warning that tells the user it was deleted outside Terraform.
    pub fn from_lookup(
        lookup: Result<Option<Value>, Diagnostics>,
        gone: impl FnOnce() -> Diagnostics,
    ) -> ReadResult {
        match lookup {
            Ok(Some(state)) => ReadResult::Found(state, Diagnostics::new()),
            Ok(None) => ReadResult::Gone(gone()),
            Err(diagnostics) => ReadResult::Failed(diagnostics),
        }
    }
}

/// A managed resource.
#[async_trait]
pub trait Resource<P>: Send + Sync {
    /// The full type name, such as `azurecmk_key_vault_key`.
    fn type_name(&self) -> &'static str;

    /// The schema.
    fn schema(&self) -> &Schema;

    /// Checks across attributes that validators on single attributes cannot express.
    fn validate(&self, _config: &Value) -> Diagnostics {
        Diagnostics::new()
    }

    /// Adjusts the framework's plan where the resource knows better, such as values derivable at
    /// plan time or replacement that depends on Azure. The default keeps the framework's plan.
    async fn modify_plan(
        &self,
        _context: &Context<'_, P>,
        _prior: &Value,
        _config: &Value,
        _plan: &mut Plan,
    ) -> Diagnostics {
        Diagnostics::new()
    }

    /// Creates the object described by `planned`.
    async fn create(&self, context: &Context<'_, P>, planned: &Value) -> ApplyResult;

    /// Reads the object's current state.
    async fn read(&self, context: &Context<'_, P>, state: &Value) -> ReadResult;

    /// Updates the object in place.
    async fn update(&self, context: &Context<'_, P>, prior: &Value, planned: &Value)
    -> ApplyResult;

    /// Deletes the object.
    async fn delete(&self, context: &Context<'_, P>, prior: &Value) -> Diagnostics;

    /// Turns an import id into a state that `read` can complete.
    async fn import(&self, context: &Context<'_, P>, id: &str) -> Result<Value, Diagnostics>;
}

/// A data source.
#[async_trait]
pub trait DataSource<P>: Send + Sync {
    /// The full type name.
    fn type_name(&self) -> &'static str;

    /// The schema.
    fn schema(&self) -> &Schema;

    /// Checks across attributes.
    fn validate(&self, _config: &Value) -> Diagnostics {
        Diagnostics::new()
    }

    /// Reads the data described by `config`.
    async fn read(&self, context: &Context<'_, P>, config: &Value) -> Result<Value, Diagnostics>;
}

/// A provider: its own schema and configuration, and the resources it offers.
#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// The configured state handed to resources.
    type Configured: Send + Sync + 'static;

    /// The provider's type name, such as `azurecmk`.
    fn type_name(&self) -> &'static str;

    /// The provider block's schema.
    fn schema(&self) -> &Schema;

    /// Checks of the provider block beyond single attributes.
    fn validate(&self, _config: &Value) -> Diagnostics {
        Diagnostics::new()
    }

    /// Builds the configured state from the provider block.
    async fn configure(&self, config: &Value) -> Result<Self::Configured, Diagnostics>;

    /// The resources.
    fn resources(&self) -> Vec<Arc<dyn Resource<Self::Configured>>>;

    /// The data sources.
    fn data_sources(&self) -> Vec<Arc<dyn DataSource<Self::Configured>>>;
}
