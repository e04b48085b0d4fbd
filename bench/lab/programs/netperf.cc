// netperf: TCP throughput and round-trip latency between two machines, for the
// devpass benchmark harness (bench/lab). It stands in for iperf/netperf, which
// neither the lab host nor the busybox guests have: one static binary, libc
// only, copied to each side.
//
//   netperf serve [--port P] [--once N]
//   netperf client HOST [--port P] --label WAY [--runs R] [--mib M] [--rr K]
//   [--only tx|rx|rr]
//
// serve listens on 0.0.0.0:P (default 5201) and serves each connection on
// its own thread, forever, or for N connections with --once N. The first byte a
// client sends picks the test:
//   'T'  client transmits: the server discards until EOF, then answers with
//        the number of bytes it got (8 bytes, little-endian) and closes.
//   'R'  client receives: it sends a count N (8 bytes, little-endian); the
//        server writes N bytes and closes.
//   'P'  ping-pong: the server echoes every byte at once, until EOF.
// client does R runs (default 3); each does, in this order, tx (M MiB to the
// server, default 4), rx (M MiB from it) and rr (K one-byte round trips,
// default 200, the first 10 of them warm-up); --only keeps one. HOST is an IPv4
// address: a static glibc binary has no resolver in a busybox guest
// (getaddrinfo wants NSS's shared libraries).
//
// stdout, flushed line by line (MB = 10^6 bytes):
//   BENCH net.tx <way> <MB/s>   first byte sent to the server's count received
//   BENCH net.rx <way> <MB/s>   request sent to EOF
//   BENCH net.rtt <way> <us>    median round trip of the run
// plus progress lines starting with two spaces. Errors: one line on stderr,
// exit 1; usage errors exit 2.
#include <arpa/inet.h>
#include <endian.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "number_arg.h"

