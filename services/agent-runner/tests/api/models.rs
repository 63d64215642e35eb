//! Tenants' model providers: written, listed and tested over gRPC, chosen by runs (the model a
//! run names, the tenant default, the fleet's LLM), each tenant's calls reaching its own server
//! with its own key, in either protocol, and the key never answered, stored in clear or logged.

use std::time::Duration;

use sankalpa_agent_runner::Keyring;
use sankalpa_proto::v1 as pb;
use sankalpa_testkit::llm::{ProviderFake, StreamingLlm};
use sankalpa_testkit::logs::CapturedLogs;
use tonic::Code;

use crate::llm::translate;
use crate::{TestRunner, authed, json, start_with, violated_fields};

const KEYS: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const KEY_A: &str = "sk-tenant-a-0123456789-secret";
const KEY_B: &str = "sk-ant-tenant-b-9876543210-secret";

/// agent-runner with envelope keys and a fleet LLM answering "fleet".
async fn start(pool: sqlx::PgPool) -> (TestRunner, StreamingLlm) {
    let fleet = StreamingLlm::start(vec!["fleet".into()], Duration::ZERO)
        .await
        .unwrap();
    let llm = fleet.config();
    let app = start_with(pool, |config| {
        config.llm = Some(llm);
        config.model_keys = Keyring::parse(KEYS).unwrap();
    })
    .await;
    (app, fleet)
}

fn provider(
    name: &str,
    protocol: pb::ModelProtocol,
    base_url: &str,
    key: Option<&str>,
    models: &[&str],
) -> pb::PutModelProviderRequest {
    pb::PutModelProviderRequest {
        name: name.into(),
        protocol: protocol as i32,
        base_url: base_url.into(),
        api_key: key.map(str::to_owned),
        models: models.iter().map(|m| (*m).to_owned()).collect(),
    }
}

