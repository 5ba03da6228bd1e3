//! Test plugin: misbehaves on purpose on one row, so host tests can prove the sandbox and the
//! limits hold.
//!
//! Configuration: `mode` (required) and `row` (a file row number, default 0); `target`
//! overrides what `read-file`, `env` and `socket` reach for. Every row other than `row` gives
//! an entity of type `Row` whose external id is the row number. On `row`:
//!
//! | mode | what happens |
//! |---|---|
//! | `trap` | panics with `boom on row N` (the instance traps) |
//! | `loop` | loops forever (the time limit must stop it) |
//! | `alloc` | allocates 1 MiB blocks without end, touching them (the memory cap must stop it) |
//! | `read-file` | reads `target` (default `/etc/passwd`) |
//! | `env` | reads the variable `target` (default `STAGEPUSH_SECRET`) and lists all variables |
//! | `socket` | opens a TCP connection to `target` (default `127.0.0.1:9`) |
//! | `print` | writes a line to stdout and one to stderr, then emits its entity as usual |
//! | `refuse` | (no row) `init` fails with `refusing schema: …` |
//! | `reject` | (no row) rejects every row whose number is a multiple of 3 with `row N is a multiple of three`, and every other multiple of 5 with `no value for this row` |
//!
//! For `read-file`, `env` and `socket`, a denied (or empty) access is a row error starting
//! `denied:` with the error; a **successful** one emits the row's entity with a property
//! `leaked` holding what it got, so a host test catches a hole in the sandbox.

use std::hint::black_box;

use stagepush_plugin::prelude::*;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Trap,
    Loop,
    Alloc,
    ReadFile,
    Env,
    Socket,
    Print,
    Reject,
}

const MODES: &str = "trap, loop, alloc, read-file, env, socket, print, refuse, reject";

struct Misbehave {
    mode: Mode,
    row: u64,
    target: Option<String>,
}

impl Transform for Misbehave {
    fn describe() -> Info {
        Info::new("misbehave", env!("CARGO_PKG_VERSION"))
            .description("test plugin: misbehaves on purpose on one row")
            .config_key("mode", MODES, true, None)
            .config_key(
                "row",
                "the file row number to misbehave on",
                false,
                Some("0"),
            )
            .config_key(
                "target",
                "file (read-file), variable (env) or host:port (socket) to reach for",
                false,
                None,
            )
    }

    fn init(schema: &Schema, config: &Config) -> Result<Self, String> {
        let mode = match config.require("mode")? {
            "trap" => Mode::Trap,
            "loop" => Mode::Loop,
            "alloc" => Mode::Alloc,
            "read-file" => Mode::ReadFile,
            "env" => Mode::Env,
            "socket" => Mode::Socket,
            "print" => Mode::Print,
            "reject" => Mode::Reject,
            "refuse" => {
                let names: Vec<&str> = schema.iter().map(|c| c.name()).collect();
                return Err(format!(
                    "refusing schema: misbehave mode=refuse refuses every schema (got {} columns: {})",
                    names.len(),
                    names.join(", ")
                ));
            }
            other => return Err(format!("unknown mode '{other}' (modes: {MODES})")),
        };
        Ok(Misbehave {
            mode,
            row: config.parse("row")?.unwrap_or(0),
            target: config.get("target").map(String::from),
        })
    }

    fn transform(&mut self, row: &Row<'_>, out: &mut Out) -> Result<(), String> {
        let n = row.row_number();
        if self.mode == Mode::Reject {
            return match (n % 3, n % 5) {
                (0, _) => Err(format!("row {n} is a multiple of three")),
                (_, 0) => Err("no value for this row".to_string()),
                _ => out.entity("Row", n).finish(),
            };
        }
        if n != self.row {
            return out.entity("Row", n).finish();
        }
        let target = self.target.as_deref();
        let leaked = match self.mode {
            Mode::Trap => panic!("boom on row {n}"),
            Mode::Loop => spin(),
            Mode::Alloc => hog(),
            Mode::Print => {
                println!("misbehave: stdout on row {n}");
                eprintln!("misbehave: stderr on row {n}");
                return out.entity("Row", n).finish();
            }
            Mode::ReadFile => read_file(target.unwrap_or("/etc/passwd")),
            Mode::Env => read_env(target.unwrap_or("STAGEPUSH_SECRET")),
            Mode::Socket => connect(target.unwrap_or("127.0.0.1:9")),
            Mode::Reject => return out.entity("Row", n).finish(), // handled above
        }?;
        out.entity("Row", n).prop("leaked", leaked).finish()
    }
}

/// Never returns, and cannot be optimised away.
fn spin() -> ! {
    let mut i: u64 = 0;
    loop {
        i = black_box(i.wrapping_add(1));
    }
}

/// Allocates 1 MiB blocks until the memory cap stops the instance.
fn hog() -> ! {
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut block = vec![0u8; 1 << 20];
        for b in block.iter_mut().step_by(4096) {
            *b = 1;
        }
        blocks.push(black_box(block));
    }
}

fn read_file(path: &str) -> Result<String, String> {
    match std::fs::read_to_string(path) {
        Ok(s) if s.is_empty() => Err(format!("denied: {path} read as empty")),
        Ok(s) => Ok(s),
        Err(e) => Err(format!("denied: {path}: {e} (kind {:?})", e.kind())),
    }
}

fn read_env(name: &str) -> Result<String, String> {
    let value = std::env::var(name);
    let all: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
    match value {
        Err(e) if all.is_empty() => Err(format!("denied: {name}: {e} (environment is empty)")),
        value => Ok(format!("{name}={value:?}; all: {}", all.join(", "))),
    }
}

fn connect(addr: &str) -> Result<String, String> {
    match std::net::TcpStream::connect(addr) {
        Ok(s) => Ok(format!("connected to {addr} from {:?}", s.local_addr())),
        Err(e) => Err(format!("denied: {addr}: {e} (kind {:?})", e.kind())),
    }
}

stagepush_plugin::export!(Misbehave);

#[cfg(test)]
mod tests {
    use super::*;
    use stagepush_plugin::testing::{Harness, Val, col, ty};

    fn h(mode: &str, row: &str) -> Result<Harness<Misbehave>, String> {
        Harness::new(vec![col("X", ty::text())], &[("mode", mode), ("row", row)])
    }

    #[test]
    fn init_checks_the_mode() {
        assert!(
            h("nope", "0")
                .err()
                .unwrap()
                .contains("unknown mode 'nope'")
        );
        assert!(
            h("refuse", "0")
                .err()
                .unwrap()
                .starts_with("refusing schema: ")
        );
        assert!(h("trap", "x").err().unwrap().contains("'row'"));
    }

    #[test]
    fn other_rows_are_normal_and_print_emits() {
        let mut h = h("print", "1").unwrap();
        let r = h.run(vec![vec![Val::Null]; 3]);
        let ids: Vec<&str> = r.entities.iter().map(|e| e.external_id.as_str()).collect();
        assert_eq!(ids, ["0", "1", "2"]);
        assert!(r.entities.iter().all(|e| e.entity_type == "Row"));
    }

    #[test]
    fn a_missing_file_is_denied() {
        let mut h = Harness::<Misbehave>::new(
            vec![],
            &[("mode", "read-file"), ("target", "/nonexistent/stagepush")],
        )
        .unwrap();
        let r = h.run(vec![vec![]]);
        assert!(
            r.errors[0].1.starts_with("denied: /nonexistent/stagepush"),
            "{:?}",
            r.errors
        );
    }
}
