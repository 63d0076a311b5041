#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# tests/remote/read_diff.py BUILD_DIR: differential test of POST /api/v1/read (remote/read.c)
# with Prometheus as the remote-read client (ctest remote_read_diff, label diff; exit 77 =
# skipped when /usr/bin/prometheus or a binary is missing).
#
# A fixed OpenMetrics file (made here from a fixed seed) is backfilled into a data dir with
# meshpromtool; meshprom serves it with external label site="a". Prometheus runs with an empty
# TSDB, the same external label and remote_read {url: meshprom /api/v1/read, read_recent:
# true}, so it adds site="a" to every select (meshprom must rewrite it to site="") and strips
# it from the answers again. Every query is asked of both; results must be identical (label sets
# exactly, values as strings, or within 1e-9 relative where the engines sum in another order).
# Before that, without Prometheus, a STREAMED_XOR_CHUNKS request made by hand checks the chunked
# HTTP answer end to end (frames, CRC-32C, labels, every sample counted in the chunk headers).
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.error
import urllib.request

PROM = os.environ.get("MP_PROMETHEUS", "/usr/bin/prometheus")
T0 = 1764547200  # 2025-12-01T00:00:00Z, seconds
STEP = 15
SPAN = 3 * 3600

QUERIES = [
    "http_requests_total",
    'http_requests_total{code=~"5.."}',
    'http_requests_total{code!="200"}',
    'http_requests_total{method!~"GET|PUT"}',
    '{__name__=~"http_.*", code="200"}',
    "rate(http_requests_total[5m])",
    "sum by (code) (rate(http_requests_total[5m]))",
    "histogram_quantile(0.9, sum by (le) (rate(request_duration_seconds_bucket[5m])))",
    "temperature_celsius",
    "count(temperature_celsius)",
    "max_over_time(temperature_celsius[10m])",
    "timestamp(temperature_celsius)",
    "absent(nonexistent_metric)",
    "http_requests_total offset 30m",
    'sum(http_requests_total{instance="b:9100"})',
]
INSTANT_TIMES = [T0 + 600, T0 + 5400, T0 + 7230, T0 + SPAN - 1]
RANGE = (T0 + 1800, T0 + 9000, 60)


def skip(why):
    print("SKIP: " + why)
    sys.exit(77)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fixture(path):
    rnd = random.Random(42)
    out = []
    out.append("# TYPE http_requests counter\n")
    for inst in ("a:9100", "b:9100"):
        for code in ("200", "500", "503"):
            for method in ("GET", "POST", "PUT"):
                v = 0.0
                lines = []
                for t in range(T0, T0 + SPAN, STEP):
                    v += rnd.randint(0, 20) * (0.1 if code != "200" else 1.0)
                    if rnd.random() < 0.002:
                        v = 0.0  # counter reset
                    lines.append(
                        'http_requests_total{instance="%s",code="%s",method="%s"} %s %d\n'
                        % (inst, code, method, repr(round(v, 3)), t))
                out.extend(lines)
    out.append("# TYPE temperature_celsius gauge\n")
    for room in ("kitchen", "cellar"):
        end = T0 + SPAN if room == "kitchen" else T0 + SPAN // 2  # cellar stops half way
        for t in range(T0, end, STEP):
            out.append('temperature_celsius{room="%s"} %s %d\n'
                       % (room, repr(round(rnd.uniform(-5, 30), 6)), t))
    out.append("# TYPE request_duration_seconds histogram\n")
    bounds = ("0.05", "0.1", "0.5", "1", "+Inf")
    counts = [0] * len(bounds)
    series = {b: [] for b in bounds}
    for t in range(T0, T0 + SPAN, STEP):
        n = rnd.randint(0, 30)
        for _ in range(n):
            d = rnd.expovariate(4.0)
            for i, b in enumerate(bounds):
                if b == "+Inf" or d <= float(b):
                    counts[i] += 1
        for i, b in enumerate(bounds):
            series[b].append((t, counts[i]))
    for b in bounds:
        for t, c in series[b]:
            out.append('request_duration_seconds_bucket{le="%s"} %d %d\n' % (b, c, t))
    out.append("# EOF\n")
    with open(path, "w") as f:
        f.writelines(out)


def get(url, timeout=30):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


