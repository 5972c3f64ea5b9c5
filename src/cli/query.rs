//! `feedback-pipeline query "<SQL with a WINDOW clause>"`: reads the outcome topic once, from
//! the beginning to its current end, runs the query over it and prints every window's rows.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use clap::Args;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

use feedback_pipeline::config::Config;
use feedback_pipeline::event::OutcomeEvent;
use feedback_pipeline::processor::QueryDefinition;
use feedback_pipeline::processor::sinks::window_records;
use feedback_pipeline::processor::{ClosedWindow, EngineSettings, WindowEngine};

const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// Options of `query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The query, e.g. "SELECT agent_name, COUNT(*) FROM agent_outcomes WINDOW TUMBLING (SIZE 1 HOUR) GROUP BY agent_name".
    sql: String,
    /// Only events at or after this time (RFC 3339).
    #[arg(long)]
    from: Option<DateTime<Utc>>,
    /// Only events before this time (RFC 3339).
    #[arg(long)]
    to: Option<DateTime<Utc>>,
    /// Print one JSON object per row instead of tables.
    #[arg(long)]
    json: bool,
}

/// Runs an ad-hoc window query over the topic's current contents.
pub async fn query(config: Config, args: QueryArgs) -> Result<(), Box<dyn std::error::Error>> {
    let Some(servers) = config.kafka.bootstrap_servers.clone() else {
        return Err(
            "KAFKA_BOOTSTRAP_SERVERS is not set: `query` reads the topic of a cluster".into(),
        );
    };
    let definition =
        std::sync::Arc::new(QueryDefinition::compile("query", "<query>", &args.sql).await?);
    let mut engine = WindowEngine::new(&[definition], one_pass_settings())?;
    let consumer: BaseConsumer = config
        .kafka
        .consumer_config(&servers)
        .set(
            "group.id",
            format!("feedback-pipeline-query-{}", uuid::Uuid::new_v4().simple()),
        )
        .set("enable.auto.commit", "false")
        .create()?;
    let topic = &config.topics.outcomes;
    let mut ends = assign_whole_topic(&consumer, topic)?;
    let started = Instant::now();
    let (read, rejected) = read_to_end(&consumer, topic, &mut ends, &mut engine, &args, started)?;
    let far_future = Utc::now().timestamp_millis() + 100 * 365 * 24 * 3600 * 1000;
    let closed = engine.advance(started + Duration::from_secs(400 * 24 * 3600), far_future)?;
    for window in &closed {
        print_window(window, args.json)?;
    }
    eprintln!(
        "{read} messages read, {rejected} rejected, {} windows",
        closed.len()
    );
    Ok(())
}

/// Settings for one pass over a topic: everything is read before any window closes, so
/// order does not matter, and the topic's size bounds the state.
fn one_pass_settings() -> EngineSettings {
    EngineSettings {
        out_of_orderness: Duration::from_secs(365 * 24 * 3600),
        grace: Duration::ZERO,
        idle_after: Duration::from_secs(365 * 24 * 3600),
        max_groups_per_window: usize::MAX,
        allowed_lateness: Duration::ZERO,
    }
}

/// Assigns every non-empty partition of `topic` from its beginning; returns each one's end
/// offset at this moment.
fn assign_whole_topic(
    consumer: &BaseConsumer,
    topic: &str,
) -> Result<HashMap<i32, i64>, Box<dyn std::error::Error>> {
    let metadata = consumer.fetch_metadata(Some(topic), METADATA_TIMEOUT)?;
    let mut assignment = TopicPartitionList::new();
    let mut ends = HashMap::new();
    for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
        let (low, high) = consumer.fetch_watermarks(topic, partition.id(), METADATA_TIMEOUT)?;
        if high > low {
            assignment.add_partition_offset(topic, partition.id(), Offset::Beginning)?;
            ends.insert(partition.id(), high);
        }
    }
    consumer.assign(&assignment)?;
    Ok(ends)
}

/// Reads every partition up to its end offset into `engine`; returns the messages read and
/// those that were no valid event.
fn read_to_end(
    consumer: &BaseConsumer,
    topic: &str,
    ends: &mut HashMap<i32, i64>,
    engine: &mut WindowEngine,
    args: &QueryArgs,
    started: Instant,
) -> Result<(u64, u64), Box<dyn std::error::Error>> {
    let (mut read, mut rejected) = (0u64, 0u64);
    let mut pending: HashMap<i32, Vec<(i64, OutcomeEvent)>> = HashMap::new();
    while !ends.is_empty() {
        let Some(message) = consumer.poll(Duration::from_secs(5)) else {
            // What is left below an end offset may be control records (transactions), which
            // advance the position without reaching the application.
            finished_by_position(consumer, topic, ends)?;
            if ends.is_empty() {
                break;
            }
            return Err(format!("the topic stopped answering after {read} messages").into());
        };
        let message = message?;
        read += 1;
        let (partition, offset) = (message.partition(), message.offset());
        if ends.get(&partition).is_some_and(|&end| offset + 1 >= end) {
            ends.remove(&partition);
        }
        match OutcomeEvent::from_json_slice(message.payload().unwrap_or_default()) {
            Ok(event) if in_range(&event, args) => {
                let batch = pending.entry(partition).or_default();
                batch.push((offset, event));
                if batch.len() >= 4096 {
                    engine.ingest_events(partition, &std::mem::take(batch), started)?;
                }
            }
            Ok(_) => {}
            Err(_) => rejected += 1,
        }
    }
    for (partition, batch) in pending {
        engine.ingest_events(partition, &batch, started)?;
    }
    Ok((read, rejected))
}

/// Prints a window's rows: as JSON lines, or under a heading as a table.
fn print_window(window: &ClosedWindow, json: bool) -> Result<(), Box<dyn std::error::Error>> {
    if json {
        for record in window_records(window) {
            println!("{}", record.value);
        }
        return Ok(());
    }
    println!(
        "window {} .. {}",
        DateTime::from_timestamp_millis(window.result.window.start).unwrap_or_default(),
        DateTime::from_timestamp_millis(window.result.window.end).unwrap_or_default()
    );
    let rows = std::slice::from_ref(&window.result.rows);
    println!("{}", arrow::util::pretty::pretty_format_batches(rows)?);
    Ok(())
}

fn in_range(event: &OutcomeEvent, args: &QueryArgs) -> bool {
    args.from.is_none_or(|from| event.timestamp >= from)
        && args.to.is_none_or(|to| event.timestamp < to)
}

/// Removes from `ends` the partitions whose read position has reached their end offset.
fn finished_by_position(
    consumer: &BaseConsumer,
    topic: &str,
    ends: &mut HashMap<i32, i64>,
) -> Result<(), Box<dyn std::error::Error>> {
    let positions = consumer.position()?;
    ends.retain(|&partition, &mut end| {
        !matches!(
            positions.find_partition(topic, partition).map(|p| p.offset()),
            Some(Offset::Offset(position)) if position >= end
        )
    });
    Ok(())
}
