//! Schedules, in front of the triggers service (`/api/schedules/...`): a tenant's chains
//! started on a cron expression in a time zone or every fixed interval, each shown with its
//! next fire times; paused and resumed by an update.
//!
//! The gateway checks schedules:read / schedules:write before calling; the triggers service
//! checks again, makes the schedule's API key with the caller's token, and scopes everything
//! to the caller's tenant (another tenant's schedule is 404). Its wire field names are renamed
//! here to what the client sent (`input_json` -> `input`, `page.page_size` -> `page_size`).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sankalpa_api::schedules::{
    CatchUp, CreateSchedule, Overlap, Schedule, ScheduleList, UpdateSchedule,
};
use sankalpa_kit::problem::Problem;
use sankalpa_proto::v1;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::authn::Caller;
use crate::json::{Body, Page, Rest, next_page, page_request, shown, timestamp};

const READ: &str = "schedules:read";
const WRITE: &str = "schedules:write";

pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(get_one, update, delete))
}

/// A problem from the triggers service, its field names turned into this API's.
fn problem(status: tonic::Status) -> Problem {
    crate::json::renamed(status, rest_field)
}

fn rest_field(field: &str) -> String {
    let field = field.strip_prefix("page.").unwrap_or(field);
    match field {
        "input_json" => "input".to_owned(),
        field => field.to_owned(),
    }
}

fn non_empty(text: String) -> Option<String> {
    Some(text).filter(|text| !text.is_empty())
}

fn overlap_wire(overlap: Overlap) -> v1::ScheduleOverlap {
    match overlap {
        Overlap::Skip => v1::ScheduleOverlap::Skip,
        Overlap::BufferOne => v1::ScheduleOverlap::BufferOne,
        Overlap::Allow => v1::ScheduleOverlap::Allow,
    }
}

fn catch_up_wire(catch_up: CatchUp) -> v1::ScheduleCatchUp {
    match catch_up {
        CatchUp::None => v1::ScheduleCatchUp::None,
        CatchUp::Last => v1::ScheduleCatchUp::Last,
        CatchUp::All => v1::ScheduleCatchUp::All,
    }
}

/// An input as the service takes it, JSON text; whether it is an object is the service's to
/// say.
fn input_json(input: Option<&Value>) -> Option<String> {
    input.map(Value::to_string)
}

impl Rest for v1::Schedule {
    type Shown = Schedule;

    fn rest(self) -> Schedule {
        let overlap = match self.overlap() {
            v1::ScheduleOverlap::BufferOne => Overlap::BufferOne,
            v1::ScheduleOverlap::Allow => Overlap::Allow,
            v1::ScheduleOverlap::Skip | v1::ScheduleOverlap::Unspecified => Overlap::Skip,
        };
        let catch_up = match self.catch_up() {
            v1::ScheduleCatchUp::Last => CatchUp::Last,
            v1::ScheduleCatchUp::All => CatchUp::All,
            v1::ScheduleCatchUp::None | v1::ScheduleCatchUp::Unspecified => CatchUp::None,
        };
        let cron = non_empty(self.cron);
        Schedule {
            overlap,
            catch_up,
            time_zone: cron.as_ref().map(|_| self.time_zone),
            cron,
            interval_seconds: Some(self.interval_seconds).filter(|seconds| *seconds != 0),
            id: self.id,
            tenant_id: self.tenant_id,
            name: self.name,
            chain_id: non_empty(self.chain_id),
            template: non_empty(self.template),
            input: serde_json::from_str(&self.input_json).unwrap_or_default(),
            catch_up_window_seconds: self.catch_up_window_seconds,
            jitter_seconds: self.jitter_seconds,
            paused: self.paused,
            next: self
                .next_fire_times
                .into_iter()
                .filter_map(|at| timestamp(Some(at)))
                .collect(),
            last_tick_at: timestamp(self.last_tick_at),
            last_run_id: non_empty(self.last_run_id),
            last_error: non_empty(self.last_error),
            credential_expires_at: timestamp(self.credential_expires_at),
            created_by: self.created_by,
            created_at: timestamp(self.created_at),
            updated_at: timestamp(self.updated_at),
        }
    }
}

