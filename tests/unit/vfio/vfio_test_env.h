#pragma once

// A fake host for VFIO tests: sysfs (FakeHost) says which devices are bound
// to vfio-pci and in which IOMMU group; FakeVfioApi plays the kernel's VFIO.

#include <memory>
#include <string>

#include "base/pci_address.h"
#include "fake_host.h"
#include "vfio/fake_vfio_api.h"

namespace devpass::vfio {

struct VfioTestEnv {
  testing::FakeHost host;
  std::shared_ptr<FakeVfioApi> api = std::make_shared<FakeVfioApi>();

  VfioTestEnv() {
    host.AddDriver("vfio-pci");
    host.AddDriver("e1000e");
  }

  // A device bound to vfio-pci in `group`, known to both sysfs and the fake.
  void AddHidden(const std::string& bdf, int group, FakeDeviceSpec spec) {
    host.AddDevice({.bdf = bdf, .driver = "vfio-pci", .iommu_group = group});
    spec.name = bdf;
    api->AddDevice(group, std::move(spec));
  }

  void SetReservedRegions(int group, const std::string& text) {
    host.WriteFile("sys/kernel/iommu_groups/" + std::to_string(group) +
                       "/reserved_regions",
                   text);
  }

  const Root& root() const { return host.root(); }
};

inline PciAddress Addr(const std::string& bdf) {
  return *PciAddress::Parse(bdf);
}

}  // namespace devpass::vfio
