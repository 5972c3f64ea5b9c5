//! `/metrics` end to end: the processor fed with events on a real broker, scraped by a real
//! Prometheus; `promtool check metrics` finds nothing, and every Grafana panel's query (and
//! every template variable) evaluates through Prometheus' HTTP API and returns data.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::Utc;
use rdkafka::producer::FutureProducer;
use serde_json::Value;

use common::broker::KafkaCluster;
use common::topic::send_one;
use common::wait_until;
use common::windows::start;
use feedback_pipeline::alerts::rules::{BUILTIN_RULES, parse_rules};
use feedback_pipeline::event::{OutcomeEvent, OutcomeStatus};
use feedback_pipeline::kafka::{TopicSpec, ensure_topics};
use feedback_pipeline::metrics::CONTENT_TYPE;
use feedback_pipeline::processor::Processor;
use feedback_pipeline::processor::QueryDefinition;

/// Debian's Prometheus (`apt-get install prometheus`), or `PROMETHEUS_BIN`.
fn prometheus_binary(name: &str) -> PathBuf {
    let variable = format!("{}_BIN", name.to_uppercase());
    let path = std::env::var_os(&variable)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new("/usr/bin").join(name));
    assert!(
        path.is_file(),
        "{} not found: install Debian's prometheus package (apt-get install prometheus; .ci/run does) or set {variable}",
        path.display()
    );
    path
}

struct PrometheusServer {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_prometheus(target: std::net::SocketAddr) -> PrometheusServer {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: feedback-pipeline\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let child = Command::new(prometheus_binary("prometheus"))
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("starting prometheus");
    PrometheusServer {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    }
}

/// An instant query; `None` while Prometheus is not answering.
async fn query(client: &reqwest::Client, base: &str, expr: &str) -> Option<Value> {
    let response = client
        .get(format!("{base}/api/v1/query"))
        .query(&[("query", expr)])
        .send()
        .await
        .ok()?;
    response.json().await.ok()
}

fn events() -> Vec<OutcomeEvent> {
    let now = Utc::now();
    let mut events = Vec::new();
    for n in 0..600i64 {
        // Five minutes of history, ending a minute ago: every window closes once the
        // partitions go quiet.
        let at = now - chrono::Duration::milliseconds(360_000 - n * 500);
        let (agent, agent_type) = [
            ("react_agent", "reasoning"),
            ("data_processor", "processing"),
            ("evaluator", "evaluation"),
        ][(n % 3) as usize];
        let failing = agent == "data_processor" && n % 2 == 0;
        let mut builder = OutcomeEvent::builder(agent, "process_task")
            .agent_type(agent_type)
            .model("gpt-4o", "openai")
            .tokens(100 + n as u64, 20)
            .status(if failing {
                OutcomeStatus::Failure
            } else {
                OutcomeStatus::Success
            });
        if failing {
            builder = builder.error("ValueError", "Invalid data format");
        }
        let mut event = builder.build().unwrap();
        event.timestamp = at;
        event.latency_ms = if n % 50 == 0 {
            6_000.0
        } else {
            100.0 + n as f64
        };
        event.cost_estimate = Some(0.002);
        events.push(event);
        if n % 20 == 0 {
            let mut workflow = OutcomeEvent::builder("orchestrator", "workflow")
                .status(OutcomeStatus::Success)
                .build()
                .unwrap();
            workflow.timestamp = at;
            workflow.duration_ms = 1_500.0 + n as f64;
            events.push(workflow);
        }
    }
    events
}

/// Every `expr` of the dashboard's panels (rows included) and its template variables.
fn dashboard_queries(dashboard: &Value) -> (Vec<(String, String)>, Vec<String>) {
    fn walk(panels: &Value, out: &mut Vec<(String, String)>) {
        for panel in panels.as_array().into_iter().flatten() {
            let title = panel["title"].as_str().unwrap_or("?").to_owned();
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    out.push((title.clone(), expr.to_owned()));
                }
            }
            walk(&panel["panels"], out);
        }
    }
    let mut exprs = Vec::new();
    walk(&dashboard["panels"], &mut exprs);
    let variables = dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| {
            v["query"]
                .as_str()
                .or_else(|| v["query"]["query"].as_str())
                .map(str::to_owned)
        })
        .collect();
    (exprs, variables)
}

