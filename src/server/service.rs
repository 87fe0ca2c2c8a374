//! The `Provider` gRPC service over a framework [`Provider`].

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use crate::framework::diag::{Diagnostic, Diagnostics};
use crate::framework::plan::{self, Change};
use crate::framework::resource::{Context, DataSource, Provider, ReadResult, Resource};
use crate::framework::schema::Schema;
use crate::framework::value::Value;

use super::convert::{self, decode, encode};
use super::proto::{self, provider_server};

type Reply<T> = Result<Response<T>, Status>;

/// Serves one framework provider over tfplugin6.
pub struct ProviderService<P: Provider> {
    provider: P,
    resources: HashMap<&'static str, Arc<dyn Resource<P::Configured>>>,
    data_sources: HashMap<&'static str, Arc<dyn DataSource<P::Configured>>>,
    configured: OnceLock<P::Configured>,
    stop: CancellationToken,
}

/// The gRPC routes serving `provider`, ready for the plugin transport.
pub fn routes<P: Provider>(provider: P) -> tonic::service::Routes {
    let server = provider_server::ProviderServer::new(ProviderService::new(provider))
        .max_decoding_message_size(crate::plugin::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(crate::plugin::MAX_MESSAGE_BYTES);
    tonic::service::Routes::new(server)
}

impl<P: Provider> ProviderService<P> {
    /// Indexes the provider's resources and data sources by type name.
    pub fn new(provider: P) -> ProviderService<P> {
        let resources = provider.resources().into_iter().map(|r| (r.type_name(), r)).collect();
        let data_sources =
            provider.data_sources().into_iter().map(|d| (d.type_name(), d)).collect();
        ProviderService {
            provider,
            resources,
            data_sources,
            configured: OnceLock::new(),
            stop: CancellationToken::new(),
        }
    }

    fn resource(&self, type_name: &str) -> Result<&Arc<dyn Resource<P::Configured>>, Diagnostics> {
        self.resources.get(type_name).ok_or_else(|| unknown_type("resource", type_name))
    }

    fn data_source(
        &self,
        type_name: &str,
    ) -> Result<&Arc<dyn DataSource<P::Configured>>, Diagnostics> {
        self.data_sources.get(type_name).ok_or_else(|| unknown_type("data source", type_name))
    }

    fn context(&self) -> Result<Context<'_, P::Configured>, Diagnostics> {
        let provider = self.configured.get().ok_or_else(|| {
            Diagnostics::from(Diagnostic::error(
                "Provider not configured",
                "Terraform called the provider before configuring it. This is a bug in the \
                 provider or in Terraform; please report it.",
            ))
        })?;
        Ok(Context { provider, cancel: self.stop.clone() })
    }

    fn schema_response(&self) -> proto::get_provider_schema::Response {
        let resource_schemas = self
            .resources
            .iter()
            .map(|(name, resource)| (name.to_string(), convert::schema(resource.schema())))
            .collect();
        let data_source_schemas = self
            .data_sources
            .iter()
            .map(|(name, source)| (name.to_string(), convert::schema(source.schema())))
            .collect();
        proto::get_provider_schema::Response {
            provider: Some(convert::schema(self.provider.schema())),
            resource_schemas,
            data_source_schemas,
            server_capabilities: Some(capabilities()),
            ..Default::default()
        }
    }

    async fn configure(&self, request: proto::configure_provider::Request) -> Diagnostics {
        let schema = self.provider.schema();
        let config = match decode(request.config.as_ref(), &schema.value_type()) {
            Ok(config) => config,
            Err(diagnostics) => return diagnostics,
        };
        match self.provider.configure(&config).await {
            Ok(configured) => {
                // Terraform configures each provider process once; a second call keeps the first.
                let _ = self.configured.set(configured);
                Diagnostics::new()
            }
            Err(diagnostics) => diagnostics,
        }
    }

    async fn read(&self, request: proto::read_resource::Request) -> proto::read_resource::Response {
        let mut response = proto::read_resource::Response {
            new_state: request.current_state.clone(),
            private: request.private.clone(),
            ..Default::default()
        };
        let outcome = async {
            let resource = self.resource(&request.type_name)?;
            let ty = resource.schema().value_type();
            let state = decode(request.current_state.as_ref(), &ty)?;
            let context = self.context()?;
            Ok::<_, Diagnostics>(match resource.read(&context, &state).await {
                ReadResult::Found(state, diagnostics) => (Some(encode(&state, &ty)), diagnostics),
                ReadResult::Gone(diagnostics) => (Some(encode(&Value::Null, &ty)), diagnostics),
                ReadResult::Failed(diagnostics) => (None, diagnostics),
            })
        }
        .await;
        match outcome {
            Ok((new_state, diagnostics)) => {
                if new_state.is_some() {
                    response.new_state = new_state;
                }
                response.diagnostics = convert::diagnostics(diagnostics);
            }
            Err(diagnostics) => response.diagnostics = convert::diagnostics(diagnostics),
        }
        response
    }

    async fn plan(
        &self,
        request: proto::plan_resource_change::Request,
    ) -> Result<proto::plan_resource_change::Response, Diagnostics> {
        let resource = self.resource(&request.type_name)?;
        let ty = resource.schema().value_type();
        let prior = decode(request.prior_state.as_ref(), &ty)?;
        let proposed = decode(request.proposed_new_state.as_ref(), &ty)?;
        let config = decode(request.config.as_ref(), &ty)?;

        let mut planned = plan::plan_resource(resource.schema(), &prior, &proposed, &config);
        let mut diagnostics = Diagnostics::new();
        if Change::between(&prior, &proposed) != Change::Destroy {
            let context = self.context()?;
            diagnostics = resource.modify_plan(&context, &prior, &config, &mut planned).await;
        }
        Ok(proto::plan_resource_change::Response {
            planned_state: Some(encode(&planned.planned_state, &ty)),
            requires_replace: planned
                .requires_replace
                .iter()
                .map(convert::attribute_path)
                .collect(),
            planned_private: request.prior_private,
            diagnostics: convert::diagnostics(diagnostics),
            ..Default::default()
        })
    }

    async fn apply(
        &self,
        request: proto::apply_resource_change::Request,
    ) -> Result<proto::apply_resource_change::Response, Diagnostics> {
        let resource = self.resource(&request.type_name)?;
        let ty = resource.schema().value_type();
        let prior = decode(request.prior_state.as_ref(), &ty)?;
        let planned = decode(request.planned_state.as_ref(), &ty)?;
        let context = self.context()?;

        let (new_state, diagnostics) = match Change::between(&prior, &planned) {
            Change::Destroy => {
                let diagnostics = resource.delete(&context, &prior).await;
                // A failed delete keeps the object in state so the next run can try again.
                let kept = if diagnostics.has_errors() { prior } else { Value::Null };
                (kept, diagnostics)
            }
            Change::Create => {
                let result = resource.create(&context, &planned).await;
                (result.state.unwrap_or(Value::Null), result.diagnostics)
            }
            Change::Update => {
                let result = resource.update(&context, &prior, &planned).await;
                (result.state.unwrap_or(prior), result.diagnostics)
            }
        };
        Ok(proto::apply_resource_change::Response {
            new_state: Some(encode(&without_unknowns(new_state), &ty)),
            private: request.planned_private,
            diagnostics: convert::diagnostics(diagnostics),
            ..Default::default()
        })
    }

    async fn import(
        &self,
        request: proto::import_resource_state::Request,
    ) -> Result<proto::import_resource_state::Response, Diagnostics> {
        let resource = self.resource(&request.type_name)?;
        let ty = resource.schema().value_type();
        let context = self.context()?;
        let state = resource.import(&context, request.id.trim()).await?;
        Ok(proto::import_resource_state::Response {
            imported_resources: vec![proto::import_resource_state::ImportedResource {
                type_name: request.type_name,
                state: Some(encode(&state, &ty)),
                ..Default::default()
            }],
            ..Default::default()
        })
    }

    fn upgrade(
        &self,
        request: proto::upgrade_resource_state::Request,
    ) -> Result<proto::upgrade_resource_state::Response, Diagnostics> {
        let resource = self.resource(&request.type_name)?;
        let schema = resource.schema();
        if request.version > schema.version {
            return Err(newer_state(&request.type_name, request.version, schema));
        }
        let ty = schema.value_type();
        let json = request.raw_state.map(|raw| raw.json).unwrap_or_default();
        // Every version so far shares one shape; attributes added since read as null.
        let state = if json.is_empty() {
            Value::Null
        } else {
            crate::framework::codec::from_json(&json, &ty).map_err(|error| {
                Diagnostics::from(Diagnostic::error(
                    "Unreadable state",
                    format!(
                        "The stored state of this {} could not be read: {error}.",
                        request.type_name
                    ),
                ))
            })?
        };
        Ok(proto::upgrade_resource_state::Response {
            upgraded_state: Some(encode(&state, &ty)),
            diagnostics: Vec::new(),
        })
    }

    async fn read_data(
        &self,
        request: proto::read_data_source::Request,
    ) -> Result<proto::read_data_source::Response, Diagnostics> {
        let source = self.data_source(&request.type_name)?;
        let ty = source.schema().value_type();
        let config = decode(request.config.as_ref(), &ty)?;
        let context = self.context()?;
        let state = source.read(&context, &config).await?;
        Ok(proto::read_data_source::Response {
            state: Some(encode(&state, &ty)),
            ..Default::default()
        })
    }

    fn validate_with(
        &self,
        schema: &Schema,
        config: Option<&proto::DynamicValue>,
    ) -> (Value, Diagnostics) {
        match decode(config, &schema.value_type()) {
            Ok(value) => {
                let diagnostics = plan::validate_config(&schema.block, &value);
                (value, diagnostics)
            }
            Err(diagnostics) => (Value::Null, diagnostics),
        }
    }
}

