# Tables of decode_ab.jsonl: tokens/s per round, medians, new / base per round, x stored per round,
# decode_limit_ratio (of its own floor).
import json, statistics as st, sys
rows = [json.loads(l) for l in open(sys.argv[1] if len(sys.argv) > 1 else 'decode_ab.jsonl')]
R = sorted({r['round'] for r in rows})
get = lambda rnd, b, w, k='decode_tokens_per_s': next(x['result'][k] for x in rows if x['round'] == rnd and x['build'] == b and x['weights'] == w)
print('rounds', R)
for w in ['stored', 'q8', 'q4']:
    base = [get(r, 'base', w) for r in R]; new = [get(r, 'new', w) for r in R]
    print(f"{w}: GB/step base {get(R[0],'base',w,'weight_bytes')/1e9:.3f} new {get(R[0],'new',w,'weight_bytes')/1e9:.3f}")
    print('  base tok/s', ' / '.join(f'{x:.2f}' for x in base), ' median', f'{st.median(base):.2f}')
    print('  new  tok/s', ' / '.join(f'{x:.2f}' for x in new), ' median', f'{st.median(new):.2f}')
    print('  new/base  ', ' / '.join(f'{n/b:.2f}' for n, b in zip(new, base)), ' median ratio', f'{st.median([n/b for n,b in zip(new,base)]):.3f}')
    for b in ['base', 'new']:
        print(f'  floor {b:4s} ', ' / '.join(f"{get(r,b,w,'decode_limit_ratio'):.2f}" for r in R))
        print(f'  probe GB/s {b:4s}', ' / '.join(f"{get(r,b,w,'read_bandwidth_bytes_per_s')/1e9:.0f}" for r in R))
for w in ['q8', 'q4']:
    for b in ['base', 'new']:
        xs = [get(r, b, w) / get(r, b, 'stored') for r in R]
        med = st.median([get(r, b, w) for r in R]) / st.median([get(r, b, 'stored') for r in R])
        print(f'{w} x stored {b}:', ' / '.join(f'{x:.2f}' for x in xs), f' median per round {st.median(xs):.2f}; ratio of medians {med:.2f}')
print('load_before', min(r['load_before'] for r in rows), '-', max(r['load_before'] for r in rows))