namespace {

using Clock = std::chrono::steady_clock;

// A dead peer (crashed guest, lost link) must fail the run, not hang the
// harness: every blocking socket call gives up after this.
constexpr int kIoTimeoutSec = 60;
// The server may still be starting (its guest booting) when the client runs.
constexpr auto kConnectWindow = std::chrono::seconds(30);
constexpr auto kConnectRetry = std::chrono::milliseconds(500);
constexpr size_t kChunk = 256 * 1024;  // bytes per send/recv call
constexpr uint64_t kWarmup = 10;       // rr round trips not counted
constexpr ssize_t kCountLen =
    8;  // the byte counts of 'T' and 'R', little-endian

// strerror(ERR), except that an expired SO_RCVTIMEO/SO_SNDTIMEO (EAGAIN) says
// so: "Resource temporarily unavailable" would hide that the peer went silent.
std::string Why(int err = errno) {
  if (err == EAGAIN)
    return "timed out after " + std::to_string(kIoTimeoutSec) + " s";
  return std::strerror(err);
}

[[noreturn]] void Fail(const std::string& what) {
  std::fflush(stdout);
  std::fprintf(stderr, "netperf: %s\n", what.c_str());
  std::exit(1);
}

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// Owns a descriptor: closes it at the end of the scope.
struct Fd {
  explicit Fd(int fd_in) : fd(fd_in) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
  const int fd;
};

sockaddr_in Ipv4(in_addr_t ip, uint64_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = ip;
  return addr;
}

// Sends LEN bytes; false with errno set. MSG_NOSIGNAL: a peer that went away
// must give EPIPE, not kill us with SIGPIPE.
bool SendAll(int fd, const void* buf, size_t len) {
  for (const char* p = static_cast<const char*>(buf); len > 0;) {
    const ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

// Sends TOTAL bytes, BUF's content over and over; false with errno set.
bool SendBytes(int fd, uint64_t total, const std::vector<char>& buf) {
  for (uint64_t left = total; left > 0;) {
    const size_t len =
        static_cast<size_t>(std::min<uint64_t>(left, buf.size()));
    if (!SendAll(fd, buf.data(), len)) return false;
    left -= len;
  }
  return true;
}

// Receives LEN bytes, fewer only at EOF (or a timeout): how many, or -1 with
// errno set. No signal handlers here, so MSG_WAITALL is not cut short by EINTR.
ssize_t RecvFull(int fd, void* buf, size_t len) {
  return recv(fd, buf, len, MSG_WAITALL);
}

// Receives until EOF, counting into *GOT; discards it all, or with ECHO sends
// it straight back. False with errno set.
bool RecvToEof(int fd, std::vector<char>& buf, uint64_t* got,
               bool echo = false) {
  for (;;) {
    const ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n == 0;
    if (echo && !SendAll(fd, buf.data(), static_cast<size_t>(n))) return false;
    *got += static_cast<uint64_t>(n);
  }
}

bool SetIoTimeouts(int fd) {
  const timeval tv{kIoTimeoutSec, 0};
  return setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0 &&
         setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == 0;
}

// Without it, Nagle holds a small message back while an earlier one is unACKed,
// and a delayed ACK can take 40 ms: rr would time that timer, not the path.
bool SetNoDelay(int fd) {
  const int one = 1;
  return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0;
}

struct Options {
  std::string mode, host, label, only;
  uint64_t port = 5201, once = 0, runs = 3, mib = 4, rr = 200;
};

[[noreturn]] void Usage(const std::string& why) {
  std::fprintf(stderr,
               "netperf: %s\nusage: netperf serve [--port P] [--once N]\n"
               "       netperf client HOST [--port P] --label WAY [--runs R] "
               "[--mib M] [--rr K] "
               "[--only tx|rx|rr]\n",
               why.c_str());
  std::exit(2);
}

Options ParseArgs(int argc, char** argv) {
  Options o;
  if (argc > 1) o.mode = argv[1];
  if (o.mode != "serve" && o.mode != "client")
    Usage("the mode is serve or client");
  const bool client = o.mode == "client";
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0) {
      if (!client || !o.host.empty()) Usage("unexpected argument " + arg);
      o.host = arg;
      continue;
    }
    if (i + 1 >= argc) Usage(arg + " wants a value");
    const char* value = argv[++i];
    if (arg == "--port") {
      o.port = devpass::bench::NumberArg(arg, value, 1, 65535, Usage);
    } else if (arg == "--once" && !client) {
      o.once = devpass::bench::NumberArg(arg, value, 1, UINT32_MAX, Usage);
    } else if (arg == "--label" && client) {
      o.label = value;
    } else if (arg == "--runs" && client) {
      o.runs = devpass::bench::NumberArg(arg, value, 1, 10000, Usage);
    } else if (arg == "--mib" && client) {
      o.mib = devpass::bench::NumberArg(arg, value, 1, 1 << 20, Usage);
    } else if (arg == "--rr" && client) {
      o.rr =
          devpass::bench::NumberArg(arg, value, kWarmup + 1, 100000000, Usage);
    } else if (arg == "--only" && client) {
      o.only = value;
      if (o.only != "tx" && o.only != "rx" && o.only != "rr")
        Usage("--only wants tx, rx or rr");
    } else {
      Usage("no option " + arg + " for " + o.mode);
    }
  }
  if (client && o.host.empty()) Usage("client wants a HOST");
  // The harness splits BENCH lines on whitespace.
  if (client && (o.label.empty() ||
                 o.label.find_first_of(" \t\n") != std::string::npos)) {
    Usage("client wants --label WAY (one word)");
  }
  return o;
}

// One connection of serve. Returns what failed, or "" with *DONE saying what it
// did.
std::string ServeConnection(int fd, std::vector<char>& buf, std::string* done) {
  char test = 0;
  ssize_t n = RecvFull(fd, &test, 1);
  if (n != 1)
    return n < 0 ? "recv test byte: " + Why() : "closed before the test byte";
  uint64_t bytes = 0, le = 0;
  if (test == 'T') {
    if (!RecvToEof(fd, buf, &bytes)) return "recv: " + Why();
    le = htole64(bytes);
    if (!SendAll(fd, &le, sizeof(le))) return "send byte count: " + Why();
    *done = "T, received " + std::to_string(bytes) + " bytes";
  } else if (test == 'R') {
    n = RecvFull(fd, &le, sizeof(le));
    if (n != kCountLen)
      return n < 0 ? "recv byte count: " + Why() : "closed before the count";
    bytes = le64toh(le);
    if (!SendBytes(fd, bytes, buf)) return "send: " + Why();
    *done = "R, sent " + std::to_string(bytes) + " bytes";
  } else if (test == 'P') {
    if (!SetNoDelay(fd)) return "setsockopt TCP_NODELAY: " + Why();
    if (!RecvToEof(fd, buf, &bytes, /*echo=*/true)) return "echo: " + Why();
    *done = "P, echoed " + std::to_string(bytes) + " bytes";
  } else {
    return "unknown test byte " +
           std::to_string(static_cast<unsigned char>(test));
  }
  return "";
}

int Serve(const Options& o) {
  const std::string where = "0.0.0.0:" + std::to_string(o.port);
  Fd listener(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (listener.fd < 0) Fail("socket: " + Why());
  // A server restarted between two ways must not wait out the previous one's
  // TIME_WAITs.
  const int one = 1;
  if (setsockopt(listener.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) !=
      0) {
    Fail("setsockopt SO_REUSEADDR: " + Why());
  }
  sockaddr_in addr = Ipv4(htonl(INADDR_ANY), o.port);
  if (bind(listener.fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) !=
      0) {
    Fail("bind " + where + ": " + Why());
  }
  if (listen(listener.fd, 8) != 0) Fail("listen on " + where + ": " + Why());
  std::printf("  listening on %s\n", where.c_str());
  // One thread per connection: a connection left open by a client whose
  // guest powered off would otherwise hold up the next way's client until
  // its 60 s receive timeout (seen when guests alternate in one lab boot).
  struct Finished {
    std::mutex mu;
    std::condition_variable cv;
    uint64_t count = 0;
  };
  auto finished = std::make_shared<Finished>();
  uint64_t accepted = 0;
  while (o.once == 0 || accepted < o.once) {
    sockaddr_in peer{};
    socklen_t peer_len = sizeof(peer);
    const int fd = accept4(listener.fd, reinterpret_cast<sockaddr*>(&peer),
                           &peer_len, SOCK_CLOEXEC);
    if (fd < 0 && (errno == EINTR || errno == ECONNABORTED)) continue;
    if (fd < 0) Fail("accept on " + where + ": " + Why());
    const uint64_t number = ++accepted;
    char ip[INET_ADDRSTRLEN] = "?";
    inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof(ip));
    std::thread([fd, number, from = std::string(ip), finished] {
      Fd conn(fd);
      std::vector<char> buf(kChunk, 'x');
      // Timeouts too: a client that dies mid-test must not keep a thread.
      std::string done;
      const std::string error = SetIoTimeouts(conn.fd)
                                    ? ServeConnection(conn.fd, buf, &done)
                                    : "setsockopt SO_RCVTIMEO: " + Why();
      // Not fatal: the next client (the next way) still wants a server.
      if (!error.empty()) {
        std::fprintf(stderr, "netperf: serve: connection from %s: %s\n",
                     from.c_str(), error.c_str());
      } else {
        std::printf("  connection %llu from %s: %s\n",
                    static_cast<unsigned long long>(number), from.c_str(),
                    done.c_str());
        std::fflush(stdout);
      }
      std::lock_guard lock(finished->mu);
      ++finished->count;
      finished->cv.notify_all();
    }).detach();
  }
  // --once N: exit once the N connections are served.
  std::unique_lock lock(finished->mu);
  finished->cv.wait(lock, [&] { return finished->count >= accepted; });
  return 0;
}

// Connects, retrying every 0.5 s for up to 30 s. A try waits at most until the
// end of that window: a host that drops SYNs would otherwise hold us for the
// kernel's 2 min of retries.
int Connect(const Options& o, const sockaddr_in& addr) {
  const auto deadline = Clock::now() + kConnectWindow;
  for (int tries = 1;; ++tries) {
    const int fd =
        socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) Fail("socket: " + Why());
    int err = 0;
    if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) !=
        0)
      err = errno;
    if (err == EINPROGRESS) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                            deadline - Clock::now())
                            .count();
      pollfd p{fd, POLLOUT, 0};
      const int ready =
          poll(&p, 1, static_cast<int>(std::max<int64_t>(1, left)));
      socklen_t len = sizeof(err);
      if (ready <= 0) {
        err = ready == 0 ? ETIMEDOUT : errno;
      } else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
        err = errno;
      }
    }
    // Blocking from here on; the timeouts guard against a peer that dies.
    if (err == 0 && fcntl(fd, F_SETFL, 0) == 0 && SetIoTimeouts(fd)) {
      return fd;
    }
    if (err == 0) Fail("fcntl/setsockopt: " + Why());
    close(fd);
    if (Clock::now() + kConnectRetry >= deadline) {
      Fail("connect to " + o.host + ":" + std::to_string(o.port) + ": " +
           Why(err) + " (gave up after " + std::to_string(tries) +
           " tries in 30 s)");
    }
    std::this_thread::sleep_for(kConnectRetry);
  }
}

