//! A fleet of the bench's own: the release binaries of every service as child processes on free
//! ports, against the bench database, with rate limits and quotas lifted, publishing to a
//! JetStream stream of its own; killed when dropped, its stream deleted.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use reqwest::Client;

use crate::env_or;

const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Requests per window given to every rate-limit class of a fleet the bench starts itself
/// (whatever the window), so the bench measures the gateway's work and never its 429s.
const UNLIMITED: &str = "1000000000";

/// The child processes of a fleet the bench started itself; killed when dropped.
#[derive(Default)]
pub struct Fleet {
    children: Vec<(&'static str, Child, PathBuf)>,
    /// The JetStream stream its events go to, and what every service of it is told of it.
    events: Option<(String, Vec<(&'static str, String)>)>,
    /// What every service is told beside its own settings (where to export telemetry).
    shared_env: Vec<(&'static str, String)>,
}

impl Fleet {
    /// Has every service export its spans and metrics to the OTLP collector at `endpoint`.
    pub fn export_to(&mut self, endpoint: &str) {
        self.shared_env
            .push(("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.to_owned()));
    }

    /// The subject prefix of its events, once started.
    pub fn subject_prefix(&self) -> Option<String> {
        let (_, env) = self.events.as_ref()?;
        env.iter()
            .find(|(name, _)| *name == "SANKALPA_SUBJECT_PREFIX")
            .map(|(_, prefix)| prefix.clone())
    }

    /// Starts auth, waits for it, then memory, agent-runner, the chain orchestrator, the
    /// marketplace (seeded once it has migrated) and the triggers service, each waited for,
    /// then the gateway in front of them; gives the gateway's URL.
    pub async fn start(&mut self, client: &Client) -> Result<String> {
        let bin_dir = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(dir) => PathBuf::from(dir).join("release"),
            None => std::env::current_exe()?
                .parent()
                .context("the bench binary has no parent directory")?
                .to_path_buf(),
        };
        let database_url = env_or(
            "SANKALPA_DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/sankalpa_bench",
        );
        let [
            auth_grpc,
            auth_http,
            memory_grpc,
            memory_http,
            agents_grpc,
            agents_http,
            chains_grpc,
            chains_http,
            market_grpc,
            market_http,
            triggers_grpc,
            triggers_http,
            gateway,
        ] = free_ports()?;
        let objects = bin_dir.join("bench-objects").to_string_lossy().into_owned();
        // The catalogs by absolute path, so the bench runs from any directory.
        let catalog = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../catalog");

        // Its own stream and subjects: a run publishes a few hundred megabytes of events, which
        // would push a `make run` fleet's events out of the shared stream, and publishing into a
        // full stream (each event evicting the oldest) is a cost the bench should not vary by.
        let run = uuid::Uuid::new_v4().simple().to_string();
        let stream = format!("SANKALPA_BENCH_{run}");
        self.events = Some((
            stream.clone(),
            vec![
                ("SANKALPA_EVENTS_STREAM", stream),
                ("SANKALPA_SUBJECT_PREFIX", format!("bench-{run}.")),
            ],
        ));

        self.spawn(
            "auth",
            &bin_dir.join("sankalpa-auth"),
            &[
                ("SANKALPA_DATABASE_URL", database_url.clone()),
                ("SANKALPA_AUTH_GRPC_ADDR", format!("127.0.0.1:{auth_grpc}")),
                ("SANKALPA_AUTH_HTTP_ADDR", format!("127.0.0.1:{auth_http}")),
            ],
        )?;
        wait_ready(
            client,
            &format!("http://127.0.0.1:{auth_http}/readyz"),
            self,
        )
        .await?;

        // Its own Redis keys (rate-limit counters, memory's cache), apart from any other fleet
        // on this Redis.
        let prefix = format!("bench:{}:", uuid::Uuid::new_v4().simple());
        self.spawn(
            "memory",
            &bin_dir.join("sankalpa-memory"),
            &[
                ("SANKALPA_DATABASE_URL", database_url.clone()),
                (
                    "SANKALPA_MEMORY_GRPC_ADDR",
                    format!("127.0.0.1:{memory_grpc}"),
                ),
                (
                    "SANKALPA_MEMORY_HTTP_ADDR",
                    format!("127.0.0.1:{memory_http}"),
                ),
                ("SANKALPA_AUTH_URL", format!("http://127.0.0.1:{auth_grpc}")),
                ("SANKALPA_REDIS_KEY_PREFIX", prefix.clone()),
                // Backups are not benched; this only keeps memory from writing into the
                // current directory.
                ("SANKALPA_OBJECT_STORE_URL", objects.clone()),
            ],
        )?;
        wait_ready(
            client,
            &format!("http://127.0.0.1:{memory_http}/readyz"),
            self,
        )
        .await?;

        self.spawn(
            "agent-runner",
            &bin_dir.join("sankalpa-agent-runner"),
            &[
                ("SANKALPA_DATABASE_URL", database_url.clone()),
                (
                    "SANKALPA_AGENTS_GRPC_ADDR",
                    format!("127.0.0.1:{agents_grpc}"),
                ),
                (
                    "SANKALPA_AGENTS_HTTP_ADDR",
                    format!("127.0.0.1:{agents_http}"),
                ),
                ("SANKALPA_AUTH_URL", format!("http://127.0.0.1:{auth_grpc}")),
                (
                    "SANKALPA_MEMORY_URL",
                    format!("http://127.0.0.1:{memory_grpc}"),
                ),
                (
                    "SANKALPA_AGENTS_CATALOG",
                    catalog.join("agents.json").to_string_lossy().into_owned(),
                ),
                ("SANKALPA_OBJECT_STORE_URL", objects.clone()),
                // 0: no limit (see the orchestrator's quota below).
                (
                    "SANKALPA_AGENTS_MAX_CONCURRENT_RUNS_PER_TENANT",
                    "0".to_owned(),
                ),
            ],
        )?;
        wait_ready(
            client,
            &format!("http://127.0.0.1:{agents_http}/readyz"),
            self,
        )
        .await?;

        self.spawn(
            "chain-orchestrator",
            &bin_dir.join("sankalpa-chain-orchestrator"),
            &[
                ("SANKALPA_DATABASE_URL", database_url.clone()),
                (
                    "SANKALPA_CHAINS_GRPC_ADDR",
                    format!("127.0.0.1:{chains_grpc}"),
                ),
                (
                    "SANKALPA_CHAINS_HTTP_ADDR",
                    format!("127.0.0.1:{chains_http}"),
                ),
                ("SANKALPA_AUTH_URL", format!("http://127.0.0.1:{auth_grpc}")),
                (
                    "SANKALPA_AGENTS_URL",
                    format!("http://127.0.0.1:{agents_grpc}"),
                ),
                // Runs save each step's output in their memory session.
                (
                    "SANKALPA_MEMORY_URL",
                    format!("http://127.0.0.1:{memory_grpc}"),
                ),
                (
                    "SANKALPA_CHAINS_CATALOG",
                    catalog.join("chains").to_string_lossy().into_owned(),
                ),
                // One tenant drives the whole bench: the per-tenant quotas, which keep tenants
                // from starving each other, are lifted like the rate limits.
                (
                    "SANKALPA_CHAINS_MAX_CONCURRENT_RUNS_PER_TENANT",
                    UNLIMITED.to_owned(),
                ),
            ],
        )?;
        wait_ready(
            client,
            &format!("http://127.0.0.1:{chains_http}/readyz"),
            self,
        )
        .await?;

        self.spawn(
            "marketplace",
            &bin_dir.join("sankalpa-marketplace"),
            &[
                ("SANKALPA_DATABASE_URL", database_url.clone()),
                (
                    "SANKALPA_MARKETPLACE_GRPC_ADDR",
                    format!("127.0.0.1:{market_grpc}"),
                ),
                (
                    "SANKALPA_MARKETPLACE_HTTP_ADDR",
                    format!("127.0.0.1:{market_http}"),
                ),
                ("SANKALPA_AUTH_URL", format!("http://127.0.0.1:{auth_grpc}")),
                (
                    "SANKALPA_CHAINS_URL",
                    format!("http://127.0.0.1:{chains_grpc}"),
                ),
                (
                    "SANKALPA_AGENTS_URL",
                    format!("http://127.0.0.1:{agents_grpc}"),
                ),
                ("SANKALPA_OBJECT_STORE_URL", objects),
            ],
        )?;
        // Ready means migrated: the items table exists to be seeded.
        wait_ready(
            client,
            &format!("http://127.0.0.1:{market_http}/readyz"),
            self,
        )
        .await?;
        crate::market::seed(&database_url).await?;

        self.spawn(
            "triggers",
            &bin_dir.join("sankalpa-triggers"),
            &[
                ("SANKALPA_DATABASE_URL", database_url.clone()),
                (
                    "SANKALPA_TRIGGERS_GRPC_ADDR",
                    format!("127.0.0.1:{triggers_grpc}"),
                ),
                (
                    "SANKALPA_TRIGGERS_HTTP_ADDR",
                    format!("127.0.0.1:{triggers_http}"),
                ),
                ("SANKALPA_AUTH_URL", format!("http://127.0.0.1:{auth_grpc}")),
                (
                    "SANKALPA_CHAINS_URL",
                    format!("http://127.0.0.1:{chains_grpc}"),
                ),
                // The webhooks' receiver is the bench's own, on the loopback over http.
                ("SANKALPA_TRIGGERS_ALLOW_HTTP", "true".to_owned()),
                (
                    "SANKALPA_TRIGGERS_ALLOW_PRIVATE_NETWORKS",
                    "127.0.0.0/8".to_owned(),
                ),
            ],
        )?;
        wait_ready(
            client,
            &format!("http://127.0.0.1:{triggers_http}/readyz"),
            self,
        )
        .await?;

        self.spawn(
            "gateway",
            &bin_dir.join("sankalpa-gateway"),
            &[
                ("SANKALPA_DATABASE_URL", database_url),
                ("SANKALPA_GATEWAY_ADDR", format!("127.0.0.1:{gateway}")),
                ("SANKALPA_AUTH_URL", format!("http://127.0.0.1:{auth_grpc}")),
                (
                    "SANKALPA_MEMORY_URL",
                    format!("http://127.0.0.1:{memory_grpc}"),
                ),
                (
                    "SANKALPA_AGENTS_URL",
                    format!("http://127.0.0.1:{agents_grpc}"),
                ),
                (
                    "SANKALPA_CHAINS_URL",
                    format!("http://127.0.0.1:{chains_grpc}"),
                ),
                (
                    "SANKALPA_MARKETPLACE_URL",
                    format!("http://127.0.0.1:{market_grpc}"),
                ),
                (
                    "SANKALPA_TRIGGERS_URL",
                    format!("http://127.0.0.1:{triggers_grpc}"),
                ),
                ("SANKALPA_REDIS_KEY_PREFIX", prefix),
                ("SANKALPA_RATE_LIMIT_ANONYMOUS", UNLIMITED.to_owned()),
                ("SANKALPA_RATE_LIMIT_AUTHENTICATED", UNLIMITED.to_owned()),
                ("SANKALPA_RATE_LIMIT_LOGIN", UNLIMITED.to_owned()),
                ("SANKALPA_RATE_LIMIT_LOGIN_ACCOUNT", UNLIMITED.to_owned()),
            ],
        )?;
        Ok(format!("http://127.0.0.1:{gateway}"))
    }

    fn spawn(&mut self, name: &'static str, binary: &Path, env: &[(&str, String)]) -> Result<()> {
        let log_path = binary.with_file_name(format!("bench-{name}.log"));
        let log = File::create(&log_path)
            .with_context(|| format!("Failed to create {}", log_path.display()))?;
        let events = self.events.iter().flat_map(|(_, env)| env);
        let child = Command::new(binary)
            .envs(
                env.iter()
                    .chain(events)
                    .chain(&self.shared_env)
                    .map(|(key, value)| (key, value)),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| {
                format!(
                    "Failed to start {} (build it with `make bench`)",
                    binary.display()
                )
            })?;
        eprintln!(
            "bench: started {name} (pid {}), log in {}",
            child.id(),
            log_path.display()
        );
        self.children.push((name, child, log_path));
        Ok(())
    }

    /// The process id of the service `name`, if the bench started it.
    pub fn pid(&self, name: &str) -> Option<u32> {
        self.children
            .iter()
            .find(|(child_name, ..)| *child_name == name)
            .map(|(_, child, _)| child.id())
    }

    /// An error naming the first child that has exited, if any.
    fn check_running(&mut self) -> Result<()> {
        for (name, child, log_path) in &mut self.children {
            if let Some(status) = child.try_wait()? {
                bail!("{name} exited ({status}); see {}", log_path.display());
            }
        }
        Ok(())
    }

    /// Kills the children. Nothing to flush: the bench database is dropped afterwards.
    pub fn stop(&mut self) {
        for (name, mut child, _) in self.children.drain(..) {
            if let Err(err) = child.kill() {
                eprintln!("bench: could not kill {name}: {err}");
            }
            let _ = child.wait();
        }
    }

    /// Deletes the fleet's stream, once its services are stopped.
    pub async fn remove_stream(&mut self) {
        let Some((stream, _)) = self.events.take() else {
            return;
        };
        let nats_url = env_or("SANKALPA_NATS_URL", "nats://127.0.0.1:4222");
        let removed = async {
            let client = async_nats::connect(&nats_url).await?;
            async_nats::jetstream::new(client)
                .delete_stream(&stream)
                .await?;
            anyhow::Ok(())
        };
        if let Err(err) = removed.await {
            eprintln!("bench: could not delete stream {stream}: {err:#}");
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Polls `url` until it answers 2xx, failing early if a child of `fleet` dies.
pub async fn wait_ready(client: &Client, url: &str, fleet: &mut Fleet) -> Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        fleet.check_running()?;
        match client.get(url).timeout(Duration::from_secs(1)).send().await {
            Ok(response) if response.status().is_success() => return Ok(()),
            _ if Instant::now() >= deadline => bail!("{url} not ready after {READY_TIMEOUT:?}"),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// `N` distinct ports that were free a moment ago. Every listener is held until all are chosen:
/// a port released at once may be handed out again by the next bind, and two services would
/// then collide. The small race left (another process taking one before its service binds) is
/// acceptable for a bench; the service would fail loudly.
fn free_ports<const N: usize>() -> Result<[u16; N]> {
    let listeners = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    let mut ports = [0; N];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener.local_addr()?.port();
    }
    Ok(ports)
}
