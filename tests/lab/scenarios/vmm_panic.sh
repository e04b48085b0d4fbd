#!/bin/sh
# A guest whose kernel panics: panic=-1 (devpass's default) turns the panic
# into a reset through the i8042, and devpass run exits 3 with
# --on-reboot exit (the default), saying so. A guest that triple-faults
# (Linux's reboot=t resets by loading an empty IDT and faulting) is a crash:
# exit 4 with the vCPU's registers.
. /lab/lib.sh

lab_vmm_prepare

cat >/tmp/guest.sh <<'G'
#!/bin/sh
echo "guest: crashing the kernel"
echo c >/proc/sysrq-trigger
G
lab_step "build the guest initramfs"
lab_run lab-guest-initrd /tmp/guest.img /tmp/guest.sh
lab_rc "lab-guest-initrd exits 0" 0

lab_step "boot a guest that panics"
lab_run timeout 240 devpass run --kernel /lab/guest/vmlinuz --initrd /tmp/guest.img \
  --mem 256M --cmdline "quiet"
lab_rc "devpass run exits 3 (guest reset)" 3
lab_out_has "the guest kernel panicked" "Kernel panic"
lab_out_has "devpass says so" "guest kernel panicked or rebooted"

cat >/tmp/tf.sh <<'G'
#!/bin/sh
echo "guest: rebooting by triple fault"
reboot -f
G
lab_step "boot a guest that triple-faults"
lab_run lab-guest-initrd /tmp/tf.img /tmp/tf.sh
lab_rc "lab-guest-initrd exits 0" 0
lab_run timeout 240 devpass run --kernel /lab/guest/vmlinuz --initrd /tmp/tf.img \
  --mem 256M --cmdline "quiet reboot=t"
lab_rc "devpass run exits 4 (guest crashed)" 4
lab_out_has "devpass names the triple fault" "triple-fault"
lab_out_has "the register dump has RIP" "RIP"
lab_out_has "the register dump has CR0" "CR0"
lab_done
