//! Micro-benchmarks of the pure hot paths of a request, through the crates' public APIs:
//! path parsing, PromQL planning, Prometheus JSON decoding, quantity formatting, folding
//! vectors into the model, and JSON/Table rendering. Run with
//! `cargo bench -p mesh-metrics-bench --bench hot_paths`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use adapters::engine::collect;
use adapters::linkerd::Linkerd;
use adapters::mesh::Mesh;
use adapters::model::{Kind, StatsQuery, Target, UnixMillis};
use adapters::prometheus::{decode_vector, Executor, QueryError, Vector, VectorStream};
use apiservice::quantity::format_milli;
use apiservice::render::render;
use apiservice::request::{self, ApiRequest, WindowLimits};
use apiservice::table::{self, IncludeObject, TableVersion};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use futures::future::BoxFuture;

const BASE: &str = apiservice::BASE_PATH;
const AT: i64 = 1_795_000_000_000;

/// A Prometheus answer to the bucket query of a namespaced deployment list: `items`
/// deployments × 26 buckets, as Prometheus prints it.
fn bucket_answer(items: usize) -> Vec<u8> {
    let mut s = String::from(r#"{"status":"success","data":{"resultType":"vector","result":["#);
    let les = [
        "1", "2", "3", "4", "5", "10", "20", "30", "40", "50", "100", "200", "300", "400", "500",
        "1000", "2000", "3000", "4000", "5000", "10000", "20000", "30000", "40000", "50000",
        "+Inf",
    ];
    for i in 0..items {
        for (j, le) in les.iter().enumerate() {
            if i + j > 0 {
                s.push(',');
            }
            s.push_str(&format!(
                r#"{{"metric":{{"deployment":"app-{i:05}","le":"{le}","namespace":"scale-0000"}},"value":[1795000000,"{}"]}}"#,
                (j + 1) * 37
            ));
        }
    }
    s.push_str("]}}");
    s.into_bytes()
}

/// The matching counts answer (success and failure per deployment).
fn counts_answer(items: usize) -> Vec<u8> {
    let mut s = String::from(r#"{"status":"success","data":{"resultType":"vector","result":["#);
    for i in 0..items {
        for (j, class) in ["success", "failure"].iter().enumerate() {
            if i + j > 0 {
                s.push(',');
            }
            s.push_str(&format!(
                r#"{{"metric":{{"classification":"{class}","deployment":"app-{i:05}","namespace":"scale-0000"}},"value":[1795000000,"{}.5"]}}"#,
                1000 - j * 990
            ));
        }
    }
    s.push_str("]}}");
    s.into_bytes()
}

/// Answers a plan from pre-decoded vectors (counts for `response_total`, else buckets).
struct Canned {
    counts: Arc<Vector>,
    buckets: Arc<Vector>,
}

impl Executor for Canned {
    fn instant<'a>(
        &'a self,
        promql: &'a str,
        _at: UnixMillis,
    ) -> BoxFuture<'a, Result<Arc<Vector>, QueryError>> {
        let v = if promql.contains("response_total") {
            self.counts.clone()
        } else {
            self.buckets.clone()
        };
        Box::pin(async move { Ok(v) })
    }
}

fn parsing(c: &mut Criterion) {
    let limits = WindowLimits::default();
    let mut g = c.benchmark_group("parse_path");
    for (name, path, query) in [
        ("namespace_list", format!("{BASE}/namespaces"), None),
        (
            "edges",
            format!("{BASE}/namespaces/shop/deployments/web/edges"),
            Some("t=1m30s"),
        ),
        (
            "trafficmetrics",
            format!("{BASE}/namespaces/shop/trafficmetrics"),
            Some("limit=500&timeout=32s"),
        ),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| request::parse(black_box(&path), black_box(query), &limits).unwrap())
        });
    }
    g.finish();
}

fn planning(c: &mut Criterion) {
    let mesh = Linkerd::default();
    let mut g = c.benchmark_group("promql_plan");
    for (name, target) in [
        (
            "deployment_list",
            Target::List {
                kind: Kind::Deployment,
                namespace: Some("shop".into()),
            },
        ),
        (
            "edges",
            Target::Edges(adapters::model::ResourceRef::namespaced(
                Kind::Deployment,
                "shop",
                "web",
            )),
        ),
    ] {
        let q = StatsQuery {
            target,
            window: Duration::from_secs(30),
            at: UnixMillis(AT),
        };
        g.bench_function(name, |b| b.iter(|| mesh.plan(black_box(&q)).unwrap()));
    }
    g.finish();
}

fn decoding(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode_prometheus_json");
    for items in [10usize, 100, 1000] {
        let body = bytes::Bytes::from(bucket_answer(items));
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_with_input(BenchmarkId::new("buckets", items), &body, |b, body| {
            b.iter(|| decode_vector("http://p", 200, black_box(body)).unwrap())
        });
        // as the server reads an answer: in the pieces it arrives in
        g.bench_with_input(
            BenchmarkId::new("buckets_streamed", items),
            &body,
            |b, body| {
                b.iter(|| {
                    let mut answer = VectorStream::new(0);
                    for piece in black_box(body).chunks(4096) {
                        answer.feed(body.slice_ref(piece));
                    }
                    answer.finish("http://p", 200).unwrap()
                })
            },
        );
    }
    g.finish();
}

fn quantities(c: &mut Criterion) {
    c.bench_function("format_milli", |b| {
        b.iter(|| {
            for v in [0.0, 296.875, 1000.0, 1500.0, 28.58, 73.492, 2_000_000.0] {
                black_box(format_milli(black_box(v)));
            }
        })
    });
}

fn folding_and_rendering(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let mesh = Linkerd::default();
    let limits = WindowLimits::default();
    let mut fold = c.benchmark_group("fold_vectors");
    let mut cases = Vec::new();
    for items in [10usize, 100, 1000] {
        let exec = Canned {
            counts: Arc::new(decode_vector("u", 200, &counts_answer(items)).unwrap()),
            buckets: Arc::new(decode_vector("u", 200, &bucket_answer(items)).unwrap()),
        };
        let path = format!("{BASE}/namespaces/scale-0000/deployments");
        let ApiRequest::Metrics(m) = request::parse(&path, None, &limits).unwrap() else {
            unreachable!()
        };
        let q = StatsQuery {
            target: m.target().clone(),
            window: m.window,
            at: UnixMillis(AT),
        };
        fold.throughput(Throughput::Elements(items as u64));
        fold.bench_with_input(BenchmarkId::new("deployment_list", items), &q, |b, q| {
            b.iter(|| rt.block_on(collect(&mesh, &exec, q)).unwrap())
        });
        let result = rt.block_on(collect(&mesh, &exec, &q)).unwrap();
        cases.push((items, m, result));
    }
    fold.finish();
    let mut g = c.benchmark_group("render");
    for (items, m, result) in &cases {
        g.throughput(Throughput::Elements(*items as u64));
        let results = std::slice::from_ref(result);
        g.bench_with_input(BenchmarkId::new("json", items), items, |b, _| {
            b.iter(|| render(m, UnixMillis(AT), black_box(results)).to_json())
        });
        let rendered = render(m, UnixMillis(AT), results);
        g.bench_with_input(BenchmarkId::new("table", items), items, |b, _| {
            b.iter(|| {
                table::render(
                    black_box(rendered.items()),
                    TableVersion::V1,
                    IncludeObject::Metadata,
                )
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = parsing, planning, decoding, quantities, folding_and_rendering
}
criterion_main!(benches);
