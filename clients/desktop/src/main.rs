//! Sankalpa's desktop app: the console in a native window (Tauri v2 over the system webview),
//! signed in to a gateway of the CLI's profiles, with notifications of the user's runs, a tray
//! with counts and quick actions, a global shortcut to a new chat, `sankalpa://runs/<id>` links,
//! and a page that says when the gateway cannot be reached. See docs/desktop.md.

#[cfg(target_os = "linux")]
mod clicks;
mod events;
mod gateway;
mod links;
mod notices;
mod profiles;
mod watch;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde::Serialize;
use tauri::menu::{CheckMenuItem, Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::webview::PageLoadEvent;
use tauri::{AppHandle, Emitter, Manager, WebviewUrl, WebviewWindowBuilder, Wry};
use tauri_plugin_deep_link::DeepLinkExt;
use tauri_plugin_global_shortcut::{GlobalShortcutExt, ShortcutState};
#[cfg(not(target_os = "linux"))]
use tauri_plugin_notification::NotificationExt;
use url::Url;

use crate::events::Change;
use crate::gateway::Gateway;
use crate::notices::{Notice, Notices};
use crate::profiles::Profile;

/// The one window.
const MAIN: &str = "main";
/// Opens a new chat from anywhere on the desktop, as the tray's "New chat" does.
const CHAT_SHORTCUT: &str = "CommandOrControl+Shift+Space";
/// How often the gateway's liveness is checked while signed in.
const PROBE_EVERY: Duration = Duration::from_secs(5);
/// The app's own page (sign-in, and the offline notice), as the webview serves it on Linux.
const LOCAL_PAGE: &str = "tauri://localhost/index.html";
/// The commands a gateway's page (the console) may call: read what the app knows, open a run.
const REMOTE_PERMISSIONS: [&str; 4] = [
    "allow-status",
    "allow-notifications",
    "allow-open-run",
    "allow-set-paused",
];

/// Everything the commands share.
#[derive(Default)]
struct Desktop {
    connection: Mutex<Option<Connection>>,
    notices: Mutex<Notices>,
    /// A run link that came before sign-in, opened after it.
    pending_run: Mutex<Option<String>>,
    /// The session bus's notification daemon, once reached.
    #[cfg(target_os = "linux")]
    notifier: std::sync::OnceLock<std::sync::Arc<clicks::Notifier>>,
    /// The tray's counts line, set as the counts change.
    counts_item: Mutex<Option<MenuItem<Wry>>>,
    pause_item: Mutex<Option<CheckMenuItem<Wry>>>,
    connected: AtomicBool,
    offline: AtomicBool,
    running: AtomicUsize,
    waiting: AtomicUsize,
}

struct Connection {
    gateway: Gateway,
    email: String,
    /// The console's own sign-in, offered to its first few page loads (see `on_page_load`).
    console_sign_in: Option<ConsoleSignIn>,
    tasks: Vec<tauri::async_runtime::JoinHandle<()>>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panicked holder left plain data, still consistent: go on with it.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[derive(Serialize)]
struct Status {
    gateway: Option<String>,
    email: Option<String>,
    /// The event stream is open.
    connected: bool,
    /// The gateway did not answer its last probe.
    offline: bool,
    running: usize,
    waiting: usize,
    paused: bool,
}

#[tauri::command]
fn profiles() -> Result<profiles::Profiles, String> {
    profiles::Dir::locate()?.profiles()
}

#[tauri::command]
async fn probe(gateway: String) -> Result<bool, String> {
    let url = profiles::check_gateway(&gateway)?;
    Ok(Gateway::new(url).reachable().await)
}

/// Signs in to `gateway` (saved as `profile` in the CLI's config), then shows its console,
/// signed in with the same credentials, and starts watching the tenant's events.
#[tauri::command]
async fn sign_in(
    app: AppHandle,
    profile: String,
    gateway: String,
    email: String,
    password: String,
) -> Result<Status, String> {
    profiles::check_name(&profile)?;
    let url = profiles::check_gateway(&gateway)?;
    gateway::check_credentials(&email, &password)?;
    let client = Gateway::new(url.clone());
    let session = client
        .sign_in(&email, &password)
        .await
        .map_err(|err| err.to_string())?;
    profiles::Dir::locate()?.save_profile(&Profile {
        name: profile,
        gateway: url.as_str().trim_end_matches('/').to_owned(),
    })?;
    allow_console(&app, &url)?;

    let desktop = app.state::<Desktop>();
    let watcher =
        tauri::async_runtime::spawn(watch::watch(client.clone(), session, Reporter(app.clone())));
    let prober = tauri::async_runtime::spawn(probe_while_signed_in(app.clone(), client.clone()));
    *lock(&desktop.connection) = Some(Connection {
        gateway: client,
        console_sign_in: Some(ConsoleSignIn {
            email: email.clone(),
            password,
            loads_left: CONSOLE_SIGN_IN_LOADS,
        }),
        email,
        tasks: vec![watcher, prober],
    });
    let target = match lock(&desktop.pending_run).take() {
        Some(run) => links::run_page(&url, &run),
        None => url,
    };
    navigate(&app, target);
    Ok(snapshot(&desktop))
}

#[tauri::command]
fn status(desktop: tauri::State<'_, Desktop>) -> Status {
    snapshot(&desktop)
}

fn snapshot(desktop: &Desktop) -> Status {
    let connection = lock(&desktop.connection);
    Status {
        gateway: connection
            .as_ref()
            .map(|connection| connection.gateway.base().to_string()),
        email: connection
            .as_ref()
            .map(|connection| connection.email.clone()),
        connected: desktop.connected.load(Ordering::Relaxed),
        offline: desktop.offline.load(Ordering::Relaxed),
        running: desktop.running.load(Ordering::Relaxed),
        waiting: desktop.waiting.load(Ordering::Relaxed),
        paused: lock(&desktop.notices).paused(),
    }
}

/// The notifications shown since the app started (the last [`notices::MAX_NOTICES`]).
#[tauri::command]
fn notifications(desktop: tauri::State<'_, Desktop>) -> Vec<Notice> {
    lock(&desktop.notices).list()
}

#[tauri::command]
fn set_paused(desktop: tauri::State<'_, Desktop>, paused: bool) {
    lock(&desktop.notices).set_paused(paused);
    if let Some(item) = lock(&desktop.pause_item).as_ref() {
        let _ = item.set_checked(paused);
    }
}

/// Shows run `id`'s page of the console; before sign-in, once signed in.
#[tauri::command]
fn open_run(app: AppHandle, id: String) -> Result<(), String> {
    links::check_run_id(&id)?;
    let desktop = app.state::<Desktop>();
    let gateway = lock(&desktop.connection)
        .as_ref()
        .map(|connection| connection.gateway.base().clone());
    match gateway {
        Some(gateway) => navigate(&app, links::run_page(&gateway, &id)),
        None => *lock(&desktop.pending_run) = Some(id),
    }
    Ok(())
}

/// Lets the gateway's pages call the commands of [`REMOTE_PERMISSIONS`] (remote content reaches
/// no command otherwise).
fn allow_console(app: &AppHandle, gateway: &Url) -> Result<(), String> {
    let origin = gateway.origin().ascii_serialization();
    let mut capability = tauri::ipc::CapabilityBuilder::new(format!("console {origin}"))
        .remote(format!("{origin}/*"))
        .local(false)
        .window(MAIN);
    for permission in REMOTE_PERMISSIONS {
        capability = capability.permission(permission);
    }
    match app.add_capability(capability) {
        Ok(()) => Ok(()),
        // Signed in to the same gateway before: its capability is there already.
        Err(err) if err.to_string().contains("already exists") => Ok(()),
        Err(err) => Err(err.to_string()),
    }
}

fn navigate(app: &AppHandle, url: Url) {
    if let Some(window) = app.get_webview_window(MAIN) {
        let _ = window.navigate(url);
        let _ = window.show();
        let _ = window.set_focus();
    }
}

/// Checks the gateway every [`PROBE_EVERY`]: unreachable, the window shows the app's offline
/// page (which says so and retries); back, the console again.
async fn probe_while_signed_in(app: AppHandle, gateway: Gateway) {
    loop {
        tokio::time::sleep(PROBE_EVERY).await;
        let reachable = gateway.reachable().await;
        let desktop = app.state::<Desktop>();
        let was_offline = desktop.offline.swap(!reachable, Ordering::Relaxed);
        if was_offline == reachable {
            let target = if reachable {
                gateway.base().clone()
            } else {
                Url::parse(&format!("{LOCAL_PAGE}#offline")).expect("a valid URL")
            };
            navigate(&app, target);
        }
    }
}

/// The watcher's reports, into the app's state, tray and notifications.
struct Reporter(AppHandle);

impl watch::Report for Reporter {
    fn connected(&self, connected: bool) {
        let desktop = self.0.state::<Desktop>();
        desktop.connected.store(connected, Ordering::Relaxed);
    }

    fn counts(&self, running: usize, waiting: usize) {
        let desktop = self.0.state::<Desktop>();
        let before = (
            desktop.running.swap(running, Ordering::Relaxed),
            desktop.waiting.swap(waiting, Ordering::Relaxed),
        );
        if before != (running, waiting)
            && let Some(item) = lock(&desktop.counts_item).as_ref()
        {
            let _ = item.set_text(counts_text(running, waiting));
        }
    }

    fn tell(&self, change: &Change, label: &str) {
        let desktop = self.0.state::<Desktop>();
        let Some(notice) = lock(&desktop.notices).push(change, label) else {
            return;
        };
        // No notification daemon (a server, CI) is no reason to stop: the notice is kept and
        // emitted to the page all the same.
        #[cfg(target_os = "linux")]
        if let Some(notifier) = desktop.notifier.get().cloned() {
            let notice = notice.clone();
            tauri::async_runtime::spawn(async move {
                if let Err(err) = notifier.show(&notice).await {
                    eprintln!("sankalpa-desktop: notification not shown: {err}");
                }
            });
        }
        #[cfg(not(target_os = "linux"))]
        let _ = self
            .0
            .notification()
            .builder()
            .title(&notice.title)
            .body(&notice.body)
            .show();
        let _ = self.0.emit("notice", &notice);
    }

    fn signed_out(&self, why: &str) {
        let desktop = self.0.state::<Desktop>();
        desktop.connected.store(false, Ordering::Relaxed);
        // Dropping the connection aborts this very task: leave it to a task of its own.
        let app = self.0.clone();
        let why = why.to_owned();
        tauri::async_runtime::spawn(async move {
            lock(&app.state::<Desktop>().connection).take();
            let mut page = Url::parse(LOCAL_PAGE).expect("a valid URL");
            page.set_fragment(Some(&format!("signed-out:{why}")));
            navigate(&app, page);
        });
    }
}

fn counts_text(running: usize, waiting: usize) -> String {
    format!("{running} running · {waiting} waiting for approval")
}

/// The tray: the counts, then open the console, a new chat, pause notifications, quit.
fn tray(app: &AppHandle) -> tauri::Result<()> {
    let counts = MenuItem::with_id(app, "counts", counts_text(0, 0), false, None::<&str>)?;
    let open = MenuItem::with_id(app, "open", "Open console", true, None::<&str>)?;
    let chat = MenuItem::with_id(app, "chat", "New chat", true, None::<&str>)?;
    let pause = CheckMenuItem::with_id(
        app,
        "pause",
        "Pause notifications",
        true,
        false,
        None::<&str>,
    )?;
    let quit = MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?;
    let separator = PredefinedMenuItem::separator(app)?;
    let menu = Menu::with_items(app, &[&counts, &separator, &open, &chat, &pause, &quit])?;
    let mut builder = TrayIconBuilder::with_id("main")
        .tooltip("Sankalpa")
        .menu(&menu)
        .on_menu_event(|app, event| on_tray(app, event.id().as_ref()));
    if let Some(icon) = app.default_window_icon() {
        builder = builder.icon(icon.clone());
    }
    builder.build(app)?;
    let desktop = app.state::<Desktop>();
    *lock(&desktop.counts_item) = Some(counts);
    *lock(&desktop.pause_item) = Some(pause);
    Ok(())
}

fn on_tray(app: &AppHandle, id: &str) {
    let desktop = app.state::<Desktop>();
    let gateway = lock(&desktop.connection)
        .as_ref()
        .map(|connection| connection.gateway.base().clone());
    match id {
        "open" | "chat" => {
            let target = match (gateway, id) {
                (Some(gateway), "chat") => gateway.join("chat").expect("a relative path joins"),
                (Some(gateway), _) => gateway,
                (None, _) => Url::parse(LOCAL_PAGE).expect("a valid URL"),
            };
            navigate(app, target);
        }
        "pause" => {
            let mut notices = lock(&desktop.notices);
            let paused = !notices.paused();
            notices.set_paused(paused);
        }
        "quit" => app.exit(0),
        _ => {}
    }
}

fn open_links(app: &AppHandle, urls: impl IntoIterator<Item = impl AsRef<str>>) {
    for url in urls {
        if let Some(run) = links::run_of_link(url.as_ref()) {
            let _ = open_run(app.clone(), run);
        }
    }
}

struct ConsoleSignIn {
    email: String,
    password: String,
    loads_left: u8,
}

/// Page loads of the gateway's origin offered the console's sign-in. One is not enough: the
/// console may navigate away while its fetch is in flight, which aborts it; once signed in, the
/// reload's script finds the session's cookie and does nothing.
const CONSOLE_SIGN_IN_LOADS: u8 = 3;

/// Reaches the session bus's notification daemon, whose clicks open their runs; without one
/// (no session bus) notices are still kept and listed.
#[cfg(target_os = "linux")]
fn start_notifier(app: &AppHandle) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let opener = app.clone();
        let started = clicks::Notifier::start(move |run| {
            let _ = open_run(opener.clone(), run);
        })
        .await;
        match started {
            Ok(notifier) => {
                let _ = app
                    .state::<Desktop>()
                    .notifier
                    .set(std::sync::Arc::new(notifier));
            }
            Err(err) => eprintln!("sankalpa-desktop: no desktop notifications: {err}"),
        }
    });
}

