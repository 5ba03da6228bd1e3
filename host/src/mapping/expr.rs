//! The expression language of `[mapping]` values, parsed into an [`Expr`] tree.
//!
//! ```text
//! expr    = call | column | literal
//! call    = name "(" [expr {"," expr}] ")"        lower(trim(EMAIL))
//! column  = name | "`" any text but "`" "`"       CUSTOMER_ID, `first name`
//! literal = "'" text ("''" is a quote) "'"        'Customer'
//!         | number | true | false | null          42, -1.5
//! ```
//!
//! A name is letters, digits, `_` and `$`, not starting with a digit. Column names match
//! the stage's case-insensitively (as the plugin SDKs' lookups do); function names are
//! lower-case.

use super::error::SyntaxError;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Column(String),
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
    Call(String, Vec<Expr>),
}

/// Parses one expression; the error says what was expected where.
pub fn parse(text: &str) -> Result<Expr, SyntaxError> {
    let mut p = Parser {
        s: text.as_bytes(),
        text,
        i: 0,
    };
    let e = p.expr()?;
    p.ws();
    if p.i < p.s.len() {
        return Err(format!("unexpected `{}` at character {}", &text[p.i..], p.i + 1).into());
    }
    Ok(e)
}

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }

    fn expr(&mut self) -> Result<Expr, SyntaxError> {
        match self.peek() {
            None => Err(SyntaxError::from("an expression is empty")),
            Some(b'\'') => self.text_literal(),
            Some(b'`') => {
                let start = self.i + 1;
                let end = self.text[start..]
                    .find('`')
                    .ok_or("a `quoted column name` is not closed")?;
                self.i = start + end + 1;
                Ok(Expr::Column(self.text[start..start + end].to_string()))
            }
            Some(c) if c.is_ascii_digit() || c == b'-' || c == b'+' || c == b'.' => self.number(),
            Some(c) if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                let start = self.i;
                while self.i < self.s.len() {
                    let c = self.s[self.i];
                    if c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80 {
                        self.i += 1;
                    } else {
                        break;
                    }
                }
                let name = &self.text[start..self.i];
                if self.peek() == Some(b'(') {
                    self.i += 1;
                    return self.call(name);
                }
                Ok(match name {
                    "true" => Expr::Bool(true),
                    "false" => Expr::Bool(false),
                    "null" => Expr::Null,
                    _ => Expr::Column(name.to_string()),
                })
            }
            Some(c) => {
                Err(format!("unexpected `{}` at character {}", c as char, self.i + 1).into())
            }
        }
    }

    fn call(&mut self, name: &str) -> Result<Expr, SyntaxError> {
        let mut args = Vec::new();
        if self.peek() == Some(b')') {
            self.i += 1;
            return Ok(Expr::Call(name.to_string(), args));
        }
        loop {
            args.push(self.expr()?);
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b')') => {
                    self.i += 1;
                    return Ok(Expr::Call(name.to_string(), args));
                }
                _ => return Err(format!("{name}( is not closed: expected `,` or `)`").into()),
            }
        }
    }

    fn text_literal(&mut self) -> Result<Expr, SyntaxError> {
        self.i += 1;
        let mut out = String::new();
        loop {
            let rest = &self.text[self.i..];
            let end = rest.find('\'').ok_or("a 'text' literal is not closed")?;
            out.push_str(&rest[..end]);
            self.i += end + 1;
            if self.s.get(self.i) == Some(&b'\'') {
                out.push('\'');
                self.i += 1;
            } else {
                return Ok(Expr::Text(out));
            }
        }
    }

    fn number(&mut self) -> Result<Expr, SyntaxError> {
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || b"+-.".contains(&self.s[self.i]))
        {
            self.i += 1;
        }
        let t = &self.text[start..self.i];
        if let Ok(i) = t.parse::<i64>() {
            return Ok(Expr::Int(i));
        }
        match t.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Expr::Float(f)),
            _ => Err(format!("`{t}` is not a number").into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(s: &str) -> Expr {
        Expr::Column(s.into())
    }

    #[test]
    fn parses_calls_columns_and_literals() {
        assert_eq!(
            parse(" lower( trim(EMAIL) ) ").unwrap(),
            Expr::Call(
                "lower".into(),
                vec![Expr::Call("trim".into(), vec![col("EMAIL")])]
            )
        );
        assert_eq!(
            parse("coalesce(`first name`, 'n/a', 'it''s', 3, -1.5, true, null)").unwrap(),
            Expr::Call(
                "coalesce".into(),
                vec![
                    col("first name"),
                    Expr::Text("n/a".into()),
                    Expr::Text("it's".into()),
                    Expr::Int(3),
                    Expr::Float(-1.5),
                    Expr::Bool(true),
                    Expr::Null
                ]
            )
        );
        assert_eq!(parse("now()").unwrap(), Expr::Call("now".into(), vec![]));
        assert_eq!(parse("A$1").unwrap(), col("A$1"));
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert_eq!(parse("").unwrap_err().to_string(), "an expression is empty");
        assert_eq!(
            parse("lower(EMAIL").unwrap_err().to_string(),
            "lower( is not closed: expected `,` or `)`"
        );
        assert_eq!(
            parse("'abc").unwrap_err().to_string(),
            "a 'text' literal is not closed"
        );
        assert_eq!(
            parse("EMAIL EXTRA").unwrap_err().to_string(),
            "unexpected `EXTRA` at character 7"
        );
        assert_eq!(parse("1x").unwrap_err().to_string(), "`1x` is not a number");
        assert_eq!(
            parse("`open").unwrap_err().to_string(),
            "a `quoted column name` is not closed"
        );
        assert_eq!(
            parse("a + b").unwrap_err().to_string(),
            "unexpected `+ b` at character 3"
        );
    }
}
