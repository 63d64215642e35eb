//! The notifications the app has shown: kept (the last [`MAX_NOTICES`]) so the `notifications`
//! command can list them, also on a desktop without a notification daemon.

use std::collections::VecDeque;

use serde::Serialize;

use crate::events::Change;

/// Notifications kept for the `notifications` command, at most; older ones are dropped.
pub const MAX_NOTICES: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    /// Increasing from 1 since the app started.
    pub id: u64,
    /// `finished` or `approval`.
    pub kind: &'static str,
    pub run_id: String,
    pub title: String,
    pub body: String,
}

#[derive(Debug, Default)]
pub struct Notices {
    kept: VecDeque<Notice>,
    issued: u64,
    paused: bool,
}

impl Notices {
    /// The notice for `change` of run `label` (its chain's name, else its id), kept; `None`
    /// while notifications are paused.
    pub fn push(&mut self, change: &Change, label: &str) -> Option<Notice> {
        if self.paused {
            return None;
        }
        let (kind, title, body) = match change {
            Change::Finished { status, .. } => (
                "finished",
                format!("Run {status}"),
                format!("{label} {status}."),
            ),
            Change::WaitingApproval {
                step_id, prompt, ..
            } => (
                "approval",
                "Approval needed".to_owned(),
                if prompt.is_empty() {
                    format!("{label}: step {step_id} waits for a decision.")
                } else {
                    format!("{label}: {prompt}")
                },
            ),
        };
        self.issued += 1;
        let notice = Notice {
            id: self.issued,
            kind,
            run_id: change.run_id().to_owned(),
            title,
            body,
        };
        self.kept.push_back(notice.clone());
        if self.kept.len() > MAX_NOTICES {
            self.kept.pop_front();
        }
        Some(notice)
    }

    pub fn list(&self) -> Vec<Notice> {
        self.kept.iter().cloned().collect()
    }

    pub fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
    }

    pub fn paused(&self) -> bool {
        self.paused
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished(run: &str) -> Change {
        Change::Finished {
            run_id: run.into(),
            status: "completed".into(),
        }
    }

    #[test]
    fn a_finished_run_and_an_approval_are_worded_for_the_user() {
        let mut notices = Notices::default();
        let done = notices.push(&finished("r1"), "hello").unwrap();
        assert_eq!(
            (done.id, done.kind, done.title.as_str(), done.body.as_str()),
            (1, "finished", "Run completed", "hello completed.")
        );
        let approval = Change::WaitingApproval {
            run_id: "r2".into(),
            step_id: "approve".into(),
            prompt: "Ship it?".into(),
        };
        let asked = notices.push(&approval, "release").unwrap();
        assert_eq!(
            (asked.kind, asked.body.as_str()),
            ("approval", "release: Ship it?")
        );
        assert_eq!(notices.list(), [done, asked]);
    }

    #[test]
    fn paused_notifications_are_neither_shown_nor_kept() {
        let mut notices = Notices::default();
        notices.set_paused(true);
        assert!(notices.push(&finished("r1"), "hello").is_none());
        assert!(notices.list().is_empty());
        notices.set_paused(false);
        assert!(notices.push(&finished("r1"), "hello").is_some());
    }

    #[test]
    fn only_the_latest_are_kept() {
        let mut notices = Notices::default();
        for run in 0..MAX_NOTICES + 3 {
            notices.push(&finished(&format!("r{run}")), "x");
        }
        let kept = notices.list();
        assert_eq!(kept.len(), MAX_NOTICES);
        assert_eq!(kept[0].run_id, "r3");
        assert_eq!(kept.last().unwrap().id, (MAX_NOTICES + 3) as u64);
    }
}
