//! The window engine against values computed independently by plain loops over the same
//! out-of-order events: counts exact, averages to 1e-9, p95 within the sketch's error.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, Int64Type, TimestampMillisecondType};
use chrono::{TimeZone, Utc};

use common::rng::Rng;
use feedback_pipeline::event::{OutcomeEvent, OutcomeStatus};
use feedback_pipeline::processor::QueryDefinition;
use feedback_pipeline::processor::{ClosedWindow, EngineSettings, WindowEngine};

const MINUTE: i64 = 60_000;
const BASE: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

struct Generated {
    /// (partition, offset, event), per partition in offset order.
    partitions: Vec<Vec<(i64, OutcomeEvent)>>,
}

fn generate(events: usize, agents: usize, partitions: usize, span_ms: i64) -> Generated {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut per_partition: Vec<Vec<OutcomeEvent>> = vec![Vec::new(); partitions];
    for n in 0..events {
        let agent = rng.below(agents as u64) as usize;
        // Mostly increasing time with up to 20 s of disorder.
        let time = BASE + (n as i64 * span_ms) / events as i64 - rng.below(20_000) as i64;
        let status = match rng.below(10) {
            0 | 1 => OutcomeStatus::Failure,
            2 => OutcomeStatus::Timeout,
            _ => OutcomeStatus::Success,
        };
        let latency = 10.0 + rng.below(5_000) as f64 + (rng.below(1000) as f64) / 1000.0;
        let mut event = OutcomeEvent::builder(format!("agent_{agent}"), "act")
            .agent_type(if agent.is_multiple_of(2) {
                "reasoning"
            } else {
                "retrieval"
            })
            .status(status)
            .tokens(rng.below(500), rng.below(200))
            .build()
            .unwrap();
        event.timestamp = Utc.timestamp_millis_opt(time).unwrap();
        event.latency_ms = latency;
        event.duration_ms = latency;
        per_partition[agent % partitions].push(event);
    }
    Generated {
        partitions: per_partition
            .into_iter()
            .map(|events| {
                events
                    .into_iter()
                    .enumerate()
                    .map(|(offset, e)| (offset as i64, e))
                    .collect()
            })
            .collect(),
    }
}

async fn engine(queries: &[(&str, &str)]) -> WindowEngine {
    engine_with(queries, Duration::ZERO, Duration::from_secs(3600)).await
}

/// [`engine`] with an allowed lateness and an idle time.
async fn engine_with(
    queries: &[(&str, &str)],
    allowed_lateness: Duration,
    idle_after: Duration,
) -> WindowEngine {
    let mut definitions = Vec::new();
    for (name, sql) in queries {
        definitions.push(Arc::new(
            QueryDefinition::compile(name, name, sql).await.unwrap(),
        ));
    }
    WindowEngine::new(
        &definitions,
        EngineSettings {
            out_of_orderness: Duration::from_secs(30),
            grace: Duration::ZERO,
            idle_after,
            max_groups_per_window: 1_000_000,
            allowed_lateness,
        },
    )
    .unwrap()
}

/// Feeds every partition in interleaved chunks, closing windows as it goes, then closes all.
fn run(engine: &mut WindowEngine, data: &Generated) -> Vec<ClosedWindow> {
    let now = Instant::now();
    let mut closed = Vec::new();
    let mut cursors = vec![0usize; data.partitions.len()];
    let chunk = 97;
    loop {
        let mut progressed = false;
        for (partition, events) in data.partitions.iter().enumerate() {
            let from = cursors[partition];
            if from >= events.len() {
                continue;
            }
            let to = (from + chunk).min(events.len());
            let late = engine
                .ingest_events(partition as i32, &events[from..to], now)
                .unwrap();
            assert!(
                late.is_empty(),
                "no event is later than the allowed disorder"
            );
            cursors[partition] = to;
            progressed = true;
        }
        closed.extend(engine.advance(now, 0).unwrap());
        if !progressed {
            break;
        }
    }
    // Every partition quiet: the wall clock (far ahead) closes the rest.
    closed.extend(
        engine
            .advance(
                now + Duration::from_secs(7200),
                BASE + 365 * 24 * 60 * MINUTE,
            )
            .unwrap(),
    );
    closed
}

