#!/bin/bash
# usage: ab_gen.sh OUT ROUNDS "toolA toolB" "stored q8 q4"
out=$1; rounds=$2; tools=($3); ws=$4
: > $out
for r in $(seq 1 $rounds); do
  if (( r % 2 )); then order="${tools[*]}"; else order=$(printf '%s\n' "${tools[@]}" | tac | tr '\n' ' '); fi
  for w in $ws; do
    case $w in stored) d=/work/main/build/helper-cpu/model-1.6b;; q8) d=/tmp/m16-q8;; q4) d=/tmp/m16-q4;; esac
    for b in $order; do
      j=$(/tmp/rod_$b bench --backend cpu --geometry rodimus-plus-1.6b --dir $d --prompt 1 --gen 24 --json 2>/dev/null | tail -1)
      echo "{\"round\":$r,\"tool\":\"$b\",\"w\":\"$w\",\"r\":$j}" >> $out
    done
  done
done
