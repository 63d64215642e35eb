//! The services that own what a package describes: the chain orchestrator for chains,
//! agent-runner for custom agents. The marketplace never interprets a package itself: it asks
//! the owner whether a package is valid before accepting it, and has the owner create (or
//! update) the chain or agent when installing it. Every call carries the caller's own token, so
//! the owner checks the caller's permissions and tenant exactly as for a direct call.

use std::time::Duration;

use sankalpa_kit::auth::with_bearer;
use sankalpa_kit::grpc::Peers;
use sankalpa_kit::grpc::TracedChannel;
use sankalpa_kit::problem::FieldViolation;
use sankalpa_proto::v1 as pb;
use sankalpa_proto::v1::agent_service_client::AgentServiceClient;
use sankalpa_proto::v1::auth_service_client::AuthServiceClient;
use sankalpa_proto::v1::chain_service_client::ChainServiceClient;
use tonic::Request;

use crate::error::{MarketError, Result};
use crate::items::Kind;

type Chains = ChainServiceClient<TracedChannel>;
type Agents = AgentServiceClient<TracedChannel>;

pub struct Owners {
    auth: AuthServiceClient<Peers>,
    chains: Chains,
    agents: Agents,
    timeout: Duration,
}

/// What an install makes in the caller's tenant.
pub struct Install<'a> {
    pub kind: Kind,
    pub package: &'a str,
    /// What an earlier install of the same item made (chain id or agent name), which is then
    /// updated to this version instead of a second one being created.
    pub previous_target: Option<&'a str>,
    /// The chain's name and description, from the item.
    pub name: &'a str,
    pub description: &'a str,
    /// "<item id>@<version>", recorded by the owner on what it makes.
    pub installed_from: String,
}

/// The service that owns items of `kind`, as errors name it.
fn owner(kind: Kind) -> &'static str {
    match kind {
        Kind::Chain => "chain orchestrator",
        Kind::Agent => "agent-runner",
    }
}

impl Owners {
    pub fn new(
        auth: AuthServiceClient<Peers>,
        chains_url: &str,
        agents_url: &str,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            auth,
            chains: ChainServiceClient::new(sankalpa_kit::grpc::traced(
                sankalpa_kit::grpc::channel(chains_url)?,
            )),
            agents: AgentServiceClient::new(sankalpa_kit::grpc::traced(
                sankalpa_kit::grpc::channel(agents_url)?,
            )),
            timeout,
        })
    }

    fn request<T>(&self, message: T, token: &str) -> Result<Request<T>> {
        let mut request = with_bearer(message, token).map_err(MarketError::Remote)?;
        request.set_timeout(self.timeout);
        Ok(request)
    }

    /// Ok when the owner accepts `package`; otherwise the problems it named, each field under
    /// `package_json`.
    pub async fn validate(&self, token: &str, kind: Kind, package: &str) -> Result<()> {
        let (valid, violations) = match kind {
            Kind::Chain => {
                let request = self.request(
                    pb::ValidateChainRequest {
                        definition_json: package.to_owned(),
                    },
                    token,
                )?;
                let answer = self
                    .chains
                    .clone()
                    .validate_chain(request)
                    .await
                    .map_err(MarketError::upstream(owner(kind)))?
                    .into_inner();
                (answer.valid, answer.violations)
            }
            Kind::Agent => {
                let request = self.request(
                    pb::ValidateAgentDefinitionRequest {
                        definition_json: package.to_owned(),
                    },
                    token,
                )?;
                let answer = self
                    .agents
                    .clone()
                    .validate_agent_definition(request)
                    .await
                    .map_err(MarketError::upstream(owner(kind)))?
                    .into_inner();
                (answer.valid, answer.violations)
            }
        };
        if valid {
            return Ok(());
        }
        let mut violations: Vec<FieldViolation> = violations
            .into_iter()
            .map(|violation| FieldViolation {
                field: if violation.field.is_empty() {
                    "package_json".to_owned()
                } else {
                    format!("package_json.{}", violation.field)
                },
                message: violation.message,
            })
            .collect();
        if violations.is_empty() {
            violations.push(FieldViolation {
                field: "package_json".to_owned(),
                message: "was refused by its owning service".to_owned(),
            });
        }
        Err(MarketError::InvalidPackage(violations))
    }

    /// Makes the chain or agent in the caller's tenant; answers what it made (the chain's id,
    /// the agent's name).
    pub async fn install(&self, token: &str, install: Install<'_>) -> Result<String> {
        let made = match (install.kind, install.previous_target) {
            (Kind::Chain, None) => {
                let request = self.request(
                    pb::CreateChainRequest {
                        name: install.name.to_owned(),
                        description: install.description.to_owned(),
                        definition_json: install.package.to_owned(),
                        installed_from: install.installed_from,
                    },
                    token,
                )?;
                self.chains
                    .clone()
                    .create_chain(request)
                    .await
                    .map(|c| c.into_inner().id)
            }
            (Kind::Chain, Some(chain_id)) => {
                let request = self.request(
                    pb::UpdateChainRequest {
                        id: chain_id.to_owned(),
                        definition_json: install.package.to_owned(),
                        name: None,
                        description: Some(install.description.to_owned()),
                        expected_version: None,
                        installed_from: install.installed_from,
                    },
                    token,
                )?;
                self.chains
                    .clone()
                    .update_chain(request)
                    .await
                    .map(|c| c.into_inner().id)
            }
            (Kind::Agent, None) => {
                let request = self.request(
                    pb::CreateCustomAgentRequest {
                        definition_json: install.package.to_owned(),
                        installed_from: install.installed_from,
                    },
                    token,
                )?;
                self.agents
                    .clone()
                    .create_custom_agent(request)
                    .await
                    .map(|agent| agent.into_inner().name)
            }
            (Kind::Agent, Some(name)) => {
                let request = self.request(
                    pb::UpdateCustomAgentRequest {
                        name: name.to_owned(),
                        definition_json: install.package.to_owned(),
                        expected_revision: None,
                        installed_from: install.installed_from,
                    },
                    token,
                )?;
                self.agents
                    .clone()
                    .update_custom_agent(request)
                    .await
                    .map(|agent| agent.into_inner().name)
            }
        };
        made.map_err(MarketError::upstream(owner(install.kind)))
    }

    /// The caller's display name (or email) as auth knows it; `fallback` for callers that are
    /// no user (API keys) or when auth cannot say, since a name is decoration, not a reason to
    /// refuse the write.
    pub async fn display_name(&self, token: &str, fallback: &str) -> String {
        let Ok(request) = self.request(pb::MeRequest {}, token) else {
            return fallback.to_owned();
        };
        match self.auth.clone().me(request).await {
            Ok(user) => {
                let user = user.into_inner();
                if user.display_name.is_empty() {
                    user.email
                } else {
                    user.display_name
                }
            }
            Err(_) => fallback.to_owned(),
        }
    }
}
