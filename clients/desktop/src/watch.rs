//! The tenant's event stream over the gateway's WebSocket, kept open while the user is signed
//! in: reconnected with growing pauses (1 s doubling to [`MAX_PAUSE`]) and resumed after the
//! last sequence seen, the session renewed before it expires or when the gateway says it no
//! longer holds. A run's end or approval becomes a notification when the signed-in user
//! started the run (its `created_by`, asked once per run).

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::events::{Change, Frame, MAX_TRACKED, Tracker, websocket_url};
use crate::gateway::{Failure, Gateway, Session};

/// The longest pause between two connection attempts.
pub const MAX_PAUSE: Duration = Duration::from_secs(30);

/// What the watcher reports to the app.
pub trait Report: Send + Sync + 'static {
    /// Connected to the stream, or not any more.
    fn connected(&self, connected: bool);
    /// The tray's counts changed.
    fn counts(&self, running: usize, waiting: usize);
    /// `change` of one of the user's runs, `label` its chain's name.
    fn tell(&self, change: &Change, label: &str);
    /// The session cannot be renewed: the user must sign in again.
    fn signed_out(&self, why: &str);
}

/// Watches until the session ends (the task is aborted at sign-out or another sign-in).
pub async fn watch(gateway: Gateway, mut session: Session, report: impl Report) {
    let mut tracker = Tracker::default();
    // Per run: its label when the user started it, `None` when someone else did.
    let mut mine: HashMap<String, Option<String>> = HashMap::new();
    let mut pause = Duration::from_secs(1);
    loop {
        if session.expiring() {
            match gateway.renew(&session).await {
                Ok(renewed) => session = renewed,
                Err(Failure::Refused { detail, .. }) => {
                    report.signed_out(&detail);
                    return;
                }
                Err(Failure::Unreachable(_)) => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_PAUSE);
                    continue;
                }
            }
        }
        let url = websocket_url(gateway.base(), tracker.last_sequence());
        let mut request = url
            .as_str()
            .into_client_request()
            .expect("a ws URL is a request");
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {}", session.access_token)
                .parse()
                .expect("a token is a header value"),
        );
        match tokio_tungstenite::connect_async(request).await {
            Ok((mut socket, _)) => {
                report.connected(true);
                pause = Duration::from_secs(1);
                while let Some(Ok(message)) = socket.next().await {
                    let Message::Text(text) = message else {
                        continue;
                    };
                    match tracker.observe(&text) {
                        Ok(Frame::Event { change }) => {
                            report.counts(tracker.running(), tracker.waiting());
                            if let Some(change) = change {
                                tell(&gateway, &session, &mut mine, &change, &report).await;
                            }
                        }
                        Ok(Frame::Subscribed) => {}
                        Ok(Frame::Error { status, .. }) => {
                            if status == 401 {
                                session = expired(session);
                            }
                            break;
                        }
                        Err(_) => break,
                    }
                }
                report.connected(false);
            }
            Err(tokio_tungstenite::tungstenite::Error::Http(response))
                if response.status() == 401 =>
            {
                session = expired(session);
                continue;
            }
            Err(_) => {}
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

/// The session, marked for renewal at the next attempt.
fn expired(mut session: Session) -> Session {
    session.expire();
    session
}

async fn tell(
    gateway: &Gateway,
    session: &Session,
    mine: &mut HashMap<String, Option<String>>,
    change: &Change,
    report: &impl Report,
) {
    let run_id = change.run_id();
    let label = match mine.get(run_id) {
        Some(label) => label.clone(),
        None => {
            // Unknown (gone, or the gateway unreachable): nothing is said rather than a guess.
            let Ok(run) = gateway.run(session, run_id).await else {
                return;
            };
            let own = run.created_by == session.user_id && run.parent_run_id.is_none();
            let label = own.then(|| {
                run.chain_name
                    .filter(|name| !name.is_empty())
                    .unwrap_or_else(|| run_id.to_owned())
            });
            if mine.len() >= MAX_TRACKED {
                mine.clear();
            }
            mine.insert(run_id.to_owned(), label.clone());
            label
        }
    };
    if let Some(label) = label {
        report.tell(change, &label);
    }
    if matches!(change, Change::Finished { .. }) {
        mine.remove(run_id);
    }
}
