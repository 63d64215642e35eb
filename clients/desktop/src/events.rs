//! What the tenant's event stream means to the desktop app: which frames announce that a run
//! ended or waits for an approval, the running and waiting counts the tray shows, and where to
//! resume after a reconnection (the last sequence seen, sent back as `after_sequence`: the
//! WebSocket's equivalent of an `EventSource`'s `Last-Event-ID`).

use std::collections::HashSet;

use serde::Deserialize;
use url::Url;

/// Runs (and waiting approvals) the counts follow at once, at most: past that the oldest are
/// forgotten, so a tenant that never ends its runs cannot grow the app's memory.
pub const MAX_TRACKED: usize = 10_000;

/// The channels the app listens to: every chain run event of the caller's tenant (the gateway
/// puts the caller's tenant in the second token whatever is sent).
pub const SUBJECTS: &str = "chains.*.*.run.>,chains.*.*.step.>";

/// What a frame announces that the user may be told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The run ended: `completed`, `failed` or `cancelled`.
    Finished { run_id: String, status: String },
    /// An approval step waits for a decision.
    WaitingApproval {
        run_id: String,
        step_id: String,
        prompt: String,
    },
}

impl Change {
    pub fn run_id(&self) -> &str {
        match self {
            Self::Finished { run_id, .. } | Self::WaitingApproval { run_id, .. } => run_id,
        }
    }
}

/// One frame of the WebSocket, read.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// An event; `change` when it is one to tell.
    Event { change: Option<Change> },
    /// The answer to a subscription.
    Subscribed,
    /// The gateway's problem (its `status`: 401 means the token no longer holds).
    Error { status: u16, detail: String },
}

#[derive(Deserialize)]
struct Incoming {
    #[serde(rename = "type")]
    kind: Option<String>,
    sequence: Option<u64>,
    #[serde(default)]
    data: serde_json::Value,
    error: Option<Problem>,
    subscribed: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Problem {
    status: Option<u16>,
    detail: Option<String>,
    title: Option<String>,
}

/// The counts and the resume point, from the frames read since sign-in.
#[derive(Debug, Default)]
pub struct Tracker {
    running: Bounded<String>,
    waiting: Bounded<(String, String)>,
    last_sequence: Option<u64>,
}

impl Tracker {
    /// Reads one text frame; a frame that is not JSON of the expected shape is an error.
    pub fn observe(&mut self, text: &str) -> Result<Frame, String> {
        let incoming: Incoming =
            serde_json::from_str(text).map_err(|err| format!("an unreadable frame: {err}"))?;
        if let Some(problem) = incoming.error {
            return Ok(Frame::Error {
                status: problem.status.unwrap_or(500),
                detail: problem.detail.or(problem.title).unwrap_or_default(),
            });
        }
        if incoming.subscribed.is_some() {
            return Ok(Frame::Subscribed);
        }
        let kind = incoming.kind.ok_or("a frame without a type")?;
        if let Some(sequence) = incoming.sequence {
            self.last_sequence = Some(self.last_sequence.map_or(sequence, |at| at.max(sequence)));
        }
        let field = |name: &str| {
            incoming
                .data
                .get(name)
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let run_id = field("run_id");
        let step = || (run_id.clone(), field("step_id"));
        let change = match kind.strip_prefix("sankalpa.chains.").unwrap_or_default() {
            "run.started" => {
                self.running.insert(run_id);
                None
            }
            action @ ("run.completed" | "run.failed" | "run.cancelled") => {
                self.running.remove(&run_id);
                self.waiting.retain(|(run, _)| run != &run_id);
                let status = action.trim_start_matches("run.").to_owned();
                Some(Change::Finished { run_id, status })
            }
            "step.waiting_approval" => {
                self.waiting.insert(step());
                Some(Change::WaitingApproval {
                    step_id: field("step_id"),
                    prompt: field("prompt"),
                    run_id,
                })
            }
            "step.completed" | "step.failed" | "step.skipped" => {
                self.waiting.remove(&step());
                None
            }
            _ => None,
        };
        Ok(Frame::Event { change })
    }

    pub fn running(&self) -> usize {
        self.running.len()
    }

    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    pub fn last_sequence(&self) -> Option<u64> {
        self.last_sequence
    }
}

/// A set that forgets its oldest member past [`MAX_TRACKED`].
#[derive(Debug)]
struct Bounded<T> {
    members: HashSet<T>,
    order: std::collections::VecDeque<T>,
}

impl<T> Default for Bounded<T> {
    fn default() -> Self {
        Self {
            members: HashSet::new(),
            order: std::collections::VecDeque::new(),
        }
    }
}

impl<T: Clone + Eq + std::hash::Hash> Bounded<T> {
    fn insert(&mut self, member: T) {
        if self.members.insert(member.clone()) {
            self.order.push_back(member);
        }
        while self.members.len() > MAX_TRACKED {
            match self.order.pop_front() {
                Some(oldest) => {
                    self.members.remove(&oldest);
                }
                None => break,
            }
        }
    }

    fn remove(&mut self, member: &T) {
        if self.members.remove(member) {
            self.order.retain(|kept| kept != member);
        }
    }

    fn retain(&mut self, keep: impl Fn(&T) -> bool) {
        self.members.retain(&keep);
        self.order.retain(keep);
    }

