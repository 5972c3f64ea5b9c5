//! [`MergeStage`]: the instance's share of the repartition topic, read by a consumer group
//! of its own (`<consumer group>-merge`), merged per query and repartition partition, and
//! committed once the windows its records feed are final and their results acknowledged.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use datafusion_common::Result as DfResult;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaResult;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::{ClientContext, TopicPartitionList};

use super::checkpoint::MergeCheckpoint;
use super::merge_query::MergeQuery;
use super::wire::{RepartitionRecord, decode};
use crate::config::Config;
use crate::metrics::ProcessorStats;
use crate::processor::sinks::Sends;
use crate::processor::sql::QueryDefinition;
use crate::processor::sql::partial::from_ipc;
use crate::processor::windows::{ClosedWindow, OffsetTracker, checkpoint};
use crate::window::Millis;

/// The shortest time between two commits made because windows were emitted (a busy merge
/// emits every turn).
const EMITTED_COMMIT_GAP: Duration = Duration::from_millis(100);

/// The repartition topic of the consumer group `group`.
pub fn repartition_topic(group: &str) -> String {
    format!("{group}-repartition")
}

/// Notes the merge consumer's rebalances for the loop.
#[derive(Default)]
pub struct MergeContext {
    revoked: Mutex<Vec<i32>>,
    assigned: Mutex<bool>,
    /// Commits answered (served by `poll`).
    commits_answered: std::sync::atomic::AtomicU64,
}

