#!/bin/sh
# ACPI in devpass's guests (src/vmm/acpi.h): a guest whose own script runs a
# plain `poweroff -f` (no write to devpass's port 0x501) powers off through
# ACPI S5 and devpass exits 0 saying so; the guest found the RSDP, has a
# DSDT, enumerated PCI through the \_SB.PCI0 root bridge and its _CRS
# windows, brought up 2 CPUs from the MADT, logged no ACPI error; `reboot -f`
# resets through the FADT's reset register (exit 3); and `acpi=off` still
# boots on the MP table alone (the 0x501 power-off).
. /lab/lib.sh

lab_vmm_prepare

# lab_out_lacks DESCRIPTION REGEX: the last command's output does not match.
lab_out_lacks() {
  if grep -qE -- "$2" "$LAB_OUT"; then
    lab_fail "$1" "output matches /$2/: $(grep -E -- "$2" "$LAB_OUT" | head -3)"
  else
    lab_pass "$1"
  fi
}

cat >/tmp/acpi.sh <<'G'
#!/bin/sh
echo "guest acpi tables: $(ls /sys/firmware/acpi/tables 2>/dev/null | tr '\n' ' ')"
[ -e /sys/firmware/acpi/tables/DSDT ] && echo "guest has /sys/firmware/acpi/tables/DSDT"
echo "guest pci: $(ls /sys/bus/pci/devices | tr '\n' ' ')"
echo "guest nproc: $(nproc)"
echo "guest online: $(cat /sys/devices/system/cpu/online)"
echo "guest rtc: $(ls /sys/class/rtc 2>/dev/null | tr '\n' ' ')"
echo "guest pm states: $(cat /sys/power/state 2>/dev/null)"
dmesg | grep -E "ACPI|PCI|pci_bus|pnp|ttyS0|rtc_cmos|IOAPIC|SMP|smpboot|clocksource" |
  sed 's/^/guest-dmesg: /' | head -80
dmesg | grep -iE "ACPI (BIOS )?Error|ACPI Warning|Firmware Bug|ACPI Exception" |
  sed 's/^/guest-acpi-problem: /'
echo "guest: powering off with a plain poweroff -f"
poweroff -f
sleep 60
echo "guest: still running after poweroff -f"
G
lab_step "build the guest initramfs (its script ends with poweroff -f)"
lab_run lab-guest-initrd /tmp/acpi.img /tmp/acpi.sh
lab_rc "lab-guest-initrd exits 0" 0

lab_step "boot it with devpass run --cpus 2"
t0=$(cut -d' ' -f1 /proc/uptime)
lab_run timeout 240 devpass run --kernel /lab/guest/vmlinuz --initrd /tmp/acpi.img \
  --mem 256M --cpus 2 --cmdline "quiet"
t1=$(cut -d' ' -f1 /proc/uptime)
echo "devpass run took $(awk "BEGIN{print $t1 - $t0}") s"
lab_rc "devpass run exits 0 (the guest powered off)" 0
lab_out_has "devpass says it was ACPI S5" "the guest powered off \\(ACPI S5\\)"
lab_out_lacks "the guest's init did not get to its own power-off" "@@GUEST-EXIT"
lab_out_lacks "poweroff -f did not return" "still running after poweroff"
lab_out_has "Linux found the RSDP at 0xE0000" "ACPI: RSDP 0x0+E0000"
lab_out_has "the guest has a DSDT" "guest has /sys/firmware/acpi/tables/DSDT"
lab_out_has "FACP, APIC and DSDT are listed" "guest acpi tables: .*APIC.*DSDT.*FACP"
lab_out_has "Linux took the root bridge from the DSDT" "ACPI: PCI Root Bridge \\[PCI0\\]"
lab_out_has "the 32-bit window from _CRS" "root bus resource \\[mem 0xc0000000-0xfebfffff window\\]"
lab_out_has "the 64-bit window from _CRS" "root bus resource \\[mem 0x100000000-0x10ffffffff window\\]"
lab_out_has "the I/O window above 0xCFF" "root bus resource \\[io +0x0d00-0xffff window\\]"
lab_out_has "the guest still enumerates the host bridge 00:00.0" "guest pci: 0000:00:00.0"
lab_out_has "Linux routes PCI interrupts with ACPI" "PCI: Using ACPI for IRQ routing"
lab_out_has "S5 is the sleep state on offer" "ACPI: PM: \\(supports S0 S5\\)"
lab_out_has "nproc is 2 (MADT)" "guest nproc: 2"
lab_out_has "CPUs 0-1 online" "guest online: 0-1"
lab_out_has "COM1 from the DSDT" "00:0[0-9]: ttyS0 at I/O 0x3f8 .*irq = 4"
lab_out_has "the RTC is there (rtc_cmos through PNP0B00)" "guest rtc: rtc0"
lab_out_lacks "no ACPI error, warning or firmware bug in the guest" "guest-acpi-problem"

cat >/tmp/reboot.sh <<'G'
#!/bin/sh
echo "guest: rebooting with reboot -f"
reboot -f
sleep 60
G
lab_step "a guest reboot under ACPI resets (FADT RESET_REG, then the i8042)"
lab_run lab-guest-initrd /tmp/reboot.img /tmp/reboot.sh
lab_rc "lab-guest-initrd exits 0" 0
lab_run timeout 240 devpass run --kernel /lab/guest/vmlinuz --initrd /tmp/reboot.img \
  --mem 256M --cmdline "quiet" --on-reboot exit
lab_rc "devpass run exits 3 (guest reset)" 3
lab_out_has "devpass says the guest rebooted" "guest kernel panicked or rebooted"

cat >/tmp/noacpi.sh <<'G'
#!/bin/sh
echo "guest cmdline: $(cat /proc/cmdline)"
echo "guest nproc: $(nproc)"
echo "guest pci: $(ls /sys/bus/pci/devices | tr '\n' ' ')"
[ -e /sys/firmware/acpi/tables/DSDT ] && echo "guest has a DSDT"
true
G
lab_step "acpi=off: the MP table alone, power-off through port 0x501"
lab_run lab-guest-initrd /tmp/noacpi.img /tmp/noacpi.sh
lab_rc "lab-guest-initrd exits 0" 0
lab_run timeout 240 devpass run --kernel /lab/guest/vmlinuz --initrd /tmp/noacpi.img \
  --mem 256M --cpus 2 --cmdline "quiet acpi=off"
lab_rc "devpass run exits 0" 0
lab_out_has "the init's 0x501 write powered it off" "the guest powered off \\(code 0\\)"
lab_out_has "nproc is 2 (MP table)" "guest nproc: 2"
lab_out_has "the host bridge by config mechanism #1" "guest pci: 0000:00:00.0"
lab_out_lacks "no ACPI tables in use" "guest has a DSDT"
lab_done
