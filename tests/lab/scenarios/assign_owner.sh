#!/bin/sh
# Exclusive ownership of assigned devices (issue 6, item 2), with real
# guests: while guest 'first' owns the e1000e, `devpass status` shows the
# assignment, a second `devpass run` naming the NIC is refused with the
# owner's name and pid, and `devpass unhide` is refused. Then 'first' is
# killed with SIGKILL (no chance to clean up): the next devpass command sees
# a dead owner and gives the NIC back to e1000e. --no-manage refuses a
# device that is not hidden.
. /lab/lib.sh
lab_vmm_prepare
NIC=$(lab_find_dev $LAB_ID_E1000E 1)
EDU=$(lab_find_dev $LAB_ID_EDU 1)

cat >/tmp/wait.sh <<'G'
#!/bin/sh
echo "GUEST-UP"
sleep 600
G
lab_run lab-guest-initrd /tmp/wait.img /tmp/wait.sh
lab_rc "lab-guest-initrd exits 0" 0

lab_step "guest 'first' owns $NIC (hidden for the run)"
devpass run --kernel /lab/guest/vmlinuz --initrd /tmp/wait.img --mem 128M --cmdline quiet \
  --device "$NIC" --name first >/tmp/first.out 2>&1 </dev/null &
FIRST=$!
lab_check "the guest is up" lab_wait 1200 grep -q GUEST-UP /tmp/first.out
sed 's/^/  | /' /tmp/first.out | grep devpass
lab_eq "$NIC is on vfio-pci" vfio-pci "$(lab_driver "$NIC")"

lab_run devpass status
lab_out_has "status names the guest and its pid" "assigned: guest 'first' \\(pid $FIRST, since"
lab_run devpass status --json
lab_out_has "status --json: guest" '"guest": "first"'
lab_out_has "status --json: pid" "\"pid\": $FIRST"
lab_out_has "status --json: managed" '"managed": true'
lab_out_has "status --json: alive" '"alive": true'

lab_step "a second guest naming $NIC is refused"
lab_run devpass run --kernel /lab/guest/vmlinuz --initrd /tmp/wait.img --mem 128M \
  --device "$NIC" --name second
lab_rc "devpass run exits 1" 1
lab_out_has "the refusal names the owner" "assigned to guest 'first' \\(pid $FIRST"
lab_check "guest 'first' still runs" kill -0 "$FIRST"
lab_run devpass unhide "$NIC"
lab_ne "unhide of an assigned device is refused" 0 "$LAB_RC"
lab_out_has "unhide names the owner" "guest 'first'"
lab_eq "$NIC is still on vfio-pci" vfio-pci "$(lab_driver "$NIC")"

lab_step "SIGKILL the owner: the next devpass command recovers the NIC"
kill -KILL "$FIRST"
wait "$FIRST" 2>/dev/null
lab_eq "$NIC is still on vfio-pci right after the kill" vfio-pci "$(lab_driver "$NIC")"
lab_run devpass status
lab_out_has "status reports the recovery" "$NIC was assigned to guest 'first' \\(pid $FIRST.*given back to e1000e"
lab_eq "$NIC is back on e1000e" e1000e "$(lab_driver "$NIC")"
lab_run devpass status --json
lab_out_has "nothing hidden any more" '"hidden": \[\]'

lab_step "--no-manage refuses a device that is not hidden"
lab_run devpass run --kernel /lab/guest/vmlinuz --initrd /tmp/wait.img --mem 128M \
  --device "$EDU" --no-manage --name strict
lab_rc "devpass run --no-manage exits 1" 1
lab_out_has "it says how to hide it" "devpass hide $EDU"
lab_eq "$EDU was not touched" "" "$(lab_driver "$EDU")"
lab_done