fn capabilities() -> proto::ServerCapabilities {
    proto::ServerCapabilities {
        plan_destroy: true,
        get_provider_schema_optional: false,
        move_resource_state: false,
    }
}

fn unknown_type(kind: &str, type_name: &str) -> Diagnostics {
    Diagnostic::error(
        format!("Unknown {kind} type"),
        format!(
            "This provider has no {kind} called {type_name:?}. Check the spelling, and that the \
             provider version you installed offers it."
        ),
    )
    .into()
}

fn newer_state(type_name: &str, version: i64, schema: &Schema) -> Diagnostics {
    Diagnostic::error(
        "State from a newer provider",
        format!(
            "This {type_name} was saved by a provider with schema version {version}, newer than \
             this provider's {}. Upgrade the provider to the version that wrote the state.",
            schema.version
        ),
    )
    .into()
}

fn not_offered(what: &str) -> Vec<proto::Diagnostic> {
    convert::diagnostics(
        Diagnostic::error(
            format!("{what} not supported"),
            format!("The azurecmk provider offers no {what}."),
        )
        .into(),
    )
}

/// Unknown values cannot be stored in state; a resource that leaves one is a provider bug, and
/// null lets Terraform report the inconsistency against the plan instead of failing to decode.
fn without_unknowns(value: Value) -> Value {
    match value {
        Value::Unknown => Value::Null,
        Value::List(items) => Value::List(items.into_iter().map(without_unknowns).collect()),
        Value::Set(items) => Value::Set(items.into_iter().map(without_unknowns).collect()),
        Value::Map(entries) => {
            Value::Map(entries.into_iter().map(|(k, v)| (k, without_unknowns(v))).collect())
        }
        Value::Object(entries) => {
            Value::Object(entries.into_iter().map(|(k, v)| (k, without_unknowns(v))).collect())
        }
        other => other,
    }
}