// Prints the progress line of a transfer; its MB/s.
double Rate(const std::string& what, uint64_t bytes, double secs) {
  std::printf("  %s: %llu bytes in %.3f s\n", what.c_str(),
              static_cast<unsigned long long>(bytes), secs);
  return static_cast<double>(bytes) / secs / 1e6;
}

// MB/s of M MiB sent to the server, up to its count of them.
double RunTx(const Options& o, const sockaddr_in& addr, const std::string& what,
             const std::vector<char>& buf) {
  const uint64_t bytes = o.mib << 20;
  Fd fd(Connect(o, addr));
  const auto start = Clock::now();
  if (!SendAll(fd.fd, "T", 1) || !SendBytes(fd.fd, bytes, buf)) {
    Fail(what + ": send: " + Why());
  }
  // EOF tells the server we are done; its count tells us that everything
  // arrived.
  if (shutdown(fd.fd, SHUT_WR) != 0) Fail(what + ": shutdown: " + Why());
  uint64_t le = 0;
  const ssize_t n = RecvFull(fd.fd, &le, sizeof(le));
  const double secs = Seconds(Clock::now() - start);
  if (n < 0) Fail(what + ": recv byte count: " + Why());
  if (n != kCountLen) Fail(what + ": the server closed without its byte count");
  if (le64toh(le) != bytes) {
    Fail(what + ": the server counted " + std::to_string(le64toh(le)) +
         " bytes, " + std::to_string(bytes) + " were sent");
  }
  return Rate(what, bytes, secs);
}

