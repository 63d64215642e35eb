//! Roles and the permissions they grant.
//!
//! The role -> permission table lives in `auth.role_permissions` (seeded by the migration). A
//! token carries the expanded permissions, so services check a permission without asking auth.

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
    "users:admin",
    "tenants:admin",
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

/// The permissions of a user: those of its roles, plus `tenants:admin` for admins of the
/// operators' tenant.
pub fn expand(
    roles: &[String],
    role_permissions: Vec<String>,
    platform_tenant: bool,
) -> Vec<String> {
    let mut permissions = role_permissions;
    if platform_tenant && roles.iter().any(|role| role == "admin") {
        permissions.push("tenants:admin".to_owned());
    }
    permissions.sort();
    permissions.dedup();
    permissions
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
