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
  local p; p=$(readlink -f "/sys/block/$1/device")
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
