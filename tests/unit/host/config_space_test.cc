#include "host/config_space.h"

#include <gtest/gtest.h>

#include <random>

#include "fake_host.h"

namespace devpass::host {
namespace {

using testing::CapChain;
using testing::Cat;
using testing::FakeDevice;
using testing::FakeHost;
using testing::Le16;
using testing::Le32;

// Lays a CapChain over a zeroed config space of `size` bytes.
std::vector<uint8_t> Build(const CapChain& chain, size_t size = 4096) {
  FakeDevice dev;
  chain.ApplyTo(&dev);
  std::vector<uint8_t> cfg(size, 0);
  cfg[0] = 0x86;
  cfg[1] = 0x80;
  for (const auto& [off, bytes] : dev.config_patches) {
    for (size_t i = 0; i < bytes.size() && off + i < size; ++i)
      cfg[off + i] = bytes[i];
  }
  return cfg;
}

std::vector<uint8_t> Zeros(size_t n) { return std::vector<uint8_t>(n, 0); }

TEST(ConfigSpaceTest, HeaderFieldsAndNoCapabilities) {
  std::vector<uint8_t> cfg(256, 0);
  cfg[0] = 0xf4;
  cfg[1] = 0x1a;
  cfg[2] = 0x41;
  cfg[3] = 0x10;
  cfg[0x0e] = 0x80;
  auto cs = ParseConfigSpace(cfg);
  EXPECT_EQ(cs.vendor_id, 0x1af4);
  EXPECT_EQ(cs.device_id, 0x1041);
  EXPECT_EQ(cs.header_type, 0x80);
  EXPECT_FALSE(cs.has_capability_list);
  EXPECT_TRUE(cs.capabilities.empty());
  EXPECT_TRUE(cs.problems.empty());
}

TEST(ConfigSpaceTest, PowerManagement) {
  CapChain chain;
  // PMC: version 3, D1 (bit 9), D2 (bit 10), PME from D0 and D3hot (bits 11,
  // 14). PMCSR: No_Soft_Reset (bit 3), power state D3hot (3).
  chain.Add(0x40, 0x01, Cat({Le16(0x4e03), Le16(0x000b)}));
  auto cs = ParseConfigSpace(Build(chain, 256));
  ASSERT_EQ(cs.capabilities.size(), 1u);
  const auto& c = cs.capabilities[0];
  EXPECT_EQ(c.offset, 0x40);
  EXPECT_EQ(c.name, "Power Management");
  const auto* pm = cs.Get<PowerManagementCap>();
  ASSERT_NE(pm, nullptr);
  EXPECT_EQ(pm->version, 3);
  EXPECT_TRUE(pm->d1_supported);
  EXPECT_TRUE(pm->d2_supported);
  EXPECT_EQ(pm->pme_support, 0x09);
  EXPECT_TRUE(pm->no_soft_reset);
  EXPECT_EQ(pm->power_state, 3);
}

TEST(ConfigSpaceTest, Msi) {
  CapChain chain;
  // Message Control: MMC = 3 (8 vectors), 64-bit (bit 7), per-vector masking
  // (bit 8).
  chain.Add(0x50, 0x05, Cat({Le16(0x0186), Le32(0), Le32(0), Le16(0)}));
  auto cs = ParseConfigSpace(Build(chain, 256));
  const auto* msi = cs.Get<MsiCap>();
  ASSERT_NE(msi, nullptr);
  EXPECT_EQ(msi->max_vectors, 8u);
  EXPECT_TRUE(msi->is_64bit);
  EXPECT_TRUE(msi->per_vector_masking);
  EXPECT_FALSE(msi->enabled);
  EXPECT_EQ(cs.Find(CapabilityId::kMsi)->offset, 0x50);
}

TEST(ConfigSpaceTest, MsiXTableAndPba) {
  CapChain chain;
  // Table size field 63 -> 64 entries, enabled; table in BAR 0 at 0x2000,
  // PBA in BAR 3 at 0x3000.
  chain.Add(0x70, 0x11,
            Cat({Le16(0x803f), Le32(0x00002000), Le32(0x00003003)}));
  auto cs = ParseConfigSpace(Build(chain, 256));
  const auto* x = cs.Get<MsiXCap>();
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(x->table_size, 64u);
  EXPECT_TRUE(x->enabled);
  EXPECT_EQ(x->table_bar, 0);
  EXPECT_EQ(x->table_offset, 0x2000u);
  EXPECT_EQ(x->pba_bar, 3);
  EXPECT_EQ(x->pba_offset, 0x3000u);
}

TEST(ConfigSpaceTest, PciExpressFlrAndLink) {
  CapChain chain;
  // Flags: version 2, endpoint. DevCap bit 28 = FLR. LnkCap: 8 GT/s x8.
  // LnkSta: 5 GT/s x4.
  chain.Add(0x80, 0x10,
            Cat({Le16(0x0002), Le32(0x10008fc0), Le16(0), Le16(0),
                 Le32(0x00000083), Le16(0), Le16(0x0042)}));
  auto cs = ParseConfigSpace(Build(chain, 256));
  const auto* e = cs.Get<PciExpressCap>();
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->version, 2);
  EXPECT_EQ(e->type, PcieDeviceType::kEndpoint);
  EXPECT_TRUE(e->flr);
  EXPECT_TRUE(cs.flr_supported());
  ASSERT_TRUE(e->has_link);
  EXPECT_EQ(e->max_link_speed, 3);
  EXPECT_EQ(e->max_link_width, 8);
  EXPECT_EQ(e->link_speed, 2);
  EXPECT_EQ(e->link_width, 4);
  EXPECT_EQ(LinkSpeedName(e->max_link_speed), "8 GT/s");
}

TEST(ConfigSpaceTest, PciExpressRootPortWithoutFlr) {
  CapChain chain;
  chain.Add(0x40, 0x10, Cat({Le16(0x0042), Le32(0x00008000), Zeros(0x3a)}));
  auto cs = ParseConfigSpace(Build(chain, 256));
  const auto* e = cs.Get<PciExpressCap>();
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->type, PcieDeviceType::kRootPort);
  EXPECT_FALSE(e->flr);
  EXPECT_FALSE(cs.flr_supported());
  EXPECT_EQ(PcieDeviceTypeName(e->type), "Root Port");
}

