//! Documents given on the command line, JSON or YAML: an argument's value inline, `@file` or `-`
//! for stdin ([`document`]), or a FILE argument, a path or `-` ([`file`]).
//!
//! Which format: a file whose name ends `.yaml` or `.yml` is YAML. Anything else (inline text,
//! stdin, other files) is JSON, passed on as written so numbers keep every digit; only text
//! that is not JSON and is a YAML mapping or list is read as YAML. A bare YAML scalar is not
//! taken: a word that is not JSON (`--input hello`) is more likely a forgotten quote than a
//! string meant, and the error says so rather than sending `"hello"`.

use std::io::Read;
use std::path::Path;

use serde_json::value::RawValue;

use crate::exit::Failure;

/// The document `arg` gives: inline text, `@file`, or `-` for stdin; `flag` names it in errors.
pub fn document(flag: &str, arg: &str) -> Result<Box<RawValue>, Failure> {
    match arg.strip_prefix('@') {
        Some(path) => file(flag, path),
        None if arg == "-" => parse(flag, &stdin(flag)?, Format::JsonElseYaml),
        None => parse(flag, arg, Format::JsonElseYaml),
    }
}

/// [`document`] as a JSON value, for the API types that hold one; `None` when `arg` is.
pub fn value(flag: &str, arg: Option<&str>) -> Result<Option<serde_json::Value>, Failure> {
    arg.map(|arg| {
        let raw = document(flag, arg)?;
        serde_json::from_str(raw.get()).map_err(|err| Failure::Usage(format!("{flag}: {err}")))
    })
    .transpose()
}

/// The document in the file at `path` (`-`: stdin); `flag` names it in errors.
pub fn file(flag: &str, path: &str) -> Result<Box<RawValue>, Failure> {
    if path == "-" {
        return parse(flag, &stdin(flag)?, Format::JsonElseYaml);
    }
    let text = std::fs::read_to_string(path)
        .map_err(|err| Failure::Usage(format!("{flag}: cannot read {path}: {err}")))?;
    let yaml_by_name = Path::new(path)
        .extension()
        .is_some_and(|extension| extension == "yaml" || extension == "yml");
    let format = match yaml_by_name {
        true => Format::Yaml,
        false => Format::JsonElseYaml,
    };
    parse(flag, &text, format)
}

fn stdin(flag: &str) -> Result<String, Failure> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|err| Failure::Usage(format!("{flag}: cannot read stdin: {err}")))?;
    Ok(text)
}

enum Format {
    Yaml,
    /// JSON, or a YAML mapping or list when the text is not JSON.
    JsonElseYaml,
}

fn parse(flag: &str, text: &str, format: Format) -> Result<Box<RawValue>, Failure> {
    match format {
        Format::Yaml => {
            yaml(text).map_err(|err| Failure::Usage(format!("{flag}: not YAML: {err}")))
        }
        Format::JsonElseYaml => match RawValue::from_string(text.trim().to_owned()) {
            Ok(json) => Ok(json),
            Err(json_error) => match yaml(text) {
                Ok(from_yaml) if from_yaml.get().starts_with(['{', '[']) => Ok(from_yaml),
                _ => Err(Failure::Usage(format!(
                    "{flag}: not JSON ({json_error}), nor a YAML mapping or list"
                ))),
            },
        },
    }
}

/// YAML text as JSON text. Merge keys (`<<: *defaults`) are applied, so that a chain file may
/// share settings between steps through an anchor; keys keep their order.
fn yaml(text: &str) -> Result<Box<RawValue>, String> {
    let mut value: serde_norway::Value =
        serde_norway::from_str(text).map_err(|err| err.to_string())?;
    value.apply_merge().map_err(|err| err.to_string())?;
    refuse_tags(&value)?;
    let json = serde_json::to_string(&value).map_err(|err| err.to_string())?;
    RawValue::from_string(json).map_err(|err| err.to_string())
}

/// A tag (`!custom value`) has no JSON form; serialised as it is, it would become a key of its
/// own, which no one writing it means.
fn refuse_tags(value: &serde_norway::Value) -> Result<(), String> {
    use serde_norway::Value;
    match value {
        Value::Tagged(tagged) => Err(format!("a tag ({}) has no JSON form", tagged.tag)),
        Value::Sequence(items) => items.iter().try_for_each(refuse_tags),
        Value::Mapping(mapping) => mapping.values().try_for_each(refuse_tags),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str, format: Format) -> Result<String, String> {
        parse("--input", text, format)
            .map(|raw| raw.get().to_owned())
            .map_err(|failure| failure.to_string())
    }

    #[test]
    fn json_passes_as_written_and_yaml_mappings_become_json_in_their_key_order() {
        assert_eq!(
            parsed(
                r#"{"n": 1.50, "big": 12345678901234567890123}"#,
                Format::JsonElseYaml
            ),
            Ok(r#"{"n": 1.50, "big": 12345678901234567890123}"#.to_owned())
        );
        assert_eq!(
            parsed("name: Ada\nage: 36\ntags: [a, b]\n", Format::JsonElseYaml),
            Ok(r#"{"name":"Ada","age":36,"tags":["a","b"]}"#.to_owned())
        );
        assert_eq!(
            parsed(
                "defaults: &d {retry: 2}\nstep:\n  <<: *d\n  id: build\n",
                Format::Yaml
            ),
            Ok(r#"{"defaults":{"retry":2},"step":{"id":"build","retry":2}}"#.to_owned())
        );
        assert_eq!(parsed("hello", Format::Yaml), Ok(r#""hello""#.to_owned()));
    }

    #[test]
    fn a_word_that_is_not_json_and_broken_yaml_are_refused_naming_the_flag() {
        let refused = parsed("hello", Format::JsonElseYaml).unwrap_err();
        assert!(refused.starts_with("--input: not JSON ("), "{refused}");
        let refused = parsed("{oops", Format::JsonElseYaml).unwrap_err();
        assert!(refused.starts_with("--input: not JSON ("), "{refused}");
        let refused = parsed("a: [1\n", Format::Yaml).unwrap_err();
        assert!(refused.starts_with("--input: not YAML: "), "{refused}");
        let refused = parsed("step: !custom {id: a}\n", Format::Yaml).unwrap_err();
        assert_eq!(
            refused,
            "--input: not YAML: a tag (!custom) has no JSON form"
        );
    }
}
