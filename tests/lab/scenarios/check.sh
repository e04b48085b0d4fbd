#!/bin/sh
# devpass check on the lab: no FAIL with the IOMMU on (exit 0); booted with
# --no-iommu (intel_iommu=off: this kernel enables VT-d by default, so only
# leaving intel_iommu=on out changes nothing), exit 3 and the fix names
# intel_iommu=on.
. /lab/lib.sh

lab_step "devpass check (IOMMU on: $LAB_IOMMU)"
lab_run devpass check
if [ "$LAB_IOMMU" = 1 ]; then
  lab_rc "check exits 0 on a host with a working IOMMU" 0
  lab_eq "no FAIL line" "" "$(grep -w FAIL "$LAB_OUT")"
else
  lab_rc "check exits 3 with the IOMMU off" 3
  lab_out_has "the output names the fix: intel_iommu=on" 'intel_iommu=on'
fi
expected=$LAB_RC

lab_step "devpass check --json"
lab_run devpass check --json
lab_eq "same exit status with --json" "$expected" "$LAB_RC"
lab_check "prints valid JSON" jq -e . "$LAB_OUT"
lab_done
