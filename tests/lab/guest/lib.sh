# /lab/lib.sh: helpers for lab scenarios. Source it:  . /lab/lib.sh
#
# Finding devices and reading the kernel's state:
#   lab_find_dev VENDOR:DEVICE [N]  BDF of the Nth (default 1st) such device, in BDF order
#   lab_devs VENDOR:DEVICE          every such BDF, one a line
#   lab_driver BDF                  bound driver's name, empty if none
#   lab_override BDF                driver_override ("(null)" when unset)
#   lab_group BDF                   IOMMU group number, empty if none
#   lab_group_members BDF           BDFs in its IOMMU group
#   lab_netifs BDF                  network interfaces whose device is BDF
#   lab_block_bdf NAME              BDF of the PCI device behind /sys/block/NAME
#   lab_state BDF                   one line: "BDF driver=... override=... group=... net=..."
#   lab_snapshot                    lab_state of every PCI device (compare before/after)
# Running and checking (checks never stop the script; lab_done sums up):
#   lab_step TITLE                  a heading
#   lab_run CMD...                  show "# CMD", run it, show its output;
#                                   sets LAB_RC, output in $LAB_OUT (file)
#   lab_check DESC CMD...           passes if CMD succeeds
#   lab_eq DESC EXPECTED ACTUAL     passes if equal
#   lab_ne DESC UNEXPECTED ACTUAL   passes if different
#   lab_rc DESC EXPECTED            passes if the last lab_run's status is EXPECTED
#   lab_out_has DESC ERE            passes if the last lab_run's output matches ERE
#   lab_exists DESC PATH / lab_absent DESC PATH
#   lab_fail DESC [DETAIL]          records a failure
#   lab_wait TENTHS CMD...          retries CMD every 0.1 s, at most TENTHS times
#   lab_done                        prints the summary; exits 0 iff no check failed
#
# Known devices (IDs) and the NVMe drive's pattern.
LAB_ID_EDU=1234:11e8
LAB_ID_E1000E=8086:10d3
LAB_ID_E1000=8086:100e
LAB_ID_NVME=1b36:0010
LAB_NVME_PATTERN=DEVPASS-LAB-NVME        # repeated 256 times (4 KiB) ...
LAB_NVME_PATTERN_OFFSET=1048576          # ... at this byte offset of the NVMe drive
LAB_OUT=/tmp/lab-last-output
LAB_CHECKS=0
LAB_FAILED=0
SYS_PCI=/sys/bus/pci/devices

lab_devs() {
  local d
  for d in "$SYS_PCI"/*; do
    [ "$(cat "$d/vendor"):$(cat "$d/device")" = "0x${1%%:*}:0x${1#*:}" ] && echo "${d##*/}"
  done
  return 0
}
lab_find_dev() {
  local bdf
  bdf=$(lab_devs "$1" | sed -n "${2:-1}p")
  [ -n "$bdf" ] || { echo "lab: no device $1 #${2:-1}" >&2; return 1; }
  echo "$bdf"
}
lab_driver() { local l; l=$(readlink "$SYS_PCI/$1/driver") && echo "${l##*/}"; return 0; }
lab_override() { cat "$SYS_PCI/$1/driver_override" 2>/dev/null; }
lab_group() { local l; l=$(readlink "$SYS_PCI/$1/iommu_group") && echo "${l##*/}"; return 0; }
lab_group_members() {
  local g; g=$(lab_group "$1")
  [ -n "$g" ] && ls "/sys/kernel/iommu_groups/$g/devices"
  return 0
}
lab_netifs() {
  local n l
  for n in /sys/class/net/*; do
    l=$(readlink -f "$n/device" 2>/dev/null) || continue
    [ "${l##*/}" = "$1" ] && echo "${n##*/}"
  done
  return 0
}
lab_block_bdf() {
  local p c; p=$(readlink -f "/sys/block/$1")
  # An NVMe multipath head (QEMU 10's nvme) sits under its subsystem, which
  # links its controllers: the first one's function.
  case $p in */nvme-subsystem/*)
    for c in "${p%/*}"/nvme[0-9]*; do p=$(readlink -f "$c"); break; done ;;
  esac
  while [ -n "$p" ] && [ "$p" != / ]; do
    case ${p##*/} in [0-9a-f][0-9a-f][0-9a-f][0-9a-f]:*:*.*) echo "${p##*/}"; return 0 ;; esac
    p=${p%/*}
  done
  return 1
}
lab_state() {
  echo "$1 driver=$(lab_driver "$1") override=$(lab_override "$1") group=$(lab_group "$1") net=$(lab_netifs "$1" | tr '\n' ',')"
}
lab_snapshot() { local d; for d in "$SYS_PCI"/*; do lab_state "${d##*/}"; done; }

