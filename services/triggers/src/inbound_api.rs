//! `sankalpa.v1.InboundTriggerService` (a tenant's triggers, with its token) and
//! `sankalpa.v1.WebhookReceiverService` (requests to them, authenticated by their signature
//! alone; served without the token check).

use std::sync::Arc;

use chrono::Utc;
use sankalpa_kit::auth as kit_auth;
use sankalpa_kit::grpc::timestamp;
use sankalpa_kit::paging;
use sankalpa_proto::v1 as pb;
use sankalpa_proto::v1::inbound_trigger_service_server::InboundTriggerService;
use sankalpa_proto::v1::webhook_receiver_service_server::WebhookReceiverService;
use serde_json::Value;
use tonic::{Code, Request, Response, Status};
use uuid::Uuid;

use crate::error::{Result, TriggersError};
use crate::inbound::{self, NewTrigger, Signature, Trigger};
use crate::schedule_api::{caller_token, name, target};
use crate::schedules::{MAX_INPUT_BYTES, Target};
use crate::{State, firing, input, signing};

const READ: &str = "webhooks:read";
const WRITE: &str = "webhooks:write";
/// The largest request body a trigger takes; the gateway refuses larger ones first.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// The most headers, and query parameters, a request may carry to a trigger.
pub const MAX_PARTS: usize = 100;

pub struct InboundApi {
    state: Arc<State>,
}

impl InboundApi {
    pub(crate) fn new(state: Arc<State>) -> Self {
        Self { state }
    }
}

type Reply<T> = std::result::Result<Response<T>, Status>;

fn trigger_message(trigger: Trigger) -> pb::InboundTrigger {
    let signature = match trigger.signature() {
        Signature::Standard => pb::InboundSignature::Standard,
        Signature::GitHub => pb::InboundSignature::Github,
    };
    let (chain_id, template) = match trigger.target() {
        Target::Chain(id) => (id.to_string(), String::new()),
        Target::Template(name) => (String::new(), name),
    };
    pb::InboundTrigger {
        id: trigger.id.to_string(),
        tenant_id: trigger.tenant_id.to_string(),
        name: trigger.name,
        chain_id,
        template,
        input_mapping_json: trigger.input_mapping.0.to_string(),
        signature: signature.into(),
        enabled: trigger.enabled,
        credential_expires_at: Some(timestamp(trigger.key_expires_at)),
        created_by: trigger.created_by,
        created_at: Some(timestamp(trigger.created_at)),
        updated_at: Some(timestamp(trigger.updated_at)),
    }
}

fn signature(raw: i32) -> Result<Signature> {
    match pb::InboundSignature::try_from(raw) {
        Ok(pb::InboundSignature::Unspecified | pb::InboundSignature::Standard) => {
            Ok(Signature::Standard)
        }
        Ok(pb::InboundSignature::Github) => Ok(Signature::GitHub),
        Err(_) => Err(TriggersError::invalid(
            "signature",
            "must be STANDARD or GITHUB",
        )),
    }
}

#[tonic::async_trait]
impl InboundTriggerService for InboundApi {
    async fn create_inbound_trigger(
        &self,
        request: Request<pb::CreateInboundTriggerRequest>,
    ) -> Reply<pb::CreateInboundTriggerResponse> {
        let caller = kit_auth::authorize(&request, WRITE)?.clone();
        let tenant = caller.tenant()?;
        let token = caller_token(&request)?;
        let message = request.into_inner();
        let new = NewTrigger {
            name: name(&message.name)?,
            target: target(&message.chain_id, &message.template)?,
            input_mapping: inbound::check_mapping(&message.input_mapping_json, MAX_INPUT_BYTES)?,
            signature: signature(message.signature)?,
            signing_secret: signing::new_secret(),
        };
        let max = self.state.config.max_inbound_triggers_per_tenant;
        let count = inbound::count(&self.state.pool, tenant).await?;
        if count >= max {
            return Err(inbound::exhausted(count).into());
        }
        let id = Uuid::now_v7();
        let key = self
            .state
            .credentials
            .issue(&token, &caller, "trigger", id)
            .await?;
        let signing_secret = new.signing_secret.clone();
        let created = inbound::create(
            &self.state.pool,
            tenant,
            id,
            &caller.subject,
            new,
            &key,
            max,
        )
        .await;
        match created {
            Ok(trigger) => Ok(Response::new(pb::CreateInboundTriggerResponse {
                trigger: Some(trigger_message(trigger)),
                secret: signing_secret,
            })),
            Err(err) => {
                self.state
                    .credentials
                    .revoke(id, &key.key_id, &key.secret)
                    .await;
                Err(err.into())
            }
        }
    }

    async fn get_inbound_trigger(
        &self,
        request: Request<pb::GetInboundTriggerRequest>,
    ) -> Reply<pb::GetInboundTriggerResponse> {
        let tenant = kit_auth::authorize(&request, READ)?.tenant()?;
        let id = input::uuid("id", &request.get_ref().id)?;
        let trigger = inbound::get(&self.state.pool, tenant, id).await?;
        Ok(Response::new(pb::GetInboundTriggerResponse {
            trigger: Some(trigger_message(trigger)),
        }))
    }