fn all_events(data: &Generated) -> Vec<&OutcomeEvent> {
    data.partitions.iter().flatten().map(|(_, e)| e).collect()
}

fn strings(batch: &RecordBatch, column: &str) -> Vec<String> {
    let array = batch.column_by_name(column).unwrap();
    let array = arrow::compute::cast(array, &arrow::datatypes::DataType::Utf8).unwrap();
    array
        .as_string::<i32>()
        .iter()
        .map(|v| v.unwrap_or("").to_owned())
        .collect()
}

fn ints(batch: &RecordBatch, column: &str) -> Vec<i64> {
    let array = batch.column_by_name(column).unwrap();
    array.as_primitive::<Int64Type>().values().to_vec()
}

fn floats(batch: &RecordBatch, column: &str) -> Vec<f64> {
    let array = batch.column_by_name(column).unwrap();
    let array = arrow::compute::cast(array, &arrow::datatypes::DataType::Float64).unwrap();
    array.as_primitive::<Float64Type>().values().to_vec()
}

#[tokio::test]
async fn tumbling_per_agent_aggregates_match_a_plain_loop() {
    let data = generate(20_000, 8, 4, 30 * MINUTE);
    let mut engine = engine(&[(
        "per_agent",
        "SELECT agent_name, COUNT(*) AS executions, AVG(latency_ms) AS avg_latency, \
                COUNT_IF(status = 'failure') / COUNT(*) AS error_rate, \
                SUM(tokens_used) AS tokens, \
                approx_percentile_cont(latency_ms, 0.95) AS p95_latency \
         FROM agent_outcomes WINDOW TUMBLING (SIZE 5 MINUTES) GROUP BY agent_name",
    )])
    .await;
    let closed = run(&mut engine, &data);

    // Expected: (window start, agent) -> latencies, failures, tokens.
    let mut expected: BTreeMap<(i64, String), (Vec<f64>, u64, u64)> = BTreeMap::new();
    for event in all_events(&data) {
        let start = event.timestamp.timestamp_millis().div_euclid(5 * MINUTE) * 5 * MINUTE;
        let entry = expected
            .entry((start, event.agent_name.clone()))
            .or_default();
        entry.0.push(event.latency_ms);
        entry.1 += u64::from(event.status == OutcomeStatus::Failure);
        entry.2 += event.tokens_used.unwrap_or(0);
    }
    let mut seen = 0;
    for window in &closed {
        let rows = &window.result.rows;
        let agents = strings(rows, "agent_name");
        let counts = rows
            .column_by_name("executions")
            .unwrap()
            .as_primitive::<Int64Type>()
            .values()
            .to_vec();
        let averages = floats(rows, "avg_latency");
        let error_rates = floats(rows, "error_rate");
        let tokens = floats(rows, "tokens");
        let p95 = floats(rows, "p95_latency");
        for row in 0..rows.num_rows() {
            let key = (window.result.window.start, agents[row].clone());
            let (latencies, failures, token_sum) = expected
                .get(&key)
                .unwrap_or_else(|| panic!("unexpected window {key:?}"));
            let n = latencies.len();
            assert_eq!(counts[row] as usize, n, "{key:?} count");
            let mean = latencies.iter().sum::<f64>() / n as f64;
            assert!(
                (averages[row] - mean).abs() < 1e-9,
                "{key:?} avg {} vs {mean}",
                averages[row]
            );
            let rate = *failures as f64 / n as f64;
            assert!(
                (error_rates[row] - rate).abs() < 1e-12,
                "{key:?} rate {} vs {rate}",
                error_rates[row]
            );
            assert_eq!(tokens[row] as u64, *token_sum, "{key:?} tokens");
            // The t-digest interpolates between samples: its estimate lies between the
            // samples at the 93rd and 97th percentile ranks (floor and ceiling).
            let mut sorted = latencies.clone();
            sorted.sort_by(f64::total_cmp);
            let (low, high) = (
                sorted[(0.93 * (n - 1) as f64).floor() as usize],
                sorted[((0.97 * (n - 1) as f64).ceil() as usize).min(n - 1)],
            );
            assert!(
                p95[row] >= low && p95[row] <= high,
                "{key:?} p95 {} outside [{low}, {high}] of {n} samples",
                p95[row]
            );
            seen += 1;
        }
    }
    assert_eq!(
        seen,
        expected.len(),
        "every (window, agent) emitted exactly once"
    );
}

