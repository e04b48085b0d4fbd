#include "base/fs.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "base/lock.h"
#include "base/root.h"
#include "fake_host.h"

namespace devpass {
namespace {

TEST(RootTest, ResolvesUnderRoot) {
  Root r("/tmp/x/");
  EXPECT_EQ(r.Sys("bus/pci").string(), "/tmp/x/sys/bus/pci");
  EXPECT_EQ(r.Path("/proc/cmdline").string(), "/tmp/x/proc/cmdline");
  EXPECT_EQ(r.VarLib("devpass").string(), "/tmp/x/var/lib/devpass");
  EXPECT_FALSE(r.IsHostRoot());
  EXPECT_TRUE(Root("/").IsHostRoot());
  EXPECT_EQ(Root("/").Dev("vfio/vfio").string(), "/dev/vfio/vfio");
}

TEST(RootTest, EnvironmentIsUsedWhenNoOption) {
  ::setenv("DEVPASS_ROOT", "/tmp/envroot", 1);
  EXPECT_EQ(Root::FromOptionOrEnv("").dir().string(), "/tmp/envroot");
  EXPECT_EQ(Root::FromOptionOrEnv("/tmp/opt").dir().string(), "/tmp/opt");
  ::unsetenv("DEVPASS_ROOT");
  EXPECT_TRUE(Root::FromOptionOrEnv("").IsHostRoot());
}

TEST(FsTest, ReadsAndTrimsSysfsValues) {
  testing::FakeHost host;
  host.WriteFile("sys/x/vendor", "0x8086\n");
  EXPECT_EQ(*ReadTrimmed(host.Path("sys/x/vendor")), "0x8086");
  EXPECT_EQ(*ReadInt(host.Path("sys/x/vendor")), 0x8086);
  host.WriteFile("sys/x/numa", "-1\n");
  EXPECT_EQ(*ReadInt(host.Path("sys/x/numa")), -1);
  host.WriteFile("sys/x/junk", "abc\n");
  auto bad = ReadInt(host.Path("sys/x/junk"));
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("junk"), std::string::npos);
}

TEST(FsTest, MissingFileNamesPathAndErrno) {
  auto r = ReadFile("/nonexistent/devpass/file");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(r.error().sys_errno, ENOENT);
  EXPECT_NE(r.error().ToString().find("/nonexistent/devpass/file"),
            std::string::npos);
  EXPECT_NE(r.error().ToString().find("No such file"), std::string::npos);
}

TEST(FsTest, AtomicWriteReplacesContent) {
  testing::FakeHost host;
  auto p = host.Path("var/lib/devpass/state.json");
  ASSERT_TRUE(AtomicWriteFile(p, "one"));
  ASSERT_TRUE(AtomicWriteFile(p, "two"));
  EXPECT_EQ(*ReadFile(p), "two");
  EXPECT_EQ(ListDir(p.parent_path()), std::vector<std::string>{"state.json"});
}

TEST(FsTest, WriteToReadOnlyFileReportsPermission) {
  if (::geteuid() == 0) {
    // root bypasses mode bits; a directory instead of a file gives EISDIR.
    testing::FakeHost host;
    host.MakeDir("sys/dir");
    auto w = WriteFile(host.Path("sys/dir"), "x");
    ASSERT_FALSE(w);
    EXPECT_EQ(w.error().sys_errno, EISDIR);
    return;
  }
  testing::FakeHost host;
  host.WriteFile("sys/ro", "");
  ::chmod(host.Path("sys/ro").c_str(), 0444);
  auto w = WriteFile(host.Path("sys/ro"), "x");
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code, ErrorCode::kPermissionDenied);
  EXPECT_NE(w.error().message.find("root"), std::string::npos);
}

TEST(FsTest, ReadLinkNameGivesDriverName) {
  testing::FakeHost host;
  host.AddDriver("e1000e", {{0x8086, 0x10d3}});
  host.AddDevice({.bdf = "0000:00:02.0", .driver = "e1000e"});
  EXPECT_EQ(*ReadLinkName(host.DeviceDir("0000:00:02.0") / "driver"), "e1000e");
  EXPECT_FALSE(ReadLinkName(host.DeviceDir("0000:00:02.0") / "vendor"));
}

TEST(LockTest, SecondAcquireTimesOutWithBusy) {
  testing::FakeHost host;
  auto first = FileLock::Acquire(host.root());
  ASSERT_TRUE(first);
  // flock locks belong to the open file description, so a second open in the
  // same process conflicts just like another process would.
  auto second = FileLock::Acquire(host.root(), std::chrono::milliseconds(50));
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, ErrorCode::kBusy);
  EXPECT_NE(second.error().message.find("another devpass"), std::string::npos);
}

}  // namespace
}  // namespace devpass
