// Ready-made FakeDeviceSpecs modelled on what vfio-pci reports for QEMU's
// devices in the lab (tests/lab): edu, and an NVMe-like MSI-X device.

#include <linux/pci_regs.h>
#include <linux/vfio.h>

#include <cstring>

#include "base/pci_address.h"
#include "vfio/fake_vfio_api.h"

namespace devpass::vfio {
namespace {

void Put16(std::vector<uint8_t>& c, size_t off, uint16_t v) {
  c[off] = v & 0xff;
  c[off + 1] = v >> 8;
}

void Put32(std::vector<uint8_t>& c, size_t off, uint32_t v) {
  Put16(c, off, v & 0xffff);
  Put16(c, off + 2, v >> 16);
}

FakeRegion Region(uint64_t size, uint32_t flags) {
  FakeRegion r;
  r.info.size = size;
  r.info.flags = flags;
  return r;
}

constexpr uint32_t kRw =
    VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;

std::vector<uint8_t> Header(size_t size, uint16_t vendor, uint16_t device,
                            uint32_t class_code, uint8_t cap_ptr, uint8_t pin) {
  std::vector<uint8_t> c(size, 0);
  Put16(c, PCI_VENDOR_ID, vendor);
  Put16(c, PCI_DEVICE_ID, device);
  Put32(c, PCI_CLASS_REVISION, class_code << 8 | 0x10);
  if (cap_ptr) {
    Put16(c, PCI_STATUS, PCI_STATUS_CAP_LIST);
    c[PCI_CAPABILITY_LIST] = cap_ptr;
  }
  c[PCI_INTERRUPT_PIN] = pin;
  return c;
}

HotResetDevice HotResetEntry(const std::string& bdf) {
  HotResetDevice d;
  if (auto a = PciAddress::Parse(bdf)) {
    d.segment = static_cast<uint16_t>(a->domain());
    d.bus = a->bus();
    d.devfn = static_cast<uint8_t>(a->device() << 3 | a->function());
  }
  return d;
}

}  // namespace

FakeDeviceSpec FakeEduDevice(const std::string& name) {
  FakeDeviceSpec spec;
  spec.name = name;
  spec.flags = VFIO_DEVICE_FLAGS_PCI;  // no VFIO_DEVICE_FLAGS_RESET: edu has no
                                       // reset method
  spec.reset_errno = EINVAL;
  for (uint32_t i = 0; i < VFIO_PCI_NUM_REGIONS; ++i)
    spec.regions.push_back(Region(0, 0));
  spec.regions[VFIO_PCI_BAR0_REGION_INDEX] =
      Region(1 << 20, kRw | VFIO_REGION_INFO_FLAG_MMAP);
  auto config = Header(256, 0x1234, 0x11e8, 0x00ff00, 0x40, 1);
  config[0x40] = PCI_CAP_ID_MSI;  // MSI: 64-bit, 1 vector, no per-vector mask
  config[0x41] = 0;
  Put16(config, 0x42, PCI_MSI_FLAGS_64BIT);
  spec.regions[VFIO_PCI_CONFIG_REGION_INDEX] = Region(256, kRw);
  spec.regions[VFIO_PCI_CONFIG_REGION_INDEX].data = config;
  auto& bar0 = spec.regions[VFIO_PCI_BAR0_REGION_INDEX].data;
  bar0.assign(1 << 20, 0);
  Put32(bar0, 0x00, 0x010000ed);  // ident register
  spec.irqs = {
      {0,
       VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE |
           VFIO_IRQ_INFO_AUTOMASKED,
       1},
      {1, VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE, 1},
      {2, VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE, 0},
      {3, 0, 0},
      {4, VFIO_IRQ_INFO_EVENTFD, 1},
  };
  return spec;
}

FakeDeviceSpec FakeMsixDevice(const std::string& name, uint32_t vectors,
                              bool msix_noresize,
                              const std::string& hot_reset_peer) {
  FakeDeviceSpec spec;
  spec.name = name;
  spec.flags = VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET;
  for (uint32_t i = 0; i < VFIO_PCI_NUM_REGIONS; ++i)
    spec.regions.push_back(Region(0, 0));

  // BAR0: registers, MSI-X table page left out of the mmappable areas.
  auto& bar0 = spec.regions[VFIO_PCI_BAR0_REGION_INDEX];
  bar0 = Region(0x4000, kRw | VFIO_REGION_INFO_FLAG_MMAP);
  bar0.info.sparse_areas =
      std::vector<SparseMmapArea>{{0x0, 0x2000}, {0x3000, 0x1000}};
  auto& bar2 = spec.regions[VFIO_PCI_BAR2_REGION_INDEX];
  bar2 = Region(0x10000, kRw | VFIO_REGION_INFO_FLAG_MMAP);
  bar2.info.msix_mappable = true;
  spec.regions[VFIO_PCI_ROM_REGION_INDEX] =
      Region(0x40000, VFIO_REGION_INFO_FLAG_READ);

  auto config = Header(4096, 0x1b36, 0x0010, 0x010802, 0x40, 1);
  config[0x40] = PCI_CAP_ID_PM;
  config[0x41] = 0x50;
  config[0x50] = PCI_CAP_ID_MSIX;
  config[0x51] = 0x60;
  Put16(config, 0x52, static_cast<uint16_t>(vectors - 1));
  Put32(config, 0x54, 0x2000 | 0);  // table at BAR0 + 0x2000
  Put32(config, 0x58, 0x3000 | 0);  // PBA at BAR0 + 0x3000
  config[0x60] = PCI_CAP_ID_EXP;
  config[0x61] = 0;
  spec.regions[VFIO_PCI_CONFIG_REGION_INDEX] = Region(4096, kRw);
  spec.regions[VFIO_PCI_CONFIG_REGION_INDEX].data = config;

  // A device-specific region (index 9) described by a type capability.
  FakeRegion extra = Region(0x2000, VFIO_REGION_INFO_FLAG_READ);
  extra.info.type = RegionType{
      static_cast<uint32_t>(VFIO_REGION_TYPE_PCI_VENDOR_TYPE) | 0x8086u, 1};
  spec.regions.push_back(extra);

  const uint32_t resize = msix_noresize ? VFIO_IRQ_INFO_NORESIZE : 0;
  spec.irqs = {
      {0,
       VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE |
           VFIO_IRQ_INFO_AUTOMASKED,
       1},
      {1, VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE, 0},
      {2, VFIO_IRQ_INFO_EVENTFD | resize, vectors},
      {3, VFIO_IRQ_INFO_EVENTFD, 1},
      {4, VFIO_IRQ_INFO_EVENTFD, 1},
  };
  HotResetInfo hot;
  hot.devices.push_back(HotResetEntry(name));
  if (!hot_reset_peer.empty())
    hot.devices.push_back(HotResetEntry(hot_reset_peer));
  spec.hot_reset = hot;
  return spec;
}

}  // namespace devpass::vfio
