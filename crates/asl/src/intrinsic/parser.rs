//! Parser for the intrinsic function syntax: `States.Name(arg, ...)` where an argument is a
//! string literal in single quotes, a number, `true`, `false`, `null`, a path (`$...`, `$$...`)
//! or another intrinsic call.

use serde_json::{Number, Value};
use thiserror::Error;

use crate::path::{Path, PathError};

/// Maximum nesting depth AWS allows for intrinsic calls in one field.
pub const MAX_NESTING: usize = 10;

/// An intrinsic expression that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid intrinsic function {source_text:?}: {reason} at character {position}")]
pub struct IntrinsicSyntaxError {
    pub source_text: String,
    pub reason: String,
    pub position: usize,
}

/// A parsed call such as `States.Format('{}', $.name)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub name: String,
    pub args: Vec<Arg>,
}

/// One argument of a call.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// A string literal. `raw` keeps backslash escapes (States.Format needs to tell `\{` from
    /// `{`); `value` has them resolved.
    Str {
        value: String,
        raw: String,
    },
    Literal(Value),
    Path(Path),
    Call(Call),
}

/// Parses a whole intrinsic expression; trailing text is an error.
pub fn parse(source: &str) -> Result<Call, IntrinsicSyntaxError> {
    let mut parser = Parser {
        source,
        chars: source.chars().collect(),
        pos: 0,
    };
    let call = parser.call(1)?;
    parser.skip_ws();
    if parser.pos < parser.chars.len() {
        return Err(parser.error("unexpected text after the closing parenthesis"));
    }
    Ok(call)
}

