// Structured logs: one JSON object per line on stderr.
//
// Fields are passed explicitly; never pass a secret, a token or personal data.
// Thread-safe, and lines of different threads are never mixed: on a pipe,
// lines up to PIPE_BUF (4 KiB) go out in one write(2) each, which the pipe
// keeps whole, and a longer one while no other line is written; on a
// socket, one line at a time. A line whose reader has not taken all of it
// within 50 ms is cut there, ended, and counted as dropped; one that waits
// for another thread's line more than 1 ms (50 ms for a long one) is
// dropped and counted.
//
// Logging never waits for a reader. When stderr is a pipe or a socket (a log
// shipper, journald) that is not being drained, a line that does not fit is
// dropped and counted (DroppedLines), instead of blocking the thread that
// logs: request threads log, and a stuck reader would otherwise stop the
// service, SIGTERM included. Files and terminals are written as before.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string_view>

namespace geoledger::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

void SetLevel(Level level);
Level GetLevel();
bool ParseLevel(std::string_view name, Level* out);
inline bool Enabled(Level level) { return level >= GetLevel(); }

// Writes {"ts":…,"level":…,"msg":…, …fields} to stderr when `level` is enabled.
void Write(Level level, std::string_view msg, const nlohmann::json& fields = nlohmann::json::object());

// Lines not written whole so far: stderr (a pipe or socket) was full, or a write failed.
uint64_t DroppedLines();

inline void Debug(std::string_view m, const nlohmann::json& f = nlohmann::json::object()) { Write(Level::kDebug, m, f); }
inline void Info(std::string_view m, const nlohmann::json& f = nlohmann::json::object()) { Write(Level::kInfo, m, f); }
inline void Warn(std::string_view m, const nlohmann::json& f = nlohmann::json::object()) { Write(Level::kWarn, m, f); }
inline void Error(std::string_view m, const nlohmann::json& f = nlohmann::json::object()) { Write(Level::kError, m, f); }

}  // namespace geoledger::log
