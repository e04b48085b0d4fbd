// ListJsonText: `devpass list --json` written straight into one buffer, in
// the exact layout of nlohmann's dump(2), because building thousands of
// nlohmann objects costs more than scanning sysfs (see bench/list_scale).

#include <fmt/format.h>

#include <cstdio>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "cli/list_view.h"

namespace devpass::cli {

namespace {

// JSON text in nlohmann's dump(2) layout: two-space indent, keys sorted
// (its objects are std::maps), "[]" for empty arrays. Appends straight into
// one buffer; the unit test checks the result against nlohmann byte for byte.
class JsonText {
 public:
  explicit JsonText(std::string* out) : out_(out) {}

  void BeginObject() { Open('{'); }
  void EndObject() { Close('}'); }
  void BeginArray() { Open('['); }
  void EndArray() { Close(']'); }

  // Keys must come in sorted order, as nlohmann prints them.
  void Key(std::string_view key) {
    Item();
    Escaped(key);
    *out_ += ": ";
    after_key_ = true;
  }
  void String(std::string_view s) {
    Item();
    Escaped(s);
  }
  void StringOrNull(std::string_view s) {
    if (s.empty()) {
      Raw("null");
    } else {
      String(s);
    }
  }
  void Raw(std::string_view literal) {
    Item();
    *out_ += literal;
  }
  void Int(int64_t v) {
    Item();
    fmt::format_to(std::back_inserter(*out_), "{}", v);
  }
  void IntOrNull(int v) {
    if (v >= 0) {
      Int(v);
    } else {
      Raw("null");
    }
  }
  void Bool(bool b) { Raw(b ? "true" : "false"); }
  void Addresses(const std::vector<PciAddress>& addrs) {
    BeginArray();
    for (const auto& a : addrs) String(a.ToString());
    EndArray();
  }

 private:
  // Separator and indentation before a value or key, unless it follows a key.
  void Item() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (!first_.empty()) {
      if (!first_.back()) out_->push_back(',');
      first_.back() = false;
      out_->push_back('\n');
      out_->append(first_.size() * 2, ' ');
    }
  }
  void Open(char c) {
    Item();
    out_->push_back(c);
    first_.push_back(true);
  }
  void Close(char c) {
    bool empty = first_.back();
    first_.pop_back();
    if (!empty) {
      out_->push_back('\n');
      out_->append(first_.size() * 2, ' ');
    }
    out_->push_back(c);
  }
  void Escaped(std::string_view s) {
    out_->push_back('"');
    for (char ch : s) {
      auto c = static_cast<unsigned char>(ch);
      switch (c) {
        case '"':
          *out_ += "\\\"";
          break;
        case '\\':
          *out_ += "\\\\";
          break;
        case '\b':
          *out_ += "\\b";
          break;
        case '\f':
          *out_ += "\\f";
          break;
        case '\n':
          *out_ += "\\n";
          break;
        case '\r':
          *out_ += "\\r";
          break;
        case '\t':
          *out_ += "\\t";
          break;
        default:
          if (c < 0x20) {
            fmt::format_to(std::back_inserter(*out_), "\\u{:04x}", c);
          } else {
            out_->push_back(ch);
          }
      }
    }
    out_->push_back('"');
  }

  std::string* out_;
  std::vector<bool> first_;  // per open container: nothing written yet
  bool after_key_ = false;
};

// Must render exactly what DeviceJson builds, keys in sorted order.
void AppendDevice(JsonText& w, const ListedDevice& ld) {
  const auto& d = ld.info;
  const auto& a = ld.assessment;
  char hex[8];
  auto hex4 = [&hex](uint16_t v) {
    std::snprintf(hex, sizeof hex, "%04x", v);
    return std::string_view(hex, 4);
  };
  w.BeginObject();
  w.Key("address");
  w.String(d.address.ToString());
  w.Key("assignable");
  w.Bool(a.assignable);
  w.Key("boot_vga");
  w.Bool(d.boot_vga);
  w.Key("bridge");
  w.Bool(d.is_bridge());
  w.Key("class");
  std::snprintf(hex, sizeof hex, "%06x", d.class_code & 0xffffff);
  w.String(hex);
  w.Key("class_name");
  w.StringOrNull(ld.names.class_name);
  w.Key("class_short");
  w.StringOrNull(host::ShortClassName(d.class_code));
  w.Key("device_id");
  w.String(hex4(d.device_id));
  w.Key("device_name");
  w.StringOrNull(ld.names.device);
  w.Key("driver");
  w.StringOrNull(d.driver);
  w.Key("driver_override");
  w.StringOrNull(d.driver_override);
  w.Key("group_members");
  w.Addresses(d.group_members);
  w.Key("header_type");
  w.Int(d.header_type & 0x7f);
  w.Key("host_dependencies");
  w.BeginArray();
  for (const auto& dep : a.host_dependencies) {
    w.BeginObject();
    w.Key("detail");
    w.String(dep.detail);
    w.Key("kind");
    w.String(host::HostDependencyKindName(dep.kind));
    w.EndObject();
  }
  w.EndArray();
  w.Key("iommu_group");
  if (d.iommu_group) {
    w.Int(*d.iommu_group);
  } else {
    w.Raw("null");
  }
  w.Key("multifunction");
  w.Bool(d.multifunction());
  w.Key("numa_node");
  w.IntOrNull(d.numa_node);
  w.Key("physfn");
  if (d.physfn) {
    w.String(d.physfn->ToString());
  } else {
    w.Raw("null");
  }
  w.Key("reasons");
  w.BeginArray();
  for (const auto& r : a.reasons) w.String(r);
  w.EndArray();
  w.Key("revision");
  std::snprintf(hex, sizeof hex, "%02x", d.revision);
  w.String(hex);
  w.Key("sriov_numvfs");
  w.IntOrNull(d.sriov_numvfs);
  w.Key("sriov_totalvfs");
  w.IntOrNull(d.sriov_totalvfs);
  w.Key("subsystem_device_id");
  w.String(hex4(d.subsystem_device_id));
  w.Key("subsystem_name");
  w.StringOrNull(ld.names.subsystem);
  w.Key("subsystem_vendor_id");
  w.String(hex4(d.subsystem_vendor_id));
  w.Key("vendor_id");
  w.String(hex4(d.vendor_id));
  w.Key("vendor_name");
  w.StringOrNull(ld.names.vendor);
  w.Key("virtfns");
  w.Addresses(d.virtfns);
  w.EndObject();
}

}  // namespace

std::string ListJsonText(const Listing& listing) {
  std::string out;
  out.reserve(listing.devices.size() * 1100 + 2);
  JsonText w(&out);
  w.BeginArray();
  for (const auto& d : listing.devices) AppendDevice(w, d);
  w.EndArray();
  return out;
}

}  // namespace devpass::cli