TEST(ConfigSpaceTest, IntegratedEndpointHasNoLink) {
  CapChain chain;
  chain.Add(0x40, 0x10, Cat({Le16(0x0092), Le32(0), Zeros(0x3a)}));
  auto cs = ParseConfigSpace(Build(chain, 256));
  ASSERT_NE(cs.Get<PciExpressCap>(), nullptr);
  EXPECT_EQ(cs.Get<PciExpressCap>()->type,
            PcieDeviceType::kRcIntegratedEndpoint);
  EXPECT_FALSE(cs.Get<PciExpressCap>()->has_link);
}

TEST(ConfigSpaceTest, StandardChainInOrderWithNamedOnlyCapabilities) {
  CapChain chain;
  chain.Add(0x40, 0x01, Cat({Le16(0x0003), Le16(0)}))
      .Add(0x48, 0x09, {0x08, 0, 0, 0, 0, 0})  // vendor specific
      .Add(0x60, 0x05, Cat({Le16(0), Le32(0), Le16(0)}))
      .Add(0xa0, 0x13, {0x06, 0x03, 0, 0});  // Advanced Features
  auto cs = ParseConfigSpace(Build(chain, 256));
  ASSERT_EQ(cs.capabilities.size(), 4u);
  EXPECT_EQ(cs.capabilities[1].name, "Vendor Specific");
  EXPECT_TRUE(
      std::holds_alternative<std::monostate>(cs.capabilities[1].detail));
  EXPECT_EQ(cs.capabilities[2].offset, 0x60);
  EXPECT_EQ(cs.capabilities[3].name, "Advanced Features");
  EXPECT_TRUE(cs.problems.empty());
}

