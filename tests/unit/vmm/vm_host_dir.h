#pragma once

// What Vm::Create reads from the host, in a temporary root: proc/meminfo
// (4 GB available), dev/, and a synthetic bzImage; removed on destruction.
// Shared by the tests that build a whole VM against FakeKvm.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "synthetic_bzimage.h"
#include "vmm/vm.h"

namespace devpass::vmm::testing {

class VmHostDir {
 public:
  // A directory named after PREFIX, the process and the running test.
  explicit VmHostDir(const std::string& prefix)
      : dir_(
            std::filesystem::temp_directory_path() /
            (prefix + "-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name())) {
    std::filesystem::create_directories(dir_ / "proc");
    std::filesystem::create_directories(dir_ / "dev");
    std::ofstream(dir_ / "proc/meminfo")
        << "MemTotal: 8000000 kB\nMemAvailable: 4000000 kB\n";
    auto k = MakeBzImage();
    std::ofstream(dir_ / "bzImage", std::ios::binary)
        .write(reinterpret_cast<const char*>(k.data()),
               static_cast<std::streamsize>(k.size()));
  }
  ~VmHostDir() { std::filesystem::remove_all(dir_); }
  VmHostDir(const VmHostDir&) = delete;
  VmHostDir& operator=(const VmHostDir&) = delete;

  const std::filesystem::path& path() const { return dir_; }
  // The bzImage with 128 MiB of RAM, the rest defaulted.
  VmConfig Config() const {
    VmConfig config;
    config.kernel = dir_ / "bzImage";
    config.mem_bytes = 128 * kMiB;
    return config;
  }

 private:
  std::filesystem::path dir_;
};

}  // namespace devpass::vmm::testing
