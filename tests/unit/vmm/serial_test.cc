// The 16550A: THR/RBR, LSR, IER/IIR interrupt logic, DLAB divisor, loopback.

#include "vmm/serial.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace devpass::vmm {
namespace {

class SerialTest : public ::testing::Test {
 protected:
  SerialTest()
      : uart([this](uint8_t c) { out.push_back(static_cast<char>(c)); },
             [this](bool level) { irq.push_back(level); }) {}
  uint8_t In(uint64_t reg) {
    uint8_t b;
    uart.Read(reg, std::span(&b, 1));
    return b;
  }
  void Out(uint64_t reg, uint8_t v) {
    uart.Write(reg, std::span<const uint8_t>(&v, 1));
  }

  std::string out;
  std::vector<bool> irq;
  Serial uart;
};

TEST_F(SerialTest, ThrGoesToTheOutputAndLsrSaysEmpty) {
  Out(0, 'h');
  Out(0, 'i');
  EXPECT_EQ(out, "hi");
  EXPECT_EQ(In(5) & (Serial::kLsrThre | Serial::kLsrTemt),
            Serial::kLsrThre | Serial::kLsrTemt);
  EXPECT_EQ(In(5) & Serial::kLsrDr, 0);
  EXPECT_TRUE(irq.empty());  // no interrupt enabled
}

TEST_F(SerialTest, InputWaitsUntilTheGuestHasAReader) {
  // Before the guest's driver enables the received-data interrupt (tty
  // open), input is refused so the caller keeps it: Linux clears the FIFO
  // while starting the port and would drop it.
  const uint8_t in[] = {'a'};
  EXPECT_FALSE(uart.Receive(in));
  EXPECT_EQ(uart.rx_pending(), 0u);
  Out(2, 0x02);  // the driver's start-up FIFO clear
  Out(1, Serial::kIerRdi);
  EXPECT_TRUE(uart.Receive(in));
  EXPECT_EQ(In(0), 'a');
}

TEST_F(SerialTest, ReceivedBytesAreReadFromRbrWithDataReady) {
  Out(1, Serial::kIerRdi);
  const uint8_t in[] = {'a', 'b'};
  ASSERT_TRUE(uart.Receive(in));
  EXPECT_EQ(In(5) & Serial::kLsrDr, Serial::kLsrDr);
  EXPECT_EQ(In(0), 'a');
  EXPECT_EQ(In(0), 'b');
  EXPECT_EQ(In(5) & Serial::kLsrDr, 0);
  EXPECT_EQ(In(0), 0);
}

TEST_F(SerialTest, ReceiveFifoFullRefusesMore) {
  Out(1, Serial::kIerRdi);
  std::vector<uint8_t> many(Serial::kRxFifo, 'x');
  EXPECT_TRUE(uart.Receive(many));
  const uint8_t one = 'y';
  EXPECT_FALSE(uart.Receive(std::span(&one, 1)));
  EXPECT_EQ(uart.rx_pending(), Serial::kRxFifo);
}

TEST_F(SerialTest, ReceiveInterruptRaisedAndLoweredWhenDrained) {
  Out(1, Serial::kIerRdi);
  EXPECT_EQ(In(2) & 0x0f, Serial::kIirNone);
  const uint8_t c = 'z';
  ASSERT_TRUE(uart.Receive(std::span(&c, 1)));
  ASSERT_EQ(irq, (std::vector<bool>{true}));
  EXPECT_EQ(In(2) & 0x0f, Serial::kIirRdi);
  EXPECT_EQ(In(0), 'z');
  EXPECT_EQ(irq, (std::vector<bool>{true, false}));
}

TEST_F(SerialTest, ThreInterruptOnEnableClearedByIirRead) {
  Out(1, Serial::kIerThri);  // THR already empty: interrupt at once
  ASSERT_EQ(irq, (std::vector<bool>{true}));
  EXPECT_EQ(In(2) & 0x0f, Serial::kIirThri);  // reading IIR clears it
  EXPECT_EQ(irq, (std::vector<bool>{true, false}));
  EXPECT_EQ(In(2) & 0x0f, Serial::kIirNone);
  Out(0, 'x');  // THR empties again: another one
  EXPECT_EQ(irq, (std::vector<bool>{true, false, true}));
  Out(1, 0);  // disabling lowers the line
  EXPECT_EQ(irq.back(), false);
}

TEST_F(SerialTest, DescribeStateShowsWhatAStuckGuestWaitsFor) {
  Out(1, Serial::kIerRdi);
  const uint8_t in[] = {'a', 'b'};
  ASSERT_TRUE(uart.Receive(in));
  EXPECT_EQ(uart.DescribeState(),
            "COM1: IER=0x01 IIR=0x04 LSR=0x61 MCR=0x08, 2 bytes unread, "
            "interrupt line high");
  Out(1, Serial::kIerThri);
  EXPECT_EQ(uart.DescribeState(),
            "COM1: IER=0x02 IIR=0x02 LSR=0x61 MCR=0x08, 2 bytes unread, "
            "interrupt line high, "
            "THRE interrupt pending");
}

TEST_F(SerialTest, ReceivedDataHasPriorityOverThre) {
  Out(1, Serial::kIerRdi | Serial::kIerThri);
  const uint8_t c = 'q';
  ASSERT_TRUE(uart.Receive(std::span(&c, 1)));
  EXPECT_EQ(In(2) & 0x0f, Serial::kIirRdi);
}

TEST_F(SerialTest, Out2GatesTheInterruptLine) {
  Out(4, 0);  // OUT2 off
  Out(1, Serial::kIerThri);
  EXPECT_TRUE(irq.empty());
  Out(4, Serial::kMcrOut2);
  EXPECT_EQ(irq, (std::vector<bool>{true}));
}

TEST_F(SerialTest, DlabSelectsTheDivisorLatch) {
  Out(3, Serial::kLcrDlab | 0x03);
  Out(0, 0x01);  // DLL: 115200 baud
  Out(1, 0x00);  // DLM
  EXPECT_EQ(In(0), 0x01);
  EXPECT_EQ(In(1), 0x00);
  EXPECT_TRUE(out.empty());  // not transmitted
  Out(3, 0x03);
  EXPECT_EQ(In(3), 0x03);
  EXPECT_EQ(In(1), 0x00);  // IER untouched
}

TEST_F(SerialTest, LoopbackAndScratch) {
  Out(7, 0x5a);
  EXPECT_EQ(In(7), 0x5a);
  Out(4, Serial::kMcrLoop | 0x0f);
  Out(0, 'L');
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(In(0), 'L');
  EXPECT_EQ(In(6) & 0xf0, 0xf0);  // DCD RI DSR CTS from OUT2 OUT1 DTR RTS
}

}  // namespace
}  // namespace devpass::vmm