struct Parser<'a> {
    source: &'a str,
    chars: Vec<char>,
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, reason: impl Into<String>) -> IntrinsicSyntaxError {
        IntrinsicSyntaxError {
            source_text: self.source.to_string(),
            reason: reason.into(),
            position: self.pos,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, c: char) -> Result<(), IntrinsicSyntaxError> {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(format!("expected '{c}'")))
        }
    }

    fn call(&mut self, depth: usize) -> Result<Call, IntrinsicSyntaxError> {
        if depth > MAX_NESTING {
            return Err(self.error(format!("more than {MAX_NESTING} nested intrinsic calls")));
        }
        self.skip_ws();
        let name = self.name()?;
        self.expect('(')?;
        let args = self.args(depth)?;
        Ok(Call { name, args })
    }

    fn name(&mut self) -> Result<String, IntrinsicSyntaxError> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
        {
            self.pos += 1;
        }
        let name: String = self.chars[start..self.pos].iter().collect();
        if !name.starts_with("States.") || name.len() == "States.".len() {
            self.pos = start;
            return Err(self.error("expected a function name like States.Format"));
        }
        Ok(name)
    }

    fn args(&mut self, depth: usize) -> Result<Vec<Arg>, IntrinsicSyntaxError> {
        let mut args = Vec::new();
        self.skip_ws();
        if self.peek() == Some(')') {
            self.pos += 1;
            return Ok(args);
        }
        loop {
            args.push(self.arg(depth)?);
            self.skip_ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some(')') => {
                    self.pos += 1;
                    return Ok(args);
                }
                _ => return Err(self.error("expected ',' or ')'")),
            }
        }
    }

    fn arg(&mut self, depth: usize) -> Result<Arg, IntrinsicSyntaxError> {
        self.skip_ws();
        match self.peek() {
            Some('\'') => self.string(),
            Some('$') => self.path(),
            Some(c) if c == '-' || c.is_ascii_digit() => self.number(),
            Some(c) if c.is_ascii_alphabetic() => self.word_or_call(depth),
            Some(_) => Err(self.error("expected an argument")),
            None => Err(self.error("unexpected end of input")),
        }
    }

    fn string(&mut self) -> Result<Arg, IntrinsicSyntaxError> {
        self.pos += 1;
        let mut value = String::new();
        let mut raw = String::new();
        while let Some(c) = self.peek() {
            self.pos += 1;
            match c {
                '\\' => {
                    let Some(next) = self.peek() else { break };
                    self.pos += 1;
                    value.push(next);
                    if next != '\'' {
                        raw.push('\\');
                    }
                    raw.push(next);
                }
                '\'' => return Ok(Arg::Str { value, raw }),
                c => {
                    value.push(c);
                    raw.push(c);
                }
            }
        }
        Err(self.error("unterminated string literal"))
    }

    fn path(&mut self) -> Result<Arg, IntrinsicSyntaxError> {
        let start = self.pos;
        let mut depth = 0i32;
        let mut quote: Option<char> = None;
        while let Some(c) = self.peek() {
            match (quote, c) {
                (Some(_), '\\') => self.pos += 1,
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '\'' | '"') => quote = Some(c),
                (None, '[' | '(') => depth += 1,
                (None, ']') => depth -= 1,
                (None, ')') if depth == 0 => break,
                (None, ')') => depth -= 1,
                (None, ',') if depth == 0 => break,
                (None, c) if c.is_whitespace() && depth == 0 => break,
                _ => {}
            }
            self.pos += 1;
        }
        let text: String = self.chars[start..self.pos.min(self.chars.len())]
            .iter()
            .collect();
        Path::parse(&text)
            .map(Arg::Path)
            .map_err(|e: PathError| self.error(e.to_string()))
    }

    fn number(&mut self) -> Result<Arg, IntrinsicSyntaxError> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_digit() || "+-.eE".contains(c))
        {
            self.pos += 1;
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        match serde_json::from_str::<Number>(&text) {
            Ok(n) => Ok(Arg::Literal(Value::Number(n))),
            Err(_) => {
                self.pos = start;
                Err(self.error(format!("invalid number {text:?}")))
            }
        }
    }

    fn word_or_call(&mut self, depth: usize) -> Result<Arg, IntrinsicSyntaxError> {
        let start = self.pos;
        for (word, value) in [
            ("null", Value::Null),
            ("true", Value::Bool(true)),
            ("false", Value::Bool(false)),
        ] {
            let end = start + word.len();
            let matches = self.chars.len() >= end
                && self.chars[start..end].iter().copied().eq(word.chars())
                && !self
                    .chars
                    .get(end)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '.');
            if matches {
                self.pos = end;
                return Ok(Arg::Literal(value));
            }
        }
        self.call(depth + 1).map(Arg::Call)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn parses_nested_calls_with_all_argument_kinds() {
        let call =
            parse("States.Array('a\\'b', 12, -1.5, null, true, $.x[0], States.UUID())").unwrap();
        assert_eq!(call.name, "States.Array");
        assert_eq!(call.args.len(), 7);
        assert_eq!(
            call.args[0],
            Arg::Str {
                value: "a'b".into(),
                raw: "a'b".into()
            }
        );
        assert_eq!(call.args[1], Arg::Literal(json!(12)));
        assert_eq!(call.args[2], Arg::Literal(json!(-1.5)));
        assert_eq!(call.args[3], Arg::Literal(Value::Null));
        assert_eq!(call.args[4], Arg::Literal(json!(true)));
        assert!(matches!(&call.args[5], Arg::Path(p) if p.as_str() == "$.x[0]"));
        assert!(
            matches!(&call.args[6], Arg::Call(c) if c.name == "States.UUID" && c.args.is_empty())
        );
    }

    #[test]
    fn string_literal_keeps_brace_escapes_in_raw() {
        let call = parse("States.Format('\\{}{}', $.a)").unwrap();
        assert_eq!(
            call.args[0],
            Arg::Str {
                value: "{}{}".into(),
                raw: "\\{}{}".into()
            }
        );
    }

    #[test]
    fn path_arguments_may_contain_commas_inside_brackets() {
        let call = parse("States.Array($['a,b'], $$.Execution.Id)").unwrap();
        assert!(matches!(&call.args[0], Arg::Path(p) if p.as_str() == "$['a,b']"));
        assert!(matches!(&call.args[1], Arg::Path(p) if p.is_context()));
    }

    #[test]
    fn unterminated_string_is_reported_with_position() {
        let err = parse("States.Format('abc").unwrap_err();
        assert_eq!(err.reason, "unterminated string literal");
        assert_eq!(err.position, 18);
    }

    #[test]
    fn trailing_text_is_an_error() {
        let err = parse("States.UUID() x").unwrap_err();
        assert_eq!(err.reason, "unexpected text after the closing parenthesis");
    }

    #[test]
    fn missing_parenthesis_is_an_error() {
        let err = parse("States.Array($.a").unwrap_err();
        assert_eq!(err.reason, "expected ',' or ')'");
    }

    #[test]
    fn names_must_start_with_states() {
        let err = parse("Foo.Bar()").unwrap_err();
        assert_eq!(err.reason, "expected a function name like States.Format");
    }

    #[test]
    fn nesting_deeper_than_ten_is_refused() {
        let mut text = "States.UUID()".to_string();
        for _ in 0..10 {
            text = format!("States.Array({text})");
        }
        let err = parse(&text).unwrap_err();
        assert!(err.reason.contains("more than 10 nested"), "{}", err.reason);
    }
}