def wait_ready(url, proc, log, limit_s=60):
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited early:\n%s" % (url, open(log).read()[-2000:]))
        try:
            if get(url + "/-/ready", 2)[0] == 200:
                return
        except Exception:
            pass
        time.sleep(0.2)
    raise RuntimeError("%s not ready after %d s" % (url, limit_s))


def start(binary, name, work, config, extra):
    port = free_port()
    log = os.path.join(work, name + ".log")
    d = os.path.join(work, name)
    os.makedirs(d, exist_ok=True)
    args = [binary, "--config.file=" + config, "--storage.tsdb.path=" + d,
            "--web.listen-address=127.0.0.1:%d" % port] + extra
    with open(log, "w") as lf:
        proc = subprocess.Popen(args, stdout=lf, stderr=subprocess.STDOUT)
    url = "http://127.0.0.1:%d" % port
    try:
        wait_ready(url, proc, log)
    except Exception:
        stop(proc)
        raise
    return proc, url, d


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def api(url, path, params):
    st, body = get(url + path + "?" + urllib.parse.urlencode(params))
    doc = json.loads(body)
    if doc.get("status") != "success":
        raise RuntimeError("%s%s %s: %s" % (url, path, params, body[:300]))
    return doc


def canon(doc):
    data = doc["data"]
    if isinstance(data, list):  # /api/v1/series
        return "series", sorted(json.dumps(m, sort_keys=True) for m in data)
    rt, res = data["resultType"], data["result"]
    if rt in ("scalar", "string"):
        return rt, [res]
    rows = []
    for r in res:
        vals = r.get("values") or ([r["value"]] if "value" in r else [])
        rows.append((json.dumps(r["metric"], sort_keys=True), vals))
    return rt, sorted(rows)


def close(a, b):
    if a == b:
        return True
    try:
        x, y = float(a), float(b)
    except ValueError:
        return False
    return abs(x - y) <= 1e-9 * max(abs(x), abs(y))


def same(a, b):
    if a[0] != b[0] or len(a[1]) != len(b[1]):
        return False
    if a[0] == "series":
        return a[1] == b[1]
    for ra, rb in zip(a[1], b[1]):
        if a[0] in ("scalar", "string"):
            ra, rb = ("", [ra]), ("", [rb])
        if ra[0] != rb[0] or len(ra[1]) != len(rb[1]):
            return False
        for (ta, va), (tb, vb) in zip(ra[1], rb[1]):
            if ta != tb or not close(va, vb):
                return False
    return True


# ---- a STREAMED_XOR_CHUNKS request by hand (no protobuf or snappy module needed) ----

def pb_varint(n):
    n &= (1 << 64) - 1
    out = b""
    while n >= 0x80:
        out += bytes([n & 0x7F | 0x80])
        n >>= 7
    return out + bytes([n])


def pb_field(num, wt, payload):
    if wt == 0:
        return pb_varint(num << 3) + pb_varint(payload)
    return pb_varint(num << 3 | 2) + pb_varint(len(payload)) + payload


def pb_parse(buf):
    """[(field, wire type, value)] of one message; value: int or bytes."""
    out, pos = [], 0
    while pos < len(buf):
        key, pos = read_uvarint(buf, pos)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, pos = read_uvarint(buf, pos)
        elif wt == 2:
            n, pos = read_uvarint(buf, pos)
            v, pos = buf[pos:pos + n], pos + n
        elif wt == 1:
            v, pos = buf[pos:pos + 8], pos + 8
        else:
            raise ValueError("wire type %d" % wt)
        out.append((num, wt, v))
    return out


def read_uvarint(buf, pos):
    v, shift = 0, 0
    while True:
        c = buf[pos]
        pos += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return v, pos


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    return c ^ 0xFFFFFFFF


def snappy_literal(raw):
    """A snappy block of literals only (valid, as the spec notes)."""
    out, pos = pb_varint(len(raw)), 0
    while pos < len(raw):
        piece = raw[pos:pos + 60]
        out += bytes([(len(piece) - 1) << 2]) + piece
        pos += len(piece)
    return out


