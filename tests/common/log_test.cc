#include "common/log.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace geoledger::log {
namespace {

// Whether `line` is the start of one of the test's long lines and nothing
// else: {"i":<n>,"level":"info","msg":"long","pad":"lll…
bool CutLongLine(const std::string& line) {
  static const std::string kHead = "{\"i\":";
  static const std::string kRest = ",\"level\":\"info\",\"msg\":\"long\",\"pad\":\"";
  if (line.compare(0, kHead.size(), kHead) != 0) return false;
  size_t at = kHead.size();
  while (at < line.size() && std::isdigit(static_cast<unsigned char>(line[at]))) ++at;
  if (at == kHead.size() || line.compare(at, kRest.size(), kRest) != 0) return false;
  return std::all_of(line.begin() + static_cast<std::ptrdiff_t>(at + kRest.size()), line.end(),
                     [](char c) { return c == 'l'; });
}

// Lines written by several threads reach the reader of stderr whole, also
// those longer than the pipe or the socket holds, which go out in parts:
// every line is one JSON object. The writers run in a child process whose
// stderr is `fds[1]` (the sink is chosen from stderr on the first line).
// `longs`: the long lines, whole or cut, that reached the reader.
void ExpectWholeLines(int fds[2], size_t long_line, size_t* longs_seen) {
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::dup2(fds[1], STDERR_FILENO);
    ::close(fds[0]);
    ::close(fds[1]);
    std::vector<std::thread> writers;
    for (int t = 0; t < 3; ++t)
      writers.emplace_back([t] {
        for (int i = 0; i < 1500; ++i) Info("short", {{"writer", t}, {"i", i}, {"pad", std::string(100, 's')}});
      });
    writers.emplace_back([long_line] {
      for (int i = 0; i < 30; ++i) Info("long", {{"i", i}, {"pad", std::string(long_line, 'l')}});
    });
    for (auto& w : writers) w.join();
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string got;
  char buf[65536];
  while (true) {
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

  size_t lines = 0, longs = 0, start = 0;
  while (start < got.size()) {
    size_t end = got.find('\n', start);
    // Only a cut line, whose newline had not gone out at exit, may be left
    // without one.
    if (end == std::string::npos) end = got.size();
    if (end == got.size()) {
      ASSERT_TRUE(CutLongLine(got.substr(start))) << "the output does not end a line";
    }
    const std::string line = got.substr(start, end - start);
    start = end + 1;
    ++lines;
    // A long line whose reader stalled for about 50 ms in it is cut and
    // ended (and counted as dropped): nothing else may be in it.
    if (CutLongLine(line)) {
      ++longs;
      continue;
    }
    ASSERT_TRUE(nlohmann::json::accept(line)) << "line " << lines << " is not whole (" << line.size() << " bytes): " << line.substr(0, 80) << " ... " << line.substr(line.size() > 300 ? line.size() - 300 : 0);
    longs += nlohmann::json::parse(line)["msg"] == "long";
  }
  // Lines may be dropped or cut when the reader falls behind, never mixed.
  EXPECT_GT(lines, 0u);
  *longs_seen = longs;
}

// Runs ExpectWholeLines on fresh descriptors from `make` until long lines
// reached the reader (a loaded machine can drop them all in one run: a
// line that finds no room at all is dropped at once).
void ExpectWholeLinesWithLongOnes(const std::function<void(int fds[2])>& make, size_t long_line) {
  size_t longs = 0;
  for (int attempt = 0; attempt < 10 && longs == 0; ++attempt) {
    int fds[2];
    ASSERT_NO_FATAL_FAILURE(make(fds));
    ASSERT_NO_FATAL_FAILURE(ExpectWholeLines(fds, long_line, &longs));
  }
  EXPECT_GT(longs, 0u) << "in ten runs, no long line, whole or cut, reached the reader";
}

TEST(LogTest, ConcurrentLinesStayWholeOnAPipe) {
  // More than the pipe holds: each goes out in parts.
  ExpectWholeLinesWithLongOnes([](int fds[2]) { ASSERT_EQ(::pipe(fds), 0); }, 100000);
}

// A stream socket (journald's) may take any line in parts; a small send
// buffer makes that frequent.
TEST(LogTest, ConcurrentLinesStayWholeOnAStreamSocket) {
  ExpectWholeLinesWithLongOnes(
      [](int fds[2]) {
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
        const int size = 4096;
        ASSERT_EQ(::setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &size, sizeof size), 0);
      },
      20000);
}

}  // namespace
}  // namespace geoledger::log
