//! code_summarizer and critic: measure source code — lines, functions, their length, parameters
//! and cyclomatic complexity, nesting, imports — and report what the numbers say.
//!
//! This is a lexical analysis, not a compiler: Python functions end where the indentation
//! returns, brace languages where the braces balance (strings and comments are blanked first so
//! their braces do not count). Complexity is 1 plus the decision points in a function body
//! (`if`, loops, `case`, `catch`/`except`, `&&`/`||`/`and`/`or`, `?`), the usual McCabe count.

use std::sync::LazyLock;

use regex::Regex;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AgentError, Context, parse};

#[derive(Deserialize)]
struct Input {
    code: String,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    max_function_lines: Option<usize>,
    #[serde(default)]
    max_complexity: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Python,
    JavaScript,
    TypeScript,
    Rust,
    Go,
    Java,
    C,
}

impl Language {
    pub fn name(self) -> &'static str {
        match self {
            Self::Python => "python",
            Self::JavaScript => "javascript",
            Self::TypeScript => "typescript",
            Self::Rust => "rust",
            Self::Go => "go",
            Self::Java => "java",
            Self::C => "c",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Some(match name.to_lowercase().as_str() {
            "python" | "py" => Self::Python,
            "javascript" | "js" | "jsx" => Self::JavaScript,
            "typescript" | "ts" | "tsx" => Self::TypeScript,
            "rust" | "rs" => Self::Rust,
            "go" | "golang" => Self::Go,
            "java" | "kotlin" | "csharp" | "c#" => Self::Java,
            "c" | "cpp" | "c++" => Self::C,
            _ => return None,
        })
    }

    /// Guesses from tell-tale syntax.
    pub fn detect(code: &str) -> Self {
        let has = |needle: &str| code.contains(needle);
        if has("fn ") && (has("let ") || has("->") || has("impl ")) {
            Self::Rust
        } else if has("func ") && has("package ") {
            Self::Go
        } else if has("def ") || (has("import ") && has(":\n")) {
            Self::Python
        } else if has("interface ") && has(": ") || has(": string") || has(": number") {
            Self::TypeScript
        } else if has("function") || has("=>") || has("const ") {
            Self::JavaScript
        } else if has("public ") || has("private ") {
            Self::Java
        } else if has("#include") {
            Self::C
        } else {
            Self::Python
        }
    }

    fn line_comment(self) -> &'static str {
        match self {
            Self::Python => "#",
            _ => "//",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Function {
    pub name: String,
    pub start: usize,
    pub end: usize,
    pub parameters: usize,
    pub complexity: u32,
    pub max_nesting: usize,
    pub documented: bool,
}

impl Function {
    pub fn lines(&self) -> usize {
        self.end - self.start + 1
    }

    fn json(&self) -> Value {
        json!({
            "name": self.name,
            "start_line": self.start,
            "end_line": self.end,
            "lines": self.lines(),
            "parameters": self.parameters,
            "complexity": self.complexity,
            "max_nesting": self.max_nesting,
            "documented": self.documented,
        })
    }
}

/// The measurements of one piece of code.
pub struct Analysis {
    pub total: usize,
    pub code: usize,
    pub comments: usize,
    pub blank: usize,
    pub functions: Vec<Function>,
    pub classes: Vec<String>,
    pub imports: Vec<String>,
    /// The code with strings and comments blanked, line for line.
    pub stripped: Vec<String>,
}

static PY_DEF: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(\s*)(?:async\s+)?def\s+([A-Za-z_]\w*)\s*\(([^)]*)").expect("a valid pattern")
});
static BRACE_DEF: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?:\bfunction\s*\*?\s*([A-Za-z_$][\w$]*)\s*\(([^)]*)\)",
        r"|\b(?:const|let|var)\s+([A-Za-z_$][\w$]*)\s*=\s*(?:async\s*)?\(([^)]*)\)\s*(?::\s*[^=]+)?=>",
        r"|\bfn\s+([A-Za-z_]\w*)\s*(?:<[^>]*>)?\s*\(([^)]*)\)",
        r"|\bfunc\s+(?:\([^)]*\)\s*)?([A-Za-z_]\w*)\s*\(([^)]*)\)",
        r"|^\s*(?:(?:public|private|protected|static|final|async|override|virtual|inline)\s+)*[\w<>\[\],.*&]+\s+([A-Za-z_]\w*)\s*\(([^)]*)\)\s*(?:throws\s+[\w., ]+)?\{?\s*$)"
    ))
    .expect("a valid pattern")
});
static CLASS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*(?:export\s+)?(?:pub\s+)?(?:public\s+)?(?:abstract\s+)?(?:class|struct|interface|trait|enum)\s+([A-Za-z_]\w*)")
        .expect("a valid pattern")
});
static IMPORT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"^\s*(?:import\s+([\w.{}, *]+?)(?:\s+from\s+["']([^"']+)["'])?;?\s*$|from\s+([\w.]+)\s+import|use\s+([\w:]+)|#include\s*[<"]([^>"]+)|const\s+\w+\s*=\s*require\(["']([^"']+))"#)
        .expect("a valid pattern")
});
static DECISION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:if|elif|else\s+if|for|while|case|catch|except|and|or)\b|&&|\|\||\?[^?.:]")
        .expect("a valid pattern")
});

