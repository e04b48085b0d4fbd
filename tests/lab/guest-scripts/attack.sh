#!/bin/sh
# Guest side of the attack scenarios: guest_attack $ATTACK_ARGS (lab-guest-initrd
# --bin /usr/bin/guest_attack --env ATTACK_ARGS="msix-redirect 0000:00:02.0");
# BDFs as the guest sees them: "@E1000E" / "@EDU" / "@EDU2" in ATTACK_ARGS are
# replaced by the guest's first e1000e / first edu / second edu. Exits with
# guest_attack's status: 0 blocked, 1 landed, 2 error, 3 inconclusive.
. /lab/lib.sh
args=
for a in ${ATTACK_ARGS:-}; do
  case $a in
    @E1000E) a=$(lab_find_dev $LAB_ID_E1000E 1) ;;
    @EDU) a=$(lab_find_dev $LAB_ID_EDU 1) ;;
    @EDU2) a=$(lab_find_dev $LAB_ID_EDU 2) ;;
  esac
  args="$args $a"
done
echo "guest: guest_attack$args"
# shellcheck disable=SC2086
guest_attack $args
