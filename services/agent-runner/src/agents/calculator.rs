//! custom_calculator: parses and evaluates arithmetic expressions.
//!
//! A recursive-descent parser over this grammar (lowest precedence first):
//!
//! ```text
//! sum     = product (("+" | "-") product)*
//! product = unary (("*" | "/" | "%") unary)*
//! unary   = ("-" | "+") unary | power
//! power   = primary ("^" unary)?        right-associative; -2^2 is -(2^2)
//! primary = number | name | name "(" sum ("," sum)* ")" | "(" sum ")"
//! ```
//!
//! Errors name the position (1-based character) where they were found. Division or modulo by
//! zero, a result that is not a finite number and a function outside its domain are errors of
//! the run, never a panic or an `inf` in the output.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{AgentError, parse};

#[derive(Deserialize)]
struct Input {
    expression: String,
    #[serde(default)]
    variables: HashMap<String, f64>,
    #[serde(default)]
    precision: Option<u32>,
}

pub fn run(input: &Value) -> Result<Value, AgentError> {
    let input: Input = parse(input)?;
    let mut parser = Parser {
        chars: input.expression.chars().collect(),
        at: 0,
        variables: &input.variables,
    };
    let value = parser.expression()?;
    let value = match input.precision {
        Some(digits) => {
            let scale = 10f64.powi(digits.min(15) as i32);
            (value * scale).round() / scale
        }
        None => value,
    };
    Ok(json!({
        "expression": input.expression,
        "result": number(value),
        "result_text": format_number(value),
    }))
}

/// Whole results as JSON integers (`7`, not `7.0`), others as floats.
fn number(value: f64) -> Value {
    if value.fract() == 0.0 && value.abs() < 9.0e15 {
        json!(value as i64)
    } else {
        json!(value)
    }
}

fn format_number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 9.0e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

struct Parser<'a> {
    chars: Vec<char>,
    at: usize,
    variables: &'a HashMap<String, f64>,
}