#[tokio::test]
async fn the_briefs_queries_run_verbatim_over_hopping_windows() {
    let data = generate(12_000, 5, 3, 3 * 60 * MINUTE);
    let brief_avg = std::fs::read_to_string("sql/avg_latency_by_agent.sql").unwrap();
    let brief_rate = std::fs::read_to_string("sql/error_rate_by_hour.sql").unwrap();
    let mut engine = engine(&[
        ("avg_latency_by_agent", &brief_avg),
        ("error_rate_by_hour", &brief_rate),
        (
            "hopping",
            "SELECT WINDOWSTART AS window_from, WINDOWEND AS window_to, COUNT(*) AS n \
             FROM agent_outcomes WINDOW HOPPING (SIZE 1 HOUR, ADVANCE BY 15 MINUTES) \
             GROUP BY WINDOWSTART, WINDOWEND",
        ),
    ])
    .await;
    let closed = run(&mut engine, &data);
    let events = all_events(&data);

    let by_query = |name: &'static str| closed.iter().filter(move |c| c.query.name == name);
    // Error rate by hour: a ratio, not integer division.
    let mut rates = 0;
    for window in by_query("error_rate_by_hour") {
        let rows = &window.result.rows;
        assert_eq!(rows.num_rows(), 1);
        let start = window.result.window.start;
        let in_hour: Vec<_> = events
            .iter()
            .filter(|e| (start..start + 60 * MINUTE).contains(&e.timestamp.timestamp_millis()))
            .collect();
        let failures = in_hour
            .iter()
            .filter(|e| e.status == OutcomeStatus::Failure)
            .count();
        let expected = failures as f64 / in_hour.len() as f64;
        let got = floats(rows, "error_rate")[0];
        assert!(
            (got - expected).abs() < 1e-12,
            "hour {start}: {got} vs {expected}"
        );
        assert!(got > 0.0 && got < 1.0);
        let hour = rows
            .column_by_name("hour")
            .unwrap()
            .as_primitive::<TimestampMillisecondType>()
            .value(0);
        assert_eq!(hour, start, "WINDOWSTART is the window's start");
        rates += 1;
    }
    assert!(rates >= 3, "three hours and a bit of data: {rates} windows");
    assert!(by_query("avg_latency_by_agent").count() >= 36 - 1);

    // Hopping: each window counts the events in [start, start + 1 h).
    let mut hops = 0;
    for window in by_query("hopping") {
        let (start, end) = (window.result.window.start, window.result.window.end);
        assert_eq!(end - start, 60 * MINUTE);
        let expected = events
            .iter()
            .filter(|e| (start..end).contains(&e.timestamp.timestamp_millis()))
            .count();
        let rows = &window.result.rows;
        assert_eq!(
            rows.column_by_name("n")
                .unwrap()
                .as_primitive::<Int64Type>()
                .value(0) as usize,
            expected
        );
        assert_eq!(
            rows.column_by_name("window_to")
                .unwrap()
                .as_primitive::<TimestampMillisecondType>()
                .value(0),
            end
        );
        hops += 1;
    }
    // 3 h of data (plus disorder) in 1 h windows every 15 min: 12 full-span windows and the edges.
    assert!(hops >= 12, "{hops} hopping windows");
}

