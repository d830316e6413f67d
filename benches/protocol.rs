//! Criterion benchmarks of the pure protocol layer (no network): parsing requests and
//! encoding replies, the per-request work restdis adds on top of Redis.
//! Run: `cargo bench --bench protocol` (results under target/criterion).

#![allow(clippy::unwrap_used)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use redis::Value;
use restdis::protocol::encode::{self, Encoding};
use restdis::protocol::route::{classify, Route};
use restdis::protocol::{body, path};
use std::hint::black_box;

fn parsing(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    g.bench_function("path_form_get", |b| {
        b.iter(|| {
            let Route::Command(rest) = classify(black_box("/get/bench:k100")) else {
                unreachable!()
            };
            path::parse_command(rest, black_box(Some("_token=abc")), b"").unwrap()
        })
    });
    g.bench_function("json_body_get", |b| {
        b.iter(|| body::parse_command(black_box(br#"["GET","bench:k100"]"#)).unwrap())
    });
    let set = format!(r#"["SET","bench:k1k","{}","EX",100]"#, "x".repeat(1024));
    g.bench_function("json_body_set_1k", |b| {
        b.iter(|| body::parse_command(black_box(set.as_bytes())).unwrap())
    });
    let pipeline = format!(
        "[{}]",
        (0..100)
            .map(|i| format!(r#"["GET","key:{i}"]"#))
            .collect::<Vec<_>>()
            .join(",")
    );
    g.throughput(Throughput::Elements(100));
    g.bench_function("pipeline_100_gets", |b| {
        b.iter(|| body::parse_batch(black_box(pipeline.as_bytes())).unwrap())
    });
    g.finish();
}

fn encoding(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode");
    let small = Ok(Value::BulkString(vec![b'v'; 100]));
    let list = Ok(Value::Array(
        (0..100)
            .map(|i| Value::BulkString(format!("member:{i}").into_bytes()))
            .collect(),
    ));
    for (name, enc) in [("plain", Encoding::Plain), ("base64", Encoding::Base64)] {
        g.bench_function(format!("get_100b_{name}"), |b| {
            b.iter(|| encode::single(black_box(&small), enc))
        });
        g.bench_function(format!("array_100_{name}"), |b| {
            b.iter(|| encode::single(black_box(&list), enc))
        });
    }
    let replies: Vec<encode::Reply> = (0..100).map(|_| Ok(Value::BulkString(vec![b'v'; 100]))).collect();
    g.throughput(Throughput::Elements(100));
    g.bench_function("pipeline_100_replies_base64", |b| {
        b.iter(|| encode::batch(black_box(&replies), Encoding::Base64))
    });
    g.finish();
}

criterion_group!(benches, parsing, encoding);
criterion_main!(benches);
