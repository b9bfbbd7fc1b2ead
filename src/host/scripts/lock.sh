#!/bin/sh
# $1 the lock file, $2 the controller, $3 the silence limit (s); $4... (optional) the probe's
# arguments: once the lock is taken the shell function `probe` (put in front) runs with them,
# its output before `locked`, so the first observation needs no command of its own.
exec 9>>"$1" || exit 70
if ! flock -n 9; then printf 'busy %s\n' "$(head -c 300 "$1" | tr '\n' ' ')"; exit 75; fi
: > "$1"
printf '%s; holder pid %s since %s\n' "$2" "$$" "$(date -u +%Y-%m-%dT%H:%M:%SZ 9>&-)" >> "$1"
ngfleet_lock=$1 ngfleet_silence=${3:-30}
if [ "$#" -gt 3 ]; then
  shift 3
  # Without the lock's fd (so no child of the probe keeps the lock) and without stdin (the
  # heartbeats are the holder's alone); the probe's fd 3 goes with it.
  { probe "$@"; } 9>&- < /dev/null
  exec 3<&-
fi
echo locked
while hb=$(timeout "$ngfleet_silence" head -n 1 9>&- 2>/dev/null) && [ -n "$hb" ]; do
  printf '%s\n' "$hb"
done
: > "$ngfleet_lock"