fn rpc_span(rpc: &'static str, type_name: &str) -> tracing::Span {
    let request_id = uuid::Uuid::new_v4().to_string();
    tracing::debug_span!("rpc", tf_rpc = rpc, tf_resource_type = type_name, tf_req_id = %request_id)
}

#[tonic::async_trait]
impl<P: Provider> provider_server::Provider for ProviderService<P> {
    async fn get_metadata(
        &self,
        _request: Request<proto::get_metadata::Request>,
    ) -> Reply<proto::get_metadata::Response> {
        use proto::get_metadata::{DataSourceMetadata, ResourceMetadata};
        let resources =
            self.resources.keys().map(|n| ResourceMetadata { type_name: n.to_string() }).collect();
        let data_sources = self
            .data_sources
            .keys()
            .map(|n| DataSourceMetadata { type_name: n.to_string() })
            .collect();
        Ok(Response::new(proto::get_metadata::Response {
            server_capabilities: Some(capabilities()),
            resources,
            data_sources,
            ..Default::default()
        }))
    }

    async fn get_provider_schema(
        &self,
        _request: Request<proto::get_provider_schema::Request>,
    ) -> Reply<proto::get_provider_schema::Response> {
        let _span = rpc_span("GetProviderSchema", "").entered();
        Ok(Response::new(self.schema_response()))
    }

