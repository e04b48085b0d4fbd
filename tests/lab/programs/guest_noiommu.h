// VFIO in no-IOMMU mode for the guest programs (guest_edu.cc): what "the
// guest's own driver" does to reach its device through vfio-pci with no IOMMU
// (linux/vfio.h: VFIO_NOIOMMU_IOMMU, /dev/vfio/noiommu-N). Raw ioctls, no
// devpass code: a guest knows nothing about devpass.
#pragma once

#include <linux/vfio.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "guest_common.h"

namespace guest {

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void reset(int fd) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

// vfio in no-IOMMU mode and vfio-pci, loaded and enabled.
inline bool PrepareVfio() {
  const std::string param =
      "/sys/module/vfio/parameters/enable_unsafe_noiommu_mode";
  if (!Exists("/sys/module/vfio")) {
    int rc = RunProgram({"modprobe", "vfio", "enable_unsafe_noiommu_mode=1"});
    Info("modprobe vfio enable_unsafe_noiommu_mode=1: exit %d", rc);
  }
  if (!Exists(param)) {
    Report(false, "vfio no-IOMMU mode",
           "%s missing: this kernel's vfio is built without "
           "CONFIG_VFIO_NOIOMMU (Debian's is); "
           "load the lab's rebuild first: insmod /lab/noiommu/vfio.ko "
           "(lab-guest-initrd "
           "--modules vfio-pci does it in a guest)",
           param.c_str());
    return false;
  }
  if (ReadText(param).value_or("") != "Y" && !WriteText(param, "1")) {
    Report(false, "vfio no-IOMMU mode", "writing %s: %s", param.c_str(),
           std::strerror(errno));
    return false;
  }
  Report(ReadText(param).value_or("") == "Y", "vfio no-IOMMU mode", "%s = %s",
         param.c_str(), ReadText(param).value_or("?").c_str());
  if (!Exists("/sys/bus/pci/drivers/vfio-pci")) {
    int rc = RunProgram({"modprobe", "vfio-pci"});
    Info("modprobe vfio-pci: exit %d", rc);
  }
  bool loaded = Exists("/sys/bus/pci/drivers/vfio-pci");
  Report(loaded, "vfio-pci loaded", "%s",
         loaded ? "/sys/bus/pci/drivers/vfio-pci" : "missing");
  return loaded;
}

inline bool BindVfioPci(const std::string& bdf) {
  std::string dev = DevPath(bdf);
  std::string drv = LinkName(dev + "/driver");
  if (drv != "vfio-pci") {
    WriteText(dev + "/driver_override", "vfio-pci");
    if (!drv.empty()) WriteText(dev + "/driver/unbind", bdf);
    WriteText("/sys/bus/pci/drivers_probe", bdf);
  }
  std::string now = LinkName(dev + "/driver");
  Report(now == "vfio-pci", "bind to vfio-pci", "%s driver %s -> %s",
         bdf.c_str(), drv.empty() ? "(none)" : drv.c_str(),
         now.empty() ? "(none)" : now.c_str());
  return now == "vfio-pci";
}

struct Vfio {
  Fd container, group, device;
  vfio_region_info bar0{}, config{};
};

inline bool OpenVfio(const std::string& bdf, Vfio& v) {
  std::string group = LinkName(DevPath(bdf) + "/iommu_group");
  std::string path = "/dev/vfio/noiommu-" + group;
  if (group.empty() || !Exists(path)) {
    Report(false, "noiommu group",
           "%s has %s: guest_edu is for machines without an IOMMU "
           "(lab_vfio_edu drives an edu behind one)",
           bdf.c_str(),
           group.empty() ? "no IOMMU group"
                         : ("group " + group + " but no " + path).c_str());
    return false;
  }
  v.container.reset(::open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC));
  v.group.reset(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  int api = v.container.get() >= 0
                ? ::ioctl(v.container.get(), VFIO_GET_API_VERSION)
                : -1;
  int ext =
      api == VFIO_API_VERSION
          ? ::ioctl(v.container.get(), VFIO_CHECK_EXTENSION, VFIO_NOIOMMU_IOMMU)
          : -1;
  vfio_group_status st{};
  st.argsz = sizeof(st);
  bool viable = v.group.get() >= 0 &&
                ::ioctl(v.group.get(), VFIO_GROUP_GET_STATUS, &st) == 0 &&
                (st.flags & VFIO_GROUP_FLAGS_VIABLE);
  int cfd = v.container.get();
  bool set =
      viable && ext > 0 &&
      ::ioctl(v.group.get(), VFIO_GROUP_SET_CONTAINER, &cfd) == 0 &&
      ::ioctl(v.container.get(), VFIO_SET_IOMMU, VFIO_NOIOMMU_IOMMU) == 0;
  int saved = errno;
  if (set)
    v.device.reset(
        ::ioctl(v.group.get(), VFIO_GROUP_GET_DEVICE_FD, bdf.c_str()));
  if (set) saved = errno;
  bool opened = set && v.device.get() >= 0;
  Report(opened, "open VFIO no-IOMMU",
         "%s api=%d noiommu-ext=%d viable=%d container=%s device fd=%d%s%s",
         path.c_str(), api, ext, viable, set ? "VFIO_NOIOMMU_IOMMU" : "not set",
         v.device.get(), opened ? "" : ": ",
         opened ? "" : std::strerror(saved));
  if (v.device.get() < 0) return false;
  v.bar0.argsz = sizeof(v.bar0);
  v.bar0.index = VFIO_PCI_BAR0_REGION_INDEX;
  v.config.argsz = sizeof(v.config);
  v.config.index = VFIO_PCI_CONFIG_REGION_INDEX;
  bool info =
      ::ioctl(v.device.get(), VFIO_DEVICE_GET_REGION_INFO, &v.bar0) == 0 &&
      ::ioctl(v.device.get(), VFIO_DEVICE_GET_REGION_INFO, &v.config) == 0;
  Report(info && v.bar0.size >= 0x100, "region info",
         "BAR0 size 0x%llx flags 0x%x",
         static_cast<unsigned long long>(v.bar0.size), v.bar0.flags);
  return info;
}

// Vector 0 of the VFIO interrupt INDEX (MSI or the edu's INTx pin) -> EFD,
// or the index off when EFD < 0.
inline bool SetIrq(int device, uint32_t index, int efd) {
  char buf[sizeof(vfio_irq_set) + sizeof(int32_t)] = {};
  auto* set = reinterpret_cast<vfio_irq_set*>(buf);
  set->argsz = sizeof(buf);
  set->index = index;
  set->start = 0;
  if (efd >= 0) {
    set->flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
    set->count = 1;
    std::memcpy(set->data, &efd, sizeof(int32_t));
  } else {
    set->flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER;
    set->count = 0;
    set->argsz = sizeof(vfio_irq_set);
  }
  return ::ioctl(device, VFIO_DEVICE_SET_IRQS, set) == 0;
}
inline bool SetMsi(int device, int efd) {
  return SetIrq(device, VFIO_PCI_MSI_IRQ_INDEX, efd);
}
inline bool SetIntx(int device, int efd) {
  return SetIrq(device, VFIO_PCI_INTX_IRQ_INDEX, efd);
}

// VFIO masks INTx each time it fires (the line is level-triggered and shared
// with nobody it could tell apart); the user unmasks once the device is quiet.
inline bool UnmaskIntx(int device) {
  vfio_irq_set set{};
  set.argsz = sizeof(set);
  set.flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK;
  set.index = VFIO_PCI_INTX_IRQ_INDEX;
  set.start = 0;
  set.count = 1;
  return ::ioctl(device, VFIO_DEVICE_SET_IRQS, &set) == 0;
}

}  // namespace guest
