//! Services as child processes of the test, from the workspace's built binaries, for what an
//! in-process service cannot show: a `kill -9` (no destructor, no flush, sockets reset by the
//! kernel) and a restart of the same binary on the same addresses.
//!
//! The binaries are the ones `cargo nextest run --workspace` (and `make test`) builds beside the
//! test executables; a test run without them fails, naming the binary to build.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// The variables that put a child service on the test's own infrastructure: the test's
/// database (`pool`'s, on `infra`'s server), event stream, subject prefix and stream bound.
pub fn infra_env(
    infra: &sankalpa_kit::config::Infra,
    pool: &sqlx::PgPool,
) -> Vec<(String, String)> {
    let database = pool
        .connect_options()
        .get_database()
        .expect("the test database has a name")
        .to_owned();
    let database_url = match infra.database_url.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{database}"),
        None => panic!("a database URL ends with its database"),
    };
    [
        ("SANKALPA_DATABASE_URL", database_url),
        ("SANKALPA_EVENTS_STREAM", infra.events_stream.clone()),
        ("SANKALPA_SUBJECT_PREFIX", infra.subject_prefix.clone()),
        (
            "SANKALPA_EVENTS_MAX_BYTES",
            infra.events_max_bytes.to_string(),
        ),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value))
    .collect()
}

/// The two ports a backend service listens on (gRPC, and HTTP for its operations endpoints),
/// free when made.
pub struct Ports {
    pub grpc: u16,
    pub http: u16,
}

impl Ports {
    pub fn new() -> Self {
        Self {
            grpc: free_port(),
            http: free_port(),
        }
    }

    /// The variables that make the service `service` (`MEMORY`, `AGENTS`...) listen there.
    pub fn env(&self, service: &str) -> Vec<(String, String)> {
        vec![
            (
                format!("SANKALPA_{service}_GRPC_ADDR"),
                format!("127.0.0.1:{}", self.grpc),
            ),
            (
                format!("SANKALPA_{service}_HTTP_ADDR"),
                format!("127.0.0.1:{}", self.http),
            ),
        ]
    }

    pub fn grpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc)
    }

    pub fn ready_url(&self) -> String {
        format!("http://127.0.0.1:{}/readyz", self.http)
    }
}

impl Default for Ports {
    fn default() -> Self {
        Self::new()
    }
}

/// A service binary running as a child process, killed when dropped.
pub struct ServiceProcess {
    binary: PathBuf,
    env: Vec<(String, String)>,
    ready_url: String,
    child: Option<Child>,
}

/// The workspace binary `name` (e.g. `sankalpa-auth`), beside the running test executable.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its executable");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("a test executable lives in target/<profile>/deps");
    let binary = dir.join(name);
    assert!(
        binary.exists(),
        "{} is not built: run the tests with `cargo nextest run --workspace` (or `cargo build -p {name}`)",
        binary.display()
    );
    binary
}

/// Where [`free_port`] looks: below the kernel's ephemeral range (32768 and up on Linux by
/// default), from which every outgoing connection of every test takes its local port. A port
/// handed out from that range was seen taken by a Postgres or NATS client of a parallel test
/// before the child bound it ("Address already in use").
const CHILD_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A port free right now on 127.0.0.1, for a child to listen on: a random one of
/// [`CHILD_PORTS`] that binds.
pub fn free_port() -> u16 {
    let span = u128::from(CHILD_PORTS.end - CHILD_PORTS.start);
    (0..1_000)
        .map(|_| CHILD_PORTS.start + (uuid::Uuid::new_v4().as_u128() % span) as u16)
        .find(|port| TcpListener::bind(("127.0.0.1", *port)).is_ok())
        .expect("a free port among 1,000 tries")
}

impl ServiceProcess {
    /// Starts `binary` with `env` (on top of this process's) and waits until `ready_url`
    /// answers 200.
    pub async fn start(binary: PathBuf, env: Vec<(String, String)>, ready_url: String) -> Self {
        let mut process = Self {
            binary,
            env,
            ready_url,
            child: None,
        };
        process.restart().await;
        process
    }

    /// Starts the binary again with the same settings (after [`kill`](Self::kill)) and waits
    /// until it is ready.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "the service is still running");
        let child = Command::new(&self.binary)
            .envs(self.env.iter().map(|(key, value)| (key, value)))
            .env("SANKALPA_LOG_FORMAT", "json")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|err| panic!("{} starts: {err}", self.binary.display()));
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let ready = reqwest::get(&self.ready_url)
                .await
                .is_ok_and(|answer| answer.status().is_success());
            if ready {
                return;
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten());
            assert!(
                exited.is_none(),
                "{} exited: {exited:?}",
                self.binary.display()
            );
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} not ready at {}",
                self.binary.display(),
                self.ready_url
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Asks the process to stop with SIGTERM, as Kubernetes does in a rolling update, and waits
    /// for it to exit (it drains first).
    pub async fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id().expect("a running child has a pid");
            let sent = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await
                .expect("kill runs");
            assert!(sent.success(), "SIGTERM reaches {pid}");
            let exited = tokio::time::timeout(Duration::from_secs(60), child.wait())
                .await
                .unwrap_or_else(|_| panic!("{} did not exit after SIGTERM", self.binary.display()))
                .expect("the child can be waited for");
            assert!(
                exited.success(),
                "{} exited {exited}",
                self.binary.display()
            );
        }
    }

    /// Ends the process with SIGKILL, as a lost node or an OOM kill would, and waits for it.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("the child can be killed");
        }
    }
}
