//! `feedback-pipeline alerts forward`: reads `agent-alerts` and delivers each record to
//! PagerDuty and/or Slack. Each receiver has a lane of its own: its own consumer group
//! (`ALERT_FORWARDER_GROUP.<receiver>`), backoff and commits, so one receiver's outage delays
//! only that receiver. A record's offset is committed for a receiver once it took it, so
//! nothing is lost; while a lane waits to retry, its partitions are paused and it keeps
//! polling, so it stays in its group however long the outage. A receiver that rejects a
//! record as invalid (4xx other than 408/429) is logged and skipped, since retrying cannot
//! fix it.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::FutureExt;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};
use reqwest::StatusCode;
use serde_json::Value;

use super::receivers::{pagerduty_event, slack_message};
use super::record::AlertRecord;
use crate::config::{Config, Secret};

/// Errors that stop the forwarder (a failing receiver never does).
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// Kafka client failure.
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The HTTP client could not be built.
    #[error("http client: {0}")]
    Http(#[from] reqwest::Error),
    /// No receiver is configured.
    #[error(
        "no receiver configured: set PAGERDUTY_ROUTING_KEY and/or SLACK_WEBHOOK_URL (see .env.example)"
    )]
    NoReceiver,
}

/// Where alerts go.
#[derive(Debug, Clone)]
pub enum Receiver {
    /// PagerDuty Events API v2.
    PagerDuty {
        /// Endpoint (`PAGERDUTY_EVENTS_URL`).
        url: String,
        /// Integration key.
        routing_key: Secret,
    },
    /// A Slack incoming webhook.
    Slack {
        /// The webhook URL (secret).
        url: Secret,
    },
}

impl Receiver {
    /// The receivers `config` sets up.
    pub fn from_config(config: &Config) -> Vec<Self> {
        let alerts = &config.alerts;
        let mut receivers = Vec::new();
        if let Some(routing_key) = &alerts.pagerduty_routing_key {
            receivers.push(Self::PagerDuty {
                url: alerts.pagerduty_url.clone(),
                routing_key: routing_key.clone(),
            });
        }
        if let Some(url) = &alerts.slack_webhook_url {
            receivers.push(Self::Slack { url: url.clone() });
        }
        receivers
    }

    /// Name used in logs and counters (never the URL: a webhook URL is a credential).
    pub fn name(&self) -> &'static str {
        match self {
            Self::PagerDuty { .. } => "pagerduty",
            Self::Slack { .. } => "slack",
        }
    }

    fn request(&self, record: &AlertRecord) -> (&str, Value) {
        match self {
            Self::PagerDuty { url, routing_key } => {
                (url, pagerduty_event(record, routing_key.expose()))
            }
            Self::Slack { url } => (url.expose(), slack_message(record)),
        }
    }
}

/// What the forwarder has done, over all receivers.
#[derive(Debug, Default)]
pub struct ForwarderStats {
    /// (record, receiver) pairs done with: taken, skipped or not an alert; offset committed.
    pub forwarded: AtomicU64,
    /// Deliveries accepted by a receiver.
    pub delivered: AtomicU64,
    /// Attempts that failed and were retried.
    pub retries: AtomicU64,
    /// Deliveries a receiver rejected as invalid (skipped).
    pub rejected: AtomicU64,
    /// Records on the topic that are not alert records (skipped), per receiver.
    pub undecodable: AtomicU64,
}

/// Outcome of one delivery attempt.
enum Attempt {
    Delivered,
    Rejected(String),
    Retry {
        after: Option<Duration>,
        why: String,
    },
}

/// The forwarder: one [`Lane`] per receiver.
pub struct Forwarder {
    lanes: Vec<Lane>,
    stats: Arc<ForwarderStats>,
}

/// One receiver's consumer, delivery and backoff.
struct Lane {
    receiver: Receiver,
    consumer: StreamConsumer,
    client: reqwest::Client,
    max_backoff: Duration,
    stats: Arc<ForwarderStats>,
    /// Records read while a delivery waited (a rebalance added partitions), handled next.
    held: VecDeque<OwnedMessage>,
}

