#include "host/pci_names.h"

#include <gtest/gtest.h>

#include "fake_host.h"

namespace devpass::host {
namespace {

using testing::FakeHost;

// A tiny pci.ids in the fake root takes precedence over the system one.
constexpr const char* kIds =
    "# test ids\n"
    "1af4  Red Hat, Inc.\n"
    "\t1041  Virtio 1.0 network device\n"
    "\t\t1af4 1100  QEMU Virtual Machine\n"
    "abcd  Example Vendor\n"
    "C 02  Network controller\n"
    "\t00  Ethernet controller\n"
    "C 0c  Serial bus controller\n";

TEST(PciNamesTest, LooksUpNamesInRootDatabase) {
  FakeHost host;
  host.WriteFile("usr/share/misc/pci.ids", kIds);
  PciNames names(host.root());
  ASSERT_TRUE(names.ids_path().has_value());
  EXPECT_EQ(*names.ids_path(), host.Path("usr/share/misc/pci.ids"));
  EXPECT_EQ(names.Vendor(0x1af4), "Red Hat, Inc.");
  EXPECT_EQ(names.Device(0x1af4, 0x1041), "Virtio 1.0 network device");
  EXPECT_EQ(names.Subsystem(0x1af4, 0x1041, 0x1af4, 0x1100),
            "QEMU Virtual Machine");
  EXPECT_EQ(names.Class(0x020000), "Ethernet controller");
  // Subclass not listed: the base class name.
  EXPECT_EQ(names.Class(0x0c0330), "Serial bus controller");
}

TEST(PciNamesTest, UnknownIdsAreEmpty) {
  FakeHost host;
  host.WriteFile("usr/share/misc/pci.ids", kIds);
  PciNames names(host.root());
  EXPECT_EQ(names.Vendor(0x1234), "");
  EXPECT_EQ(names.Device(0xabcd, 0x0001), "");
  EXPECT_EQ(names.Class(0x990000), "");
}

TEST(PciNamesTest, MalformedDatabaseMeansNoNamesNotAnExit) {
  FakeHost host;
  host.WriteFile("usr/share/misc/pci.ids",
                 "1af4  Red Hat\n\t\t\t\tnonsense\nzz\n");
  PciNames names(host.root());
  names.Preload();
  EXPECT_EQ(names.Vendor(0x1af4), "");
  EXPECT_EQ(names.Class(0x020000), "");
}

TEST(PciNamesTest, FallsBackToSystemDatabaseOrNothing) {
  FakeHost host;
  PciNames names(host.root());
  if (std::filesystem::exists("/usr/share/misc/pci.ids")) {
    ASSERT_TRUE(names.ids_path().has_value());
    EXPECT_EQ(names.ids_path()->string(), "/usr/share/misc/pci.ids");
    EXPECT_FALSE(names.Vendor(0x8086).empty());
  } else {
    EXPECT_FALSE(names.ids_path().has_value());
    EXPECT_EQ(names.Vendor(0x8086), "");
  }
}

TEST(PciNamesTest, ShortClassNames) {
  EXPECT_EQ(ShortClassName(0x020000), "network");
  EXPECT_EQ(ShortClassName(0x010802), "nvme");
  EXPECT_EQ(ShortClassName(0x010601), "storage");
  EXPECT_EQ(ShortClassName(0x0c0330), "usb");
  EXPECT_EQ(ShortClassName(0x0c0500), "serial-bus");
  EXPECT_EQ(ShortClassName(0x060400), "bridge");
  EXPECT_EQ(ShortClassName(0x030000), "display");
  EXPECT_EQ(ShortClassName(0xff0000), "unassigned");
  EXPECT_EQ(ShortClassName(0x990000), "");
}

}  // namespace
}  // namespace devpass::host