TEST(ConfigSpaceTest, ExtendedAcsSriovRebarAerAri) {
  CapChain chain;
  chain.Add(0x40, 0x10, Cat({Le16(0x0002), Le32(0), Zeros(0x3a)}));
  chain.AddExtended(0x100, 0x0001, 2, Zeros(0x44));  // AER
  // ACS: SV, TB, RR, CR, UF, DT (not EC); control enables SV, RR, CR, UF.
  chain.AddExtended(0x148, 0x000d, 1, Cat({Le16(0x005f), Le16(0x001d)}));
  // SR-IOV: caps, ctrl, status, InitialVFs 8, TotalVFs 64, NumVFs 4, FDL,
  // First VF Offset 0x80, stride 2, reserved, VF Device ID 0x154c.
  chain.AddExtended(
      0x160, 0x0010, 1,
      Cat({Le32(0), Le16(0), Le16(0), Le16(8), Le16(64), Le16(4), Le16(0),
           Le16(0x80), Le16(2), Le16(0), Le16(0x154c), Zeros(0x24)}));
  // Resizable BAR: 2 entries. BAR 0: 1 MiB..512 MiB (CAP bits 4..13), current
  // 256 MiB (size code 8). BAR 2: 1 and 2 MiB, current 1 MiB.
  chain.AddExtended(0x1a0, 0x0015, 1,
                    Cat({Le32(0x00003ff0), Le32(0x00000840), Le32(0x00000030),
                         Le32(0x00000002)}));
  chain.AddExtended(0x1c0, 0x000e, 1, Cat({Le16(0), Le16(0)}));  // ARI
  auto cs = ParseConfigSpace(Build(chain));
  EXPECT_TRUE(cs.problems.empty()) << cs.problems[0];
  ASSERT_EQ(cs.capabilities.size(), 6u);

  const auto* aer = cs.Find(ExtCapabilityId::kAer);
  ASSERT_NE(aer, nullptr);
  EXPECT_EQ(aer->offset, 0x100);
  EXPECT_EQ(aer->version, 2);
  EXPECT_EQ(aer->name, "Advanced Error Reporting");
  ASSERT_NE(cs.Find(ExtCapabilityId::kAri), nullptr);
  EXPECT_EQ(cs.Find(ExtCapabilityId::kAri)->offset, 0x1c0);

  const auto* acs = cs.Get<AcsCap>();
  ASSERT_NE(acs, nullptr);
  EXPECT_TRUE(acs->source_validation);
  EXPECT_TRUE(acs->translation_blocking);
  EXPECT_TRUE(acs->request_redirect);
  EXPECT_TRUE(acs->completion_redirect);
  EXPECT_TRUE(acs->upstream_forwarding);
  EXPECT_FALSE(acs->egress_control);
  EXPECT_TRUE(acs->direct_translated);
  EXPECT_EQ(acs->control, 0x001d);

  const auto* sriov = cs.Get<SrIovCap>();
  ASSERT_NE(sriov, nullptr);
  EXPECT_EQ(sriov->initial_vfs, 8);
  EXPECT_EQ(sriov->total_vfs, 64);
  EXPECT_EQ(sriov->num_vfs, 4);
  EXPECT_EQ(sriov->vf_offset, 0x80);
  EXPECT_EQ(sriov->vf_stride, 2);
  EXPECT_EQ(sriov->vf_device_id, 0x154c);

  const auto* rebar = cs.Get<ResizableBarCap>();
  ASSERT_NE(rebar, nullptr);
  ASSERT_EQ(rebar->bars.size(), 2u);
  EXPECT_EQ(rebar->bars[0].index, 0);
  ASSERT_EQ(rebar->bars[0].supported_sizes.size(), 10u);
  EXPECT_EQ(rebar->bars[0].supported_sizes.front(), uint64_t{1} << 20);
  EXPECT_EQ(rebar->bars[0].supported_sizes.back(), uint64_t{512} << 20);
  EXPECT_EQ(rebar->bars[0].current_size, uint64_t{256} << 20);
  EXPECT_EQ(rebar->bars[1].index, 2);
  EXPECT_EQ(rebar->bars[1].supported_sizes,
            (std::vector<uint64_t>{uint64_t{1} << 20, uint64_t{2} << 20}));
  EXPECT_EQ(rebar->bars[1].current_size, uint64_t{1} << 20);
}

