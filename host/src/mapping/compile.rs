//! Compiling a mapping against a stage's schema: every column looked up (case-insensitive,
//! as the SDKs do), every function and type checked, `"*"` expanded, before any row is
//! read. The result is a [`Program`]: typed [`Node`] trees over the columns it reads.

use std::collections::BTreeSet;

use crate::bindings::types::{ColumnSchema, ColumnType, ScalarType, TimeUnit};

use super::MappingError;
use super::config::{EVERY_OTHER_COLUMN, EntityConfig};
use super::expr::{Expr, parse};
use super::json::{Step, parse_path};
use super::value::{Ty, V, parse_offset};

/// The functions, for messages.
pub const FUNCTIONS: &str =
    "lower, upper, trim, coalesce, concat, text, int, json, json_len, timestamp, zone, eq, not";

/// A compiled expression.
#[derive(Debug, Clone)]
pub enum Node {
    /// A column: its position among the columns the program reads.
    Col(usize),
    Const(V<'static>),
    Lower(Box<Node>),
    Upper(Box<Node>),
    Trim(Box<Node>),
    Coalesce(Vec<Node>),
    Concat(Vec<Node>),
    Text(Box<Node>),
    Int(Box<Node>),
    JsonAt(Box<Node>, Vec<Step>),
    JsonLen(Box<Node>, Vec<Step>),
    Timestamp(Box<Node>),
    /// A wall-clock timestamp in a zone this many seconds east of UTC, made an instant.
    Zone(Box<Node>, i64),
    Eq(Box<Node>, Box<Node>),
    Not(Box<Node>),
}

/// Where an entity's type comes from.
#[derive(Debug, Clone)]
pub enum TypeSource {
    /// A fixed name: its index in [`Program::names`].
    Name(u32),
    /// A column (the pass-through's `TYPE`), named in messages.
    Column(Node, String),
}

/// One property (or the pass-through's object of them).
#[derive(Debug, Clone)]
pub enum PropProgram {
    /// `name = expression`: the name's index in [`Program::names`], and the property's
    /// index among the declared ones (for the never-set warning).
    One {
        name: u32,
        value: Node,
        declared: usize,
    },
    /// Every entry of a JSON object column becomes a property (the pass-through).
    Object(Node, String),
}

/// One entity made of each row.
#[derive(Debug, Clone)]
pub struct EntityProgram {
    pub ty: TypeSource,
    pub id: Node,
    /// How a null id is named in its row error (`CUSTOMER_ID is null`).
    pub id_label: String,
    pub timestamp: Option<Node>,
    pub deleted: Option<Node>,
    pub props: Vec<PropProgram>,
}

/// A mapping compiled for one schema.
#[derive(Debug, Clone)]
pub struct Program {
    /// The schema indices of the columns read, in the order batches carry them.
    pub columns: Vec<u32>,
    /// The time unit of each column read (timestamps), by position.
    pub units: Vec<Option<TimeUnit>>,
    /// Entity types and property names.
    pub names: Vec<String>,
    pub entities: Vec<EntityProgram>,
    /// `Type.property` of each declared property, by its `declared` index.
    pub declared: Vec<String>,
}

/// The compiler's working state.
pub(super) struct Compiler<'s> {
    pub(super) schema: &'s [ColumnSchema],
    pub(super) program: Program,
    /// Schema indices the current entity references.
    pub(super) referenced: BTreeSet<usize>,
}

/// A column index by name: exact, then ASCII case-insensitive, then Unicode lower case.
pub fn find_column(schema: &[ColumnSchema], name: &str) -> Option<usize> {
    schema
        .iter()
        .position(|c| c.name == name)
        .or_else(|| {
            schema
                .iter()
                .position(|c| c.name.eq_ignore_ascii_case(name))
        })
        .or_else(|| {
            let lower = name.to_lowercase();
            schema.iter().position(|c| c.name.to_lowercase() == lower)
        })
}

