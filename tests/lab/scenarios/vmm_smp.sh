#!/bin/sh
# devpass run --cpus 2: the MP table describes two processors, Linux brings
# the second up (INIT/SIPI through the in-kernel LAPIC), both are online.
. /lab/lib.sh

lab_vmm_prepare

cat >/tmp/guest.sh <<'G'
#!/bin/sh
echo "guest nproc: $(nproc)"
echo "guest online: $(cat /sys/devices/system/cpu/online)"
dmesg | grep -E "smp|Brought up|MPTABLE|MP-BIOS|IOAPIC|clocksource|Freeing unused" | head -30
G
lab_step "build the guest initramfs"
lab_run lab-guest-initrd /tmp/guest.img /tmp/guest.sh
lab_rc "lab-guest-initrd exits 0" 0

lab_step "boot with --cpus 2"
lab_run timeout 240 devpass run --kernel /lab/guest/vmlinuz --initrd /tmp/guest.img \
  --mem 256M --cpus 2 --cmdline "quiet"
lab_rc "devpass run exits 0" 0
lab_out_has "nproc is 2" "guest nproc: 2"
lab_out_has "CPUs 0-1 online" "guest online: 0-1"
lab_out_has "the guest script exited 0" "@@GUEST-EXIT status=0@@"
lab_done
