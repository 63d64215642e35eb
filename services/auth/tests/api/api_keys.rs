//! API keys: who may make them, how long they live, and that a key never acts for more than
//! its creator holds now.

use sankalpa_proto::v1 as pb;
use tonic::Code;

use crate::{authed, claims, member, register_and_login, start, start_with};

fn new_key(permissions: &[&str], expires_in_seconds: u64) -> pb::CreateApiKeyRequest {
    pb::CreateApiKeyRequest {
        name: "ci".into(),
        permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
        expires_in_seconds,
        purpose: pb::ApiKeyPurpose::Tool.into(),
    }
}

fn run_key(permissions: &[&str]) -> pb::CreateApiKeyRequest {
    pb::CreateApiKeyRequest {
        purpose: pb::ApiKeyPurpose::ChainRun.into(),
        ..new_key(permissions, 3600)
    }
}

async fn exchange(auth: &mut crate::TestAuth, secret: &str) -> Result<String, tonic::Status> {
    auth.client
        .exchange_api_key(pb::ExchangeApiKeyRequest {
            api_key: secret.to_owned(),
        })
        .await
        .map(|token| token.into_inner().access_token)
}

#[sqlx::test(migrations = false)]
async fn only_holders_of_keys_admin_create_list_or_revoke_keys(pool: sqlx::PgPool) {
    let mut auth = start(pool).await;
    let admin = register_and_login(&mut auth.client, "ada@example.com").await;
    let key = auth
        .client
        .create_api_key(authed(new_key(&["memory:read"], 0), &admin.access_token))
        .await
        .unwrap()
        .into_inner()
        .key
        .unwrap();
    for roles in [&["viewer"][..], &["developer"][..]] {
        let email = format!("{}@example.com", roles[0]);
        let user = member(&mut auth.client, &admin, &email, roles).await;
        let token = &user.access_token;
        let created = auth
            .client
            .create_api_key(authed(new_key(&["memory:read"], 0), token))
            .await
            .unwrap_err();
        let listed = auth
            .client
            .list_api_keys(authed(pb::ListApiKeysRequest { page: None }, token))
            .await
            .unwrap_err();
        let revoked = auth
            .client
            .revoke_api_key(authed(
                pb::RevokeApiKeyRequest { id: key.id.clone() },
                token,
            ))
            .await
            .unwrap_err();
        for refused in [created, listed, revoked] {
            assert_eq!(refused.code(), Code::PermissionDenied, "{roles:?}");
            assert!(refused.message().contains("keys:admin"), "{refused:?}");
        }
    }
    // The admin's key is untouched.
    let keys = auth
        .client
        .list_api_keys(authed(
            pb::ListApiKeysRequest { page: None },
            &admin.access_token,
        ))
        .await
        .unwrap()
        .into_inner()
        .keys;
    assert_eq!(keys.len(), 1);
    assert!(keys[0].revoked_at.is_none());
}

#[sqlx::test(migrations = false)]
async fn an_api_key_cannot_make_a_key(pool: sqlx::PgPool) {
    let mut auth = start(pool).await;
    let admin = register_and_login(&mut auth.client, "ada@example.com").await;
    let secret = auth
        .client
        .create_api_key(authed(new_key(&["*:*"], 0), &admin.access_token))
        .await
        .unwrap()
        .into_inner()
        .secret;
    let token = auth
        .client
        .exchange_api_key(pb::ExchangeApiKeyRequest { api_key: secret })
        .await
        .unwrap()
        .into_inner()
        .access_token;
    let refused = auth
        .client
        .create_api_key(authed(new_key(&["memory:read"], 0), &token))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(refused.message().contains("API key"), "{refused:?}");
}

#[sqlx::test(migrations = false)]
async fn a_key_lives_at_most_the_configured_maximum(pool: sqlx::PgPool) {
    let max = std::time::Duration::from_secs(3600);
    let mut auth = start_with(pool, |config| config.api_key_max_ttl = max).await;
    let admin = register_and_login(&mut auth.client, "ada@example.com").await;

    let too_long = auth
        .client
        .create_api_key(authed(new_key(&["memory:read"], 3601), &admin.access_token))
        .await
        .unwrap_err();
    assert_eq!(too_long.code(), Code::InvalidArgument);
    assert!(
        too_long.message().contains("expires_in_seconds"),
        "{too_long:?}"
    );

    let unspecified = auth
        .client
        .create_api_key(authed(new_key(&["memory:read"], 0), &admin.access_token))
        .await
        .unwrap()
        .into_inner()
        .key
        .unwrap();
    let expires = unspecified.expires_at.expect("every key expires").seconds;
    let created = unspecified.created_at.unwrap().seconds;
    assert!(
        (expires - created - 3600).abs() <= 2,
        "{expires} - {created}"
    );
}

