#!/bin/sh
# One part of the passthrough benchmark, run inside the lab by bench/lab/run:
#   in-lab.sh PART RUNS NET_MIB RR EDU_N RAND_OPS MEM [WAYS [GPARTS [GRUNS]]]
#   (GPARTS: what the io ways measure, default "edu net nvme", and
#   net-nothp to measure the network in the *-nothp ways too (it fails in
#   the lab: see below); GRUNS: runs of each measurement per way and round,
#   default 1. For investigations, e.g. many network samples in few boots:
#   GPARTS "net net-nothp", GRUNS 3.)
# Every measurement is printed once, as "BENCH <metric> <way>@<round> <value>"
# (by guest_edu --label, netperf, blkperf, stopwatch, or here), for
# bench_report, which takes each ratio within a round.
#
# PART (one lab boot each):
#   io        RUNS rounds; each round runs every way of WAYS once, in turn, in
#             an order rotated by one per round (the lab's speed drifts over
#             minutes: within a round every way meets the same drift, and no
#             way always goes first). WAYS (default all):
#               native         the lab's e1000e 00:03.0 (moved to a network
#                              namespace so its traffic crosses the wire)
#                              against its twin 00:04.0, and the lab's NVMe,
#                              through the lab's own drivers
#               devpass        one devpass guest owning the edu, the e1000e
#                              and the NVMe (devpass run --device x3)
#               devpass-nothp  the same with --no-thp: guest RAM in 4 KiB
#                              pages only (devpass, like QEMU, madvises guest
#                              RAM for transparent huge pages by default);
#                              edu and NVMe only (see GPARTS)
#               qemu-vfio      the same guest under QEMU -accel kvm,
#                              -device vfio-pci x3
#               qemu-vfio-nothp  the same with the lab's THP off (not in
#                              the default ways; QEMU's counterpart of
#                              devpass-nothp)
#               qemu-emulated  QEMU's e1000e and nvme models: the NIC on a tap
#                              bridged to the lab's 00:03.0, the drive backed
#                              by the lab's NVMe (cache=none)
#               virtio         virtio-net (vhost-net) and virtio-blk on the
#                              same tap bridge and drive
#   edu-native guest_edu on the lab's own kernel (needs the lab booted
#             --no-iommu: vfio no-IOMMU mode, the same program the guests run)
#   launch    launch to guest user space with the edu passed through, devpass
#             vs QEMU, 4 KiB pages and huge pages, RUNS rounds (rotated like
#             io); devpass's own DMA-map time of guest RAM per GiB
# The guests run the same script (written below) with the same kernel; the
# native way runs it on the lab host.
. /lab/lib.sh
PART=${1:?part} RUNS=${2:-3} NET_MIB=${3:-4} RR=${4:-200} EDU_N=${5:-50} RAND_OPS=${6:-2000}
MEM=${7:-256} WAYS=${8:-native devpass devpass-nothp qemu-vfio qemu-emulated virtio}
GPARTS=${9:-edu net nvme} GRUNS=${10:-1}
# only GPART...: those of the words GPART... that GPARTS names.
only() {
  local p
  for p in "$@"; do case " $GPARTS " in *" $p "*) printf '%s ' "$p" ;; esac; done
}
TIMEOUT=1500

cat >/tmp/bench-guest.sh <<'G'
#!/bin/sh
# The measuring side, in a guest or natively. Environment: BENCH_WAY,
# BENCH_PARTS (edu net nvme), BENCH_RUNS, BENCH_NET_MIB, BENCH_RR,
# BENCH_EDU_N, BENCH_RAND_OPS, BENCH_PEER, BENCH_ADDR, BENCH_DISK (optional),
# BENCH_ROUND (or bench.round=N on the guest's kernel command line).
rc=0
ROUND=${BENCH_ROUND:-$(sed -n 's/.*bench\.round=\([0-9]*\).*/\1/p' /proc/cmdline)}
LABEL=$BENCH_WAY${ROUND:+@$ROUND}
for part in $BENCH_PARTS; do
  case $part in
  edu)
    guest_edu --bench "$BENCH_EDU_N" --label "$LABEL" || rc=1 ;;
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
    if ! netperf client "$BENCH_PEER" --label "$LABEL" --runs "$BENCH_RUNS" \
      --mib "$BENCH_NET_MIB" --rr "$BENCH_RR"; then
      rc=1
      # Why: the interface's counters, TCP's retransmissions, the NIC's
      # interrupt counts and the kernel's last words.
      for c in rx_packets tx_packets rx_errors tx_errors rx_dropped tx_dropped; do
        printf 'bench: %s %s %s\n' "$IF" "$c" "$(cat "/sys/class/net/$IF/statistics/$c")"
      done
      grep '^Tcp:' /proc/net/snmp | sed 's/^/bench: /'
      grep -E "$IF|CPU" /proc/interrupts | sed 's/^/bench: /'
      dmesg | tail -15 | sed 's/^/bench: dmesg: /'
    fi ;;
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
    blkperf "$DISK" --label "$LABEL" --runs "$BENCH_RUNS" --rand-ops "$BENCH_RAND_OPS" || rc=1 ;;
  esac