const NOT_FUNCTIONS: &[&str] = &[
    "if", "for", "while", "switch", "catch", "return", "else", "new", "match",
];

pub fn analyse(code: &str, language: Language) -> Analysis {
    let stripped = strip(code, language);
    let lines: Vec<&str> = code.lines().collect();
    let (mut comments, mut blank) = (0, 0);
    for (raw, bare) in lines.iter().zip(&stripped) {
        if raw.trim().is_empty() {
            blank += 1;
        } else if bare.trim().is_empty() {
            comments += 1;
        }
    }
    let functions = match language {
        Language::Python => python_functions(&lines, &stripped),
        _ => brace_functions(&lines, &stripped),
    };
    let classes = lines
        .iter()
        .filter_map(|line| CLASS.captures(line).map(|c| c[1].to_owned()))
        .collect();
    let imports = lines
        .iter()
        .filter_map(|line| {
            let captures = IMPORT.captures(line)?;
            let module = [2, 1, 3, 4, 5, 6]
                .iter()
                .find_map(|i| captures.get(*i))?
                .as_str()
                .trim();
            Some(module.to_owned())
        })
        .collect();
    Analysis {
        total: lines.len(),
        code: lines.len() - comments - blank,
        comments,
        blank,
        functions,
        classes,
        imports,
        stripped,
    }
}

/// Blanks string literals and comments (keeping line structure) so braces and keywords in them
/// are not counted.
fn strip(code: &str, language: Language) -> Vec<String> {
    let comment = language.line_comment();
    let mut out = Vec::new();
    let mut in_block = false;
    let mut in_triple: Option<&str> = None;
    for line in code.lines() {
        let mut kept = String::with_capacity(line.len());
        let mut rest = line;
        while !rest.is_empty() {
            if let Some(quote) = in_triple {
                match rest.find(quote) {
                    Some(end) => {
                        rest = &rest[end + 3..];
                        kept.push_str("\"\"");
                        in_triple = None;
                    }
                    None => rest = "",
                }
                continue;
            }
            if in_block {
                match rest.find("*/") {
                    Some(end) => {
                        rest = &rest[end + 2..];
                        in_block = false;
                    }
                    None => rest = "",
                }
                continue;
            }
            if rest.starts_with(comment) {
                break;
            }
            if language != Language::Python && rest.starts_with("/*") {
                in_block = true;
                rest = &rest[2..];
                continue;
            }
            if language == Language::Python
                && (rest.starts_with("\"\"\"") || rest.starts_with("'''"))
            {
                in_triple = Some(&rest[..3]);
                rest = &rest[3..];
                continue;
            }
            let c = rest.chars().next().expect("rest is not empty");
            if c == '"' || c == '\'' || c == '`' {
                // Rust lifetimes ('a) look like an opening quote: only a closing one on the same
                // line makes it a literal.
                let body = &rest[1..];
                let mut escaped = false;
                let end = body.char_indices().find(|(_, ch)| {
                    let found = !escaped && *ch == c;
                    escaped = !escaped && *ch == '\\';
                    found
                });
                match end {
                    Some((at, _)) if !(c == '\'' && language == Language::Rust && at > 2) => {
                        kept.push(c);
                        kept.push(c);
                        rest = &body[at + 1..];
                    }
                    _ => {
                        kept.push(c);
                        rest = body;
                    }
                }
                continue;
            }
            kept.push(c);
            rest = &rest[c.len_utf8()..];
        }
        out.push(kept);
    }
    out
}

