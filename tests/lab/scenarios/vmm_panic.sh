#!/bin/sh
# A guest whose kernel panics: panic=-1 (devpass's default) turns the panic
# into a reset through the i8042, and devpass run exits 3 with
# --on-reboot exit (the default), saying so. A guest that triple-faults
# (Linux's reboot=t resets by loading an empty IDT and faulting) is a crash:
# exit 4 with the vCPU's registers. SIGUSR1 makes devpass inject an NMI: a
# guest booted with unknown_nmi_panic panics with a backtrace of where it was
# (what lab_timeout does to a guest that hangs), so devpass exits 3.
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

cat >/tmp/wait.sh <<'G'
#!/bin/sh
echo "guest: waiting for an NMI"
sleep 600
G
lab_step "SIGUSR1 to devpass run: an NMI for the guest"
lab_run lab-guest-initrd /tmp/wait.img /tmp/wait.sh
lab_rc "lab-guest-initrd exits 0" 0
devpass run --kernel /lab/guest/vmlinuz --initrd /tmp/wait.img --mem 256M \
  --cmdline "quiet unknown_nmi_panic" </dev/null >/tmp/nmi.out 2>&1 &
pid=$!
if lab_wait 2400 grep -q "guest: waiting for an NMI" /tmp/nmi.out; then
  kill -USR1 $pid
  # The guest panics and resets within seconds; a devpass that ignored the
  # signal is stopped after 120 s.
  n=0
  while kill -0 $pid 2>/dev/null && [ $n -lt 1200 ]; do sleep 0.1; n=$((n + 1)); done
fi
kill -0 $pid 2>/dev/null && kill -TERM $pid
wait $pid
LAB_RC=$?
cp /tmp/nmi.out "$LAB_OUT"
sed 's/^/  | /' /tmp/nmi.out
lab_rc "devpass run exits 3 (the NMI panicked the guest, panic=-1 reset it)" 3
lab_out_has "the guest took an NMI" "NMI received for unknown reason"
lab_out_has "unknown_nmi_panic panicked it" "Kernel panic - not syncing: NMI: Not continuing"
lab_out_has "with a backtrace" "Call Trace"
lab_done
