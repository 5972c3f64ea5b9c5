package dev.feedbackpipeline.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.EmitStrategy;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.processor.TimestampExtractor;

/**
 * The benchmark's query in Kafka Streams: per agent, a 1 h window advancing by 5 min, with the
 * execution count, average latency and failure count, each window emitted once when it closes.
 *
 * <pre>
 *   run     BOOTSTRAP TOPIC OUT_TOPIC EVENTS GRACE_MS   prints events/s and peak RSS
 *   compare BOOTSTRAP OURS_TOPIC THEIRS_TOPIC           checks both result sets agree
 * </pre>
 */
public final class WindowBench {
    private static final ObjectMapper JSON = new ObjectMapper();

    private WindowBench() {}

    public static void main(String[] args) throws Exception {
        switch (args.length > 0 ? args[0] : "") {
            case "run" -> run(args[1], args[2], args[3], Long.parseLong(args[4]), Long.parseLong(args[5]));
            case "compare" -> System.exit(compare(args[1], args[2], args[3]));
            default -> {
                System.err.println("usage: run BOOTSTRAP TOPIC OUT EVENTS GRACE_MS | compare BOOTSTRAP OURS THEIRS");
                System.exit(2);
            }
        }
    }

    /** One event as the aggregation sees it: decoded once, by the source's deserializer. */
    record Outcome(long timestampMs, double latencyMs, boolean failure) {}

    /** A window's running aggregate. */
    record Aggregate(long executions, double latencySum, long failures) {
        Aggregate add(Outcome outcome) {
            return new Aggregate(executions + 1, latencySum + outcome.latencyMs(),
                failures + (outcome.failure() ? 1 : 0));
        }
    }

    /** Event time is the event's own `timestamp` (RFC 3339), as in our processor. */
    static final class EventTime implements TimestampExtractor {
        @Override
        public long extract(ConsumerRecord<Object, Object> record, long partitionTime) {
            // -1 (unreadable): Kafka Streams drops it and counts it in its skipped-records metric.
            return record.value() instanceof Outcome outcome ? outcome.timestampMs() : -1;
        }
    }

    static Outcome parse(byte[] value) {
        try {
            JsonNode event = JSON.readTree(value);
            return new Outcome(Instant.parse(event.get("timestamp").asText()).toEpochMilli(),
                event.get("latency_ms").asDouble(), "failure".equals(event.get("status").asText()));
        } catch (Exception unreadable) {
            return null;
        }
    }

