#include "common/log.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
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

// Lines written by several threads to a pipe reach its reader whole, also
// those longer than the pipe holds, which go out in parts: every line is one
// JSON object. The writers run in a child process whose stderr is the pipe
// (the sink is chosen from stderr on the first line).
TEST(LogTest, ConcurrentLinesStayWholeOnASlowPipe) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
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
    writers.emplace_back([] {
      // Longer than a pipe holds: each goes out in parts.
      for (int i = 0; i < 30; ++i) Info("long", {{"i", i}, {"pad", std::string(100000, 'l')}});
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
    ASSERT_NE(end, std::string::npos) << "the output does not end a line";
    const std::string line = got.substr(start, end - start);
    start = end + 1;
    ++lines;
    // A long line whose reader stalled for about 50 ms in it is cut and
    // ended (and counted as dropped): nothing else may be in it.
    if (CutLongLine(line)) continue;
    ASSERT_TRUE(nlohmann::json::accept(line)) << "line " << lines << " is not whole: " << line.substr(0, 200);
    longs += nlohmann::json::parse(line)["msg"] == "long";
  }
  // Lines may be dropped when the reader falls behind, never mixed.
  EXPECT_GT(lines, 0u);
  EXPECT_GT(longs, 0u);
}

}  // namespace
}  // namespace geoledger::log