impl TestRunner {
    async fn put_provider(
        &mut self,
        token: &str,
        request: pb::PutModelProviderRequest,
    ) -> Result<pb::ModelProvider, tonic::Status> {
        self.client
            .put_model_provider(authed(request, token))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn set_default(&mut self, token: &str, model: &str) -> Result<String, tonic::Status> {
        self.client
            .set_default_model(authed(
                pb::SetDefaultModelRequest {
                    model: model.into(),
                },
                token,
            ))
            .await
            .map(|r| r.into_inner().default_model)
    }

    async fn providers(&mut self, token: &str) -> pb::ListModelProvidersResponse {
        self.client
            .list_model_providers(authed(pb::ListModelProvidersRequest {}, token))
            .await
            .unwrap()
            .into_inner()
    }

    async fn test_provider(
        &mut self,
        token: &str,
        name: &str,
    ) -> Result<pb::TestModelProviderResponse, tonic::Status> {
        self.client
            .test_model_provider(authed(
                pb::TestModelProviderRequest {
                    name: name.into(),
                    model: String::new(),
                },
                token,
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    /// Runs text_translator asking `model` (or the default) and gives its translation.
    async fn translated(&mut self, token: &str, model: Option<&str>) -> String {
        let run = self
            .execute_with(
                token,
                pb::ExecuteAgentRequest {
                    agent: "text_translator".into(),
                    input_json: translate("Hello world").to_string(),
                    model: model.map(str::to_owned),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert!(run.llm_used, "{:?}", run.error);
        json(&run.output_json)["translated_text"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

#[sqlx::test(migrations = false)]
async fn each_tenant_s_runs_reach_its_own_provider_with_its_own_key(pool: sqlx::PgPool) {
    let (mut app, fleet) = start(pool).await;
    let openai = ProviderFake::start(KEY_A, "hola").await.unwrap();
    let anthropic = ProviderFake::start(KEY_B, "bonjour").await.unwrap();
    let a = app.sign_up().await.token;
    let b = app.sign_up().await.token;
    let c = app.sign_up().await.token;
    app.put_provider(
        &a,
        provider(
            "acme",
            pb::ModelProtocol::Openai,
            &openai.base_url,
            Some(KEY_A),
            &["gpt-a", "gpt-b"],
        ),
    )
    .await
    .unwrap();
    app.put_provider(
        &b,
        provider(
            "claude",
            pb::ModelProtocol::Anthropic,
            &anthropic.base_url,
            Some(KEY_B),
            &["claude-x"],
        ),
    )
    .await
    .unwrap();

    // No default yet: the fleet's LLM answers.
    assert_eq!(app.translated(&a, None).await, "fleet");
    assert_eq!(
        app.set_default(&a, "acme/gpt-a").await.unwrap(),
        "acme/gpt-a"
    );
    app.set_default(&b, "claude/claude-x").await.unwrap();

    assert_eq!(app.translated(&a, None).await, "gpt-a: hola");
    assert_eq!(app.translated(&a, Some("acme/gpt-b")).await, "gpt-b: hola");
    assert_eq!(app.translated(&b, None).await, "claude-x: bonjour");
    assert_eq!(app.translated(&c, None).await, "fleet");

    let asked_a = openai.asked();
    assert_eq!(asked_a.len(), 2, "tenant B's run never reaches A's server");
    for asked in &asked_a {
        assert_eq!(asked.path, "/v1/chat/completions");
        assert_eq!(asked.authorization, format!("Bearer {KEY_A}"));
    }
    assert_eq!(asked_a[1].body["model"], "gpt-b");
    let asked_b = anthropic.asked();
    assert_eq!(asked_b.len(), 1);
    assert_eq!(asked_b[0].path, "/v1/messages");
    assert_eq!(asked_b[0].api_key, KEY_B);
    assert_eq!(asked_b[0].authorization, "");
    assert_eq!(asked_b[0].body["system"], "You are a precise translator.");
    assert_eq!(asked_b[0].body["messages"][0]["role"], "user");
    // The fleet's LLM was asked by A before its default, and by C.
    assert_eq!(fleet.seen.requests.lock().unwrap().len(), 2);
    // Counted by whose model answered, not by the tenants' provider names.
    let ok = |source: &str, protocol: &str| {
        format!("llm_requests_total{{source=\"{source}\",protocol=\"{protocol}\",outcome=\"ok\"}}")
    };
    assert_eq!(app.metric(&ok("tenant", "openai")).await, 2.0);
    assert_eq!(app.metric(&ok("tenant", "anthropic")).await, 1.0);
    assert_eq!(app.metric(&ok("fleet", "openai")).await, 2.0);

    // Clearing the default falls back to the fleet again; deleting the provider clears it too.
    app.set_default(&a, "").await.unwrap();
    assert_eq!(app.translated(&a, None).await, "fleet");
    app.client
        .delete_model_provider(authed(
            pb::DeleteModelProviderRequest {
                name: "claude".into(),
            },
            &b,
        ))
        .await
        .unwrap();
    let listed = app.providers(&b).await;
    assert!(listed.providers.is_empty() && listed.default_model.is_empty());
    assert_eq!(app.translated(&b, None).await, "fleet");
}

#[sqlx::test(migrations = false)]
async fn another_tenant_s_provider_is_not_found(pool: sqlx::PgPool) {
    let (mut app, _fleet) = start(pool).await;
    let server = ProviderFake::start(KEY_A, "hola").await.unwrap();
    let a = app.sign_up().await.token;
    let b = app.sign_up().await.token;
    app.put_provider(
        &a,
        provider(
            "acme",
            pb::ModelProtocol::Openai,
            &server.base_url,
            Some(KEY_A),
            &["gpt-a"],
        ),
    )
    .await
    .unwrap();

    assert!(app.providers(&b).await.providers.is_empty());
    let run = app
        .execute_with(
            &b,
            pb::ExecuteAgentRequest {
                agent: "text_translator".into(),
                input_json: translate("Hello").to_string(),
                model: Some("acme/gpt-a".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(run.code(), Code::NotFound);
    assert_eq!(
        app.set_default(&b, "acme/gpt-a").await.unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(
        app.test_provider(&b, "acme").await.unwrap_err().code(),
        Code::NotFound
    );
    let deleted = app
        .client
        .delete_model_provider(authed(
            pb::DeleteModelProviderRequest {
                name: "acme".into(),
            },
            &b,
        ))
        .await
        .unwrap_err();
    assert_eq!(deleted.code(), Code::NotFound);
    assert!(server.asked().is_empty());
    assert_eq!(app.providers(&a).await.providers.len(), 1, "A's is intact");
}

#[sqlx::test(migrations = false)]
async fn the_api_key_is_never_answered_stored_in_clear_nor_logged(pool: sqlx::PgPool) {
    let logs = CapturedLogs::start();
    let (mut app, _fleet) = start(pool).await;
    let server = ProviderFake::start(KEY_A, "hola").await.unwrap();
    let a = app.sign_up().await.token;
    let mut answers = Vec::new();
    let put = app
        .put_provider(
            &a,
            provider(
                "acme",
                pb::ModelProtocol::Openai,
                &server.base_url,
                Some(KEY_A),
                &["gpt-a"],
            ),
        )
        .await
        .unwrap();
    assert!(put.has_api_key);
    answers.push(format!("{put:?}"));
    answers.push(format!("{:?}", app.providers(&a).await));
    answers.push(format!(
        "{:?}",
        app.test_provider(&a, "acme").await.unwrap()
    ));
    app.set_default(&a, "acme/gpt-a").await.unwrap();
    let run = app
        .execute(&a, "text_translator", translate("Hello"))
        .await
        .unwrap();
    answers.push(format!("{run:?}"));
    // A key refused by the provider: its error is answered, not the key.
    let wrong = "sk-wrong-key-never-to-be-seen";
    app.put_provider(
        &a,
        provider(
            "acme",
            pb::ModelProtocol::Openai,
            &server.base_url,
            Some(wrong),
            &["gpt-a"],
        ),
    )
    .await
    .unwrap();
    answers.push(format!(
        "{:?}",
        app.test_provider(&a, "acme").await.unwrap()
    ));
    answers.push(format!(
        "{:?}",
        app.execute(&a, "text_translator", translate("Hello")).await
    ));

    let stored: Vec<(Vec<u8>, Vec<u8>)> = sqlx::query_as(
        "SELECT key_ciphertext, key_nonce FROM agents.model_providers WHERE name = 'acme'",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(stored.len(), 1);
    assert!(
        !stored[0]
            .0
            .windows(wrong.len())
            .any(|w| w == wrong.as_bytes())
    );
    assert_eq!(stored[0].1.len(), 12);

    let logged = logs.text();
    assert!(
        logged.contains("model provider written"),
        "the capture sees the service's lines"
    );
    assert!(logged.contains("401"), "the refused call was logged");
    for key in [KEY_A, wrong] {
        assert!(!logged.contains(key), "a key was logged");
        for answer in &answers {
            assert!(!answer.contains(key), "a key was answered: {answer}");
        }
    }
    assert_eq!(server.asked().len(), 4, "both keys did reach the provider");
}

#[sqlx::test(migrations = false)]
async fn the_connection_test_says_whether_the_provider_answers(pool: sqlx::PgPool) {
    let (mut app, _fleet) = start(pool).await;
    let server = ProviderFake::start(KEY_B, "ready").await.unwrap();
    let a = app.sign_up().await.token;
    let mut request = provider(
        "claude",
        pb::ModelProtocol::Anthropic,
        &server.base_url,
        Some(KEY_B),
        &["claude-x"],
    );
    app.put_provider(&a, request.clone()).await.unwrap();
    let answer = app.test_provider(&a, "claude").await.unwrap();
    assert!(answer.ok, "{}", answer.error);
    assert_eq!(answer.model, "claude-x");

    // Replaced without a key: the stored one is kept.
    request.api_key = None;
    assert!(
        app.put_provider(&a, request.clone())
            .await
            .unwrap()
            .has_api_key
    );
    assert!(app.test_provider(&a, "claude").await.unwrap().ok);

    // Its key removed: the provider refuses, which the test says.
    request.api_key = Some(String::new());
    assert!(!app.put_provider(&a, request).await.unwrap().has_api_key);
    let answer = app.test_provider(&a, "claude").await.unwrap();
    assert!(!answer.ok);
    assert!(answer.error.contains("401"), "{}", answer.error);
    assert!(
        !answer.error.contains("invalid api key"),
        "a tenant's provider's body is not quoted: {}",
        answer.error
    );

    // Nothing listening: unreachable, said the same way.
    let gone = provider(
        "gone",
        pb::ModelProtocol::Openai,
        "http://127.0.0.1:9/v1",
        None,
        &["m"],
    );
    app.put_provider(&a, gone).await.unwrap();
    let answer = app.test_provider(&a, "gone").await.unwrap();
    assert!(!answer.ok && !answer.error.is_empty());

    // Accepting and never answering: said within the test's bound, not the calls' retries.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", silent.local_addr().unwrap());
    let never = provider("silent", pb::ModelProtocol::Openai, &url, None, &["m"]);
    app.put_provider(&a, never).await.unwrap();
    let asked = std::time::Instant::now();
    let answer = app.test_provider(&a, "silent").await.unwrap();
    assert!(!answer.ok);
    assert!(answer.error.contains("8s"), "{}", answer.error);
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "{:?}",
        asked.elapsed()
    );
    drop(silent);
}

#[sqlx::test(migrations = false)]
async fn a_provider_where_the_operator_allows_none_is_refused_or_not_called(pool: sqlx::PgPool) {
    // The deployment's default: public https destinations only.
    let mut app = start_with(pool, |config| {
        config.model_keys = Keyring::parse(KEYS).unwrap();
        config.provider_egress = Default::default();
    })
    .await;
    let server = ProviderFake::start(KEY_A, "never").await.unwrap();
    let a = app.sign_up().await.token;
    let port = server
        .base_url
        .split(':')
        .nth(2)
        .unwrap()
        .trim_end_matches("/v1");
    for base_url in [
        server.base_url.clone(),
        format!("https://127.0.0.1:{port}/v1"),
        "https://169.254.169.254/latest".to_owned(),
        "https://[::ffff:10.0.0.1]/v1".to_owned(),
    ] {
        let refused = app
            .put_provider(
                &a,
                provider("local", pb::ModelProtocol::Openai, &base_url, None, &["m"]),
            )
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{base_url}");
        assert_eq!(violated_fields(&refused), ["base_url"], "{base_url}");
    }
    assert!(app.providers(&a).await.providers.is_empty());

    // A name is judged by what it resolves to, when called.
    let named = provider(
        "named",
        pb::ModelProtocol::Openai,
        &format!("https://localhost:{port}/v1"),
        None,
        &["m"],
    );
    app.put_provider(&a, named).await.unwrap();
    let answer = app.test_provider(&a, "named").await.unwrap();
    assert!(!answer.ok);
    assert!(answer.error.contains("loopback"), "{}", answer.error);
    assert!(server.asked().is_empty(), "the provider was never called");
}

#[sqlx::test(migrations = false)]
async fn bad_providers_and_models_are_refused_naming_the_field(pool: sqlx::PgPool) {
    let (mut app, _fleet) = start(pool).await;
    let caller = app.sign_up().await;
    let a = caller.token.clone();
    let good = || {
        provider(
            "acme",
            pb::ModelProtocol::Openai,
            "https://llm.example.com/v1",
            Some("sk-x"),
            &["m"],
        )
    };
    let cases: Vec<(pb::PutModelProviderRequest, &str)> = vec![
        (
            pb::PutModelProviderRequest {
                name: "ac\0me".into(),
                ..good()
            },
            "name",
        ),
        (
            pb::PutModelProviderRequest {
                name: "x".repeat(64),
                ..good()
            },
            "name",
        ),
        (
            pb::PutModelProviderRequest {
                protocol: 0,
                ..good()
            },
            "protocol",
        ),
        (
            pb::PutModelProviderRequest {
                base_url: "file:///etc/passwd".into(),
                ..good()
            },
            "base_url",
        ),
        (
            pb::PutModelProviderRequest {
                base_url: format!("https://h/{}", "a".repeat(2048)),
                ..good()
            },
            "base_url",
        ),
        (
            pb::PutModelProviderRequest {
                base_url: "https://user:pw@h/v1".into(),
                ..good()
            },
            "base_url",
        ),
        (
            pb::PutModelProviderRequest {
                api_key: Some("sk\0x".into()),
                ..good()
            },
            "api_key",
        ),
        (
            pb::PutModelProviderRequest {
                models: vec![],
                ..good()
            },
            "models",
        ),
        (
            pb::PutModelProviderRequest {
                models: (0..51).map(|i| format!("m{i}")).collect(),
                ..good()
            },
            "models",
        ),
        (
            pb::PutModelProviderRequest {
                models: vec!["m\0".into()],
                ..good()
            },
            "models[0]",
        ),
    ];
    for (request, field) in cases {
        let status = app.put_provider(&a, request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert_eq!(violated_fields(&status), [field]);
    }
    assert!(
        app.providers(&a).await.providers.is_empty(),
        "nothing stored"
    );

    app.put_provider(&a, good()).await.unwrap();
    for model in ["acme", "acme/unlisted", "Acme/m"] {
        let status = app.set_default(&a, model).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{model}");
        assert_eq!(violated_fields(&status), ["model"]);
        let run = app
            .execute_with(
                &a,
                pb::ExecuteAgentRequest {
                    agent: "text_translator".into(),
                    input_json: translate("Hello").to_string(),
                    model: Some(model.into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap_err();
        assert_eq!(violated_fields(&run), ["model"], "{model}");
    }

    for i in 1..20 {
        app.put_provider(
            &a,
            pb::PutModelProviderRequest {
                name: format!("p{i}"),
                api_key: None,
                ..good()
            },
        )
        .await
        .unwrap();
    }
    let status = app
        .put_provider(
            &a,
            pb::PutModelProviderRequest {
                name: "p20".into(),
                ..good()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    // Replacing one of the twenty is no twenty-first.
    app.put_provider(&a, good()).await.unwrap();

    // Reading is for members, writing for admins.
    let reader = app
        .token_with(&caller, &["models:read", "agents:execute"])
        .await;
    assert_eq!(app.providers(&reader).await.providers.len(), 20);
    let refused = app.put_provider(&reader, good()).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
}

#[sqlx::test(migrations = false)]
async fn a_key_without_envelope_keys_is_refused(pool: sqlx::PgPool) {
    let mut app = start_with(pool, |_| {}).await;
    let a = app.sign_up().await.token;
    let request = provider(
        "acme",
        pb::ModelProtocol::Openai,
        "http://127.0.0.1:9/v1",
        Some("sk-x"),
        &["m"],
    );
    let status = app.put_provider(&a, request.clone()).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(status.message().contains("SANKALPA_MODEL_KEYS"));
    // Without a key (a local server) it is stored.
    let stored = app
        .put_provider(
            &a,
            pb::PutModelProviderRequest {
                api_key: None,
                ..request
            },
        )
        .await
        .unwrap();
    assert!(!stored.has_api_key);
}

/// copilot's model calls a tool through either protocol: the tenant's provider asks for
/// hello_world, which runs, and reads its output back in the protocol's own shape.
#[sqlx::test(migrations = false)]
async fn a_tool_call_runs_and_is_answered_in_either_protocol(pool: sqlx::PgPool) {
    let (mut app, _fleet) = start(pool).await;
    let token = app.sign_up().await.token;
    let greet = serde_json::json!({"name": "Ada"});
    for (name, protocol) in [
        ("acme", pb::ModelProtocol::Openai),
        ("claude", pb::ModelProtocol::Anthropic),
    ] {
        let server = ProviderFake::calling(KEY_A, "noted", "hello_world", greet.clone())
            .await
            .unwrap();
        app.put_provider(
            &token,
            provider(name, protocol, &server.base_url, Some(KEY_A), &["m"]),
        )
        .await
        .unwrap();
        let run = app
            .completed(
                &token,
                pb::ExecuteAgentRequest {
                    agent: "copilot".into(),
                    input_json: serde_json::json!({"code": "print(1)"}).to_string(),
                    model: Some(format!("{name}/m")),
                    ..Default::default()
                },
            )
            .await;
        let out = json(&run.output_json);
        assert_eq!(out["tool_runs"][0]["agent"], "hello_world", "{name}: {out}");
        assert_eq!(out["tool_runs"][0]["status"], "completed");
        assert_eq!(
            out["suggestions"][0]["message"], r#"m: noted {"output":{"message":"Hello, Ada!"}}"#,
            "{name}"
        );
        let asked = server.asked();
        assert_eq!(asked.len(), 2, "{name}: the call, then the answer");
        assert!(asked[0].body["tools"].is_array());
        assert_eq!(
            (run.prompt_tokens, run.completion_tokens),
            (24, 14),
            "{name}: two calls counted"
        );
    }
}