def streamed_check(murl):
    """POST a STREAMED_XOR_CHUNKS ReadRequest for http_requests_total over all data; checks
    chunked transfer, frames, CRC-32C, one sorted series per frame with the external label, and
    that the XOR chunk headers count every sample (compared with count_over_time)."""
    matcher = pb_field(1, 0, 0) + pb_field(2, 2, b"__name__") + \
        pb_field(3, 2, b"http_requests_total")
    query = pb_field(1, 0, (T0 - 3600) * 1000) + pb_field(2, 0, (T0 + SPAN + 3600) * 1000) + \
        pb_field(3, 2, matcher)
    req = pb_field(1, 2, query) + pb_field(2, 0, 1)
    r = urllib.request.Request(murl + "/api/v1/read", data=snappy_literal(req), method="POST",
                               headers={"Content-Type": "application/x-protobuf",
                                        "Content-Encoding": "snappy",
                                        "X-Prometheus-Remote-Read-Version": "0.1.0"})
    with urllib.request.urlopen(r, timeout=60) as resp:
        ctype = resp.headers.get("Content-Type")
        te = resp.headers.get("Transfer-Encoding")
        body = resp.read()
    if ctype != "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse":
        raise AssertionError("content type %r" % ctype)
    if te != "chunked":
        raise AssertionError("transfer encoding %r" % te)
    pos, series, samples, frames = 0, [], 0, 0
    while pos < len(body):
        n, pos = read_uvarint(body, pos)
        crc = int.from_bytes(body[pos:pos + 4], "big")
        payload = body[pos + 4:pos + 4 + n]
        pos += 4 + n
        if len(payload) != n or crc32c(payload) != crc:
            raise AssertionError("frame %d: truncated or bad CRC" % frames)
        frames += 1
        cs = [v for f, _, v in pb_parse(payload) if f == 1]
        if len(cs) != 1:
            raise AssertionError("frame %d: %d series" % (frames, len(cs)))
        labels, chunks = [], 0
        for f, _, v in pb_parse(cs[0]):
            if f == 1:
                kv = {k: val.decode() for k, _, val in pb_parse(v)}
                labels.append((kv.get(1, ""), kv.get(2, "")))
            elif f == 2:
                ch = {k: val for k, _, val in pb_parse(v)}
                if ch.get(3) != 1:
                    raise AssertionError("chunk type %r" % ch.get(3))
                samples += int.from_bytes(ch[4][:2], "big")
                chunks += 1
        if labels != sorted(labels) or ("site", "a") not in labels or not chunks:
            raise AssertionError("frame %d: labels %s, %d chunks" % (frames, labels, chunks))
        if not series or series[-1] != labels:
            series.append(labels)
    if series != sorted(series):
        raise AssertionError("series not in label order")
    want = api(murl, "/api/v1/query", {"query": "sum(count_over_time(http_requests_total[1d]))",
                                       "time": T0 + SPAN})["data"]["result"][0]["value"][1]
    if len(series) != 18 or samples != int(want):
        raise AssertionError("%d series, %d samples in chunks, want 18 and %s"
                             % (len(series), samples, want))
    print("streamed: %d frames, %d series, %d samples" % (frames, len(series), samples))


