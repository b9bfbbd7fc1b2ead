#!/bin/sh
f=$1 off=$2; shift 2
[ -f "$f" ] || exit 0
size=$(stat -c %s "$f")
[ "$size" -lt "$off" ] && off=0
pats=""
for p; do pats="$pats
$p"; done
tail -c +"$((off + 1))" "$f" | grep -F -e "${pats#?}" | head -n 5
exit 0
