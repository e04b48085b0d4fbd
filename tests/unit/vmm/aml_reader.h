#pragma once

// A test-only AML decoder for the subset vmm/aml.h emits (ACPI 6.5 §20.2):
// Name, Scope, Device, Method, Return, Package, Buffer, integers, strings.
// It decodes independently of the builder (by the grammar), so tests can
// check what an OS would read back, not just that bytes round-trip.

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

namespace devpass::vmm::testing {

struct AmlNode {
  enum Kind {
    kInteger,
    kString,
    kBuffer,
    kPackage,
    kName,
    kScope,
    kDevice,
    kMethod,
    kReturn
  };
  Kind kind = kInteger;
  uint64_t integer = 0;  // kInteger; kMethod: the MethodFlags byte
  std::string text;  // kString; kName/kScope/kDevice/kMethod: the NameString
  std::vector<uint8_t> bytes;  // kBuffer
  // kPackage: elements; kName, kReturn: the value; kScope/kDevice/kMethod:
  // body.
  std::vector<AmlNode> children;
};

class AmlReader {
 public:
  explicit AmlReader(std::span<const uint8_t> aml) : b_(aml) {}

  // The whole input as a TermList. On malformed input, `error()` says
  // where and the nodes read so far are returned.
  std::vector<AmlNode> Parse() {
    std::vector<AmlNode> out = TermList(b_.size());
    if (error_.empty() && pos_ != b_.size()) Fail("trailing bytes");
    return out;
  }
  const std::string& error() const { return error_; }

 private:
  void Fail(const std::string& what) {
    if (error_.empty()) error_ = what + " at offset " + std::to_string(pos_);
  }
  bool Need(size_t n) {
    if (pos_ + n > b_.size()) {
      Fail("truncated");
      return false;
    }
    return true;
  }
  uint64_t Le(int width) {
    uint64_t v = 0;
    if (!Need(static_cast<size_t>(width))) return 0;
    for (int i = 0; i < width; ++i)
      v |= static_cast<uint64_t>(b_[pos_ + i]) << (8 * i);
    pos_ += static_cast<size_t>(width);
    return v;
  }
  // Returns the end offset of the package that starts here.
  size_t PkgEnd() {
    const size_t start = pos_;
    if (!Need(1)) return pos_;
    const uint8_t lead = b_[pos_++];
    const int follow = lead >> 6;
    size_t len = follow == 0 ? (lead & 0x3f) : (lead & 0x0f);
    for (int i = 0; i < follow; ++i) {
      if (!Need(1)) return pos_;
      len |= static_cast<size_t>(b_[pos_++]) << (4 + 8 * i);
    }
    if (start + len > b_.size() || start + len < pos_) Fail("bad PkgLength");
    return start + len;
  }
  std::string NameSeg() {
    if (!Need(4)) return "";
    std::string s(reinterpret_cast<const char*>(&b_[pos_]), 4);
    pos_ += 4;
    return s;
  }
  std::string NameString() {
    std::string s;
    while (pos_ < b_.size() && (b_[pos_] == '\\' || b_[pos_] == '^')) {
      s += static_cast<char>(b_[pos_++]);
    }
    if (!Need(1)) return s;
    size_t count = 1;
    if (b_[pos_] == 0x00) {
      ++pos_;
      return s;
    } else if (b_[pos_] == 0x2e) {
      ++pos_;
      count = 2;
    } else if (b_[pos_] == 0x2f) {
      ++pos_;
      if (!Need(1)) return s;
      count = b_[pos_++];
    }
    for (size_t i = 0; i < count; ++i) s += (i ? "." : "") + NameSeg();
    return s;
  }
  std::vector<AmlNode> TermList(size_t end) {
    std::vector<AmlNode> out;
    while (error_.empty() && pos_ < end) out.push_back(Term());
    if (pos_ != end) Fail("term list overruns its package");
    return out;
  }
  AmlNode Term() {
    AmlNode n;
    if (!Need(1)) return n;
    const uint8_t op = b_[pos_++];
    switch (op) {
      case 0x00:
        n.integer = 0;
        return n;
      case 0x01:
        n.integer = 1;
        return n;
      case 0xff:
        n.integer = ~0ull;
        return n;
      case 0x0a:
        n.integer = Le(1);
        return n;
      case 0x0b:
        n.integer = Le(2);
        return n;
      case 0x0c:
        n.integer = Le(4);
        return n;
      case 0x0e:
        n.integer = Le(8);
        return n;
      case 0x0d:
        n.kind = AmlNode::kString;
        while (Need(1) && b_[pos_] != 0)
          n.text += static_cast<char>(b_[pos_++]);
        ++pos_;
        return n;
      case 0x08:
        n.kind = AmlNode::kName;
        n.text = NameString();
        n.children.push_back(Term());
        return n;
      case 0xa4:
        n.kind = AmlNode::kReturn;
        n.children.push_back(Term());
        return n;
      case 0x10:
      case 0x14: {
        n.kind = op == 0x10 ? AmlNode::kScope : AmlNode::kMethod;
        const size_t end = PkgEnd();
        n.text = NameString();
        if (op == 0x14) n.integer = Le(1);
        n.children = TermList(end);
        return n;
      }
      case 0x11: {
        n.kind = AmlNode::kBuffer;
        const size_t end = PkgEnd();
        const AmlNode size = Term();
        if (end < pos_ || size.integer != end - pos_)
          Fail("buffer size mismatch");
        if (error_.empty()) {
          n.bytes.assign(b_.begin() + static_cast<long>(pos_),
                         b_.begin() + static_cast<long>(end));
        }
        pos_ = end;
        return n;
      }
      case 0x12: {
        n.kind = AmlNode::kPackage;
        const size_t end = PkgEnd();
        if (!Need(1)) return n;
        const size_t count = b_[pos_++];
        n.children = TermList(end);
        if (n.children.size() != count) Fail("package element count mismatch");
        return n;
      }
      case 0x5b:
        if (Need(1) && b_[pos_] == 0x82) {
          ++pos_;
          n.kind = AmlNode::kDevice;
          const size_t end = PkgEnd();
          n.text = NameString();
          n.children = TermList(end);
          return n;
        }
        [[fallthrough]];
      default:
        --pos_;
        Fail("unknown opcode " + std::to_string(op));
        pos_ = b_.size();
        return n;
    }
  }

  std::span<const uint8_t> b_;
  size_t pos_ = 0;
  std::string error_;
};

// Absolute path ("\\_SB_.PCI0._PRT", segments padded to 4) of every named
// object, pointing at its node (the Name node for Name(), the Device or
// Scope node itself). `scope` is the path of the enclosing scope.
inline void IndexAml(const std::vector<AmlNode>& nodes,
                     const std::string& scope,
                     std::map<std::string, const AmlNode*>& out) {
  for (const AmlNode& n : nodes) {
    if (n.kind != AmlNode::kName && n.kind != AmlNode::kScope &&
        n.kind != AmlNode::kDevice && n.kind != AmlNode::kMethod) {
      continue;
    }
    std::string path;
    if (!n.text.empty() && n.text[0] == '\\') {
      path = n.text;
    } else {
      path = scope == "\\" ? "\\" + n.text : scope + "." + n.text;
    }
    out[path] = &n;
    if (n.kind != AmlNode::kName) IndexAml(n.children, path, out);
  }
}

// A little-endian field of WIDTH bytes (ACPI tables are little-endian).
inline uint64_t Le(const uint8_t* p, int width) {
  uint64_t v = 0;
  for (int i = 0; i < width; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

}  // namespace devpass::vmm::testing
