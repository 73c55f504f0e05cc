#include "common/log.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <ctime>
#include <mutex>
#include <shared_mutex>

namespace geoledger::log {
namespace {

std::atomic<int> g_level{static_cast<int>(Level::kInfo)};

const char* LevelName(Level l) {
  switch (l) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
  }
  return "info";
}

std::atomic<uint64_t> g_dropped{0};

// Where lines go, decided once from what stderr is.
class Sink {
 public:
  Sink() {
    struct stat st {};
    if (::fstat(STDERR_FILENO, &st) != 0) return;
    if (S_ISSOCK(st.st_mode)) {
      kind_ = Kind::kSocket;  // send(2) with MSG_DONTWAIT: non-blocking per call
    } else if (S_ISFIFO(st.st_mode)) {
      // A description of the pipe of our own, so that O_NONBLOCK does not
      // change how anyone else sharing stderr's writes.
      fd_ = ::open("/proc/self/fd/2", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
      if (fd_ >= 0) kind_ = Kind::kPipe;
    }
  }

  // Writes `line` (true when all of it went out), never in the middle of
  // another thread's line. A file or terminal takes each write(2) whole. A
  // pipe does so for writes up to PIPE_BUF: such lines share the lock, and
  // a longer one, which can go out in parts, holds it alone. A stream
  // socket can take any write in parts, so each line holds it alone. A
  // line waits for the lock at most kShortLineWait (up to PIPE_BUF) or
  // kLongLineWait, which only a slow reader makes it reach, and is then
  // dropped, as it would be on the full pipe or socket.
  //
  // A line cut short (its reader stopped taking it) is ended with a newline
  // before the next line goes out; until that newline fits, lines are
  // dropped, so no line ever continues a cut one.
  bool Write(const std::string& line) {
    constexpr auto kShortLineWait = std::chrono::milliseconds(1);
    constexpr auto kLongLineWait = std::chrono::milliseconds(50);
    const bool short_line = line.size() <= PIPE_BUF;
    const auto wait = short_line ? kShortLineWait : kLongLineWait;
    if (kind_ == Kind::kBlocking) return EndCutLine() && Put(line);
    if (kind_ == Kind::kPipe && short_line && !cut_.load(std::memory_order_acquire)) {
      std::shared_lock<std::shared_timed_mutex> lock(order_, wait);
      if (!lock.owns_lock()) return false;
      // Whole or not at all (PIPE_BUF), so it cannot leave a cut line.
      if (!cut_.load(std::memory_order_acquire)) return Put(line);
    }
    std::unique_lock<std::shared_timed_mutex> lock(order_, wait);
    return lock.owns_lock() && EndCutLine() && Put(line);
  }

 private:
  enum class Kind { kBlocking, kSocket, kPipe };

  // True when the whole line went out.
  bool Put(const std::string& line) {
    size_t off = 0;
    // A line can go out in parts (a long one on a pipe, any on a socket);
    // the rest waits for room, for at most kCutAfter in all, so that lines
    // are not torn by a reader that is merely slow.
    constexpr auto kCutAfter = std::chrono::milliseconds(50);
    std::chrono::steady_clock::time_point cut_at{};
    while (off < line.size()) {
      ssize_t n = Send(line.data() + off, line.size() - off);
      if (n > 0) {
        off += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && off > 0) {
        const auto now = std::chrono::steady_clock::now();
        if (cut_at == std::chrono::steady_clock::time_point{}) cut_at = now + kCutAfter;
        pollfd p{kind_ == Kind::kPipe ? fd_ : STDERR_FILENO, POLLOUT, 0};
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(cut_at - now).count();
        if (left > 0 && ::poll(&p, 1, static_cast<int>(left)) > 0) continue;
      }
      // Part of the line went out: end it, so the next line starts on a
      // line of its own (now, or before the next line; the cut line counts
      // as dropped).
      if (off > 0 && Send("\n", 1) != 1) cut_.store(true, std::memory_order_release);
      return false;
    }
    return true;
  }

  // Ends a cut line, if one is waiting for its newline. False when it is
  // still waiting.
  bool EndCutLine() {
    if (!cut_.load(std::memory_order_acquire)) return true;
    if (Send("\n", 1) != 1) return false;
    cut_.store(false, std::memory_order_release);
    return true;
  }

  ssize_t Send(const char* data, size_t size) {
    switch (kind_) {
      case Kind::kSocket: return ::send(STDERR_FILENO, data, size, MSG_DONTWAIT | MSG_NOSIGNAL);
      case Kind::kPipe: return ::write(fd_, data, size);
      case Kind::kBlocking: break;
    }
    return ::write(STDERR_FILENO, data, size);
  }
  Kind kind_ = Kind::kBlocking;
  int fd_ = -1;
  std::shared_timed_mutex order_;  // see Write
  std::atomic<bool> cut_{false};   // a cut line's newline has not gone out
};

Sink& TheSink() {
  static Sink* sink = new Sink();  // never destroyed: lines may be written during exit
  return *sink;
}

std::string Timestamp() {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[80];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

}  // namespace

void SetLevel(Level level) { g_level.store(static_cast<int>(level)); }
Level GetLevel() { return static_cast<Level>(g_level.load(std::memory_order_relaxed)); }

bool ParseLevel(std::string_view name, Level* out) {
  if (name == "debug") *out = Level::kDebug;
  else if (name == "info") *out = Level::kInfo;
  else if (name == "warn") *out = Level::kWarn;
  else if (name == "error") *out = Level::kError;
  else return false;
  return true;
}

void Write(Level level, std::string_view msg, const nlohmann::json& fields) {
  if (!Enabled(level)) return;
  nlohmann::json line = nlohmann::json::object();
  line["ts"] = Timestamp();
  line["level"] = LevelName(level);
  line["msg"] = msg;
  if (fields.is_object())
    for (auto it = fields.begin(); it != fields.end(); ++it) line[it.key()] = it.value();
  std::string out = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  out.push_back('\n');
  if (!TheSink().Write(out)) g_dropped.fetch_add(1, std::memory_order_relaxed);
}

uint64_t DroppedLines() { return g_dropped.load(std::memory_order_relaxed); }

}  // namespace geoledger::log