fn parameters(list: &str) -> usize {
    list.split(',')
        .map(str::trim)
        .filter(|p| {
            !p.is_empty() && *p != "self" && *p != "&self" && *p != "&mut self" && *p != "cls"
        })
        .count()
}

fn complexity(body: &[String]) -> u32 {
    1 + body
        .iter()
        .map(|line| DECISION.find_iter(line).count() as u32)
        .sum::<u32>()
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

fn python_functions(lines: &[&str], stripped: &[String]) -> Vec<Function> {
    let mut functions = Vec::new();
    for (i, line) in stripped.iter().enumerate() {
        let Some(captures) = PY_DEF.captures(line) else {
            continue;
        };
        let depth = captures[1].len();
        let mut end = i;
        for (j, later) in stripped.iter().enumerate().skip(i + 1) {
            if later.trim().is_empty() {
                continue;
            }
            if indent(later) <= depth {
                break;
            }
            end = j;
        }
        let body = &stripped[i + 1..=end.max(i)];
        let body_indent = body
            .iter()
            .find(|l| !l.trim().is_empty())
            .map_or(depth + 4, |l| indent(l));
        let unit = (body_indent - depth).max(1);
        let max_nesting = body
            .iter()
            .filter(|l| !l.trim().is_empty())
            .map(|l| indent(l).saturating_sub(body_indent) / unit)
            .max()
            .unwrap_or(0);
        let documented = lines
            .get(i + 1..=end)
            .and_then(|rest| rest.iter().find(|l| !l.trim().is_empty()))
            .is_some_and(|first| {
                first.trim_start().starts_with("\"\"\"") || first.trim_start().starts_with("'''")
            });
        functions.push(Function {
            name: captures[2].to_owned(),
            start: i + 1,
            end: end + 1,
            parameters: parameters(&captures[3]),
            complexity: complexity(body),
            max_nesting,
            documented,
        });
    }
    functions
}

fn brace_functions(lines: &[&str], stripped: &[String]) -> Vec<Function> {
    let mut functions = Vec::new();
    for (i, line) in stripped.iter().enumerate() {
        let Some(captures) = BRACE_DEF.captures(line) else {
            continue;
        };
        let mut groups = (1..captures.len())
            .step_by(2)
            .filter_map(|g| Some((captures.get(g)?, captures.get(g + 1)?)));
        let Some((name, params)) = groups.next() else {
            continue;
        };
        if NOT_FUNCTIONS.contains(&name.as_str()) {
            continue;
        }
        // The body runs from the first '{' at or after the header until the braces balance.
        let mut depth = 0usize;
        let mut opened = false;
        let mut max_depth = 0;
        let mut end = None;
        'scan: for (j, text) in stripped.iter().enumerate().skip(i) {
            for c in text.chars() {
                match c {
                    '{' => {
                        depth += 1;
                        opened = true;
                        max_depth = max_depth.max(depth);
                    }
                    '}' if opened => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            end = Some(j);
                            break 'scan;
                        }
                    }
                    ';' if !opened => break 'scan,
                    _ => {}
                }
            }
            if !opened && j > i + 2 {
                break;
            }
        }
        let Some(end) = end else {
            continue;
        };
        let documented = i > 0 && {
            let above = lines[i - 1].trim();
            above.starts_with("///")
                || above.starts_with("*/")
                || above.starts_with("//")
                || above.starts_with("* ")
        };
        functions.push(Function {
            name: name.as_str().to_owned(),
            start: i + 1,
            end: end + 1,
            parameters: parameters(params.as_str()),
            complexity: complexity(&stripped[i..=end]),
            max_nesting: max_depth.saturating_sub(1),
            documented,
        });
    }
    functions
}

fn language_of(input: &Input) -> Result<Language, AgentError> {
    match &input.language {
        Some(name) => Language::parse(name)
            .ok_or_else(|| AgentError::InvalidInput(format!("unsupported language {name:?}"))),
        None => Ok(Language::detect(&input.code)),
    }
}

