//! JSON encoding and decoding of one outcome event: the sink thread encodes every event it
//! publishes, the processor decodes every event it reads.
//!
//! `cargo bench --bench codec`.

use std::hint::black_box;

use chrono::{TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};

use feedback_pipeline::OutcomeEvent;
use feedback_pipeline::event::OutcomeEventView;
use feedback_pipeline::simulate::Fleet;

fn codec(c: &mut Criterion) {
    let mut fleet = Fleet::standard(7);
    let now = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
    let events: Vec<OutcomeEvent> = (0..64).map(|_| fleet.next_event(now)).collect();
    let encoded: Vec<Vec<u8>> = events
        .iter()
        .map(|event| serde_json::to_vec(event).unwrap())
        .collect();

    let mut group = c.benchmark_group("codec");
    group.bench_function("encode", |b| {
        // As the sink does it: one reused buffer.
        let mut buffer = Vec::with_capacity(2048);
        let mut next = events.iter().cycle();
        b.iter(|| {
            buffer.clear();
            serde_json::to_writer(&mut buffer, next.next().unwrap()).unwrap();
            black_box(buffer.len())
        });
    });
    group.bench_function("decode_owned", |b| {
        let mut next = encoded.iter().cycle();
        b.iter(|| black_box(OutcomeEvent::from_json_slice(next.next().unwrap()).unwrap()));
    });
    group.bench_function("decode_view", |b| {
        let mut next = encoded.iter().cycle();
        b.iter(|| {
            black_box(serde_json::from_slice::<OutcomeEventView<'_>>(next.next().unwrap()).unwrap())
        });
    });
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
