import json,sys,collections,statistics as s
rows=[json.loads(l) for f in sys.argv[1:] for l in open(f)]
d=collections.defaultdict(list); tools=[]
for x in rows:
  r=x['r']; bw=r['read_bandwidth_bytes_per_s']/1e9
  if x['tool'] not in tools: tools.append(x['tool'])
  st='slow' if bw<50 else 'fast'
  d[(st,x['w'],x['tool'])].append((r['decode_tokens_per_s'], r['decode_limit_ratio_paired_median'], bw))
for st in ('slow','fast'):
  for w in ('stored','q8','q4'):
    line=[]
    for t in tools:
      v=d[(st,w,t)]
      if v: line.append(f"{t}: n={len(v):2d} tok/s {s.median([a for a,_,_ in v]):5.2f} of-floor {s.median([b for _,b,_ in v]):.3f} bw {s.median([c for *_,c in v]):.0f}")
    if line: print(st,w,' | '.join(line))
