#include "hiding/kernel.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <vector>

#include "base/fs.h"

namespace devpass::hiding {

Status RealKernel::WriteSysfs(const std::filesystem::path& path,
                              std::string_view value) {
  return WriteFile(path, value);
}

namespace {

struct ExecResult {
  int exit_status = -1;  // exit code, or 128 + signal
  std::string output;    // stderr and stdout, merged
};

// Runs argv[0] found in the usual sbin directories (busybox and Debian both
// have modprobe there, and PATH may lack /sbin for a non-root shell), then
// via PATH. No shell is involved.
Result<ExecResult> Run(const std::vector<std::string>& argv) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    int err = errno;
    return ErrnoError(err, "cannot create a pipe to run " + argv[0]);
  }
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) {
    int err = errno;
    return ErrnoError(err, "cannot fork to run " + argv[0]);
  }
  if (pid == 0) {
    ::dup2(write_end.get(), STDOUT_FILENO);
    ::dup2(write_end.get(), STDERR_FILENO);
    for (const char* dir : {"/sbin/", "/usr/sbin/", "/bin/", "/usr/bin/"}) {
      std::string full = std::string(dir) + argv[0];
      ::execv(full.c_str(), args.data());
    }
    ::execvp(argv[0].c_str(), args.data());
    ::_exit(127);
  }
  write_end.Reset();
  ExecResult r;
  std::array<char, 4096> buf;
  for (;;) {
    ssize_t n = ::read(read_end.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    r.output.append(buf.data(), static_cast<size_t>(n));
  }
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(wstatus)) r.exit_status = WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) r.exit_status = 128 + WTERMSIG(wstatus);
  return r;
}

}  // namespace

Status RealKernel::LoadModule(std::string_view module) {
  if (!root_.IsHostRoot()) {
    return MakeError(
        ErrorCode::kUnsupported,
        fmt::format("module {} is not loaded under {} (devpass loads "
                    "modules only into the running kernel, with root "
                    "/); load it there first",
                    module, root_.dir().string()));
  }
  DP_ASSIGN_OR_RETURN(ExecResult r, Run({"modprobe", std::string(module)}));
  if (r.exit_status == 0) return Ok();
  std::string out = Trim(r.output);
  if (r.exit_status == 127) {
    return MakeError(
        ErrorCode::kUnsupported,
        fmt::format("cannot load module {}: modprobe was not found; "
                    "install kmod, or load the module yourself",
                    module));
  }
  return MakeError(
      ErrorCode::kUnsupported,
      fmt::format(
          "'modprobe {}' failed with exit status {}{}{}; the module may not "
          "exist for this kernel: install the kernel's full module package "
          "(Debian: linux-image-<version>; Ubuntu: "
          "linux-modules-extra-<version>) "
          "or build the kernel with it",
          module, r.exit_status, out.empty() ? "" : ": ", out));
}

Result<StubDriver> FindStub(std::string_view name) {
  for (const StubDriver& s : {kVfioPci, kPciStub, kXenPciback}) {
    if (name == s.name || name == s.driver) return s;
  }
  return MakeError(
      ErrorCode::kInvalidArgument,
      fmt::format("'{}' is not a driver devpass can hide devices with; "
                  "choose vfio-pci, pci-stub or xen-pciback",
                  name));
}

}  // namespace devpass::hiding
