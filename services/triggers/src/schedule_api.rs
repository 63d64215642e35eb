//! `sankalpa.v1.ScheduleService`: checks the caller's permission, turns wire messages into
//! checked values (each failure naming its field), calls [`crate::schedules`] and
//! [`crate::credentials`], and turns their results back into wire messages.

use std::sync::Arc;

use sankalpa_kit::auth as kit_auth;
use sankalpa_kit::grpc::timestamp;
use sankalpa_kit::paging;
use sankalpa_proto::v1 as pb;
use sankalpa_proto::v1::schedule_service_server::ScheduleService;
use serde_json::Value;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::error::{Result, TriggersError};
use crate::schedules::{self, CatchUp, Changes, NewSchedule, Overlap, Schedule, Target, When};
use crate::{State, input};

const READ: &str = "schedules:read";
const WRITE: &str = "schedules:write";
/// Fire times shown with a schedule.
const NEXT_SHOWN: usize = 5;

pub struct ScheduleApi {
    state: Arc<State>,
}

impl ScheduleApi {
    pub(crate) fn new(state: Arc<State>) -> Self {
        Self { state }
    }
}

type Reply<T> = std::result::Result<Response<T>, Status>;

fn schedule_message(schedule: Schedule) -> pb::Schedule {
    let overlap = match schedule.overlap() {
        Overlap::Skip => pb::ScheduleOverlap::Skip,
        Overlap::BufferOne => pb::ScheduleOverlap::BufferOne,
        Overlap::Allow => pb::ScheduleOverlap::Allow,
    };
    let catch_up = match schedule.catch_up() {
        CatchUp::None => pb::ScheduleCatchUp::None,
        CatchUp::Last => pb::ScheduleCatchUp::Last,
        CatchUp::All => pb::ScheduleCatchUp::All,
    };
    let (chain_id, template) = match schedule.target() {
        Target::Chain(id) => (id.to_string(), String::new()),
        Target::Template(name) => (String::new(), name),
    };
    pb::Schedule {
        next_fire_times: schedule
            .next_fire_times(NEXT_SHOWN)
            .into_iter()
            .map(timestamp)
            .collect(),
        id: schedule.id.to_string(),
        tenant_id: schedule.tenant_id.to_string(),
        name: schedule.name,
        cron: schedule.cron.unwrap_or_default(),
        time_zone: schedule.time_zone,
        interval_seconds: schedule
            .interval_seconds
            .and_then(|seconds| u64::try_from(seconds).ok())
            .unwrap_or(0),
        chain_id,
        template,
        input_json: schedule.input.0.to_string(),
        overlap: overlap.into(),
        catch_up: catch_up.into(),
        catch_up_window_seconds: u64::try_from(schedule.catch_up_window_seconds).unwrap_or(0),
        jitter_seconds: u32::try_from(schedule.jitter_seconds).unwrap_or(0),
        paused: schedule.paused,
        last_tick_at: schedule.last_tick_at.map(timestamp),
        last_run_id: schedule
            .last_run_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        last_error: schedule.last_error,
        credential_expires_at: Some(timestamp(schedule.key_expires_at)),
        created_by: schedule.created_by,
        created_at: Some(timestamp(schedule.created_at)),
        updated_at: Some(timestamp(schedule.updated_at)),
    }
}

pub(crate) fn name(raw: &str) -> Result<String> {
    input::text("name", raw, schedules::MAX_NAME_CHARS)
}

fn overlap(raw: i32) -> Result<Overlap> {
    match pb::ScheduleOverlap::try_from(raw) {
        Ok(pb::ScheduleOverlap::Unspecified | pb::ScheduleOverlap::Skip) => Ok(Overlap::Skip),
        Ok(pb::ScheduleOverlap::BufferOne) => Ok(Overlap::BufferOne),
        Ok(pb::ScheduleOverlap::Allow) => Ok(Overlap::Allow),
        Err(_) => Err(TriggersError::invalid(
            "overlap",
            "must be SKIP, BUFFER_ONE or ALLOW",
        )),
    }
}

fn catch_up(raw: i32) -> Result<CatchUp> {
    match pb::ScheduleCatchUp::try_from(raw) {
        Ok(pb::ScheduleCatchUp::Unspecified | pb::ScheduleCatchUp::None) => Ok(CatchUp::None),
        Ok(pb::ScheduleCatchUp::Last) => Ok(CatchUp::Last),
        Ok(pb::ScheduleCatchUp::All) => Ok(CatchUp::All),
        Err(_) => Err(TriggersError::invalid(
            "catch_up",
            "must be NONE, LAST or ALL",
        )),
    }
}