def snappy_decode(b):
    n, pos = read_uvarint(b, 0)
    out = bytearray()
    while pos < len(b):
        tag = b[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:
            ln = tag >> 2
            if ln >= 60:
                nb = ln - 59
                ln = int.from_bytes(b[pos:pos + nb], "little")
                pos += nb
            ln += 1
            out += b[pos:pos + ln]
            pos += ln
            continue
        if kind == 1:
            ln, off = 4 + ((tag >> 2) & 7), (tag >> 5) << 8 | b[pos]
            pos += 1
        elif kind == 2:
            ln, off = (tag >> 2) + 1, int.from_bytes(b[pos:pos + 2], "little")
            pos += 2
        else:
            ln, off = (tag >> 2) + 1, int.from_bytes(b[pos:pos + 4], "little")
            pos += 4
        for _ in range(ln):
            out.append(out[-off])
    if len(out) != n:
        raise ValueError("snappy: length %d, header %d" % (len(out), n))
    return bytes(out)


def read_request(url, queries, streamed):
    """POSTs a ReadRequest of (start_ms, end_ms, [(type, name, value)]) queries; returns
    (status, content type, body)."""
    req = b""
    for start, end, matchers in queries:
        q = pb_field(1, 0, start) + pb_field(2, 0, end)
        for t, n, v in matchers:
            m = (pb_field(1, 0, t) if t else b"") + pb_field(2, 2, n.encode()) + \
                pb_field(3, 2, v.encode())
            q += pb_field(3, 2, m)
        req += pb_field(1, 2, q)
    if streamed:
        req += pb_field(2, 0, 1)
    r = urllib.request.Request(url + "/api/v1/read", data=snappy_literal(req), method="POST",
                               headers={"Content-Type": "application/x-protobuf",
                                        "Content-Encoding": "snappy"})
    try:
        with urllib.request.urlopen(r, timeout=60) as resp:
            return resp.status, resp.headers.get("Content-Type"), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read()


def frames_summary(body):
    """[(query index, labels bytes, samples in the frame's chunks)] of a streamed body, runs of
    frames of one series folded into one entry (chunk boundaries are the storage's own)."""
    out, pos = [], 0
    while pos < len(body):
        n, pos = read_uvarint(body, pos)
        payload = body[pos + 4:pos + 4 + n]
        if crc32c(payload) != int.from_bytes(body[pos:pos + 4], "big"):
            raise AssertionError("bad CRC")
        pos += 4 + n
        fields = pb_parse(payload)
        qi = ([v for f, _, v in fields if f == 2] or [0])[0]
        cs = pb_parse([v for f, _, v in fields if f == 1][0])
        labels = b"".join(pb_field(1, 2, v) for f, _, v in cs if f == 1)
        samples = sum(int.from_bytes(dict((k, x) for k, _, x in pb_parse(v))[4][:2], "big")
                      for f, _, v in cs if f == 2)
        if out and out[-1][:2] == (qi, labels):
            out[-1] = (qi, labels, out[-1][2] + samples)
        else:
            out.append((qi, labels, samples))
    return out


def server_diff(murl, purl):
    """The same ReadRequests to meshprom and to Prometheus 2.42 serving the same data: SAMPLES
    answers must be byte-identical after snappy decoding; streamed answers the same series in
    the same order with the same number of samples each."""
    ms = lambda t: t * 1000
    cases = [
        [(ms(T0), ms(T0 + SPAN), [(0, "__name__", "http_requests_total")])],
        [(ms(T0 + 600), ms(T0 + 4000), [(2, "__name__", "http_.*|temp.*"), (1, "code", "200")]),
         (ms(T0), ms(T0 + SPAN), [(0, "site", "a"), (0, "room", "cellar")]),
         (ms(T0), ms(T0 + SPAN), [(3, "le", "0.0.*|\\+Inf"), (0, "__name__",
                                                              "request_duration_seconds_bucket")])],
        [(ms(T0 + 7000), ms(T0 + 7001), [(0, "site", "b")])],
        # inside chunks but between two samples: no sample in the range
        [(ms(T0 + 7001), ms(T0 + 7002), [(0, "__name__", "temperature_celsius")])],
        [],
    ]
    for i, queries in enumerate(cases):
        a = read_request(murl, queries, False)
        b = read_request(purl, queries, False)
        if a[0] != 200 or b[0] != 200:
            raise AssertionError("case %d: status %d / %d: %r %r" % (i, a[0], b[0], a[2][:200],
                                                                       b[2][:200]))
        da, db = snappy_decode(a[2]), snappy_decode(b[2])
        if da != db:
            k = next((j for j in range(min(len(da), len(db))) if da[j] != db[j]),
                     min(len(da), len(db)))
            raise AssertionError("case %d: SAMPLES differ at byte %d of %d/%d: %r / %r"
                                 % (i, k, len(da), len(db), da[k:k + 40], db[k:k + 40]))
        sa, sb = read_request(murl, queries, True), read_request(purl, queries, True)
        if sa[1] != sb[1]:
            raise AssertionError("case %d: content types %r / %r" % (i, sa[1], sb[1]))
        fa, fb = frames_summary(sa[2]), frames_summary(sb[2])
        if fa != fb:
            raise AssertionError("case %d: streamed answers differ:\n%s\n%s"
                                 % (i, fa[:3], fb[:3]))
    print("server diff: %d cases identical" % len(cases))


def main():
    if len(sys.argv) != 2:
        print("usage: read_diff.py BUILD_DIR", file=sys.stderr)
        return 2
    build = sys.argv[1]
    meshprom = os.path.join(build, "cmd", "meshprom")
    tool = os.path.join(build, "cmd", "meshpromtool")
    for b in (meshprom, tool):
        if not os.access(b, os.X_OK):
            skip("not built: " + b)
    work = tempfile.mkdtemp(prefix="mp-read-diff-", dir="/tmp")
    procs = []
    try:
        om = os.path.join(work, "data.om")
        fixture(om)
        mdir = os.path.join(work, "meshprom")
        os.makedirs(mdir)
        subprocess.run([tool, "tsdb", "create-blocks-from", "openmetrics", om, mdir],
                       check=True, stdout=subprocess.DEVNULL)
        mcfg = os.path.join(work, "meshprom.yml")
        with open(mcfg, "w") as f:
            f.write("global:\n  external_labels:\n    site: a\n")
        mp, murl, _ = start(meshprom, "meshprom", work, mcfg, [])
        procs.append(mp)
        streamed_check(murl)
        bad = urllib.request.Request(murl + "/api/v1/read", data=b"\xff\xff\xff", method="POST")
        try:
            urllib.request.urlopen(bad, timeout=30)
            raise AssertionError("a corrupt body was accepted")
        except urllib.error.HTTPError as e:
            if e.code != 400 or e.read() != b"snappy: corrupt input\n":
                raise AssertionError("corrupt body: %d" % e.code)
        if not os.access(PROM, os.X_OK):
            skip("no prometheus at " + PROM + " (the streamed check passed)")
        pcfg = os.path.join(work, "prometheus.yml")
        with open(pcfg, "w") as f:
            f.write("global:\n  external_labels:\n    site: a\n"
                    "remote_read:\n  - url: %s/api/v1/read\n    read_recent: true\n" % murl)
        pp, purl, _ = start(PROM, "prometheus", work, pcfg, [])
        procs.append(pp)
        # Prometheus as a remote-read *server* of the same data, for the wire bytes
        promtool = os.path.join(os.path.dirname(PROM), "promtool")
        if os.access(promtool, os.X_OK):
            sdir = os.path.join(work, "promserver")
            os.makedirs(sdir)
            subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", om, sdir],
                           check=True, stdout=subprocess.DEVNULL)
            ps, psurl, _ = start(PROM, "promserver", work, mcfg, [])
            procs.append(ps)
            server_diff(murl, psurl)

        checks, failures = 0, []
        asks = []
        for q in QUERIES:
            for t in INSTANT_TIMES:
                asks.append(("/api/v1/query", {"query": q, "time": t}))
            asks.append(("/api/v1/query_range",
                         {"query": q, "start": RANGE[0], "end": RANGE[1], "step": RANGE[2]}))
        for m in ("http_requests_total", 'temperature_celsius{room="cellar"}',
                  '{__name__=~"request_.*", le="+Inf"}'):
            asks.append(("/api/v1/series",
                         {"match[]": m, "start": T0, "end": T0 + SPAN}))
        nonempty = 0
        for path, params in asks:
            a = canon(api(murl, path, params))
            b = canon(api(purl, path, params))
            checks += 1
            nonempty += bool(a[1])
            if not same(a, b):
                failures.append((path, params, a, b))
        # the answers must really have come through remote read
        _, metrics = get(murl + "/metrics")
        reads = 0.0
        for line in metrics.decode().splitlines():
            if line.startswith("prometheus_http_requests_total{") and \
                    'handler="/api/v1/read"' in line and 'code="200"' in line:
                reads += float(line.rsplit(" ", 1)[1])
        gauge = [l for l in metrics.decode().splitlines()
                 if l.startswith("prometheus_api_remote_read_queries ")]
        if gauge != ["prometheus_api_remote_read_queries 0"]:
            print("FAIL: remote read gauge after all requests: %s" % gauge)
            return 1
        if reads < len(asks):
            print("FAIL: meshprom answered only %d remote reads for %d queries" % (reads, len(asks)))
            return 1
        # a sanitizer build reports leaks and errors at exit: meshprom must stop cleanly
        stop(mp)
        procs.remove(mp)
        mlog = open(os.path.join(work, "meshprom.log")).read()
        if mp.returncode != 0 or "Sanitizer" in mlog or "runtime error" in mlog:
            print("FAIL: meshprom exited with %d:\n%s" % (mp.returncode, mlog[-3000:]))
            return 1
        for path, params, a, b in failures[:5]:
            print("DIFF %s %s\n  meshprom:   %s\n  prometheus: %s"
                  % (path, params, str(a)[:600], str(b)[:600]))
        print("%d queries compared, %d with data, %d differ" % (checks, nonempty, len(failures)))
        if nonempty < checks // 2:
            print("FAIL: too few answers with data; the fixture did not load")
            return 1
        return 1 if failures else 0
    finally:
        for p in reversed(procs):
            stop(p)
        if os.environ.get("MP_KEEP_WORKDIR"):
            print("kept " + work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
