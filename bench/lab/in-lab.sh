#!/bin/sh
# One part of the passthrough benchmark, run inside the lab by bench/lab/run:
#   in-lab.sh PART RUNS NET_MIB RR EDU_N RAND_OPS MEM
# Every measurement is printed once, as "BENCH <metric> <way> <value>" (by
# guest_edu --label, netperf, blkperf, stopwatch, or here), for bench_report.
#
# PART (one lab boot each, so a failing part costs only itself):
#   edu-native    guest_edu on the lab's own kernel (lab booted --no-iommu:
#                 vfio no-IOMMU mode, the same program the guests run)
#   native        the lab's e1000e (00:03.0, moved to a network namespace so
#                 its traffic crosses the wire) against its twin 00:04.0, and
#                 the lab's NVMe through its own nvme driver
#   devpass       one devpass guest owning the edu, the e1000e and the NVMe
#   devpass-nothp the same with --no-thp: guest RAM in 4 KiB pages only
#                 (MADV_NOHUGEPAGE; devpass and QEMU madvise it for THP)
#   qemu-vfio     the same guest under QEMU -accel kvm, -device vfio-pci x3
#   passthrough   devpass, devpass --no-thp and qemu-vfio alternated within
#                 one lab boot, RUNS rounds of one run each (ways *-ab)
#   qemu-emulated QEMU's e1000e and nvme models: the NIC on a tap bridged to
#                 the lab's 00:03.0, the drive backed by the lab's NVMe
#   virtio        virtio-net (vhost-net when the lab has it) and virtio-blk on
#                 the same tap bridge and drive
#   launch        launch to guest user space with the edu passed through,
#                 devpass vs QEMU, 4 KiB pages and huge pages, RUNS rounds
#                 (interleaved, so drift in the lab hits every way alike);
#                 devpass's own DMA-map time of guest RAM per GiB
# The guests run the same script (written below) with the same kernel; the
# native part runs it on the lab host.
. /lab/lib.sh
PART=${1:?part} RUNS=${2:-3} NET_MIB=${3:-4} RR=${4:-200} EDU_N=${5:-50} RAND_OPS=${6:-2000}
MEM=${7:-256}
TIMEOUT=1500

cat >/tmp/bench-guest.sh <<'G'
#!/bin/sh
# The measuring side, in a guest or natively. Environment: BENCH_WAY,
# BENCH_PARTS (edu net nvme), BENCH_RUNS, BENCH_NET_MIB, BENCH_RR,
# BENCH_EDU_N, BENCH_RAND_OPS, BENCH_PEER, BENCH_ADDR, BENCH_DISK (optional).
rc=0
for part in $BENCH_PARTS; do
  case $part in
  edu)
    guest_edu --bench "$BENCH_EDU_N" --label "$BENCH_WAY" || rc=1 ;;
  net)
    IF=
    for n in /sys/class/net/*; do n=${n##*/}; [ "$n" = lo ] || { IF=$n; break; }; done
    if [ -z "$IF" ]; then echo "bench: no network interface"; rc=1; continue; fi
    ip link set "$IF" up
    ip addr add "$BENCH_ADDR" dev "$IF"
    i=0
    until [ "$(cat "/sys/class/net/$IF/carrier" 2>/dev/null)" = 1 ] || [ $i -gt 200 ]; do
      sleep 0.1; i=$((i + 1))
    done
    echo "bench: $IF ($(basename "$(readlink "/sys/class/net/$IF/device/driver")")) up"
    ping -c 2 -w 30 "$BENCH_PEER" >/dev/null 2>&1 || echo "bench: ping $BENCH_PEER unanswered"
    netperf client "$BENCH_PEER" --label "$BENCH_WAY" --runs "$BENCH_RUNS" \
      --mib "$BENCH_NET_MIB" --rr "$BENCH_RR" || rc=1 ;;
  nvme)
    DISK=${BENCH_DISK:-}
    i=0
    while [ -z "$DISK" ] && [ $i -lt 100 ]; do
      for b in nvme0n1 vda; do [ -b "/dev/$b" ] && DISK=/dev/$b && break; done
      [ -n "$DISK" ] || sleep 0.1
      i=$((i + 1))
    done
    if [ -z "$DISK" ]; then echo "bench: no drive"; rc=1; continue; fi
    echo "bench: drive $DISK"
    blkperf "$DISK" --label "$BENCH_WAY" --runs "$BENCH_RUNS" --rand-ops "$BENCH_RAND_OPS" || rc=1 ;;
  esac
