#!/usr/bin/env bash
# One A/B round: stored, q8, q4 (checkpoints saved quantised), base and new back to back, the
# order reversed on even rounds. base: HEAD's tool on checkpoints quantised by HEAD's presets
# (low-rank projections stored); new: the working tree's tool on checkpoints quantised by its
# presets (low-rank projections in q8_0). Appends one JSON line per run to $OUT.
set -u
round=$1; OUT=$2
M=/work/main/build/helper-cpu
base=/tmp/base2/build/bin/rodimus; new=/tmp/newlr/rodimus
order="base new"; [ $((round % 2)) = 0 ] && order="new base"
for w in stored q8 q4; do
  for b in $order; do
    bin=$base; sfx=""
    [ $b = new ] && { bin=$new; sfx="lr"; }
    case $w in stored) dir=$M/model-1.6b;; q8) dir=$M/model-1.6b-q8$sfx;; q4) dir=$M/model-1.6b-q4$sfx;; esac
    load=$(cut -d' ' -f1 /proc/loadavg)
    j=$($bin bench --backend cpu --geometry rodimus-plus-1.6b --batch 1 --prompt 1 --gen 16 --threads 2 --dir $dir --json 2>/dev/null | tail -1)
    echo "{\"round\":$round,\"build\":\"$b\",\"weights\":\"$w\",\"dir\":\"$(basename $dir)\",\"load_before\":$load,\"result\":$j}" >> $OUT
  done
done