done
echo "bench: measuring side done, status $rc"
exit $rc
G

EDU=$(lab_find_dev $LAB_ID_EDU 1)
NIC=$(lab_find_dev $LAB_ID_E1000E 1)
PEER=$(lab_find_dev $LAB_ID_E1000E 2)
NVME=$(lab_find_dev $LAB_ID_NVME 1)
# One run per guest: the guests measure one sample set per round.
ENVS="--env BENCH_RUNS=$GRUNS --env BENCH_NET_MIB=$NET_MIB --env BENCH_RR=$RR \
--env BENCH_EDU_N=$EDU_N --env BENCH_RAND_OPS=$RAND_OPS \
--env BENCH_PEER=$LAB_NET_PEER_ADDR --env BENCH_ADDR=$LAB_NET_GUEST_ADDR/24"
BINS="--bin /usr/bin/guest_edu --bin /usr/bin/netperf --bin /usr/bin/blkperf"
TIMEOUT=1500
M_NET= M_NVME= M_EDU=
[ -z "$(only net)" ] || M_NET="net.tx net.rx net.rtt"
[ -z "$(only nvme)" ] || M_NVME="nvme.seq_read nvme.rand_read"
[ -z "$(only edu)" ] || M_EDU="edu.msi_rtt edu.dma"

# The lab's end of the network: 00:04.0 on e1000e with the peer address,
# and netperf's server (a thread per connection).
peer_up() {
  lab_run lab_net_peer_up "$PEER"
  lab_rc "the peer NIC $PEER is up" 0
  netperf serve >/tmp/netperf-serve.log 2>&1 &
  SERVER=$!
}
# After a failed measurement: the peer's side of it.
peer_diag() {
  local ifc c
  ifc=$(lab_netifs "$PEER" | head -1)
  for c in rx_packets tx_packets rx_errors rx_dropped rx_missed_errors; do
    echo "peer: $ifc $c $(cat "/sys/class/net/$ifc/statistics/$c" 2>/dev/null)"
  done
  ip neigh show dev "$ifc" | sed 's/^/peer: neigh /'
  grep '^Tcp:' /proc/net/snmp | sed 's/^/peer: /'
  tail -5 /tmp/netperf-serve.log | sed 's/^/peer: serve: /'
}
# A tap on a bridge with the lab's 00:03.0: an emulated NIC's frames leave
# through the same e1000e the other ways use. Made for each run and taken
# down after it: the passthrough ways take 00:03.0 away from e1000e, and its
# interface comes back with a new name.
tap_bridge() {
  local ifc
  ifc=$(lab_netifs "$NIC" | head -1)
  # busybox: brctl and tunctl (its ip has no "link add" or "tuntap"; its
  # brctl no "stp" or "setfd": sysfs instead). STP is off by default, but a
  # port still waits forward_delay (15 s) before it forwards.
  brctl addbr br0 && echo 0 >/sys/class/net/br0/bridge/forward_delay &&
    brctl addif br0 "$ifc" && tunctl -t tap0 >/dev/null && brctl addif br0 tap0 &&
    ip link set "$ifc" up && ip link set tap0 up && ip link set br0 up
  lab_eq "tap0 and $ifc ($NIC) bridged" 0 $?
}
tap_unbridge() {
  ip link set br0 down 2>/dev/null
  brctl delbr br0 2>/dev/null
  tunctl -d tap0 >/dev/null 2>&1
  ip link set "$(lab_netifs "$NIC" | head -1)" down 2>/dev/null
  return 0
}
guest_img() {  # guest_img OUT WAY PARTS MODULES
  # shellcheck disable=SC2086
  lab_run lab-guest-initrd --modules "$4" $BINS $ENVS --env BENCH_WAY="$2" \
    --env BENCH_PARTS="$3" "$1" /tmp/bench-guest.sh
  lab_rc "guest initramfs for $2" 0
}
# expect LABEL METRIC...: each metric has a sample labelled LABEL (way@round)
# in LAB_OUT.
expect() {
  local label=$1 m
  shift
  for m in "$@"; do
    lab_out_has "$label: $m measured" "BENCH $m $label [0-9]"
  done
}
guest_done() {  # guest_done LABEL METRIC...
  lab_rc "$1: the guest ran and powered off" 0
  local st
  st=$(lab_guest_status)
  lab_eq "$1: every measurement in the guest succeeded" 0 "$st"
  [ "$st" = 0 ] || peer_diag
  echo "$1: guest ran ${LAB_GUEST_SECONDS}s"
  expect "$@"
}
qemu_disk() { echo "/dev/$(lab_nvme_disk "$NVME")"; }
hide_all() { for d in $EDU $NIC $NVME; do lab_run devpass hide "$d"; lab_rc "hide $d" 0; done; }
unhide_all() { for d in $EDU $NIC $NVME; do lab_run devpass unhide "$d"; lab_rc "unhide $d" 0; done; }
# rotate N WORD...: the words from the Nth on, then the first N (N from 0).
rotate() {
  local n=$1 i=0 head= w
  shift
  for w in "$@"; do
    if [ $i -lt "$n" ]; then head="$head $w"; else printf '%s ' "$w"; fi
    i=$((i + 1))
  done
  echo "$head"
}