done
echo "bench: measuring side done, status $rc"
exit $rc
G

EDU=$(lab_find_dev $LAB_ID_EDU 1)
NIC=$(lab_find_dev $LAB_ID_E1000E 1)
PEER=$(lab_find_dev $LAB_ID_E1000E 2)
NVME=$(lab_find_dev $LAB_ID_NVME 1)
ENVS="--env BENCH_RUNS=$RUNS --env BENCH_NET_MIB=$NET_MIB --env BENCH_RR=$RR \
--env BENCH_EDU_N=$EDU_N --env BENCH_RAND_OPS=$RAND_OPS \
--env BENCH_PEER=$LAB_NET_PEER_ADDR --env BENCH_ADDR=$LAB_NET_GUEST_ADDR/24"
BINS="--bin /usr/bin/guest_edu --bin /usr/bin/netperf --bin /usr/bin/blkperf"

# The lab's end of the network: 00:04.0 on e1000e with the peer address,
# and netperf's server.
peer_up() {
  lab_run lab_net_peer_up "$PEER"
  lab_rc "the peer NIC $PEER is up" 0
  netperf serve >/tmp/netperf-serve.log 2>&1 &
  SERVER=$!
}
# A tap on a bridge with the lab's 00:03.0: an emulated NIC's frames leave
# through the same e1000e the other ways use.
tap_bridge() {
  local ifc
  lab_run modprobe -a tun bridge vhost_net
  ifc=$(lab_netifs "$NIC" | head -1)
  # busybox: brctl and tunctl (its ip has no "link add" or "tuntap"; its
  # brctl no "stp" or "setfd": sysfs instead). STP is off by default, but a
  # port still waits forward_delay (15 s) before it forwards.
  brctl addbr br0 && echo 0 >/sys/class/net/br0/bridge/forward_delay &&
    brctl addif br0 "$ifc" && tunctl -t tap0 >/dev/null && brctl addif br0 tap0 &&
    ip link set "$ifc" up && ip link set tap0 up && ip link set br0 up
  lab_eq "tap0 and $ifc ($NIC) bridged" 0 $?
}
guest_img() {  # guest_img OUT WAY PARTS MODULES
  # shellcheck disable=SC2086
  lab_run lab-guest-initrd --modules "$4" $BINS $ENVS --env BENCH_WAY="$2" \
    --env BENCH_PARTS="$3" "$1" /tmp/bench-guest.sh
  lab_rc "guest initramfs for $2" 0
}
# expect WAY METRIC...: each metric has at least one sample of WAY in LAB_OUT.
expect() {
  local way=$1 m
  shift
  for m in "$@"; do
    lab_out_has "$way: $m measured" "BENCH $m $way [0-9]"
  done
}
guest_done() {
  lab_rc "$1: the guest ran and powered off" 0
  lab_eq "$1: every measurement in the guest succeeded" 0 "$(lab_guest_status)"
  echo "$1: guest ran ${LAB_GUEST_SECONDS}s"
  shift
  expect "$@"
}
M_NET="net.tx net.rx net.rtt" M_NVME="nvme.seq_read nvme.rand_read" M_EDU="edu.msi_rtt edu.dma"
qemu_disk() { echo "/dev/$(lab_nvme_disk "$NVME")"; }

case $PART in
edu-native)
  lab_eq "the lab runs without an IOMMU (--no-iommu)" 0 "$LAB_IOMMU"
  lab_run insmod /lab/noiommu/vfio.ko enable_unsafe_noiommu_mode=1
  lab_run modprobe vfio-pci
  lab_rc "vfio-pci in no-IOMMU mode" 0
  lab_run guest_edu "$EDU" --bench "$EDU_N" --label native
  lab_rc "guest_edu natively" 0
  expect native $M_EDU
  ;;
native)
  peer_up
  IF=$(lab_netifs "$NIC" | head -1)
  lab_netns_move "$IF" bench
  lab_run lab_netns_exec bench env BENCH_WAY=native BENCH_PARTS=net BENCH_RUNS="$RUNS" \
    BENCH_NET_MIB="$NET_MIB" BENCH_RR="$RR" BENCH_PEER=$LAB_NET_PEER_ADDR \
    BENCH_ADDR=$LAB_NET_GUEST_ADDR/24 sh /tmp/bench-guest.sh
  lab_rc "network natively ($NIC in a namespace)" 0
  expect native $M_NET
  lab_netns_del bench
  lab_run env BENCH_WAY=native BENCH_PARTS=nvme BENCH_RUNS="$RUNS" BENCH_RAND_OPS="$RAND_OPS" \
    BENCH_DISK="$(qemu_disk)" sh /tmp/bench-guest.sh
  lab_rc "NVMe natively" 0
  expect native $M_NVME
  ;;
