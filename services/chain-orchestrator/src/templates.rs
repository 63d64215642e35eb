//! Chain templates: the definitions in `catalog/chains/*.json`, listed to every tenant and
//! runnable by name, read-only. A template's name is its file name; they are loaded and checked
//! once at start, so a broken template stops the service rather than a user's run.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;

use crate::definition::{self, Definition};

pub struct Template {
    pub name: String,
    pub definition_json: String,
    pub definition: Definition,
}

pub struct Templates {
    by_name: BTreeMap<String, Template>,
}

impl Templates {
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let mut by_name = BTreeMap::new();
        let entries = std::fs::read_dir(dir)
            .with_context(|| format!("failed to read the chain templates in {}", dir.display()))?;
        for entry in entries {
            let path = entry?.path();
            if path.extension().and_then(|ext| ext.to_str()) != Some("json") {
                continue;
            }
            let name = path
                .file_stem()
                .and_then(|stem| stem.to_str())
                .context("a template file name is not text")?
                .to_owned();
            let definition_json = std::fs::read_to_string(&path)
                .with_context(|| format!("failed to read {}", path.display()))?;
            let definition = definition::parse(&definition_json).map_err(|problems| {
                let listed: Vec<String> = problems
                    .iter()
                    .map(|problem| format!("{}: {}", problem.field, problem.message))
                    .collect();
                anyhow::anyhow!(
                    "template {} is not valid: {}",
                    path.display(),
                    listed.join("; ")
                )
            })?;
            by_name.insert(
                name.clone(),
                Template {
                    name,
                    definition_json,
                    definition,
                },
            );
        }
        Ok(Self { by_name })
    }

    pub fn get(&self, name: &str) -> Option<&Template> {
        self.by_name.get(name)
    }

    pub fn all(&self) -> impl Iterator<Item = &Template> {
        self.by_name.values()
    }
}
