#!/bin/sh
# Guest side of edu passthrough: runs guest_edu (lab-guest-initrd --bin
# /usr/bin/guest_edu --modules vfio-pci) on the edu the guest sees, with
# EDU_ARGS (e.g. "--bench 50", "--dma-to 0x0c000000"); exits with its status.
# Then, if ATTACK_ARGS is set (lab-guest-initrd --bin /usr/bin/guest_attack),
# runs guest_attack $ATTACK_ARGS and prints "ATTACK-EXIT n" (0 blocked,
# 1 landed, 2 error, 3 inconclusive); the script's status stays guest_edu's.
# shellcheck disable=SC2086
guest_edu ${EDU_ARGS:-}
rc=$?
if [ -n "${ATTACK_ARGS:-}" ]; then
  guest_attack $ATTACK_ARGS
  echo "ATTACK-EXIT $?"
fi
exit $rc
