//! Object storage for artifacts, backups and marketplace packages.
//!
//! `SANKALPA_OBJECT_STORE_URL` picks the store: a folder (`file:///var/lib/sankalpa/objects`, or
//! a relative path such as the default `./data/objects`) or S3 (`s3://bucket/prefix`, with the
//! usual `AWS_*` variables for credentials, region and endpoint, so MinIO works too).

use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload};

#[derive(Clone)]
pub struct Objects {
    store: Arc<dyn ObjectStore>,
    /// Put before every key; lets tests and tenants of one bucket stay apart.
    prefix: String,
}

impl Objects {
    pub fn from_url(url: &str) -> anyhow::Result<Self> {
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let store = object_store::aws::AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .build()
                .with_context(|| format!("could not configure the S3 bucket {bucket}"))?;
            return Ok(Self {
                store: Arc::new(store),
                prefix: prefix.trim_end_matches('/').to_owned(),
            });
        }
        let folder = url.strip_prefix("file://").unwrap_or(url);
        std::fs::create_dir_all(folder)
            .with_context(|| format!("could not create the object folder {folder}"))?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(folder)
            .with_context(|| format!("could not open the object folder {folder}"))?;
        Ok(Self {
            store: Arc::new(store),
            prefix: String::new(),
        })
    }

    /// This store with every key under `prefix` as well.
    pub fn scoped(&self, prefix: &str) -> Self {
        Self {
            store: self.store.clone(),
            prefix: self.path_string(prefix),
        }
    }

    fn path_string(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}/{key}", self.prefix)
        }
    }

    fn path(&self, key: &str) -> anyhow::Result<Path> {
        Path::parse(self.path_string(key))
            .with_context(|| format!("{key:?} is not a valid object key"))
    }

    pub async fn put(&self, key: &str, bytes: Bytes) -> anyhow::Result<()> {
        self.store
            .put(&self.path(key)?, PutPayload::from_bytes(bytes))
            .await
            .with_context(|| format!("could not store {key}"))?;
        Ok(())
    }

    /// The object's bytes, or `None` when there is no such object.
    pub async fn get(&self, key: &str) -> anyhow::Result<Option<Bytes>> {
        match self.store.get(&self.path(key)?).await {
            Ok(found) => Ok(Some(found.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(err) => Err(anyhow::Error::new(err).context(format!("could not read {key}"))),
        }
    }

    pub async fn delete(&self, key: &str) -> anyhow::Result<()> {
        match self.store.delete(&self.path(key)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(anyhow::Error::new(err).context(format!("could not delete {key}"))),
        }
    }

    /// Keys under `prefix`, relative to this store's own prefix, sorted.
    pub async fn list(&self, prefix: &str) -> anyhow::Result<Vec<String>> {
        let base = self.path(prefix)?;
        let mut keys: Vec<String> = self
            .store
            .list(Some(&base))
            .map_ok(|meta| meta.location.to_string())
            .try_collect()
            .await
            .with_context(|| format!("could not list {prefix}"))?;
        if !self.prefix.is_empty() {
            let own = format!("{}/", self.prefix);
            for key in &mut keys {
                if let Some(rest) = key.strip_prefix(&own) {
                    *key = rest.to_owned();
                }
            }
        }
        keys.sort();
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_folder_store_keeps_what_is_put_until_deleted() {
        let folder =
            std::env::temp_dir().join(format!("sankalpa-objects-{}", uuid::Uuid::new_v4()));
        let objects = Objects::from_url(folder.to_str().unwrap())
            .unwrap()
            .scoped("tenant-a");
        objects
            .put("backups/one.json", Bytes::from_static(b"{}"))
            .await
            .unwrap();
        assert_eq!(
            objects.get("backups/one.json").await.unwrap().unwrap(),
            Bytes::from_static(b"{}")
        );
        assert_eq!(
            objects.list("backups").await.unwrap(),
            vec!["backups/one.json"]
        );
        objects.delete("backups/one.json").await.unwrap();
        assert!(objects.get("backups/one.json").await.unwrap().is_none());
        std::fs::remove_dir_all(folder).unwrap();
    }
}
