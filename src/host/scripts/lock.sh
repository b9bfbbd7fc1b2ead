#!/bin/sh
exec 9>>"$1" || exit 70
if ! flock -n 9; then printf 'busy %s\n' "$(head -c 300 "$1" | tr '\n' ' ')"; exit 75; fi
: > "$1"
printf '%s; holder pid %s since %s\n' "$2" "$$" "$(date -u +%Y-%m-%dT%H:%M:%SZ 9>&-)" >> "$1"
echo locked
while hb=$(timeout "${3:-30}" head -n 1 9>&- 2>/dev/null) && [ -n "$hb" ]; do
  printf '%s\n' "$hb"
done
: > "$1"