fn metrics(analysis: &Analysis) -> Value {
    let lengths: Vec<usize> = analysis.functions.iter().map(Function::lines).collect();
    let average = if lengths.is_empty() {
        0.0
    } else {
        lengths.iter().sum::<usize>() as f64 / lengths.len() as f64
    };
    json!({
        "total_lines": analysis.total,
        "code_lines": analysis.code,
        "comment_lines": analysis.comments,
        "blank_lines": analysis.blank,
        "functions": analysis.functions.len(),
        "classes": analysis.classes.len(),
        "average_function_lines": (average * 10.0).round() / 10.0,
        "max_complexity": analysis.functions.iter().map(|f| f.complexity).max().unwrap_or(0),
    })
}

pub async fn summarize(ctx: &mut Context, input: &Value) -> Result<Value, AgentError> {
    let input: Input = parse(input)?;
    let language = language_of(&input)?;
    let analysis = analyse(&input.code, language);
    let most_complex = analysis.functions.iter().max_by_key(|f| f.complexity);
    let mut summary = format!(
        "{} code of {} lines ({} code, {} comment, {} blank) with {} function(s) and {} class(es)",
        language.name(),
        analysis.total,
        analysis.code,
        analysis.comments,
        analysis.blank,
        analysis.functions.len(),
        analysis.classes.len()
    );
    if !analysis.imports.is_empty() {
        summary.push_str(&format!("; it uses {}", analysis.imports.join(", ")));
    }
    if let Some(f) = most_complex {
        summary.push_str(&format!(
            "; the most complex function is {} (complexity {}, {} lines)",
            f.name,
            f.complexity,
            f.lines()
        ));
    }
    summary.push('.');
    let mut method = "static";
    if ctx.has_llm() {
        let prompt = format!(
            "Summarise what this {} code does in three sentences.\n\n{}",
            language.name(),
            input.code
        );
        let summarised = ctx
            .ask_for(
                "You are a senior engineer reviewing code.",
                prompt,
                |answer| Ok(answer.trim().to_owned()),
            )
            .await;
        if let Some(text) = summarised {
            summary = text;
            method = "llm";
        }
    }
    Ok(json!({
        "language": language.name(),
        "summary": summary,
        "method": method,
        "metrics": metrics(&analysis),
        "functions": analysis.functions.iter().map(Function::json).collect::<Vec<_>>(),
        "classes": analysis.classes,
        "imports": analysis.imports,
    }))
}

