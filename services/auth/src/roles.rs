//! Roles and the permissions they grant.
//!
//! The role -> permission table lives in `auth.role_permissions` (seeded by the migration). A
//! token carries the expanded permissions, so services check a permission without asking auth.

use sankalpa_kit::auth::permission_grants;

use crate::error::{AuthError, Result};

pub const ROLES: &[&str] = &["admin", "developer", "viewer"];

/// Every permission a token or key can carry.
pub const PERMISSIONS: &[&str] = &[
    "*:*",
    "agents:read",
    "agents:execute",
    "agents:write",
    "chains:read",
    "chains:write",
    "chains:execute",
    "memory:read",
    "memory:write",
    "market:read",
    "market:publish",
    "webhooks:read",
    "webhooks:write",
    "schedules:read",
    "schedules:write",
    "models:read",
    "models:admin",
    "users:admin",
    "keys:admin",
    "tenants:admin",
    "fleet:read",
];

pub fn validate_roles(roles: &[String]) -> Result<Vec<String>> {
    if roles.is_empty() {
        return Err(AuthError::invalid("roles", "must name at least one role"));
    }
    let mut valid = Vec::with_capacity(roles.len());
    for role in roles {
        let role = role.trim();
        if !ROLES.contains(&role) {
            return Err(AuthError::invalid(
                "roles",
                format!("unknown role {role:?}; roles are {}", ROLES.join(", ")),
            ));
        }
        if !valid.iter().any(|known: &String| known == role) {
            valid.push(role.to_owned());
        }
    }
    Ok(valid)
}

pub fn validate_permissions(permissions: &[String]) -> Result<Vec<String>> {
    let mut valid: Vec<String> = Vec::with_capacity(permissions.len());
    for permission in permissions {
        let permission = permission.trim();
        let known = PERMISSIONS.contains(&permission)
            || permission.strip_suffix(":*").is_some_and(|resource| {
                PERMISSIONS
                    .iter()
                    .any(|p| p.starts_with(&format!("{resource}:")))
            });
        if !known {
            return Err(AuthError::invalid(
                "permissions",
                format!("unknown permission {permission:?}"),
            ));
        }
        if !valid.iter().any(|p| p == permission) {
            valid.push(permission.to_owned());
        }
    }
    Ok(valid)
}

/// The permissions of a user: those of its roles, plus the platform's (`tenants:admin`,
/// `fleet:read`) for admins of the operators' tenant.
pub fn expand(
    roles: &[String],
    role_permissions: Vec<String>,
    platform_tenant: bool,
) -> Vec<String> {
    let mut permissions = role_permissions;
    if platform_tenant && roles.iter().any(|role| role == "admin") {
        permissions.extend(
            sankalpa_kit::auth::PLATFORM_PERMISSIONS
                .iter()
                .map(|permission| (*permission).to_owned()),
        );
    }
    permissions.sort();
    permissions.dedup();
    permissions
}

/// What of `wanted` (a key's permissions) `held` (its creator's, now) still grants: each wanted
/// permission that a held one grants, and where a wanted wildcard is wider than what is held,
/// the held permissions it covers. A key made by an admin with `*:*` whose creator is now a
/// viewer carries a viewer's permissions.
pub fn narrow(wanted: &[String], held: &[String]) -> Vec<String> {
    let mut kept: Vec<String> = Vec::new();
    for want in wanted {
        if held.iter().any(|have| permission_grants(have, want)) {
            kept.push(want.clone());
        } else {
            kept.extend(
                held.iter()
                    .filter(|have| permission_grants(want, have))
                    .cloned(),
            );
        }
    }
    kept.sort();
    kept.dedup();
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_narrows_to_what_its_creator_holds_now() {
        let strings = |list: &[&str]| list.iter().map(|p| (*p).to_owned()).collect::<Vec<_>>();
        let viewer = strings(&["agents:read", "chains:read", "market:read", "memory:read"]);
        assert_eq!(narrow(&strings(&["*:*"]), &viewer), viewer);
        assert_eq!(
            narrow(&strings(&["memory:*", "chains:execute"]), &viewer),
            strings(&["memory:read"])
        );
        assert_eq!(
            narrow(&strings(&["memory:write"]), &strings(&["*:*"])),
            strings(&["memory:write"])
        );
        assert!(narrow(&strings(&["users:admin"]), &viewer).is_empty());
    }

    #[test]
    fn unknown_roles_and_permissions_are_refused() {
        assert!(validate_roles(&["root".to_owned()]).is_err());
        assert!(validate_roles(&[]).is_err());
        assert!(validate_permissions(&["memory:fly".to_owned()]).is_err());
        assert_eq!(
            validate_permissions(&["memory:*".to_owned(), "memory:*".to_owned()]).unwrap(),
            vec!["memory:*"]
        );
    }

    #[test]
    fn only_platform_admins_administer_tenants() {
        let admin = vec!["admin".to_owned()];
        assert!(expand(&admin, vec!["*:*".into()], true).contains(&"tenants:admin".to_owned()));
        assert!(!expand(&admin, vec!["*:*".into()], false).contains(&"tenants:admin".to_owned()));
        assert!(expand(&admin, vec!["*:*".into()], true).contains(&"fleet:read".to_owned()));
        assert!(!expand(&admin, vec!["*:*".into()], false).contains(&"fleet:read".to_owned()));
    }
}
