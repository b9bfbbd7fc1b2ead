#!/bin/sh
new=$1 limit=$2; shift 2
say() { printf '%s %s\n' "$1" "$2"; }
magic=$(od -An -tx1 -N4 "$new" | tr -d ' \n')
say magic "$magic"
say class "$(od -An -tu1 -j4 -N1 "$new" | tr -d ' \n')"
say emachine "$(od -An -tu2 -j18 -N2 "$new" | tr -d ' \n')"
say hostmachine "$(uname -m)"
if [ "$magic" = 7f454c46 ]; then
  chmod 700 "$new"
  out=$(timeout "$limit" "$new" -t "$@" 2>&1); rc=$?
  say test_rc "$rc"
  printf '%s\n' "$out" | sed 's/^/test_out /'
fi
say end ok
