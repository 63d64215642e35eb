//! Notifications that open their run when clicked (Linux). The notification plugin shows a
//! notification but reports no click on Linux, so the app speaks the freedesktop
//! Notifications interface on the session bus itself: each notice is shown with a default
//! action, and the daemon's `ActionInvoked` for it opens the run.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use zbus::message::Type;
use zbus::zvariant::Value;
use zbus::{Connection, MatchRule, MessageStream};

use crate::notices::{MAX_NOTICES, Notice};

const DAEMON: &str = "org.freedesktop.Notifications";
const PATH: &str = "/org/freedesktop/Notifications";
/// The action a daemon invokes when the notification itself is clicked.
const OPEN: &str = "default";
/// Clicks on ids not yet recorded, kept at most: see [`Shown::clicked`].
const EARLY_CLICKS: usize = 8;

/// The shown notifications whose click is still awaited, by the daemon's id.
#[derive(Debug, Default)]
pub struct Shown {
    runs: VecDeque<(u32, String)>,
    early_clicks: VecDeque<u32>,
}

impl Shown {
    /// Records that notification `id` is run `run`'s; the run when it was clicked already.
    pub fn record(&mut self, id: u32, run: String) -> Option<String> {
        if let Some(at) = self.early_clicks.iter().position(|early| *early == id) {
            self.early_clicks.remove(at);
            return Some(run);
        }
        if self.runs.len() == MAX_NOTICES {
            self.runs.pop_front();
        }
        self.runs.push_back((id, run));
        None
    }

    /// The run of clicked notification `id`. The click's signal and the reply naming the id
    /// arrive in order but are read by different tasks, so a click may come first: it is then
    /// kept for [`Shown::record`].
    pub fn clicked(&mut self, id: u32) -> Option<String> {
        let run = self.closed(id);
        if run.is_none() {
            if self.early_clicks.len() == EARLY_CLICKS {
                self.early_clicks.pop_front();
            }
            self.early_clicks.push_back(id);
        }
        run
    }

    /// Forgets notification `id` (closed, or clicked), returning its run.
    pub fn closed(&mut self, id: u32) -> Option<String> {
        let at = self.runs.iter().position(|(shown, _)| *shown == id)?;
        self.runs.remove(at).map(|(_, run)| run)
    }
}

/// The session bus's notification daemon, with the runs of what it shows.
pub struct Notifier {
    connection: Connection,
    shown: Arc<Mutex<Shown>>,
    on_click: Arc<dyn Fn(String) + Send + Sync>,
}

impl Notifier {
    /// Connects to the session bus and listens for the daemon's clicks and closes; `on_click`
    /// is given the run of a clicked notification.
    pub async fn start(on_click: impl Fn(String) + Send + Sync + 'static) -> zbus::Result<Self> {
        let connection = Connection::session().await?;
        let rule = MatchRule::builder()
            .msg_type(Type::Signal)
            .interface(DAEMON)?
            .path(PATH)?
            .build();
        let mut signals = MessageStream::for_match_rule(rule, &connection, None).await?;
        let notifier = Self {
            connection,
            shown: Arc::default(),
            on_click: Arc::new(on_click),
        };
        let shown = notifier.shown.clone();
        let on_click = notifier.on_click.clone();
        tauri::async_runtime::spawn(async move {
            while let Some(Ok(signal)) = signals.next().await {
                let header = signal.header();
                let body = signal.body();
                match header.member().map(|member| member.as_str()) {
                    Some("ActionInvoked") => {
                        let Ok((id, action)) = body.deserialize::<(u32, String)>() else {
                            continue;
                        };
                        let run = (action == OPEN).then(|| lock(&shown).clicked(id));
                        if let Some(Some(run)) = run {
                            on_click(run);
                        }
                    }
                    Some("NotificationClosed") => {
                        if let Ok((id, _reason)) = body.deserialize::<(u32, u32)>() {
                            lock(&shown).closed(id);
                        }
                    }
                    _ => {}
                }
            }
        });
        Ok(notifier)
    }

    /// Shows `notice`, clicking it opens its run.
    pub async fn show(&self, notice: &Notice) -> zbus::Result<()> {
        let hints: HashMap<&str, Value<'_>> = HashMap::new();
        let reply = self
            .connection
            .call_method(
                Some(DAEMON),
                PATH,
                Some(DAEMON),
                "Notify",
                &(
                    "Sankalpa",
                    0u32,
                    "",
                    notice.title.as_str(),
                    notice.body.as_str(),
                    vec![OPEN, "Open run"],
                    hints,
                    -1i32,
                ),
            )
            .await?;
        let id: u32 = reply.body().deserialize()?;
        if let Some(run) = lock(&self.shown).record(id, notice.run_id.clone()) {
            (self.on_click)(run);
        }
        Ok(())
    }
}

fn lock(shown: &Mutex<Shown>) -> std::sync::MutexGuard<'_, Shown> {
    shown
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_click_opens_its_notifications_run_once() {
        let mut shown = Shown::default();
        assert_eq!(shown.record(7, "r7".into()), None);
        assert_eq!(shown.record(8, "r8".into()), None);
        assert_eq!(shown.clicked(8).as_deref(), Some("r8"));
        assert_eq!(shown.clicked(8), None, "a second click opens nothing");
        assert_eq!(shown.closed(7).as_deref(), Some("r7"));
        assert_eq!(
            shown.clicked(7),
            None,
            "a closed notification opens nothing"
        );
    }

    #[test]
    fn a_click_read_before_its_id_opens_the_run_when_recorded() {
        let mut shown = Shown::default();
        assert_eq!(shown.clicked(3), None);
        assert_eq!(shown.record(3, "r3".into()).as_deref(), Some("r3"));
        assert_eq!(shown.clicked(3), None, "opened once");
        assert_eq!(shown.record(4, "r4".into()), None);
    }

    #[test]
    fn only_the_newest_notifications_are_remembered() {
        let mut shown = Shown::default();
        for id in 0..=MAX_NOTICES as u32 {
            shown.record(id, format!("r{id}"));
        }
        assert_eq!(shown.closed(0), None, "the oldest made room");
        assert_eq!(shown.closed(1).as_deref(), Some("r1"));
        for id in 1000..1000 + 2 * EARLY_CLICKS as u32 {
            shown.clicked(id);
        }
        assert_eq!(shown.early_clicks.len(), EARLY_CLICKS);
    }
}
