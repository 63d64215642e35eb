//! Client-side balancing over a service's replicas, request by request.
//!
//! A tonic channel to one address keeps one HTTP/2 connection, so behind a Kubernetes ClusterIP
//! every call of a client pod goes to the one server pod it first reached, and a new replica
//! gets no traffic from the clients already running. [`Peers`] instead keeps one connection per
//! replica and spreads requests over them (tower's power of two choices on requests in flight).
//!
//! The replicas are the addresses of the peer URL: a comma-separated list, where each host is
//! an IP address or a name. Names (a headless Service returns every ready pod) are resolved
//! again every `SANKALPA_GRPC_RESOLVE_MS` (5 s) and whenever a call is refused. Every replica is
//! asked the standard health check every `SANKALPA_GRPC_PROBE_MS` (1 s): one that does not
//! answer SERVING within `SANKALPA_GRPC_PROBE_TIMEOUT_MS` (1 s) leaves the rotation until it
//! does — a draining server reports NOT_SERVING before it closes, so its clients have left
//! when it stops. When no replica is healthy, all of them stay in, so that calls fail at once
//! with UNAVAILABLE instead of waiting.
//!
//! A call refused before it reached a server (the connection could not be made) is sent again,
//! up to [`ATTEMPTS`] times in all, once the replicas have been probed again: it never started,
//! so repeating it is safe whatever it does. Client-streaming calls are not repeated (their
//! request is not kept); a call that failed after it was sent is never repeated here.

use std::collections::{HashMap, HashSet};
use std::error::Error as StdError;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;
use tonic::body::Body;
use tonic::transport::channel::Change;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tower::ServiceExt;

use crate::config::{self, ConfigError};

/// How many times a refused call is sent, the first included.
pub const ATTEMPTS: usize = 3;

type BoxError = Box<dyn StdError + Send + Sync>;

/// How often the replicas are looked up and asked for their health.
#[derive(Debug, Clone, Copy)]
pub struct Probing {
    pub resolve_every: Duration,
    pub probe_every: Duration,
    pub probe_timeout: Duration,
}

impl Probing {
    /// `SANKALPA_GRPC_RESOLVE_MS`, `SANKALPA_GRPC_PROBE_MS`, `SANKALPA_GRPC_PROBE_TIMEOUT_MS`.
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            resolve_every: config::millis("SANKALPA_GRPC_RESOLVE_MS", Duration::from_secs(5))?,
            probe_every: config::millis("SANKALPA_GRPC_PROBE_MS", Duration::from_secs(1))?,
            probe_timeout: config::millis(
                "SANKALPA_GRPC_PROBE_TIMEOUT_MS",
                Duration::from_secs(1),
            )?,
        })
    }
}

/// Where replicas are found: a fixed address, or a name to look up.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    Address(SocketAddr),
    Name { host: String, port: u16 },
}

impl Target {
    /// The target of a peer URL (`http://host:port`).
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let uri: http::Uri = url
            .parse()
            .map_err(|err| anyhow::anyhow!("{url:?} is not a gRPC endpoint URL: {err}"))?;
        if uri.scheme_str() != Some("http") {
            anyhow::bail!("{url:?} is not a gRPC endpoint URL: the scheme must be http");
        }
        let host = uri
            .host()
            .ok_or_else(|| anyhow::anyhow!("{url:?} is not a gRPC endpoint URL: no host"))?;
        let port = uri
            .port_u16()
            .ok_or_else(|| anyhow::anyhow!("{url:?} is not a gRPC endpoint URL: no port"))?;
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        Ok(match literal.parse::<std::net::IpAddr>() {
            Ok(ip) => Self::Address(SocketAddr::new(ip, port)),
            Err(_) => Self::Name {
                host: host.to_owned(),
                port,
            },
        })
    }
}

/// Looks names up: the system's resolver in services, a scripted one in tests.
pub trait Resolve: Send + Sync + 'static {
    fn resolve(
        &self,
        host: &str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send + '_>>;
}

/// The operating system's resolver (`/etc/hosts`, then DNS).
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(
        &self,
        host: &str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send + '_>> {
        let host = host.to_owned();
        Box::pin(async move { Ok(tokio::net::lookup_host((host, port)).await?.collect()) })
    }
}

