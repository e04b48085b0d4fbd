// kvm_hold: keeps one idle KVM VM (in-kernel irqchip, one vCPU that never
// runs) open in the lab for as long as the lab runs. Started by the lab's
// init once kvm_amd is loaded.
//
// Why: KVM flips kernel-wide static branches when the first VM of the
// system is created and the last one destroyed (preempt_notifier_key, whose
// branch sits in __schedule) and when the first vCPU LAPIC appears and the
// last guest enables its own (apic_sw_disabled). Each flip is a text_poke of
// live kernel text on every lab CPU. Under QEMU's TCG a poke now and then
// leaves a CPU running a stale translation of the old bytes: an int3 that
// is no longer in memory, taken forever with interrupts off, and the whole
// lab hangs (tests/lab/README.md, "QEMU version"). With this VM held, every
// `devpass run` and nested QEMU is the second VM and the branches stay put.
// It changes nothing a scenario looks at: the held VM never runs.
//
// Usage: kvm_hold [/dev/kvm]   (exits 1 with a message if KVM is missing)

#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace {

int Fail(const char* what) {
  std::fprintf(stderr, "kvm_hold: %s: %s\n", what, std::strerror(errno));
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  const char* dev = argc > 1 ? argv[1] : "/dev/kvm";
  int kvm = open(dev, O_RDWR | O_CLOEXEC);
  if (kvm < 0) return Fail(dev);
  int vm = ioctl(kvm, KVM_CREATE_VM, 0);
  if (vm < 0) return Fail("KVM_CREATE_VM");
  if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0) return Fail("KVM_CREATE_IRQCHIP");
  if (ioctl(vm, KVM_CREATE_VCPU, 0) < 0) return Fail("KVM_CREATE_VCPU");
  std::printf("kvm_hold: one idle VM held open (pid %d)\n", getpid());
  std::fflush(stdout);
  for (;;) pause();
}
