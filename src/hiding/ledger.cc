#include "hiding/ledger.h"

#include <algorithm>
#include <ctime>

#include "base/fs.h"

namespace devpass::hiding {
namespace {

using nlohmann::json;

json ToJson(const LedgerEntry& e) {
  json j = {{"address", e.address.ToString()},
            {"stub", e.stub},
            {"original_driver", e.original_driver},
            {"ids", e.ids},
            {"persisted", e.persisted},
            {"hidden_since", e.hidden_since},
            {"assignment", nullptr}};
  if (e.assignment) {
    const Assignment& a = *e.assignment;
    j["assignment"] = {{"guest", a.guest},           {"pid", a.pid},
                       {"start_time", a.start_time}, {"boot_id", a.boot_id},
                       {"since", a.since},           {"managed", a.managed},
                       {"adopted", a.adopted}};
  }
  return j;
}

// Throws json exceptions on a malformed entry; Load turns them into an Error.
LedgerEntry FromJson(const json& j) {
  LedgerEntry e;
  auto addr = PciAddress::Parse(j.at("address").get<std::string>());
  if (!addr) throw std::runtime_error(addr.error().message);
  e.address = *addr;
  e.stub = j.at("stub").get<std::string>();
  e.original_driver = j.at("original_driver").get<std::string>();
  e.ids = j.value("ids", "");
  e.persisted = j.value("persisted", false);
  e.hidden_since = j.value("hidden_since", "");
  if (j.contains("assignment") && !j["assignment"].is_null()) {
    const auto& a = j["assignment"];
    Assignment as;
    as.guest = a.value("guest", "");
    as.pid = a.value("pid", 0);
    as.start_time = a.value("start_time", uint64_t{0});
    as.boot_id = a.value("boot_id", "");
    as.since = a.value("since", "");
    as.managed = a.value("managed", false);
    as.adopted = a.value("adopted", false);
    e.assignment = std::move(as);
  }
  return e;
}

}  // namespace

std::filesystem::path Ledger::PathFor(const Root& root) {
  return root.VarLib("devpass/ledger.json");
}

Result<Ledger> Ledger::Load(const Root& root) {
  Ledger ledger(PathFor(root));
  if (!Exists(ledger.path_)) return ledger;
  DP_ASSIGN_OR_RETURN(std::string text, ReadFile(ledger.path_));
  auto corrupt = [&](std::string_view why) {
    return MakeError(
        ErrorCode::kConflict,
        fmt::format(
            "the ledger {} is corrupt ({}); devpass will not guess which "
            "devices it hid. Repair the JSON by hand, or move the file "
            "away and unhide devices yourself (see 'devpass status' and "
            "docs/hiding.md)",
            root.Display(ledger.path_), why));
  };
  try {
    json j = json::parse(text);
    int version = j.at("version").get<int>();
    if (version != kLedgerVersion) {
      return MakeError(
          ErrorCode::kUnsupported,
          fmt::format("the ledger {} has version {}, this devpass "
                      "understands version {}; use the devpass that "
                      "wrote it",
                      root.Display(ledger.path_), version, kLedgerVersion));
    }
    for (const auto& e : j.at("devices"))
      ledger.entries_.push_back(FromJson(e));
  } catch (const std::exception& e) {
    return corrupt(e.what());
  }
  std::sort(ledger.entries_.begin(), ledger.entries_.end(),
            [](const auto& a, const auto& b) { return a.address < b.address; });
  return ledger;
}

Status Ledger::Save() const {
  json devices = json::array();
  for (const auto& e : entries_) devices.push_back(ToJson(e));
  json j = {{"version", kLedgerVersion}, {"devices", devices}};
  return AtomicWriteFile(path_, j.dump(2) + "\n");
}

const LedgerEntry* Ledger::Find(const PciAddress& address) const {
  for (const auto& e : entries_) {
    if (e.address == address) return &e;
  }
  return nullptr;
}

void Ledger::Upsert(LedgerEntry entry) {
  Remove(entry.address);
  auto pos = std::lower_bound(
      entries_.begin(), entries_.end(), entry,
      [](const auto& a, const auto& b) { return a.address < b.address; });
  entries_.insert(pos, std::move(entry));
}

bool Ledger::Remove(const PciAddress& address) {
  auto it = std::remove_if(entries_.begin(), entries_.end(),
                           [&](const auto& e) { return e.address == address; });
  bool found = it != entries_.end();
  entries_.erase(it, entries_.end());
  return found;
}

std::string NowIso8601() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace devpass::hiding