#include "vmm/rtc.h"

namespace devpass::vmm {
namespace {

TEST(Rtc, HostTimeInBcdAndNeverUpdating) {
  // 2026-11-25 05:38:09 UTC, a Wednesday.
  Rtc rtc([] { return std::time_t{1795585089}; });
  auto reg = [&](uint8_t i) {
    uint8_t b = i;
    rtc.Write(0, std::span<const uint8_t>(&b, 1));
    rtc.Read(1, std::span(&b, 1));
    return b;
  };
  EXPECT_EQ(reg(0x00), 0x09);
  EXPECT_EQ(reg(0x02), 0x38);
  EXPECT_EQ(reg(0x04), 0x05);
  EXPECT_EQ(reg(0x07), 0x25);
  EXPECT_EQ(reg(0x08), 0x11);
  EXPECT_EQ(reg(0x09), 0x26);
  EXPECT_EQ(reg(0x32), 0x20);
  EXPECT_EQ(reg(0x0a) & 0x80, 0);     // no update in progress
  EXPECT_EQ(reg(0x0d), 0x80);         // valid
  EXPECT_EQ(reg(0x80 | 0x00), 0x09);  // NMI-disable bit ignored
  uint8_t v = 0x42, i = 0x40;
  rtc.Write(0, std::span<const uint8_t>(&i, 1));
  rtc.Write(1, std::span<const uint8_t>(&v, 1));
  EXPECT_EQ(reg(0x40), 0x42);
}

}  // namespace
}  // namespace devpass::vmm
