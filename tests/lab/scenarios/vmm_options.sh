#!/bin/sh
# The `devpass run` options no other scenario covers, on the lab's nested KVM:
#   transparent huge pages by default (guest RAM madvised: "hg" in smaps) and
#   --no-thp (MADV_NOHUGEPAGE: "nh", no huge page at all), stdin forwarded to the guest's console, --hugepages (huge
#   pages used while the guest runs; too few reserved: exit 1 before any boot,
#   saying how many to reserve), --on-reboot restart (a guest that reboots is
#   booted again until SIGTERM: 143, and devpass says where the vCPU was)
#   and --on-reboot exit (the default: 3).
. /lab/lib.sh

lab_vmm_prepare
K=/lab/guest/vmlinuz
MEM=128M          # 64 huge pages of 2 MiB
PAGES=64
now() { cut -d' ' -f1 /proc/uptime; }
since() { awk "BEGIN{printf \"%.1f\", $(now) - $1}"; }
count() { grep -c "$1" "$2" 2>/dev/null || true; }
# guest_ram_flags: "SIZE ANONHUGE hg|nh|-" for the running devpass's largest
# mapping, its guest RAM ($MEM): "hg" in VmFlags is MADV_HUGEPAGE, "nh"
# MADV_NOHUGEPAGE.
guest_ram_flags() {
  awk '/^Size:/ {s = $2} /^AnonHugePages:/ {h = $2}
       /^VmFlags:/ && s > best {best = s; out = s " " h " " ($0 ~ / hg/ ? "hg" : $0 ~ / nh/ ? "nh" : "-")}
       END {print out}' /proc/"$(pidof devpass | cut -d' ' -f1)"/smaps 2>/dev/null
}

# Guest 1: reads one line from its console (ttyS0 = devpass's stdin).
cat >/tmp/stdin.sh <<'G'
#!/bin/sh
echo "STDIN-READY"
read line
echo "GOT:$line"
G
# Guest 2: says it runs, stays up 3 s (the host looks at its huge pages).
cat >/tmp/huge.sh <<'G'
#!/bin/sh
echo "HUGE-GUEST-UP"
sleep 3
G
# Guest 3: reboots (i8042 reset) after 3 s, every boot.
cat >/tmp/reboot.sh <<'G'
#!/bin/sh
echo "REBOOT-GUEST-MARKER"
sleep 3
reboot -f
G
lab_step "build the guest initramfses"
for g in stdin huge reboot; do
  lab_run lab-guest-initrd /tmp/$g.img /tmp/$g.sh
  lab_rc "lab-guest-initrd $g exits 0" 0
done

lab_step "the default (THP), stdin to the guest"
# The line is typed once the guest prompts, as a user would. Typed at
# launch, it waits in devpass until the guest enables the UART's receive
# interrupt, but that is no proof of a reader: once in many runs under load
# the guest never saw the line (Linux's 8250 driver also sets IER while it
# probes the port, and its start-up clears the receive FIFO).
rm -f /tmp/stdin.fifo
mkfifo /tmp/stdin.fifo
t0=$(now)
timeout 180 devpass run --kernel $K --initrd /tmp/stdin.img --mem $MEM \
  --cmdline quiet </tmp/stdin.fifo >/tmp/stdin.out 2>&1 &
pid=$!
exec 3>/tmp/stdin.fifo
lab_wait 1500 grep -q STDIN-READY /tmp/stdin.out
ram=$(guest_ram_flags)
echo "guest RAM mapping (KiB, AnonHugePages KiB, madvised): $ram"
echo devpass-stdin-test >&3
exec 3>&-
wait $pid
LAB_RC=$?
sed 's/^/  | /' /tmp/stdin.out
echo "  (exit status $LAB_RC, $(since $t0) s)"
cp /tmp/stdin.out "$LAB_OUT"
lab_rc "devpass run exits 0 (guest powered off)" 0
lab_eq "guest RAM is madvised for huge pages by default" hg "${ram##* }"
lab_out_has "the guest reached user space" "guest: user space at uptime"
lab_out_has "the guest read the line from devpass's stdin" "GOT:devpass-stdin-test"
lab_out_has "the guest script exited 0" "@@GUEST-EXIT status=0@@"

