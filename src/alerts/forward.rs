//! `feedback-pipeline alerts forward`: reads `agent-alerts` in a consumer group and delivers
//! each record to PagerDuty and/or Slack. A receiver outage is retried with backoff until it
//! ends, and a record's offset is committed only once every receiver took it, so nothing is
//! lost; a receiver that rejects a record as invalid (4xx other than 408/429) is logged and
//! skipped, since retrying cannot fix it.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message;
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

/// What the forwarder has done.
#[derive(Debug, Default)]
pub struct ForwarderStats {
    /// Records every receiver took (offset committed).
    pub forwarded: AtomicU64,
    /// Deliveries accepted by a receiver.
    pub delivered: AtomicU64,
    /// Attempts that failed and were retried.
    pub retries: AtomicU64,
    /// Deliveries a receiver rejected as invalid (skipped).
    pub rejected: AtomicU64,
    /// Records on the topic that are not alert records (skipped).
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

/// The forwarder.
pub struct Forwarder {
    consumer: StreamConsumer,
    client: reqwest::Client,
    receivers: Vec<Receiver>,
    max_backoff: Duration,
    stats: Arc<ForwarderStats>,
}

impl Forwarder {
    /// Joins the forwarder group on the alert topic of `config`.
    pub fn new(config: &Config, servers: &str) -> Result<Self, ForwardError> {
        let receivers = Receiver::from_config(config);
        if receivers.is_empty() {
            return Err(ForwardError::NoReceiver);
        }
        let consumer: StreamConsumer = config
            .kafka
            .client_config(servers)
            .set("group.id", &config.alerts.forwarder_group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .create()?;
        consumer.subscribe(&[config.topics.alerts.as_str()])?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .user_agent(concat!("feedback-pipeline/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            consumer,
            client,
            receivers,
            max_backoff: config.alerts.max_backoff,
            stats: Arc::default(),
        })
    }

    /// The counters, shared.
    pub fn stats(&self) -> Arc<ForwarderStats> {
        Arc::clone(&self.stats)
    }

    /// Forwards records until `shutdown` completes. A record being retried at shutdown is
    /// not committed: the next run delivers it again.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), ForwardError> {
        tokio::pin!(shutdown);
        loop {
            let message = tokio::select! {
                _ = &mut shutdown => return Ok(()),
                message = self.consumer.recv() => message?,
            };
            match message.payload().map(AlertRecord::from_json) {
                Some(Ok(record)) => {
                    tokio::select! {
                        _ = &mut shutdown => return Ok(()),
                        () = self.deliver(&record) => {}
                    }
                }
                other => {
                    self.stats.undecodable.fetch_add(1, Ordering::Relaxed);
                    let problem = match other {
                        Some(Err(err)) => err.to_string(),
                        _ => "no payload".to_owned(),
                    };
                    tracing::error!(
                        partition = message.partition(),
                        offset = message.offset(),
                        %problem,
                        "not an alert record; skipped"
                    );
                }
            }
            self.consumer.commit_message(&message, CommitMode::Sync)?;
            self.stats.forwarded.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Delivers `record` to every receiver, retrying each until it answers.
    async fn deliver(&self, record: &AlertRecord) {
        for receiver in &self.receivers {
            let mut backoff = Duration::from_millis(250).min(self.max_backoff);
            loop {
                match self.attempt(receiver, record).await {
                    Attempt::Delivered => {
                        self.stats.delivered.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(receiver = receiver.name(), dedup_key = %record.dedup_key, action = record.action.as_str(), "alert delivered");
                        break;
                    }
                    Attempt::Rejected(why) => {
                        self.stats.rejected.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(receiver = receiver.name(), dedup_key = %record.dedup_key, %why, "receiver rejected the alert; skipped");
                        break;
                    }
                    Attempt::Retry { after, why } => {
                        self.stats.retries.fetch_add(1, Ordering::Relaxed);
                        let wait = after.unwrap_or(backoff).min(self.max_backoff);
                        tracing::warn!(receiver = receiver.name(), dedup_key = %record.dedup_key, %why, wait_ms = wait.as_millis() as u64, "delivery failed; retrying");
                        tokio::time::sleep(wait).await;
                        backoff = (backoff * 2).min(self.max_backoff);
                    }
                }
            }
        }
    }

    async fn attempt(&self, receiver: &Receiver, record: &AlertRecord) -> Attempt {
        let (url, body) = receiver.request(record);
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
