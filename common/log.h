// Structured logs: one JSON object per line on stderr.
//
// Fields are passed explicitly; never pass a secret, a token or personal data.
// Thread-safe: each line is written with a single write(2).
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

namespace geoledger::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

void SetLevel(Level level);
Level GetLevel();
bool ParseLevel(std::string_view name, Level* out);
inline bool Enabled(Level level) { return level >= GetLevel(); }

// Writes {"ts":…,"level":…,"msg":…, …fields} to stderr when `level` is enabled.
void Write(Level level, std::string_view msg, const nlohmann::json& fields = nlohmann::json::object());

inline void Debug(std::string_view m, const nlohmann::json& f = nlohmann::json::object()) { Write(Level::kDebug, m, f); }
inline void Info(std::string_view m, const nlohmann::json& f = nlohmann::json::object()) { Write(Level::kInfo, m, f); }
inline void Warn(std::string_view m, const nlohmann::json& f = nlohmann::json::object()) { Write(Level::kWarn, m, f); }
inline void Error(std::string_view m, const nlohmann::json& f = nlohmann::json::object()) { Write(Level::kError, m, f); }

}  // namespace geoledger::log
