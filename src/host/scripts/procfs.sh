#!/bin/sh
# procfs.sh - what the probe and the steps read of pid files and /proc, with shell built-ins
# only (a command would cost a fork and an exec each time, and these run after every step).
# Put in front of probe.sh and of act.sh + probe.sh; each function sets a variable.
# shellcheck disable=SC2034 # p, k and t are read by the scripts that follow
# shellcheck disable=SC2086 # the fields of /proc/PID/stat are split on purpose

# held: the sha256 of the file a step opened on fd 4 (scripts/act.sh), for the probe; none yet.
held=

# pidin FILE: the pid a pid file names, in p (trailing non-digits dropped).
pidin() {
  p=
  [ -f "$1" ] && { read -r p 2>/dev/null < "$1" || :; }
  p=${p%"${p##*[0-9]}"}
  case $p in '' | *[!0-9]*) p=; return 1 ;; esac
}
# kids PID: its children, in k.
kids() {
  k=
  if [ -r "/proc/$1/task/$1/children" ]; then
    read -r k 2>/dev/null < "/proc/$1/task/$1/children" || :
    return 0
  fi
  for s in /proc/[0-9]*/stat; do
    read -r line 2>/dev/null < "$s" || continue
    r=${line##*) }
    set -- "$1" $r
    [ "$3" = "$1" ] && { d=${s%/stat}; k="$k ${d#/proc/}"; }
  done
}
# title PID: its command line, NULs as spaces, in t. nginx's own titles hold no NUL, so
# `read` (which drops NULs) gives them without running `tr`.
title() {
  t=
  read -r t 2>/dev/null < "/proc/$1/cmdline" || :
  case $t in "nginx: "*) ;; *) t=$(tr '\0' ' ' 2>/dev/null < "/proc/$1/cmdline") ;; esac
}
