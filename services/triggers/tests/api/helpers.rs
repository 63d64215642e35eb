//! A fleet with the triggers service, signed-in tenants, and a receiver of webhooks that
//! records what it gets and answers as a test scripts it.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use sankalpa_testkit::{Fleet, FleetOptions, Leftovers};
use serde_json::{Value, json};
use sqlx::PgPool;

pub struct App {
    pub fleet: Fleet,
    pub infra: sankalpa_kit::config::Infra,
    pub http: reqwest::Client,
    _leftovers: Leftovers,
}

impl App {
    /// The fleet with the triggers service at its test defaults (http to the loopback allowed,
    /// retries within milliseconds).
    pub async fn start(pool: PgPool) -> Self {
        let infra = sankalpa_testkit::infra(&sankalpa_testkit::unique_name());
        let objects = std::env::temp_dir().join(format!(
            "sankalpa-triggers-{}",
            sankalpa_testkit::unique_name()
        ));
        let leftovers = Leftovers::new(&infra, vec![objects.clone()]);
        let fleet = Fleet::start_with(
            pool,
            &infra,
            &objects.to_string_lossy(),
            FleetOptions {
                configure_auth: |_: &mut sankalpa_auth::Config| {},
                configure_gateway: |_: &mut sankalpa_gateway::Config| {},
                marketplace: false,
                triggers: true,
                llm: None,
            },
        )
        .await
        .expect("the fleet starts");
        Self {
            fleet,
            infra,
            http: reqwest::Client::new(),
            _leftovers: leftovers,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.fleet.gateway.http_url())
    }

    /// A new user with a tenant of their own (its admin), signed in: their access token.
    pub async fn tenant(&self) -> String {
        let email = format!("{}@example.com", sankalpa_testkit::unique_name());
        sankalpa_testkit::sign_up_through_gateway(&self.fleet.gateway.http_url(), &email).await
    }
}

/// A REST call and its answer, status and JSON body (`null` when there is none).
pub async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    token: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut request = http.request(method, url).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.expect("the gateway answers");
    let status = StatusCode::from_u16(response.status().as_u16()).expect("a status");
    let text = response.text().await.expect("a body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

/// Registers an endpoint at `url` for `event_types` through the gateway at `base`: its id and
/// its secret.
pub async fn create_endpoint(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    url: &str,
    event_types: &[&str],
) -> (String, String) {
    let (status, body) = call(
        http,
        reqwest::Method::POST,
        &format!("{base}/api/webhooks/endpoints"),
        token,
        Some(&json!({ "url": url, "event_types": event_types })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let secret = body["secret"].as_str().expect("a secret").to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    (
        body["endpoint"]["id"].as_str().expect("an id").to_owned(),
        secret,
    )
}

/// One request a receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }

    /// Whether a Standard Webhooks implementation other than the service's own accepts the
    /// request with `secret`.
    pub fn verifies_with(&self, secret: &str) -> bool {
        let webhook = standardwebhooks::Webhook::new(secret).expect("a Standard Webhooks secret");
        webhook.verify(&self.body, &self.headers).is_ok()
    }
}

#[derive(Default)]
struct Script {
    /// Statuses to answer, in order; 200 once they are spent.
    answers: VecDeque<u16>,
    received: Vec<Received>,
}

/// An HTTP server on the loopback that records every request and answers as scripted.
pub struct Receiver {
    pub addr: SocketAddr,
    script: Arc<Mutex<Script>>,
    _server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start() -> Self {
        Self::answering(&[]).await
    }

    /// A receiver answering `answers` in turn, then 200.
    pub async fn answering(answers: &[u16]) -> Self {
        let script = Arc::new(Mutex::new(Script {
            answers: answers.iter().copied().collect(),
            received: Vec::new(),
        }));
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port on the loopback");
        let addr = listener.local_addr().expect("an address");
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("the receiver serves");
        });
        Self {
            addr,
            script,
            _server: server,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.script.lock().expect("not poisoned").received.clone()
    }

    /// Waits until `count` requests have come, at most `wait`; gives what came.
    pub async fn wait_for(&self, count: usize, wait: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let received = self.received();
            if received.len() >= count || tokio::time::Instant::now() >= deadline {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn receive(
    State(script): State<Arc<Mutex<Script>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut script = script.lock().expect("not poisoned");
    script.received.push(Received { headers, body });
    let answer = script.answers.pop_front().unwrap_or(200);
    StatusCode::from_u16(answer).expect("a scripted status")
}

/// Polls the delivery `path` (under the gateway at `base`) until `done` holds of it, at most
/// 10 s; gives it then.
pub async fn delivery_when(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = call(http, reqwest::Method::GET, url, token, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if done(&body) {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the delivery did not get there: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
