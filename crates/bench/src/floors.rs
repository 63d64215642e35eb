//! Floors: what the machine does with the same client and the same parts but none of
//! Sankalpa's work, measured in the same run, so a scenario is judged by its ratio to a floor
//! rather than by an absolute figure that changes from machine to machine and day to day.
//!
//! Two tiny servers run on a Tokio runtime of their own (as a service would in its own
//! process): an axum JSON echo, and an axum handler that calls a tonic service (gRPC health
//! `Check`) over one channel — the gateway-to-service hop. The storage floors talk to the same
//! Postgres, Redis and JetStream the fleet uses.

use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Json;
use axum::extract::State;
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::runtime::Runtime;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::line::{Floors, Line, Results};
use crate::load::{HttpOp, HttpTarget, Op, closed_loop};

pub const HTTP_ECHO: &str = "floor: JSON echo (axum, HTTP/1.1)";
pub const HOP: &str = "floor: HTTP to gRPC hop (axum calling tonic over one channel)";
pub const PG_INSERT: &str = "floor: Postgres single-row insert";
pub const PG_SELECT: &str = "floor: Postgres primary-key select";
pub const REDIS_GET: &str = "floor: Redis GET (one multiplexed connection)";
pub const JETSTREAM_PUBLISH: &str = "floor: JetStream publish, acked";

/// Every floor, with the concurrencies it is measured at: those of the scenarios judged by it.
pub const ALL: &[(&str, &[usize])] = &[
    (HTTP_ECHO, &[1, 64]),
    (HOP, &[1, 16, 64]),
    (PG_INSERT, &[1, 16]),
    (PG_SELECT, &[1, 16]),
    (REDIS_GET, &[1, 64]),
    (JETSTREAM_PUBLISH, &[1, 256]),
];

/// Rows the primary-key select picks from.
const SELECT_ROWS: i64 = 1_000;

/// An operation made of a closure giving the next call's future.
struct FnOp<F>(F);

impl<F, Fut> Op for FnOp<F>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    fn call(&mut self) -> impl Future<Output = Result<(), String>> + Send {
        (self.0)()
    }
}

/// The two floor servers, on `runtime`; they stop when it is dropped.
pub struct Servers {
    echo: Arc<HttpTarget>,
    hop: Arc<HttpTarget>,
}

impl Servers {
    pub fn start(runtime: &Runtime) -> Result<Self> {
        let echo = bind()?;
        let hop = bind()?;
        let grpc = bind()?;
        let echo_address = echo.local_addr()?.to_string();
        let hop_address = hop.local_addr()?.to_string();
        let grpc_address = grpc.local_addr()?.to_string();

        runtime.spawn(async move {
            let app = axum::Router::new().route("/echo", post(echo_json));
            let listener = tokio::net::TcpListener::from_std(echo).expect("a bound listener");
            axum::serve(listener, app).await
        });
        runtime.spawn(async move {
            let (_reporter, health) = tonic_health::server::health_reporter();
            let incoming = tonic::transport::server::TcpIncoming::from(
                tokio::net::TcpListener::from_std(grpc).expect("a bound listener"),
            )
            .with_nodelay(Some(true));
            tonic::transport::Server::builder()
                .add_service(health)
                .serve_with_incoming(incoming)
                .await
        });
        let channel = {
            let _runtime = runtime.enter();
            tonic::transport::Endpoint::from_shared(format!("http://{grpc_address}"))?
                .tcp_nodelay(true)
                .connect_lazy()
        };
        runtime.spawn(async move {
            let app = axum::Router::new()
                .route("/hop", get(call_service))
                .with_state(HealthClient::new(channel));
            let listener = tokio::net::TcpListener::from_std(hop).expect("a bound listener");
            axum::serve(listener, app).await
        });
        Ok(Self {
            echo: Arc::new(HttpTarget::new(echo_address)?),
            hop: Arc::new(HttpTarget::new(hop_address)?),
        })
    }
}

fn bind() -> Result<TcpListener> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

async fn echo_json(Json(body): Json<Value>) -> Json<Value> {
    Json(body)
}

async fn call_service(
    State(mut client): State<HealthClient<tonic::transport::Channel>>,
) -> Result<Json<Value>, String> {
    let answer = client
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map_err(|status| status.to_string())?;
    Ok(Json(json!({ "status": answer.into_inner().status })))
}

