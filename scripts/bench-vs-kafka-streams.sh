#!/usr/bin/env bash
# Our processor, a bare rdkafka consumer (the ceiling) and Kafka Streams 4.4 (the anchor) on one
# topic of a real Apache Kafka broker, from one run: fills the topic once, runs each side RUNS
# times over it, prints every run, the medians, peak RSS and the ratios, then checks that the
# two result sets agree (counts exact, averages to 1e-9).
#
#   scripts/bench-vs-kafka-streams.sh [EVENTS (1000000)] [RUNS (3)]
#
# The query (bench/kafka-streams/sql/, and the same in WindowBench.java): per agent, a 1 h window
# advancing by 5 min: count, average latency, failure count. 100 agents over 24 h of event time.
# Uses target/release/feedback-pipeline (built if missing; FEEDBACK_PIPELINE_BIN overrides).
set -euo pipefail
cd "$(dirname "$0")/.."
events="${1:-1000000}" runs="${2:-3}"
# Kafka Streams' grace is our out-of-orderness plus our grace (defaults 5 s + 2 s): a window
# closes at the same event time on both sides.
grace_ms=7000

bin="${FEEDBACK_PIPELINE_BIN:-${CARGO_TARGET_DIR:-target}/release/feedback-pipeline}"
[[ -x "$bin" ]] || cargo build --release --locked >&2
mvn -B -q -f bench/kafka-streams/pom.xml package >&2
streams_cp="bench/kafka-streams/target/window-bench.jar:bench/kafka-streams/target/lib/*"

work="$(mktemp -d)"
trap 'bash scripts/start-kafka.sh --dir "$work/kafka" --stop; rm -rf "$work"' EXIT
eval "$(bash scripts/start-kafka.sh --dir "$work/kafka" --watch-pid $$ | grep '^KAFKA_BOOTSTRAP_SERVERS=')"
export KAFKA_BOOTSTRAP_SERVERS RUST_LOG=error
topic="bench-$(date +%s)"
echo "== filling $topic with $events events on Apache Kafka 4.4 at $KAFKA_BOOTSTRAP_SERVERS"
"$bin" bench processor --events "$events" --topic "$topic" --runs 0

echo "== ours and the bare consumer, $runs runs"
"$bin" bench processor --events "$events" --topic "$topic" --runs "$runs" --skip-produce \
    --sql bench/kafka-streams/sql | tee "$work/ours.txt"

echo "== ours alone, 1 run, for a peak RSS without the bare consumer's buffers"
"$bin" bench processor --events "$events" --topic "$topic" --runs 1 --skip-produce \
    --processor-only --sql bench/kafka-streams/sql | tee "$work/ours-alone.txt"

echo "== Kafka Streams, $runs runs"
for run in $(seq 1 "$runs"); do
    java -Xms256m -Xmx1g -cp "$streams_cp" dev.feedbackpipeline.bench.WindowBench \
        run "$KAFKA_BOOTSTRAP_SERVERS" "$topic" "$topic-streams-$run" "$events" "$grace_ms" |
        tee -a "$work/streams.txt"
done

median() { sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
ours=$(grep '^run' "$work/ours.txt" | grep -o 'processor *[0-9]*' | awk '{print $2}' | median)
bare=$(grep '^run' "$work/ours.txt" | grep -o 'bare consumer *[0-9]*' | awk '{print $3}' | median)
streams=$(awk '/^kafka-streams/ {print $2}' "$work/streams.txt" | median)
streams_rss=$(awk '/^kafka-streams/ {print $(NF-1)}' "$work/streams.txt" | sort -n | tail -1)
ours_rss=$(grep -o 'VmHWM after the producing phase): [0-9]*' "$work/ours-alone.txt" | awk '{print $NF}')
echo "== medians over $runs runs of $events events"
printf '%-16s %12s events/s   peak RSS %s MB\n' ours "$ours" "$ours_rss"
printf '%-16s %12s events/s\n' "bare consumer" "$bare"
printf '%-16s %12s events/s   peak RSS %s MB (JVM, -Xmx1g)\n' "kafka streams" "$streams" "$streams_rss"
awk -v o="$ours" -v b="$bare" -v s="$streams" \
    'BEGIN {printf "ratios: ours/bare %.2f, ours/kafka-streams %.2f, kafka-streams/bare %.2f\n", o/b, o/s, s/b}'

echo "== do the results agree?"
java -cp "$streams_cp" dev.feedbackpipeline.bench.WindowBench \
    compare "$KAFKA_BOOTSTRAP_SERVERS" "$topic-metrics" "$topic-streams-1"
