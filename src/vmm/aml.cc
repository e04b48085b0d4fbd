#include "vmm/aml.h"

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace devpass::vmm::aml {
namespace {

// Invalid input is a bug in devpass's table code (all inputs are its own
// constants), never a user error.
[[noreturn]] void Bug(const std::string& what) {
  std::fputs(
      fmt::format("devpass: internal error in the AML builder: {}\n", what)
          .c_str(),
      stderr);
  std::abort();
}

void PutLe(Bytes& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i)
    out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

bool IsLeadChar(char c) { return (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsNameChar(char c) { return IsLeadChar(c) || (c >= '0' && c <= '9'); }

void PutNameSeg(Bytes& out, std::string_view seg, std::string_view path) {
  if (seg.empty() || seg.size() > 4 || !IsLeadChar(seg[0])) {
    Bug(fmt::format("bad name segment \"{}\" in \"{}\"", seg, path));
  }
  for (size_t i = 0; i < 4; ++i) {
    char c = i < seg.size() ? seg[i] : '_';
    if (!IsNameChar(c)) Bug(fmt::format("bad character in name \"{}\"", path));
    out.push_back(static_cast<uint8_t>(c));
  }
}

// Opcode bytes, PkgLength, then the contents.
Bytes WithPkgLength(std::initializer_list<uint8_t> opcode,
                    const Bytes& contents) {
  Bytes out(opcode);
  Append(out, PkgLength(contents.size()));
  Append(out, contents);
  return out;
}

Bytes AddressSpace(uint8_t tag, int width, uint8_t type, uint8_t type_flags,
                   uint64_t min, uint64_t max) {
  const uint64_t limit = width == 8 ? ~0ull : (1ull << (8 * width)) - 1;
  if (min > max || max > limit || (max - min) >= limit) {
    Bug(fmt::format(
        "address range {:#x}-{:#x} does not fit a {}-byte descriptor", min, max,
        width));
  }
  // General flags (§6.4.3.5.1 table 6.44): bit 3 _MAF, bit 2 _MIF (fixed
  // max/min), bit 1 _DEC = 0 (positive decode), bit 0 = 0 (the bridge
  // produces the range for its children).
  constexpr uint8_t kGeneralFlags = 0x0c;
  const uint16_t len =
      static_cast<uint16_t>(3 + 5 * width);  // after the 3-byte header
  Bytes out{tag};
  PutLe(out, len, 2);
  out.push_back(type);
  out.push_back(kGeneralFlags);
  out.push_back(type_flags);
  PutLe(out, 0, width);              // _GRA
  PutLe(out, min, width);            // _MIN
  PutLe(out, max, width);            // _MAX
  PutLe(out, 0, width);              // _TRA
  PutLe(out, max - min + 1, width);  // _LEN
  return out;
}

}  // namespace

void Append(Bytes& out, const Bytes& part) {
  out.insert(out.end(), part.begin(), part.end());
}

Bytes Cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) Append(out, p);
  return out;
}

Bytes PkgLength(size_t payload) {
  // Lead byte bits 7-6: how many bytes follow. One byte alone holds up to
  // 63 in bits 5-0; otherwise the lead byte holds bits 3-0 and each
  // following byte 8 more bits (§20.2.4).
  for (size_t n = 1; n <= 4; ++n) {
    const uint64_t total = payload + n;
    const uint64_t max = n == 1 ? 0x3f : (1ull << (4 + 8 * (n - 1))) - 1;
    if (total > max) continue;
    if (n == 1) return {static_cast<uint8_t>(total)};
    Bytes out{static_cast<uint8_t>(((n - 1) << 6) | (total & 0x0f))};
    for (size_t i = 1; i < n; ++i) {
      out.push_back(static_cast<uint8_t>(total >> (4 + 8 * (i - 1))));
    }
    return out;
  }
  Bug(fmt::format("package of {} bytes is beyond PkgLength's 2^28", payload));
}

Bytes Integer(uint64_t v) {
  if (v == 0) return {kZeroOp};
  if (v == 1) return {kOneOp};
  if (v == ~0ull) return {kOnesOp};  // 64 bits: DSDT revision 2
  Bytes out;
  int width = 8;
  uint8_t prefix = kQWordPrefix;
  if (v <= 0xff) {
    width = 1;
    prefix = kBytePrefix;
  } else if (v <= 0xffff) {
    width = 2;
    prefix = kWordPrefix;
  } else if (v <= 0xffffffff) {
    width = 4;
    prefix = kDWordPrefix;
  }
  out.push_back(prefix);
  PutLe(out, v, width);
  return out;
}

Bytes String(std::string_view s) {
  Bytes out{kStringPrefix};
  for (char c : s) {
    if (c == 0 || static_cast<unsigned char>(c) > 0x7f)
      Bug("string not 7-bit ASCII");
    out.push_back(static_cast<uint8_t>(c));
  }
  out.push_back(0);
  return out;
}

uint32_t EisaIdValue(std::string_view id) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  bool ok = id.size() == 7;
  for (size_t i = 0; ok && i < 3; ++i) ok = id[i] >= 'A' && id[i] <= 'Z';
  for (size_t i = 3; ok && i < 7; ++i) ok = hex(id[i]) >= 0;
  if (!ok)
    Bug(fmt::format("\"{}\" is not an EISA ID (3 letters, 4 hex digits)", id));
  // Three letters of 5 bits ('A' = 1) and four hex digits, stored big
  // endian: the bytes of the DWord are vendor high, vendor low, product
  // high, product low.
  const uint32_t vendor = static_cast<uint32_t>(
      ((id[0] - 0x40) << 10) | ((id[1] - 0x40) << 5) | (id[2] - 0x40));
  uint32_t product = 0;
  for (size_t i = 3; i < 7; ++i)
    product = (product << 4) | static_cast<uint32_t>(hex(id[i]));
  return (vendor >> 8) | ((vendor & 0xff) << 8) | ((product >> 8) << 16) |
         ((product & 0xff) << 24);
}