fn window(seconds: u64) -> Result<u64> {
    if seconds > schedules::MAX_CATCH_UP_WINDOW_SECONDS {
        return Err(TriggersError::invalid(
            "catch_up_window_seconds",
            format!("must be at most {}", schedules::MAX_CATCH_UP_WINDOW_SECONDS),
        ));
    }
    Ok(seconds)
}

fn jitter(seconds: u32) -> Result<u32> {
    if seconds > schedules::MAX_JITTER_SECONDS {
        return Err(TriggersError::invalid(
            "jitter_seconds",
            format!("must be at most {}", schedules::MAX_JITTER_SECONDS),
        ));
    }
    Ok(seconds)
}

/// A run's input: a JSON object of at most [`schedules::MAX_INPUT_BYTES`]; empty is `{}`.
fn run_input(raw: &str) -> Result<Value> {
    if raw.trim().is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    if raw.len() > schedules::MAX_INPUT_BYTES {
        return Err(TriggersError::invalid(
            "input_json",
            format!("must be at most {} bytes", schedules::MAX_INPUT_BYTES),
        ));
    }
    match serde_json::from_str(raw) {
        Ok(value @ Value::Object(_)) if sankalpa_kit::bounded_json::holds_nul(&value) => Err(
            TriggersError::invalid("input_json", sankalpa_kit::bounded_json::NUL_REFUSED),
        ),
        Ok(value @ Value::Object(_)) => Ok(value),
        _ => Err(TriggersError::invalid(
            "input_json",
            "must be a JSON object",
        )),
    }
}

/// The timing asked for: exactly one of a cron expression and an interval; checked.
fn when(cron: &str, zone: &str, interval_seconds: u64) -> Result<When> {
    let when = match (cron.trim(), interval_seconds) {
        ("", 0) => {
            return Err(TriggersError::invalid(
                "cron",
                "one of cron and interval_seconds is required",
            ));
        }
        ("", seconds) => {
            if !zone.trim().is_empty() {
                return Err(TriggersError::invalid(
                    "time_zone",
                    "applies to a cron expression only",
                ));
            }
            When::Every { seconds }
        }
        (expression, 0) => When::Cron {
            expression: expression.to_owned(),
            zone: zone.trim().to_owned(),
        },
        _ => {
            return Err(TriggersError::invalid(
                "interval_seconds",
                "give either cron or interval_seconds, not both",
            ));
        }
    };
    schedules::timing(&when, chrono::Utc::now())?;
    Ok(when)
}

pub(crate) fn target(chain_id: &str, template: &str) -> Result<Target> {
    match (chain_id.trim(), template.trim()) {
        ("", "") => Err(TriggersError::invalid(
            "chain_id",
            "one of chain_id and template is required",
        )),
        (id, "") => Ok(Target::Chain(input::uuid("chain_id", id)?)),
        ("", name) => Ok(Target::Template(input::text(
            "template",
            name,
            schedules::MAX_TEMPLATE_BYTES,
        )?)),
        _ => Err(TriggersError::invalid(
            "template",
            "give either chain_id or template, not both",
        )),
    }
}

/// The caller's bearer token, which auth makes the schedule's key with.
pub(crate) fn caller_token<T>(request: &Request<T>) -> Result<String> {
    kit_auth::bearer_token(request)
        .map(str::to_owned)
        .ok_or_else(|| TriggersError::Precondition("the call carries no bearer token".to_owned()))
}

