#!/bin/sh
# A guest whose kernel panics: panic=-1 (devpass's default) turns the panic
# into a reset through the i8042, and devpass run exits 3 with
# --on-reboot exit (the default), saying so.
. /lab/lib.sh

# ---- guest files (same prelude in every vmm_* scenario): the lab ships
# /lab/guest/vmlinuz and lab-guest-initrd; a lab built without them can get
# them from a disk made by tests/lab/guest-tools/make-extra-disk.
vmm_prepare() {
  if [ ! -f /lab/guest/vmlinuz ] || ! command -v lab-guest-initrd >/dev/null; then
    for b in /sys/block/vd*; do
      [ "$(cat "$b/serial" 2>/dev/null)" = vmmextra ] && tar -x -C / -f "/dev/${b##*/}"
    done
  fi
  [ -f /lab/guest/vmlinuz ] || { lab_fail "guest kernel /lab/guest/vmlinuz is missing"; lab_done; }
  command -v lab-guest-initrd >/dev/null || { lab_fail "lab-guest-initrd is missing"; lab_done; }
  [ -e /dev/kvm ] || { lab_fail "/dev/kvm is missing (kvm_amd not loaded?)"; lab_done; }
}
vmm_prepare

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