/// The console's page, loaded after the app's sign-in: signs the console in (its own cookie
/// session, on the gateway's origin) with the same credentials, then reloads it. A refusal the
/// gateway may lift soon (429, 5xx: argon2's slots all busy) or no answer is tried again, five
/// times over about seven seconds.
fn on_page_load(webview: &tauri::Webview, payload: &tauri::webview::PageLoadPayload<'_>) {
    if payload.event() != PageLoadEvent::Finished {
        return;
    }
    let desktop = webview.state::<Desktop>();
    let mut connection = lock(&desktop.connection);
    let Some(connection) = connection.as_mut() else {
        return;
    };
    if payload.url().origin() != connection.gateway.base().origin() {
        return;
    }
    let Some(sign_in) = connection.console_sign_in.as_mut() else {
        return;
    };
    sign_in.loads_left -= 1;
    let body = serde_json::json!({ "email": sign_in.email, "password": sign_in.password });
    if sign_in.loads_left == 0 {
        connection.console_sign_in = None;
    }
    let session = connection
        .gateway
        .base()
        .join("api/console/session")
        .expect("a relative path joins");
    let script = format!(
        "(async () => {{\
           if (document.cookie.split('; ').some((c) => c.startsWith('sankalpa_csrf='))) return;\
           for (let attempt = 1; attempt <= 5; attempt++) {{\
             try {{\
               const response = await fetch({url}, {{method: 'POST', credentials: 'same-origin',\
                 headers: {{'content-type': 'application/json'}}, body: JSON.stringify({body})}});\
               if (response.ok) {{ location.reload(); return; }}\
               if (response.status !== 429 && response.status < 500) return;\
             }} catch (_) {{}}\
             await new Promise((resolve) => setTimeout(resolve, 500 * attempt));\
           }}\
         }})();",
        url = serde_json::Value::String(session.to_string()),
    );
    let _ = webview.eval(script);
}

