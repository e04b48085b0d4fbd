#!/bin/sh
# A guest whose kernel panics: panic=-1 (devpass's default) turns the panic
# into a reset through the i8042, and devpass run exits 3 with
# --on-reboot exit (the default), saying so.
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
lab_done
