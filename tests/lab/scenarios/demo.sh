#!/bin/sh
# The demo: the passthrough flow on the lab, step by step. Each step is a
# function named in DEMO_STEPS: check, list, hide, status, show, then a
# guest that owns the edu and a NIC (its own drivers use them), unhide.
# Exits non-zero if a step's command fails, so the demo doubles as a test.
. /lab/lib.sh
EDU=$(lab_find_dev $LAB_ID_EDU 1)
G=$(lab_group $EDU)

say() { echo "   $*"; }
drv() { d=$(lab_driver $1); echo "${d:-(none)}"; }
vfio() { ls /dev/vfio 2>/dev/null | tr '\n' ' '; }

step_check() {
  lab_step "1. Is this host ready for passthrough?"
  lab_run devpass check
  lab_rc "devpass check: no FAIL" 0
}
step_list() {
  lab_step "2. The PCI devices, their IOMMU groups and drivers"
  lab_run devpass list
  lab_rc "devpass list" 0
}
step_hide() {
  lab_step "3. Hide the edu device $EDU from the host"
  say "before: driver=$(drv $EDU)  /dev/vfio: $(vfio)"
  lab_run devpass hide $EDU
  lab_rc "devpass hide" 0
  say "after:  driver=$(drv $EDU)  /dev/vfio: $(vfio)"
  lab_eq "$EDU is on vfio-pci" vfio-pci "$(lab_driver $EDU)"
  lab_exists "/dev/vfio/$G is there for a guest" /dev/vfio/$G
}
step_status() {
  lab_step "4. What devpass has hidden"
  lab_run devpass status
  lab_rc "devpass status" 0
}
step_show() {
  lab_step "5. The hidden device in detail"
  lab_run devpass show $EDU
  lab_rc "devpass show" 0
}
step_guest() {
  NIC=$(lab_find_dev $LAB_ID_E1000E 1)
  lab_step "6. Boot a guest that owns the edu and the e1000e NIC $NIC"
  say "The guest is the lab's own kernel, booted by devpass's KVM VMM. The NIC"
  say "is still the host's (driver $(drv $NIC)): devpass hides it for this run"
  say "and gives it back afterwards. In the guest, its own drivers use the"
  say "devices: vfio-pci (no-IOMMU mode) for the edu, e1000e for the NIC."
  lab_net_peer_up >/dev/null
  cat >/tmp/demo-guest.sh <<'G'
#!/bin/sh
guest_edu || exit 1
NET_TX_PORT=0 NET_RX_PORT=0 sh /files/net_e1000e.sh
G
  lab-guest-initrd --modules "vfio-pci e1000e" --bin /usr/bin/guest_edu \
    /tmp/demo-guest.img /tmp/demo-guest.sh /lab/guest-scripts/net_e1000e.sh
  lab_run devpass run --kernel /lab/guest/vmlinuz --initrd /tmp/demo-guest.img \
    --mem 256M --cmdline quiet --device $EDU --device $NIC --name demo
  lab_rc "devpass run: the guest powered off (exit 0)" 0
  lab_eq "the guest's checks passed" 0 "$(lab_guest_status)"
  lab_out_has "guest: factorial finished with an MSI" "^ok factorial with MSI:"
  lab_out_has "guest: DMA through the IOMMU" "^ok DMA round trip:"
  lab_out_has "guest: ping over the passed-through NIC" "ok   - ping $LAB_NET_PEER_ADDR answers"
  say "after:  $NIC driver=$(drv $NIC) (given back), $EDU driver=$(drv $EDU) (still hidden)"
  lab_eq "$NIC is back on e1000e" e1000e "$(lab_driver $NIC)"
  lab_eq "$EDU stays hidden (it was hidden before the run)" vfio-pci "$(lab_driver $EDU)"
}
step_unhide() {
  lab_step "7. Give the edu back to the host"
  lab_run devpass unhide $EDU
  lab_rc "devpass unhide" 0
  say "after:  driver=$(drv $EDU)  driver_override=$(lab_override $EDU)  /dev/vfio: $(vfio)"
  lab_absent "/dev/vfio/$G is gone" /dev/vfio/$G
}

DEMO_STEPS=${DEMO_STEPS:-"check list hide status show guest unhide"}
for s in $DEMO_STEPS; do "step_$s"; done
lab_done