lab_step "--hugepages with no huge pages reserved"
echo 0 >/proc/sys/vm/nr_hugepages
t0=$(now)
lab_run timeout 60 devpass run --kernel $K --initrd /tmp/huge.img --mem $MEM --hugepages
dt=$(since $t0)
echo "took $dt s"
lab_rc "exit 1" 1
lab_out_has "says how many pages to reserve" "echo $PAGES > /proc/sys/vm/nr_hugepages"
lab_check "fails before the guest starts (no guest output)" \
  sh -c "! grep -q 'guest: user space' $LAB_OUT"
lab_check "fails quickly (${dt} s < 5 s)" awk "BEGIN{exit !($dt < 5)}"

lab_step "--hugepages with $PAGES + 8 pages reserved"
echo $((PAGES + 8)) >/proc/sys/vm/nr_hugepages
total=$(awk '/^HugePages_Total:/{print $2}' /proc/meminfo)
free0=$(awk '/^HugePages_Free:/{print $2}' /proc/meminfo)
echo "HugePages_Total $total, HugePages_Free $free0"
lab_eq "the lab reserved $((PAGES + 8)) huge pages" $((PAGES + 8)) "$total"
t0=$(now)
timeout 180 devpass run --kernel $K --initrd /tmp/huge.img --mem $MEM --hugepages \
  --cmdline quiet </dev/null >/tmp/huge.out 2>&1 &
pid=$!
lab_wait 1200 grep -q HUGE-GUEST-UP /tmp/huge.out
free1=$(awk '/^HugePages_Free:/{print $2}' /proc/meminfo)
echo "HugePages_Free while the guest runs: $free1"
wait $pid
LAB_RC=$?
sed 's/^/  | /' /tmp/huge.out
echo "  (exit status $LAB_RC, $(since $t0) s)"
cp /tmp/huge.out "$LAB_OUT"
lab_rc "devpass run --hugepages exits 0" 0
lab_out_has "the guest reached user space" "HUGE-GUEST-UP"
lab_check "HugePages_Free dropped while the guest ran ($free0 -> $free1)" \
  test "$free1" -lt "$free0"
free2=$(awk '/^HugePages_Free:/{print $2}' /proc/meminfo)
lab_eq "the huge pages are free again after exit" "$free0" "$free2"
echo 0 >/proc/sys/vm/nr_hugepages

lab_step "--on-reboot exit (the default)"
lab_run timeout 180 devpass run --kernel $K --initrd /tmp/reboot.img --mem $MEM \
  --cmdline quiet
lab_rc "exit 3 (guest reset)" 3
lab_eq "booted once" 1 "$(count REBOOT-GUEST-MARKER $LAB_OUT)"
lab_out_has "says the guest rebooted" "panicked or rebooted"

lab_step "--on-reboot restart, --no-thp"
t0=$(now)
devpass run --kernel $K --initrd /tmp/reboot.img --mem $MEM --cmdline quiet \
  --on-reboot restart --no-thp </dev/null >/tmp/restart.out 2>&1 &
pid=$!
# Two boots: at most 90 s. The guest sleeps 3 s after its marker, so the
# SIGTERM reaches a running VM.
n=0
while [ "$(count REBOOT-GUEST-MARKER /tmp/restart.out)" -lt 2 ] && [ $n -lt 900 ] &&
      kill -0 $pid 2>/dev/null; do
  sleep 0.1; n=$((n + 1))
done
ram=$(guest_ram_flags)
echo "guest RAM mapping with --no-thp (KiB, AnonHugePages KiB, madvised): $ram"
kill -TERM $pid
wait $pid
LAB_RC=$?
sed 's/^/  | /' /tmp/restart.out
echo "  (exit status $LAB_RC, $(since $t0) s)"
cp /tmp/restart.out "$LAB_OUT"
boots=$(count REBOOT-GUEST-MARKER /tmp/restart.out)
lab_check "the guest booted again after its reboot ($boots boots)" test "$boots" -ge 2
lab_out_has "devpass says it restarts" "restarting \(--on-reboot restart\)"
lab_rc "SIGTERM: exit 143" 143
lab_eq "--no-thp: guest RAM is madvised MADV_NOHUGEPAGE" nh "${ram##* }"
set -- $ram
lab_eq "--no-thp: no huge page in guest RAM (AnonHugePages kB)" 0 "${2:-}"
lab_out_has "stopped cleanly by SIGTERM" "stopped by SIGTERM"
lab_out_has "says where the vCPU was (exits, the last one)" \
  "^vCPU 0: [0-9]+ exits reached devpass, the last: "
lab_out_has "and its registers" "^  RIP=0x[0-9a-f]+ RSP="
lab_done
