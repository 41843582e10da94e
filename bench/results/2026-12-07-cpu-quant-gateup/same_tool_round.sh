#!/usr/bin/env bash
set -u
OUT=$1; M=/work/main/build/helper-cpu/model-1.6b; bin=/tmp/gu/rodimus
for r in 1 2 3 4 5; do
  for w in stored q8 q4; do
    load=$(cut -d' ' -f1 /proc/loadavg)
    j=$($bin bench --backend cpu --geometry rodimus-plus-1.6b --weights $w --batch 1 --prompt 1 --gen 16 --threads 2 --dir $M --json 2>/dev/null | tail -1)
    echo "{\"round\":$r,\"weights\":\"$w\",\"load_before\":$load,\"result\":$j}" >> $OUT
  done
done