#[tokio::test]
async fn late_events_are_reported_and_not_merged() {
    let data = generate(2_000, 2, 1, 20 * MINUTE);
    let mut engine = engine(&[(
        "count",
        "SELECT agent_name, COUNT(*) AS n FROM agent_outcomes WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY agent_name",
    )])
    .await;
    let closed = run(&mut engine, &data);
    let total: i64 = closed
        .iter()
        .map(|c| {
            c.result
                .rows
                .column_by_name("n")
                .unwrap()
                .as_primitive::<Int64Type>()
                .values()
                .iter()
                .sum::<i64>()
        })
        .sum();
    assert_eq!(total, 2_000);
    let mut late = data.partitions[0][0].1.clone();
    late.timestamp = Utc.timestamp_millis_opt(BASE).unwrap();
    let reported = engine
        .ingest_events(0, &[(9_999, late)], Instant::now())
        .unwrap();
    assert_eq!(reported.len(), 1);
    assert_eq!(reported[0].queries, vec!["count".to_owned()]);
    let after = engine
        .advance(
            Instant::now() + Duration::from_secs(7200),
            BASE + 400 * 24 * 60 * MINUTE,
        )
        .unwrap();
    assert!(
        after.is_empty(),
        "a late event never re-opens or re-emits a window"
    );
}

#[tokio::test]
async fn a_query_fills_only_the_columns_it_reads() {
    let query = QueryDefinition::compile(
        "q",
        "inline",
        "SELECT agent_name, WINDOWSTART AS ws, AVG(latency_ms) AS avg_latency_ms \
         FROM agent_outcomes WHERE model IS NOT NULL \
         WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY agent_name, WINDOWSTART \
         HAVING COUNT_IF(status = 'failure') > 0",
    )
    .await
    .unwrap();
    assert_eq!(
        query.table_columns.names(),
        [
            "agent_name",
            "timestamp",
            "latency_ms",
            "status",
            "model",
            "window_start"
        ]
    );
}

#[tokio::test]
async fn a_window_function_is_refused_for_what_it_is() {
    let sql = "SELECT agent_name, row_number() OVER (ORDER BY agent_name) AS n \
        FROM agent_outcomes WINDOW TUMBLING (SIZE 1 MINUTE)";
    let err = QueryDefinition::compile("ranked", "sql/ranked.sql", sql)
        .await
        .err()
        .unwrap();
    let text = err.to_string();
    assert!(text.contains("WindowAggr"), "{text}");
    assert!(text.contains("above the aggregate"), "{text}");
}

#[tokio::test]
async fn broken_sql_is_rejected_with_file_line_and_reason() {
    let err = QueryDefinition::compile("bad", "sql/bad.sql", "SELECT agent_name,\n  AVG(latency_ms\nFROM agent_outcomes\nWINDOW TUMBLING (SIZE 1 MINUTE)\nGROUP BY agent_name")
        .await
        .err()
        .unwrap();
    let text = err.to_string();
    assert!(text.starts_with("sql/bad.sql"), "{text}");
    assert!(err.line.is_some(), "{text}");
    let err = QueryDefinition::compile(
        "bad",
        "sql/bad.sql",
        "SELECT nope FROM agent_outcomes WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY nope",
    )
    .await
    .err()
    .unwrap();
    assert!(err.to_string().contains("nope"), "{err}");
    let err = QueryDefinition::compile(
        "bad",
        "sql/bad.sql",
        "SELECT 1\nFROM agent_outcomes\nWINDOW TUMBLING (SIZE 1 WEEKS)",
    )
    .await
    .err()
    .unwrap();
    assert_eq!(err.line, Some(3), "{err}");
}

