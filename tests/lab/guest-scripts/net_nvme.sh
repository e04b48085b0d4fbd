#!/bin/sh
# A guest given both an e1000e and the NVMe drive: net_e1000e.sh, then
# nvme.sh (both passed as FILEs to lab-guest-initrd, so they are in /files),
# then, if guest_attack is in the guest, msix-redirect on the e1000e.
# Exits non-zero if either script failed or the attack was not BLOCKED.
sh /files/net_e1000e.sh; net=$?
sh /files/nvme.sh; nvme=$?
attack=0
if command -v guest_attack >/dev/null; then
  . /lab/lib.sh
  guest_attack msix-redirect "$(lab_find_dev $LAB_ID_E1000E 1)"; attack=$?
  echo "ATTACK-EXIT $attack"
fi
echo "GUEST-RESULTS net=$net nvme=$nvme attack=$attack"
[ $net = 0 ] && [ $nvme = 0 ] && [ $attack = 0 ]
