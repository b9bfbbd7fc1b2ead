#!/bin/sh
lock=$1 pid=$2
[ -e "$lock" ] || { echo free; exit 0; }
flock -n "$lock" true 2>/dev/null && { echo free; exit 0; }
real=$(readlink -f -- "$lock") || { echo "failed: cannot resolve $lock"; exit 5; }
holds() {
  for fd in "/proc/$1/fd/"*; do
    [ "$(readlink -- "$fd" 2>/dev/null)" = "$real" ] && return 0
  done
  return 1
}
ours() { tr '\0' '\n' < "/proc/$1/cmdline" 2>/dev/null | grep -qx ngfleet; }
if [ -z "$pid" ]; then
  for p in $(find /proc/[0-9]*/fd -maxdepth 1 -lname "$real" 2>/dev/null | cut -d/ -f3 | sort -u); do
    if [ "$p" != "$$" ] && ours "$p" && holds "$p"; then
      [ -z "$pid" ] || { echo "refused: more than one process holds $lock ($pid $p)"; exit 4; }
      pid=$p
    fi
  done
  [ -n "$pid" ] || { echo "refused: no ngfleet process holds $lock"; exit 4; }
fi
if ! ours "$pid" || ! holds "$pid"; then
  echo "refused: pid $pid does not hold $lock"; exit 4
fi
kill -s TERM "$pid" 2>/dev/null
i=0
until flock -n "$lock" true 2>/dev/null; do
  i=$((i + 1))
  if [ "$i" -eq 30 ] && holds "$pid"; then kill -s KILL "$pid" 2>/dev/null; fi
  [ "$i" -lt 60 ] || { echo "failed: $lock is still held"; exit 5; }
  sleep 0.1
done
flock -n "$lock" truncate -s 0 -- "$lock" 2>/dev/null
echo "released $pid"
