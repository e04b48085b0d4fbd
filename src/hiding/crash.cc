#include "hiding/crash.h"

#include <csignal>
#include <cstdlib>
#include <string>

namespace devpass::hiding {

void CrashPoint(std::string_view op, std::string_view point) {
  // Read every time: tests set the variable in a forked child.
  const char* want = std::getenv("DEVPASS_CRASH_AT");
  if (!want) return;
  std::string here = std::string(op) + ":" + std::string(point);
  if (here == want) std::raise(SIGKILL);
}

}  // namespace devpass::hiding
