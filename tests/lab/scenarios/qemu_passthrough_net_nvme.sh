#!/bin/sh
# The guest scripts for e1000e and NVMe passthrough, end to end under QEMU
# (-device vfio-pci) in the lab: the nested guest's own e1000e and nvme
# drivers drive 00:03.0 and 00:05.0 through the lab's VFIO and IOMMU.
#   - net_e1000e.sh: ping 00:04.0 (the lab's e1000e, lab_net_peer_up) and
#     MIB MiB each way with busybox nc, sha256 compared on both sides;
#   - nvme.sh: the lab's pattern read in the guest, the guest's pattern
#     written, then found by the lab once the drive is back on its nvme driver;
#   - guest_attack msix-redirect on the e1000e: QEMU emulates the MSI-X table,
#     so the message must not reach guest RAM (BLOCKED).
# Argument: MiB per direction (default 64). QEMU from the extra disk.
. /lab/lib.sh
lab_qemu_prepare
MIB=${1:-64}
NIC=$(lab_find_dev $LAB_ID_E1000E 1)
PEER=$(lab_find_dev $LAB_ID_E1000E 2)
NVME=$(lab_find_dev $LAB_ID_NVME 1)
DISK=$(lab_nvme_disk "$NVME")

lab_step "lab side: the guest pattern is not on $DISK yet; $PEER up; listeners"
lab_check "no guest pattern at $LAB_NVME_GUEST_OFFSET" \
  sh -c ". /lab/lib.sh; ! lab_nvme_check_pattern /dev/$DISK $LAB_NVME_GUEST_OFFSET $LAB_NVME_GUEST_PATTERN"
lab_run lab_net_peer_up "$PEER"
lab_rc "lab_net_peer_up $PEER" 0
rx_sha=$(lab_net_blob /tmp/to-guest.bin "$MIB")
lab_net_receive 5001 /tmp/from-guest.bin
lab_net_serve 5002 /tmp/to-guest.bin

lab_step "hide $NIC and $NVME"
for d in $NIC $NVME; do
  lab_run devpass hide "$d"
  lab_rc "hide $d exits 0" 0
done

lab_step "guest: e1000e + nvme drivers, net_e1000e.sh, nvme.sh, msix-redirect"
lab_run lab-guest-initrd --modules "e1000e nvme" --bin /usr/bin/guest_attack \
  --env NET_TX_MIB="$MIB" --env NET_RX_SHA256="$rx_sha" \
  /tmp/netnvme.img /lab/guest-scripts/net_nvme.sh \
  /lab/guest-scripts/net_e1000e.sh /lab/guest-scripts/nvme.sh
lab_rc "lab-guest-initrd exits 0" 0
lab_qemu_guest --mem 384 --timeout 900 --device "$NIC" --device "$NVME" /tmp/netnvme.img
lab_out_has "the guest loaded e1000e and nvme" "guest: modules loaded:.* e1000e.* nvme"
lab_out_has "guest: ping answered" "ok +- ping $LAB_NET_PEER_ADDR answers"
lab_out_has "guest: received data has the expected sha256" "ok +- received data has the expected sha256"
lab_out_has "guest: the lab's NVMe pattern read" "ok +- the lab's pattern is at $LAB_NVME_PATTERN_OFFSET"
lab_out_has "guest: its pattern written and read back" "ok +- it reads back"
lab_out_has "guest: msix-redirect BLOCKED" "^verdict BLOCKED: the MSI-X message did not reach guest RAM"
lab_out_has "all three parts passed" "GUEST-RESULTS net=0 nvme=0 attack=0"
lab_eq "the guest script exits 0" 0 "$(lab_guest_status)"
tx=$(grep -a '^NET-TX ' "$LAB_OUT" | sed 's/.*sha256=\([0-9a-f]*\) bytes=\([0-9]*\).*/\1 \2/')
lab_eq "the lab received what the guest sent (sha256 bytes)" "$tx" "$(lab_net_received /tmp/from-guest.bin 100)"
grep -a -E '^(NET|NVME)-' "$LAB_OUT" | tr -d '\r' | sed 's/^/QEMU /'
lab_net_stop

lab_step "give $NVME back and check what the guest wrote"
lab_run devpass unhide "$NVME"
lab_rc "unhide $NVME exits 0" 0
lab_wait 100 lab_nvme_disk "$NVME"
DISK=$(lab_nvme_disk "$NVME")
lab_check "the guest's pattern is on the drive" \
  lab_nvme_check_pattern "/dev/$DISK" $LAB_NVME_GUEST_OFFSET $LAB_NVME_GUEST_PATTERN
lab_check "and the lab's own pattern still is" \
  lab_nvme_check_pattern "/dev/$DISK" $LAB_NVME_PATTERN_OFFSET $LAB_NVME_PATTERN
lab_run devpass unhide "$NIC"
lab_done
