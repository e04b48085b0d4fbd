#pragma once

// A GuestPlatform that keeps what the device registered in plain maps, with
// the refusals the real one makes (overlap with RAM or another registration,
// MSI addresses outside the local APIC window).

#include <fmt/format.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "pci/guest_platform.h"

namespace devpass::pci::testing {

class FakePlatform : public GuestPlatform {
 public:
  enum class Kind { kMemory, kMmio, kPio, kMsi, kIntx };
  struct Live {
    Kind kind;
    uint64_t base = 0;
    uint64_t size = 0;
    void* host = nullptr;
    std::shared_ptr<IoHandler> handler;
    MsiMessage message;
    int fd = -1;
    int resample_fd = -1;
  };

  uint64_t ram_end = 512ull << 20;  // guest RAM is [0, ram_end)
  std::map<int, Live> live;
  std::vector<std::string> log;

  std::vector<Live> Of(Kind kind) const {
    std::vector<Live> out;
    for (const auto& [id, l] : live) {
      if (l.kind == kind) out.push_back(l);
    }
    return out;
  }
  // The handler trapping guest address `gpa` (MMIO) and the offset into it.
  std::pair<IoHandler*, uint64_t> TrapAt(uint64_t gpa) const {
    for (const auto& [id, l] : live) {
      if (l.kind == Kind::kMmio && gpa >= l.base && gpa < l.base + l.size) {
        return {l.handler.get(), gpa - l.base};
      }
    }
    return {nullptr, 0};
  }

  Result<RegistrationPtr> MapMemory(uint64_t gpa, uint64_t size, void* host,
                                    std::string name) override {
    DP_RETURN_IF_ERROR(CheckFree(gpa, size, name));
    return Add(Live{Kind::kMemory, gpa, size, host});
  }
  Result<RegistrationPtr> TrapMmio(uint64_t gpa, uint64_t size,
                                   std::shared_ptr<IoHandler> handler,
                                   std::string name) override {
    DP_RETURN_IF_ERROR(CheckFree(gpa, size, name));
    return Add(Live{Kind::kMmio, gpa, size, nullptr, std::move(handler)});
  }
  Result<RegistrationPtr> TrapPio(uint16_t port, uint16_t size,
                                  std::shared_ptr<IoHandler> handler,
                                  std::string) override {
    return Add(Live{Kind::kPio, port, size, nullptr, std::move(handler)});
  }
  Result<std::unique_ptr<MsiRoute>> RouteMsi(int eventfd,
                                             const MsiMessage& m) override {
    if (!ApicAddress(m.address)) {
      return MakeError(ErrorCode::kUnsafe, "not a local APIC address");
    }
    const int id = next_id_++;
    Live l{Kind::kMsi};
    l.message = m;
    l.fd = eventfd;
    live[id] = l;
    return std::unique_ptr<MsiRoute>(new Route(this, id));
  }
  Result<RegistrationPtr> RouteIntx(int trigger_fd, int resample_fd,
                                    uint32_t gsi) override {
    Live l{Kind::kIntx, gsi};
    l.fd = trigger_fd;
    l.resample_fd = resample_fd;
    return Add(l);
  }

 private:
  static bool ApicAddress(uint64_t a) {
    return a >= 0xfee00000 && a < 0xfef00000;
  }

  class Reg : public Registration {
   public:
    Reg(FakePlatform* p, int id) : p_(p), id_(id) {}
    ~Reg() override { p_->live.erase(id_); }

   private:
    FakePlatform* p_;
    int id_;
  };
  class Route : public MsiRoute {
   public:
    Route(FakePlatform* p, int id) : p_(p), id_(id) {}
    ~Route() override { p_->live.erase(id_); }
    Status Update(const MsiMessage& m) override {
      if (!ApicAddress(m.address)) {
        return MakeError(ErrorCode::kUnsafe, "not a local APIC address");
      }
      p_->live[id_].message = m;
      return Ok();
    }

   private:
    FakePlatform* p_;
    int id_;
  };

  Status CheckFree(uint64_t gpa, uint64_t size, const std::string& name) {
    if (gpa < ram_end) {
      return MakeError(ErrorCode::kConflict,
                       fmt::format("{} would cover guest RAM", name));
    }
    for (const auto& [id, l] : live) {
      if ((l.kind == Kind::kMemory || l.kind == Kind::kMmio) &&
          gpa < l.base + l.size && l.base < gpa + size) {
        return MakeError(ErrorCode::kConflict,
                         fmt::format("{} overlaps another range", name));
      }
    }
    return Ok();
  }
  RegistrationPtr Add(Live l) {
    const int id = next_id_++;
    live[id] = std::move(l);
    return std::make_unique<Reg>(this, id);
  }
  int next_id_ = 1;
};

}  // namespace devpass::pci::testing