pub fn critique(input: &Value) -> Result<Value, AgentError> {
    let input: Input = parse(input)?;
    let language = language_of(&input)?;
    let max_lines = input.max_function_lines.unwrap_or(50);
    let max_complexity = input.max_complexity.unwrap_or(10);
    let analysis = analyse(&input.code, language);
    let mut issues = Vec::new();
    let mut issue = |line: usize, severity: &str, rule: &str, message: String| {
        issues.push(json!({"line": line, "severity": severity, "rule": rule, "message": message}));
    };
    for f in &analysis.functions {
        if f.lines() > max_lines {
            issue(
                f.start,
                "warning",
                "long_function",
                format!(
                    "{} is {} lines long (limit {max_lines}): split it into smaller functions",
                    f.name,
                    f.lines()
                ),
            );
        }
        if f.complexity > max_complexity {
            issue(
                f.start,
                "warning",
                "high_complexity",
                format!(
                    "{} has cyclomatic complexity {} (limit {max_complexity}): simplify its branching",
                    f.name, f.complexity
                ),
            );
        }
        if f.parameters > 5 {
            issue(
                f.start,
                "info",
                "many_parameters",
                format!(
                    "{} takes {} parameters: group them into a structure",
                    f.name, f.parameters
                ),
            );
        }
        if f.max_nesting > 3 {
            issue(
                f.start,
                "info",
                "deep_nesting",
                format!(
                    "{} nests {} levels deep: return early or extract functions",
                    f.name, f.max_nesting
                ),
            );
        }
        if language == Language::Python && !f.documented && !f.name.starts_with('_') {
            issue(
                f.start,
                "info",
                "missing_docstring",
                format!("{} has no docstring", f.name),
            );
        }
    }
    for (i, (raw, bare)) in input.code.lines().zip(&analysis.stripped).enumerate() {
        if raw.chars().count() > 120 {
            issue(
                i + 1,
                "info",
                "long_line",
                format!(
                    "line is {} characters long (limit 120)",
                    raw.chars().count()
                ),
            );
        }
        let upper = raw.to_uppercase();
        if (upper.contains("TODO") || upper.contains("FIXME")) && raw.trim() != bare.trim() {
            issue(
                i + 1,
                "info",
                "todo",
                "unfinished work is marked here".to_owned(),
            );
        }
        let trimmed = bare.trim();
        if trimmed == "except:"
            || trimmed.starts_with("except Exception:")
            || trimmed.contains("catch (e) {}")
        {
            issue(
                i + 1,
                "warning",
                "swallowed_errors",
                "errors are caught too broadly or ignored".to_owned(),
            );
        }
    }
    let penalty: f64 = issues
        .iter()
        .map(|i| {
            if i["severity"] == "warning" {
                10.0
            } else {
                3.0
            }
        })
        .sum();
    let score = (100.0 - penalty).max(0.0);
    let verdict = match score {
        s if s >= 90.0 => "good",
        s if s >= 70.0 => "acceptable",
        _ => "needs work",
    };
    Ok(json!({
        "language": language.name(),
        "score": score,
        "verdict": verdict,
        "issues": issues,
        "metrics": metrics(&analysis),
        "functions": analysis.functions.iter().map(Function::json).collect::<Vec<_>>(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PYTHON: &str = r#"import os
from typing import List


def add(a, b):
    """Adds."""
    return a + b


def classify(values: List[int], limit, mode, scale, offset, extra):
    # a comment with if and for that must not count
    out = []
    for v in values:
        if v > limit and mode == "strict":
            out.append(v)
        elif v < 0 or v == limit:
            out.append(-v)
    return out
"#;

    #[test]
    fn python_functions_are_measured() {
        assert_eq!(Language::detect(PYTHON), Language::Python);
        let analysis = analyse(PYTHON, Language::Python);
        assert_eq!(analysis.total, 18);
        assert_eq!(analysis.comments, 1);
        assert_eq!(analysis.imports, ["os", "typing"]);
        let names: Vec<&str> = analysis.functions.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["add", "classify"]);
        let add = &analysis.functions[0];
        assert_eq!(
            (add.start, add.end, add.complexity, add.documented),
            (5, 7, 1, true)
        );
        let classify = &analysis.functions[1];
        assert_eq!((classify.start, classify.end), (10, 18));
        // for, if, and, elif, or
        assert_eq!(classify.complexity, 6);
        assert_eq!(classify.parameters, 6);
        assert_eq!(classify.max_nesting, 2);
    }

    #[test]
    fn brace_language_functions_are_measured_ignoring_braces_in_strings() {
        let code = "function greet(name) {\n  const s = \"{not a brace\";\n  if (name && s) {\n    return s;\n  }\n  return name || 'x';\n}\n\nconst twice = (n) => {\n  return n * 2;\n};\n";
        let analysis = analyse(code, Language::JavaScript);
        let found: Vec<(&str, usize, usize, u32)> = analysis
            .functions
            .iter()
            .map(|f| (f.name.as_str(), f.start, f.end, f.complexity))
            .collect();
        assert_eq!(found, [("greet", 1, 7, 4), ("twice", 9, 11, 1)]);
    }

    #[test]
    fn the_critic_flags_long_complex_functions_and_passes_tidy_code() {
        let mut long = String::from("def process(x):\n    \"\"\"Does much.\"\"\"\n");
        for i in 0..60 {
            long.push_str(&format!("    if x == {i}:\n        x += 1\n"));
        }
        let out = critique(&json!({"code": long})).unwrap();
        let rules: Vec<&str> = out["issues"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["rule"].as_str().unwrap())
            .collect();
        assert!(
            rules.contains(&"long_function") && rules.contains(&"high_complexity"),
            "{rules:?}"
        );
        assert_eq!(out["score"], 80.0);
        assert_eq!(out["verdict"], "acceptable");
        let tidy =
            critique(&json!({"code": "def add(a, b):\n    \"\"\"Adds.\"\"\"\n    return a + b\n"}))
                .unwrap();
        assert_eq!(tidy["issues"], json!([]));
        assert_eq!(tidy["score"], 100.0);
    }
}