impl MergeContext {
    fn take_revoked(&self) -> Vec<i32> {
        std::mem::take(&mut *self.revoked.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn take_assigned(&self) -> bool {
        std::mem::take(&mut *self.assigned.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl ClientContext for MergeContext {}

impl ConsumerContext for MergeContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            let mut revoked = self.revoked.lock().unwrap_or_else(|p| p.into_inner());
            revoked.extend(list.elements().iter().map(|e| e.partition()));
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(_) = rebalance {
            *self.assigned.lock().unwrap_or_else(|p| p.into_inner()) = true;
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _: &TopicPartitionList) {
        if let Err(err) = result {
            tracing::warn!(%err, "a repartition commit failed");
        }
        self.commits_answered
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// What one read of the repartition topic changed.
#[derive(Debug, Default)]
pub struct MergeRead {
    /// Records read.
    pub records: usize,
    /// Records that were no repartition record (logged, skipped).
    pub unreadable: usize,
    /// Partials for windows already final here (dropped).
    pub late: usize,
    /// Whether partitions were assigned (alert state is then read back).
    pub assigned: bool,
}

/// The merge stage of one instance.
pub struct MergeStage {
    consumer: BaseConsumer<MergeContext>,
    definitions: Vec<Arc<QueryDefinition>>,
    sources: i32,
    max_groups: usize,
    merging: BTreeMap<(String, i32), MergeQuery>,
    /// Per held partition: the checkpoint its earlier owner committed.
    restored: HashMap<i32, MergeCheckpoint>,
    offsets: OffsetTracker,
    /// A window was emitted since the last commit: commit without waiting for the interval,
    /// so a new owner seldom judges it again.
    emitted_since_commit: bool,
    pending_commit: Option<(TopicPartitionList, u64)>,
    commit_interval: Duration,
    last_commit_at: Instant,
    topic: String,
    stats: Arc<ProcessorStats>,
}

impl MergeStage {
    /// Subscribes to the repartition topic of `config`'s group, merging `definitions` (over
    /// the source partitions [`Self::set_sources`] gives).
    pub fn new(
        config: &Config,
        servers: &str,
        definitions: Vec<Arc<QueryDefinition>>,
        stats: Arc<ProcessorStats>,
    ) -> KafkaResult<Self> {
        let group = &config.kafka.consumer_group;
        let topic = repartition_topic(group);
        let consumer: BaseConsumer<MergeContext> = config
            .kafka
            .consumer_config(servers)
            .set("group.id", format!("{group}-merge"))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("partition.assignment.strategy", "range")
            .create_with_context(MergeContext::default())?;
        consumer.subscribe(&[topic.as_str()])?;
        Ok(Self {
            consumer,
            definitions,
            sources: 0,
            max_groups: config.processor.max_groups_per_window,
            merging: BTreeMap::new(),
            restored: HashMap::new(),
            offsets: OffsetTracker::default(),
            emitted_since_commit: false,
            pending_commit: None,
            commit_interval: config.processor.commit_interval,
            last_commit_at: Instant::now(),
            topic,
            stats,
        })
    }

    /// The repartition topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Sets the number of source partitions a window waits for.
    pub fn set_sources(&mut self, sources: i32) {
        self.sources = sources;
    }

    /// Reads what has arrived (at most `max` records) without waiting, and applies the
    /// rebalances served meanwhile before any record of a new assignment is taken.
    pub fn read(&mut self, max: usize) -> DfResult<MergeRead> {
        let mut read = MergeRead::default();
        for _ in 0..max {
            // Owned, so the merge state can change while the consumer is borrowed.
            let polled = self
                .consumer
                .poll(Duration::ZERO)
                .map(|result| result.map(|message| message.detach()));
            self.apply_rebalances(&mut read);
            match polled {
                None => break,
                Some(Err(err)) => tracing::warn!(%err, "repartition consumer error"),
                Some(Ok(message)) => {
                    read.records += 1;
                    self.take(&message, &mut read)?;
                }
            }
        }
        Ok(read)
    }

    /// Forgets revoked partitions, and reads the checkpoints of assigned ones.
    fn apply_rebalances(&mut self, read: &mut MergeRead) {
        let context = self.consumer.context();
        let revoked = context.take_revoked();
        let assigned = context.take_assigned();
        for &partition in &revoked {
            self.merging.retain(|(_, r), _| *r != partition);
            self.restored.remove(&partition);
            self.offsets.remove(partition);
            self.pending_commit = None;
        }
        if assigned {
            self.restore_checkpoints();
            read.assigned = true;
        }
        if assigned || !revoked.is_empty() {
            let held = self.consumer.assignment().map_or(0, |list| list.count());
            self.stats.set_merge_partitions(held);
        }
    }

    /// Reads the checkpoints of the partitions held (blocking). A failure is logged: the
    /// partitions then replay as if new, and windows emitted before may be judged again.
    fn restore_checkpoints(&mut self) {
        let assignment = self.consumer.assignment().unwrap_or_default();
        let partitions: Vec<i32> = assignment
            .elements_for_topic(&self.topic)
            .iter()
            .map(|e| e.partition())
            .filter(|p| !self.restored.contains_key(p))
            .collect();
        if partitions.is_empty() {
            return;
        }
        let loaded = tokio::task::block_in_place(|| {
            checkpoint::load::<MergeCheckpoint, _>(&self.consumer, &self.topic, &partitions)
        });
        match loaded {
            Ok(found) => {
                tracing::info!(
                    ?partitions,
                    restored = found.len(),
                    "merge checkpoints read"
                );
                for partition in partitions {
                    let restored = found.get(&partition).cloned().unwrap_or_default();
                    self.restored.insert(partition, restored);
                }
            }
            Err(err) => tracing::warn!(
                %err, ?partitions,
                "reading merge checkpoints failed; windows emitted before may be judged again"
            ),
        }
    }

    fn take(&mut self, message: &OwnedMessage, read: &mut MergeRead) -> DfResult<()> {
        let (partition, offset) = (message.partition(), message.offset());
        let payload = message.payload().unwrap_or_default();
        match decode(message.headers(), payload) {
            Ok(RepartitionRecord::Partial {
                query,
                window,
                source,
                handed_at,
            }) => {
                let replayed = self
                    .restored
                    .get(&partition)
                    .is_some_and(|c| offset < c.read_through);
                let Some(merge) = self.merge_query(&query, partition)? else {
                    return Ok(());
                };
                let end = merge.definition().spec().window_at(window).end;
                let partial = from_ipc(payload)?;
                if !merge.put((window, source), &partial, handed_at, replayed)? {
                    read.late += 1;
                }
                self.offsets.record(partition, offset, end);
            }
            Ok(RepartitionRecord::HandOver(hand_over)) => {
                for (query, sources) in &hand_over.bounds {
                    if let Some(merge) = self.merge_query(query, partition)? {
                        for (&source, &bounds) in sources {
                            merge.report(source, bounds);
                        }
                    }
                }
                self.offsets.record(partition, offset, Millis::MIN);
            }
            Err(reason) => {
                read.unreadable += 1;
                tracing::warn!(partition, offset, %reason, "skipping a repartition record");
                self.offsets.record(partition, offset, Millis::MIN);
            }
        }
        Ok(())
    }

    /// The merge state of `query` in repartition partition `partition`; `None` for a query
    /// this instance does not run.
    fn merge_query(&mut self, query: &str, partition: i32) -> DfResult<Option<&mut MergeQuery>> {
        let key = (query.to_owned(), partition);
        if !self.merging.contains_key(&key) {
            let Some(definition) = self.definitions.iter().find(|d| d.name == query) else {
                return Ok(None);
            };
            let mut merge = MergeQuery::new(Arc::clone(definition), self.sources, self.max_groups)?;
            let restored = self.restored.get(&partition);
            if let Some(through) = restored.and_then(|c| c.emitted_through(query)) {
                merge.restore(through);
            }
            self.merging.insert(key.clone(), merge);
        }
        Ok(self.merging.get_mut(&key))
    }

    /// The windows that are complete (or updated) now, each as one repartition partition's
    /// piece.
    pub fn close(&mut self) -> DfResult<Vec<ClosedWindow>> {
        let mut closed = Vec::new();
        let now = chrono::Utc::now().timestamp_millis();
        for ((_, partition), merge) in &mut self.merging {
            for (mut result, handed_at) in merge.close()? {
                if let Some(at) = handed_at {
                    self.stats
                        .observe_merge(now.saturating_sub(at).max(0) as f64 / 1000.0);
                }
                self.emitted_since_commit |= !result.update;
                result.partition = Some(*partition);
                let query = Arc::clone(merge.definition());
                closed.push(ClosedWindow { query, result });
            }
        }
        Ok(closed)
    }

    /// Per merged query: its window size and how far every window is handed over in every
    /// repartition partition held (windows without rows up to there are quiet).
    pub fn quiet(&self) -> Vec<(&str, Millis, Millis)> {
        let mut bounds: BTreeMap<&str, (Millis, Millis)> = BTreeMap::new();
        for ((query, _), merge) in &self.merging {
            let size = merge.definition().spec().size;
            let entry = bounds.entry(query.as_str()).or_insert((size, Millis::MAX));
            entry.1 = entry.1.min(merge.emitted_bound());
        }
        bounds
            .into_iter()
            .map(|(query, (size, bound))| (query, size, bound))
            .collect()
    }

    /// Open (window, source) panes and their groups over all merged queries.
    pub fn open_state(&self) -> (usize, usize) {
        self.merging
            .values()
            .map(MergeQuery::open_state)
            .fold((0, 0), |(p, g), (mp, mg)| (p + mp, g + mg))
    }

    /// Every commit interval (or sooner once a window was emitted), takes the offsets whose
    /// windows are final here, with each partition's checkpoint, and commits them once every
    /// record queued until then (the merged results and their alerts) is acknowledged.
    pub fn commit(&mut self, sends: &Sends) {
        if let Some((list, sequence)) = &self.pending_commit
            && sends.acknowledged_through() >= *sequence
        {
            if let Err(err) = self.consumer.commit(list, CommitMode::Async) {
                tracing::warn!(%err, "committing repartition offsets failed; will retry");
            }
            self.pending_commit = None;
        }
        let since = self.last_commit_at.elapsed();
        let due = since >= self.commit_interval
            || (self.emitted_since_commit && since >= EMITTED_COMMIT_GAP);
        if self.pending_commit.is_some() || !due {
            return;
        }
        self.last_commit_at = Instant::now();
        self.emitted_since_commit = false;
        let list = self.commit_list();
        if list.count() > 0 {
            self.pending_commit = Some((list, sends.sequence() - 1));
        }
    }

    /// Commits what [`Self::commit`] would, now, and waits up to `limit` for the answer (on
    /// shutdown, once every send is settled). Not a sync commit: during a rebalance the
    /// commit waits for the group, and the group for this consumer's polls.
    pub fn finish(&mut self, limit: Duration) {
        let list = self.commit_list();
        if list.count() == 0 {
            return;
        }
        let answered = &self.consumer.context().commits_answered;
        let before = answered.load(std::sync::atomic::Ordering::Relaxed);
        if let Err(err) = self.consumer.commit(&list, CommitMode::Async) {
            tracing::warn!(%err, "committing repartition offsets on shutdown failed");
            return;
        }
        let deadline = Instant::now() + limit;
        tokio::task::block_in_place(|| {
            while answered.load(std::sync::atomic::Ordering::Relaxed) == before
                && Instant::now() < deadline
            {
                // Serves the commit's answer (and any rebalance); records are not taken now.
                let _ = self.consumer.poll(Duration::from_millis(50));
            }
        });
    }

    /// Per partition read: the offset before its oldest record of a window not final, and
    /// its checkpoint.
    fn commit_list(&mut self) -> TopicPartitionList {
        let merging = &self.merging;
        let final_bound = |partition: i32| {
            merging
                .iter()
                .filter(|((_, r), _)| *r == partition)
                .map(|(_, merge)| merge.final_bound())
                .min()
                .unwrap_or(Millis::MAX)
        };
        let positions = self.offsets.positions(final_bound);
        let read = self.offsets.read_positions();
        let mut list = TopicPartitionList::new();
        for (partition, offset) in positions {
            let mut checkpoint = self.restored.get(&partition).cloned().unwrap_or_default();
            let read_through = read.get(&partition).copied().unwrap_or(0);
            for ((query, _), merge) in merging.iter().filter(|((_, r), _)| *r == partition) {
                checkpoint.advance(read_through, (query, merge.emitted_through()));
            }
            let added =
                checkpoint::add_commit(&mut list, &self.topic, partition, offset, &checkpoint);
            if let Err(err) = added {
                tracing::warn!(%err, partition, "a repartition commit left out");
            }
        }
        list
    }
}
