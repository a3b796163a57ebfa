//! Fleet-index query strings, the subset the local registry answers: `thingName:NAME`,
//! `thingName:PREFIX*`, `attributes.NAME:VALUE` (also `VALUE*`), `connectivity.connected:BOOL`,
//! combined with `AND`, `OR`, `NOT` and parentheses, as AWS IoT fleet indexing writes them.

use std::fmt;

/// A parsed query.
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    /// A field test.
    Term(Term),
    /// Both hold.
    And(Box<Query>, Box<Query>),
    /// Either holds.
    Or(Box<Query>, Box<Query>),
    /// Does not hold.
    Not(Box<Query>),
}

/// One field test.
#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    /// `thingName:...`.
    ThingName(Pattern),
    /// `attributes.NAME:...`.
    Attribute(String, Pattern),
    /// `connectivity.connected:true|false`.
    Connected(bool),
}

/// An exact value, a prefix (`abc*`) or anything (`*`).
#[derive(Debug, Clone, PartialEq)]
pub enum Pattern {
    /// Equal to.
    Exact(String),
    /// Starts with.
    Prefix(String),
}

impl Pattern {
    fn matches(&self, value: &str) -> bool {
        match self {
            Pattern::Exact(exact) => value == exact,
            Pattern::Prefix(prefix) => value.starts_with(prefix.as_str()),
        }
    }
}

/// What a query is evaluated against.
pub trait Indexed {
    /// The thing name.
    fn thing_name(&self) -> &str;
    /// An attribute's value.
    fn attribute(&self, name: &str) -> Option<&str>;
    /// Whether the device is connected.
    fn connected(&self) -> bool;
}

/// Why a query string was refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum QueryError {
    /// The query is empty.
    #[error("empty fleet-index query")]
    Empty,
    /// A token that does not fit where it stands.
    #[error("fleet-index query `{query}`: unexpected `{token}` at position {position}")]
    Unexpected {
        /// The whole query.
        query: String,
        /// The token.
        token: String,
        /// Its byte offset.
        position: usize,
    },
    /// The query ended early.
    #[error("fleet-index query `{0}` ends unexpectedly")]
    UnexpectedEnd(String),
    /// A field this registry does not index.
    #[error(
        "fleet-index field `{field}` is not supported here; supported: thingName, attributes.NAME, connectivity.connected"
    )]
    UnsupportedField {
        /// The field.
        field: String,
    },
    /// A value that does not fit its field.
    #[error("fleet-index value `{value}` is not valid for `{field}`")]
    BadValue {
        /// The field.
        field: String,
        /// The value.
        value: String,
    },
}

impl Query {
    /// Parses a query string.
    pub fn parse(text: &str) -> Result<Query, QueryError> {
        let tokens = tokenize(text)?;
        if tokens.is_empty() {
            return Err(QueryError::Empty);
        }
        let mut parser = Parser {
            text,
            tokens,
            at: 0,
        };
        let query = parser.or()?;
        match parser.tokens.get(parser.at) {
            None => Ok(query),
            Some(token) => Err(parser.unexpected(token)),
        }
    }

    /// Whether `thing` matches.
    pub fn matches(&self, thing: &impl Indexed) -> bool {
        match self {
            Query::Term(Term::ThingName(p)) => p.matches(thing.thing_name()),
            Query::Term(Term::Attribute(name, p)) => {
                thing.attribute(name).is_some_and(|v| p.matches(v))
            }
            Query::Term(Term::Connected(want)) => thing.connected() == *want,
            Query::And(a, b) => a.matches(thing) && b.matches(thing),
            Query::Or(a, b) => a.matches(thing) || b.matches(thing),
            Query::Not(q) => !q.matches(thing),
        }
    }

