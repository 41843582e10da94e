#!/usr/bin/env bash
# One A/B round: stored, q8, q4 (quantised at load by --weights), base and new back to back, the
# order reversed on even rounds. base: HEAD b718e24's tool (the presets put the channel gate's up
# projection W1 in q8_0); new: the working tree's tool (W1 stored, applied inside mixer_decode).
# Both read the same random rodimus-plus-1.6b checkpoint. Appends one JSON line per run to $OUT.
set -u
round=$1; OUT=$2
M=/work/main/build/helper-cpu/model-1.6b
base=/tmp/base3/build/bin/rodimus; new=/tmp/gu/rodimus
order="base new"; [ $((round % 2)) = 0 ] && order="new base"
for w in stored q8 q4; do
  for b in $order; do
    bin=$base; [ $b = new ] && bin=$new
    load=$(cut -d' ' -f1 /proc/loadavg)
    j=$($bin bench --backend cpu --geometry rodimus-plus-1.6b --weights $w --batch 1 --prompt 1 --gen 16 --threads 2 --dir $M --json 2>/dev/null | tail -1)
    echo "{\"round\":$round,\"build\":\"$b\",\"weights\":\"$w\",\"load_before\":$load,\"result\":$j}" >> $OUT
  done
done