TEST(ConfigSpaceTest, UnknownExtendedCapabilityIsNamedWithItsId) {
  CapChain chain;
  chain.AddExtended(0x100, 0x0042, 1, Zeros(4));
  auto cs = ParseConfigSpace(Build(chain));
  ASSERT_EQ(cs.capabilities.size(), 1u);
  EXPECT_EQ(cs.capabilities[0].name, "Unknown (0x0042)");
  EXPECT_TRUE(cs.capabilities[0].extended);
}

TEST(ConfigSpaceTest, ReadsThroughTheFakeHost) {
  FakeHost host;
  FakeDevice dev{.bdf = "0000:01:00.0"};
  CapChain chain;
  chain.Add(0x40, 0x11,
            Cat({Le16(0x0007), Le32(0x00004000), Le32(0x00005000)}));
  chain.ApplyTo(&dev);
  host.AddDevice(dev);
  auto cs = ReadConfigSpace(host.root(), *PciAddress::Parse("0000:01:00.0"));
  ASSERT_TRUE(cs) << cs.error().ToString();
  EXPECT_EQ(cs->vendor_id, 0x8086);
  ASSERT_NE(cs->Get<MsiXCap>(), nullptr);
  EXPECT_EQ(cs->Get<MsiXCap>()->table_size, 8u);
}

// --- garbage and hostile input ---------------------------------------------

TEST(ConfigSpaceTest, SelfLoopStopsWithProblem) {
  std::vector<uint8_t> cfg(256, 0);
  cfg[0x06] = 0x10;  // capability list present
  cfg[0x34] = 0x40;
  cfg[0x40] = 0x01;
  cfg[0x41] = 0x40;  // points at itself
  auto cs = ParseConfigSpace(cfg);
  EXPECT_EQ(cs.capabilities.size(), 1u);
  ASSERT_EQ(cs.problems.size(), 1u);
  EXPECT_EQ(cs.problems[0], "capability list loops at 0x40");
}

TEST(ConfigSpaceTest, LongCycleIsCutAtFortyEightCapabilities) {
  std::vector<uint8_t> cfg(256, 0);
  cfg[0x06] = 0x10;
  cfg[0x34] = 0x40;
  // 48 capabilities, 0x40..0xfc, each pointing to the next, the last back
  // to the first.
  for (int off = 0x40; off <= 0xfc; off += 4) {
    cfg[off] = 0x09;
    cfg[off + 1] = static_cast<uint8_t>(off == 0xfc ? 0x40 : off + 4);
  }
  auto cs = ParseConfigSpace(cfg);
  EXPECT_EQ(cs.capabilities.size(), 48u);
  EXPECT_FALSE(cs.problems.empty());
}

TEST(ConfigSpaceTest, PointerIntoHeaderIsRejected) {
  std::vector<uint8_t> cfg(256, 0);
  cfg[0x06] = 0x10;
  cfg[0x34] = 0x10;
  auto cs = ParseConfigSpace(cfg);
  EXPECT_TRUE(cs.capabilities.empty());
  ASSERT_EQ(cs.problems.size(), 1u);
  EXPECT_NE(cs.problems[0].find("into the header"), std::string::npos);
}

TEST(ConfigSpaceTest, TruncatedConfigNeverReadsPastTheEnd) {
  CapChain chain;
  chain.Add(0x40, 0x01, Cat({Le16(0x0003), Le16(0)}))
      .Add(0x50, 0x11, Cat({Le16(0x0007), Le32(0x2000), Le32(0x3000)}));
  auto full = Build(chain, 256);
  // Cut inside the MSI-X capability: it is listed but not parsed.
  std::vector<uint8_t> cut(full.begin(), full.begin() + 0x55);
  auto cs = ParseConfigSpace(cut);
  ASSERT_EQ(cs.capabilities.size(), 2u);
  EXPECT_NE(cs.Get<PowerManagementCap>(), nullptr);
  EXPECT_EQ(cs.Get<MsiXCap>(), nullptr);
  // Cut before the second capability header.
  std::vector<uint8_t> cut2(full.begin(), full.begin() + 0x48);
  auto cs2 = ParseConfigSpace(cut2);
  EXPECT_EQ(cs2.capabilities.size(), 1u);
  EXPECT_FALSE(cs2.problems.empty());
}

