use sankalpa_auth::BootstrapAdmin;
use sankalpa_proto::v1 as pb;
use tonic::Code;

use crate::{authed, register_and_login, start_with};

fn with_admin(config: &mut sankalpa_auth::Config) {
    config.bootstrap_admin = Some(BootstrapAdmin {
        email: "root@example.com".into(),
        password: "operator password".into(),
        tenant_name: "platform".into(),
    });
}

#[sqlx::test(migrations = false)]
async fn the_bootstrap_admin_is_created_once_and_administers_tenants(pool: sqlx::PgPool) {
    let mut auth = start_with(pool.clone(), with_admin).await;
    // A second start (a restart, or another replica) finds the admin and creates nothing.
    let _again = start_with(pool.clone(), with_admin).await;
    let admins: i64 =
        sqlx::query_scalar("SELECT count(*) FROM auth.users WHERE email = 'root@example.com'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(admins, 1);

    let root = auth
        .client
        .login(pb::LoginRequest {
            email: "root@example.com".into(),
            password: "operator password".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let tenant = auth
        .client
        .create_tenant(authed(
            pb::CreateTenantRequest {
                name: "acme".into(),
            },
            &root.access_token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(tenant.name, "acme");

    let tenant_admin = register_and_login(&mut auth.client, "ada@example.com").await;
    let denied = auth
        .client
        .list_tenants(authed(
            pb::ListTenantsRequest { page: None },
            &tenant_admin.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let hidden = auth
        .client
        .get_tenant(authed(
            pb::GetTenantRequest { id: tenant.id },
            &tenant_admin.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);
}
