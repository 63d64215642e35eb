//! Schedules: a tenant's chain started by the triggers service on a cron expression in a time
//! zone or every fixed interval (`/api/schedules/...`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// What a tick does while the run of an earlier tick is unfinished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    /// The tick starts no run (the default).
    Skip,
    /// The tick waits for the run to finish; a later tick replaces a waiting one.
    BufferOne,
    /// The tick starts its run anyway.
    Allow,
}

/// Which ticks missed while no triggers replica could fire them fire late.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    /// None: a tick more than a minute (plus the jitter) late is given up (the default).
    None,
    /// The latest missed tick.
    Last,
    /// Every missed tick within `catch_up_window_seconds`, at most the latest 100.
    All,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Schedule {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    /// The cron expression (5 fields, or 6 with seconds first); absent for an interval.
    pub cron: Option<String>,
    /// The IANA time zone the cron expression is read in.
    pub time_zone: Option<String>,
    /// Seconds between ticks, counted from the creation; absent for a cron expression.
    pub interval_seconds: Option<u64>,
    /// The stored chain each tick runs, at its latest version ...
    pub chain_id: Option<String>,
    /// ... or the template.
    pub template: Option<String>,
    /// The input of each run.
    #[schema(value_type = Object)]
    pub input: Value,
    pub overlap: Overlap,
    pub catch_up: CatchUp,
    pub catch_up_window_seconds: u64,
    /// Each tick fires up to this many seconds late, at random.
    pub jitter_seconds: u32,
    pub paused: bool,
    /// The next (at most 5) fire times, before jitter; empty while paused.
    pub next: Vec<DateTime<Utc>>,
    /// The latest tick handled (fired or skipped).
    pub last_tick_at: Option<DateTime<Utc>>,
    /// The run the latest fired tick started.
    pub last_run_id: Option<String>,
    /// Why the latest tick started no run; absent when it started one.
    pub last_error: Option<String>,
    /// When the schedule's API key expires; renew it before (`renew_credential`).
    pub credential_expires_at: Option<DateTime<Utc>>,
    pub created_by: String,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "nightly digest", "cron": "0 30 6 * * 1-5", "time_zone": "Europe/Paris", "template": "summarize", "input": {"topic": "news"}, "overlap": "skip"}))]
pub struct CreateSchedule {
    /// At most 200 characters.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub name: String,
    /// A cron expression: 5 fields (minute hour day-of-month month day-of-week, Sunday 0 or 7)
    /// or 6 with seconds first, at most 256 characters. Exactly one of `cron` and
    /// `interval_seconds`.
    #[schema(max_length = 256)]
    pub cron: Option<String>,
    /// An IANA time zone name for `cron`; UTC when absent.
    #[schema(max_length = 64)]
    pub time_zone: Option<String>,
    /// Seconds between ticks, 1 to 31,622,400 (366 days).
    #[schema(minimum = 1, maximum = 31622400)]
    #[serde(default, deserialize_with = "crate::json::whole")]
    pub interval_seconds: Option<u64>,
    /// A stored chain (its latest version each tick) ...
    #[schema(format = Uuid)]
    pub chain_id: Option<String>,
    /// ... or a template, by name: exactly one of the two.
    #[schema(max_length = 200)]
    pub template: Option<String>,
    /// The input of each run, a JSON object of at most 64 KiB; `{}` when absent.
    #[schema(value_type = Option<Object>)]
    pub input: Option<Value>,
    pub overlap: Option<Overlap>,
    pub catch_up: Option<CatchUp>,
    /// With `catch_up: all`, how far back missed ticks fire, at most 604,800 (7 days).
    #[schema(maximum = 604800)]
    #[serde(default, deserialize_with = "crate::json::whole")]
    pub catch_up_window_seconds: Option<u64>,
    /// Each tick fires up to this many seconds late, at random: 0 to 3,600.
    #[schema(maximum = 3600)]
    #[serde(default, deserialize_with = "crate::json::whole")]
    pub jitter_seconds: Option<u32>,
    /// Created paused.
    #[serde(default)]
    pub paused: bool,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"paused": true}))]
pub struct UpdateSchedule {
    #[schema(max_length = 200)]
    pub name: Option<String>,
    /// A new cron expression, replacing an interval.
    #[schema(max_length = 256)]
    pub cron: Option<String>,
    /// A new time zone for the cron expression.
    #[schema(max_length = 64)]
    pub time_zone: Option<String>,
    /// A new interval, replacing a cron expression.
    #[schema(minimum = 1, maximum = 31622400)]
    #[serde(default, deserialize_with = "crate::json::whole")]
    pub interval_seconds: Option<u64>,
    #[schema(value_type = Option<Object>)]
    pub input: Option<Value>,
    pub overlap: Option<Overlap>,
    pub catch_up: Option<CatchUp>,
    #[schema(maximum = 604800)]
    #[serde(default, deserialize_with = "crate::json::whole")]
    pub catch_up_window_seconds: Option<u64>,
    #[schema(maximum = 3600)]
    #[serde(default, deserialize_with = "crate::json::whole")]
    pub jitter_seconds: Option<u32>,
    /// Pauses (true) or resumes (false); resuming starts from the next tick after now.
    pub paused: Option<bool>,
    /// Replaces the schedule's API key by one made with the caller's token, living the longest
    /// auth allows from now (the old key is revoked).
    #[serde(default)]
    pub renew_credential: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ScheduleList {
    /// Newest first.
    pub schedules: Vec<Schedule>,
    /// Pass as `page_token` for the next page; absent on the last page.
    pub next_page_token: Option<String>,
}
