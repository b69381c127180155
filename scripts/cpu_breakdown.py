"""Splits `perf script -F comm,tid,ip,sym,dso` samples of the service into the rows of
BENCHMARKS.md: each sample goes to the first frame, from the leaf up, that belongs to a row;
allocator leaves count as allocation; runtime frames only when nothing more specific is on the
stack. Usage: cpu_breakdown.py SAMPLES [--runtime] (the second lists what the runtime row holds).
"""
import sys, re, collections
path = sys.argv[1]
samples = []
cur = None
for line in open(path, errors='replace'):
    if not line.strip():
        if cur is not None:
            samples.append(cur); cur = None
        continue
    if not line.startswith('\t') and not line.startswith(' '):
        cur = {'comm': line.split()[0], 'frames': []}
        continue
    parts = line.strip().split(' ', 1)
    if len(parts) < 2: continue
    sym = parts[1]
    if cur is not None: cur['frames'].append(sym)
if cur: samples.append(cur)

ALLOC = re.compile(r'^(_?mi_|mi_|__libc_malloc|malloc|free|realloc|calloc|_int_malloc|_int_free|cfree|__rust_alloc|__rust_dealloc|__rust_realloc|alloc::alloc::|<alloc::alloc::Global)')
RULES = [
    ('logging/tracing', re.compile(r'tracing_subscriber|tracing_core|tracing::span|tracing::__macro|opentelemetry|capture_service::telemetry|tracing_opentelemetry|<tracing::span::Span|tracing::span::Span|tracing_log')),
    ('store: SQLite', re.compile(r'sqlite3|sqlx_sqlite|libsqlite')),
    ('store: PostgreSQL driver (sqlx, TLS to the database)', re.compile(r'sqlx_postgres|sqlx_core|RustlsSocket')),
    ('store: ORM and statements (sea-orm, sea-query, store code)', re.compile(r'sea_orm|sea_query|capture_service::store')),
    ('provider call (HTTP/1 client, JSON, connector)', re.compile(r'reqwest|hyper_util::client|hyper::client|hyper::proto::h1|capture_service::providers|serde_json')),
    ('gRPC / HTTP/2 (tonic, h2, hyper server, tower)', re.compile(r'\bh2::|tonic::|hyper::proto::h2|hyper::server|tower::|tower_http|hyper_util::server|capture_service::net|tonic_health')),
    ('request conversion and validation (prost, api, domain)', re.compile(r'prost::|capture_service::api|capture_service::domain|rust_decimal')),
    ('orchestration (capture module)', re.compile(r'capture_service::capture')),
    ('runtime (tokio scheduling, wake-ups, timers)', re.compile(r'tokio::runtime|tokio::sync|tokio::time|parking_lot|futex|tokio::task|std::thread|mio::')),
]
KERNEL = re.compile(r'\[kernel|^(entry_SYSCALL|do_syscall|__x64_sys|__schedule|schedule|finish_task_switch)')
counts = collections.Counter()
kernel_leaf = collections.Counter()
for s in samples:
    fr = s['frames']
    if not fr: counts['unknown'] += 1; continue
    leaf = fr[0]
    if ALLOC.search(leaf) or '_mi_' in leaf or leaf.startswith('mi_'):
        counts['allocation (mimalloc)'] += 1; continue
    cat = None
    specific = [r for r in RULES if not r[0].startswith('runtime')]
    runtime = [r for r in RULES if r[0].startswith('runtime')]
    for rules in (specific, runtime):
        for f in fr:
            for name, rx in rules:
                if rx.search(f):
                    cat = name; break
            if cat: break
        if cat: break
    if cat is None:
        if any('kallsyms' in f or f.startswith('ffffffff') for f in fr) or 'entry_SYSCALL' in ' '.join(fr[:8]):
            cat = 'kernel (unattributed)'
        else:
            cat = 'other: ' + leaf[:60]
    counts[cat] += 1
total = sum(counts.values())
print(f"samples {total}")
other = 0
for k, v in counts.most_common():
    if k.startswith('other: '):
        other += v
        continue
    print(f"{v/total*100:6.1f}%  {k}")
print(f"{other/total*100:6.1f}%  other")
if len(sys.argv) > 2:
    # the runtime samples' leaves and first non-generic frames
    c = collections.Counter()
    for s_ in samples:
        fr = s_['frames']
        if not fr: continue
        if any(rx.search(f) for f in fr for n, rx in specific): continue
        if ALLOC.search(fr[0]): continue
        c[' | '.join(x[:50] for x in fr[:4])] += 1
    for k, v in c.most_common(25): print(v, k)

# Split of the PostgreSQL driver row.
split = collections.Counter()
for s_ in samples:
    fr = s_['frames']
    if not fr or ALLOC.search(fr[0]): continue
    c = None
    for f in fr:
        for name, rx in specific:
            if rx.search(f): c = name; break
        if c: break
    if c and c.startswith('store: PostgreSQL'):
        if any('rustls' in f or 'ring::' in f or 'ring_core' in f for f in fr[:30]):
            split['TLS (rustls)'] += 1
        elif 'kallsyms' in fr[0] or fr[0].startswith('ffffffff') or any(x in fr[0] for x in ('send','recv','write','read')):
            split['kernel I/O'] += 1
        else:
            split['protocol'] += 1
print('driver split', dict(split))