/// The schema's column names, for messages.
pub fn column_list(schema: &[ColumnSchema]) -> String {
    schema
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl<'s> Compiler<'s> {
    pub(super) fn new(schema: &'s [ColumnSchema]) -> Self {
        Compiler {
            schema,
            program: Program {
                columns: Vec::new(),
                units: Vec::new(),
                names: Vec::new(),
                entities: Vec::new(),
                declared: Vec::new(),
            },
            referenced: BTreeSet::new(),
        }
    }

    pub(super) fn name(&mut self, name: &str) -> u32 {
        match self.program.names.iter().position(|n| n == name) {
            Some(i) => i as u32,
            None => {
                self.program.names.push(name.to_string());
                (self.program.names.len() - 1) as u32
            }
        }
    }

    /// The read position of schema column `index` (added to the columns read).
    pub(super) fn read(&mut self, index: usize) -> (Node, Ty) {
        self.referenced.insert(index);
        let pos = match self
            .program
            .columns
            .iter()
            .position(|&c| c as usize == index)
        {
            Some(p) => p,
            None => {
                self.program.columns.push(index as u32);
                let unit = match &self.schema[index].type_ {
                    ColumnType::Scalar(ScalarType::Timestamp(t))
                    | ColumnType::List(ScalarType::Timestamp(t)) => Some(t.unit),
                    _ => None,
                };
                self.program.units.push(unit);
                self.program.columns.len() - 1
            }
        };
        (Node::Col(pos), Ty::of(&self.schema[index].type_))
    }

    /// Compiles the text of `field`.
    pub(super) fn text(&mut self, field: &str, text: &str) -> Result<(Node, Ty), MappingError> {
        let expr = parse(text).map_err(|e| MappingError::Syntax {
            field: field.to_string(),
            expr: text.to_string(),
            message: e.0,
        })?;
        self.expr(field, &expr)
    }

    fn expr(&mut self, field: &str, e: &Expr) -> Result<(Node, Ty), MappingError> {
        Ok(match e {
            Expr::Column(name) => match find_column(self.schema, name) {
                Some(i) => self.read(i),
                None => {
                    return Err(MappingError::UnknownColumn {
                        field: field.to_string(),
                        column: name.clone(),
                        existing: column_list(self.schema),
                    });
                }
            },
            Expr::Text(t) => (Node::Const(V::Text(t.clone().into())), Ty::Text),
            Expr::Int(i) => (Node::Const(V::Int(*i)), Ty::Int),
            Expr::Float(f) => (Node::Const(V::Float(*f)), Ty::Float),
            Expr::Bool(b) => (Node::Const(V::Bool(*b)), Ty::Bool),
            Expr::Null => (Node::Const(V::Null), Ty::Null),
            Expr::Call(name, args) => self.call(field, name, args)?,
        })
    }

    fn call(&mut self, field: &str, name: &str, args: &[Expr]) -> Result<(Node, Ty), MappingError> {
        let arity = |expected: &'static str, ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(MappingError::Arity {
                    field: field.to_string(),
                    name: name.to_string(),
                    expected,
                    got: args.len(),
                })
            }
        };
        let type_error = |message: String| MappingError::Type {
            field: field.to_string(),
            message,
        };
        // The argument's type must be one of `allowed`.
        let check = |what: &str, ty: Ty, allowed: &[Ty], arg: &Expr| {
            if ty == Ty::Null || allowed.contains(&ty) {
                Ok(())
            } else {
                let names: Vec<&str> = allowed.iter().map(|t| t.name()).collect();
                Err(type_error(format!(
                    "{what} needs {}, but {} is {}",
                    names.join(" or "),
                    show(arg),
                    ty.name()
                )))
            }
        };
        let literal = |arg: &Expr, what: &str| match arg {
            Expr::Text(t) => Ok(t.clone()),
            other => Err(type_error(format!(
                "the {what} of {name}() must be a 'text' literal, not {}",
                show(other)
            ))),
        };
        Ok(match name {
            "lower" | "upper" | "trim" => {
                arity("1 argument", args.len() == 1)?;
                let (n, ty) = self.expr(field, &args[0])?;
                check(&format!("{name}()"), ty, &[Ty::Text, Ty::Json], &args[0])?;
                let n = Box::new(n);
                let node = match name {
                    "lower" => Node::Lower(n),
                    "upper" => Node::Upper(n),
                    _ => Node::Trim(n),
                };
                (node, if ty == Ty::Json { Ty::Json } else { Ty::Text })
            }
            "coalesce" => {
                arity("at least 1 argument", !args.is_empty())?;
                let mut nodes = Vec::new();
                let mut result = Ty::Null;
                for a in args {
                    let (n, ty) = self.expr(field, a)?;
                    let texts = |a: Ty, b: Ty| {
                        matches!(a, Ty::Text | Ty::Json) && matches!(b, Ty::Text | Ty::Json)
                    };
                    if result == Ty::Null {
                        result = ty;
                    } else if texts(result, ty) {
                        // JSON values and text mix (a path's value or a default).
                        result = if result == ty { ty } else { Ty::Text };
                    } else if ty != Ty::Null && ty != result {
                        return Err(type_error(format!(
                            "coalesce() mixes {} and {} ({}); convert one, e.g. with text()",
                            result.name(),
                            ty.name(),
                            show(a)
                        )));
                    }
                    nodes.push(n);
                }
                (Node::Coalesce(nodes), result)
            }
            "concat" => {
                arity("at least 1 argument", !args.is_empty())?;
                let nodes = args
                    .iter()
                    .map(|a| self.expr(field, a).map(|(n, _)| n))
                    .collect::<Result<_, _>>()?;
                (Node::Concat(nodes), Ty::Text)
            }
            "text" => {
                arity("1 argument", args.len() == 1)?;
                let (n, _) = self.expr(field, &args[0])?;
                (Node::Text(Box::new(n)), Ty::Text)
            }
            "int" => {
                arity("1 argument", args.len() == 1)?;
                let (n, ty) = self.expr(field, &args[0])?;
                let ok = [Ty::Int, Ty::Decimal, Ty::Float, Ty::Text, Ty::Json];
                check("int()", ty, &ok, &args[0])?;
                (Node::Int(Box::new(n)), Ty::Text)
            }
            "json" | "json_len" => {
                let one = if name == "json" {
                    "2 arguments (a column and a 'path')"
                } else {
                    "1 or 2 arguments (a column and an optional 'path')"
                };
                arity(
                    one,
                    args.len() == 2 || (name == "json_len" && args.len() == 1),
                )?;
                let (n, ty) = self.expr(field, &args[0])?;
                check(&format!("{name}()"), ty, &[Ty::Json, Ty::Text], &args[0])?;
                let path = match args.get(1) {
                    Some(p) => parse_path(&literal(p, "path")?).map_err(|e| type_error(e.0))?,
                    None => Vec::new(),
                };
                match name {
                    "json" => (Node::JsonAt(Box::new(n), path), Ty::Json),
                    _ => (Node::JsonLen(Box::new(n), path), Ty::Int),
                }
            }
            "timestamp" => {
                arity("1 argument", args.len() == 1)?;
                let (n, ty) = self.expr(field, &args[0])?;
                let ok = [Ty::Text, Ty::Json, Ty::Timestamp, Ty::Date];
                check("timestamp()", ty, &ok, &args[0])?;
                (Node::Timestamp(Box::new(n)), Ty::Timestamp)
            }
            "zone" => {
                arity(
                    "2 arguments (a timestamp and a 'zone offset')",
                    args.len() == 2,
                )?;
                let (n, ty) = self.expr(field, &args[0])?;
                check("zone()", ty, &[Ty::Timestamp], &args[0])?;
                let zone = literal(&args[1], "zone")?;
                let offset = parse_offset(&zone).ok_or_else(|| {
                    type_error(format!(
                        "zone '{zone}' is not an offset like '+02:00', '-05:30' or 'UTC' (named zones need a zone database; convert in the unload's SELECT with CONVERT_TIMEZONE)"
                    ))
                })?;
                (Node::Zone(Box::new(n), offset), Ty::Timestamp)
            }
            "eq" => {
                arity("2 arguments", args.len() == 2)?;
                let (a, _) = self.expr(field, &args[0])?;
                let (b, _) = self.expr(field, &args[1])?;
                (Node::Eq(Box::new(a), Box::new(b)), Ty::Bool)
            }
            "not" => {
                arity("1 argument", args.len() == 1)?;
                let (n, ty) = self.expr(field, &args[0])?;
                check("not()", ty, BOOLISH, &args[0])?;
                (Node::Not(Box::new(n)), Ty::Bool)
            }
            _ => {
                return Err(MappingError::UnknownFunction {
                    field: field.to_string(),
                    name: name.to_string(),
                    known: FUNCTIONS,
                });
            }
        })
    }

    /// Compiles one entity.
    pub(super) fn entity(&mut self, index: usize, e: &EntityConfig) -> Result<(), MappingError> {
        let prefix = if index == 0 {
            String::new()
        } else {
            format!("entity {}: ", index + 1)
        };
        let field = |k: &str| format!("{prefix}{k}");
        self.referenced.clear();
        if e.entity_type.trim().is_empty() {
            return Err(MappingError::Invalid(format!(
                "{}: the entity type is empty",
                field("type")
            )));
        }
        let ty = TypeSource::Name(self.name(&e.entity_type));
        let (id, id_ty) = self.text(&field("id"), &e.id)?;
        if id_ty == Ty::Null {
            return Err(MappingError::Type {
                field: field("id"),
                message: "the id is always null".into(),
            });
        }
        let id_label = match parse(&e.id) {
            Ok(Expr::Column(c)) => find_column(self.schema, &c)
                .map(|i| self.schema[i].name.clone())
                .unwrap_or(c),
            _ => format!("the id {}", e.id),
        };
        let timestamp = match &e.timestamp {
            Some(t) => {
                let (n, ty) = self.text(&field("timestamp"), t)?;
                if !matches!(ty, Ty::Timestamp | Ty::Date | Ty::Null) {
                    return Err(MappingError::Type {
                        field: field("timestamp"),
                        message: format!(
                            "{t} is {}, not a date or timestamp; use timestamp({t}) to read RFC 3339 text",
                            ty.name()
                        ),
                    });
                }
                Some(n)
            }
            None => None,
        };
        let deleted = match &e.deleted {
            Some(d) => {
                let (n, ty) = self.text(&field("deleted"), d)?;
                if !BOOLISH.contains(&ty) && ty != Ty::Null {
                    return Err(MappingError::Type {
                        field: field("deleted"),
                        message: format!(
                            "{d} is {}; a tombstone condition is a boolean (true/false, 1/0, 'true'/'false')",
                            ty.name()
                        ),
                    });
                }
                Some(n)
            }
            None => None,
        };
        // Properties: the named ones first (they mark their columns used), "*" after.
        let mut props: Vec<Option<PropProgram>> = Vec::new();
        let mut star = None;
        for (name, expr) in &e.properties.0 {
            if name == EVERY_OTHER_COLUMN {
                if expr != EVERY_OTHER_COLUMN {
                    return Err(MappingError::Invalid(format!(
                        "{}: \"*\" = \"{expr}\": the value of \"*\" must be \"*\" (every other column)",
                        field("properties")
                    )));
                }
                star = Some(props.len());
                props.push(None);
                continue;
            }
            let (value, _) = self.text(&field(&format!("properties.{name}")), expr)?;
            props.push(Some(self.declare(&e.entity_type, name, value)));
        }
        if let Some(at) = star {
            let others: Vec<usize> = (0..self.schema.len())
                .filter(|i| !self.referenced.contains(i))
                .collect();
            let mut expanded = Vec::new();
            for i in others {
                let name = self.schema[i].name.clone();
                if e.properties.0.iter().any(|(n, _)| *n == name) {
                    continue;
                }
                let (value, _) = self.read(i);
                expanded.push(Some(self.declare(&e.entity_type, &name, value)));
            }
            props.splice(at..=at, expanded);
        }
        self.program.entities.push(EntityProgram {
            ty,
            id,
            id_label,
            timestamp,
            deleted,
            props: props.into_iter().flatten().collect(),
        });
        Ok(())
    }

    fn declare(&mut self, entity_type: &str, name: &str, value: Node) -> PropProgram {
        let declared = self.program.declared.len();
        self.program.declared.push(format!("{entity_type}.{name}"));
        PropProgram::One {
            name: self.name(name),
            value,
            declared,
        }
    }
}

/// Types a tombstone condition may have.
const BOOLISH: &[Ty] = &[Ty::Bool, Ty::Int, Ty::Decimal, Ty::Text, Ty::Json];

fn show(e: &Expr) -> String {
    match e {
        Expr::Column(c) => c.clone(),
        Expr::Text(t) => format!("'{t}'"),
        Expr::Int(i) => i.to_string(),
        Expr::Float(f) => f.to_string(),
        Expr::Bool(b) => b.to_string(),
        Expr::Null => "null".into(),
        Expr::Call(n, _) => format!("{n}(…)"),
    }
}
