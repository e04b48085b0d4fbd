#pragma once

// Runs a started VM attached to the terminal: guest serial output already
// goes to stdout (VmConfig::console_out); here stdin goes to the guest's
// COM1 and SIGINT/SIGTERM stop the VM cleanly. When stdin is a terminal it
// is put in raw mode (restored on return, whatever happens) and Ctrl-A x
// quits, as in QEMU; Ctrl-C then reaches the guest.

#include "vmm/vm.h"

namespace devpass::vmm {

struct AttachOptions {
  int input_fd = 0;  // -1: no input
  bool forward_input = true;
};

// Starts the VM's vCPUs and returns when the VM has stopped and its threads
// are joined.
VmStop RunAttached(Vm& vm, const AttachOptions& options);

// Restores a terminal's settings on destruction.
class RawTerminal {
 public:
  explicit RawTerminal(int fd);  // no-op unless fd is a terminal
  ~RawTerminal();
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;
  bool active() const { return active_; }

 private:
  int fd_;
  bool active_ = false;
  unsigned char saved_[128];  // struct termios, opaque here
};

}  // namespace devpass::vmm
