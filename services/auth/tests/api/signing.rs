use sankalpa_kit::auth::TokenVerifier;
use sankalpa_proto::v1 as pb;

use crate::{register_and_login, start};

#[sqlx::test(migrations = false)]
async fn replicas_on_one_database_sign_with_one_key(pool: sqlx::PgPool) {
    let mut first = start(pool.clone()).await;
    let mut second = start(pool).await;
    let pair = register_and_login(&mut first.client, "ada@example.com").await;

    let jwks = second
        .client
        .get_jwks(pb::GetJwksRequest {})
        .await
        .unwrap()
        .into_inner()
        .jwks_json;
    let verifier = TokenVerifier::new("sankalpa", "sankalpa");
    assert_eq!(verifier.set_jwks(&jwks).unwrap(), 1);
    let principal = verifier
        .verify(&pair.access_token)
        .expect("the other replica's key verifies");
    assert_eq!(principal.subject, pair.user.unwrap().id);
}

#[sqlx::test(migrations = false)]
async fn tokens_carry_the_tenant_and_the_roles_permissions(pool: sqlx::PgPool) {
    let mut auth = start(pool).await;
    let pair = register_and_login(&mut auth.client, "ada@example.com").await;
    let jwks = auth
        .client
        .get_jwks(pb::GetJwksRequest {})
        .await
        .unwrap()
        .into_inner()
        .jwks_json;
    let verifier = TokenVerifier::new("sankalpa", "sankalpa");
    verifier.set_jwks(&jwks).unwrap();
    let principal = verifier.verify(&pair.access_token).unwrap();
    let user = pair.user.unwrap();
    assert_eq!(principal.tenant_id, user.tenant_id);
    assert_eq!(principal.roles, vec!["admin"]);
    assert!(principal.can("users:admin"));
    assert!(
        !principal.can("tenants:admin"),
        "a tenant admin is no platform admin"
    );
}