Bytes EisaId(std::string_view id) { return Integer(EisaIdValue(id)); }

Bytes NameString(std::string_view path) {
  const std::string_view whole = path;
  Bytes out;
  if (!path.empty() && path[0] == '\\') {
    out.push_back(kRootChar);
    path.remove_prefix(1);
  } else {
    while (!path.empty() && path[0] == '^') {
      out.push_back(kParentPrefixChar);
      path.remove_prefix(1);
    }
  }
  std::vector<std::string_view> segs;
  while (!path.empty()) {
    const size_t dot = path.find('.');
    segs.push_back(path.substr(0, dot));
    if (dot == std::string_view::npos) break;
    path.remove_prefix(dot + 1);
    if (path.empty()) Bug(fmt::format("name \"{}\" ends with '.'", whole));
  }
  if (segs.empty()) {
    out.push_back(0x00);  // NullName
  } else if (segs.size() == 2) {
    out.push_back(kDualNamePrefix);
  } else if (segs.size() > 2) {
    if (segs.size() > 255) Bug("name with more than 255 segments");
    out.push_back(kMultiNamePrefix);
    out.push_back(static_cast<uint8_t>(segs.size()));
  }
  for (std::string_view s : segs) PutNameSeg(out, s, whole);
  return out;
}

Bytes Name(std::string_view name, const Bytes& value) {
  return Cat({{kNameOp}, NameString(name), value});
}

Bytes Package(const std::vector<Bytes>& elements) {
  if (elements.size() > 255) Bug("Package with more than 255 elements");
  Bytes contents{static_cast<uint8_t>(elements.size())};
  for (const Bytes& e : elements) Append(contents, e);
  return WithPkgLength({kPackageOp}, contents);
}

Bytes Scope(std::string_view name, const Bytes& body) {
  return WithPkgLength({kScopeOp}, Cat({NameString(name), body}));
}

Bytes Device(std::string_view name, const Bytes& body) {
  return WithPkgLength({kExtOpPrefix, kDeviceOp},
                       Cat({NameString(name), body}));
}

Bytes Method(std::string_view name, int args, bool serialized,
             const Bytes& body) {
  if (args < 0 || args > 7)
    Bug(fmt::format("method {} with {} arguments", name, args));
  // MethodFlags (§20.2.5.2): bits 0-2 ArgCount, bit 3 SerializeFlag, bits
  // 4-7 SyncLevel (0).
  const uint8_t flags = static_cast<uint8_t>(args | (serialized ? 0x08 : 0));
  return WithPkgLength({kMethodOp}, Cat({NameString(name), {flags}, body}));
}

Bytes Return(const Bytes& value) { return Cat({{kReturnOp}, value}); }

Bytes Buffer(const Bytes& data) {
  return WithPkgLength({kBufferOp}, Cat({Integer(data.size()), data}));
}

Bytes ResourceTemplate(const std::vector<Bytes>& descriptors) {
  Bytes data;
  for (const Bytes& d : descriptors) Append(data, d);
  data.push_back(kEndTag);
  data.push_back(0);  // checksum 0: "treat as correct"
  return Buffer(data);
}

Bytes IoPort(uint16_t min, uint16_t max, uint8_t alignment, uint8_t length) {
  Bytes out{kIoPortTag, 0x01};  // information: 16-bit decode
  PutLe(out, min, 2);
  PutLe(out, max, 2);
  out.push_back(alignment);
  out.push_back(length);
  return out;
}

Bytes IrqNoFlags(uint8_t irq) {
  if (irq > 15) Bug(fmt::format("IRQ descriptor for IRQ {} (0-15 only)", irq));
  Bytes out{kIrqTag};
  PutLe(out, 1u << irq, 2);
  return out;
}

Bytes WordBusNumber(uint16_t min, uint16_t max) {
  return AddressSpace(kWordAddressTag, 2, kBusNumberRange, 0, min, max);
}

Bytes WordIo(uint16_t min, uint16_t max) {
  // Type-specific flags (table 6.48): _RNG = 3, ISA and non-ISA ranges.
  return AddressSpace(kWordAddressTag, 2, kIoRange, 0x03, min, max);
}

Bytes DWordMemory(uint32_t min, uint32_t max, Cacheability c) {
  // Type-specific flags (table 6.47): bit 0 _RW (1 = read-write), bits 2-1
  // _MEM (cacheability), bits 4-3 _MTP = 0 (AddressRangeMemory).
  return AddressSpace(
      kDWordAddressTag, 4, kMemoryRange,
      static_cast<uint8_t>(0x01 | (static_cast<uint8_t>(c) << 1)), min, max);
}

Bytes QWordMemory(uint64_t min, uint64_t max, Cacheability c) {
  return AddressSpace(
      kQWordAddressTag, 8, kMemoryRange,
      static_cast<uint8_t>(0x01 | (static_cast<uint8_t>(c) << 1)), min, max);
}

}  // namespace devpass::vmm::aml
