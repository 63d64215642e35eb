//! The desktop app (`clients/desktop`, Tauri v2) against the real fleet: launched under Xvfb and
//! driven over WebDriver (tauri-driver from crates.io before Debian's WebKitWebDriver), it signs
//! in through its own page to the gateway of a CLI profile, shows the console signed in, and
//! when the user's hello_world run completes, and when a run waits for an approval, its
//! `notifications` command lists the notice and a notification daemon on the scenario's own
//! session bus (`tests/notifications.py`, none runs under Xvfb) is asked to show it; a click on
//! it opens the run. Its global shortcut, pressed through the X server, opens the chat.
//! Screenshots land in `<target>/debug/desktop-e2e`.
//!
//! Needs the app built (`make test` builds it into `<target>/desktop`, `make desktop` alone),
//! `clients/web/dist` (the gateway serves the console), Xvfb, xdotool, WebKitWebDriver,
//! tauri-driver, dbus-daemon and python3's dbus and gi modules (`make setup` installs them).
//! Without one of them the test fails: it never skips.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine;
use sankalpa_testkit::{clients, process};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

const PASSWORD: &str = "desktop password";
/// How long a step of the scenario may take: the app's first start under Xvfb on two busy cores
/// is the slowest.
const PATIENCE: Duration = Duration::from_secs(90);
const WEBKIT_DRIVER: &str = "/usr/bin/WebKitWebDriver";
/// The W3C WebDriver key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// `<target>` of the test binary (`<target>/debug/deps/<test>`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    exe.ancestors()
        .nth(3)
        .expect("the test binary lives in <target>/<profile>/deps")
        .to_path_buf()
}

/// Each tool, or a failure naming what installs it.
fn tools() -> (PathBuf, PathBuf, PathBuf) {
    let app = target_dir().join("desktop/debug/sankalpa-desktop");
    assert!(
        app.exists(),
        "{} is not built (make test builds it; make desktop alone)",
        app.display()
    );
    let dist = clients::client_dir("web").join("dist");
    assert!(
        dist.join("index.html").exists(),
        "clients/web/dist is not built (make console)"
    );
    assert!(
        Path::new(WEBKIT_DRIVER).exists(),
        "{WEBKIT_DRIVER} is missing (make setup installs webkit2gtk-driver)"
    );
    let on_path = |name: &str| {
        std::env::var_os("PATH")
            .and_then(|path| {
                std::env::split_paths(&path)
                    .map(|dir| dir.join(name))
                    .find(|candidate| candidate.exists())
            })
            .or_else(|| {
                let cargo_bin = Path::new(&std::env::var_os("HOME")?).join(".cargo/bin");
                Some(cargo_bin.join(name)).filter(|candidate| candidate.exists())
            })
    };
    let driver = on_path("tauri-driver").expect("tauri-driver is missing (make setup installs it)");
    assert!(
        on_path("Xvfb").is_some(),
        "Xvfb is missing (make setup installs xvfb)"
    );
    (app, dist, driver)
}

/// The processes of the scenario (Xvfb, the session bus and its notification daemon, and
/// tauri-driver's group: WebKitWebDriver and the app), ended however the test ends.
struct Processes {
    xvfb: Child,
    _bus: Child,
    _notification_daemon: Child,
    driver_group: Option<u32>,
}

impl Drop for Processes {
    fn drop(&mut self) {
        if let Some(group) = self.driver_group {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{group}")])
                .status();
        }
        let _ = self.xvfb.start_kill();
    }
}

/// Xvfb on a display it picks itself (`-displayfd`), and that display's name.
async fn start_xvfb() -> (Child, String) {
    let mut xvfb = Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "1280x800x24",
            "-nolisten",
            "tcp",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("Xvfb starts");
    let display = format!(":{}", first_line(&mut xvfb, "Xvfb").await);
    (xvfb, display)
}

/// The first line `child` (named `name`) writes on its piped stdout, trimmed.
async fn first_line(child: &mut Child, name: &str) -> String {
    let stdout = child.stdout.take().expect("piped");
    let mut line = String::new();
    tokio::time::timeout(
        Duration::from_secs(20),
        BufReader::new(stdout).read_line(&mut line),
    )
    .await
    .unwrap_or_else(|_| panic!("{name} says where it is within 20 s"))
    .unwrap_or_else(|err| panic!("{name}'s output is readable: {err}"));
    line.trim().to_owned()
}