/// Where the storage floors write: the fleet's own infrastructure.
pub struct Infra {
    pub database_url: String,
    pub redis_url: String,
    pub nats_url: String,
}

/// Measures each floor in `wanted` at its concurrencies, prints its lines and records them in
/// `floors`. Whatever a floor creates (a table, a key, a stream) is removed afterwards.
pub async fn measure(
    servers: &Servers,
    infra: &Infra,
    wanted: &[&'static str],
    duration: Duration,
    floors: &mut Floors,
    results: &mut Results,
) -> Result<()> {
    let client = reqwest::Client::new();
    for &(floor, concurrencies) in ALL {
        if !wanted.contains(&floor) {
            continue;
        }
        let postgres = match floor {
            PG_INSERT | PG_SELECT => Some(Postgres::prepare(infra, 16).await?),
            _ => None,
        };
        let redis = match floor {
            REDIS_GET => Some(Redis::prepare(infra).await?),
            _ => None,
        };
        let jetstream = match floor {
            JETSTREAM_PUBLISH => Some(JetStream::prepare(infra).await?),
            _ => None,
        };
        for &concurrency in concurrencies {
            eprintln!(
                "bench: {floor} at concurrency {concurrency} for {}s",
                duration.as_secs()
            );
            let report = match floor {
                HTTP_ECHO => {
                    let client = client.clone();
                    let url = format!("http://{}/echo", servers.echo.address);
                    let request = Arc::new(move || {
                        client.post(&url).json(
                            &json!({ "session_id": "bench", "key": "k", "value": { "n": 1 } }),
                        )
                    });
                    closed_loop(concurrency, duration, || {
                        HttpOp::new(Arc::clone(&servers.echo), request.clone())
                    })
                    .await?
                }
                HOP => {
                    let client = client.clone();
                    let url = format!("http://{}/hop", servers.hop.address);
                    let request = Arc::new(move || client.get(&url));
                    closed_loop(concurrency, duration, || {
                        HttpOp::new(Arc::clone(&servers.hop), request.clone())
                    })
                    .await?
                }
                PG_INSERT => {
                    let pool = postgres.as_ref().expect("prepared above").pool.clone();
                    closed_loop(concurrency, duration, || {
                        let pool = pool.clone();
                        FnOp(move || {
                            let pool = pool.clone();
                            async move {
                                sqlx::query("INSERT INTO bench_floor (payload) VALUES ($1)")
                                    .bind(json!({ "step": "plan", "n": 1 }))
                                    .execute(&pool)
                                    .await
                                    .map(drop)
                                    .map_err(|err| err.to_string())
                            }
                        })
                    })
                    .await?
                }
                PG_SELECT => {
                    let pool = postgres.as_ref().expect("prepared above").pool.clone();
                    let mut worker = 0i64;
                    closed_loop(concurrency, duration, || {
                        let pool = pool.clone();
                        worker += 1;
                        let mut id = worker;
                        FnOp(move || {
                            let pool = pool.clone();
                            id = id % SELECT_ROWS + 1;
                            async move {
                                sqlx::query("SELECT payload FROM bench_floor WHERE id = $1")
                                    .bind(id)
                                    .fetch_one(&pool)
                                    .await
                                    .map(drop)
                                    .map_err(|err| err.to_string())
                            }
                        })
                    })
                    .await?
                }
                REDIS_GET => {
                    let redis = redis.as_ref().expect("prepared above");
                    let (connection, key) = (redis.connection.clone(), redis.key.clone());
                    closed_loop(concurrency, duration, || {
                        let (connection, key) = (connection.clone(), key.clone());
                        FnOp(move || {
                            let (mut connection, key) = (connection.clone(), key.clone());
                            async move {
                                redis::cmd("GET")
                                    .arg(&key)
                                    .query_async::<Option<String>>(&mut connection)
                                    .await
                                    .map(drop)
                                    .map_err(|err| err.to_string())
                            }
                        })
                    })
                    .await?
                }
                JETSTREAM_PUBLISH => {
                    let stream = jetstream.as_ref().expect("prepared above");
                    let (context, subject) = (stream.context.clone(), stream.subject.clone());
                    closed_loop(concurrency, duration, || {
                        let (context, subject) = (context.clone(), subject.clone());
                        FnOp(move || {
                            let (context, subject) = (context.clone(), subject.clone());
                            async move {
                                let ack = context
                                    .publish(subject, EVENT_SIZED.into())
                                    .await
                                    .map_err(|err| err.to_string())?;
                                ack.await.map(drop).map_err(|err| err.to_string())
                            }
                        })
                    })
                    .await?
                }
                _ => unreachable!("every floor of ALL is measured above"),
            };
            let line = Line::new(floor, concurrency, &report);
            floors.record(floor, &line);
            results.print(&line);
        }
        if let Some(postgres) = postgres {
            postgres.remove().await;
        }
        if let Some(redis) = redis {
            redis.remove().await;
        }
        if let Some(jetstream) = jetstream {
            jetstream.remove().await;
        }
    }
    Ok(())
}

/// A payload the size of a small CloudEvent (about 400 bytes), as the fleet publishes.
const EVENT_SIZED: &[u8] = br#"{"specversion":"1.0","id":"0192a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b","source":"/sankalpa/bench/floor","type":"sankalpa.bench.floor","subject":"bench","time":"2026-12-04T00:00:00.000000Z","datacontenttype":"application/json","tenantid":"00000000-0000-4000-8000-000000000000","data":{"run_id":"bench-floor","agent":"hello_world","status":"completed","duration_ms":0,"artifacts":0,"llm_used":false}}"#;

struct Postgres {
    pool: sqlx::PgPool,
}

impl Postgres {
    async fn prepare(infra: &Infra, connections: u32) -> Result<Self> {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(connections)
            .connect(&infra.database_url)
            .await
            .context("Failed to connect to Postgres for the floors")?;
        sqlx::raw_sql(
            "DROP TABLE IF EXISTS bench_floor; \
             CREATE TABLE bench_floor (id bigserial PRIMARY KEY, payload jsonb NOT NULL)",
        )
        .execute(&pool)
        .await?;
        sqlx::query(
            "INSERT INTO bench_floor (payload) \
             SELECT jsonb_build_object('step', 'plan', 'n', i) FROM generate_series(1, $1) AS i",
        )
        .bind(SELECT_ROWS)
        .execute(&pool)
        .await?;
        sqlx::query("VACUUM ANALYZE bench_floor")
            .execute(&pool)
            .await?;
        Ok(Self { pool })
    }

    async fn remove(self) {
        if let Err(err) = sqlx::query("DROP TABLE bench_floor")
            .execute(&self.pool)
            .await
        {
            eprintln!("bench: could not drop bench_floor: {err}");
        }
        self.pool.close().await;
    }
}

struct Redis {
    connection: redis::aio::MultiplexedConnection,
    key: String,
}

impl Redis {
    async fn prepare(infra: &Infra) -> Result<Self> {
        let mut connection = redis::Client::open(infra.redis_url.as_str())?
            .get_multiplexed_async_connection()
            .await
            .context("Failed to connect to Redis for the floors")?;
        let key = format!("bench:floor:{}", uuid::Uuid::new_v4().simple());
        redis::cmd("SET")
            .arg(&key)
            .arg(r#"{"plan":["schema","backend","frontend"],"done":false}"#)
            .query_async::<()>(&mut connection)
            .await?;
        Ok(Self { connection, key })
    }

    async fn remove(mut self) {
        if let Err(err) = redis::cmd("DEL")
            .arg(&self.key)
            .query_async::<()>(&mut self.connection)
            .await
        {
            eprintln!("bench: could not delete {}: {err}", self.key);
        }
    }
}

struct JetStream {
    context: async_nats::jetstream::Context,
    stream: String,
    subject: String,
}

impl JetStream {
    /// A file-backed stream of its own, as the fleet's events stream is.
    async fn prepare(infra: &Infra) -> Result<Self> {
        let client = async_nats::connect(&infra.nats_url)
            .await
            .context("Failed to connect to NATS for the floors")?;
        let context = async_nats::jetstream::new(client);
        let id = uuid::Uuid::new_v4().simple();
        let stream = format!("SANKALPA_BENCH_FLOOR_{id}");
        let subject = format!("bench-floor-{id}.event");
        context
            .create_stream(async_nats::jetstream::stream::Config {
                name: stream.clone(),
                subjects: vec![subject.clone()],
                ..Default::default()
            })
            .await
            .context("Failed to create the floor's stream")?;
        Ok(Self {
            context,
            stream,
            subject,
        })
    }

    async fn remove(self) {
        if let Err(err) = self.context.delete_stream(&self.stream).await {
            eprintln!("bench: could not delete stream {}: {err}", self.stream);
        }
    }
}
