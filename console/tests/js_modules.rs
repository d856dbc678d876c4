//! The console's pure modules (what happened to each state, the graph layout, image ids) under
//! Node's own test runner: `node --test tests/js/`. Node.js is a test dependency, as for the
//! state machine linters; scripts/test installs it.

use std::process::Command;

#[test]
fn javascript_modules_pass_their_tests() {
    let crate_dir = env!("CARGO_MANIFEST_DIR");
    let output = match Command::new("node").args(["--test", "tests/js/"]).current_dir(crate_dir).output() {
        Ok(output) => output,
        Err(error) => panic!(
            "could not run node ({error}): install Node.js 20 or newer (`apt-get install nodejs`; scripts/test does it)"
        ),
    };
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "node --test failed:\n{report}\n{}", String::from_utf8_lossy(&output.stderr));
    let passed = report
        .lines()
        .find_map(|line| line.strip_prefix("# pass "))
        .and_then(|count| count.trim().parse::<u32>().ok())
        .expect("node's report has a '# pass N' line");
    assert!(passed >= 10, "only {passed} JavaScript tests ran:\n{report}");
}