#[tokio::test]
async fn a_restored_engine_replays_to_the_results_of_an_uninterrupted_one() {
    let data = generate(6_000, 8, 4, 10 * MINUTE);
    let sql = (
        "hop",
        "SELECT agent_name, COUNT(*) AS n, SUM(latency_ms) AS total FROM agent_outcomes \
         WINDOW HOPPING (SIZE 1 MINUTE, ADVANCE BY 30 SECONDS) GROUP BY agent_name",
    );
    let key = |c: &ClosedWindow, row: usize| {
        (
            c.result.window.start,
            strings(&c.result.rows, "agent_name")[row].clone(),
        )
    };
    let collect = |closed: &[ClosedWindow], into: &mut BTreeMap<(i64, String), (i64, f64)>| {
        for c in closed {
            let n = ints(&c.result.rows, "n");
            let total = floats(&c.result.rows, "total");
            for (row, &total) in total.iter().enumerate() {
                let value = (n[row], total);
                if let Some(previous) = into.insert(key(c, row), value) {
                    assert_eq!(previous.0, value.0, "a re-emitted window must not change");
                }
            }
        }
    };
    let mut reference = BTreeMap::new();
    let mut whole = engine(&[sql]).await;
    collect(&run(&mut whole, &data), &mut reference);

    // First life: the first third of every partition, windows closed as far as it allows.
    let now = Instant::now();
    let mut first = engine(&[sql]).await;
    let mut crashed = BTreeMap::new();
    let cut: Vec<usize> = data.partitions.iter().map(|p| p.len() / 3).collect();
    for (partition, events) in data.partitions.iter().enumerate() {
        first
            .ingest_events(partition as i32, &events[..cut[partition]], now)
            .unwrap();
    }
    collect(&first.advance(now, 0).unwrap(), &mut crashed);
    let positions = first.commit_positions();
    let read = first.read_positions();
    let checkpoints: Vec<_> = (0..data.partitions.len() as i32)
        .map(|p| first.checkpoint(p, read[&p]))
        .collect();

    // Second life: restored, reading again from the committed positions.
    let mut second = engine(&[sql]).await;
    for (partition, checkpoint) in checkpoints.iter().enumerate() {
        second.restore(partition as i32, checkpoint);
    }
    let replay = Generated {
        partitions: data
            .partitions
            .iter()
            .enumerate()
            .map(|(p, events)| {
                events
                    .iter()
                    .filter(|(offset, _)| *offset >= positions[&(p as i32)])
                    .cloned()
                    .collect()
            })
            .collect(),
    };
    collect(&run(&mut second, &replay), &mut crashed);
    for (key, (n, total)) in &reference {
        let (got_n, got_total) = crashed[key];
        assert_eq!(got_n, *n, "window {key:?} after a restart");
        // Sums of the same numbers in another order may differ in the last bits.
        assert!(
            (got_total - total).abs() <= 1e-9 * total.abs(),
            "window {key:?}"
        );
    }
    assert_eq!(crashed.len(), reference.len());
}

#[tokio::test]
async fn closing_windows_midway_keeps_the_panes_later_windows_need() {
    let data = generate(6_000, 8, 4, 10 * MINUTE);
    let sql = (
        "hop",
        "SELECT agent_name, COUNT(*) AS n FROM agent_outcomes \
         WINDOW HOPPING (SIZE 1 MINUTE, ADVANCE BY 30 SECONDS) GROUP BY agent_name",
    );
    let count = |closed: &[ClosedWindow]| -> BTreeMap<(i64, String), i64> {
        let mut out = BTreeMap::new();
        for c in closed {
            let agents = strings(&c.result.rows, "agent_name");
            let n = c
                .result
                .rows
                .column_by_name("n")
                .unwrap()
                .as_primitive::<Int64Type>();
            for (row, agent) in agents.iter().enumerate() {
                out.insert((c.result.window.start, agent.clone()), n.value(row));
            }
        }
        out
    };
    let mut whole = engine(&[sql]).await;
    let reference = count(&run(&mut whole, &data));
    let now = Instant::now();
    let mut split = engine(&[sql]).await;
    let mut closed = Vec::new();
    for (partition, events) in data.partitions.iter().enumerate() {
        split
            .ingest_events(partition as i32, &events[..events.len() / 3], now)
            .unwrap();
    }
    closed.extend(split.advance(now, 0).unwrap());
    let rest = Generated {
        partitions: data
            .partitions
            .iter()
            .map(|p| p[p.len() / 3..].to_vec())
            .collect(),
    };
    closed.extend(run(&mut split, &rest));
    assert_eq!(count(&closed), reference);
}