    async fn validate_provider_config(
        &self,
        request: Request<proto::validate_provider_config::Request>,
    ) -> Reply<proto::validate_provider_config::Response> {
        let request = request.into_inner();
        let (config, mut diagnostics) =
            self.validate_with(self.provider.schema(), request.config.as_ref());
        if !config.is_null() {
            diagnostics.extend(self.provider.validate(&config));
        }
        Ok(Response::new(proto::validate_provider_config::Response {
            diagnostics: convert::diagnostics(diagnostics),
        }))
    }

    async fn validate_resource_config(
        &self,
        request: Request<proto::validate_resource_config::Request>,
    ) -> Reply<proto::validate_resource_config::Response> {
        let request = request.into_inner();
        let diagnostics = match self.resource(&request.type_name) {
            Ok(resource) => {
                let (config, mut diagnostics) =
                    self.validate_with(resource.schema(), request.config.as_ref());
                if !config.is_null() {
                    diagnostics.extend(resource.validate(&config));
                }
                diagnostics
            }
            Err(diagnostics) => diagnostics,
        };
        Ok(Response::new(proto::validate_resource_config::Response {
            diagnostics: convert::diagnostics(diagnostics),
        }))
    }

    async fn validate_data_resource_config(
        &self,
        request: Request<proto::validate_data_resource_config::Request>,
    ) -> Reply<proto::validate_data_resource_config::Response> {
        let request = request.into_inner();
        let diagnostics = match self.data_source(&request.type_name) {
            Ok(source) => {
                let (config, mut diagnostics) =
                    self.validate_with(source.schema(), request.config.as_ref());
                if !config.is_null() {
                    diagnostics.extend(source.validate(&config));
                }
                diagnostics
            }
            Err(diagnostics) => diagnostics,
        };
        Ok(Response::new(proto::validate_data_resource_config::Response {
            diagnostics: convert::diagnostics(diagnostics),
        }))
    }

    async fn upgrade_resource_state(
        &self,
        request: Request<proto::upgrade_resource_state::Request>,
    ) -> Reply<proto::upgrade_resource_state::Response> {
        let request = request.into_inner();
        let _span = rpc_span("UpgradeResourceState", &request.type_name).entered();
        Ok(Response::new(self.upgrade(request).unwrap_or_else(|diagnostics| {
            proto::upgrade_resource_state::Response {
                upgraded_state: None,
                diagnostics: convert::diagnostics(diagnostics),
            }
        })))
    }

    async fn get_resource_identity_schemas(
        &self,
        _request: Request<proto::get_resource_identity_schemas::Request>,
    ) -> Reply<proto::get_resource_identity_schemas::Response> {
        Ok(Response::new(Default::default()))
    }

    async fn upgrade_resource_identity(
        &self,
        _request: Request<proto::upgrade_resource_identity::Request>,
    ) -> Reply<proto::upgrade_resource_identity::Response> {
        Ok(Response::new(proto::upgrade_resource_identity::Response {
            upgraded_identity: None,
            diagnostics: not_offered("resource identities"),
        }))
    }

    async fn configure_provider(
        &self,
        request: Request<proto::configure_provider::Request>,
    ) -> Reply<proto::configure_provider::Response> {
        let span = rpc_span("ConfigureProvider", "");
        let diagnostics = self.configure(request.into_inner()).instrument(span).await;
        Ok(Response::new(proto::configure_provider::Response {
            diagnostics: convert::diagnostics(diagnostics),
        }))
    }

    async fn read_resource(
        &self,
        request: Request<proto::read_resource::Request>,
    ) -> Reply<proto::read_resource::Response> {
        let request = request.into_inner();
        let span = rpc_span("ReadResource", &request.type_name);
        Ok(Response::new(self.read(request).instrument(span).await))
    }

    async fn plan_resource_change(
        &self,
        request: Request<proto::plan_resource_change::Request>,
    ) -> Reply<proto::plan_resource_change::Response> {
        let request = request.into_inner();
        let span = rpc_span("PlanResourceChange", &request.type_name);
        let response = self.plan(request).instrument(span).await;
        Ok(Response::new(response.unwrap_or_else(|diagnostics| {
            proto::plan_resource_change::Response {
                diagnostics: convert::diagnostics(diagnostics),
                ..Default::default()
            }
        })))
    }