// MB/s of M MiB received from the server.
double RunRx(const Options& o, const sockaddr_in& addr, const std::string& what,
             std::vector<char>& buf) {
  const uint64_t bytes = o.mib << 20;
  Fd fd(Connect(o, addr));
  char request[9] = {'R'};
  const uint64_t le = htole64(bytes);
  std::memcpy(request + 1, &le, sizeof(le));
  const auto start = Clock::now();
  if (!SendAll(fd.fd, request, sizeof(request)))
    Fail(what + ": send request: " + Why());
  uint64_t got = 0;
  if (!RecvToEof(fd.fd, buf, &got)) {
    Fail(what + ": recv after " + std::to_string(got) + " bytes: " + Why());
  }
  const double secs = Seconds(Clock::now() - start);
  if (got != bytes) {
    Fail(what + ": received " + std::to_string(got) + " of " +
         std::to_string(bytes) + " bytes");
  }
  return Rate(what, bytes, secs);
}

// Median of K - 10 one-byte round trips, in microseconds.
double RunRr(const Options& o, const sockaddr_in& addr,
             const std::string& what) {
  Fd fd(Connect(o, addr));
  if (!SetNoDelay(fd.fd)) Fail(what + ": setsockopt TCP_NODELAY: " + Why());
  if (!SendAll(fd.fd, "P", 1)) Fail(what + ": send: " + Why());
  std::vector<double> us;
  for (uint64_t i = 0; i < o.rr; ++i) {
    const char ping = static_cast<char>('a' + i % 26);
    char pong = 0;
    const auto start = Clock::now();
    if (!SendAll(fd.fd, &ping, 1)) Fail(what + ": send: " + Why());
    const ssize_t n = RecvFull(fd.fd, &pong, 1);
    const double secs = Seconds(Clock::now() - start);
    if (n < 0) Fail(what + ": recv: " + Why());
    if (n == 0)
      Fail(what + ": the server closed after " + std::to_string(i) +
           " round trips");
    if (pong != ping) Fail(what + ": the server echoed a different byte");
    // The first trips pay for cold caches and paths; ways are compared in
    // steady state.
    if (i >= kWarmup) us.push_back(secs * 1e6);
  }
  std::sort(us.begin(), us.end());
  const size_t mid = us.size() / 2;
  const double median = us.size() % 2 ? us[mid] : (us[mid - 1] + us[mid]) / 2;
  std::printf(
      "  %s: %zu round trips, min %.1f us, median %.1f us, max %.1f us\n",
      what.c_str(), us.size(), us.front(), median, us.back());
  return median;
}

int RunClient(const Options& o) {
  sockaddr_in addr = Ipv4(0, o.port);
  if (inet_pton(AF_INET, o.host.c_str(), &addr.sin_addr) != 1) {
    Usage("HOST must be an IPv4 address, not " + o.host);
  }
  std::vector<char> buf(kChunk, 'x');
  const char* way = o.label.c_str();
  auto wanted = [&o](const char* test) {
    return o.only.empty() || o.only == test;
  };
  for (uint64_t run = 1; run <= o.runs; ++run) {
    const std::string nth = " run " + std::to_string(run);
    if (wanted("tx"))
      std::printf("BENCH net.tx %s %.3f\n", way,
                  RunTx(o, addr, "tx" + nth, buf));
    if (wanted("rx"))
      std::printf("BENCH net.rx %s %.3f\n", way,
                  RunRx(o, addr, "rx" + nth, buf));
    if (wanted("rr"))
      std::printf("BENCH net.rtt %s %.3f\n", way, RunRr(o, addr, "rr" + nth));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // The harness reads our lines through a pipe as they come: flush each one.
  setvbuf(stdout, nullptr, _IOLBF, 0);
  const Options o = ParseArgs(argc, argv);
  return o.mode == "serve" ? Serve(o) : RunClient(o);
}