/// A session bus of the scenario's own, and its address.
async fn start_session_bus() -> (Child, String) {
    let mut bus = Command::new("dbus-daemon")
        .args(["--session", "--nofork", "--print-address=1"])
        .stdout(Stdio::piped())
        // Its one complaint here, an fd limit it may not raise, is noise.
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("dbus-daemon starts (make setup installs dbus-daemon)");
    let address = first_line(&mut bus, "dbus-daemon").await;
    (bus, address)
}

/// The stand-in notification daemon on `bus`: what it shows, and a way to click it.
struct NotificationDaemon {
    shown: Lines<BufReader<ChildStdout>>,
    clicks: ChildStdin,
}

async fn start_notification_daemon(bus: &str) -> (Child, NotificationDaemon) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/notifications.py");
    let mut child = Command::new("/usr/bin/python3")
        .arg(script)
        .env("DBUS_SESSION_BUS_ADDRESS", bus)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs the notification daemon");
    let mut daemon = NotificationDaemon {
        shown: BufReader::new(child.stdout.take().expect("piped")).lines(),
        clicks: child.stdin.take().expect("piped"),
    };
    let ready = daemon.next_line().await;
    assert_eq!(ready["ready"], true, "{ready}");
    (child, daemon)
}

impl NotificationDaemon {
    async fn next_line(&mut self) -> Value {
        let line = tokio::time::timeout(PATIENCE, self.shown.next_line())
            .await
            .expect("the notification daemon says something in time")
            .expect("its output is readable")
            .expect("the notification daemon runs (python3-dbus and python3-gi installed?)");
        serde_json::from_str(&line).unwrap_or_else(|err| panic!("{err}: {line}"))
    }

    /// The notification shown with `body`, skipping others.
    async fn shown_with(&mut self, body: &str) -> Value {
        loop {
            let shown = self.next_line().await;
            if shown["body"] == body {
                return shown;
            }
        }
    }

    async fn click(&mut self, shown: &Value, action: &str) {
        let line = format!("click {} {action}\n", shown["id"]);
        self.clicks.write_all(line.as_bytes()).await.unwrap();
        self.clicks.flush().await.unwrap();
    }
}

/// A WebDriver session with the app, over tauri-driver's HTTP API.
struct Driver {
    http: reqwest::Client,
    session: String,
}

impl Driver {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.session);
        let mut request = self.http.request(method, &url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("tauri-driver answers");
        let status = response.status();
        let answer: Value = response.json().await.expect("WebDriver answers JSON");
        assert!(status.is_success(), "{url}: {status} {answer}");
        answer["value"].clone()
    }

    async fn try_find(&self, css: &str) -> Option<String> {
        let response = self
            .http
            .post(format!("{}/element", self.session))
            .json(&json!({ "using": "css selector", "value": css }))
            .send()
            .await
            .ok()?;
        let answer: Value = response.json().await.ok()?;
        answer["value"][ELEMENT].as_str().map(str::to_owned)
    }

    async fn find(&self, css: &str) -> String {
        until(&format!("{css} on the page"), || self.try_find(css)).await
    }

    async fn fill(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/clear"),
            Some(json!({})),
        )
        .await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .await;
    }

    async fn url(&self) -> String {
        let url = self.call(reqwest::Method::GET, "/url", None).await;
        url.as_str().unwrap_or_default().to_owned()
    }

    /// `invoke(command, args)` in the page, through the app's IPC.
    async fn invoke(&self, command: &str, args: Value) -> Value {
        let script = "const [command, args, done] = arguments; \
            window.__TAURI__.core.invoke(command, args) \
              .then((value) => done({ value }), (error) => done({ error: String(error) }));";
        let answer = self
            .call(
                reqwest::Method::POST,
                "/execute/async",
                Some(json!({ "script": script, "args": [command, args] })),
            )
            .await;
        assert!(
            answer["error"].is_null(),
            "{command} failed: {}",
            answer["error"]
        );
        answer["value"].clone()
    }

    async fn script(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
        .await
    }

    async fn screenshot(&self, path: &Path) {
        let png = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().expect("a base64 PNG"))
            .expect("valid base64");
        assert!(bytes.starts_with(b"\x89PNG"), "the screenshot is a PNG");
        std::fs::create_dir_all(path.parent().expect("a folder")).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

