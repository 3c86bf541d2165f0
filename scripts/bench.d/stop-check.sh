#!/bin/sh
# stop-check.sh LOG GATEWAY-DIR REPO STATE-DIR EXPECT COMMAND...
# The apply benchmark's stop command: records what exists on the gateway at
# the moment msgw-restore asks the service to stop (the staged files with
# their sha256, whether the journal was written, the branch tip's meta),
# then runs COMMAND, the real stop.  bench.py checks the record against the
# snapshot being applied (named in the file EXPECT).
log=$1 gw=$2 repo=$3 state=$4
shift 5
(cd "$gw" && find . -name '*.msgw-new' -type f -exec sha256sum {} +) >"$log.staged" 2>&1
if [ -f "$state/journal-gw" ]; then echo yes; else echo no; fi >"$log.journal"
git --git-dir="$repo" show gw:meta >"$log.meta" 2>&1
exec "$@"