    static void run(String bootstrap, String topic, String out, long events, long graceMs) throws Exception {
        AtomicLong seen = new AtomicLong();
        long[] firstAt = {0};
        StreamsBuilder builder = new StreamsBuilder();
        Serde<Outcome> eventSerde = Serdes.serdeFrom((t, outcome) -> new byte[0], (t, bytes) -> parse(bytes));
        builder.stream(topic, Consumed.with(Serdes.String(), eventSerde).withTimestampExtractor(new EventTime()))
            .peek((key, value) -> {
                if (seen.getAndIncrement() == 0) {
                    firstAt[0] = System.nanoTime();
                }
            })
            .filter((key, value) -> value != null)
            .groupByKey(Grouped.with(Serdes.String(), outcomeSerde()))
            .windowedBy(TimeWindows.ofSizeAndGrace(Duration.ofHours(1), Duration.ofMillis(graceMs))
                .advanceBy(Duration.ofMinutes(5)))
            .emitStrategy(EmitStrategy.onWindowClose())
            .aggregate(() -> new Aggregate(0, 0, 0), (key, value, aggregate) -> aggregate.add(value),
                Materialized.with(Serdes.String(), aggregateSerde()))
            .toStream()
            .map((window, aggregate) -> KeyValue.pair(window.key() + "|" + window.window().start(),
                resultJson(window.key(), window.window().start(), aggregate)))
            .to(out, Produced.with(Serdes.String(), Serdes.String()));

        Path state = Files.createTempDirectory("window-bench-state");
        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, "window-bench-" + UUID.randomUUID());
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(StreamsConfig.STATE_DIR_CONFIG, state.toString());
        props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 1000);
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
        try (KafkaStreams streams = new KafkaStreams(builder.build(), props)) {
            streams.start();
            long deadline = System.nanoTime() + Duration.ofMinutes(10).toNanos();
            while (seen.get() < events) {
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("read only " + seen.get() + " of " + events);
                }
                Thread.sleep(1);
            }
            double seconds = (System.nanoTime() - firstAt[0]) / 1e9;
            // Give the closed windows a commit interval to reach the output topic.
            Thread.sleep(3000);
            streams.close(Duration.ofSeconds(30));
            System.out.printf("kafka-streams %.0f events/s, peak RSS %.0f MB%n", (events - 1) / seconds, peakRssMb());
        }
    }

    static String resultJson(String agent, long windowStart, Aggregate aggregate) {
        Map<String, Object> row = new HashMap<>();
        row.put("agent_name", agent);
        row.put("window_start_ms", windowStart);
        row.put("executions", aggregate.executions());
        row.put("avg_latency_ms", aggregate.latencySum() / aggregate.executions());
        row.put("failures", aggregate.failures());
        try {
            return JSON.writeValueAsString(row);
        } catch (Exception impossible) {
            throw new IllegalStateException(impossible);
        }
    }

    /** Peak resident set size of this JVM (VmHWM), in MB. */
    static double peakRssMb() throws Exception {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("VmHWM:")) {
                return Long.parseLong(line.replaceAll("[^0-9]", "")) / 1024.0;
            }
        }
        return Double.NaN;
    }

    /** (agent|window start ms) to [executions, avg latency, failures], read to the topic's end. */
    static Map<String, double[]> readResults(String bootstrap, String topic, boolean ours) throws Exception {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        Map<String, double[]> rows = new HashMap<>();
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
            List<TopicPartition> partitions = new ArrayList<>();
            consumer.partitionsFor(topic).forEach(p -> partitions.add(new TopicPartition(topic, p.partition())));
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            Map<TopicPartition, Long> ends = consumer.endOffsets(partitions);
            while (partitions.stream().anyMatch(p -> consumer.position(p) < ends.get(p))) {
                for (var record : consumer.poll(Duration.ofMillis(500))) {
                    JsonNode row = JSON.readTree(record.value());
                    long start = ours ? Instant.parse(row.get("window_start").asText()).toEpochMilli()
                        : row.get("window_start_ms").asLong();
                    rows.put(row.get("agent_name").asText() + "|" + start, new double[] {
                        row.get("executions").asDouble(), row.get("avg_latency_ms").asDouble(),
                        row.get("failures").asDouble()});
                }
            }
        }
        return rows;
    }

    /**
     * Every window both emitted must agree: counts exactly, averages to 1e-9 (relative). Kafka
     * Streams emits a window only once stream time passes its end plus grace, so the last hour of
     * each agent stays open there; we close it when the partitions go idle. Returns the exit code.
     */
    static int compare(String bootstrap, String oursTopic, String theirsTopic) throws Exception {
        Map<String, double[]> ours = readResults(bootstrap, oursTopic, true);
        Map<String, double[]> theirs = readResults(bootstrap, theirsTopic, false);
        int compared = 0;
        int differing = 0;
        for (var entry : theirs.entrySet()) {
            double[] mine = ours.get(entry.getKey());
            if (mine == null) {
                System.out.println("only Kafka Streams has " + entry.getKey());
                differing++;
                continue;
            }
            double[] other = entry.getValue();
            compared++;
            boolean same = mine[0] == other[0] && mine[2] == other[2]
                && Math.abs(mine[1] - other[1]) <= 1e-9 * Math.max(1, Math.abs(other[1]));
            if (!same) {
                differing++;
                if (differing <= 10) {
                    System.out.printf("differs %s: ours %s, kafka-streams %s%n", entry.getKey(),
                        java.util.Arrays.toString(mine), java.util.Arrays.toString(other));
                }
            }
        }
        System.out.printf("compared %d windows (ours %d, kafka-streams %d): %d differ%n", compared,
            ours.size(), theirs.size(), differing);
        return differing == 0 && compared > 0 ? 0 : 1;
    }

    static Serde<Outcome> outcomeSerde() {
        return Serdes.serdeFrom(
            (topic, outcome) -> ByteBuffer.allocate(17).putLong(outcome.timestampMs())
                .putDouble(outcome.latencyMs()).put((byte) (outcome.failure() ? 1 : 0)).array(),
            (topic, bytes) -> {
                ByteBuffer buffer = ByteBuffer.wrap(bytes);
                return new Outcome(buffer.getLong(), buffer.getDouble(), buffer.get() == 1);
            });
    }

    static Serde<Aggregate> aggregateSerde() {
        return Serdes.serdeFrom(
            (topic, aggregate) -> ByteBuffer.allocate(24).putLong(aggregate.executions())
                .putDouble(aggregate.latencySum()).putLong(aggregate.failures()).array(),
            (topic, bytes) -> {
                ByteBuffer buffer = ByteBuffer.wrap(bytes);
                return new Aggregate(buffer.getLong(), buffer.getDouble(), buffer.getLong());
            });
    }
}
