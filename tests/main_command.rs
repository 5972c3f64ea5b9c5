//! The main command runs end to end with no broker configured.

use std::io::Read;
use std::path::{Path, PathBuf};
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
    let summary: serde_json::Value = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|line| line["type"] == "summary")
        .unwrap_or_else(|| panic!("no summary line: {stdout}"));
    assert!(summary["consumed"].as_u64().unwrap() >= 30, "{stdout}");
    let agents = summary["recent_events"].as_object().unwrap();
    assert!(
        agents.contains_key("react_agent") || agents.contains_key("data_processor"),
        "{stdout}"
    );
}

/// The shipped rules and three of the shipped queries, with 10 s windows and 20 s to resolve,
/// so the demo schedule run 6 times faster shows them all within a minute or so.
fn fast_demo_setup(dir: &Path) -> (PathBuf, PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sql = dir.join("sql");
    std::fs::create_dir_all(&sql).unwrap();
    for query in [
        "error_rate_by_agent",
        "failure_rate_overall",
        "slow_executions",
    ] {
        let text = std::fs::read_to_string(root.join(format!("sql/{query}.sql"))).unwrap();
        let fast = text.replace("SIZE 1 MINUTE", "SIZE 10 SECONDS");
        assert_ne!(fast, text, "{query} has a one-minute window");
        std::fs::write(sql.join(format!("{query}.sql")), fast).unwrap();
    }
    let rules = std::fs::read_to_string(root.join("alerts/rules.toml")).unwrap();
    let rules_file = dir.join("rules.toml");
    std::fs::write(
        &rules_file,
        rules.replace("keep_firing_for = \"2m\"", "keep_firing_for = \"20s\""),
    )
    .unwrap();
    (sql, rules_file)
}

#[test]
fn the_demo_fires_and_resolves_each_alert() {
    let dir = tempfile::tempdir().unwrap();
    let (sql, rules) = fast_demo_setup(dir.path());
    let mut child = Command::new(env!("CARGO_BIN_EXE_feedback-pipeline"))
        .args(["run", "--json", "--demo-speed", "6"])
        .current_dir(dir.path())
        .env_remove("KAFKA_BOOTSTRAP_SERVERS")
        .env("METRICS_ADDR", "127.0.0.1:0")
        .env("SPOOL_DIR", "off")
        .env("PROCESSOR_SQL_DIR", &sql)
        .env("ALERT_RULES_FILE", &rules)
        .env("WINDOW_OUT_OF_ORDER_MS", "1000")
        .env("WINDOW_GRACE_MS", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let (sender, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(stdout).map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    let wanted = [
        "AgentFailureRateHigh",
        "OverallFailureRateHigh",
        "SlowExecutions",
    ];
    let mut seen = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    while seen.len() < 2 * wanted.len() && Instant::now() < deadline {
        let Ok(line) = lines.recv_timeout(Duration::from_secs(1)) else {
            continue;
        };
        let Ok(record) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if record["type"] == "alert" && wanted.contains(&record["rule"].as_str().unwrap_or("")) {
            let action = record["action"].as_str().unwrap().to_owned();
            seen.insert((record["rule"].as_str().unwrap().to_owned(), action));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    for rule in wanted {
        for action in ["trigger", "resolve"] {
            assert!(
                seen.contains(&(rule.to_owned(), action.to_owned())),
                "{rule} {action} missing; seen {seen:?}"
            );
        }
    }
}
