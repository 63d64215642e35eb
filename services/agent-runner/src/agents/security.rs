//! security_scanner: finds the classic mistakes in source code, line by line — hard-coded
//! secrets, SQL built from strings, eval/exec and shell commands, weak hashing — each with its
//! line, rule, severity and CWE.
//!
//! Rules are patterns, chosen to be quiet on clean code: a secret must be a literal assigned to
//! a secret-sounding name (reading it from the environment is fine, placeholders are ignored),
//! and SQL must be a query literal joined with a non-literal. Secrets are redacted in the report.

use std::sync::LazyLock;

use regex::Regex;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AgentError, Context, parse};

#[derive(Deserialize)]
struct Input {
    code: String,
    #[serde(default)]
    filename: Option<String>,
}

struct Rule {
    id: &'static str,
    severity: &'static str,
    cwe: &'static str,
    message: &'static str,
    pattern: Regex,
    /// Whether the rule applies inside comments (a secret in a comment is still leaked).
    in_comments: bool,
}

fn rule(
    id: &'static str,
    severity: &'static str,
    cwe: &'static str,
    message: &'static str,
    pattern: &str,
    in_comments: bool,
) -> Rule {
    Rule {
        id,
        severity,
        cwe,
        message,
        pattern: Regex::new(pattern).expect("a valid pattern"),
        in_comments,
    }
}

static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    vec![
        rule(
            "hardcoded_secret",
            "high",
            "CWE-798",
            "a credential is written in the code: load it from the environment or a secret store",
            r#"(?i)\b[\w.]*(?:password|passwd|pwd|secret|api_?key|apikey|access_?key|auth_?token|token|private_?key|client_secret)\w*["']?\s*(?:=|:|=>)\s*["']([^"'\s]{6,})["']"#,
            true,
        ),
        rule(
            "hardcoded_secret",
            "high",
            "CWE-798",
            "a cloud or service key is written in the code",
            r"\b(?:AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36}|xox[baprs]-[A-Za-z0-9-]{10,}|sk_live_[A-Za-z0-9]{16,})\b",
            true,
        ),
        rule(
            "hardcoded_secret",
            "high",
            "CWE-321",
            "a private key is embedded in the code",
            r"-----BEGIN (?:RSA |EC |DSA |OPENSSH )?PRIVATE KEY-----",
            true,
        ),
        rule(
            "sql_injection",
            "high",
            "CWE-89",
            "SQL is built from strings: pass values as query parameters",
            concat!(
                r#"(?i)["'`][^"'`]*\b(?:select\s.+\sfrom|insert\s+into|update\s+\w+\s+set|delete\s+from)\b[^"'`]*["'`]\s*(?:\+|%\s*[\w(]|\.format\()"#,
                r#"|(?i)\bf"[^"]*\b(?:select\s.+\sfrom|insert\s+into|update\s+\w+\s+set|delete\s+from)\b[^"]*\{"#,
                r#"|(?i)\bf'[^']*\b(?:select\s.+\sfrom|insert\s+into|update\s+\w+\s+set|delete\s+from)\b[^']*\{"#,
                r#"|(?i)`[^`]*\b(?:select\s.+\sfrom|insert\s+into|update\s+\w+\s+set|delete\s+from)\b[^`]*\$\{"#,
                r#"|(?i)\+\s*["'`][^"'`]*\b(?:where|and|or|values)\b"#
            ),
            false,
        ),
        rule(
            "code_injection",
            "high",
            "CWE-95",
            "eval/exec runs text as code: parse the data instead",
            r"(?:^|[^\w.])(?:eval|exec)\s*\(|\bnew\s+Function\s*\(",
            false,
        ),
        rule(
            "command_injection",
            "high",
            "CWE-78",
            "a shell runs a command line: pass an argument list without a shell",
            r"\bos\.system\s*\(|\bos\.popen\s*\(|shell\s*=\s*True|\bchild_process\.exec\s*\(|\bRuntime\.getRuntime\(\)\.exec\s*\(",
            false,
        ),
        rule(
            "weak_hash",
            "medium",
            "CWE-328",
            "MD5 and SHA-1 are broken for security: use SHA-256 (or argon2/bcrypt for passwords)",
            r#"(?i)\bhashlib\.(?:md5|sha1)\b|createHash\(\s*["'](?:md5|sha1)["']|getInstance\(\s*"(?:MD5|SHA-?1)"|\b(?:Md5|Sha1)::(?:new|digest)|\bmd5\s*\(|\bsha1\s*\("#,
            false,
        ),
    ]
});

/// Values that look like a secret assignment but are not secrets.
fn placeholder(value: &str) -> bool {
    let lower = value.to_lowercase();
    [
        "changeme",
        "example",
        "placeholder",
        "your_",
        "your-",
        "xxxx",
        "<",
        "${",
        "{{",
        "process.env",
        "os.environ",
        "dummy",
        "redacted",
    ]
    .iter()
    .any(|marker| lower.contains(marker))
}

fn comment_only(line: &str) -> bool {
    let trimmed = line.trim_start();
    ["#", "//", "*", "/*", "--"]
        .iter()
        .any(|m| trimmed.starts_with(m))
}

