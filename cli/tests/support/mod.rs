//! Running the built `imgflow` binary in the client-command tests.

use std::process::{Command, Output};

/// What one run of `imgflow` left behind.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout as JSON (for `--output json`), or a panic that shows both streams.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}\nstderr:\n{}", self.stdout, self.stderr))
    }

    /// Panics with both streams unless the exit code is `code`.
    pub fn expect_code(self, code: i32) -> Run {
        assert_eq!(self.code, code, "exit code\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
}

impl From<Output> for Run {
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// `imgflow` with no AWS or imgflow settings inherited from the environment of the test run.
pub fn imgflow() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_imgflow"));
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("AWS_") || name.starts_with("IMGFLOW_") {
            command.env_remove(name.as_ref());
        }
    }
    command
}

/// Runs `command` to its end (off the async runtime's worker threads).
pub async fn run(mut command: Command) -> Run {
    tokio::task::spawn_blocking(move || command.output().expect("imgflow runs").into())
        .await
        .expect("the imgflow process was awaited")
}

/// The value of a `Label   value` line of a details view, when the view has that label.
pub fn field<'a>(text: &'a str, label: &str) -> Option<&'a str> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(label)?;
        // The label is followed by at least two spaces of padding (so "Status" is not "Statuses").
        rest.starts_with("  ").then(|| rest.trim())
    })
}
