#!/bin/sh
# Host-critical devices are refused unless --force: the state disk (mounted
# on /state), the NVMe whose namespace is swap (through the kernel's NVMe
# multipath head: QEMU 10's nvme reports multi-controller capability) and
# the NIC that carries the default route. Nothing changes.
. /lab/lib.sh
DISK=$(lab_block_bdf vda)
NIC=$(lab_find_dev $LAB_ID_E1000E 1)

lab_step "the state disk vda is $DISK, mounted: $(grep '^/dev/vda ' /proc/mounts | cut -d' ' -f2 | tr '\n' ' ')"
lab_ne "the state disk's PCI device is found" "" "$DISK"
before=$(lab_snapshot)
lab_run devpass hide $DISK
lab_ne "hide of the mounted disk exits non-zero" 0 "$LAB_RC"
lab_out_has "the refusal names the mount" '/state|/etc/devpass|/var/lib/devpass|/etc/udev|/etc/systemd|/etc/modprobe.d'
lab_eq "nothing changed in sysfs" "$before" "$(lab_snapshot)"
lab_eq "the disk is still on virtio-pci" virtio-pci "$(lab_driver $DISK)"
lab_check "/state is still writable" touch /state/hostcrit-was-here

NVME=$(lab_find_dev $LAB_ID_NVME 1)
NS=$(lab_nvme_disk "$NVME")
lab_step "the NVMe $NVME's namespace $NS ($(readlink -f /sys/block/$NS)) as swap"
lab_run sh -c "mkswap /dev/$NS && swapon /dev/$NS"
lab_rc "swap on $NS" 0
before=$(lab_snapshot)
lab_run devpass hide $NVME
lab_ne "hide of the NVMe exits non-zero" 0 "$LAB_RC"
lab_out_has "the refusal names the swap" "swap.*$NS|$NS.*swap"
lab_eq "nothing changed in sysfs" "$before" "$(lab_snapshot)"
lab_eq "the NVMe is still on nvme" nvme "$(lab_driver $NVME)"
swapoff "/dev/$NS"

IF=$(lab_netifs $NIC)
lab_step "the default route goes through $IF ($NIC)"
ip link set "$IF" up
ip addr add 192.0.2.10/24 dev "$IF"
ip route add default via 192.0.2.1 dev "$IF"
ip route
before=$(lab_snapshot)
lab_run devpass hide $NIC
lab_ne "hide of the default-route NIC exits non-zero" 0 "$LAB_RC"
lab_out_has "the refusal names the interface or the route" "$IF|default|route"
lab_eq "nothing changed in sysfs" "$before" "$(lab_snapshot)"

lab_step "--force hides it anyway"
lab_run devpass hide --force $NIC
lab_rc "hide --force exits 0" 0
lab_eq "driver is vfio-pci" vfio-pci "$(lab_driver $NIC)"
lab_run devpass unhide $NIC
lab_rc "unhide exits 0" 0
lab_eq "driver is e1000e again" e1000e "$(lab_driver $NIC)"
lab_done