/// Grafana's variables as a test run sees them: every agent, a one-minute rate window.
fn substitute(expr: &str) -> String {
    expr.replace("$__rate_interval", "1m")
        .replace("$__interval", "15s")
        .replace("$__range", "5m")
        .replace("$agent_type", ".*")
        .replace("$agent_name", ".*")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_metrics_and_every_dashboard_panel_returns_data() {
    common::init_logs();
    let broker = KafkaCluster::start();
    let servers = broker.bootstrap_servers();
    let vars = [
        ("KAFKA_OUTCOME_TOPIC", "outcomes-prom"),
        ("KAFKA_METRICS_TOPIC", "metrics-prom"),
        ("KAFKA_ALERTS_TOPIC", "alerts-prom"),
        ("KAFKA_DLQ_TOPIC", "dlq-prom"),
        ("KAFKA_CONSUMER_GROUP", "prom-group"),
        ("WINDOW_OUT_OF_ORDER_MS", "1000"),
        ("WINDOW_GRACE_MS", "0"),
        ("WINDOW_IDLE_CLOSE_MS", "1000"),
        ("PROCESSOR_TICK_MS", "100"),
        ("SPOOL_DIR", "off"),
    ];
    let config = common::config(&servers, &vars);
    let topics: Vec<_> = ["outcomes-prom", "metrics-prom", "alerts-prom", "dlq-prom"]
        .iter()
        .map(|name| TopicSpec::new(*name, 2))
        .collect();
    ensure_topics(
        &config.kafka.client_config(&servers),
        &topics,
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    let queries = QueryDefinition::builtin().await.unwrap();
    let rules = parse_rules("builtin", BUILTIN_RULES).unwrap();
    let processor = Processor::new(&config, &servers, &queries)
        .unwrap()
        .with_alerts(rules);
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let (addr, server) = feedback_pipeline::metrics::server::bind(
        "127.0.0.1:0",
        processor.metrics(),
        processor.readiness(),
        async move {
            let _ = http_stopped.await;
        },
    )
    .await
    .unwrap();
    tokio::spawn(server);
    let (stop, running) = start(processor);

    let producer: FutureProducer = config.kafka.producer_config(&servers).create().unwrap();
    for event in events() {
        let payload = event.to_json_vec().unwrap();
        send_one(&producer, "outcomes-prom", &event.agent_name, &payload).await;
    }
    send_one(&producer, "outcomes-prom", "broken", b"{not json").await;

    // The exposition: exact content type, windows closed, the failure-rate alert fired.
    let client = reqwest::Client::new();
    let metrics_url = format!("http://{addr}/metrics");
    let body = wait_until(
        Duration::from_secs(90),
        "window gauges and an alert on /metrics",
        || async {
            let response = client.get(&metrics_url).send().await.ok()?;
            let content_type = response.headers()["content-type"].to_str().ok()?.to_owned();
            assert_eq!(content_type, CONTENT_TYPE);
            let body = response.text().await.ok()?;
            let ready = body.contains("feedback_pipeline_window_failure_ratio{")
                && body.contains("feedback_pipeline_window_p95_completion_seconds{")
                && body.contains("feedback_pipeline_alert_records_total{")
                && body.contains("feedback_pipeline_processor_consumer_lag_messages{")
                // The malformed message is produced last: everything was read.
                && body.contains(
                    r#"feedback_pipeline_processor_dead_letters_total{reason="malformed_json"} 1"#,
                );
            ready.then_some(body)
        },
    )
    .await;
    for path in ["healthz", "readyz"] {
        let response = client
            .get(format!("http://{addr}/{path}"))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body = response.text().await.unwrap();
        assert!(status.is_success(), "/{path}: {status} {body}");
    }

    let mut promtool = Command::new(prometheus_binary("promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let lint = promtool.wait_with_output().unwrap();
    let findings = format!(
        "{}{}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );
    assert!(
        lint.status.success() && findings.trim().is_empty(),
        "promtool check metrics: {findings}"
    );

    // A real Prometheus scrapes it until rates have a few samples.
    let prometheus = start_prometheus(addr);
    wait_until(Duration::from_secs(60), "three scrapes", || async {
        let answer = query(
            &client,
            &prometheus.url,
            "count_over_time(feedback_pipeline_processor_events_consumed_total[1m])",
        )
        .await?;
        let samples = answer["data"]["result"][0]["value"][1]
            .as_str()?
            .parse::<f64>()
            .ok()?;
        (samples >= 3.0).then_some(())
    })
    .await;

    let dashboards_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("grafana/dashboards");
    let mut checked = 0;
    let mut failures = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dashboards_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 2,
        "dashboards in {}",
        dashboards_dir.display()
    );
    for file in files {
        let dashboard: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        let (exprs, variables) = dashboard_queries(&dashboard);
        assert!(!exprs.is_empty(), "{} has no queries", file.display());
        for (panel, expr) in exprs {
            let expr = substitute(&expr);
            let answer = query(&client, &prometheus.url, &expr).await;
            checked += 1;
            let ok = answer.as_ref().is_some_and(|a| {
                a["status"] == "success"
                    && a["data"]["result"]
                        .as_array()
                        .is_some_and(|r| !r.is_empty())
            });
            if !ok {
                failures.push(format!("{}: {panel}: {expr} → {answer:?}", file.display()));
            }
        }
        for variable in variables {
            // label_values(metric{...}, label): the series API answers what Grafana asks.
            let inner = variable
                .trim()
                .strip_prefix("label_values(")
                .and_then(|v| v.strip_suffix(')'))
                .unwrap_or_else(|| panic!("unexpected variable query {variable}"));
            let (selector, label) = inner.rsplit_once(',').unwrap();
            let selector = substitute(selector.trim());
            let answer: Value = client
                .get(format!(
                    "{}/api/v1/label/{}/values",
                    prometheus.url,
                    label.trim()
                ))
                .query(&[("match[]", selector.as_str())])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            checked += 1;
            if answer["data"]
                .as_array()
                .is_none_or(|values| values.is_empty())
            {
                failures.push(format!(
                    "{}: variable {variable} → {answer}",
                    file.display()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} queries failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("{checked} dashboard queries evaluated and returned data");

    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
    let _ = stop_http.send(());
}