/// Polls `probe` until it gives something, for at most [`PATIENCE`].
async fn until<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut probe: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(Instant::now() < deadline, "no {what} within {PATIENCE:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Starts a run of `definition` with `input` as the holder of `token`; its id.
async fn execute(
    http: &reqwest::Client,
    gateway: &str,
    token: &str,
    definition: Value,
    input: Value,
) -> String {
    let run: Value = http
        .post(format!("{gateway}/api/chains/execute"))
        .bearer_auth(token)
        .json(&json!({ "definition": definition, "input": input }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    run["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no run: {run}"))
        .to_owned()
}

/// The app's notification about run `id`, once it lists one.
async fn notice_of(page: &Driver, id: &str) -> Value {
    until(&format!("a notification of run {id}"), || async {
        let notices = page.invoke("notifications", json!({})).await;
        notices
            .as_array()?
            .iter()
            .find(|notice| notice["run_id"] == id)
            .cloned()
    })
    .await
}

#[sqlx::test(migrations = false)]
async fn the_desktop_app_signs_in_and_notifies_when_the_users_run_completes(pool: PgPool) {
    let (app, dist, tauri_driver) = tools();
    let (fleet, _leftovers) = clients::start_fleet(
        pool,
        sankalpa_testkit::FleetOptions {
            configure_auth: |_: &mut sankalpa_auth::Config| {},
            configure_gateway: move |gateway: &mut sankalpa_gateway::Config| {
                gateway.console_dir = Some(dist);
                clients::open_limits(gateway);
            },
            marketplace: false,
            triggers: false,
            llm: None,
        },
    )
    .await;
    let gateway = fleet.gateway.http_url();
    let http = reqwest::Client::new();
    let email = format!("{}@desktop.example", sankalpa_testkit::unique_name());
    let registered = http
        .post(format!("{gateway}/api/users/register"))
        .json(&json!({ "email": email, "password": PASSWORD, "tenant_name": "Desktop" }))
        .send()
        .await
        .unwrap();
    assert!(registered.status().is_success(), "{}", registered.status());

    // The CLI's config, whose profile the app offers first.
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("config/sankalpa");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("config.toml"),
        format!("default_profile = \"e2e\"\n\n[profiles.e2e]\ngateway = \"{gateway}\"\n"),
    )
    .unwrap();

    let (xvfb, display) = start_xvfb().await;
    let (bus, bus_address) = start_session_bus().await;
    let (notification_daemon, mut notifications) = start_notification_daemon(&bus_address).await;
    let mut processes = Processes {
        xvfb,
        _bus: bus,
        _notification_daemon: notification_daemon,
        driver_group: None,
    };
    let port = process::free_port();
    let native_port = process::free_port();
    let driver = Command::new(&tauri_driver)
        .args([
            "--port",
            &port.to_string(),
            "--native-port",
            &native_port.to_string(),
            "--native-driver",
            WEBKIT_DRIVER,
        ])
        .env("DISPLAY", &display)
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("XDG_DATA_HOME", home.path().join("data"))
        .env("XDG_CACHE_HOME", home.path().join("cache"))
        .env("DBUS_SESSION_BUS_ADDRESS", &bus_address)
        // GTK would start the accessibility bus's services on it: nothing here reads them.
        .env("NO_AT_BRIDGE", "1")
        .process_group(0)
        .stdout(Stdio::null())
        .spawn()
        .expect("tauri-driver starts");
    processes.driver_group = driver.id();
    until("tauri-driver listening", || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()
    })
    .await;

    let created: Value = http
        .post(format!("http://127.0.0.1:{port}/session"))
        .json(&json!({ "capabilities": { "alwaysMatch": {
            "tauri:options": { "application": app },
        } } }))
        .send()
        .await
        .expect("tauri-driver answers")
        .json()
        .await
        .expect("a session");
    let session = created["value"]["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("no WebDriver session: {created}"));
    let page = Driver {
        http: http.clone(),
        session: format!("http://127.0.0.1:{port}/session/{session}"),
    };
    let artifacts = target_dir().join("debug/desktop-e2e");

    // The app's page offers the CLI's profile, and signs in.
    let gateway_field = page.find("#gateway").await;
    let offered = page
        .call(
            reqwest::Method::GET,
            &format!("/element/{gateway_field}/property/value"),
            None,
        )
        .await;
    assert_eq!(
        offered.as_str(),
        Some(gateway.as_str()),
        "the profile's gateway is offered"
    );
    page.screenshot(&artifacts.join("sign-in.png")).await;
    page.fill("#email", &email).await;
    page.fill("#password", PASSWORD).await;
    page.click("#sign-in").await;

    // The console, signed in with the same credentials, in the app's window. Each page the
    // window passes through is said once on stderr, which a failure shows.
    let last_seen = std::sync::Mutex::new(String::new());
    until("the console's Home page", || async {
        let url = page.url().await;
        let heading = page
            .script("const h = document.querySelector('h1'); return h ? h.textContent : null;")
            .await;
        let seen = format!("{url} (h1: {heading})");
        let mut last = last_seen.lock().unwrap();
        if *last != seen {
            eprintln!("desktop e2e: the window shows {seen}");
            *last = seen;
        }
        (url.starts_with(&gateway) && heading.as_str() == Some("Home")).then_some(())
    })
    .await;
    until("the event stream connected", || async {
        let status = page.invoke("status", json!({})).await;
        (status["connected"] == true).then_some(())
    })
    .await;

    let token = http
        .post(format!("{gateway}/api/users/login"))
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["access_token"]
        .as_str()
        .expect("a token")
        .to_owned();
    let run_id = execute(
        &http,
        &gateway,
        &token,
        json!({ "name": "desktop-greeting", "steps": [
            { "id": "greet", "agent": "hello_world", "input": { "name": "${input.name}" } },
        ] }),
        json!({ "name": "Ada" }),
    )
    .await;
    let notice = notice_of(&page, &run_id).await;
    assert_eq!(notice["kind"], "finished", "{notice}");
    assert_eq!(notice["title"], "Run completed", "{notice}");
    assert_eq!(notice["body"], "desktop-greeting completed.", "{notice}");

    // A run that waits for an approval is told too, and counted as waiting in the tray.
    let gated_id = execute(
        &http,
        &gateway,
        &token,
        json!({ "name": "desktop-gated", "steps": [
            { "id": "approve", "approval": { "prompt": "Greet Ada?", "approvers": ["role:admin"] } },
        ] }),
        json!({}),
    )
    .await;
    let asked = notice_of(&page, &gated_id).await;
    assert_eq!(asked["kind"], "approval", "{asked}");
    assert_eq!(asked["body"], "desktop-gated: Greet Ada?", "{asked}");
    let status = page.invoke("status", json!({})).await;
    assert_eq!(status["waiting"], 1, "{status}");

    // The completion was shown by the desktop's daemon, and a click on it opens the run.
    let shown = notifications
        .shown_with("desktop-greeting completed.")
        .await;
    assert_eq!(shown["summary"], "Run completed", "{shown}");
    assert_eq!(shown["app"], "Sankalpa", "{shown}");
    assert_eq!(shown["actions"][0], "default", "{shown}");
    notifications.click(&shown, "default").await;
    until("the clicked run's page", || async {
        page.url()
            .await
            .ends_with(&format!("/runs/{run_id}"))
            .then_some(())
    })
    .await;

    // The gated run opens in the console as a sankalpa://runs/<id> link does.
    page.invoke("open_run", json!({ "id": gated_id })).await;
    until("the gated run's page", || async {
        page.url()
            .await
            .ends_with(&format!("/runs/{gated_id}"))
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    page.screenshot(&artifacts.join("run.png")).await;

    // The global shortcut opens a new chat, whatever has the focus: keys sent to the X server.
    let pressed = Command::new("xdotool")
        .args(["key", "ctrl+shift+space"])
        .env("DISPLAY", &display)
        .status()
        .await
        .expect("xdotool runs (make setup installs it)");
    assert!(pressed.success(), "xdotool: {pressed}");
    until("the chat, from the shortcut", || async {
        page.url().await.ends_with("/chat").then_some(())
    })
    .await;
    println!("desktop e2e: screenshots in {}", artifacts.display());

    page.call(reqwest::Method::DELETE, "", None).await;
    drop(processes);
}