/// Creates a schedule running a stored chain or a template on a cron expression or an
/// interval. Its ticks run with an API key made now from the caller's token, holding what runs
/// need of the caller's permissions; the caller needs chains:execute too.
#[utoipa::path(
    post,
    path = "/api/schedules",
    tag = "schedules",
    request_body = CreateSchedule,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "The schedule, with its next fire times", body = Schedule, headers(("Location" = String, description = "The schedule's URL"))),
        (status = 400, description = "Invalid input, naming the field (`cron`, `time_zone`, `input`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing schedules:write or chains:execute", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The tenant has the most schedules it may have", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Body(body): Body<CreateSchedule>,
) -> Result<Response, Problem> {
    caller.require(WRITE)?;
    let request = v1::CreateScheduleRequest {
        name: body.name,
        cron: body.cron.unwrap_or_default(),
        time_zone: body.time_zone.unwrap_or_default(),
        interval_seconds: body.interval_seconds.unwrap_or(0),
        chain_id: body.chain_id.unwrap_or_default(),
        template: body.template.unwrap_or_default(),
        input_json: input_json(body.input.as_ref()).unwrap_or_default(),
        overlap: body
            .overlap
            .map_or(v1::ScheduleOverlap::Skip, overlap_wire)
            .into(),
        catch_up: body
            .catch_up
            .map_or(v1::ScheduleCatchUp::None, catch_up_wire)
            .into(),
        catch_up_window_seconds: body.catch_up_window_seconds.unwrap_or(0),
        jitter_seconds: body.jitter_seconds.unwrap_or(0),
        paused: body.paused,
    };
    let schedule = state
        .schedules()
        .create_schedule(state.request_as(&caller, request)?)
        .await
        .map_err(problem)?
        .into_inner()
        .schedule;
    let schedule = shown(schedule, "schedule")?;
    let location = format!("/api/schedules/{}", schedule.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(schedule),
    )
        .into_response())
}

/// The caller's tenant's schedules, newest first.
#[utoipa::path(
    get,
    path = "/api/schedules",
    tag = "schedules",
    params(Page),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "One page of schedules", body = ScheduleList),
        (status = 400, description = "Invalid paging, naming the field", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing schedules:read", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(page): Query<Page>,
) -> Result<axum::Json<ScheduleList>, Problem> {
    caller.require(READ)?;
    let request = v1::ListSchedulesRequest {
        page: Some(page_request(page)),
    };
    let response = state
        .schedules()
        .list_schedules(state.request_as(&caller, request)?)
        .await
        .map_err(problem)?
        .into_inner();
    Ok(axum::Json(ScheduleList {
        schedules: response.schedules.into_iter().map(Rest::rest).collect(),
        next_page_token: next_page(response.page),
    }))
}

/// One schedule, with its next fire times.
#[utoipa::path(
    get,
    path = "/api/schedules/{id}",
    tag = "schedules",
    params(("id" = String, Path, description = "The schedule id (a UUID)", pattern = r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32})$")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The schedule", body = Schedule),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing schedules:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such schedule in the caller's tenant", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn get_one(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<Schedule>, Problem> {
    caller.require(READ)?;
    let schedule = state
        .schedules()
        .get_schedule(state.request_as(&caller, v1::GetScheduleRequest { id })?)
        .await
        .map_err(problem)?
        .into_inner()
        .schedule;
    Ok(axum::Json(shown(schedule, "schedule")?))
}

/// Changes the members sent: `paused` pauses or resumes (from the next tick after now), a new
/// `cron` or `interval_seconds` replaces the timing, `renew_credential` replaces the schedule's
/// API key by one made with the caller's token.
#[utoipa::path(
    patch,
    path = "/api/schedules/{id}",
    tag = "schedules",
    params(("id" = String, Path, description = "The schedule id (a UUID)", pattern = r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32})$")),
    request_body = UpdateSchedule,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The schedule as changed", body = Schedule),
        (status = 400, description = "Invalid input, naming the field", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing schedules:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such schedule in the caller's tenant", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn update(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<UpdateSchedule>,
) -> Result<axum::Json<Schedule>, Problem> {
    caller.require(WRITE)?;
    let request = v1::UpdateScheduleRequest {
        id,
        name: body.name,
        cron: body.cron,
        time_zone: body.time_zone,
        interval_seconds: body.interval_seconds,
        input_json: input_json(body.input.as_ref()),
        overlap: body.overlap.map(|overlap| overlap_wire(overlap).into()),
        catch_up: body.catch_up.map(|catch_up| catch_up_wire(catch_up).into()),
        catch_up_window_seconds: body.catch_up_window_seconds,
        jitter_seconds: body.jitter_seconds,
        paused: body.paused,
        renew_credential: body.renew_credential,
    };
    let schedule = state
        .schedules()
        .update_schedule(state.request_as(&caller, request)?)
        .await
        .map_err(problem)?
        .into_inner()
        .schedule;
    Ok(axum::Json(shown(schedule, "schedule")?))
}

/// Removes a schedule and revokes its API key; no tick fires after.
#[utoipa::path(
    delete,
    path = "/api/schedules/{id}",
    tag = "schedules",
    params(("id" = String, Path, description = "The schedule id (a UUID)", pattern = r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32})$")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing schedules:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such schedule in the caller's tenant", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn delete(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    caller.require(WRITE)?;
    state
        .schedules()
        .delete_schedule(state.request_as(&caller, v1::DeleteScheduleRequest { id })?)
        .await
        .map_err(problem)?;
    Ok(StatusCode::NO_CONTENT)
}