impl Forwarder {
    /// Joins each receiver's group on the alert topic of `config`.
    pub fn new(config: &Config, servers: &str) -> Result<Self, ForwardError> {
        let receivers = Receiver::from_config(config);
        if receivers.is_empty() {
            return Err(ForwardError::NoReceiver);
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .user_agent(concat!("feedback-pipeline/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let stats = Arc::<ForwarderStats>::default();
        let mut lanes = Vec::new();
        for receiver in receivers {
            let group = format!("{}.{}", config.alerts.forwarder_group, receiver.name());
            adopt_shared_offsets(config, servers, &group);
            let consumer: StreamConsumer = config
                .kafka
                .client_config(servers)
                .set("group.id", &group)
                .set("enable.auto.commit", "false")
                .set("auto.offset.reset", "earliest")
                .create()?;
            consumer.subscribe(&[config.topics.alerts.as_str()])?;
            lanes.push(Lane {
                receiver,
                consumer,
                client: client.clone(),
                max_backoff: config.alerts.max_backoff,
                stats: Arc::clone(&stats),
                held: VecDeque::new(),
            });
        }
        Ok(Self { lanes, stats })
    }

    /// The counters, shared.
    pub fn stats(&self) -> Arc<ForwarderStats> {
        Arc::clone(&self.stats)
    }

    /// Forwards records until `shutdown` completes. A record being retried at shutdown is
    /// not committed for that receiver: the next run delivers it again.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), ForwardError> {
        let shutdown = shutdown.shared();
        let lanes = self
            .lanes
            .into_iter()
            .map(|lane| lane.run(shutdown.clone()));
        futures::future::try_join_all(lanes).await?;
        Ok(())
    }
}

/// The offsets `group` has committed on `config`'s alert topic (`None` on any error).
fn committed_alert_offsets(
    config: &Config,
    servers: &str,
    group: &str,
) -> Option<TopicPartitionList> {
    let consumer: BaseConsumer = config
        .kafka
        .client_config(servers)
        .set("group.id", group)
        .create()
        .ok()?;
    let topic = config.topics.alerts.as_str();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .ok()?;
    let mut wanted = TopicPartitionList::new();
    for partition in metadata.topics().first()?.partitions() {
        wanted.add_partition(topic, partition.id());
    }
    let found = consumer
        .committed_offsets(wanted, Duration::from_secs(10))
        .ok()?;
    let mut valid = TopicPartitionList::new();
    for element in found.elements() {
        if let Offset::Offset(offset) = element.offset() {
            valid
                .add_partition_offset(topic, element.partition(), Offset::Offset(offset))
                .ok()?;
        }
    }
    Some(valid)
}

/// Before the lanes, one group (`ALERT_FORWARDER_GROUP`) served every receiver. A lane group
/// with no offsets starts where that group was, so an upgrade does not page again for every
/// alert the topic retains. Best effort: otherwise the lane starts from the earliest.
fn adopt_shared_offsets(config: &Config, servers: &str, lane_group: &str) {
    let Some(shared) = committed_alert_offsets(config, servers, &config.alerts.forwarder_group)
    else {
        return;
    };
    let own = committed_alert_offsets(config, servers, lane_group);
    if shared.count() == 0 || own.is_none_or(|own| own.count() > 0) {
        return;
    }
    let adopted = config
        .kafka
        .client_config(servers)
        .set("group.id", lane_group)
        .create::<BaseConsumer>()
        .and_then(|consumer| consumer.commit(&shared, CommitMode::Sync));
    match adopted {
        Ok(()) => tracing::info!(group = lane_group, "starting where the shared group was"),
        Err(err) => tracing::warn!(%err, group = lane_group, "could not adopt the shared offsets"),
    }
}

impl Lane {
    /// Forwards this receiver's records until `shutdown` completes.
    async fn run(mut self, shutdown: impl Future<Output = ()> + Clone) -> Result<(), ForwardError> {
        let mut stop = std::pin::pin!(shutdown.clone());
        loop {
            let message = match self.held.pop_front() {
                Some(message) => message,
                None => tokio::select! {
                    _ = &mut stop => return Ok(()),
                    message = self.consumer.recv() => message?.detach(),
                },
            };
            match message.payload().map(AlertRecord::from_json) {
                Some(Ok(record)) => {
                    if !self.deliver(&record, shutdown.clone()).await? {
                        return Ok(());
                    }
                }
                other => self.skip_undecodable(&message, other),
            }
            self.commit(&message)?;
            self.stats.forwarded.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn skip_undecodable<E: std::fmt::Display>(
        &self,
        message: &OwnedMessage,
        decoded: Option<Result<AlertRecord, E>>,
    ) {
        self.stats.undecodable.fetch_add(1, Ordering::Relaxed);
        let problem = match decoded {
            Some(Err(err)) => err.to_string(),
            _ => "no payload".to_owned(),
        };
        tracing::error!(
            receiver = self.receiver.name(),
            partition = message.partition(),
            offset = message.offset(),
            %problem,
            "not an alert record; skipped"
        );
    }

    fn commit(&self, message: &OwnedMessage) -> Result<(), ForwardError> {
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(
            message.topic(),
            message.partition(),
            Offset::Offset(message.offset() + 1),
        )?;
        self.consumer.commit(&list, CommitMode::Async)?;
        Ok(())
    }

    /// Delivers `record`, retrying until the receiver answers; `false` if `shutdown` came
    /// first. While it waits the lane's partitions are paused and the consumer keeps polling.
    async fn deliver(
        &mut self,
        record: &AlertRecord,
        shutdown: impl Future<Output = ()>,
    ) -> Result<bool, ForwardError> {
        let mut stop = std::pin::pin!(shutdown);
        let mut backoff = Duration::from_millis(250).min(self.max_backoff);
        let mut paused = false;
        let name = self.receiver.name();
        let delivered = loop {
            match self.attempt(record).await {
                Attempt::Delivered => {
                    self.stats.delivered.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(receiver = name, dedup_key = %record.dedup_key, action = record.action.as_str(), "alert delivered");
                    break true;
                }
                Attempt::Rejected(why) => {
                    self.stats.rejected.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(receiver = name, dedup_key = %record.dedup_key, %why, "receiver rejected the alert; skipped");
                    break true;
                }
                Attempt::Retry { after, why } => {
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    let wait = after.unwrap_or(backoff).min(self.max_backoff);
                    tracing::warn!(receiver = name, dedup_key = %record.dedup_key, %why, wait_ms = wait.as_millis() as u64, "delivery failed; retrying");
                    if !paused {
                        self.consumer.pause(&self.consumer.assignment()?)?;
                        paused = true;
                    }
                    if !self.wait_polling(wait, &mut stop).await? {
                        break false;
                    }
                    backoff = (backoff * 2).min(self.max_backoff);
                }
            }
        };
        if paused {
            self.consumer.resume(&self.consumer.assignment()?)?;
        }
        Ok(delivered)
    }

    /// Waits `wait` while polling the consumer (heartbeats, rebalances). A record of a
    /// partition assigned meanwhile is held for later, and the new assignment paused too.
    /// `false` if `stop` completed.
    async fn wait_polling(
        &mut self,
        wait: Duration,
        stop: &mut (impl Future<Output = ()> + Unpin),
    ) -> Result<bool, ForwardError> {
        let sleep = tokio::time::sleep(wait);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut *stop => return Ok(false),
                () = &mut sleep => return Ok(true),
                message = self.consumer.recv() => {
                    self.held.push_back(message?.detach());
                    self.consumer.pause(&self.consumer.assignment()?)?;
                }
            }
        }
    }

    async fn attempt(&self, record: &AlertRecord) -> Attempt {
        let (url, body) = self.receiver.request(record);
        let response = match self.client.post(url).json(&body).send().await {
            Ok(response) => response,
            // The error's text can contain the URL: keep only its kind.
            Err(err) => {
                let why = if err.is_timeout() {
                    "timed out"
                } else if err.is_connect() {
                    "cannot connect"
                } else {
                    "request failed"
                };
                return Attempt::Retry {
                    after: None,
                    why: why.to_owned(),
                };
            }
        };
        let status = response.status();
        if status.is_success() {
            return Attempt::Delivered;
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let why = format!("HTTP {status}");
        if status.is_server_error()
            || status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::REQUEST_TIMEOUT
        {
            Attempt::Retry {
                after: retry_after,
                why,
            }
        } else {
            Attempt::Rejected(why)
        }
    }
}
