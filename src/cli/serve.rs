//! `feedback-pipeline serve`: the processor service against the configured cluster.

use std::time::Duration;

use std::sync::Arc;

use tokio::sync::oneshot;

use feedback_pipeline::alerts::rules::{check_rules, load_rules};
use feedback_pipeline::config::Config;
use feedback_pipeline::kafka::{TopicSpec, ensure_topics};
use feedback_pipeline::metrics::grafana::{DashboardLink, dashboard_links};
use feedback_pipeline::metrics::server;
use feedback_pipeline::processor::Processor;
use feedback_pipeline::processor::QueryDefinition;
use feedback_pipeline::processor::merge::repartition_topic;

/// Runs the processor until Ctrl-C or SIGTERM.
pub async fn serve(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    let Some(servers) = config.kafka.bootstrap_servers.clone() else {
        return Err("KAFKA_BOOTSTRAP_SERVERS is not set: `serve` needs a cluster (set it, or use `run` for the in-process one)".into());
    };
    let queries = load_queries(&config).await?;
    ensure_topics(
        &config.kafka.client_config(&servers),
        &topic_specs(&config),
        Duration::from_secs(30),
    )
    .await?;
    let processor = with_alert_rules(
        &config,
        &queries,
        Processor::new(&config, &servers, &queries)?,
    )?;
    let (stop_http, http) = start_http(&config, &processor).await?;
    processor.run(shutdown_signal()).await?;
    let _ = stop_http.send(());
    let _ = http.await;
    Ok(())
}

/// Loads the alert rules of `ALERT_RULES_FILE`, checks them against `queries` and hands
/// them to `processor`.
pub fn with_alert_rules(
    config: &Config,
    queries: &[Arc<QueryDefinition>],
    processor: Processor,
) -> Result<Processor, Box<dyn std::error::Error>> {
    let file = &config.alerts.rules_file;
    let is_default = file.as_os_str() == "alerts/rules.toml";
    let mut rules = load_rules(file, is_default)?;
    if is_default {
        // The shipped rules watch the shipped queries; with other queries, keep those that apply.
        rules.retain(|rule| {
            let loaded = queries.iter().any(|q| q.name == rule.query);
            if !loaded {
                tracing::warn!(rule = %rule.name, query = %rule.query, "alert rule skipped: its query is not loaded");
            }
            loaded
        });
    }
    let outputs: Vec<_> = queries.iter().map(|q| q.output()).collect();
    check_rules(&file.display().to_string(), &rules, &outputs)?;
    for rule in &rules {
        tracing::info!(rule = %rule.name, query = %rule.query, column = %rule.column, "alert rule ready");
    }
    Ok(processor.with_alerts(rules))
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `METRICS_ADDR` until the sender fires.
pub async fn start_http(
    config: &Config,
    processor: &Processor,
) -> Result<(oneshot::Sender<()>, tokio::task::JoinHandle<()>), Box<dyn std::error::Error>> {
    let (stop, stopped) = oneshot::channel::<()>();
    let (addr, server) = server::bind(
        &config.processor.metrics_addr,
        processor.metrics(),
        processor.readiness(),
        async move {
            let _ = stopped.await;
        },
    )
    .await?;
    tracing::info!(%addr, "serving /metrics, /healthz and /readyz");
    for link in grafana_links(config) {
        tracing::info!(dashboard = link.title, url = %link.url, "Grafana dashboard");
    }
    Ok((stop, tokio::spawn(server)))
}

/// The links to the bundled dashboards when `GRAFANA_URL` is set.
pub fn grafana_links(config: &Config) -> Vec<DashboardLink> {
    config
        .processor
        .grafana_url
        .as_deref()
        .map(dashboard_links)
        .unwrap_or_default()
}

/// The processor's topics (created when missing).
pub fn topic_specs(config: &Config) -> Vec<TopicSpec> {
    vec![
        TopicSpec::new(&config.topics.outcomes, 4),
        TopicSpec::new(&config.topics.metrics, 4),
        TopicSpec::new(&config.topics.alerts, 1),
        TopicSpec::new(&config.topics.dead_letters, 1),
        TopicSpec::new(repartition_topic(&config.kafka.consumer_group), 4),
    ]
}

/// The window queries of `PROCESSOR_SQL_DIR` (built-in ones when the default is absent).
pub async fn load_queries(
    config: &Config,
) -> Result<Vec<Arc<QueryDefinition>>, Box<dyn std::error::Error>> {
    let dir = &config.processor.sql_dir;
    let is_default = dir.as_os_str() == "sql";
    let queries = QueryDefinition::load(dir, is_default).await?;
    for query in &queries {
        tracing::info!(query = %query.name, window = %query.spec(), "window query ready");
    }
    Ok(queries)
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