#[tokio::test]
async fn a_jump_of_millennia_between_events_closes_only_windows_with_data() {
    let mut engine = engine(&[
        (
            "per_agent",
            "SELECT agent_name, COUNT(*) AS n FROM agent_outcomes \
             WINDOW HOPPING (SIZE 10 SECONDS, ADVANCE BY 5 SECONDS) GROUP BY agent_name",
        ),
        (
            "overall",
            "SELECT COUNT(*) AS n FROM agent_outcomes WINDOW TUMBLING (SIZE 1 SECOND)",
        ),
    ])
    .await;
    // Year -9999, 1970, 2026 and ten years later, each a partition's next event: a loop over
    // the empty windows between them would take days.
    let times = [
        -377_705_116_800_000,
        0,
        BASE,
        BASE + 10 * 365 * 24 * 60 * MINUTE,
    ];
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let now = Instant::now();
        let mut closed = 0;
        for (offset, &time) in times.iter().enumerate() {
            let mut event = OutcomeEvent::builder("agent_a", "act").build().unwrap();
            event.timestamp = Utc.timestamp_millis_opt(time).unwrap();
            let late = engine
                .ingest_events(0, &[(offset as i64, event)], now)
                .unwrap();
            assert!(late.is_empty(), "later events are never late");
            closed += engine.advance(now, 0).unwrap().len();
        }
        let _ = done.send(closed);
    });
    let closed = finished
        .recv_timeout(Duration::from_secs(60))
        .expect("closing windows costs the windows with data, not the years between them");
    // The three earlier events close in both queries: 2 hopping windows + 1 tumbling each.
    assert_eq!(closed, 9);
}

