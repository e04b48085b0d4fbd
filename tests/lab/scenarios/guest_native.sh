#!/bin/sh
# The guest scripts (guest-scripts/) and guest_attack run natively on the lab
# host, with the lab's own drivers, to prove them before a VMM gives them a
# device, and to prove the lab-side helpers they pair with (lib.sh):
#   - net_e1000e.sh on 00:03.0 moved into a network namespace (so traffic
#     really crosses the QEMU hub) against 00:04.0 set up by lab_net_peer_up:
#     ping, 64 MiB each way with checksums compared on both sides;
#   - nvme.sh: the lab's pattern read, the guest pattern written and then
#     found by the lab side (lab_nvme_check_pattern);
#   - guest_attack's positive controls: on a bare host nothing stops the
#     attacks (iommu=pt gives unbound devices an identity domain), so they
#     must report LANDED: proof that they can see an attack succeed.
# Argument: MiB per direction (default 64).
. /lab/lib.sh
MIB=${1:-64}
NIC=$(lab_find_dev $LAB_ID_E1000E 1)     # plays the guest's NIC
PEER=$(lab_find_dev $LAB_ID_E1000E 2)    # the lab host's side
EDU=$(lab_find_dev $LAB_ID_EDU 1)
EDU2=$(lab_find_dev $LAB_ID_EDU 2)

lab_step "lab side: $PEER up, listeners for the transfers"
lab_run lab_net_peer_up "$PEER"
lab_rc "lab_net_peer_up $PEER" 0
LAB_NET_PEER_IF=$(lab_netifs "$PEER")
rx_sha=$(lab_net_blob /tmp/to-guest.bin "$MIB")
echo "file for the guest: $MIB MiB sha256 $rx_sha"
lab_net_receive 5001 /tmp/from-guest.bin
lab_net_serve 5002 /tmp/to-guest.bin

lab_step "guest side: net_e1000e.sh on $NIC in network namespace 'guest'"
IF=$(lab_netifs "$NIC")
lab_run lab_netns_move "$IF" guest
lab_rc "$IF moved into a network namespace" 0
lab_absent "$IF is gone from the lab's namespace" "/sys/class/net/$IF"
lab_run lab_netns_exec guest env NET_BDF="$NIC" NET_TX_MIB="$MIB" NET_RX_SHA256="$rx_sha" \
  sh /lab/guest-scripts/net_e1000e.sh
lab_rc "net_e1000e.sh exits 0" 0
tx=$(grep -a '^NET-TX ' "$LAB_OUT" | sed 's/.*sha256=\([0-9a-f]*\) bytes=\([0-9]*\).*/\1 \2/')
lab_eq "the lab received what the guest sent (sha256 bytes)" "$tx" "$(lab_net_received /tmp/from-guest.bin 300)"
grep -a '^NET-' "$LAB_OUT" | sed 's/^/NATIVE /'
lab_net_stop
lab_netns_del guest
lab_check "$IF is back in the lab's namespace" lab_wait 50 test -e "/sys/class/net/$IF"
rm -f /tmp/to-guest.bin /tmp/from-guest.bin

lab_step "nvme.sh on the lab's NVMe"
DISK=$(lab_nvme_disk)
lab_ne "the NVMe has a disk" "" "$DISK"
lab_check "the guest pattern is not there yet" \
  sh -c ". /lab/lib.sh; ! lab_nvme_check_pattern /dev/$DISK $LAB_NVME_GUEST_OFFSET $LAB_NVME_GUEST_PATTERN"
lab_run sh /lab/guest-scripts/nvme.sh
lab_rc "nvme.sh exits 0" 0
grep -a '^NVME-' "$LAB_OUT" | sed 's/^/NATIVE /'
lab_check "the lab side finds the guest's pattern" \
  lab_nvme_check_pattern "/dev/$DISK" $LAB_NVME_GUEST_OFFSET $LAB_NVME_GUEST_PATTERN
lab_check "and still the lab's own" \
  lab_nvme_check_pattern "/dev/$DISK" $LAB_NVME_PATTERN_OFFSET $LAB_NVME_PATTERN

lab_step "guest_attack msix-redirect $PEER (positive control: nothing protects the host)"
lab_run guest_attack msix-redirect "$PEER"
lab_rc "exit 1: LANDED" 1
lab_out_has "the MSI data is in the RAM page" "CHANGED at offset 0x100; dword at 0x100 = 0xa77ac0de"
lab_eq "$PEER is back on e1000e" e1000e "$(lab_driver "$PEER")"

lab_step "guest_attack bar-onto-ram $EDU2 $EDU (no driver on either)"
lab_run guest_attack bar-onto-ram "$EDU2" "$EDU"
lab_out_has "RAM wins over a BAR on QEMU's bus: page unchanged" \
  "^observed: BAR0 reads back .*; page unchanged; a write to it reads back"
lab_out_has "the moved BAR takes over the other edu's window (positive control)" \
  "window reads .*HIJACKED"
lab_rc "exit 1: LANDED" 1
lab_out_has "both edus answer as themselves after the restore" \
  "after restoring, $EDU liveness 0xddddffff, $EDU2 liveness 0xeeeeffff"
lab_run guest_attack bar-onto-ram "$EDU2"
lab_rc "without the second edu: exit 0, BLOCKED (RAM untouched)" 0
lab_done