# ---- one run of each io way in round $1
way_native() {
  local ifc
  if [ -n "$M_NET" ]; then
    ifc=$(lab_netifs "$NIC" | head -1)
    lab_netns_move "$ifc" bench
    lab_run lab_netns_exec bench env BENCH_WAY=native BENCH_ROUND="$1" BENCH_PARTS=net \
      BENCH_RUNS=$GRUNS BENCH_NET_MIB="$NET_MIB" BENCH_RR="$RR" BENCH_PEER=$LAB_NET_PEER_ADDR \
      BENCH_ADDR=$LAB_NET_GUEST_ADDR/24 sh /tmp/bench-guest.sh
    lab_rc "native@$1: network ($NIC in a namespace)" 0
    expect "native@$1" $M_NET
    lab_netns_del bench
  fi
  [ -n "$M_NVME" ] || return 0
  lab_run env BENCH_WAY=native BENCH_ROUND="$1" BENCH_PARTS=nvme BENCH_RUNS=$GRUNS \
    BENCH_RAND_OPS="$RAND_OPS" BENCH_DISK="$(qemu_disk)" sh /tmp/bench-guest.sh
  lab_rc "native@$1: NVMe" 0
  expect "native@$1" $M_NVME
}
way_devpass() {  # way_devpass ROUND WAY [DEVPASS-RUN-OPTIONS]
  local r=$1 w=$2
  shift 2
  LAB_GUEST_CMDLINE="bench.round=$r" lab_devpass_guest "/tmp/$w.img" --mem "${MEM}M" \
    --device "$EDU" --device "$NIC" --device "$NVME" --name bench "$@"
  guest_done "$w@$r" $M_EDU $(net_metrics "$w") $M_NVME
}
# net_metrics WAY: the network metrics WAY measures: GPARTS's, except that a
# *-nothp way measures the network only if GPARTS says net-nothp (with guest
# RAM in 4 KiB pages, QEMU's e1000e model, the lab's NIC, drops every packet
# whose buffer crosses a page the lab's IOMMU maps non-contiguously, and TCP
# stalls: docs/performance.md, "4 KiB guest RAM and the lab's e1000e").
net_metrics() {
  case $1 in
    *-nothp) [ -z "$(only net-nothp)" ] || echo "net.tx net.rx net.rtt" ;;
    *) echo "$M_NET" ;;
  esac
}
way_qemu_vfio() {  # way_qemu_vfio ROUND WAY
  local thp=/sys/kernel/mm/transparent_hugepage/enabled was
  # QEMU has no option for 4 KiB guest RAM: qemu-vfio-nothp turns THP off
  # in the lab for its run (QEMU's MADV_HUGEPAGE then has no effect).
  was=$(sed 's/.*\[\(.*\)\].*/\1/' $thp)
  [ "$2" = qemu-vfio ] || echo never >$thp
  hide_all
  lab_qemu_guest --mem "$MEM" --timeout $TIMEOUT --cmdline "bench.round=$1" \
    --device "$EDU" --device "$NIC" --device "$NVME" "/tmp/$2.img"
  guest_done "$2@$1" $M_EDU $(net_metrics "$2") $M_NVME
  unhide_all
  echo "$was" >$thp
}
way_qemu_emulated() {
  tap_bridge
  # shellcheck disable=SC2086
  lab_qemu_guest --mem "$MEM" --timeout $TIMEOUT --cmdline "bench.round=$1" \
    /tmp/qemu-emulated.img -netdev tap,id=n0,ifname=tap0,script=no,downscript=no \
    -device e1000e,netdev=n0,romfile= $(drive) -device nvme,drive=d0,serial=bench
  guest_done "qemu-emulated@$1" $M_NET $M_NVME
  tap_unbridge
}
way_virtio() {
  local vhost=off
  [ -c /dev/vhost-net ] && vhost=on
  tap_bridge
  # shellcheck disable=SC2086
  lab_qemu_guest --mem "$MEM" --timeout $TIMEOUT --cmdline "bench.round=$1" \
    /tmp/virtio.img -netdev tap,id=n0,ifname=tap0,script=no,downscript=no,vhost=$vhost \
    -device virtio-net-pci,netdev=n0,romfile= $(drive) -device virtio-blk-pci,drive=d0
  guest_done "virtio@$1" $M_NET $M_NVME
  tap_unbridge
}
drive() { echo "-drive file=$(qemu_disk),if=none,id=d0,format=raw,cache=none"; }