    fn len(&self) -> usize {
        self.members.len()
    }
}

/// The gateway's `/ws` for `gateway`: ws or wss as the gateway is http or https, the app's
/// subjects, and `after_sequence` when resuming.
pub fn websocket_url(gateway: &Url, after_sequence: Option<u64>) -> Url {
    let mut url = gateway.join("ws").expect("a relative path joins any base");
    let scheme = if gateway.scheme() == "https" {
        "wss"
    } else {
        "ws"
    };
    url.set_scheme(scheme)
        .expect("ws and wss replace http and https");
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("subjects", SUBJECTS);
        if let Some(sequence) = after_sequence {
            query.append_pair("after_sequence", &sequence.to_string());
        }
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, sequence: u64, data: serde_json::Value) -> String {
        serde_json::json!({
            "specversion": "1.0", "id": format!("e{sequence}"), "source": "/sankalpa/test",
            "type": format!("sankalpa.chains.{kind}"), "subject": "chains.t.r.x",
            "datacontenttype": "application/json", "tenantid": "t", "sequence": sequence,
            "data": data,
        })
        .to_string()
    }

    #[test]
    fn a_run_is_counted_while_it_runs_and_told_when_it_ends() {
        let mut tracker = Tracker::default();
        let started = tracker
            .observe(&event(
                "run.started",
                7,
                serde_json::json!({"run_id": "r1", "chain": "c"}),
            ))
            .unwrap();
        assert_eq!(started, Frame::Event { change: None });
        assert_eq!((tracker.running(), tracker.last_sequence()), (1, Some(7)));

        let ended = tracker
            .observe(&event(
                "run.completed",
                9,
                serde_json::json!({"run_id": "r1", "status": "completed"}),
            ))
            .unwrap();
        assert_eq!(
            ended,
            Frame::Event {
                change: Some(Change::Finished {
                    run_id: "r1".into(),
                    status: "completed".into()
                })
            }
        );
        assert_eq!((tracker.running(), tracker.last_sequence()), (0, Some(9)));
    }

    #[test]
    fn an_approval_is_waiting_until_its_step_ends() {
        let mut tracker = Tracker::default();
        let data = serde_json::json!({"run_id": "r2", "step_id": "approve", "prompt": "Ship it?"});
        let frame = tracker
            .observe(&event("step.waiting_approval", 3, data.clone()))
            .unwrap();
        assert_eq!(
            frame,
            Frame::Event {
                change: Some(Change::WaitingApproval {
                    run_id: "r2".into(),
                    step_id: "approve".into(),
                    prompt: "Ship it?".into()
                })
            }
        );
        assert_eq!(tracker.waiting(), 1);
        tracker.observe(&event("step.completed", 4, data)).unwrap();
        assert_eq!(tracker.waiting(), 0);
    }

    #[test]
    fn a_replayed_older_event_does_not_move_the_resume_point_back() {
        let mut tracker = Tracker::default();
        tracker
            .observe(&event(
                "step.started",
                12,
                serde_json::json!({"run_id": "r"}),
            ))
            .unwrap();
        tracker
            .observe(&event(
                "step.started",
                10,
                serde_json::json!({"run_id": "r"}),
            ))
            .unwrap();
        assert_eq!(tracker.last_sequence(), Some(12));
    }

    #[test]
    fn error_and_subscription_frames_are_told_apart_from_events() {
        let mut tracker = Tracker::default();
        let error = r#"{"error": {"type": "about:blank", "title": "Unauthorized", "status": 401, "detail": "expired"}}"#;
        assert_eq!(
            tracker.observe(error).unwrap(),
            Frame::Error {
                status: 401,
                detail: "expired".into()
            }
        );
        assert_eq!(
            tracker.observe(r#"{"subscribed": []}"#).unwrap(),
            Frame::Subscribed
        );
        assert!(tracker.observe("not json").is_err());
        assert!(tracker.observe("{}").is_err());
    }

    #[test]
    fn the_counts_forget_the_oldest_past_their_bound() {
        let mut tracker = Tracker::default();
        for run in 0..MAX_TRACKED + 5 {
            let data = serde_json::json!({ "run_id": format!("r{run}") });
            tracker
                .observe(&event("run.started", run as u64, data))
                .unwrap();
        }
        assert_eq!(tracker.running(), MAX_TRACKED);
    }

    #[test]
    fn the_websocket_url_follows_the_gateways_scheme_and_resumes_after_a_sequence() {
        let plain = websocket_url(&Url::parse("http://127.0.0.1:8080").unwrap(), None);
        assert_eq!(plain.scheme(), "ws");
        assert_eq!(plain.path(), "/ws");
        assert!(!plain.as_str().contains("after_sequence"));
        let secure = websocket_url(&Url::parse("https://gw.example/base/").unwrap(), Some(41));
        assert_eq!(secure.scheme(), "wss");
        assert_eq!(secure.path(), "/base/ws");
        let pairs: Vec<(String, String)> = secure.query_pairs().into_owned().collect();
        assert!(pairs.contains(&("after_sequence".into(), "41".into())));
        assert!(pairs.contains(&("subjects".into(), SUBJECTS.into())));
    }
}
