#pragma once

// A 16550A UART (National Semiconductor PC16550D datasheet) as COM1: what
// the guest writes to THR goes to an output callback (the terminal); bytes
// pushed with Receive() are read from RBR. The interrupt line follows the
// IIR: raised while an enabled interrupt is pending, lowered when none is
// (level semantics; the IOAPIC pin is edge-triggered per the MP table, so
// every rise is one interrupt).
//
// Registers (offset from the base port; DLAB = LCR bit 7):
//   0 RBR (read) / THR (write) / DLL (DLAB)   1 IER / DLM (DLAB)
//   2 IIR (read) / FCR (write)                3 LCR   4 MCR   5 LSR
//   6 MSR                                     7 SCR
// No FIFO timing and no baud rate: bytes move instantly. Loopback (MCR bit
// 4) is honoured because Linux's autoconfig uses it to find the UART.

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <span>
#include <string>

#include "pci/address_space.h"

namespace devpass::vmm {

class Serial : public pci::IoHandler {
 public:
  using Output = std::function<void(uint8_t)>;
  using IrqLine = std::function<void(bool level)>;

  Serial(Output out, IrqLine irq)
      : out_(std::move(out)), irq_(std::move(irq)) {}

  void Read(uint64_t offset, std::span<uint8_t> data) override;
  void Write(uint64_t offset, std::span<const uint8_t> data) override;

  // Bytes from the terminal; returns false (nothing taken) when the receive
  // FIFO is full or the guest has not enabled the received-data interrupt
  // yet (no reader), so the caller keeps them and retries later.
  bool Receive(std::span<const uint8_t> bytes);
  size_t rx_pending() const;

  // "COM1: IER=0x05 IIR=0xc1 LSR=0x60 MCR=0x0b, 0 bytes unread, interrupt
  // line low": for the report of a guest stopped from the host (a guest
  // waiting for a UART interrupt that never comes shows it here).
  std::string DescribeState() const;

  static constexpr size_t kRxFifo = 64;

  // Register offsets and bits (datasheet table 2).
  static constexpr uint8_t kIerRdi = 0x01, kIerThri = 0x02, kIerRlsi = 0x04,
                           kIerMsi = 0x08;
  static constexpr uint8_t kIirNone = 0x01, kIirThri = 0x02, kIirRdi = 0x04,
                           kIirFifo = 0xc0;
  static constexpr uint8_t kLcrDlab = 0x80;
  static constexpr uint8_t kMcrLoop = 0x10, kMcrOut2 = 0x08;
  static constexpr uint8_t kLsrDr = 0x01, kLsrThre = 0x20, kLsrTemt = 0x40;

 private:
  uint8_t ReadReg(uint64_t offset);           // mu_ held
  void WriteReg(uint64_t offset, uint8_t v);  // mu_ held
  uint8_t Iir() const;                        // mu_ held
  uint8_t Lsr() const;                        // mu_ held
  void UpdateIrq();                           // mu_ held

  Output out_;
  IrqLine irq_;
  mutable std::mutex mu_;
  std::deque<uint8_t> rx_;
  uint8_t ier_ = 0, lcr_ = 0x03, mcr_ = kMcrOut2, scr_ = 0, fcr_ = 0;
  uint8_t dll_ = 0x0c, dlm_ = 0;  // 9600 baud after reset
  uint8_t msr_ = 0xb0;            // DCD, DSR, CTS asserted
  bool thr_interrupt_ = false;  // THRE interrupt pending (cleared by IIR read)
  bool irq_level_ = false;
};

}  // namespace devpass::vmm
