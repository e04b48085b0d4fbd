#!/usr/bin/env bash
# Self-test of tests/lab/run's stall handling, with fake-qemu-stall for QEMU:
# a boot whose kernel keeps reporting stalled CPUs is ended after
# LAB_STALL_LIMIT seconds (not at --timeout), --retry-stalled runs the
# scenario exactly once more, saying so, and the second stall is final
# (exit 124, naming the stall). Needs the lab built (lab.build).
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB=$(cd "$HERE/.." && pwd)
fail() { echo "FAIL: $*"; exit 1; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
start=$SECONDS
LAB_QEMU_BIN=$HERE/fake-qemu-stall LAB_STALL_LIMIT=4 \
  "$LAB/run" --retry-stalled --quiet --name stall_watchdog --timeout 120 \
  "$LAB/scenarios/check.sh" >"$out" 2>&1
rc=$?
took=$((SECONDS - start))
cat "$out"
[ $rc = 124 ] || fail "exit status $rc, want 124"
[ "$(grep -c 'RETRYING: boot 1 hung' "$out")" = 1 ] || fail "want exactly one RETRYING line"
grep -q "FAILED: boot 1 hung: the lab's kernel reported stalled CPUs for 4s (QEMU killed); the lab's kernel had reported a stalled CPU: \"rcu: INFO: rcu_preempt detected stalls" "$out" ||
  fail "the final failure does not name the stall"
# Two attempts of ~4-6 s each plus two lab builds' copies; far below the
# 120 s timeout each attempt had.
[ $took -lt 90 ] || fail "took ${took}s: the stall did not end the boots early"
log=$(grep -o 'log: [^ ]*stall_watchdog[^ ]*\.log' "$out" | tail -1 | cut -d' ' -f2)
grep -q 'lab: the kernel has reported stalled CPUs for [0-9]*s: ending the boot' "$log" ||
  fail "the log $log does not say the boot was ended for the stall"
leftover=$(find "$LAB/out/runs" -maxdepth 1 -name 'stall_watchdog.*' 2>/dev/null)
[ -z "$leftover" ] || fail "the attempts' run directories were left behind: $leftover"
echo "ok - a stalled lab ends after LAB_STALL_LIMIT, is retried once, then fails with exit 124 (${took}s)"
