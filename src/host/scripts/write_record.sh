#!/bin/sh
f=$1; shift
tmp="$f.tmp"
umask 022
printf '%s\n' "$@" > "$tmp" || exit 71
mv -f -- "$tmp" "$f" || exit 74
echo written