case $PART in
io)
  case " $WAYS " in
    *" qemu-"* | *" virtio "*) lab_qemu_prepare ;;
    *) lab_vmm_prepare ;;
  esac
  peer_up
  lab_run modprobe -a tun bridge vhost_net
  for w in $WAYS; do
    case $w in
      native) ;;
      devpass | devpass-nothp | qemu-vfio | qemu-vfio-nothp)
        guest_img "/tmp/$w.img" "$w" "$(only edu nvme) $([ -z "$(net_metrics "$w")" ] || echo net)" \
          "vfio-pci e1000e nvme" ;;
      qemu-emulated) guest_img /tmp/$w.img $w "$(only net nvme)" "e1000e nvme" ;;
      virtio) guest_img /tmp/$w.img $w "$(only net nvme)" "virtio_pci virtio_net virtio_blk" ;;
      *) lab_fail "unknown way $w" ;;
    esac
  done
  echo "virtio-net with vhost=$([ -c /dev/vhost-net ] && echo on || echo off)"
  n=$(echo $WAYS | wc -w)
  r=1
  while [ $r -le "$RUNS" ]; do
    # shellcheck disable=SC2046
    order=$(rotate $(((r - 1) % n)) $WAYS)
    lab_step "io round $r of $RUNS: $order"
    for w in $order; do
      case $w in
        native) way_native $r ;;
        devpass) way_devpass $r devpass ;;
        devpass-nothp) way_devpass $r devpass-nothp --no-thp ;;
        qemu-vfio | qemu-vfio-nothp) way_qemu_vfio $r $w ;;
        qemu-emulated) way_qemu_emulated $r ;;
        virtio) way_virtio $r ;;
      esac
    done
    r=$((r + 1))
  done
  ;;
edu-native)
  lab_eq "the lab runs without an IOMMU (--no-iommu)" 0 "$LAB_IOMMU"
  lab_run insmod /lab/noiommu/vfio.ko enable_unsafe_noiommu_mode=1
  lab_run modprobe vfio-pci
  lab_rc "vfio-pci in no-IOMMU mode" 0
  lab_run guest_edu "$EDU" --bench "$EDU_N" --label native
  lab_rc "guest_edu natively" 0
  expect native $M_EDU
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
  DEVPASS="devpass run --kernel /lab/guest/vmlinuz --initrd /tmp/launch.img --cmdline quiet \
--mem ${MEM}M --device $EDU --name launch"
  # dmamap LABEL: devpass's "guest RAM (N MiB) mapped for DMA in the IOMMU in T ms", per GiB.
  dmamap() {
    local line
    line=$(sed -n 's/.*guest RAM (\([0-9]*\) MiB) mapped for DMA in the IOMMU in \([0-9]*\) ms.*/\1 \2/p' \
      "$LAB_OUT" | awk -v w="$1" '{printf "BENCH dmamap.per_gib %s %.3f\n", w, $2 / 1000 / ($1 / 1024)}')
    lab_ne "devpass reported its DMA-map time ($1)" "" "$line"
    [ -z "$line" ] || echo "$line"
  }
  # launch_way ROUND WAY: one launch, timed by stopwatch.
  launch_way() {
    local r=$1 w=$2
    case $w in
      devpass) set -- $DEVPASS ;;
      devpass-4k) set -- $DEVPASS --no-thp ;;
      devpass-hugepages) set -- $DEVPASS --hugepages ;;
      qemu) set -- $QEMU ;;
      qemu-hugepages) set -- $QEMU -mem-path /dev/hugepages ;;
    esac
    # shellcheck disable=SC2086
    lab_run timeout 600 stopwatch --marker "guest: user space" --label "$w@$r" -- "$@"
    lab_rc "$w@$r launched and exited" 0
    expect "$w@$r" launch.userspace
    case $w in
      devpass) dmamap "thp@$r" ;;
      devpass-4k) dmamap "4k@$r" ;;
      devpass-hugepages) dmamap "2m@$r" ;;
    esac
  }
  QEMU=/tmp/qemu-launch
  LWAYS="devpass devpass-4k qemu devpass-hugepages qemu-hugepages"
  r=1
  while [ $r -le "$RUNS" ]; do
    # shellcheck disable=SC2046
    order=$(rotate $(((r - 1) % 5)) $LWAYS)
    lab_step "launch round $r of $RUNS: $order"
    for w in $order; do launch_way $r $w; done
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