fn main() {
    tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, argv, _cwd| {
            open_links(app, argv);
        }))
        .plugin(tauri_plugin_deep_link::init())
        .plugin(tauri_plugin_window_state::Builder::default().build())
        .plugin(tauri_plugin_notification::init())
        .plugin(
            tauri_plugin_global_shortcut::Builder::new()
                .with_handler(|app, _shortcut, event| {
                    if event.state() == ShortcutState::Pressed {
                        on_tray(app, "chat");
                    }
                })
                .build(),
        )
        .manage(Desktop::default())
        .on_page_load(on_page_load)
        .invoke_handler(tauri::generate_handler![
            profiles,
            probe,
            sign_in,
            status,
            notifications,
            set_paused,
            open_run
        ])
        .setup(|app| {
            WebviewWindowBuilder::new(app, MAIN, WebviewUrl::App("index.html".into()))
                .title("Sankalpa")
                .inner_size(1280.0, 800.0)
                .min_inner_size(640.0, 480.0)
                .build()?;
            let handle = app.handle().clone();
            #[cfg(target_os = "linux")]
            start_notifier(&handle);
            // Without a tray host (a bare X server) the app still works, from its window.
            if let Err(err) = tray(&handle) {
                eprintln!("sankalpa-desktop: no tray icon: {err}");
            }
            // Another program may hold the keys: the tray's "New chat" still opens it.
            if let Err(err) = app.global_shortcut().register(CHAT_SHORTCUT) {
                eprintln!("sankalpa-desktop: no {CHAT_SHORTCUT} shortcut: {err}");
            }
            // Registering the scheme writes a .desktop file; a failure only loses the links.
            if let Err(err) = app.deep_link().register_all() {
                eprintln!("sankalpa-desktop: sankalpa:// links not registered: {err}");
            }
            if let Ok(Some(urls)) = app.deep_link().get_current() {
                open_links(&handle, urls);
            }
            app.deep_link().on_open_url(move |event| {
                open_links(&handle, event.urls());
            });
            Ok(())
        })
        .run(tauri::generate_context!())
        .expect("the app runs");
}