#[sqlx::test(migrations = false)]
async fn a_key_narrows_when_its_creator_is_demoted_and_stops_when_they_are_deleted(
    pool: sqlx::PgPool,
) {
    let mut auth = start(pool).await;
    let owner = register_and_login(&mut auth.client, "ada@example.com").await;
    let maker = member(&mut auth.client, &owner, "bob@example.com", &["admin"]).await;
    let secret = auth
        .client
        .create_api_key(authed(new_key(&["*:*"], 0), &maker.access_token))
        .await
        .unwrap()
        .into_inner()
        .secret;
    let exchange = |secret: String| pb::ExchangeApiKeyRequest { api_key: secret };
    let token = auth
        .client
        .exchange_api_key(exchange(secret.clone()))
        .await
        .unwrap()
        .into_inner()
        .access_token;
    assert_eq!(claims(&token)["perms"], serde_json::json!(["*:*"]));

    let maker_id = maker.user.as_ref().unwrap().id.clone();
    auth.client
        .set_user_roles(authed(
            pb::SetUserRolesRequest {
                id: maker_id.clone(),
                roles: vec!["viewer".into()],
            },
            &owner.access_token,
        ))
        .await
        .unwrap();
    // The token minted before the demotion is ended with it.
    let stale = auth
        .client
        .list_users(authed(pb::ListUsersRequest { page: None }, &token))
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Unauthenticated);
    let narrowed = auth
        .client
        .exchange_api_key(exchange(secret.clone()))
        .await
        .unwrap()
        .into_inner()
        .access_token;
    assert_eq!(
        claims(&narrowed)["perms"],
        serde_json::json!([
            "agents:read",
            "chains:read",
            "market:read",
            "memory:read",
            "models:read",
            "schedules:read",
            "webhooks:read"
        ])
    );
    let denied = auth
        .client
        .list_users(authed(pb::ListUsersRequest { page: None }, &narrowed))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);

    auth.client
        .delete_user(authed(
            pb::DeleteUserRequest { id: maker_id },
            &owner.access_token,
        ))
        .await
        .unwrap();
    let refused = auth
        .client
        .exchange_api_key(exchange(secret))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
}

#[sqlx::test(migrations = false)]
async fn a_key_cannot_hold_more_than_its_creator(pool: sqlx::PgPool) {
    let mut auth = start(pool).await;
    let admin = register_and_login(&mut auth.client, "ada@example.com").await;
    // A tenant's admin holds *:*, which never grants the platform's tenants:admin.
    let refused = auth
        .client
        .create_api_key(authed(new_key(&["tenants:admin"], 0), &admin.access_token))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
}

#[sqlx::test(migrations = false)]
async fn a_developer_or_a_tools_key_may_make_a_chain_runs_key_which_ends_with_its_maker(
    pool: sqlx::PgPool,
) {
    let mut auth = start(pool).await;
    let admin = register_and_login(&mut auth.client, "ada@example.com").await;
    let developer = member(&mut auth.client, &admin, "dev@example.com", &["developer"]).await;
    let runs = &["agents:execute", "memory:write"];
    auth.client
        .create_api_key(authed(run_key(runs), &developer.access_token))
        .await
        .expect("a developer starts runs, so may give them a credential");

    let tool = auth
        .client
        .create_api_key(authed(
            new_key(&["agents:*", "memory:*"], 1800),
            &admin.access_token,
        ))
        .await
        .unwrap()
        .into_inner();
    let tool_token = exchange(&mut auth, &tool.secret).await.unwrap();
    let made = auth
        .client
        .create_api_key(authed(run_key(runs), &tool_token))
        .await
        .expect("a tool's key starting a run gives it a credential")
        .into_inner();
    let made_key = made.key.unwrap();
    assert_eq!(made_key.purpose(), pb::ApiKeyPurpose::ChainRun);
    // It lives no longer than the key that made it (half an hour, not the hour asked for).
    let tool_expiry = tool.key.unwrap().expires_at.unwrap().seconds;
    assert!(made_key.expires_at.unwrap().seconds <= tool_expiry);
    let run_token = exchange(&mut auth, &made.secret).await.unwrap();

    // A run's key makes no keys, of either kind.
    for request in [run_key(runs), new_key(runs, 60)] {
        let refused = auth
            .client
            .create_api_key(authed(request, &run_token))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    }

    let tool_id = tool_id(&mut auth, &admin).await;
    auth.client
        .revoke_api_key(authed(
            pb::RevokeApiKeyRequest { id: tool_id },
            &admin.access_token,
        ))
        .await
        .unwrap();
    assert_eq!(
        exchange(&mut auth, &made.secret).await.unwrap_err().code(),
        Code::Unauthenticated
    );
}