devpass | devpass-nothp)
  lab_vmm_prepare
  peer_up
  guest_img /tmp/g.img "$PART" "edu net nvme" "vfio-pci e1000e nvme"
  thp=; [ "$PART" = devpass-nothp ] && thp=--no-thp
  # shellcheck disable=SC2086
  lab_devpass_guest /tmp/g.img --mem "${MEM}M" --device "$EDU" --device "$NIC" \
    --device "$NVME" --name bench $thp
  guest_done "$PART" "$PART" $M_EDU $M_NET $M_NVME
  ;;
passthrough)
  # devpass, devpass --no-thp and QEMU vfio-pci alternated in one lab boot,
  # one run each per round: the lab's speed drifts over minutes (other work
  # on the build machine's host), and separate parts measured identical
  # configurations up to 3x apart; within a round every way meets the same
  # drift. Labels: devpass-ab, devpass-nothp-ab, qemu-vfio-ab.
  lab_qemu_prepare
  peer_up
  ENVS=$(echo "$ENVS" | sed "s/BENCH_RUNS=$RUNS/BENCH_RUNS=1/")
  for w in devpass-ab devpass-nothp-ab qemu-vfio-ab; do
    guest_img /tmp/$w.img $w "edu net nvme" "vfio-pci e1000e nvme"
  done
  r=1
  while [ $r -le "$RUNS" ]; do
    lab_step "passthrough round $r of $RUNS"
    # shellcheck disable=SC2086
    lab_devpass_guest /tmp/devpass-ab.img --mem "${MEM}M" --device "$EDU" --device "$NIC" \
      --device "$NVME" --name bench
    guest_done devpass-ab devpass-ab $M_EDU $M_NET $M_NVME
    # shellcheck disable=SC2086
    lab_devpass_guest /tmp/devpass-nothp-ab.img --mem "${MEM}M" --device "$EDU" \
      --device "$NIC" --device "$NVME" --name bench --no-thp
    guest_done devpass-nothp-ab devpass-nothp-ab $M_EDU $M_NET $M_NVME
    for d in $EDU $NIC $NVME; do lab_run devpass hide "$d"; lab_rc "hide $d" 0; done
    lab_qemu_guest --mem "$MEM" --timeout $TIMEOUT --device "$EDU" --device "$NIC" \
      --device "$NVME" /tmp/qemu-vfio-ab.img
    guest_done qemu-vfio-ab qemu-vfio-ab $M_EDU $M_NET $M_NVME
    for d in $EDU $NIC $NVME; do lab_run devpass unhide "$d"; done
    r=$((r + 1))
  done
  ;;
qemu-vfio)
  lab_qemu_prepare
  peer_up
  guest_img /tmp/g.img qemu-vfio "edu net nvme" "vfio-pci e1000e nvme"
  for d in $EDU $NIC $NVME; do lab_run devpass hide "$d"; lab_rc "hide $d" 0; done
  lab_qemu_guest --mem "$MEM" --timeout $TIMEOUT --device "$EDU" --device "$NIC" \
    --device "$NVME" /tmp/g.img
  guest_done qemu-vfio qemu-vfio $M_EDU $M_NET $M_NVME
  for d in $EDU $NIC $NVME; do lab_run devpass unhide "$d"; done
  ;;
qemu-emulated | virtio)
  lab_qemu_prepare
  peer_up
  tap_bridge
  DISK=$(qemu_disk)
  DRIVE="-drive file=$DISK,if=none,id=d0,format=raw,cache=none"
  if [ "$PART" = virtio ]; then
    vhost=off; [ -c /dev/vhost-net ] && vhost=on
    echo "virtio-net with vhost=$vhost"
    guest_img /tmp/g.img virtio "net nvme" "virtio_pci virtio_net virtio_blk"
    # shellcheck disable=SC2086
    lab_qemu_guest --mem "$MEM" --timeout $TIMEOUT /tmp/g.img \
      -netdev tap,id=n0,ifname=tap0,script=no,downscript=no,vhost=$vhost \
      -device virtio-net-pci,netdev=n0,romfile= $DRIVE -device virtio-blk-pci,drive=d0
  else
    guest_img /tmp/g.img qemu-emulated "net nvme" "e1000e nvme"
    # shellcheck disable=SC2086
    lab_qemu_guest --mem "$MEM" --timeout $TIMEOUT /tmp/g.img \
      -netdev tap,id=n0,ifname=tap0,script=no,downscript=no \
      -device e1000e,netdev=n0,romfile= $DRIVE -device nvme,drive=d0,serial=bench
  fi
  guest_done "$PART" "$PART" $M_NET $M_NVME
  ;;
