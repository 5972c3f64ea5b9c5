//! [`EmbeddedCluster`]: librdkafka's in-process mock cluster, for running with no broker.
//!
//! The mock cluster is `!Send`, so it lives on a thread of its own for as long as the handle does.

use std::sync::mpsc;
use std::thread::JoinHandle;

use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::mocking::MockCluster;

use super::{TopicSpec, ensure_topics};
use crate::config::KafkaConfig;

/// A running in-process Kafka mock cluster; dropping the handle stops it.
pub struct EmbeddedCluster {
    bootstrap_servers: String,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EmbeddedCluster {
    /// Starts `brokers` mock brokers and creates `topics` on them.
    pub fn start(brokers: i32, topics: &[TopicSpec]) -> KafkaResult<Self> {
        let (ready_tx, ready_rx) = mpsc::channel::<KafkaResult<String>>();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let topics = topics.to_vec();
        let thread = std::thread::Builder::new()
            .name("kafka-mock-cluster".into())
            .spawn(move || {
                let cluster = match MockCluster::new(brokers) {
                    Ok(cluster) => cluster,
                    Err(err) => {
                        let _ = ready_tx.send(Err(err));
                        return;
                    }
                };
                for topic in &topics {
                    if let Err(err) = cluster.create_topic(&topic.name, topic.partitions, 1) {
                        let _ = ready_tx.send(Err(err));
                        return;
                    }
                }
                let _ = ready_tx.send(Ok(cluster.bootstrap_servers()));
                // Either a stop message or the handle being dropped ends the wait.
                let _ = stop_rx.recv();
                drop(cluster);
            })
            .map_err(|err| KafkaError::ClientCreation(err.to_string()))?;
        let bootstrap_servers = ready_rx
            .recv()
            .map_err(|_| KafkaError::ClientCreation("mock cluster thread exited".into()))??;
        Ok(Self {
            bootstrap_servers,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// The cluster to talk to: `KAFKA_BOOTSTRAP_SERVERS` (creating any of `topics` missing
    /// there, waiting up to `timeout`) or, when it is unset, an in-process cluster started with
    /// `topics`. Returns the in-process cluster, to keep alive while it is used, and the
    /// servers to connect to.
    pub async fn unless_configured(
        kafka: &KafkaConfig,
        topics: &[TopicSpec],
        timeout: std::time::Duration,
    ) -> KafkaResult<(Option<Self>, String)> {
        match &kafka.bootstrap_servers {
            Some(servers) => {
                ensure_topics(&kafka.client_config(servers), topics, timeout).await?;
                Ok((None, servers.clone()))
            }
            None => {
                tracing::info!(
                    "KAFKA_BOOTSTRAP_SERVERS is not set: starting an in-process Kafka cluster"
                );
                let cluster = Self::start(1, topics)?;
                let servers = cluster.bootstrap_servers().to_owned();
                Ok((Some(cluster), servers))
            }
        }
    }

    /// The `host:port` list clients connect to.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap_servers
    }
}

impl Drop for EmbeddedCluster {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