fn schedule_key(permissions: &[&str]) -> pb::CreateApiKeyRequest {
    pb::CreateApiKeyRequest {
        purpose: pb::ApiKeyPurpose::Schedule.into(),
        ..new_key(permissions, 3600)
    }
}

#[sqlx::test(migrations = false)]
async fn a_schedules_key_makes_only_run_keys_which_end_with_every_maker(pool: sqlx::PgPool) {
    let mut auth = start(pool).await;
    let admin = register_and_login(&mut auth.client, "ada@example.com").await;
    let tool = auth
        .client
        .create_api_key(authed(
            new_key(&["chains:*", "agents:*"], 0),
            &admin.access_token,
        ))
        .await
        .unwrap()
        .into_inner();
    let tool_token = exchange(&mut auth, &tool.secret).await.unwrap();
    let schedule = auth
        .client
        .create_api_key(authed(
            schedule_key(&["chains:execute", "agents:execute"]),
            &tool_token,
        ))
        .await
        .expect("a tool's key creating a schedule gives it a credential")
        .into_inner();
    assert_eq!(
        schedule.key.as_ref().unwrap().purpose(),
        pb::ApiKeyPurpose::Schedule
    );
    let schedule_token = exchange(&mut auth, &schedule.secret).await.unwrap();
    let run = auth
        .client
        .create_api_key(authed(run_key(&["agents:execute"]), &schedule_token))
        .await
        .expect("a schedule's key gives its runs their credential")
        .into_inner();
    assert!(exchange(&mut auth, &run.secret).await.is_ok());

    // A schedule's key makes no schedule's or tool's key; a run's key no schedule's.
    for request in [
        schedule_key(&["agents:execute"]),
        new_key(&["agents:execute"], 60),
    ] {
        let refused = auth
            .client
            .create_api_key(authed(request, &schedule_token))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    }
    let run_token = exchange(&mut auth, &run.secret).await.unwrap();
    let refused = auth
        .client
        .create_api_key(authed(schedule_key(&["agents:execute"]), &run_token))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");

    // Revoking the tool's key ends the schedule's and, through it, the run's.
    let tool_id = tool_id(&mut auth, &admin).await;
    auth.client
        .revoke_api_key(authed(
            pb::RevokeApiKeyRequest { id: tool_id },
            &admin.access_token,
        ))
        .await
        .unwrap();
    for secret in [&schedule.secret, &run.secret] {
        assert_eq!(
            exchange(&mut auth, secret).await.unwrap_err().code(),
            Code::Unauthenticated
        );
    }
}

/// The id of the one tool key `admin`'s tenant has.
async fn tool_id(auth: &mut crate::TestAuth, admin: &pb::TokenPair) -> String {
    let keys = auth
        .client
        .list_api_keys(authed(
            pb::ListApiKeysRequest { page: None },
            &admin.access_token,
        ))
        .await
        .unwrap()
        .into_inner()
        .keys;
    let tools: Vec<_> = keys
        .into_iter()
        .filter(|key| key.purpose() == pb::ApiKeyPurpose::Tool)
        .collect();
    assert_eq!(tools.len(), 1);
    tools[0].id.clone()
}

#[sqlx::test(migrations = false)]
async fn a_key_revokes_itself_and_no_other(pool: sqlx::PgPool) {
    let mut auth = start(pool).await;
    let admin = register_and_login(&mut auth.client, "ada@example.com").await;
    let mut made = Vec::new();
    for _ in 0..2 {
        made.push(
            auth.client
                .create_api_key(authed(run_key(&["agents:execute"]), &admin.access_token))
                .await
                .unwrap()
                .into_inner(),
        );
    }
    let token = exchange(&mut auth, &made[0].secret).await.unwrap();
    let other = made[1].key.clone().unwrap().id;
    let refused = auth
        .client
        .revoke_api_key(authed(pb::RevokeApiKeyRequest { id: other }, &token))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert!(
        exchange(&mut auth, &made[1].secret).await.is_ok(),
        "the other key lives on"
    );

    let own = made[0].key.clone().unwrap().id;
    let revoked = auth
        .client
        .revoke_api_key(authed(pb::RevokeApiKeyRequest { id: own }, &token))
        .await
        .expect("a key may revoke itself")
        .into_inner();
    assert!(revoked.revoked_at.is_some());
    assert_eq!(
        exchange(&mut auth, &made[0].secret)
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
}