lab_step() { echo; echo "== $*"; }
lab_run() {
  echo "# $*"
  "$@" >"$LAB_OUT" 2>&1
  LAB_RC=$?
  sed 's/^/  | /' "$LAB_OUT"
  echo "  (exit status $LAB_RC)"
  return $LAB_RC
}
lab_pass() { LAB_CHECKS=$((LAB_CHECKS + 1)); echo "  ok   - $1"; }
lab_fail() {
  LAB_CHECKS=$((LAB_CHECKS + 1)); LAB_FAILED=$((LAB_FAILED + 1))
  echo "  FAIL - $1${2:+ ($2)}"
}
lab_check() { local d=$1; shift; if "$@" >/dev/null 2>&1; then lab_pass "$d"; else lab_fail "$d" "failed: $*"; fi; }
lab_eq() { if [ "$2" = "$3" ]; then lab_pass "$1"; else lab_fail "$1" "expected '$2', got '$3'"; fi; }
lab_ne() { if [ "$2" != "$3" ]; then lab_pass "$1"; else lab_fail "$1" "got '$3'"; fi; }
lab_rc() { lab_eq "$1" "$2" "$LAB_RC"; }
lab_out_has() {
  if grep -qE -- "$2" "$LAB_OUT"; then lab_pass "$1"; else lab_fail "$1" "output does not match /$2/"; fi
}
lab_exists() { if [ -e "$2" ]; then lab_pass "$1"; else lab_fail "$1" "$2 does not exist"; fi; }
lab_absent() { if [ -e "$2" ]; then lab_fail "$1" "$2 exists"; else lab_pass "$1"; fi; }
lab_wait() {
  local n=0 max=$1; shift
  until "$@" >/dev/null 2>&1; do
    n=$((n + 1)); [ $n -ge "$max" ] && return 1
    sleep 0.1
  done
}
lab_done() {
  echo
  if [ "$LAB_FAILED" -eq 0 ]; then
    echo "lab: ${LAB_SCENARIO:-scenario}: all $LAB_CHECKS checks passed"
    exit 0
  fi
  echo "lab: ${LAB_SCENARIO:-scenario}: $LAB_FAILED of $LAB_CHECKS checks FAILED"
  exit 1
}

# Files a scenario needs beyond the initramfs can come on a read-only tar
# disk (virtio serial "vmmextra", made on the build machine by
# guest-tools/make-extra-disk, attached with LAB_QEMU_EXTRA): unpack it.
lab_unpack_extra() {
  local b
  for b in /sys/block/vd*; do
    [ "$(cat "$b/serial" 2>/dev/null)" = vmmextra ] && tar -x -C / -f "/dev/${b##*/}"
  done
  return 0
}

# What every nested-guest (vmm_*) scenario needs: the guest kernel and
# lab-guest-initrd (both shipped by tests/lab/build) and /dev/kvm.
lab_vmm_prepare() {
  [ -f /lab/guest/vmlinuz ] || { lab_fail "guest kernel /lab/guest/vmlinuz is missing"; lab_done; }
  command -v lab-guest-initrd >/dev/null || { lab_fail "lab-guest-initrd is missing"; lab_done; }
  [ -e /dev/kvm ] || { lab_fail "/dev/kvm is missing (kvm_amd not loaded?)"; lab_done; }
}

