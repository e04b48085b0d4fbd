#!/bin/sh
# Boot time: launch to guest user space (the guest init's first line) and
# launch to exit (the guest powered off), for devpass run and for QEMU
# (-accel kvm -M q35 -kernel, SeaBIOS) booting the same kernel and
# initramfs with the same command line, in the same lab run. Prints median,
# min and max of N runs each (N = $1, default 3) and checks that devpass is
# faster. Nested KVM under TCG: absolute figures are ~50x a real host's.
. /lab/lib.sh

lab_vmm_prepare

N=${1:-3}
# QEMU and its firmware come on the extra disk (lab.qemu-disk in ctest).
lab_unpack_extra
command -v qemu-system-x86_64 >/dev/null || { lab_fail "qemu-system-x86_64 is missing in the lab"; lab_done; }
cat >/tmp/guest.sh <<'G'
#!/bin/sh
true
G
lab_run lab-guest-initrd /tmp/guest.img /tmp/guest.sh
lab_rc "lab-guest-initrd exits 0" 0
CMDLINE="console=ttyS0 panic=-1 quiet"

up() { cut -d' ' -f1 /proc/uptime; }
# measure NAME CMD...: appends "to-user-space total" seconds to /tmp/NAME.times
measure() {
  name=$1; shift
  rm -f /tmp/us.t /tmp/$name.log
  t0=$(up)
  # A boot that hangs is killed (devpass then prints where its vCPUs were)
  # rather than eating the lab's whole time.
  timeout 300 "$@" </dev/null 2>&1 | while IFS= read -r line; do
    case $line in *"guest: user space"*)
      up >/tmp/us.t
      echo "$line" | sed 's/.*uptime \([0-9.]*\)s.*/\1/' >/tmp/kernel.t ;;
    esac
    echo "$line" >>/tmp/$name.log
  done
  t1=$(up)
  if [ -s /tmp/us.t ] && grep -q "@@GUEST-EXIT status=0@@" /tmp/$name.log; then
    echo "$(awk "BEGIN{printf \"%.2f %.2f %.2f\", $(cat /tmp/us.t) - $t0, $t1 - $t0, $(cat /tmp/kernel.t)}")" >>/tmp/$name.times
  else
    lab_fail "$name run did not reach user space and power off" "$(tail -40 /tmp/$name.log)"
  fi
}
stats() {  # stats FILE COLUMN -> "median min max"
  cut -d' ' -f"$2" "$1" | sort -n | awk '{v[NR]=$1} END {
    m = (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2
    printf "%.2f %.2f %.2f", m, v[1], v[NR] }'
}

rm -f /tmp/devpass.times /tmp/qemu.times /tmp/devpass.log /tmp/qemu.log
for i in $(seq "$N"); do
  lab_step "run $i/$N"
  measure devpass devpass run --kernel /lab/guest/vmlinuz --initrd /tmp/guest.img --mem 256M --cmdline quiet
  echo "devpass: $(tail -1 /tmp/devpass.times)"
  measure qemu qemu-system-x86_64 -nodefaults -no-user-config -M q35 -accel kvm \
    -cpu host,-xsave -m 256 -display none -serial stdio -monitor none -no-reboot \
    -kernel /lab/guest/vmlinuz -initrd /tmp/guest.img -append "$CMDLINE"
  echo "qemu:    $(tail -1 /tmp/qemu.times)"
done

lab_step "results (seconds, nested KVM inside the TCG lab)"
for f in devpass qemu; do
  [ -s /tmp/$f.times ] || continue
  set -- $(stats /tmp/$f.times 1); us="median $1 min $2 max $3"
  set -- $(stats /tmp/$f.times 2); tot="median $1 min $2 max $3"
  set -- $(stats /tmp/$f.times 3); kern="median $1 min $2 max $3"
  echo "BOOTTIME $f launch-to-user-space: $us | launch-to-exit: $tot | guest kernel uptime at user space: $kern"
done
lab_eq "devpass measured $N times" "$N" "$(wc -l </tmp/devpass.times 2>/dev/null)"
lab_eq "qemu measured $N times" "$N" "$(wc -l </tmp/qemu.times 2>/dev/null)"
d=$(stats /tmp/devpass.times 1 | cut -d' ' -f1)
q=$(stats /tmp/qemu.times 1 | cut -d' ' -f1)
lab_check "devpass reaches user space faster than QEMU (median $d s vs $q s)" \
  awk "BEGIN{exit !($d < $q)}"
lab_done
