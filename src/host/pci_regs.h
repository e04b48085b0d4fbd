#pragma once

// Offsets in the predefined header of PCI configuration space (PCI Local Bus
// 3.0 §6.1, include/uapi/linux/pci_regs.h), shared by the sysfs scanner and
// the capability parser.

#include <cstddef>

namespace devpass::host::pci_regs {

inline constexpr size_t kVendorId = 0x00;           // PCI_VENDOR_ID
inline constexpr size_t kDeviceId = 0x02;           // PCI_DEVICE_ID
inline constexpr size_t kStatus = 0x06;             // PCI_STATUS
inline constexpr size_t kRevision = 0x08;           // PCI_REVISION_ID
inline constexpr size_t kClassProgIf = 0x09;        // PCI_CLASS_PROG (3 bytes)
inline constexpr size_t kHeaderType = 0x0e;         // PCI_HEADER_TYPE
inline constexpr size_t kCardBusCapList = 0x14;     // PCI_CB_CAPABILITY_LIST
inline constexpr size_t kSubsystemVendorId = 0x2c;  // PCI_SUBSYSTEM_VENDOR_ID
inline constexpr size_t kSubsystemId = 0x2e;        // PCI_SUBSYSTEM_ID
inline constexpr size_t kCapList = 0x34;            // PCI_CAPABILITY_LIST

}  // namespace devpass::host::pci_regs
