#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Prints "fn input output" lines with Prometheus's (Go's) results for PromQL math functions,
# read back from `promtool test rules` failure output (the expected sample is deliberately
# wrong, so promtool prints what it got). Usage: python3 func_go_math.py > func_go_math.txt
import math
import os
import random
import re
import subprocess
import tempfile

FNS = ['ln', 'log2', 'log10', 'sqrt', 'deg', 'rad']


def go_results(fn, vals, tmp):
    series = '\n'.join(f"      - series: 'x{{i=\"{i}\"}}'\n        values: '{v!r}'"
                       for i, v in enumerate(vals))
    with open(os.path.join(tmp, 'rules.yml'), 'w') as f:
        f.write('groups: []\n')
    with open(os.path.join(tmp, 't.yml'), 'w') as f:
        f.write(f"""rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
{series}
    promql_expr_test:
      - expr: {fn}(x)
        eval_time: 0s
        exp_samples:
          - labels: '{{i="none"}}'
            value: 0
""")
    r = subprocess.run(['promtool', 'test', 'rules', 't.yml'], cwd=tmp, capture_output=True,
                       text=True)
    out = (r.stdout + r.stderr).split('got:')[1]
    return {int(m.group(1)): float(m.group(2))
            for m in re.finditer(r'\{i="(\d+)"\} ([-+0-9.E]+|NaN|[+-]Inf)', out)}


def main():
    random.seed(11)
    print("# Go's results (promtool 2.42.0, Go math on amd64) for PromQL math functions: "
          "fn input output.")
    print("# Made by: python3 func_go_math.py > func_go_math.txt (needs promtool on PATH). "
          "2.42 and 2.55 share these functions.")
    with tempfile.TemporaryDirectory() as tmp:
        for fn in FNS:
            if fn in ('ln', 'log2', 'log10', 'sqrt'):
                vals = [math.exp(random.uniform(-40, 40)) for _ in range(60)]
            else:
                vals = [random.uniform(-1e4, 1e4) for _ in range(60)]
            vals += [0.6023203277884887, 1000.0, 0.1, 3.0, 1e-300, 7e300]
            got = go_results(fn, vals, tmp)
            for i, v in enumerate(vals):
                print(f"{fn} {v!r} {got[i]!r}")


if __name__ == '__main__':
    main()