    async fn list_inbound_triggers(
        &self,
        request: Request<pb::ListInboundTriggersRequest>,
    ) -> Reply<pb::ListInboundTriggersResponse> {
        let tenant = kit_auth::authorize(&request, READ)?.tenant()?;
        let (size, after) =
            paging::after_id(request.get_ref().page.as_ref()).map_err(TriggersError::from)?;
        let mut found = inbound::list(&self.state.pool, tenant, size, after).await?;
        let next = paging::next_token(&mut found, size, |trigger| trigger.id.to_string());
        Ok(Response::new(pb::ListInboundTriggersResponse {
            triggers: found.into_iter().map(trigger_message).collect(),
            page: paging::response(next),
        }))
    }

    async fn update_inbound_trigger(
        &self,
        request: Request<pb::UpdateInboundTriggerRequest>,
    ) -> Reply<pb::UpdateInboundTriggerResponse> {
        let tenant = kit_auth::authorize(&request, WRITE)?.tenant()?;
        let message = request.into_inner();
        let id = input::uuid("id", &message.id)?;
        let mapping = message
            .input_mapping_json
            .as_deref()
            .map(|raw| {
                if raw.trim().is_empty() {
                    return Err(TriggersError::invalid(
                        "input_mapping_json",
                        "must be a JSON object",
                    ));
                }
                inbound::check_mapping(raw, MAX_INPUT_BYTES)
            })
            .transpose()?;
        let trigger = inbound::update(
            &self.state.pool,
            tenant,
            id,
            message.name.as_deref().map(name).transpose()?,
            mapping,
            message.enabled,
        )
        .await?;
        Ok(Response::new(pb::UpdateInboundTriggerResponse {
            trigger: Some(trigger_message(trigger)),
        }))
    }

    async fn delete_inbound_trigger(
        &self,
        request: Request<pb::DeleteInboundTriggerRequest>,
    ) -> Reply<pb::DeleteInboundTriggerResponse> {
        let tenant = kit_auth::authorize(&request, WRITE)?.tenant()?;
        let id = input::uuid("id", &request.get_ref().id)?;
        let (key_id, secret) = inbound::delete(&self.state.pool, tenant, id).await?;
        self.state.credentials.revoke(id, &key_id, &secret).await;
        Ok(Response::new(pb::DeleteInboundTriggerResponse {}))
    }
}

#[tonic::async_trait]
impl WebhookReceiverService for InboundApi {
    async fn receive_webhook(
        &self,
        request: Request<pb::ReceiveWebhookRequest>,
    ) -> Reply<pb::ReceiveWebhookResponse> {
        let message = request.into_inner();
        // An id that is no UUID names no trigger: the same answer as an unknown one.
        let id = Uuid::parse_str(message.trigger_id.trim())
            .map_err(|_| TriggersError::NotFound("trigger"))?;
        if message.body.len() > MAX_BODY_BYTES {
            return Err(TriggersError::invalid("body", "must be at most 1 MiB").into());
        }
        if message.headers.len() > MAX_PARTS || message.query.len() > MAX_PARTS {
            return Err(TriggersError::invalid(
                "headers",
                "at most 100 headers and 100 query parameters",
            )
            .into());
        }
        let trigger = inbound::find(&self.state.pool, id).await?;
        let webhook_id = inbound::verify(
            trigger.signature(),
            &trigger.signing_secret,
            &message.headers,
            &message.body,
            Utc::now(),
        )?;
        let body = serde_json::from_slice(&message.body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&message.body).into_owned()));
        let input = inbound::Request {
            body,
            headers: &message.headers,
            query: &message.query,
        }
        .map(&trigger.input_mapping.0);
        if input.to_string().len() > MAX_INPUT_BYTES {
            return Err(TriggersError::invalid("body", "the mapped input is over 64 KiB").into());
        }
        let token = self
            .state
            .credentials
            .token(trigger.id, &trigger.secret)
            .await?;
        let key = format!("trigger:{}:{webhook_id}", trigger.id);
        let started = firing::execute(&self.state, &token, trigger.target(), &input, key).await?;
        metrics::counter!("triggers_inbound_requests_total", "outcome" => if started.is_ok() { "started" } else { "refused" }).increment(1);
        match started {
            Ok(run) => Ok(Response::new(pb::ReceiveWebhookResponse {
                run_id: run.to_string(),
            })),
            // The mapped input does not fit the chain: the sender's to fix.
            Err(status) if status.code() == Code::InvalidArgument => {
                Err(TriggersError::invalid("body", status.message()).into())
            }
            Err(status) => Err(TriggersError::Precondition(format!(
                "the orchestrator refused the run: {}",
                status.message()
            ))
            .into()),
        }
    }
}

pub fn describe_metrics() {
    metrics::describe_counter!(
        "triggers_inbound_requests_total",
        "Signed requests to inbound triggers, by outcome: started (a run, or the run of a \
         redelivery), refused (by the orchestrator)."
    );
}
