#!/bin/sh
# Guest side of e1000e passthrough: the guest's own e1000e driver (loaded by
# the guest's init: lab-guest-initrd --modules e1000e) brings the passed NIC
# up, pings the lab host's other e1000e and moves bulk data both ways with
# busybox nc; checksums are printed for the lab side to compare.
# Runs the same way natively on the lab host (in a network namespace):
# scenarios/guest_native.sh.
#
# Environment (lab-guest-initrd --env NAME=VALUE), all optional:
#   NET_BDF        the NIC (default: the first 8086:10d3 the guest sees)
#   NET_ADDR       this side's address (default $LAB_NET_GUEST_ADDR/24)
#   NET_PEER       the lab host's address (default $LAB_NET_PEER_ADDR)
#   NET_TX_PORT    send NET_TX_MIB MiB of random data to NET_PEER:PORT (the
#                  lab runs lab_net_receive PORT OUT); default 5001, 0 = skip
#   NET_TX_MIB     default 64
#   NET_RX_PORT    fetch a file from NET_PEER:PORT (lab_net_serve PORT FILE);
#                  default 5002, 0 = skip
#   NET_RX_SHA256  its expected sha256 (lab_net_blob prints it); checked here
# Prints: "NET-TX sha256=S bytes=N seconds=T" and "NET-RX sha256=S bytes=N
# seconds=T"; exits 0 iff every check passed (lab_done).
. /lab/lib.sh
# Own output file and name: natively this runs inside a scenario's lab_run.
LAB_OUT=/tmp/guest-script-output LAB_SCENARIO=net_e1000e
now() { cut -d' ' -f1 /proc/uptime; }
BDF=${NET_BDF:-$(lab_find_dev $LAB_ID_E1000E 1)}
ADDR=${NET_ADDR:-$LAB_NET_GUEST_ADDR/24}
PEER=${NET_PEER:-$LAB_NET_PEER_ADDR}
TX_PORT=${NET_TX_PORT:-5001} TX_MIB=${NET_TX_MIB:-64} RX_PORT=${NET_RX_PORT:-5002}

lab_step "e1000e $BDF: driver, link, address"
lab_eq "$BDF is driven by e1000e" e1000e "$(lab_driver "$BDF")"
IF=$(lab_netifs "$BDF" | head -1)
lab_ne "$BDF has a network interface" "" "$IF"
[ -n "$IF" ] || lab_done
ip link set "$IF" up
ip addr add "$ADDR" dev "$IF"
lab_check "carrier on $IF" lab_wait 150 sh -c "[ \"\$(cat /sys/class/net/$IF/carrier)\" = 1 ]"
ip addr show dev "$IF" | sed 's/^/  | /'

lab_step "ping $PEER"
lab_run ping -c 3 -w 20 "$PEER"
lab_rc "ping $PEER answers" 0

if [ "$TX_PORT" != 0 ]; then
  lab_step "send $TX_MIB MiB to $PEER:$TX_PORT"
  sha=$(lab_net_blob /tmp/tx.bin "$TX_MIB")
  bytes=$(wc -c </tmp/tx.bin | tr -d ' ')
  t0=$(now)
  nc "$PEER" "$TX_PORT" </tmp/tx.bin
  rc=$?
  t1=$(now)
  lab_eq "nc to $PEER:$TX_PORT exits 0" 0 "$rc"
  echo "NET-TX sha256=$sha bytes=$bytes seconds=$(awk "BEGIN{printf \"%.2f\", $t1 - $t0}")"
  rm -f /tmp/tx.bin
fi

if [ "$RX_PORT" != 0 ]; then
  lab_step "fetch from $PEER:$RX_PORT"
  lab_net_hold
  t0=$(now)
  nc "$PEER" "$RX_PORT" <>/tmp/lab-net-hold >/tmp/rx.bin
  rc=$?
  t1=$(now)
  sha=$(sha256sum /tmp/rx.bin | cut -d' ' -f1)
  bytes=$(wc -c </tmp/rx.bin | tr -d ' ')
  lab_eq "nc from $PEER:$RX_PORT exits 0" 0 "$rc"
  echo "NET-RX sha256=$sha bytes=$bytes seconds=$(awk "BEGIN{printf \"%.2f\", $t1 - $t0}")"
  [ -z "${NET_RX_SHA256:-}" ] || lab_eq "received data has the expected sha256" "$NET_RX_SHA256" "$sha"
  rm -f /tmp/rx.bin
fi
lab_done
