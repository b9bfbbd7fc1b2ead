#!/bin/sh
timeout 5 "/proc/$1/exe" -v 2>&1 | head -n 1
