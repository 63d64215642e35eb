//! How `sankalpa` ends: every failure is one [`Failure`], and [`Failure::code`] is the one place
//! that says which exit code it gives (docs/cli.md lists them):
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | done |
//! | 1 | the operation failed (a run failed or was cancelled, a local file could not be written) |
//! | 2 | usage: bad arguments, or input the API refused (400, 413, 415, 422) |
//! | 3 | not found (404) |
//! | 4 | not signed in, or not allowed (401, 403) |
//! | 5 | conflict (409: a name taken, a version moved on) |
//! | 6 | unavailable: the gateway unreachable, or it said to come back later (429, 502-504) |

use sankalpa_api::client::Error;

pub const OK: u8 = 0;
pub const FAILED: u8 = 1;
pub const USAGE: u8 = 2;
pub const NOT_FOUND: u8 = 3;
pub const DENIED: u8 = 4;
pub const CONFLICT: u8 = 5;
pub const UNAVAILABLE: u8 = 6;

#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The API refused or failed the call, or could not be reached.
    #[error("{}", api_line(.0))]
    Api(#[from] Error),
    /// The arguments do not make a request (a flag's value, a file that is not JSON).
    #[error("{0}")]
    Usage(String),
    /// No credential for this profile.
    #[error("not signed in to profile {0:?}: run `sankalpa login`, or set SANKALPA_API_KEY")]
    NotSignedIn(String),
    /// The operation ran and did not succeed (a run that failed), or local I/O failed.
    #[error("{0}")]
    Failed(String),
}

impl Failure {
    pub fn code(&self) -> u8 {
        match self {
            Self::Usage(_) => USAGE,
            Self::NotSignedIn(_) => DENIED,
            Self::Failed(_) => FAILED,
            Self::Api(Error::Unreachable { .. }) => UNAVAILABLE,
            Self::Api(error) => match error.status() {
                Some(400 | 413 | 415 | 422) => USAGE,
                Some(404) => NOT_FOUND,
                Some(401 | 403) => DENIED,
                Some(409) => CONFLICT,
                Some(429 | 502..=504) => UNAVAILABLE,
                _ => FAILED,
            },
        }
    }

    /// What to do about it, where that is plain: a credential the API refused (a login whose
    /// renewal was refused too, a revoked or expired key) is replaced by signing in again.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Self::Api(error) if error.status() == Some(401) => {
                Some("sign in again with `sankalpa login`, or set SANKALPA_API_KEY to a valid key")
            }
            _ => None,
        }
    }
}

/// A problem as one line: its status and title, then the detail, which names each invalid
/// field (`input.expression: is required`).
fn api_line(error: &Error) -> String {
    match error {
        Error::Problem(problem) => match &problem.detail {
            Some(_) => format!("{} {}: {problem}", problem.status, problem.title),
            None => format!("{} {}", problem.status, problem.title),
        },
        other => other.to_string(),
    }
}