#[tokio::test]
async fn past_the_group_limit_new_groups_are_refused_and_old_ones_stay_exact() {
    let definition = Arc::new(
        QueryDefinition::compile(
            "per_agent",
            "per_agent",
            "SELECT agent_name, COUNT(*) AS n FROM agent_outcomes \
             WHERE status <> 'timeout' WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY agent_name",
        )
        .await
        .unwrap(),
    );
    let mut engine = WindowEngine::new(
        &[definition],
        EngineSettings {
            out_of_orderness: Duration::ZERO,
            grace: Duration::ZERO,
            idle_after: Duration::from_secs(3600),
            max_groups_per_window: 5,
            allowed_lateness: Duration::ZERO,
        },
    )
    .unwrap();
    // 20 agents, 3 events each, in one window; every fourth event a timeout the WHERE drops.
    let mut events = Vec::new();
    for round in 0..3 {
        for agent in 0..20 {
            let n = round * 20 + agent;
            let status = if n % 4 == 3 {
                OutcomeStatus::Timeout
            } else {
                OutcomeStatus::Success
            };
            let mut event = OutcomeEvent::builder(format!("agent_{agent:02}"), "act")
                .status(status)
                .build()
                .unwrap();
            event.timestamp = Utc.timestamp_millis_opt(BASE + n as i64).unwrap();
            events.push((n as i64, event));
        }
    }
    let now = Instant::now();
    let rejected = engine.ingest_events(0, &events, now).unwrap();
    // The first five agents seen (among events the WHERE keeps) hold the window's groups.
    let mut admitted = Vec::new();
    for (_, event) in &events {
        if event.status != OutcomeStatus::Timeout
            && !admitted.contains(&event.agent_name)
            && admitted.len() < 5
        {
            admitted.push(event.agent_name.clone());
        }
    }
    let expected_rejected: Vec<usize> = events
        .iter()
        .enumerate()
        .filter(|(_, (_, e))| {
            e.status != OutcomeStatus::Timeout && !admitted.contains(&e.agent_name)
        })
        .map(|(i, _)| i)
        .collect();
    let got: Vec<usize> = rejected.iter().map(|r| r.index).collect();
    assert_eq!(
        got, expected_rejected,
        "exactly the events of new groups past the limit"
    );
    assert!(
        rejected
            .iter()
            .all(|r| r.rejection == feedback_pipeline::processor::windows::Rejection::TooManyGroups)
    );
    let mut closed = engine.advance(now, 0).unwrap();
    closed.extend(
        engine
            .advance(now + Duration::from_secs(7200), BASE + 3_600_000)
            .unwrap(),
    );
    assert_eq!(closed.len(), 1);
    let names = strings(&closed[0].result.rows, "agent_name");
    let mut sorted = admitted.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    let counts = closed[0]
        .result
        .rows
        .column_by_name("n")
        .unwrap()
        .as_primitive::<Int64Type>()
        .values()
        .to_vec();
    for (name, count) in names.iter().zip(counts) {
        let expected = events
            .iter()
            .filter(|(_, e)| &e.agent_name == name && e.status != OutcomeStatus::Timeout)
            .count() as i64;
        assert_eq!(count, expected, "{name} stays exact");
    }
}

const PER_MINUTE: (&str, &str) = (
    "count",
    "SELECT agent_name, COUNT(*) AS n FROM agent_outcomes \
     WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY agent_name",
);

/// An event of `agent` at `BASE + offset_ms`.
fn event_at(agent: &str, offset_ms: i64) -> OutcomeEvent {
    let mut event = OutcomeEvent::builder(agent, "act").build().unwrap();
    event.timestamp = Utc.timestamp_millis_opt(BASE + offset_ms).unwrap();
    event
}

/// Each emitted row's latest value: (window start, agent) -> n; and the rows that were
/// updates.
fn latest_counts(closed: &[ClosedWindow]) -> (BTreeMap<(i64, String), i64>, usize) {
    let mut latest = BTreeMap::new();
    let mut updates = 0;
    for c in closed {
        let n = ints(&c.result.rows, "n");
        for (row, agent) in strings(&c.result.rows, "agent_name")
            .into_iter()
            .enumerate()
        {
            latest.insert((c.result.window.start, agent), n[row]);
            updates += usize::from(c.result.update);
        }
    }
    (latest, updates)
}

#[tokio::test]
async fn an_event_within_the_allowed_lateness_updates_only_its_row_and_later_ones_are_late() {
    let mut engine = engine_with(
        &[PER_MINUTE],
        Duration::from_secs(300),
        Duration::from_secs(3600),
    )
    .await;
    let now = Instant::now();
    let mut offset = 0;
    let mut feed = |engine: &mut WindowEngine, events: Vec<OutcomeEvent>| {
        let numbered: Vec<_> = events
            .into_iter()
            .map(|e| {
                offset += 1;
                (offset, e)
            })
            .collect();
        let rejected = engine.ingest_events(0, &numbered, now).unwrap();
        let closed = engine.advance(now, 0).unwrap();
        (rejected, closed)
    };
    // Minute 0 for two agents, then an event 2 min on: minute 0 is emitted (30 s disorder).
    let (_, closed) = feed(
        &mut engine,
        vec![
            event_at("a", 1_000),
            event_at("a", 2_000),
            event_at("b", 3_000),
            event_at("c", 120_000),
        ],
    );
    assert_eq!(latest_counts(&closed).0[&(BASE, "a".to_owned())], 2);
    // A late event for agent a: counted, and only a's row comes out again, updated.
    let (rejected, closed) = feed(&mut engine, vec![event_at("a", 10_000)]);
    assert!(rejected.is_empty(), "within the allowed lateness");
    let (rows, updates) = latest_counts(&closed);
    assert_eq!(rows, BTreeMap::from([((BASE, "a".to_owned()), 3)]));
    assert_eq!(updates, 1);
    // Event time moves 7 min on: minute 0 is past the allowed lateness, so final.
    feed(&mut engine, vec![event_at("c", 7 * MINUTE)]);
    let (rejected, closed) = feed(&mut engine, vec![event_at("b", 20_000)]);
    assert_eq!(rejected.len(), 1, "past the allowed lateness: late");
    assert!(closed.iter().all(|c| c.result.window.start != BASE));
}

