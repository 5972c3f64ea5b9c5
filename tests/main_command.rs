//! The main command runs end to end with no broker configured.

use std::process::Command;

#[test]
fn run_with_no_kafka_configured_uses_the_embedded_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_feedback-pipeline"))
        .args(["run", "--max-events", "30", "--rate", "200"])
        .current_dir(dir.path())
        .env_remove("KAFKA_BOOTSTRAP_SERVERS")
        .env("METRICS_ADDR", "127.0.0.1:0")
        .output()
        .unwrap();
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
