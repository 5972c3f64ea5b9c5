//! Creating the pipeline's topics when they do not exist yet, and reading their partition count.

use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use super::diagnose::DiagnosingContext;

/// A topic to create: name and partition count; its replication factor and `min.insync.replicas`
/// are the cluster's defaults (`default.replication.factor`, `min.insync.replicas`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// Topic name.
    pub name: String,
    /// Number of partitions.
    pub partitions: i32,
}

impl TopicSpec {
    /// A topic with `partitions` partitions.
    pub fn new(name: impl Into<String>, partitions: i32) -> Self {
        Self {
            name: name.into(),
            partitions,
        }
    }
}

/// Creates each topic that does not exist; existing topics are left as they are.
pub async fn ensure_topics(
    client_config: &ClientConfig,
    topics: &[TopicSpec],
    timeout: Duration,
) -> Result<(), KafkaError> {
    // Only ask for what is missing: some clusters (the in-process one) cannot create topics.
    let lookup = client_config.clone();
    let existing: Vec<String> = tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer<DiagnosingContext> =
            lookup.create_with_context(DiagnosingContext::default())?;
        let metadata = fetch_metadata(&consumer, timeout)?;
        Ok::<_, KafkaError>(
            metadata
                .topics()
                .iter()
                .map(|t| t.name().to_owned())
                .collect(),
        )
    })
    .await
    .map_err(|err| KafkaError::AdminOpCreation(err.to_string()))??;
    let missing: Vec<&TopicSpec> = topics
        .iter()
        .filter(|topic| !existing.contains(&topic.name))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let admin: AdminClient<DefaultClientContext> = client_config.create()?;
    let new_topics: Vec<NewTopic<'_>> = missing
        .iter()
        // -1: the broker's `default.replication.factor` (KIP-464), so a 3-node cluster set up
        // for replication factor 3 gets it without each caller knowing the cluster's size.
        .map(|topic| NewTopic::new(&topic.name, topic.partitions, TopicReplication::Fixed(-1)))
        .collect();
    let options = AdminOptions::new()
        .operation_timeout(Some(timeout))
        .request_timeout(Some(timeout));
    for result in admin.create_topics(&new_topics, &options).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => return Err(KafkaError::AdminOp(code)),
        }
    }
    Ok(())
}

/// The number of partitions of `topic`, 0 if it still does not exist after `timeout`. A topic
/// created a moment ago can be missing from the metadata a broker answers with for a while
/// (the controller has it, that broker's cache not yet), so an absent topic is asked for again
/// every 200 ms until the deadline.
pub async fn partition_count(
    client_config: &ClientConfig,
    topic: &str,
    timeout: Duration,
) -> Result<usize, KafkaError> {
    let config = client_config.clone();
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer<DiagnosingContext> =
            config.create_with_context(DiagnosingContext::default())?;
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let metadata = fetch_metadata(&consumer, left.max(Duration::from_secs(1)))?;
            let count = metadata
                .topics()
                .iter()
                .find(|t| t.name() == topic)
                .map_or(0, |t| t.partitions().len());
            if count > 0 || left.is_zero() {
                return Ok(count);
            }
            std::thread::sleep(Duration::from_millis(200).min(left));
        }
    })
    .await
    .map_err(|err| KafkaError::AdminOpCreation(err.to_string()))?
}

/// The cluster's metadata, asked for a second at a time so that a client error that names the
/// setting to fix (wrong password, untrusted CA) ends the wait at once, with that hint.
fn fetch_metadata(
    consumer: &BaseConsumer<DiagnosingContext>,
    timeout: Duration,
) -> Result<rdkafka::metadata::Metadata, KafkaError> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match consumer.fetch_metadata(None, left.min(Duration::from_secs(1))) {
            Ok(metadata) => return Ok(metadata),
            Err(err) => {
                // Client errors reach the context only when the client is polled.
                let _ = consumer.poll(Duration::ZERO);
                if let Some(fix) = consumer.context().explained() {
                    return Err(KafkaError::ClientCreation(format!("{fix} ({err})")));
                }
                if left <= Duration::from_secs(1) {
                    return Err(err);
                }
            }
        }
    }
}
