#!/bin/sh
pid=$1 sig=$2 kind=$3 parent=$4
read -r stat 2>/dev/null < "/proc/$pid/stat" || { echo gone; exit 3; }
rest=${stat##*) }
# shellcheck disable=SC2086 # the fields of /proc/PID/stat, split on purpose
set -- $rest
[ "$1" = Z ] && { echo gone; exit 3; }
ppid=$2
title=$(tr '\0' ' ' 2>/dev/null < "/proc/$pid/cmdline")
case "$kind" in
  master) case "$title" in "nginx: master process"*) ;; *) echo "refused: $pid is not an nginx master: $title"; exit 4;; esac ;;
  worker) case "$title" in "nginx: worker process"*) ;; *) echo "refused: $pid is not an nginx worker: $title"; exit 4;; esac ;;
  child) [ "$ppid" = "$parent" ] || { echo "refused: $pid is not a child of $parent"; exit 4; } ;;
esac
kill -s "$sig" "$pid" && echo sent
