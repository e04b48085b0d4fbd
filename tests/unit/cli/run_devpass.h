#pragma once

// Runs the devpass program in-process, built exactly as main() builds it,
// against a fake host, capturing stdout and stderr.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cli/commands.h"
#include "fake_host.h"

namespace devpass::cli {

struct CliRun {
  int exit_code;
  std::string out;
  std::string err;
};

inline CliRun RunDevpass(const testing::FakeHost& host,
                         std::vector<std::string> args) {
  Globals g;
  CLI::App app;
  ConfigureApp(app, g);
  args.insert(args.begin(), {"devpass", "--root", host.dir().string()});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  int code = RunApp(app, g, static_cast<int>(argv.size()), argv.data());
  std::string out = ::testing::internal::GetCapturedStdout();
  return {code, std::move(out), ::testing::internal::GetCapturedStderr()};
}

}  // namespace devpass::cli