TEST(ConfigSpaceTest, UnprivilegedSixtyFourBytesSaysRootIsNeeded) {
  CapChain chain;
  chain.Add(0x40, 0x01, Cat({Le16(0x0003), Le16(0)}));
  auto full = Build(chain, 256);
  std::vector<uint8_t> head(full.begin(), full.begin() + 64);
  auto cs = ParseConfigSpace(head);
  EXPECT_TRUE(cs.has_capability_list);
  EXPECT_TRUE(cs.capabilities.empty());
  ASSERT_EQ(cs.problems.size(), 1u);
  EXPECT_NE(cs.problems[0].find("root"), std::string::npos);
}

TEST(ConfigSpaceTest, EmptyAndTinyInput) {
  EXPECT_TRUE(ParseConfigSpace({}).capabilities.empty());
  std::vector<uint8_t> one{0x10};
  auto cs = ParseConfigSpace(one);
  EXPECT_EQ(cs.vendor_id, 0xffff);
  EXPECT_TRUE(cs.capabilities.empty());
}

TEST(ConfigSpaceTest, ExtendedLoopAndBackwardPointer) {
  std::vector<uint8_t> cfg(4096, 0);
  // 0x100 -> 0x200 -> 0x100.
  auto put32 = [&](size_t off, uint32_t v) {
    for (int i = 0; i < 4; ++i)
      cfg[off + i] = static_cast<uint8_t>(v >> (8 * i));
  };
  put32(0x100, 0x0001 | (1u << 16) | (0x200u << 20));
  put32(0x200, 0x000d | (1u << 16) | (0x100u << 20));
  auto cs = ParseConfigSpace(cfg);
  EXPECT_EQ(cs.capabilities.size(), 2u);
  ASSERT_EQ(cs.problems.size(), 1u);
  EXPECT_NE(cs.problems[0].find("loops"), std::string::npos);

  put32(0x200, 0x000d | (1u << 16) | (0x080u << 20));  // below 0x100
  auto cs2 = ParseConfigSpace(cfg);
  EXPECT_EQ(cs2.capabilities.size(), 2u);
  ASSERT_EQ(cs2.problems.size(), 1u);
  EXPECT_NE(cs2.problems[0].find("below 0x100"), std::string::npos);
}

TEST(ConfigSpaceTest, AllOnesExtendedSpaceMeansNone) {
  std::vector<uint8_t> cfg(4096, 0);
  std::fill(cfg.begin() + 0x100, cfg.end(), 0xff);
  auto cs = ParseConfigSpace(cfg);
  EXPECT_TRUE(cs.capabilities.empty());
  EXPECT_TRUE(cs.problems.empty());
}

TEST(ConfigSpaceTest, ExtendedHeaderCutShort) {
  std::vector<uint8_t> cfg(0x102, 0);
  cfg[0x100] = 0x01;
  auto cs = ParseConfigSpace(cfg);
  EXPECT_TRUE(cs.capabilities.empty());
}

TEST(ConfigSpaceTest, RandomGarbageIsBoundedAndSafe) {
  // Deterministic fuzzing: every size and content must parse without
  // reading out of bounds (ASan checks) and within the walk limits.
  std::mt19937 rng(12345);
  for (int round = 0; round < 2000; ++round) {
    size_t size = rng() % 2 ? 4096 : rng() % 4200;
    std::vector<uint8_t> cfg(size);
    for (auto& b : cfg) b = static_cast<uint8_t>(rng());
    if (size > 0x34) cfg[0x34] = static_cast<uint8_t>(0x40 + rng() % 0xc0);
    if (size > 6) cfg[6] |= 0x10;
    auto cs = ParseConfigSpace(cfg);
    size_t std_caps = 0;
    for (const auto& c : cs.capabilities) {
      if (!c.extended) {
        ++std_caps;
        EXPECT_LT(c.offset + 2u, 257u);
      } else {
        EXPECT_LE(c.offset + 4u, size);
      }
    }
    EXPECT_LE(std_caps, 48u);
  }
}

}  // namespace
}  // namespace devpass::host