# ------------------------------------------------------------------------
# The guest side of passthrough (guest-scripts/, programs/guest_*.cc) and
# the lab-host side the scenarios pair with it. The same functions work in
# the lab and in a nested guest (lab-guest-initrd puts this file in guests
# at /lab/lib.sh).
#
# Network (the e1000e pair 00:03.0 <-> 00:04.0 on one QEMU hub):
#   lab_net_peer_up [BDF] [ADDR/LEN]  the lab host's NIC (default: the 2nd
#                                   e1000e, 00:04.0) on e1000e, up, ADDR
#                                   (default $LAB_NET_PEER_ADDR/24), carrier
#                                   waited for; sets LAB_NET_PEER_IF
#   lab_net_blob FILE MIB           random FILE of MIB MiB; prints its sha256
#   lab_net_serve PORT FILE         background: send FILE to the first client of PORT
#   lab_net_receive PORT OUT        background: store what the first client of PORT sends
#   lab_net_received OUT [TENTHS]   waits for lab_net_receive; prints "SHA256 BYTES"
#   lab_net_stop                    kills the background listeners still running
#   lab_netns_move IF NAME          moves IF into a new network namespace NAME
#   lab_netns_exec NAME CMD...      runs CMD in NAME (with its own /sys: sysfs
#                                   shows a namespace's interfaces only to it)
#   lab_netns_del NAME              ends NAME (its interfaces return to the lab)
# NVMe (the drive holds LAB_NVME_PATTERN x256 at LAB_NVME_PATTERN_OFFSET):
#   lab_nvme_disk [BDF]             block device name (nvme0n1) of the NVMe at BDF
#   lab_nvme_check_pattern DEV OFFSET PATTERN [COUNT]  0 iff DEV holds PATTERN
#                                   x COUNT (default 256) at OFFSET (O_DIRECT read)
#   lab_nvme_write_pattern DEV OFFSET PATTERN [COUNT]  writes it (O_DIRECT)
# Nested guests:
#   lab_guest_status [FILE]         the "@@GUEST-EXIT status=N@@" of a guest
#                                   run's output (default $LAB_OUT); empty if none
#   lab_dmar_faults BDF             number of IOMMU (DMAR) faults dmesg has for BDF
#   lab_qemu_prepare                QEMU from the extra disk (lab.qemu-disk), /dev/kvm
#   lab_devpass_guest INITRD [DEVPASS-RUN-ARGS...]
#                                   boots /lab/guest/vmlinuz + INITRD with
#                                   `devpass run --cmdline "quiet unknown_nmi_panic
#                                   $LAB_GUEST_CMDLINE" ARGS` (e.g.
#                                   --mem 128 --device BDF --name N); like
#                                   lab_run: $LAB_OUT, $LAB_RC;
#                                   LAB_GUEST_SECONDS = wall time;
#                                   stopped by lab_timeout after
#                                   $LAB_GUEST_TIMEOUT s (600)
#   lab_qemu_guest [--mem MIB] [--device BDF]... [--cmdline S] [--timeout S]
#                  INITRD [QEMU-ARGS...]
#                                   boots /lab/guest/vmlinuz + INITRD under
#                                   qemu-system-x86_64 -accel kvm -M q35, each
#                                   BDF (bound to vfio-pci: devpass hide) as
#                                   -device vfio-pci,host=BDF; like lab_run:
#                                   output in $LAB_OUT, exit status in $LAB_RC;
#                                   LAB_GUEST_SECONDS = wall time
LAB_NET_PEER_ADDR=10.77.0.1
LAB_NET_GUEST_ADDR=10.77.0.2
LAB_NVME_GUEST_PATTERN=DEVPASS-GUEST-NVM      # 16 bytes, written by guest-scripts/nvme.sh ...
LAB_NVME_GUEST_OFFSET=2097152                 # ... 256 times at this offset

