#!/bin/sh
umask 077 && rm -f -- "$1" && set -C && cat > "$1" && sha256sum < "$1"
