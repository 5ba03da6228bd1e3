//! [`TestCommand`]: the `stagepush` binary run by a test, which on failure prints the command
//! line, its working directory, its exit status and both output streams (after ripgrep's
//! `tests/util.rs`); [`Background`]: a child process running alongside a test, killed when
//! dropped.

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::Output;

/// How often a wait on a child process looks at it.
const POLL: Duration = Duration::from_millis(20);

/// The command line and working directory of `cmd`, for failure messages.
pub fn describe(cmd: &Command) -> String {
    let mut line = shell_word(cmd.get_program());
    for arg in cmd.get_args() {
        line.push(' ');
        line.push_str(&shell_word(arg));
    }
    let dir = cmd
        .get_current_dir()
        .map(Path::to_path_buf)
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_default();
    format!("command: {line}\ndirectory: {}", dir.display())
}

fn shell_word(word: &OsStr) -> String {
    let word = word.to_string_lossy();
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
    {
        word.into_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Everything a failure message shows about a finished command.
pub fn dump(description: &str, status: &str, stdout: &str, stderr: &str) -> String {
    format!(
        "{description}\nstatus: {status}\n---- stdout ----\n{stdout}\n---- stderr ----\n{stderr}"
    )
}

/// A `stagepush` command built by a test (a builder over [`Command`]).
pub struct TestCommand {
    cmd: Command,
}

impl TestCommand {
    /// The `stagepush` binary with a private compiled-plugin cache and delivery state under
    /// `dir` (see [`super::stagepush`]), no failpoint, no log filter and no stdin.
    pub fn new(dir: &Path) -> TestCommand {
        TestCommand {
            cmd: super::stagepush(dir),
        }
    }

    /// Wraps an existing command.
    pub fn from_command(cmd: Command) -> TestCommand {
        TestCommand { cmd }
    }

    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Self {
        self.cmd.arg(arg);
        self
    }

    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Self {
        self.cmd.env(key, value);
        self
    }

    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Self {
        self.cmd.env_remove(key);
        self
    }

    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Self {
        self.cmd.current_dir(dir);
        self
    }

    /// The underlying command, for a test that spawns and watches the child itself.
    pub fn into_command(self) -> Command {
        self.cmd
    }

    /// The underlying command (for what the builder does not cover).
    pub fn command(&mut self) -> &mut Command {
        &mut self.cmd
    }

    /// The command line and working directory.
    pub fn describe(&self) -> String {
        describe(&self.cmd)
    }

    /// What `out` of this command was, for a failure message.
    pub fn dump(&self, out: &Output) -> String {
        dump(
            &self.describe(),
            &out.status.to_string(),
            &out.stdout,
            &out.stderr,
        )
    }

    /// Runs the command to completion and captures both streams.
    pub fn run(&mut self) -> Output {
        let out = self
            .cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .unwrap_or_else(|e| panic!("cannot start the command ({e}):\n{}", self.describe()));
        Output {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs the command; kills it and fails the test (with the command, its directory and
    /// what it printed so far) if it has not ended within `timeout`.
    pub fn run_within(&mut self, timeout: Duration) -> Output {
        let mut child = self
            .cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the command ({e}):\n{}", self.describe()));
        let stdout = reader(child.stdout.take().expect("piped stdout"));
        let stderr = reader(child.stderr.take().expect("piped stderr"));
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for the command") {
                break Some(status);
            }
            if started.elapsed() > timeout {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(POLL);
        };
        let (stdout, stderr) = (join(stdout), join(stderr));
        match status {
            Some(status) => Output {
                status,
                stdout,
                stderr,
            },
            None => panic!(
                "the command did not end within {timeout:?}; it was killed.\n{}",
                dump(&self.describe(), "killed", &stdout, &stderr)
            ),
        }
    }

    /// Runs the command (like [`Self::run`]) and fails the test with everything about it
    /// unless it exits with `code`.
    pub fn assert_exit(&mut self, code: i32) -> Output {
        let out = self.run();
        self.check_exit(&out, code);
        out
    }

    /// Fails the test with everything about `out` unless it exited with `code`.
    pub fn check_exit(&self, out: &Output, code: i32) {
        assert!(
            out.status.code() == Some(code),
            "expected exit code {code}\n{}",
            self.dump(out)
        );
    }

    /// Starts the command in the background, its stderr into `log`, its stdout as `stdout`
    /// says.
    pub fn spawn(&mut self, log: &Path, stdout: Stdio) -> Background {
        let file = std::fs::File::create(log).expect("create the log file");
        let child = self
            .cmd
            .stdout(stdout)
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the command ({e}):\n{}", self.describe()));
        Background {
            child,
            log: log.to_path_buf(),
            description: self.describe(),
        }
    }
}

type Reader = std::thread::JoinHandle<String>;

fn reader(mut stream: impl Read + Send + 'static) -> Reader {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

fn join(reader: Reader) -> String {
    reader.join().expect("an output reader")
}

/// A child process running alongside the test, its stderr in a log file; killed when
/// dropped (a test that fails must not leave it running).
pub struct Background {
    child: Child,
    log: PathBuf,
    description: String,
}

impl Background {
    /// Starts `cmd` with its stderr in `log` and its stdout discarded.
    pub fn start(mut cmd: TestCommand, log: &Path) -> Background {
        cmd.spawn(log, Stdio::null())
    }

    /// What the process has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
    }

    /// The exit status, if the process has ended.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("wait for the process")
    }

    /// Waits for the exit; kills the process and fails the test (naming `what`, with the
    /// command, its directory and its log) after `deadline`.
    pub fn wait(&mut self, deadline: Duration, what: &str) -> (ExitStatus, String) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.try_wait() {
                return (status, self.log());
            }
            if started.elapsed() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "the process did not stop within {} s {what}; it was killed.\n{}\n---- log ----\n{}",
                    deadline.as_secs(),
                    self.description,
                    self.log()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// SIGKILL, as a crash; the exit status and the log.
    pub fn kill(&mut self) -> (ExitStatus, String) {
        self.child.kill().expect("kill the process");
        let status = self.child.wait().expect("wait for the killed process");
        (status, self.log())
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_failure_dump_shows_the_command_its_directory_its_status_and_both_streams() {
    let dir = super::temp_dir();
    let mut cmd = TestCommand::new(dir.path());
    cmd.current_dir(dir.path()).arg("no-such-subcommand");
    let out = cmd.run();
    cmd.check_exit(&out, 2);
    let dump = cmd.dump(&out);
    assert!(dump.contains(" no-such-subcommand"), "{dump}");
    assert!(
        dump.contains(&format!("directory: {}", dir.path().display())),
        "{dump}"
    );
    assert!(dump.contains("status: exit status: 2"), "{dump}");
    assert!(
        !out.stderr.is_empty() && dump.contains(&out.stderr),
        "{dump}"
    );
}

#[test]
#[should_panic(expected = "expected exit code 0")]
fn a_wrong_exit_code_fails_the_test() {
    let dir = super::temp_dir();
    TestCommand::new(dir.path())
        .arg("no-such-subcommand")
        .assert_exit(0);
}

#[test]
#[should_panic(expected = "it was killed")]
fn a_command_that_does_not_end_in_time_is_killed_and_fails_the_test() {
    let dir = super::temp_dir();
    // The mock serves until it is stopped.
    TestCommand::new(dir.path())
        .args(["mock-cluedin", "--listen", "127.0.0.1:0", "--token", "t"])
        .arg("--store")
        .arg(dir.path().join("mock"))
        .run_within(Duration::from_millis(500));
}