lab_net_peer_up() {
  local bdf=${1:-} addr=${2:-$LAB_NET_PEER_ADDR/24} n=0
  [ -n "$bdf" ] || bdf=$(lab_find_dev $LAB_ID_E1000E 2) || return 1
  [ -d /sys/bus/pci/drivers/e1000e ] || modprobe e1000e
  if [ "$(lab_driver "$bdf")" != e1000e ]; then
    [ -n "$(lab_driver "$bdf")" ] && echo "$bdf" >"$SYS_PCI/$bdf/driver/unbind"
    echo >"$SYS_PCI/$bdf/driver_override" 2>/dev/null
    echo "$bdf" >/sys/bus/pci/drivers/e1000e/bind || return 1
  fi
  lab_wait 50 sh -c "[ -n \"\$(ls $SYS_PCI/$bdf/net 2>/dev/null)\" ]"
  LAB_NET_PEER_IF=$(ls "$SYS_PCI/$bdf/net" 2>/dev/null | head -1)
  [ -n "$LAB_NET_PEER_IF" ] || { echo "lab: $bdf has no network interface" >&2; return 1; }
  ip addr flush dev "$LAB_NET_PEER_IF"
  ip link set "$LAB_NET_PEER_IF" up
  ip addr add "$addr" dev "$LAB_NET_PEER_IF" || return 1
  until [ "$(cat "/sys/class/net/$LAB_NET_PEER_IF/carrier" 2>/dev/null)" = 1 ]; do
    n=$((n + 1)); [ $n -gt 100 ] && { echo "lab: no carrier on $LAB_NET_PEER_IF" >&2; return 1; }
    sleep 0.1
  done
  echo "lab: $LAB_NET_PEER_IF ($bdf) up with $addr"
}
lab_net_blob() {
  dd if=/dev/urandom of="$1" bs=1M count="$2" 2>/dev/null || return 1
  sha256sum "$1" | cut -d' ' -f1
}
# Busybox nc quits when its stdin ends: a receiving side reads a FIFO opened
# read-write, which never ends, so only the peer closing ends it.
lab_net_hold() { [ -p /tmp/lab-net-hold ] || mkfifo /tmp/lab-net-hold; }
lab_net_serve() {
  nc -l -p "$1" <"$2" >/dev/null 2>&1 &
  LAB_NET_PIDS="${LAB_NET_PIDS:-} $!"
}
lab_net_receive() {
  lab_net_hold
  rm -f "$2" "$2.rc" "$2.pid"
  (nc -l -p "$1" <>/tmp/lab-net-hold >"$2" & echo $! >"$2.pid"; wait $!; echo $? >"$2.rc") &
  LAB_NET_PIDS="${LAB_NET_PIDS:-} $!"
  LAB_NET_PIDFILES="${LAB_NET_PIDFILES:-} $2.pid"
}
lab_net_received() {
  lab_wait "${2:-600}" test -s "$1.rc" || { echo "lab: nothing received in $1" >&2; return 1; }
  echo "$(sha256sum "$1" | cut -d' ' -f1) $(wc -c <"$1" | tr -d ' ')"
}
lab_net_stop() {  # only the listeners these functions started, by PID
  local p f
  for f in ${LAB_NET_PIDFILES:-}; do [ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
  for p in ${LAB_NET_PIDS:-}; do kill "$p" 2>/dev/null; done
  LAB_NET_PIDS= LAB_NET_PIDFILES=
  return 0
}
lab_netns_move() {
  unshare -n sleep 100000 &
  echo $! >"/tmp/lab-netns-$2.pid"
  sleep 0.2
  ip link set "$1" netns "$!"
}
lab_netns_exec() {
  local pid; pid=$(cat "/tmp/lab-netns-$1.pid") || return 1
  shift
  nsenter -t "$pid" -n unshare -m sh -c 'mount -t sysfs sysfs /sys && exec "$@"' sh "$@"
}
lab_netns_del() {
  local pid; pid=$(cat "/tmp/lab-netns-$1.pid" 2>/dev/null) || return 0
  kill "$pid" 2>/dev/null
  rm -f "/tmp/lab-netns-$1.pid"
  sleep 0.5   # the namespace's devices move back to the lab's
}

lab_nvme_disk() {
  local bdf=${1:-} b
  [ -n "$bdf" ] || bdf=$(lab_find_dev $LAB_ID_NVME 1) || return 1
  for b in /sys/block/nvme*n1; do
    case ${b##*/} in nvme*c*n*) continue ;; esac  # a multipath path: no /dev node
    [ -e "$b" ] && [ "$(lab_block_bdf "${b##*/}")" = "$bdf" ] && { echo "${b##*/}"; return 0; }
  done
  return 1
}
lab_nvme_expected() {  # lab_nvme_expected PATTERN COUNT > file
  local i=0
  while [ $i -lt "$2" ]; do printf '%s' "$1"; i=$((i + 1)); done
}
lab_nvme_check_pattern() {
  local dev=$1 off=$2 pat=$3 count=${4:-256} len blocks
  len=$((${#pat} * count)); blocks=$(((len + 4095) / 4096))
  lab_nvme_expected "$pat" "$count" >/tmp/lab-nvme-want
  dd if="$dev" bs=4096 skip=$((off / 4096)) count=$blocks iflag=direct 2>/dev/null |
    head -c "$len" >/tmp/lab-nvme-got
  cmp -s /tmp/lab-nvme-want /tmp/lab-nvme-got
}
lab_nvme_write_pattern() {
  local dev=$1 off=$2 pat=$3 count=${4:-256}
  lab_nvme_expected "$pat" "$count" >/tmp/lab-nvme-put
  dd if=/tmp/lab-nvme-put of="$dev" bs=4096 seek=$((off / 4096)) oflag=direct conv=notrunc 2>/dev/null
}

lab_guest_status() {
  grep -aoE '@@GUEST-EXIT status=[0-9]+@@' "${1:-$LAB_OUT}" | tail -1 | sed 's/.*=\([0-9]*\)@@/\1/'
}
lab_dmar_faults() {
  dmesg | grep -cE "DMAR: \[DMA (Write|Read).*Request device \[${1#0000:}\] fault addr"
}
lab_qemu_prepare() {
  lab_vmm_prepare
  lab_unpack_extra
  command -v qemu-system-x86_64 >/dev/null ||
    { lab_fail "qemu-system-x86_64 is missing in the lab (attach lab.qemu-disk's image: see README)"; lab_done; }
}
lab_qemu_guest() {
  local mem=256 cmdline= tmo=300 devs= t0 t1
  while [ $# -gt 0 ]; do
    case $1 in
      --mem) mem=$2; shift 2 ;;
      --device) devs="$devs -device vfio-pci,host=$2"; shift 2 ;;
      --cmdline) cmdline=$2; shift 2 ;;
      --timeout) tmo=$2; shift 2 ;;
      *) break ;;
    esac
  done
  local initrd=$1; shift
  t0=$(cut -d' ' -f1 /proc/uptime)
  # -cpu host,-xsave as in vmm_boottime (nested SVM under TCG).
  # shellcheck disable=SC2086
  lab_run timeout "$tmo" qemu-system-x86_64 -nodefaults -no-user-config -M q35 -accel kvm \
    -cpu host,-xsave -m "$mem" -display none -serial stdio -monitor none -no-reboot \
    -kernel /lab/guest/vmlinuz -initrd "$initrd" \
    -append "console=ttyS0 panic=-1 quiet $cmdline" $devs "$@" </dev/null
  t1=$(cut -d' ' -f1 /proc/uptime)
  LAB_GUEST_SECONDS=$(awk "BEGIN{printf \"%.1f\", $t1 - $t0}")
  echo "  (guest ran ${LAB_GUEST_SECONDS}s)"
  return $LAB_RC
}
# lab_timeout SECONDS CMD...: like timeout(1), for `devpass run`: a command
# still running after SECONDS gets SIGUSR1 (devpass injects an NMI: a Linux
# guest booted with unknown_nmi_panic prints a backtrace of where it hung),
# SIGTERM 15 s later (devpass says where each vCPU was and gives its devices
# back), SIGKILL 30 s after that. Returns the command's status.
lab_timeout() {
  local secs=$1 pid w rc
  shift
  "$@" &
  pid=$!
  (
    sleep "$secs"
    kill -USR1 "$pid" 2>/dev/null || exit 0
    echo "lab: $1 still running after ${secs}s: SIGUSR1 (an NMI for its guest), SIGTERM in 15 s" >&2
    sleep 15
    kill -TERM "$pid" 2>/dev/null || exit 0
    sleep 30
    kill -KILL "$pid" 2>/dev/null
  ) &
  w=$!
  wait "$pid"
  rc=$?
  kill "$w" 2>/dev/null
  wait "$w" 2>/dev/null
  return $rc
}
lab_devpass_guest() {
  local img=$1 t0 t1
  shift
  t0=$(cut -d' ' -f1 /proc/uptime)
  # A guest that hangs is stopped by lab_timeout: its backtrace (NMI), then
  # where each vCPU was, end up in $LAB_OUT.
  lab_run lab_timeout "${LAB_GUEST_TIMEOUT:-600}" devpass run --kernel /lab/guest/vmlinuz \
    --initrd "$img" --cmdline "quiet unknown_nmi_panic ${LAB_GUEST_CMDLINE:-}" "$@"
  t1=$(cut -d' ' -f1 /proc/uptime)
  LAB_GUEST_SECONDS=$(awk "BEGIN{printf \"%.1f\", $t1 - $t0}")
}
