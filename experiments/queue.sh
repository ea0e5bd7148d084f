#!/usr/bin/env bash
# queue.sh FILE: run the first line of FILE ("NAME ARGS...") with q.sh, drop it, repeat until FILE is empty.
# Lines can be added or reordered while it runs; one run at a time.
here="$(dirname "$0")"
while line=$(head -n 1 "$1") && [ -n "$line" ]; do
  sed -i 1d "$1"
  echo "$(date -u +%T) start $line" >> "$1.done"
  # shellcheck disable=SC2086
  "$here/q.sh" $line
  echo "$(date -u +%T) end   $line" >> "$1.done"
done