launch)
  lab_qemu_prepare
  printf '#!/bin/sh\ntrue\n' >/tmp/launch.sh
  lab_run lab-guest-initrd /tmp/launch.img /tmp/launch.sh
  lab_rc "guest initramfs" 0
  lab_run devpass hide "$EDU"
  lab_rc "hide $EDU" 0
  echo $((MEM / 2 + 8)) >/proc/sys/vm/nr_hugepages
  mkdir -p /dev/hugepages && mount -t hugetlbfs none /dev/hugepages
  lab_eq "huge pages for one guest" 1 "$(awk -v m="$MEM" '/HugePages_Free/ {print ($2 * 2 >= m)}' /proc/meminfo)"
  # One executable per way for stopwatch (it execs a command, not a shell
  # function); exec keeps the wrapper out of the way.
  cat >/tmp/qemu-launch <<Q
#!/bin/sh
exec qemu-system-x86_64 -nodefaults -no-user-config -M q35 -accel kvm -cpu host,-xsave \\
  -m $MEM -display none -serial stdio -monitor none -no-reboot -kernel /lab/guest/vmlinuz \\
  -initrd /tmp/launch.img -append "console=ttyS0 panic=-1 quiet" -device vfio-pci,host=$EDU "\$@"
Q
  chmod +x /tmp/qemu-launch
  QEMU=/tmp/qemu-launch
  DEVPASS="devpass run --kernel /lab/guest/vmlinuz --initrd /tmp/launch.img --cmdline quiet \
--mem ${MEM}M --device $EDU --name launch"
  # dmamap WAY: devpass's "guest RAM (N MiB) mapped for DMA in the IOMMU in T ms", per GiB.
  dmamap() {
    local line
    line=$(sed -n 's/.*guest RAM (\([0-9]*\) MiB) mapped for DMA in the IOMMU in \([0-9]*\) ms.*/\1 \2/p' \
      "$LAB_OUT" | awk -v w="$1" '{printf "BENCH dmamap.per_gib %s %.3f\n", w, $2 / 1000 / ($1 / 1024)}')
    lab_ne "devpass reported its DMA-map time ($1)" "" "$line"
    [ -z "$line" ] || echo "$line"
  }
  r=1
  while [ $r -le "$RUNS" ]; do
    lab_step "launch round $r of $RUNS"
    # shellcheck disable=SC2086
    lab_run timeout 600 stopwatch --marker "guest: user space" --label devpass -- $DEVPASS
    lab_rc "devpass (transparent huge pages, the default)" 0
    expect devpass launch.userspace
    dmamap thp
    # shellcheck disable=SC2086
    lab_run timeout 600 stopwatch --marker "guest: user space" --label devpass-4k -- \
      $DEVPASS --no-thp
    lab_rc "devpass, 4 KiB pages (--no-thp)" 0
    expect devpass-4k launch.userspace
    dmamap 4k
    # shellcheck disable=SC2086
    lab_run timeout 600 stopwatch --marker "guest: user space" --label qemu -- $QEMU
    lab_rc "QEMU (transparent huge pages, its default)" 0
    expect qemu launch.userspace
    # shellcheck disable=SC2086
    lab_run timeout 600 stopwatch --marker "guest: user space" --label devpass-hugepages -- \
      $DEVPASS --hugepages
    lab_rc "devpass, huge pages" 0
    expect devpass-hugepages launch.userspace
    dmamap 2m
    # shellcheck disable=SC2086
    lab_run timeout 600 stopwatch --marker "guest: user space" --label qemu-hugepages -- \
      $QEMU -mem-path /dev/hugepages
    lab_rc "QEMU, huge pages" 0
    expect qemu-hugepages launch.userspace
    r=$((r + 1))
  done
  lab_run devpass unhide "$EDU"
  ;;
*)
  lab_fail "unknown part $PART"
  ;;
esac
[ -n "${SERVER:-}" ] && kill "$SERVER" 2>/dev/null
lab_done
