#!/bin/sh
# Guest side of NVMe passthrough: the guest's own nvme driver (lab-guest-initrd
# --modules nvme) finds the drive, checks the lab's known pattern
# (LAB_NVME_PATTERN x256 at LAB_NVME_PATTERN_OFFSET), writes its own
# (LAB_NVME_GUEST_PATTERN x256 at LAB_NVME_GUEST_OFFSET, O_DIRECT) for the lab
# host to check after the guest is gone (lab_nvme_check_pattern), and reads
# NVME_READ_MIB MiB (default 16) with O_DIRECT to time it.
# Environment: NVME_BDF (default: the first 1b36:0010), NVME_WRITE=0 to skip
# the write, NVME_READ_MIB. Prints "NVME-READ bytes=N seconds=T".
# Runs the same way natively on the lab host: scenarios/guest_native.sh.
. /lab/lib.sh
# Own output file and name: natively this runs inside a scenario's lab_run.
LAB_OUT=/tmp/guest-script-output LAB_SCENARIO=nvme
now() { cut -d' ' -f1 /proc/uptime; }
BDF=${NVME_BDF:-$(lab_find_dev $LAB_ID_NVME 1)}

lab_step "NVMe $BDF"
lab_eq "$BDF is driven by nvme" nvme "$(lab_driver "$BDF")"
lab_wait 100 lab_nvme_disk "$BDF"
DISK=$(lab_nvme_disk "$BDF")
lab_ne "$BDF has a namespace block device" "" "$DISK"
[ -n "$DISK" ] || lab_done
lab_wait 50 test -b "/dev/$DISK"
echo "  disk /dev/$DISK, $(cat /sys/block/$DISK/size) sectors"

lab_check "the lab's pattern is at $LAB_NVME_PATTERN_OFFSET" \
  lab_nvme_check_pattern "/dev/$DISK" $LAB_NVME_PATTERN_OFFSET $LAB_NVME_PATTERN
if [ "${NVME_WRITE:-1}" != 0 ]; then
  lab_check "write $LAB_NVME_GUEST_PATTERN x256 at $LAB_NVME_GUEST_OFFSET" \
    lab_nvme_write_pattern "/dev/$DISK" $LAB_NVME_GUEST_OFFSET $LAB_NVME_GUEST_PATTERN
  lab_check "it reads back (O_DIRECT)" \
    lab_nvme_check_pattern "/dev/$DISK" $LAB_NVME_GUEST_OFFSET $LAB_NVME_GUEST_PATTERN
fi
mib=${NVME_READ_MIB:-16}
t0=$(now)
dd if="/dev/$DISK" of=/dev/null bs=1M count="$mib" iflag=direct 2>/dev/null
rc=$?
t1=$(now)
lab_eq "read $mib MiB (O_DIRECT)" 0 "$rc"
echo "NVME-READ bytes=$((mib * 1048576)) seconds=$(awk "BEGIN{printf \"%.2f\", $t1 - $t0}")"
lab_done
