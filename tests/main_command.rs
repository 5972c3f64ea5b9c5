//! The main command runs end to end with no broker configured.

use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `command` to completion, or kills it and fails after `limit` with what it printed.
fn output_within(mut command: Command, limit: Duration) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Pipes are drained on threads so a chatty child never blocks on a full pipe.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            let stderr = String::from_utf8_lossy(&stderr.join().unwrap()).into_owned();
            let tail: String = stderr
                .chars()
                .rev()
                .take(4000)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            panic!("still running after {limit:?}; stderr ends with:\n{tail}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

#[test]
fn run_with_no_kafka_configured_uses_the_embedded_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_feedback-pipeline"));
    command
        .args(["run", "--max-events", "30", "--rate", "200"])
        .current_dir(dir.path())
        .env_remove("KAFKA_BOOTSTRAP_SERVERS")
        .env("METRICS_ADDR", "127.0.0.1:0");
    let output = output_within(command, Duration::from_secs(120));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("in-process Kafka cluster"), "{stderr}");
    let consumed: u64 = stdout
        .lines()
        .find_map(|line| {
            line.split(" events consumed")
                .next()
                .filter(|_| line.contains(" events consumed"))
        })
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no summary line: {stdout}"));
    assert!(consumed >= 30, "{stdout}");
    assert!(
        stdout.contains("react_agent") || stdout.contains("data_processor"),
        "{stdout}"
    );
}