#[tokio::test]
async fn a_backfill_into_a_quiet_engine_counts_as_in_one_started_after_it() {
    let data = generate(2_000, 4, 2, 20 * MINUTE);
    let mut reference_engine = engine(&[PER_MINUTE]).await;
    let (reference, _) = latest_counts(&run(&mut reference_engine, &data));

    // Started on an empty topic: both partitions quiet for a day of wall clock first.
    let mut engine = engine_with(
        &[PER_MINUTE],
        Duration::from_secs(300),
        Duration::from_secs(1),
    )
    .await;
    let start = Instant::now();
    engine.assign(&[0, 1], start);
    engine.set_lagging([].into(), [0, 1].into());
    for hour in 1..=24 {
        let later = start + Duration::from_secs(hour * 3600);
        assert!(
            engine
                .advance(later, BASE + hour as i64 * 60 * MINUTE)
                .unwrap()
                .is_empty()
        );
    }
    let (backfilled, _) = latest_counts(&run(&mut engine, &data));
    assert_eq!(backfilled, reference, "no event of the backfill is late");
}

#[tokio::test]
async fn a_window_across_partitions_emitted_early_updates_to_the_total_of_all() {
    let total = (
        "total",
        "SELECT COUNT(*) AS n FROM agent_outcomes WINDOW TUMBLING (SIZE 1 MINUTE)",
    );
    let mut engine = engine_with(&[total], Duration::from_secs(300), Duration::from_secs(1)).await;
    let n_of = |closed: &[ClosedWindow]| -> Vec<(i64, i64, bool)> {
        closed
            .iter()
            .filter(|c| c.result.window.start == BASE)
            .map(|c| {
                (
                    c.result.window.start,
                    ints(&c.result.rows, "n")[0],
                    c.result.update,
                )
            })
            .collect()
    };
    let start = Instant::now();
    engine.assign(&[0, 1], start);
    engine.set_lagging([].into(), [0, 1].into());
    let two = [(0, event_at("a", 1_000)), (1, event_at("a", 2_000))];
    engine.ingest_events(0, &two, start).unwrap();
    // Both quiet: the window comes out early, by the clock, with partition 0's two events.
    let wall = BASE + 10 * MINUTE;
    let early = engine
        .advance(start + Duration::from_secs(5), wall)
        .unwrap();
    assert_eq!(n_of(&early), [(BASE, 2, false)]);
    // Partition 1 then delivers one for it: the one row is updated to the total.
    let now = start + Duration::from_secs(6);
    engine
        .ingest_events(1, &[(0, event_at("b", 3_000))], now)
        .unwrap();
    assert_eq!(n_of(&engine.advance(now, wall).unwrap()), [(BASE, 3, true)]);
    // Event time moves past the window on both: no partial row replaces it.
    engine
        .ingest_events(1, &[(1, event_at("b", 5 * MINUTE))], now)
        .unwrap();
    engine
        .ingest_events(0, &[(2, event_at("a", 5 * MINUTE))], now)
        .unwrap();
    assert_eq!(n_of(&engine.advance(now, wall).unwrap()), []);
}
