# Geometric mean over every avx2 benchmark of after/before for limit_ratio (rate against the
# limit the same binary measured in the same run) and raw tokens_per_s.
import json, math, sys
def load(d):
    out = {}
    for b in ['bench_gla', 'bench_linear', 'bench_elementwise', 'bench_swska']:
        for x in json.load(open(f'{d}/{b}.json'))['benchmarks']:
            if x.get('run_type') == 'aggregate' and x.get('aggregate_name') != 'median': continue
            name = x['run_name'] if 'run_name' in x else x['name']
            if '/avx2/' not in name and not name.endswith('/avx2'): continue
            out[name] = x
    return out
def gm(v): return math.exp(sum(map(math.log, v)) / len(v)) if v else float('nan')
for before, after in [p.split(':') for p in sys.argv[1:]]:
    a, b = load(after), load(before)
    keys = sorted(set(a) & set(b))
    lr = [a[k]['limit_ratio'] / b[k]['limit_ratio'] for k in keys if b[k].get('limit_ratio') and a[k].get('limit_ratio')]
    tp = [a[k]['tokens_per_s'] / b[k]['tokens_per_s'] for k in keys if b[k].get('tokens_per_s') and a[k].get('tokens_per_s')]
    print(f'{after} vs {before}: {len(keys)} avx2 benchmarks; geomean limit_ratio {gm(lr):.3f} '
          f'(min {min(lr):.2f}, max {max(lr):.2f}); geomean tokens/s {gm(tp):.3f}')
