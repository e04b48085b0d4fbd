#include "base/root.h"

#include <cstdlib>

namespace devpass {
namespace {

std::filesystem::path Join(const std::filesystem::path& base,
                           std::string_view sub, std::string_view rel) {
  std::filesystem::path p = base / std::string(sub);
  while (!rel.empty() && rel.front() == '/') rel.remove_prefix(1);
  if (!rel.empty()) p /= std::string(rel);
  return p;
}

}  // namespace

Root::Root(std::filesystem::path dir) : dir_(std::move(dir)) {
  if (dir_.empty()) dir_ = "/";
  if (dir_ != "/") dir_ = std::filesystem::absolute(dir_).lexically_normal();
  // Keep "/x/" and "/x" equal.
  std::string s = dir_.string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  dir_ = s;
}

Root Root::FromOptionOrEnv(const std::string& option) {
  if (!option.empty()) return Root(option);
  if (const char* env = std::getenv("DEVPASS_ROOT"); env && *env) {
    return Root(env);
  }
  return Root("/");
}

std::filesystem::path Root::Path(std::string_view relative) const {
  while (!relative.empty() && relative.front() == '/')
    relative.remove_prefix(1);
  if (relative.empty()) return dir_;
  return dir_ / std::string(relative);
}

std::filesystem::path Root::Sys(std::string_view rel) const {
  return Join(dir_, "sys", rel);
}
std::filesystem::path Root::Dev(std::string_view rel) const {
  return Join(dir_, "dev", rel);
}
std::filesystem::path Root::Proc(std::string_view rel) const {
  return Join(dir_, "proc", rel);
}
std::filesystem::path Root::Etc(std::string_view rel) const {
  return Join(dir_, "etc", rel);
}
std::filesystem::path Root::Run(std::string_view rel) const {
  return Join(dir_, "run", rel);
}
std::filesystem::path Root::VarLib(std::string_view rel) const {
  return Join(dir_, "var/lib", rel);
}

std::string Root::Display(const std::filesystem::path& p) const {
  return p.string();
}

}  // namespace devpass
