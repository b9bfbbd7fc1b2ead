#!/bin/sh
# The acts of one nginx step, taken in order from the arguments: fixed sub-actions, every value
# data. Each act prints one `step ...` line. An act that fails (a record or install that failed,
# a check or wait that is not met, a signal refused, or one whose process is gone where that
# matters) skips the acts after it. `probe` ends the list: the probe's code follows this script
# and reads the three arguments left (pid file, binary, depth), so the result of the step and
# the observation that proves it come back in one round trip.
#   record FILE N LINE...               the record, atomically (temp file + rename)
#   install TMP BIN BACKUP SHA N KEEP... as the install of a staged binary (see scripts.rs)
#   signal PID SIG KIND PARENT MISS     checked signal; MISS: stop (gone or refused stops),
#                                       gone (only refused stops), ignore
#   check COND ARGS...                  a fact that must hold now (steady, ready, serves, runs)
#   wait COND MS ARGS...                polls every 10 ms until COND holds or MS pass
#   takeout PID N WORKER... R SIG MS... the exit ladder, then KILL of the workers it had
# shellcheck disable=SC2086 # the fields of /proc/PID/stat are split on purpose
# pidin, kids and title (which set p, k and t) come from scripts/procfs.sh, put in front.
# shellcheck disable=SC2154
ok=yes
umask 022
# Centiseconds since boot, without a fork.
now() {
  read -r up _ < /proc/uptime
  c=${up%%.*}${up#*.}
  c=${c#"${c%%[!0]*}"}
  c=${c:-0}
}
# alive PID: a live process (not a zombie); sets ppid.
alive() {
  read -r st 2>/dev/null < "/proc/$1/stat" || return 1
  r=${st##*) }
  set -- $r
  [ "$1" != Z ] || return 1
  ppid=$2
}
# workers PID: its live workers in wl, nw of them, na accepting.
workers() {
  nw=0 na=0 wl=
  kids "$1"
  for w in $k; do
    alive "$w" || continue
    t=
    read -r t 2>/dev/null < "/proc/$w/cmdline"
    case $t in
      *"worker process is shutting down"*) nw=$((nw + 1)) ;;
      *"worker process"*) nw=$((nw + 1)) na=$((na + 1)) ;;
      *) continue ;;
    esac
    wl="$wl $w"
  done
}
# cond NAME ARGS...: whether a condition of the steps holds now (decide.rs judges the same
# facts again from the probe's output).
cond() {
  case $1 in
    start) # PIDFILE OLD: a new master with workers, child of OLD; or the new binary exited
      pidin "$2" && np=$p || np=
      if [ "$np" = "$3" ] && ! pidin "$2.oldbin"; then
        # Until the master has handled USR2 the files look as they do after a new binary
        # failed (nginx renames .oldbin back): only the pid file's ctime, changed by those
        # renames since the signal, tells them apart. (A filesystem that keeps ctime on rename
        # makes this wait run to its deadline; the controller still judges the observation.)
        [ -n "${mark+x}" ] || return 0
        ct=$(stat -c %z -- "$2" 2>/dev/null) && [ "$ct" != "$mark" ] || return 1
        # The file stat saw may be one renamed or written since the reads above: read again.
        pidin "$2" && [ "$p" = "$3" ] && ! pidin "$2.oldbin"
        return
      fi
      pidin "$2.oldbin" && [ "$p" = "$3" ] && [ -n "$np" ] && [ "$np" != "$3" ] \
        && alive "$np" && [ "$ppid" = "$3" ] && workers "$np" && [ "$nw" -gt 0 ] ;;
    steady) # PIDFILE PID: PID named by the pid file, no .oldbin, with accepting workers
      pidin "$2" && [ "$p" = "$3" ] && ! pidin "$2.oldbin" && alive "$3" && workers "$3" \
        && [ "$na" -gt 0 ] ;;
    ready) # PIDFILE OLD: a new master, child of OLD, named by the pid file, with accepting workers
      pidin "$2" && np=$p && [ "$np" != "$3" ] && pidin "$2.oldbin" && [ "$p" = "$3" ] \
        && alive "$np" && [ "$ppid" = "$3" ] && workers "$np" && [ "$na" -gt 0 ] ;;
    drained) alive "$2" && workers "$2" && [ "$nw" -eq 0 ] ;;
    committed) # PIDFILE OLD NEW
      pidin "$2" && [ "$p" = "$4" ] && alive "$4" || return 1
      alive "$3" || return 0
      workers "$3" && [ "$nw" -gt 0 ] && [ "$na" -eq 0 ] ;;
    gone) ! alive "$2" ;;
    serving) alive "$2" && workers "$2" && [ "$na" -gt 0 ] ;;
    reverted) # PIDFILE OLD NEW (0: none)
      ! pidin "$2.oldbin" && pidin "$2" && [ "$p" = "$3" ] || return 1
      [ "$4" = 0 ] || ! alive "$4" || return 1
      alive "$3" && workers "$3" && [ "$na" -gt 0 ] ;;
    serves) # PIDFILE NEW WORKERS: NEW named by the pid file, these workers, all accepting
      pidin "$2" && [ "$p" = "$3" ] && alive "$3" && workers "$3" || return 1
      [ "$na" -gt 0 ] && [ "$na" -eq "$nw" ] || return 1
      # WORKERS, ascending with no repeats, as many as wl and each in it: the same set.
      sl=$4; set -- $sl
      [ "$#" -eq "$nw" ] || return 1
      last=0
      for s in "$@"; do
        [ "$s" -gt "$last" ] 2>/dev/null || return 1
        case " $wl " in *" $s "*) last=$s ;; *) return 1 ;; esac
      done ;;
    runs) # PID SHA: hashed through fd 4, which stays open for the probe (held)
      held=
      { command exec 4< "/proc/$2/exe" && sum=$(sha256sum <&4); } 2>/dev/null || return 1
      held=${sum%% *}
      [ "$held" = "$3" ] ;;
    *) return 1 ;;
  esac
}
arity() {
  case $1 in
    drained | gone | serving) n=1 ;;
    start | steady | ready | runs) n=2 ;;
    committed | reverted | serves) n=3 ;;
    *) n=0 ;;
  esac
}
# signal PID SIG KIND PARENT: as signal.sh; the answer in a.
signal() {
  a=
  if ! alive "$1"; then a=gone; return; fi
  title "$1"
  case $3 in
    master) case $t in "nginx: master process"*) ;; *) a="refused: $1 is not an nginx master: $t"; return ;; esac ;;
    worker) case $t in "nginx: worker process"*) ;; *) a="refused: $1 is not an nginx worker: $t"; return ;; esac ;;
    child) [ "$ppid" = "$4" ] || { a="refused: $1 is not a child of $4"; return; } ;;
  esac
  if kill -s "$2" "$1" 2>/dev/null; then a=sent; elif alive "$1"; then a="refused: kill failed"; else a=gone; fi
}
waitfor() {
  ms=$1; shift
  now; end=$((c + (ms + 9) / 10))
  while :; do
    cond "$@" && return 0
    now; [ "$c" -ge "$end" ] && return 1
    sleep 0.01
  done
}
# The pid file: the first of the probe's three arguments, which end the list.
pf=
[ "$#" -ge 3 ] && eval "pf=\${$(($# - 2))}"
while [ "$#" -gt 0 ]; do
  act=$1; shift
  case $act in
    probe) break ;;
    record)
      f=$1 n=$2; shift 2; rc=0
      [ "$ok" = yes ] && { : > "$f.tmp" || rc=71; }
      i=0
      while [ "$i" -lt "$n" ]; do
        [ "$ok" = yes ] && [ "$rc" = 0 ] && { printf '%s\n' "$1" >> "$f.tmp" || rc=71; }
        shift; i=$((i + 1))
      done
      if [ "$ok" != yes ]; then echo "step record skipped"
      elif [ "$rc" = 0 ] && mv -f -- "$f.tmp" "$f"; then echo "step record written"
      else echo "step record failed 74"; ok=no; fi ;;
    install)
      tmp=$1 bin=$2 backup=$3 want=$4 n=$5; shift 5
      keep=
      i=0
      while [ "$i" -lt "$n" ]; do keep="$keep $bin.ngfleet-backup.$1"; shift; i=$((i + 1)); done
      if [ "$ok" != yes ]; then echo "step install skipped"; continue; fi
      rc=0
      # Both owned by our own user and group already (the usual case): chown would change
      # nothing. (A shell without -O/-G fails the test and runs chown.)
      { { [ -O "$bin" ] && [ -G "$bin" ] && [ -O "$tmp" ] && [ -G "$tmp" ]; } 2>/dev/null \
        || chown --reference="$bin" "$tmp"; } && chmod --reference="$bin" "$tmp" || rc=71
      if [ "$rc" = 0 ] && [ ! -e "$backup" ]; then
        # A copy (across filesystems) goes to a temp name first: a cut copy is never a backup.
        ln -- "$bin" "$backup" 2>/dev/null || { cp -p -- "$bin" "$backup.tmp" && mv -f -- "$backup.tmp" "$backup"; } || rc=72
      fi
      if [ "$rc" = 0 ]; then
        for old in "$bin".ngfleet-backup.*; do
          { [ -e "$old" ] && [ "$old" != "$backup" ]; } || continue
          case " $keep " in *" $old "*) ;; *) rm -f -- "$old" ;; esac
        done
        # Hashed through fd 4, which stays open: the probe reuses the sum for the file renamed
        # over the binary, and for a master that runs it (held).
        held='' got=''
        { command exec 4< "$tmp" && got=$(sha256sum <&4); } 2>/dev/null
        [ -n "$got" ] && held=${got%% *}
        [ "$held" = "$want" ] || rc=73
      fi
      [ "$rc" = 0 ] && { mv -f -- "$tmp" "$bin" || rc=74; }
      if [ "$rc" = 0 ]; then echo "step install installed"; else echo "step install failed $rc"; ok=no; fi ;;
    signal)
      pid=$1 sig=$2 kind=$3 parent=$4 miss=$5; shift 5
      if [ "$ok" != yes ]; then echo "step signal $pid $sig skipped"; continue; fi
      [ "$sig" = USR2 ] && { mark=$(stat -c %z -- "$pf" 2>/dev/null) || mark=; }
      signal "$pid" "$sig" "$kind" "$parent"
      echo "step signal $pid $sig $a"
      case $a:$miss in sent:* | *:ignore | gone:gone) ;; *) ok=no ;; esac ;;
    check)
      arity "$1"; name=$1; shift
      if [ "$ok" != yes ]; then echo "step check $name skipped"
      elif cond "$name" "$@"; then echo "step check $name met"
      else echo "step check $name unmet"; ok=no; fi
      shift "$n" ;;
    wait)
      arity "$1"; name=$1 ms=$2; shift 2
      if [ "$ok" != yes ]; then echo "step wait $name skipped"
      elif waitfor "$ms" "$name" "$@"; then echo "step wait $name met"
      else echo "step wait $name timeout"; ok=no; fi
      shift "$n" ;;
    takeout)
      pid=$1 n=$2; shift 2
      known=
      i=0
      while [ "$i" -lt "$n" ]; do known="$known $1"; shift; i=$((i + 1)); done
      r=$1; shift
      ladder=
      i=0
      while [ "$i" -lt "$r" ]; do ladder="$ladder $1:$2"; shift 2; i=$((i + 1)); done
      if [ "$ok" != yes ]; then echo "step takeout $pid skipped"; continue; fi
      workers "$pid"
      known="$known $wl"
      res=stayed
      for rung in $ladder; do
        signal "$pid" "${rung%%:*}" master 0
        echo "step rung $pid ${rung%%:*} $a"
        if [ "$a" = gone ] && [ "${rung%%:*}" != QUIT ]; then res=gone; break; fi
        if waitfor "${rung#*:}" gone "$pid"; then res=gone; break; fi
      done
      # Orphans of a killed new master keep accepting on the shared socket.
      for w in $(printf '%s\n' $known | sort -nu); do
        signal "$w" KILL worker 0
        echo "step rung $w KILL $a"
      done
      echo "step takeout $pid $res"
      [ "$res" = gone ] || ok=no ;;
    *) echo "step unknown $act"; ok=no; break ;;
  esac
done
