//! JSON given on the command line: inline, `@file`, or `-` for stdin.

use std::io::Read;

use serde_json::value::RawValue;

use crate::exit::Failure;

/// The JSON `arg` gives, checked to be JSON and passed on as written; `flag` names it in errors.
pub fn json(flag: &str, arg: &str) -> Result<Box<RawValue>, Failure> {
    let text = match arg {
        "-" => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|err| Failure::Usage(format!("{flag}: cannot read stdin: {err}")))?;
            text
        }
        _ => match arg.strip_prefix('@') {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|err| Failure::Usage(format!("{flag}: cannot read {path}: {err}")))?,
            None => arg.to_owned(),
        },
    };
    RawValue::from_string(text.trim().to_owned())
        .map_err(|err| Failure::Usage(format!("{flag}: not JSON: {err}")))
}
