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

  // True when the whole line went out.
  bool Put(const std::string& line) {
    size_t off = 0;
    // A line longer than the pipe's atomic size can go out in parts; the
    // rest gets a short, bounded wait so that lines are not torn.
    for (int waits = 0; off < line.size();) {
      ssize_t n = Send(line.data() + off, line.size() - off);
      if (n > 0) {
        off += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && off > 0 && waits++ < 10) {
        pollfd p{kind_ == Kind::kPipe ? fd_ : STDERR_FILENO, POLLOUT, 0};
        (void)::poll(&p, 1, 5);
        continue;
      }
      // Part of the line went out: end it, so the next line starts on a
      // line of its own (best effort; the torn line counts as dropped).
      if (off > 0) (void)Send("\n", 1);
      return false;
    }
    return true;
  }

 private:
  enum class Kind { kBlocking, kSocket, kPipe };
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
};

Sink& TheSink() {
  static Sink* sink = new Sink();  // never destroyed: lines may be written during exit
  return *sink;
}

// Lines up to PIPE_BUF bytes go out in one write(2) each and stay whole
// beside each other, so they share this lock; a longer one can go out in
// parts, so it holds the lock alone until it is out (or cut). A short line
// waits at most kShortLineWait for a long one, which only a slow reader
// makes take long: then it is dropped, as it would be on the full pipe.
std::shared_timed_mutex& LineOrder() {
  static auto* order = new std::shared_timed_mutex();  // never destroyed, as the sink
  return *order;
}
constexpr auto kShortLineWait = std::chrono::milliseconds(1);

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
  bool whole = false;
  if (out.size() <= PIPE_BUF) {
    std::shared_lock<std::shared_timed_mutex> lock(LineOrder(), kShortLineWait);
    whole = lock.owns_lock() && TheSink().Put(out);
  } else {
    std::unique_lock<std::shared_timed_mutex> lock(LineOrder());
    whole = TheSink().Put(out);
  }
  if (!whole) g_dropped.fetch_add(1, std::memory_order_relaxed);
}

uint64_t DroppedLines() { return g_dropped.load(std::memory_order_relaxed); }

}  // namespace geoledger::log
