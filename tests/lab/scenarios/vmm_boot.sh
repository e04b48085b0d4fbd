#!/bin/sh
# devpass run boots the lab's own kernel as a nested KVM guest with a tiny
# initramfs; the guest prints a marker and powers off; devpass exits 0.
. /lab/lib.sh

lab_vmm_prepare

cat >/tmp/guest.sh <<'G'
#!/bin/sh
echo "VMM-GUEST-MARKER hello from the guest"
echo "guest kernel: $(uname -r)"
echo "guest cmdline: $(cat /proc/cmdline)"
echo "guest pci: $(ls /sys/bus/pci/devices | tr '\n' ' ')"
cat /sys/bus/pci/devices/0000:00:00.0/vendor /sys/bus/pci/devices/0000:00:00.0/device 2>/dev/null
G
lab_step "build the guest initramfs"
lab_run lab-guest-initrd /tmp/guest.img /tmp/guest.sh
lab_rc "lab-guest-initrd exits 0" 0

lab_step "boot it with devpass run"
t0=$(cut -d' ' -f1 /proc/uptime)
lab_run timeout 180 devpass run --kernel /lab/guest/vmlinuz --initrd /tmp/guest.img \
  --mem 256M --cmdline "quiet"
t1=$(cut -d' ' -f1 /proc/uptime)
echo "devpass run took $(awk "BEGIN{print $t1 - $t0}") s"
lab_rc "devpass run exits 0 (guest powered off)" 0
lab_out_has "the guest's init ran" "VMM-GUEST-MARKER hello from the guest"
lab_out_has "the guest script exited 0" "@@GUEST-EXIT status=0@@"
lab_out_has "the guest kernel is the lab's" "guest kernel: $(uname -r)"
lab_out_has "devpass's defaults are on the guest command line" "console=ttyS0 panic=-1 quiet"
lab_out_has "Linux found the host bridge 00:00.0 by config mechanism #1" "0000:00:00.0"
lab_out_has "host bridge vendor 0x8086" "^0x8086"
lab_out_has "devpass reports the power-off" "powered off"

lab_step "errors"
lab_run devpass run --kernel /lab/guest/missing --mem 256M
lab_rc "a missing kernel: exit 1" 1
lab_out_has "names the file" "/lab/guest/missing does not exist"
lab_run devpass run --kernel /tmp/guest.img --mem 256M
lab_rc "an initramfs as kernel: exit 2 (bad argument)" 2
lab_out_has "says what it found" "not a Linux bzImage.*gzip"
lab_run devpass run --kernel /lab/guest/vmlinuz --initrd /tmp/nonexistent --mem 256M
lab_rc "a missing initrd: exit 1" 1
lab_out_has "names the initrd" "initrd /tmp/nonexistent does not exist"
lab_run devpass run --kernel /lab/guest/vmlinuz --mem 64G
lab_rc "more memory than the lab has: exit 1" 1
lab_out_has "gives the numbers" "needs 65536 MiB.*only [0-9]+ MiB available"
lab_done