    async fn apply_resource_change(
        &self,
        request: Request<proto::apply_resource_change::Request>,
    ) -> Reply<proto::apply_resource_change::Response> {
        let request = request.into_inner();
        let span = rpc_span("ApplyResourceChange", &request.type_name);
        let prior_state = request.prior_state.clone();
        let response = self.apply(request).instrument(span).await;
        Ok(Response::new(response.unwrap_or_else(|diagnostics| {
            // Could not even start: keep whatever Terraform had.
            proto::apply_resource_change::Response {
                new_state: prior_state,
                diagnostics: convert::diagnostics(diagnostics),
                ..Default::default()
            }
        })))
    }

    async fn import_resource_state(
        &self,
        request: Request<proto::import_resource_state::Request>,
    ) -> Reply<proto::import_resource_state::Response> {
        let request = request.into_inner();
        let span = rpc_span("ImportResourceState", &request.type_name);
        let response = self.import(request).instrument(span).await;
        Ok(Response::new(response.unwrap_or_else(|diagnostics| {
            proto::import_resource_state::Response {
                diagnostics: convert::diagnostics(diagnostics),
                ..Default::default()
            }
        })))
    }

    async fn move_resource_state(
        &self,
        _request: Request<proto::move_resource_state::Request>,
    ) -> Reply<proto::move_resource_state::Response> {
        Ok(Response::new(proto::move_resource_state::Response {
            diagnostics: not_offered("moving state between resource types"),
            ..Default::default()
        }))
    }

    async fn read_data_source(
        &self,
        request: Request<proto::read_data_source::Request>,
    ) -> Reply<proto::read_data_source::Response> {
        let request = request.into_inner();
        let span = rpc_span("ReadDataSource", &request.type_name);
        let response = self.read_data(request).instrument(span).await;
        Ok(Response::new(response.unwrap_or_else(|diagnostics| {
            proto::read_data_source::Response {
                diagnostics: convert::diagnostics(diagnostics),
                ..Default::default()
            }
        })))
    }

    async fn validate_ephemeral_resource_config(
        &self,
        _request: Request<proto::validate_ephemeral_resource_config::Request>,
    ) -> Reply<proto::validate_ephemeral_resource_config::Response> {
        Ok(Response::new(proto::validate_ephemeral_resource_config::Response {
            diagnostics: not_offered("ephemeral resources"),
        }))
    }

    async fn open_ephemeral_resource(
        &self,
        _request: Request<proto::open_ephemeral_resource::Request>,
    ) -> Reply<proto::open_ephemeral_resource::Response> {
        Ok(Response::new(proto::open_ephemeral_resource::Response {
            diagnostics: not_offered("ephemeral resources"),
            ..Default::default()
        }))
    }

    async fn renew_ephemeral_resource(
        &self,
        _request: Request<proto::renew_ephemeral_resource::Request>,
    ) -> Reply<proto::renew_ephemeral_resource::Response> {
        Ok(Response::new(proto::renew_ephemeral_resource::Response {
            diagnostics: not_offered("ephemeral resources"),
            ..Default::default()
        }))
    }

    async fn close_ephemeral_resource(
        &self,
        _request: Request<proto::close_ephemeral_resource::Request>,
    ) -> Reply<proto::close_ephemeral_resource::Response> {
        Ok(Response::new(proto::close_ephemeral_resource::Response {
            diagnostics: not_offered("ephemeral resources"),
        }))
    }

    async fn get_functions(
        &self,
        _request: Request<proto::get_functions::Request>,
    ) -> Reply<proto::get_functions::Response> {
        Ok(Response::new(Default::default()))
    }

    async fn call_function(
        &self,
        request: Request<proto::call_function::Request>,
    ) -> Reply<proto::call_function::Response> {
        let name = request.into_inner().name;
        Ok(Response::new(proto::call_function::Response {
            result: None,
            error: Some(proto::FunctionError {
                text: format!("the azurecmk provider has no function called {name:?}"),
                function_argument: None,
            }),
        }))
    }

    async fn stop_provider(
        &self,
        _request: Request<proto::stop_provider::Request>,
    ) -> Reply<proto::stop_provider::Response> {
        tracing::info!(tf_rpc = "StopProvider", "stop requested: cancelling in-flight operations");
        self.stop.cancel();
        Ok(Response::new(proto::stop_provider::Response { error: String::new() }))
    }
}
