//! Creating the pipeline's topics when they do not exist yet.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// A topic to create: name and partition count (replication factor 1 is the broker's default).
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
        let consumer: rdkafka::consumer::BaseConsumer = lookup.create()?;
        let metadata = rdkafka::consumer::Consumer::fetch_metadata(&consumer, None, timeout)?;
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
        .map(|topic| NewTopic::new(&topic.name, topic.partitions, TopicReplication::Fixed(1)))
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
