#include "vmm/console.h"

#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>

namespace devpass::vmm {

static_assert(sizeof(termios) <= 128, "RawTerminal::saved_ too small");

RawTerminal::RawTerminal(int fd) : fd_(fd) {
  termios t;
  if (fd < 0 || !::isatty(fd) || ::tcgetattr(fd, &t) != 0) return;
  std::memcpy(saved_, &t, sizeof(t));
  ::cfmakeraw(&t);
  t.c_oflag |= OPOST | ONLCR;  // keep "\n" -> "\r\n" for the host's output
  if (::tcsetattr(fd, TCSANOW, &t) == 0) active_ = true;
}

RawTerminal::~RawTerminal() {
  if (!active_) return;
  termios t;
  std::memcpy(&t, saved_, sizeof(t));
  ::tcsetattr(fd_, TCSANOW, &t);
}

namespace {

constexpr uint8_t kCtrlA = 0x01;

// Blocks SIGINT/SIGTERM (stop the guest) and SIGUSR1 (an NMI for every
// vCPU) for the lifetime of the object and reads them from a signalfd
// instead; the old mask comes back on destruction.
class SignalCatcher {
 public:
  SignalCatcher() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, &old_);
    fd_ = ::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  }
  ~SignalCatcher() {
    if (fd_ >= 0) ::close(fd_);
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  int fd() const { return fd_; }

 private:
  sigset_t old_;
  int fd_ = -1;
};

}  // namespace

VmStop RunAttached(Vm& vm, const AttachOptions& options) {
  SignalCatcher
      signals;  // before the vCPU threads exist: they inherit the mask
  if (Status st = vm.Start(); !st) {
    vm.Stop(StopReason::kCrash, st.error().ToString());
    return vm.Wait();
  }
  RawTerminal raw(options.forward_input ? options.input_fd : -1);
  std::deque<uint8_t> pending;  // input the UART had no room for yet
  bool input_open = options.forward_input && options.input_fd >= 0;
  bool escape = false;

  while (!vm.stopping()) {
    pollfd fds[3];
    int n = 0;
    fds[n++] = {vm.stop_fd(), POLLIN, 0};
    const int signal_index = n;
    if (signals.fd() >= 0) fds[n++] = {signals.fd(), POLLIN, 0};
    const int input_index = n;
    if (input_open && pending.empty()) fds[n++] = {options.input_fd, POLLIN, 0};
    // While input waits for FIFO room, poll with a short timeout.
    int rc = ::poll(fds, n, pending.empty() ? -1 : 10);
    if (rc < 0 && errno != EINTR) break;

    if (signals.fd() >= 0 && (fds[signal_index].revents & POLLIN)) {
      signalfd_siginfo si;
      if (::read(signals.fd(), &si, sizeof(si)) != sizeof(si)) {
        // nothing read: poll again
      } else if (si.ssi_signo == SIGUSR1) {
        vm.InjectNmi();
      } else {
        vm.Stop(StopReason::kSignal, si.ssi_signo == SIGINT
                                         ? "stopped by SIGINT"
                                         : "stopped by SIGTERM");
      }
    }
    if (input_index < n &&
        (fds[input_index].revents & (POLLIN | POLLHUP | POLLERR))) {
      uint8_t buf[256];
      ssize_t got = ::read(options.input_fd, buf, sizeof(buf));
      if (got <= 0) {
        input_open = false;  // EOF (e.g. /dev/null): keep running without input
      } else {
        for (ssize_t i = 0; i < got; ++i) {
          uint8_t c = buf[i];
          if (raw.active()) {
            if (escape) {
              escape = false;
              if (c == 'x' || c == 'X') {
                vm.Stop(StopReason::kSignal,
                        "stopped from the terminal (Ctrl-A x)");
                break;
              }
              if (c != kCtrlA) pending.push_back(kCtrlA);
            } else if (c == kCtrlA) {
              escape = true;
              continue;
            }
          }
          pending.push_back(c);
        }
      }
    }
    while (!pending.empty()) {
      uint8_t c = pending.front();
      if (!vm.serial().Receive(std::span<const uint8_t>(&c, 1))) break;
      pending.pop_front();
    }
  }
  VmStop stop = vm.Wait();
  if (stop.reason == StopReason::kSignal && !pending.empty()) {
    stop.detail += fmt::format(
        "\n{} bytes of input never taken: the guest had not enabled its UART's "
        "receive interrupt",
        pending.size());
  }
  return stop;
}

}  // namespace devpass::vmm
