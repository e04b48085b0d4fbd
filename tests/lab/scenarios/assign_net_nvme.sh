#!/bin/sh
# Two devices in one devpass guest (issue 6), driven by the guest's own
# Linux drivers: the e1000e 00:03.0 (its twin 00:04.0 stays with the lab's
# e1000e driver, both on one QEMU hub) and the NVMe 00:05.0. The guest pings
# the lab, sends and fetches bulk data (checksums compared on both sides),
# checks the lab's known pattern on the drive and writes its own, which the
# lab reads after the guest is gone, when both devices are back on their
# host drivers. Then a hostile guest points the e1000e's MSI-X vector at its
# own RAM and makes the NIC fire it: devpass does not route it, and the RAM
# page stays as it was.
. /lab/lib.sh
lab_vmm_prepare
NIC=$(lab_find_dev $LAB_ID_E1000E 1)
NVME=$(lab_find_dev $LAB_ID_NVME 1)
MIB=${1:-16}


lab_step "the lab's side: $NIC on e1000e, $NVME on nvme; the peer NIC up"
lab_eq "$NIC is on e1000e" e1000e "$(lab_driver "$NIC")"
lab_eq "$NVME is on nvme" nvme "$(lab_driver "$NVME")"
lab_net_peer_up
rx_sha=$(lab_net_blob /tmp/rx.bin "$MIB")
lab_net_receive 5001 /tmp/got.bin
lab_net_serve 5002 /tmp/rx.bin

lab_step "one guest, two devices: e1000e + NVMe"
cat >/tmp/both.sh <<'G'
#!/bin/sh
sh /files/net_e1000e.sh; net=$?
sh /files/nvme.sh; nvme=$?
echo "GUEST net=$net nvme=$nvme"
exit $((net + nvme))
G
lab_run lab-guest-initrd --modules "e1000e nvme" --env NET_TX_MIB="$MIB" --env NET_RX_SHA256="$rx_sha" \
  /tmp/both.img /tmp/both.sh /lab/guest-scripts/net_e1000e.sh /lab/guest-scripts/nvme.sh
lab_rc "lab-guest-initrd exits 0" 0
lab_devpass_guest /tmp/both.img --mem 384M --device "$NIC" --device "$NVME" --name two
lab_rc "devpass run exits 0 (the guest powered off)" 0
lab_eq "the guest's checks all passed" 0 "$(lab_guest_status)"
lab_out_has "the e1000e was taken from e1000e for the run" "devpass: two: $NIC: hidden for guest 'two': e1000e -> vfio-pci"
lab_out_has "the NVMe was taken from nvme for the run" "devpass: two: $NVME: hidden for guest 'two': nvme -> vfio-pci"
lab_out_has "the NVMe's 64-bit BAR0 sits above 4 GiB" "devpass: two: $NVME is guest 00:02.0, BAR0 16 KiB at 0x1[0-9a-f]{8}"
lab_out_has "guest: its e1000e driver has the NIC" "ok   - 0000:00:01.0 is driven by e1000e"
lab_out_has "guest: carrier" "ok   - carrier on eth0"
lab_out_has "guest: ping the lab" "ok   - ping $LAB_NET_PEER_ADDR answers"
lab_out_has "guest: fetched data has the lab's checksum" "ok   - received data has the expected sha256"
lab_out_has "guest: its nvme driver has the drive" "ok   - 0000:00:02.0 is driven by nvme"
lab_out_has "guest: the lab's pattern read from the drive" "ok   - the lab's pattern is at"
lab_out_has "guest: its own pattern written and read back" "ok   - it reads back"
sent=$(grep -a '^NET-TX' "$LAB_OUT" | sed 's/.*sha256=\([0-9a-f]*\) bytes=\([0-9]*\).*/\1 \2/')
got=$(lab_net_received /tmp/got.bin 300)
lab_net_stop
lab_eq "what the guest sent arrived whole (sha256 bytes)" "$sent" "$got"
grep -a -E '^(NET-TX|NET-RX|NVME-READ)' "$LAB_OUT" | sed 's/^/BENCH devpass /'
echo "devpass guest (boot + network + NVMe): ${LAB_GUEST_SECONDS}s"
lab_out_has "both given back: e1000e" "devpass: two: $NIC given back to e1000e"
lab_out_has "both given back: nvme" "devpass: two: $NVME given back to nvme"

lab_step "after the guest: the lab's drivers have the devices again"
lab_eq "$NIC is on e1000e again" e1000e "$(lab_driver "$NIC")"
lab_eq "$NVME is on nvme again" nvme "$(lab_driver "$NVME")"
has_netif() { [ -n "$(lab_netifs "$1")" ]; }
lab_check "$NIC has its network interface again" lab_wait 100 has_netif "$NIC"
lab_wait 100 lab_nvme_disk "$NVME"
DISK=$(lab_nvme_disk "$NVME")
lab_wait 50 test -b "/dev/$DISK"
lab_check "the guest's pattern is on the drive, read by the lab's nvme driver" \
  lab_nvme_check_pattern "/dev/$DISK" $LAB_NVME_GUEST_OFFSET $LAB_NVME_GUEST_PATTERN
lab_check "the lab's own pattern is still there" \
  lab_nvme_check_pattern "/dev/$DISK" $LAB_NVME_PATTERN_OFFSET $LAB_NVME_PATTERN

lab_step "a hostile guest: MSI-X vector 0 of the e1000e aimed at its own RAM"
lab_run lab-guest-initrd --modules e1000e --bin /usr/bin/guest_attack \
  --env ATTACK_ARGS="msix-redirect @E1000E" /tmp/msix.img /lab/guest-scripts/attack.sh
lab_devpass_guest /tmp/msix.img --mem 256M --device "$NIC" --name msix
lab_rc "devpass run exits 0" 0
lab_out_has "guest: the RAM page stayed unchanged" "^verdict BLOCKED"
lab_eq "guest_attack: blocked (exit 0)" 0 "$(lab_guest_status)"
lab_out_has "devpass did not route the message" "MSI-X vector 0 with address 0x[0-9a-f]+ .*not a local APIC address, so the vector is not delivered"
lab_eq "$NIC is on e1000e again" e1000e "$(lab_driver "$NIC")"
lab_done
