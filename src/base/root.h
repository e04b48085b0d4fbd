#pragma once

// Every host path devpass touches (sys, dev, proc, etc, run, var/lib) is
// resolved under one root directory. On a real host the root is "/"; tests
// and the --root option point it at a fake tree with the kernel's layout.

#include <filesystem>
#include <string>
#include <string_view>

namespace devpass {

class Root {
 public:
  explicit Root(std::filesystem::path dir = "/");

  // Resolves from --root (if non-empty), else $DEVPASS_ROOT, else "/".
  static Root FromOptionOrEnv(const std::string& option);

  const std::filesystem::path& dir() const { return dir_; }
  bool IsHostRoot() const { return dir_ == "/"; }

  // Path("sys/bus/pci/devices") -> <root>/sys/bus/pci/devices. A leading '/'
  // in `relative` is ignored, so "/proc/cmdline" works too.
  std::filesystem::path Path(std::string_view relative) const;

  // Common places, so their spelling lives in one spot.
  std::filesystem::path Sys(std::string_view rel = {}) const;
  std::filesystem::path Dev(std::string_view rel = {}) const;
  std::filesystem::path Proc(std::string_view rel = {}) const;
  std::filesystem::path Etc(std::string_view rel = {}) const;
  std::filesystem::path Run(std::string_view rel = {}) const;
  std::filesystem::path VarLib(std::string_view rel = {}) const;

  // Path inside the tree, shown to the user the way the kernel names it
  // ("<root>/sys/..." becomes "/sys/..." when root is "/").
  std::string Display(const std::filesystem::path& p) const;

 private:
  std::filesystem::path dir_;
};

}  // namespace devpass