/// A client channel over every replica of one service; see the module's documentation.
#[derive(Clone)]
pub struct Peers {
    channel: Channel,
    watcher: Option<Arc<Watcher>>,
}

/// The client side of the task that keeps the rotation current.
struct Watcher {
    /// Asks for a lookup and a probe now.
    wake: Notify,
    /// How many probe rounds have ended; a refused call waits for the next.
    rounds: watch::Receiver<u64>,
    probe_timeout: Duration,
}

impl Peers {
    /// One replica at a fixed address: a plain lazily connecting channel, nothing to balance.
    pub fn single(endpoint: &Endpoint) -> Self {
        Self {
            channel: endpoint.connect_lazy(),
            watcher: None,
        }
    }

    /// Balances over whatever `targets` name, kept current by a task that ends with the last
    /// clone of the channel. `endpoint` makes the settings of each replica's connection.
    pub fn watch(
        targets: Vec<Target>,
        resolver: Arc<dyn Resolve>,
        probing: Probing,
        endpoint: fn(SocketAddr) -> Endpoint,
    ) -> Self {
        let (channel, changes) = Channel::balance_channel(targets.len().max(16));
        let (rounds_tx, rounds) = watch::channel(0);
        let watcher = Arc::new(Watcher {
            wake: Notify::new(),
            rounds,
            probe_timeout: probing.probe_timeout,
        });
        let rotation = Rotation {
            targets,
            resolver,
            probing,
            endpoint,
            changes,
            rounds: rounds_tx,
            members: HashMap::new(),
            resolved: HashMap::new(),
        };
        tokio::spawn(rotation.run(Arc::downgrade(&watcher)));
        Self {
            channel,
            watcher: Some(watcher),
        }
    }
}

impl tower::Service<http::Request<Body>> for Peers {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Each call waits for a clone of the channel to be ready, so a retry can wait again.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let channel = self.channel.clone();
        let watcher = self.watcher.clone();
        Box::pin(async move {
            match watcher {
                Some(watcher) if !client_streaming(request.uri().path()) => {
                    send_retrying(channel, &watcher, request).await
                }
                _ => Ok(channel.oneshot(request).await?),
            }
        })
    }
}

async fn send_retrying(
    channel: Channel,
    watcher: &Watcher,
    request: http::Request<Body>,
) -> Result<http::Response<Body>, BoxError> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes();
    let mut attempt = 1;
    loop {
        let request = http::Request::from_parts(parts.clone(), Body::new(Full::new(body.clone())));
        let round = *watcher.rounds.borrow();
        match channel.clone().oneshot(request).await {
            Err(error) if attempt < ATTEMPTS && refused(&error) => {
                attempt += 1;
                metrics::counter!("grpc_client_retries_total", "rpc" => parts.uri.path().to_owned())
                    .increment(1);
                watcher.wake.notify_one();
                let mut rounds = watcher.rounds.clone();
                let probed = rounds.wait_for(|now| *now > round);
                // A lookup can take a while; past it the call is sent again all the same.
                let _ = tokio::time::timeout(watcher.probe_timeout * 2, probed).await;
            }
            other => return Ok(other?),
        }
    }
}

/// Whether the call never reached a server: its connection could not be made.
fn refused(error: &(dyn StdError + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error.is::<tonic::ConnectError>() {
            return true;
        }
        cause = error.source();
    }
    false
}

/// Whether the method at `path` streams its requests (such a request cannot be kept to send
/// again).
fn client_streaming(path: &str) -> bool {
    static STREAMING: OnceLock<HashSet<String>> = OnceLock::new();
    STREAMING
        .get_or_init(|| {
            use prost::Message;
            let files = prost_types::FileDescriptorSet::decode(sankalpa_proto::FILE_DESCRIPTOR_SET)
                .expect("the compiled descriptor set decodes");
            files
                .file
                .iter()
                .flat_map(|file| {
                    file.service.iter().flat_map(move |service| {
                        service
                            .method
                            .iter()
                            .filter(|method| method.client_streaming())
                            .map(move |method| {
                                format!("/{}.{}/{}", file.package(), service.name(), method.name())
                            })
                    })
                })
                .collect()
        })
        .contains(path)
}

