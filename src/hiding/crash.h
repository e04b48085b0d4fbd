#pragma once

// Crash injection for tests of the journal: with DEVPASS_CRASH_AT=<op>:<point>
// in the environment (for example "hide:after-unbind"), devpass kills itself
// with SIGKILL when it reaches that point, exactly as a power cut or `kill -9`
// would stop it. The points are listed in docs/hiding.md:
//   hide:   after-journal after-override after-unbind after-probe after-verify
//   unhide: after-journal after-unbind after-override-clear after-rebind

#include <string_view>

namespace devpass::hiding {

void CrashPoint(std::string_view op, std::string_view point);

}  // namespace devpass::hiding
