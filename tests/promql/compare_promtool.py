#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Optional differential check of tests/promql/*.test against a real Prometheus (2.42 here)
through `promtool test rules`: every eval becomes instant queries (a range eval one per step)
with empty expectations, and promtool's "got:" lines are compared with the file's values.
Not part of the test suite (it needs promtool). Known limits: @ start()/end() and the default
subquery step follow promtool's rule-evaluation settings, samples after the last evaluation
time are not loaded, warnings and error texts are not compared.
Usage: tests/promql/compare_promtool.py tests/promql/*.test"""
import math, re, subprocess, sys, tempfile, os, struct

def dur(s):
    if s == '0': return 0
    m = re.fullmatch(r'(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?', s)
    if not m or not s: raise ValueError('bad duration ' + s)
    mult = [365*86400000, 7*86400000, 86400000, 3600000, 60000, 1000, 1]
    return sum(int(g or 0) * k for g, k in zip(m.groups(), mult))

STALE = 'stale'
def num(s):
    t = s.lower().lstrip('+-')
    if t in ('inf', 'nan'):
        v = float(t); return -v if s.startswith('-') else v
    try: return float(int(s, 0))
    except ValueError: return float(s)

def expand(s):
    out = []
    for it in s.split():
        if it == '_': out.append(None); continue
        if it == 'stale': out.append(STALE); continue
        m = re.fullmatch(r'_x(\d+)', it)
        if m: out += [None] * int(m.group(1)); continue
        m = re.fullmatch(r'([-+]?(?:[0-9.]+(?:[eE][-+]?\d+)?|[iI]nf|[nN]a[nN]))(?:([-+])([0-9.]+(?:[eE][-+]?\d+)?|[iI]nf))?x(\d+)', it)
        if m:
            a = num(m.group(1)); n = int(m.group(4))
            b = num(m.group(3)) if m.group(3) else 0.0
            if m.group(2) == '-': b = -b
            v = a
            for _ in range(n + 1):
                out.append(v); v = v + b
            continue
        out.append(num(it))
    return out

def parse_labels(s):
    s = s.strip()
    name = None
    m = re.match(r'([a-zA-Z_:][a-zA-Z0-9_:]*)', s)
    d = {}
    if m:
        name = m.group(1); s = s[m.end():]
        d['__name__'] = name
    if s.startswith('{'):
        body = s[1:s.rindex('}')]
        for lm in re.finditer(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"', body):
            d[lm.group(1)] = bytes(lm.group(2), 'utf-8').decode('unicode_escape')
    return tuple(sorted(d.items()))

def split_series(line):
    depth = 0; inq = False
    for i, c in enumerate(line):
        if inq:
            if c == '\\': continue
            if c == '"': inq = False
            continue
        if c == '"': inq = True
        elif c == '{': depth += 1
        elif c == '}': depth -= 1
        elif c.isspace() and depth == 0:
            return line[:i], line[i:]
    return line, ''

def fmt_labels(ls):
    d = dict(ls); name = d.pop('__name__', '')
    return name + '{' + ', '.join('%s="%s"' % (k, v.replace('\\', '\\\\').replace('"', '\\"')) for k, v in sorted(d.items())) + '}'

def almost(a, b):
    if a == STALE or b == STALE: return a == b
    if math.isnan(a) or math.isnan(b): return math.isnan(a) and math.isnan(b)
    if a == b: return True
    diff = abs(a - b)
    if a == 0 or b == 0 or abs(a) + abs(b) < 2.2250738585072014e-308: return diff < 1e-6 * 2.2250738585072014e-308
    return diff / min(abs(a) + abs(b), 1.7976931348623157e308) < 1e-6

def parse_file(path):
    lines = [l.strip() for l in open(path).read().split('\n')]
    lines = ['' if l.startswith('#') else l for l in lines]
    segs = [{'loads': [], 'evals': []}]
    i = 0
    while i < len(lines):
        l = lines[i]
        if not l: i += 1; continue
        w = l.split(None, 1)[0].lower()
        if w == 'clear':
            segs.append({'loads': [], 'evals': []}); i += 1; continue
        if w == 'load':
            iv = dur(l.split()[1]); ser = []
            i += 1
            while i < len(lines) and lines[i]:
                a, b = split_series(lines[i]); ser.append((parse_labels(a), expand(b))); i += 1
            segs[-1]['loads'].append((iv, ser)); continue
        if w.startswith('eval'):
            m = re.match(r'^(eval\w*)\s+instant\s+at\s+(\S+)\s+(.+)$', l)
            ev = {'line': i + 1, 'kind': w, 'exp': [], 'scalar': None}
            if m:
                ev.update(range=False, start=dur(m.group(2)), end=dur(m.group(2)), step=1, q=m.group(3))
            else:
                m = re.match(r'^(eval\w*)\s+range\s+from\s+(\S+)\s+to\s+(\S+)\s+step\s+(\S+)\s+(.+)$', l)
                ev.update(range=True, start=dur(m.group(2)), end=dur(m.group(3)), step=dur(m.group(4)), q=m.group(5))
            i += 1
            while i < len(lines) and lines[i]:
                d = lines[i]
                if d.startswith('expected_fail'): i += 1; continue
                try:
                    ev['scalar'] = num(d); i += 1; continue
                except ValueError: pass
                a, b = split_series(d); ev['exp'].append((parse_labels(a), expand(b))); i += 1
            segs[-1]['evals'].append(ev); continue
        raise ValueError('line %d: %s' % (i + 1, l))
    return segs

def fmtv(v):
    if v == STALE: return 'stale'
    if v is None: return '_'
    r = repr(v)
    if r == 'inf': return 'Inf'
    if r == '-inf': return '-Inf'
    if r == 'nan': return 'NaN'
    return r

def run_seg(seg, path):
    import functools
    if not seg['evals']: return 0
    ivs = [iv for iv, _ in seg['loads']] or [60000]
    base = functools.reduce(math.gcd, ivs)
    data = {}
    for iv, ser in seg['loads']:
        for ls, vals in ser:
            pts = data.setdefault(ls, {})
            for k, v in enumerate(vals):
                if v is not None: pts[k * iv] = v
    series = []
    for ls, pts in data.items():
        if not pts: continue
        n = max(pts) // base
        items = []
        for k in range(n + 1):
            items.append(fmtv(pts.get(k * base)))
        series.append((ls, ' '.join(items)))
    tests = []
    for ev in seg['evals']:
        t = ev['start']
        while t <= ev['end']:
            tests.append((ev, t)); t += ev['step']
            if not ev['range']: break
    times = [t for _, t in tests]
    g = functools.reduce(math.gcd, times + [base])
    g = max(g, 1000) if all(t % 1000 == 0 for t in times) else g
    y = ['rule_files: []', 'evaluation_interval: %dms' % g, 'tests:', '  - interval: %dms' % base, '    input_series:']
    for ls, vals in series:
        y.append("      - series: '%s'" % fmt_labels(ls).replace("'", "''"))
        y.append("        values: '%s'" % vals)
    y.append('    promql_expr_test:')
    for ev, t in tests:
        y.append("      - expr: '%s'" % ev['q'].replace("'", "''"))
        y.append('        eval_time: %dms' % t)
        y.append('        exp_samples: []')
    with tempfile.NamedTemporaryFile('w', suffix='.yml', delete=False) as f:
        f.write('\n'.join(y) + '\n'); fn = f.name
    out = subprocess.run(['promtool', 'test', 'rules', fn], capture_output=True, text=True)
    os.unlink(fn)
    txt = out.stdout + out.stderr
    got = {}
    for m in re.finditer(r'expr: "((?:[^"\\]|\\.)*)", time: (\S+?),\s*\n\s*exp: nil\n\s*got: (.*)', txt):
        q = bytes(m.group(1), 'utf-8').decode('unicode_escape')
        got[(q, dur(m.group(2)))] = m.group(3)
    errs = {}
    for m in re.finditer(r'expr: "((?:[^"\\]|\\.)*)", time: (\S+?), err: (.*)', txt):
        q = bytes(m.group(1), 'utf-8').decode('unicode_escape')
        errs[(q, dur(m.group(2)))] = m.group(3)
    bad = 0
    for ev in seg['evals']:
        fail = ev['kind'] == 'eval_fail'
        msgs = []
        t = ev['start']; step_i = 0
        while t <= ev['end']:
            key = (ev['q'], t)
            if key in errs:
                if not fail: msgs.append('t=%gs: error %s' % (t / 1000, errs[key]))
            elif fail:
                msgs.append('t=%gs: expected an error, got %s' % (t / 1000, got.get(key, 'empty')))
            else:
                res = {}
                s = got.get(key, '')
                for gm in re.finditer(r'(\{(?:[^"}]|"(?:[^"\\]|\\.)*")*\}) (\S+?)(?:, |$)', s):
                    res[parse_labels(gm.group(1))] = num(gm.group(2))
                if ev['scalar'] is not None:
                    v = res.get((), None)
                    if v is None or not almost(v, ev['scalar']): msgs.append('t=%gs: scalar want %s got %s' % (t / 1000, fmtv(ev['scalar']), s))
                else:
                    want = {}
                    for ls, vals in ev['exp']:
                        v = vals[step_i] if step_i < len(vals) else None
                        if v is not None: want[ls] = v
                    for ls in set(want) | set(res):
                        if ls not in res: msgs.append('t=%gs: missing %s %s' % (t / 1000, fmt_labels(ls), fmtv(want[ls])))
                        elif ls not in want: msgs.append('t=%gs: extra %s %s' % (t / 1000, fmt_labels(ls), fmtv(res[ls])))
                        elif not almost(want[ls], res[ls]): msgs.append('t=%gs: %s want %s got %s' % (t / 1000, fmt_labels(ls), fmtv(want[ls]), fmtv(res[ls])))
            if not ev['range']: break
            t += ev['step']; step_i += 1
        if msgs:
            bad += 1
            print('%s:%d: %s' % (path, ev['line'], ev['q']))
            for m in msgs: print('    ' + m)
    if 'error' in txt.lower() and not errs and not got and 'FAILED' not in txt:
        print(txt)
    return bad

if __name__ == '__main__':
    total = 0
    for p in sys.argv[1:]:
        for seg in parse_file(p):
            total += run_seg(seg, p)
    print('differences vs 2.42:', total)
