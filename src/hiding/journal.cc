#include "hiding/journal.h"

#include <nlohmann/json.hpp>

#include "base/fs.h"

namespace devpass::hiding {

using nlohmann::json;

Journal::Journal(const Root& root) : dir_(root.VarLib("devpass/journal")) {}

std::filesystem::path Journal::PathFor(const PciAddress& address) const {
  return dir_ / (address.ToString() + ".json");
}

Status Journal::Write(const JournalRecord& r) const {
  json j = {{"version", 1},
            {"op", r.op},
            {"address", r.address.ToString()},
            {"stub", r.stub},
            {"original_driver", r.original_driver},
            {"step", r.step},
            {"persist", r.persist},
            {"persist_created", r.persist_created},
            {"pid", r.pid},
            {"started", r.started}};
  return AtomicWriteFile(PathFor(r.address), j.dump(2) + "\n");
}

Status Journal::Remove(const PciAddress& address) const {
  return RemoveFile(PathFor(address));
}

bool Journal::Empty() const {
  for (const auto& name : ListDir(dir_)) {
    if (name.size() > 5 && name.ends_with(".json")) return false;
  }
  return true;
}

JournalScan Journal::List() const {
  JournalScan scan;
  for (const auto& name : ListDir(dir_)) {
    if (!name.ends_with(".json")) continue;  // AtomicWriteFile temporaries
    auto path = dir_ / name;
    auto text = ReadFile(path);
    if (!text) {
      scan.unreadable.push_back(text.error());
      continue;
    }
    try {
      json j = json::parse(*text);
      JournalRecord r;
      r.op = j.at("op").get<std::string>();
      auto addr = PciAddress::Parse(j.at("address").get<std::string>());
      if (!addr) throw std::runtime_error(addr.error().message);
      if (r.op != "hide" && r.op != "unhide") {
        throw std::runtime_error("unknown op '" + r.op + "'");
      }
      r.address = *addr;
      r.stub = j.at("stub").get<std::string>();
      r.original_driver = j.at("original_driver").get<std::string>();
      r.step = j.value("step", "started");
      r.persist = j.value("persist", false);
      r.persist_created = j.value("persist_created", false);
      r.pid = j.value("pid", 0);
      r.started = j.value("started", "");
      scan.records.push_back(std::move(r));
    } catch (const std::exception& e) {
      scan.unreadable.push_back(
          Error{ErrorCode::kConflict, 0,
                fmt::format("the journal record {} is corrupt ({}); check the "
                            "device it names by hand, then delete the file",
                            path.string(), e.what())});
    }
  }
  return scan;
}

}  // namespace devpass::hiding
