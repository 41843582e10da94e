#!/usr/bin/env bash
# One A/B round: stored, q8, q4 (pre-quantised checkpoints), base and new back to back, the order
# reversed on even rounds. Appends one JSON line per run to $OUT.
set -u
round=$1; OUT=$2
M=/work/main/build/helper-cpu
base=/tmp/base/build/bin/rodimus; new=$M/bin/rodimus
order="base new"; [ $((round % 2)) = 0 ] && order="new base"
for w in stored q8 q4; do
  case $w in stored) dir=$M/model-1.6b;; q8) dir=$M/model-1.6b-q8;; q4) dir=$M/model-1.6b-q4;; esac
  for b in $order; do
    bin=$base; [ $b = new ] && bin=$new
    load=$(cut -d' ' -f1 /proc/loadavg)
    j=$($bin bench --backend cpu --geometry rodimus-plus-1.6b --batch 1 --prompt 1 --gen 16 --threads 2 --dir $dir --json 2>/dev/null | tail -1)
    echo "{\"round\":$round,\"build\":\"$b\",\"weights\":\"$w\",\"load_before\":$load,\"result\":$j}" >> $OUT
  done
done