#[tonic::async_trait]
impl ScheduleService for ScheduleApi {
    async fn create_schedule(
        &self,
        request: Request<pb::CreateScheduleRequest>,
    ) -> Reply<pb::CreateScheduleResponse> {
        let caller = kit_auth::authorize(&request, WRITE)?.clone();
        let tenant = caller.tenant()?;
        let token = caller_token(&request)?;
        let message = request.into_inner();
        let new = NewSchedule {
            name: name(&message.name)?,
            when: when(&message.cron, &message.time_zone, message.interval_seconds)?,
            target: target(&message.chain_id, &message.template)?,
            input: run_input(&message.input_json)?,
            overlap: overlap(message.overlap)?,
            catch_up: catch_up(message.catch_up)?,
            catch_up_window_seconds: window(message.catch_up_window_seconds)?,
            jitter_seconds: jitter(message.jitter_seconds)?,
            paused: message.paused,
        };
        let max = self.state.config.max_schedules_per_tenant;
        // Refused before a key is made for nothing; counted again, locked, when stored.
        let count = schedules::count(&self.state.pool, tenant).await?;
        if count >= max {
            return Err(schedules::exhausted(count).into());
        }
        let id = Uuid::now_v7();
        let key = self
            .state
            .credentials
            .issue(&token, &caller, "schedule", id)
            .await?;
        let created = schedules::create(
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
            Ok(schedule) => Ok(Response::new(pb::CreateScheduleResponse {
                schedule: Some(schedule_message(schedule)),
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

    async fn get_schedule(
        &self,
        request: Request<pb::GetScheduleRequest>,
    ) -> Reply<pb::GetScheduleResponse> {
        let tenant = kit_auth::authorize(&request, READ)?.tenant()?;
        let id = input::uuid("id", &request.get_ref().id)?;
        let schedule = schedules::get(&self.state.pool, tenant, id).await?;
        Ok(Response::new(pb::GetScheduleResponse {
            schedule: Some(schedule_message(schedule)),
        }))
    }

    async fn list_schedules(
        &self,
        request: Request<pb::ListSchedulesRequest>,
    ) -> Reply<pb::ListSchedulesResponse> {
        let tenant = kit_auth::authorize(&request, READ)?.tenant()?;
        let (size, after) =
            paging::after_id(request.get_ref().page.as_ref()).map_err(TriggersError::from)?;
        let mut found = schedules::list(&self.state.pool, tenant, size, after).await?;
        let next = paging::next_token(&mut found, size, |schedule| schedule.id.to_string());
        Ok(Response::new(pb::ListSchedulesResponse {
            schedules: found.into_iter().map(schedule_message).collect(),
            page: paging::response(next),
        }))
    }

    async fn update_schedule(
        &self,
        request: Request<pb::UpdateScheduleRequest>,
    ) -> Reply<pb::UpdateScheduleResponse> {
        let caller = kit_auth::authorize(&request, WRITE)?.clone();
        let tenant = caller.tenant()?;
        let token = caller_token(&request)?;
        let message = request.into_inner();
        let id = input::uuid("id", &message.id)?;
        let timing = match (&message.cron, message.interval_seconds) {
            (None, None) if message.time_zone.is_some() => {
                // A zone alone re-reads the stored expression in it.
                let current = schedules::get(&self.state.pool, tenant, id).await?;
                let Some(expression) = current.cron else {
                    return Err(TriggersError::invalid(
                        "time_zone",
                        "applies to a cron expression only",
                    )
                    .into());
                };
                Some(when(
                    &expression,
                    message.time_zone.as_deref().unwrap_or(""),
                    0,
                )?)
            }
            (None, None) => None,
            (Some(expression), None) if message.time_zone.is_none() => {
                // A new expression alone keeps the zone it is read in.
                let current = schedules::get(&self.state.pool, tenant, id).await?;
                let zone = if current.cron.is_some() {
                    current.time_zone
                } else {
                    String::new()
                };
                Some(when(expression, &zone, 0)?)
            }
            (cron, interval) => Some(when(
                cron.as_deref().unwrap_or(""),
                message.time_zone.as_deref().unwrap_or(""),
                interval.unwrap_or(0),
            )?),
        };
        let mut changes = Changes {
            name: message.name.as_deref().map(name).transpose()?,
            when: timing,
            input: message.input_json.as_deref().map(run_input).transpose()?,
            overlap: message.overlap.map(overlap).transpose()?,
            catch_up: message.catch_up.map(catch_up).transpose()?,
            catch_up_window_seconds: message.catch_up_window_seconds.map(window).transpose()?,
            jitter_seconds: message.jitter_seconds.map(jitter).transpose()?,
            paused: message.paused,
            key: None,
        };
        if message.renew_credential {
            // Another tenant's schedule gets no key made for it.
            schedules::get(&self.state.pool, tenant, id).await?;
            changes.key = Some(
                self.state
                    .credentials
                    .issue(&token, &caller, "schedule", id)
                    .await?,
            );
        }
        let new_key = changes
            .key
            .as_ref()
            .map(|key| (key.key_id.clone(), key.secret.clone()));
        let updated = schedules::update(&self.state.pool, tenant, id, changes).await;
        let (schedule, replaced) = match updated {
            Ok(updated) => updated,
            Err(err) => {
                if let Some((key_id, secret)) = new_key {
                    self.state.credentials.revoke(id, &key_id, &secret).await;
                }
                return Err(err.into());
            }
        };
        if let Some((key_id, secret)) = replaced {
            self.state.credentials.revoke(id, &key_id, &secret).await;
        }
        Ok(Response::new(pb::UpdateScheduleResponse {
            schedule: Some(schedule_message(schedule)),
        }))
    }

    async fn delete_schedule(
        &self,
        request: Request<pb::DeleteScheduleRequest>,
    ) -> Reply<pb::DeleteScheduleResponse> {
        let tenant = kit_auth::authorize(&request, WRITE)?.tenant()?;
        let id = input::uuid("id", &request.get_ref().id)?;
        let (key_id, secret) = schedules::delete(&self.state.pool, tenant, id).await?;
        self.state.credentials.revoke(id, &key_id, &secret).await;
        Ok(Response::new(pb::DeleteScheduleResponse {}))
    }
}