impl Parser<'_> {
    fn expression(&mut self) -> Result<f64, AgentError> {
        if self.chars.iter().all(|c| c.is_whitespace()) {
            return Err(AgentError::InvalidInput(
                "the expression is empty".to_owned(),
            ));
        }
        let value = self.sum()?;
        self.skip_space();
        if let Some(c) = self.peek() {
            return Err(self.invalid(format!("unexpected {c:?}")));
        }
        Ok(value)
    }

    fn sum(&mut self) -> Result<f64, AgentError> {
        let mut value = self.product()?;
        loop {
            self.skip_space();
            match self.peek() {
                Some('+') => {
                    self.at += 1;
                    let right = self.product()?;
                    value = self.finite(value + right)?;
                }
                Some('-') => {
                    self.at += 1;
                    let right = self.product()?;
                    value = self.finite(value - right)?;
                }
                _ => return Ok(value),
            }
        }
    }

    fn product(&mut self) -> Result<f64, AgentError> {
        let mut value = self.unary()?;
        loop {
            self.skip_space();
            let op = match self.peek() {
                Some(op @ ('*' | '/' | '%')) => op,
                _ => return Ok(value),
            };
            let position = self.at;
            self.at += 1;
            let right = self.unary()?;
            value = match op {
                '*' => value * right,
                _ if right == 0.0 => {
                    let what = if op == '/' { "division" } else { "modulo" };
                    return Err(AgentError::Failed(format!(
                        "{what} by zero at position {}",
                        position + 1
                    )));
                }
                '/' => value / right,
                _ => value % right,
            };
            value = self.finite(value)?;
        }
    }

    fn unary(&mut self) -> Result<f64, AgentError> {
        self.skip_space();
        match self.peek() {
            Some('-') => {
                self.at += 1;
                Ok(-self.unary()?)
            }
            Some('+') => {
                self.at += 1;
                self.unary()
            }
            _ => self.power(),
        }
    }

    fn power(&mut self) -> Result<f64, AgentError> {
        let base = self.primary()?;
        self.skip_space();
        if self.peek() == Some('^') {
            self.at += 1;
            let exponent = self.unary()?;
            return self.finite(base.powf(exponent));
        }
        Ok(base)
    }

    fn primary(&mut self) -> Result<f64, AgentError> {
        self.skip_space();
        match self.peek() {
            Some('(') => {
                self.at += 1;
                let value = self.sum()?;
                self.expect(')')?;
                Ok(value)
            }
            Some(c) if c.is_ascii_digit() || c == '.' => self.number(),
            Some(c) if c.is_alphabetic() || c == '_' => self.name(),
            Some(c) => Err(self.invalid(format!("unexpected {c:?}"))),
            None => Err(self.invalid("the expression ends too early".to_owned())),
        }
    }

    fn number(&mut self) -> Result<f64, AgentError> {
        let start = self.at;
        while self.peek().is_some_and(|c| c.is_ascii_digit() || c == '.') {
            self.at += 1;
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            let mark = self.at;
            self.at += 1;
            if matches!(self.peek(), Some('+' | '-')) {
                self.at += 1;
            }
            if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.at += 1;
                }
            } else {
                self.at = mark;
            }
        }
        let text: String = self.chars[start..self.at].iter().collect();
        text.parse::<f64>().map_err(|_| {
            AgentError::InvalidInput(format!(
                "{text:?} at position {} is not a number",
                start + 1
            ))
        })
    }

    fn name(&mut self) -> Result<f64, AgentError> {
        let start = self.at;
        while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            self.at += 1;
        }
        let name: String = self.chars[start..self.at].iter().collect();
        self.skip_space();
        if self.peek() != Some('(') {
            return match name.as_str() {
                "pi" => Ok(std::f64::consts::PI),
                "e" => Ok(std::f64::consts::E),
                _ => self.variables.get(&name).copied().ok_or_else(|| {
                    AgentError::InvalidInput(format!(
                        "unknown variable {name:?} at position {}",
                        start + 1
                    ))
                }),
            };
        }
        self.at += 1;
        let mut args = vec![self.sum()?];
        loop {
            self.skip_space();
            if self.peek() == Some(',') {
                self.at += 1;
                args.push(self.sum()?);
            } else {
                break;
            }
        }
        self.expect(')')?;
        self.call(&name, &args, start + 1)
    }

    fn call(&self, name: &str, args: &[f64], position: usize) -> Result<f64, AgentError> {
        let one = |f: fn(f64) -> f64| -> Result<f64, AgentError> {
            match args {
                [x] => Ok(f(*x)),
                _ => Err(AgentError::InvalidInput(format!(
                    "{name} at position {position} takes one argument, not {}",
                    args.len()
                ))),
            }
        };
        let domain = |ok: bool| -> Result<(), AgentError> {
            if ok {
                Ok(())
            } else {
                Err(AgentError::Failed(format!(
                    "{name} at position {position} is undefined for {args:?}"
                )))
            }
        };
        let value = match name {
            "sqrt" => {
                domain(args.first().is_some_and(|x| *x >= 0.0))?;
                one(f64::sqrt)?
            }
            "ln" | "log" => {
                domain(args.first().is_some_and(|x| *x > 0.0))?;
                one(if name == "ln" { f64::ln } else { f64::log10 })?
            }
            "abs" => one(f64::abs)?,
            "floor" => one(f64::floor)?,
            "ceil" => one(f64::ceil)?,
            "round" => one(f64::round)?,
            "sin" => one(f64::sin)?,
            "cos" => one(f64::cos)?,
            "tan" => one(f64::tan)?,
            "exp" => one(f64::exp)?,
            "min" => args.iter().copied().fold(f64::INFINITY, f64::min),
            "max" => args.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            _ => {
                return Err(AgentError::InvalidInput(format!(
                    "unknown function {name:?} at position {position}"
                )));
            }
        };
        self.finite(value)
    }

    fn expect(&mut self, wanted: char) -> Result<(), AgentError> {
        self.skip_space();
        if self.peek() == Some(wanted) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.invalid(format!("expected {wanted:?}")))
        }
    }

    fn finite(&self, value: f64) -> Result<f64, AgentError> {
        if value.is_finite() {
            Ok(value)
        } else {
            Err(AgentError::Failed(format!(
                "the result is not a finite number (near position {})",
                self.at
            )))
        }
    }

    fn invalid(&self, message: String) -> AgentError {
        match self.peek() {
            Some(_) => AgentError::InvalidInput(format!("{message} at position {}", self.at + 1)),
            None => AgentError::InvalidInput(format!("{message} at the end")),
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.at += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(expression: &str) -> Result<Value, AgentError> {
        run(&json!({"expression": expression})).map(|out| out["result"].clone())
    }

    #[test]
    fn precedence_parentheses_unary_minus_and_power_hold() {
        assert_eq!(eval("2 + 3 * 4").unwrap(), json!(14));
        assert_eq!(eval("(2 + 3) * 4").unwrap(), json!(20));
        assert_eq!(eval("-2^2").unwrap(), json!(-4));
        assert_eq!(eval("2^3^2").unwrap(), json!(512));
        assert_eq!(eval("10 - 4 - 3").unwrap(), json!(3));
        assert_eq!(eval("--3 * -(1 + 1)").unwrap(), json!(-6));
        assert_eq!(eval("7 / 2").unwrap(), json!(3.5));
        assert_eq!(eval("max(1, sqrt(16), 2) % 3").unwrap(), json!(1));
        assert_eq!(eval("1.5e2 + .5").unwrap(), json!(150.5));
    }

    #[test]
    fn mistakes_are_errors_that_say_where() {
        let message = |expression: &str| eval(expression).unwrap_err().to_string();
        assert_eq!(message("1 / (2 - 2)"), "division by zero at position 3");
        assert!(matches!(eval("5 % 0"), Err(AgentError::Failed(_))));
        assert_eq!(message("2 * (3 + 4"), "expected ')' at the end");
        assert_eq!(message("2 + * 3"), "unexpected '*' at position 5");
        assert_eq!(message("1 2"), "unexpected '2' at position 3");
        assert!(message("y + 1").contains("unknown variable \"y\""));
        assert!(message("sqrt(-1)").contains("undefined"));
        assert!(matches!(eval("10 ^ 400"), Err(AgentError::Failed(_))));
    }
}
