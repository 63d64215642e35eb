//! Artifacts: the files runs write, kept in the object store under
//! `tenants/<tenant>/projects/<workspace>/<path>`, and served back as one `.tar.gz`.
//!
//! Agents never touch the store: they hand their files to the run's context, which checks every
//! path ([`clean_path`]), and the run stores them once the agent has completed, so a failed or
//! cancelled run leaves nothing half-written. The tenant is part of every key, so one tenant can
//! never name another's files.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Context;
use bytes::Bytes;
use futures::future::try_join_all;
use sankalpa_kit::objects::Objects;
use sha2::{Digest, Sha256};

/// A file a run wrote.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Artifact {
    pub path: String,
    pub size_bytes: u64,
    pub sha256: String,
}

/// The longest relative path an agent may write.
const MAX_PATH: usize = 512;

/// `path` if it stays inside the workspace: relative, '/'-separated, no empty, `.` or `..`
/// segment, no backslash (a Windows separator on unpack), no control characters.
pub fn clean_path(path: &str) -> Result<&str, String> {
    if path.is_empty() || path.len() > MAX_PATH {
        return Err(format!("must be 1 to {MAX_PATH} bytes long"));
    }
    if path.starts_with('/') || path.contains('\\') || path.contains(':') {
        return Err("must be a relative '/'-separated path".to_owned());
    }
    if path.chars().any(char::is_control) {
        return Err("must not contain control characters".to_owned());
    }
    if path
        .split('/')
        .any(|segment| segment.is_empty() || segment == "." || segment == "..")
    {
        return Err("must not contain empty, '.' or '..' segments".to_owned());
    }
    Ok(path)
}

/// A workspace or run id usable as one key segment: `[A-Za-z0-9_-]{1,128}`.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// `text` as lowercase ASCII words joined by `-`: a name safe in a path, a URL or an image tag
/// (the project builders' names, a custom template's `slug` filter).
pub fn slug(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join("-")
}

/// The artifacts of one tenant.
pub struct TenantFiles {
    objects: Objects,
}

impl TenantFiles {
    pub fn new(objects: &Objects, tenant: &str) -> Self {
        Self {
            objects: objects.scoped(&format!("tenants/{tenant}")),
        }
    }

    fn key(workspace: &str, path: &str) -> String {
        format!("projects/{workspace}/{path}")
    }

    /// Stores `files` into `workspace` and describes them, in path order.
    pub async fn store(
        &self,
        workspace: &str,
        files: BTreeMap<String, Vec<u8>>,
    ) -> anyhow::Result<Vec<Artifact>> {
        let writes = files.into_iter().map(|(path, content)| async move {
            let artifact = Artifact {
                size_bytes: content.len() as u64,
                sha256: hex::encode(Sha256::digest(&content)),
                path,
            };
            self.objects
                .put(&Self::key(workspace, &artifact.path), Bytes::from(content))
                .await?;
            anyhow::Ok(artifact)
        });
        try_join_all(writes).await
    }

    /// The paths of the workspace's files.
    pub async fn paths(&self, workspace: &str) -> anyhow::Result<Vec<String>> {
        let root = format!("projects/{workspace}/");
        let keys = self.objects.list(&format!("projects/{workspace}")).await?;
        Ok(keys
            .iter()
            .filter_map(|key| key.strip_prefix(&root))
            .map(str::to_owned)
            .collect())
    }

    /// The workspace's files as a gzip-compressed tar archive, or `None` if it has none.
    pub async fn archive(&self, workspace: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let root = format!("projects/{workspace}/");
        let keys = self.objects.list(&format!("projects/{workspace}")).await?;
        let mut files = Vec::with_capacity(keys.len());
        for key in keys {
            let Some(path) = key.strip_prefix(&root) else {
                continue;
            };
            if let Some(content) = self.objects.get(&key).await? {
                files.push((path.to_owned(), content));
            }
        }
        if files.is_empty() {
            return Ok(None);
        }
        // Compression is CPU work proportional to the project's size: off the async threads.
        let archive = tokio::task::spawn_blocking(move || pack(&files))
            .await
            .context("the archive task failed")??;
        Ok(Some(archive))
    }
}

fn pack(files: &[(String, Bytes)]) -> anyhow::Result<Vec<u8>> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut builder = tar::Builder::new(encoder);
    for (path, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, path, content.as_ref())
            .with_context(|| format!("could not archive {path}"))?;
    }
    let mut encoder = builder.into_inner()?;
    encoder.flush()?;
    Ok(encoder.finish()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_leave_the_workspace_are_refused() {
        for bad in [
            "",
            "/etc/passwd",
            "../secret",
            "a/../../b",
            "a//b",
            "./a",
            "a\\..\\b",
            "c:/x",
            "a\nb",
        ] {
            assert!(clean_path(bad).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(clean_path("backend/app/main.py"), Ok("backend/app/main.py"));
        assert_eq!(
            clean_path(".github/workflows/ci.yml"),
            Ok(".github/workflows/ci.yml")
        );
    }
}