pub fn run(ctx: &mut Context, input: &Value) -> Result<Value, AgentError> {
    let input: Input = parse(input)?;
    let mut findings = Vec::new();
    for (i, line) in input.code.lines().enumerate() {
        let comment = comment_only(line);
        let mut seen = Vec::new();
        for rule in RULES.iter() {
            if (comment && !rule.in_comments) || seen.contains(&rule.id) {
                continue;
            }
            let Some(found) = rule.pattern.captures(line) else {
                continue;
            };
            let whole = found.get(0).expect("a match has a whole");
            if rule.id == "hardcoded_secret"
                && found.get(1).is_some_and(|v| placeholder(v.as_str()))
            {
                continue;
            }
            seen.push(rule.id);
            findings.push(json!({
                "rule": rule.id,
                "severity": rule.severity,
                "cwe": rule.cwe,
                "line": i + 1,
                "column": line[..whole.start()].chars().count() + 1,
                "message": rule.message,
                "snippet": redact(line.trim(), rule.id),
            }));
        }
    }
    let sarif = sarif(input.filename.as_deref().unwrap_or("input"), &findings);
    ctx.write(
        "reports/security-scan.sarif",
        serde_json::to_vec_pretty(&sarif).expect("JSON values serialise"),
    )?;
    let count = |severity: &str| {
        findings
            .iter()
            .filter(|f| f["severity"] == severity)
            .count()
    };
    let summary = json!({"high": count("high"), "medium": count("medium"), "low": count("low"), "total": findings.len()});
    Ok(json!({
        "filename": input.filename,
        "lines_scanned": input.code.lines().count(),
        "clean": findings.is_empty(),
        "summary": summary,
        "findings": findings,
    }))
}

/// The findings as SARIF 2.1.0, the format code-scanning tools (GitHub's among them) import.
fn sarif(filename: &str, findings: &[Value]) -> Value {
    let results: Vec<Value> = findings
        .iter()
        .map(|f| {
            let level = if f["severity"] == "high" {
                "error"
            } else {
                "warning"
            };
            json!({
                "ruleId": f["rule"],
                "level": level,
                "message": {"text": f["message"]},
                "locations": [{"physicalLocation": {
                    "artifactLocation": {"uri": filename},
                    "region": {"startLine": f["line"], "startColumn": f["column"]}
                }}],
                "properties": {"cwe": f["cwe"]},
            })
        })
        .collect();
    json!({
        "version": "2.1.0",
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "runs": [{"tool": {"driver": {"name": "sankalpa security_scanner", "version": "1.0.0"}}, "results": results}],
    })
}

/// The line with the quoted values of a secret finding masked.
fn redact(line: &str, rule: &str) -> String {
    if rule != "hardcoded_secret" {
        return line.to_owned();
    }
    static QUOTED: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r#"(["'])[^"']{4,}(["'])"#).expect("a valid pattern"));
    static KEYS: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"AKIA[0-9A-Z]{4}[0-9A-Z]{12}|gh[pousr]_[A-Za-z0-9]{36}")
            .expect("a valid pattern")
    });
    let masked = QUOTED.replace_all(line, "$1****$2");
    KEYS.replace_all(&masked, "****").into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const VULNERABLE: &str = r#"import hashlib, os, subprocess

DB_PASSWORD = "hunter2secret"
aws = "AKIAIOSFODNN7EXAMPLE"

def find(user_id, name):
    query = "SELECT * FROM users WHERE id = " + user_id
    cursor.execute(f"DELETE FROM users WHERE name = '{name}'")
    digest = hashlib.md5(name.encode()).hexdigest()
    result = eval(name)
    subprocess.run(name, shell=True)
    return query
"#;

    const CLEAN: &str = r#"import hashlib, os

DB_PASSWORD = os.environ["DB_PASSWORD"]
API_KEY = "changeme"

def find(cursor, user_id):
    """Evaluates nothing; the query is parameterised."""
    cursor.execute("SELECT * FROM users WHERE id = %s", (user_id,))
    digest = hashlib.sha256(user_id.encode()).hexdigest()
    # eval( in a comment is not code
    return cursor.fetchone(), digest
"#;

    #[test]
    fn planted_issues_are_found_on_their_lines() {
        let mut ctx = Context::new(None);
        let out = run(&mut ctx, &json!({"code": VULNERABLE, "filename": "app.py"})).unwrap();
        let found: Vec<(String, u64)> = out["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["rule"].as_str().unwrap().to_owned(),
                    f["line"].as_u64().unwrap(),
                )
            })
            .collect();
        let expected = [
            ("hardcoded_secret", 3),
            ("hardcoded_secret", 4),
            ("sql_injection", 7),
            ("sql_injection", 8),
            ("weak_hash", 9),
            ("code_injection", 10),
            ("command_injection", 11),
        ];
        let expected: Vec<(String, u64)> = expected
            .iter()
            .map(|(r, l)| ((*r).to_owned(), *l))
            .collect();
        assert_eq!(found, expected);
        assert!(
            !out["findings"][0]["snippet"]
                .as_str()
                .unwrap()
                .contains("hunter2")
        );
        assert_eq!(out["clean"], false);
        let (files, _) = ctx.finish();
        let sarif: Value = serde_json::from_slice(&files["reports/security-scan.sarif"]).unwrap();
        let results = &sarif["runs"][0]["results"];
        assert_eq!(results.as_array().unwrap().len(), 7);
        assert_eq!(
            results[2]["locations"][0]["physicalLocation"]["region"]["startLine"],
            7
        );
    }

    #[test]
    fn clean_code_has_no_findings() {
        let out = run(&mut Context::new(None), &json!({"code": CLEAN})).unwrap();
        assert_eq!(out["findings"], json!([]), "{out}");
        assert_eq!(out["clean"], true);
    }
}