    /// The one thing this query can match, when it is `thingName:EXACT` (answered by lookup).
    pub fn exact_thing_name(&self) -> Option<&str> {
        match self {
            Query::Term(Term::ThingName(Pattern::Exact(name))) => Some(name),
            _ => None,
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pattern::Exact(v) => f.write_str(v),
            Pattern::Prefix(v) => write!(f, "{v}*"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    And,
    Or,
    Not,
    Term { field: String, value: String },
}

#[derive(Debug, Clone)]
struct Spanned {
    token: Token,
    position: usize,
    text: String,
}

fn tokenize(text: &str) -> Result<Vec<Spanned>, QueryError> {
    let mut tokens = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'(' || c == b')' {
            let token = if c == b'(' { Token::Open } else { Token::Close };
            tokens.push(Spanned {
                token,
                position: i,
                text: (c as char).to_string(),
            });
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len()
            && !bytes[i].is_ascii_whitespace()
            && !matches!(bytes[i], b'(' | b')' | b':')
        {
            i += 1;
        }
        let word = &text[start..i];
        if i < bytes.len() && bytes[i] == b':' {
            i += 1;
            while i < bytes.len() && bytes[i] == b' ' {
                i += 1;
            }
            let (value, end) = read_value(text, i)?;
            i = end;
            tokens.push(Spanned {
                token: Token::Term {
                    field: word.to_string(),
                    value,
                },
                position: start,
                text: text[start..i].to_string(),
            });
            continue;
        }
        let token = match word {
            "AND" => Token::And,
            "OR" => Token::Or,
            "NOT" => Token::Not,
            _ => {
                return Err(QueryError::Unexpected {
                    query: text.into(),
                    token: word.into(),
                    position: start,
                });
            }
        };
        tokens.push(Spanned {
            token,
            position: start,
            text: word.to_string(),
        });
    }
    Ok(tokens)
}

fn read_value(text: &str, start: usize) -> Result<(String, usize), QueryError> {
    let bytes = text.as_bytes();
    if start < bytes.len() && bytes[start] == b'"' {
        let close = text[start + 1..]
            .find('"')
            .ok_or_else(|| QueryError::UnexpectedEnd(text.to_string()))?;
        let end = start + 1 + close;
        return Ok((text[start + 1..end].to_string(), end + 1));
    }
    let mut end = start;
    while end < bytes.len()
        && !bytes[end].is_ascii_whitespace()
        && !matches!(bytes[end], b'(' | b')')
    {
        end += 1;
    }
    if end == start {
        return Err(QueryError::UnexpectedEnd(text.to_string()));
    }
    Ok((text[start..end].to_string(), end))
}

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<Spanned>,
    at: usize,
}

impl Parser<'_> {
    fn or(&mut self) -> Result<Query, QueryError> {
        let mut left = self.and()?;
        while self.eat(&Token::Or) {
            left = Query::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Query, QueryError> {
        let mut left = self.unary()?;
        while self.eat(&Token::And) {
            left = Query::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Query, QueryError> {
        let Some(next) = self.tokens.get(self.at).cloned() else {
            return Err(QueryError::UnexpectedEnd(self.text.to_string()));
        };
        self.at += 1;
        match next.token {
            Token::Not => Ok(Query::Not(Box::new(self.unary()?))),
            Token::Open => {
                let inner = self.or()?;
                if self.eat(&Token::Close) {
                    Ok(inner)
                } else {
                    match self.tokens.get(self.at) {
                        Some(token) => Err(self.unexpected(token)),
                        None => Err(QueryError::UnexpectedEnd(self.text.to_string())),
                    }
                }
            }
            Token::Term { field, value } => term(&field, &value).map(Query::Term),
            _ => Err(self.unexpected(&next)),
        }
    }

    fn eat(&mut self, want: &Token) -> bool {
        let hit = self.tokens.get(self.at).is_some_and(|t| &t.token == want);
        if hit {
            self.at += 1;
        }
        hit
    }

    fn unexpected(&self, token: &Spanned) -> QueryError {
        QueryError::Unexpected {
            query: self.text.to_string(),
            token: token.text.clone(),
            position: token.position,
        }
    }
}

fn term(field: &str, value: &str) -> Result<Term, QueryError> {
    let pattern = || match value.strip_suffix('*') {
        Some(prefix) if !prefix.contains('*') => Ok(Pattern::Prefix(prefix.to_string())),
        None if !value.contains('*') => Ok(Pattern::Exact(value.to_string())),
        _ => Err(QueryError::BadValue {
            field: field.into(),
            value: value.into(),
        }),
    };
    if field == "thingName" {
        return pattern().map(Term::ThingName);
    }
    if let Some(name) = field.strip_prefix("attributes.").filter(|n| !n.is_empty()) {
        return pattern().map(|p| Term::Attribute(name.to_string(), p));
    }
    if field == "connectivity.connected" {
        return match value {
            "true" => Ok(Term::Connected(true)),
            "false" => Ok(Term::Connected(false)),
            _ => Err(QueryError::BadValue {
                field: field.into(),
                value: value.into(),
            }),
        };
    }
    Err(QueryError::UnsupportedField {
        field: field.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct T {
        name: &'static str,
        attrs: HashMap<&'static str, &'static str>,
        connected: bool,
    }

    impl Indexed for T {
        fn thing_name(&self) -> &str {
            self.name
        }
        fn attribute(&self, name: &str) -> Option<&str> {
            self.attrs.get(name).copied()
        }
        fn connected(&self) -> bool {
            self.connected
        }
    }

    fn thing(name: &'static str, version: &'static str, connected: bool) -> T {
        T {
            name,
            attrs: HashMap::from([("firmwareVersion", version)]),
            connected,
        }
    }

    #[test]
    fn attribute_query_with_a_space_after_the_colon_matches_the_version() {
        let q = Query::parse("attributes.firmwareVersion: 1.2.1").unwrap();
        assert!(q.matches(&thing("sim-0001", "1.2.1", true)));
        assert!(!q.matches(&thing("sim-0002", "1.2.3", true)));
    }

    #[test]
    fn prefix_and_connectivity_combine_with_and_or_not() {
        let q = Query::parse("thingName:sim-* AND (connectivity.connected:true OR attributes.firmwareVersion:1.2.*) AND NOT thingName:sim-0003").unwrap();
        assert!(q.matches(&thing("sim-0001", "9", true)));
        assert!(q.matches(&thing("sim-0002", "1.2.9", false)));
        assert!(!q.matches(&thing("sim-0003", "1.2.9", true)));
        assert!(!q.matches(&thing("other", "1.2.9", true)));
        assert!(!q.matches(&thing("sim-0004", "2.0", false)));
    }

    #[test]
    fn exact_thing_name_is_recognised_for_lookup() {
        assert_eq!(
            Query::parse("thingName:sim-0001")
                .unwrap()
                .exact_thing_name(),
            Some("sim-0001")
        );
        assert_eq!(
            Query::parse("thingName:sim-*").unwrap().exact_thing_name(),
            None
        );
    }

    #[test]
    fn quoted_values_may_hold_spaces() {
        let q = Query::parse("attributes.site:\"hall 2\"").unwrap();
        assert_eq!(
            q,
            Query::Term(Term::Attribute(
                "site".into(),
                Pattern::Exact("hall 2".into())
            ))
        );
    }

    #[test]
    fn bad_queries_name_what_is_wrong() {
        assert_eq!(Query::parse("  ").unwrap_err(), QueryError::Empty);
        assert_eq!(
            Query::parse("shadow.reported.x:1").unwrap_err().to_string(),
            "fleet-index field `shadow.reported.x` is not supported here; supported: thingName, attributes.NAME, connectivity.connected"
        );
        assert_eq!(
            Query::parse("connectivity.connected:yes").unwrap_err(),
            QueryError::BadValue {
                field: "connectivity.connected".into(),
                value: "yes".into()
            }
        );
        assert!(matches!(
            Query::parse("thingName:a AND").unwrap_err(),
            QueryError::UnexpectedEnd(_)
        ));
        assert!(matches!(
            Query::parse("thingName:a thingName:b").unwrap_err(),
            QueryError::Unexpected { position: 12, .. }
        ));
        assert!(matches!(
            Query::parse("(thingName:a").unwrap_err(),
            QueryError::UnexpectedEnd(_)
        ));
        assert!(matches!(
            Query::parse("firmware").unwrap_err(),
            QueryError::Unexpected { .. }
        ));
    }
}
