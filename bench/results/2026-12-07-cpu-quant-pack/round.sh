#!/usr/bin/env bash
# base vs new, interleaved: per round each weights setting with base and new back to back.
set -u
out=${OUT:-/tmp/qpack-runs}
base=${BASE:-/tmp/qpack-base/build/bin/rodimus}   # main at a6c0d34, git archive + the same flags
new=${NEW:-build/rel/bin/rodimus}                     # this branch
common=(bench --backend cpu --geometry rodimus-plus-1.6b --batch 1 --prompt 16 --gen 32 --dir /tmp/rq --json --threads 2)
for r in 1 2 3; do
  order="stored q8 q4"; [ $((r % 2)) -eq 0 ] && order="q4 q8 stored"
  for w in $order; do
    pair="base new"; [ $((r % 2)) -eq 0 ] && pair="new base"
    for v in $pair; do
      tool=$base; [ $v = new ] && tool=$new
      "$tool" "${common[@]}" --weights $w > $out/r${r}_${w}_$v.json 2> $out/r${r}_${w}_$v.err
      echo "round $r $w $v: $(sed -n 's/.*"decode_tokens_per_s":\([-0-9.eE+]*\).*/\1/p' $out/r${r}_${w}_$v.json)"
    done
  done
done