/// One replica: its own connection for health checks, and whether the balance has it.
struct Member {
    health: HealthClient<Channel>,
    in_rotation: bool,
}

/// The task behind a [`Peers`]: looks the targets up, probes every replica and tells the
/// balance which to use.
struct Rotation {
    targets: Vec<Target>,
    resolver: Arc<dyn Resolve>,
    probing: Probing,
    endpoint: fn(SocketAddr) -> Endpoint,
    changes: mpsc::Sender<Change<SocketAddr, Endpoint>>,
    rounds: watch::Sender<u64>,
    members: HashMap<SocketAddr, Member>,
    /// What each name resolved to last: kept when a lookup fails, rather than losing them all.
    resolved: HashMap<Target, Vec<SocketAddr>>,
}

impl Rotation {
    async fn run(mut self, watcher: std::sync::Weak<Watcher>) {
        let mut next_lookup = Instant::now();
        loop {
            let Some(wake) = watcher.upgrade() else {
                return;
            };
            let woken = async { wake.wake.notified().await };
            if Instant::now() >= next_lookup {
                self.look_up().await;
                next_lookup = Instant::now() + self.probing.resolve_every;
            }
            if self.probe().await.is_err() {
                return;
            }
            self.rounds.send_modify(|rounds| *rounds += 1);
            tokio::select! {
                () = tokio::time::sleep(self.probing.probe_every) => {}
                () = woken => next_lookup = Instant::now(),
                () = self.changes.closed() => return,
            }
        }
    }

    /// Brings the members in line with what the targets name now.
    async fn look_up(&mut self) {
        let mut addresses = HashSet::new();
        for target in &self.targets {
            match target {
                Target::Address(address) => {
                    addresses.insert(*address);
                }
                Target::Name { host, port } => {
                    match self.resolver.resolve(host, *port).await {
                        Ok(found) => {
                            self.resolved.insert(target.clone(), found);
                        }
                        Err(error) => tracing::warn!(%host, %error, "could not look up a peer"),
                    }
                    addresses.extend(self.resolved.get(target).into_iter().flatten());
                }
            }
        }
        let gone: Vec<SocketAddr> = self
            .members
            .keys()
            .filter(|address| !addresses.contains(address))
            .copied()
            .collect();
        for address in gone {
            if self
                .members
                .remove(&address)
                .is_some_and(|member| member.in_rotation)
            {
                let _ = self.changes.send(Change::Remove(address)).await;
            }
        }
        // A new replica serves until a probe says otherwise: calls need not wait for the first.
        for address in addresses {
            if self.members.contains_key(&address) {
                continue;
            }
            let endpoint = (self.endpoint)(address);
            let member = Member {
                health: HealthClient::new(endpoint.connect_lazy()),
                in_rotation: true,
            };
            let _ = self.changes.send(Change::Insert(address, endpoint)).await;
            self.members.insert(address, member);
        }
    }

    /// Asks every member for its health, then puts the healthy ones in the rotation (all of
    /// them when none is). Errs when the balance is gone.
    async fn probe(&mut self) -> Result<(), ()> {
        let timeout = self.probing.probe_timeout;
        let checks = self.members.iter().map(|(address, member)| {
            let mut health = member.health.clone();
            async move {
                let check = health.check(HealthCheckRequest {
                    service: String::new(),
                });
                let serving = matches!(
                    tokio::time::timeout(timeout, check).await,
                    Ok(Ok(answer)) if answer.get_ref().status() == ServingStatus::Serving
                );
                (*address, serving)
            }
        });
        let healthy: HashSet<SocketAddr> = futures::future::join_all(checks)
            .await
            .into_iter()
            .filter_map(|(address, serving)| serving.then_some(address))
            .collect();
        let everyone = healthy.is_empty();
        for (address, member) in &mut self.members {
            let wanted = everyone || healthy.contains(address);
            if wanted == member.in_rotation {
                continue;
            }
            let change = if wanted {
                Change::Insert(*address, (self.endpoint)(*address))
            } else {
                Change::Remove(*address)
            };
            self.changes.send(change).await.map_err(|_| ())?;
            member.in_rotation = wanted;
        }
        Ok(())
    }
}
