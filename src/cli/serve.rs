//! `feedback-pipeline serve`: the processor service against the configured cluster.

use std::time::Duration;

use feedback_pipeline::config::Config;
use feedback_pipeline::kafka::{TopicSpec, ensure_topics};
use feedback_pipeline::processor::checkpoint::checkpoint_topic;
use feedback_pipeline::processor::query::QueryDefinition;
use feedback_pipeline::processor::service::Processor;

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
    let processor = Processor::new(&config, &servers, &queries)?;
    processor.run(shutdown_signal()).await?;
    Ok(())
}

/// The processor's topics (created when missing).
pub fn topic_specs(config: &Config) -> Vec<TopicSpec> {
    vec![
        TopicSpec::new(&config.topics.outcomes, 4),
        TopicSpec::new(&config.topics.metrics, 4),
        TopicSpec::new(&config.topics.alerts, 1),
        TopicSpec::new(&config.topics.dead_letters, 1),
        TopicSpec::new(checkpoint_topic(&config.kafka.consumer_group), 1),
    ]
}

/// The window queries of `PROCESSOR_SQL_DIR` (built-in ones when the default is absent).
pub async fn load_queries(
    config: &Config,
) -> Result<Vec<std::sync::Arc<QueryDefinition>>, Box<dyn std::error::Error>> {
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
