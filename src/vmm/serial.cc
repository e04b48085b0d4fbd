#include "vmm/serial.h"

#include <fmt/format.h>

namespace devpass::vmm {

void Serial::Read(uint64_t offset, std::span<uint8_t> data) {
  std::lock_guard lock(mu_);
  // Byte registers; a wider access reads consecutive registers.
  for (size_t i = 0; i < data.size(); ++i) data[i] = ReadReg(offset + i);
  UpdateIrq();
}

void Serial::Write(uint64_t offset, std::span<const uint8_t> data) {
  std::lock_guard lock(mu_);
  for (size_t i = 0; i < data.size(); ++i) WriteReg(offset + i, data[i]);
  UpdateIrq();
}

bool Serial::Receive(std::span<const uint8_t> bytes) {
  std::lock_guard lock(mu_);
  // Input waits (in the caller) until the guest's driver has a reader: it
  // enables the received-data interrupt when a tty is opened, after its
  // start-up FIFO clear that would drop anything delivered earlier.
  if (!(ier_ & kIerRdi)) return false;
  if (rx_.size() + bytes.size() > kRxFifo) return false;
  rx_.insert(rx_.end(), bytes.begin(), bytes.end());
  UpdateIrq();
  return true;
}

size_t Serial::rx_pending() const {
  std::lock_guard lock(mu_);
  return rx_.size();
}

std::string Serial::DescribeState() const {
  std::lock_guard lock(mu_);
  return fmt::format(
      "COM1: IER={:#04x} IIR={:#04x} LSR={:#04x} MCR={:#04x}, {} bytes unread, "
      "interrupt line {}{}",
      ier_, Iir(), Lsr(), mcr_, rx_.size(), irq_level_ ? "high" : "low",
      thr_interrupt_ ? ", THRE interrupt pending" : "");
}

uint8_t Serial::Lsr() const {
  // The transmitter is always empty: bytes leave at once.
  return kLsrThre | kLsrTemt | (rx_.empty() ? 0 : kLsrDr);
}

uint8_t Serial::Iir() const {
  // Priority (datasheet table 4): line status > received data > THRE > modem.
  uint8_t fifo = (fcr_ & 0x01) ? kIirFifo : 0;
  if ((ier_ & kIerRdi) && !rx_.empty()) return fifo | kIirRdi;
  if ((ier_ & kIerThri) && thr_interrupt_) return fifo | kIirThri;
  return fifo | kIirNone;
}

void Serial::UpdateIrq() {
  // OUT2 gates the interrupt onto the ISA line on a PC.
  bool level = !(Iir() & kIirNone) && (mcr_ & kMcrOut2) && !(mcr_ & kMcrLoop);
  if (level != irq_level_) {
    irq_level_ = level;
    if (irq_) irq_(level);
  }
}

uint8_t Serial::ReadReg(uint64_t offset) {
  switch (offset) {
    case 0:
      if (lcr_ & kLcrDlab) return dll_;
      if (rx_.empty()) return 0;
      {
        uint8_t b = rx_.front();
        rx_.pop_front();
        return b;
      }
    case 1:
      return (lcr_ & kLcrDlab) ? dlm_ : ier_;
    case 2: {
      uint8_t iir = Iir();
      // Reading IIR when it reports THRE clears that interrupt (table 4).
      if ((iir & 0x0f) == kIirThri) thr_interrupt_ = false;
      return iir;
    }
    case 3:
      return lcr_;
    case 4:
      return mcr_;
    case 5:
      return Lsr();
    case 6:
      if (mcr_ & kMcrLoop) {
        // Loopback: RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD.
        return static_cast<uint8_t>(
            ((mcr_ & 0x02) << 3) | ((mcr_ & 0x01) << 5) | ((mcr_ & 0x04) << 4) |
            ((mcr_ & 0x08) << 4));
      }
      return msr_;
    case 7:
      return scr_;
    default:
      return 0xff;
  }
}

void Serial::WriteReg(uint64_t offset, uint8_t v) {
  switch (offset) {
    case 0:
      if (lcr_ & kLcrDlab) {
        dll_ = v;
        return;
      }
      if (mcr_ & kMcrLoop) {
        if (rx_.size() < kRxFifo) rx_.push_back(v);
      } else if (out_) {
        out_(v);
      }
      // THR is empty again at once: a THRE interrupt if enabled.
      thr_interrupt_ = true;
      return;
    case 1:
      if (lcr_ & kLcrDlab) {
        dlm_ = v;
        return;
      }
      // Enabling THRE interrupts with THR empty raises one (Linux's
      // UART_BUG_THRE test relies on this).
      if ((v & kIerThri) && !(ier_ & kIerThri)) thr_interrupt_ = true;
      ier_ = v & 0x0f;
      return;
    case 2:
      fcr_ = v;
      if (v & 0x02) rx_.clear();  // clear receive FIFO
      return;
    case 3:
      lcr_ = v;
      return;
    case 4:
      mcr_ = v & 0x1f;
      return;
    case 7:
      scr_ = v;
      return;
    default:
      return;  // LSR, MSR: read-only
  }
}

}  // namespace devpass::vmm
