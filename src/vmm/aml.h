#pragma once

// A tiny builder of ACPI Machine Language byte code (ACPI 6.5 §20.2 "AML
// Grammar Definition"): just the objects devpass's DSDT needs, so that no
// ASL compiler (iasl) is involved at build or run time. Every function
// returns the encoded bytes of one term; terms are concatenated with Cat().
//
//   Scope("\\_SB", Device("PCI0", Cat(Name("_HID", EisaId("PNP0A03")),
//                                     Name("_UID", Integer(0)))))
//
// Names are AML NameStrings: segments of 1-4 characters [A-Z0-9_] (first
// not a digit, shorter ones padded with '_' as ASL does: "_S5" is "_S5_"),
// separated by '.', optionally after a root prefix '\' or parent prefixes
// '^'. The inputs are devpass's own constants, so an invalid name is a bug
// in devpass: it aborts with a message rather than producing a table that
// Linux would reject with an "ACPI Error" at boot.
//
// Resource descriptors follow ACPI 6.5 §6.4 ("Resource Data Types for
// ACPI"); ResourceTemplate() wraps them in a Buffer with the end tag.

#include <cstdint>
#include <initializer_list>
#include <string_view>
#include <vector>

namespace devpass::vmm::aml {

using Bytes = std::vector<uint8_t>;

// Opcodes (§20.2.5), exposed for tests and decoders.
inline constexpr uint8_t kZeroOp = 0x00;
inline constexpr uint8_t kOneOp = 0x01;
inline constexpr uint8_t kNameOp = 0x08;
inline constexpr uint8_t kBytePrefix = 0x0a;
inline constexpr uint8_t kWordPrefix = 0x0b;
inline constexpr uint8_t kDWordPrefix = 0x0c;
inline constexpr uint8_t kStringPrefix = 0x0d;
inline constexpr uint8_t kQWordPrefix = 0x0e;
inline constexpr uint8_t kScopeOp = 0x10;
inline constexpr uint8_t kBufferOp = 0x11;
inline constexpr uint8_t kPackageOp = 0x12;
inline constexpr uint8_t kMethodOp = 0x14;
inline constexpr uint8_t kDualNamePrefix = 0x2e;
inline constexpr uint8_t kMultiNamePrefix = 0x2f;
inline constexpr uint8_t kExtOpPrefix = 0x5b;
inline constexpr uint8_t kDeviceOp = 0x82;  // after kExtOpPrefix
inline constexpr uint8_t kRootChar = '\\';
inline constexpr uint8_t kParentPrefixChar = '^';
inline constexpr uint8_t kReturnOp = 0xa4;
inline constexpr uint8_t kOnesOp = 0xff;

// Concatenation of terms.
Bytes Cat(std::initializer_list<Bytes> parts);
void Append(Bytes& out, const Bytes& part);

// PkgLength (§20.2.4) for a package whose contents after the PkgLength are
// `payload` bytes: the encoded length counts its own 1-4 bytes too.
// payload must be below 2^28 - 4.
Bytes PkgLength(size_t payload);

// The shortest integer encoding: ZeroOp, OneOp, OnesOp (all 64 bits set),
// BytePrefix, WordPrefix, DWordPrefix or QWordPrefix + little-endian value.
Bytes Integer(uint64_t value);
// StringPrefix + ASCII + NUL. `s` must be 7-bit ASCII without NUL.
Bytes String(std::string_view s);
// A compressed EISA ID ("PNP0A03": three letters, four hex digits) as the
// DWord integer ASL's EisaId() produces.
uint32_t EisaIdValue(std::string_view id);
Bytes EisaId(std::string_view id);
Bytes NameString(std::string_view path);

// Name (name, value): `value` is an already encoded data object.
Bytes Name(std::string_view name, const Bytes& value);
// Package (N) { elements... } with N = elements.size() (at most 255).
Bytes Package(const std::vector<Bytes>& elements);
// Scope / Device (name) { body }: `body` is a concatenation of terms.
Bytes Scope(std::string_view name, const Bytes& body);
Bytes Device(std::string_view name, const Bytes& body);
// Method (name, args, Serialized|NotSerialized) { body }, args 0-7.
Bytes Method(std::string_view name, int args, bool serialized,
             const Bytes& body);
Bytes Return(const Bytes& value);
// Buffer (size) { data }.
Bytes Buffer(const Bytes& data);

// ---- resource descriptors (§6.4).
// ResourceTemplate () { descriptors... }: a Buffer ending with the End Tag
// (checksum byte 0: "treat as correct", §6.4.2.9).
Bytes ResourceTemplate(const std::vector<Bytes>& descriptors);
// IO (Decode16, min, max, alignment, length) (§6.4.2.5).
Bytes IoPort(uint16_t min, uint16_t max, uint8_t alignment, uint8_t length);
// IRQNoFlags () {irq} (§6.4.2.1): edge, active high, exclusive.
Bytes IrqNoFlags(uint8_t irq);
// Address space descriptors a host bridge produces (§6.4.3.5):
// ResourceProducer, MinFixed, MaxFixed, PosDecode, granularity 0, no
// translation, length = max - min + 1.
Bytes WordBusNumber(uint16_t min, uint16_t max);
Bytes WordIo(uint16_t min, uint16_t max);  // EntireRange
enum class Cacheability : uint8_t {
  kNonCacheable = 0,
  kCacheable = 1,
  kWriteCombining = 2,
  kPrefetchable = 3,
};
Bytes DWordMemory(uint32_t min, uint32_t max, Cacheability c);  // ReadWrite
Bytes QWordMemory(uint64_t min, uint64_t max, Cacheability c);  // ReadWrite

// Descriptor tags, for decoders.
inline constexpr uint8_t kIrqTag = 0x22;           // small, 2 data bytes
inline constexpr uint8_t kIoPortTag = 0x47;        // small, 7 data bytes
inline constexpr uint8_t kEndTag = 0x79;           // small, 1 data byte
inline constexpr uint8_t kDWordAddressTag = 0x87;  // large
inline constexpr uint8_t kWordAddressTag = 0x88;   // large
inline constexpr uint8_t kQWordAddressTag = 0x8a;  // large
// Address space resource types (§6.4.3.5.1, byte 3).
inline constexpr uint8_t kMemoryRange = 0;
inline constexpr uint8_t kIoRange = 1;
inline constexpr uint8_t kBusNumberRange = 2;

}  // namespace devpass::vmm::aml
