#include "server/config.h"

#include <yaml-cpp/yaml.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <functional>
#include <map>
#include <optional>
#include <thread>

namespace geoledger::server {
namespace {

using Setter = std::function<Status(ServerConfig&, const std::string&)>;

struct OptionSpec {
  std::string name;  // flag name without dashes; YAML key is the same with '_'
  std::string help;
  std::string default_text;
  Setter set;
  bool is_flag = false;
};

StatusOr<int64_t> ParseInt(const std::string& name, const std::string& v, int64_t lo, int64_t hi) {
  int64_t out = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || p != v.data() + v.size() || out < lo || out > hi)
    return InvalidArgument(name + ": expected an integer in [" + std::to_string(lo) + ", " +
                           std::to_string(hi) + "], got '" + v + "'");
  return out;
}

StatusOr<double> ParseRate(const std::string& name, const std::string& v) {
  try {
    size_t used = 0;
    double d = std::stod(v, &used);
    // Written so that NaN, which compares false with everything, fails too.
    if (used != v.size() || !(d >= 0 && d <= 1e9)) throw std::invalid_argument(v);
    return d;
  } catch (const std::exception&) {
    return InvalidArgument(name + ": expected a number >= 0, got '" + v + "'");
  }
}

StatusOr<bool> ParseBool(const std::string& name, const std::string& v) {
  if (v == "true" || v == "1" || v == "yes" || v == "on") return true;
  if (v == "false" || v == "0" || v == "no" || v == "off") return false;
  return InvalidArgument(name + ": expected true or false, got '" + v + "'");
}

Setter Millis(std::chrono::milliseconds ServerConfig::*field, int64_t lo, int64_t hi) {
  return [=](ServerConfig& c, const std::string& v) -> Status {
    auto n = ParseInt("duration", v, lo, hi);
    if (!n.ok()) return n.status();
    c.*field = std::chrono::milliseconds(*n);
    return Status::Ok();
  };
}

// A count in [lo, hi]; errors name it `name`.
Setter Count(size_t ServerConfig::*field, const char* name, int64_t lo, int64_t hi) {
  return [=](ServerConfig& c, const std::string& v) -> Status {
    auto n = ParseInt(name, v, lo, hi);
    if (!n.ok()) return n.status();
    c.*field = static_cast<size_t>(*n);
    return Status::Ok();
  };
}

Setter Bytes(size_t ServerConfig::*field, int64_t lo, int64_t hi) { return Count(field, "size", lo, hi); }

Setter Rate(double ServerConfig::*field) {
  return [=](ServerConfig& c, const std::string& v) -> Status {
    auto d = ParseRate("rate", v);
    if (!d.ok()) return d.status();
    c.*field = *d;
    return Status::Ok();
  };
}

Setter Flag(bool ServerConfig::*field, const char* name) {
  return [=](ServerConfig& c, const std::string& v) -> Status {
    auto b = ParseBool(name, v);
    if (!b.ok()) return b.status();
    c.*field = *b;
    return Status::Ok();
  };
}

Setter Text(std::string ServerConfig::*field) {
  return [=](ServerConfig& c, const std::string& v) -> Status {
    c.*field = v;
    return Status::Ok();
  };
}

Status SetListen(ServerConfig& c, const std::string& v) {
  auto colon = v.rfind(':');
  if (colon == std::string::npos || colon == 0)
    return InvalidArgument("listen: expected HOST:PORT, got '" + v + "'");
  auto port = ParseInt("listen port", v.substr(colon + 1), 0, 65535);
  if (!port.ok()) return port.status();
  c.listen_host = v.substr(0, colon);
  c.listen_port = static_cast<uint16_t>(*port);
  return Status::Ok();
}

const std::vector<OptionSpec>& Specs() {
  static const std::vector<OptionSpec> specs = {
      {"data-dir", "Directory for the RocksDB store, keys and admin token (required)", "", Text(&ServerConfig::data_dir)},
      {"listen", "Address to listen on, HOST:PORT (port 0 picks a free one)", "127.0.0.1:8080", SetListen},
      {"region", "This instance's region id, e.g. eu-west-1 (required)", "", Text(&ServerConfig::region)},
      {"dev", "Development mode: generate missing keys under DATA_DIR/keys on first start", "false",
       Flag(&ServerConfig::dev, "dev"), true},
      {"threads", "HTTP worker threads (0: one per core)", "0",
       [](ServerConfig& c, const std::string& v) -> Status {
         auto n = ParseInt("threads", v, 0, 256);
         if (!n.ok()) return n.status();
         c.threads = static_cast<int>(*n);
         return Status::Ok();
       }},
      {"log-level", "debug, info, warn or error", "info",
       [](ServerConfig& c, const std::string& v) -> Status {
         if (v != "debug" && v != "info" && v != "warn" && v != "error")
           return InvalidArgument("log-level: expected debug, info, warn or error");
         c.log_level = v;
         return Status::Ok();
       }},
      {"access-log", "Log one line per request (true/false)", "true",
       Flag(&ServerConfig::access_log, "access-log")},
      {"audit-verify-on-start",
       "Before becoming ready, verify the whole stored audit log (O(n): every entry, the chain, the tree "
       "and every signed checkpoint); on a failure stay unready and name the first bad entry",
       "false", Flag(&ServerConfig::audit_verify_on_start, "audit-verify-on-start"), true},
      {"max-header-bytes", "Largest request line plus headers; more gets 431", "16384", Bytes(&ServerConfig::max_header_bytes, 1024, 1 << 20)},
      {"max-body-bytes", "Largest request body; more gets 413", "1048576", Bytes(&ServerConfig::max_body_bytes, 1024, 64 << 20)},
      {"header-timeout-ms", "Time allowed to receive a request's line and headers", "10000", Millis(&ServerConfig::header_timeout, 100, 600000)},
      {"body-timeout-ms", "Time allowed to receive a whole request", "30000", Millis(&ServerConfig::body_timeout, 100, 600000)},
      {"keepalive-timeout-ms", "Idle time before a persistent connection is closed; counted from when a request is in, so it also bounds how long an answer may take", "60000", Millis(&ServerConfig::keepalive_timeout, 100, 3600000)},
      {"drain-timeout-ms", "On SIGTERM, longest wait for in-flight requests", "10000", Millis(&ServerConfig::drain_timeout, 0, 600000)},
      {"tls-cert", "PEM certificate chain; with --tls-key enables HTTPS", "", Text(&ServerConfig::tls_cert)},
      {"tls-key", "PEM private key for --tls-cert", "", Text(&ServerConfig::tls_key)},
      {"tls-client-ca", "PEM CA bundle; when set, clients must present a certificate it signed (mTLS)", "", Text(&ServerConfig::tls_client_ca)},
      {"max-connections",
       "Open HTTP connections before a new one is answered 503 and closed; 16 more are admitted for one GET "
       "/healthz each (the oldest silent one closed to make room), so liveness probes pass during a connection "
       "flood (0: as many as the descriptor limit allows, (limit - 256) / 2)",
       "0", Count(&ServerConfig::max_connections, "max-connections", 0, 1'000'000)},
      {"max-connections-per-client",
       "Open HTTP connections from one client address before a new one from it is answered 503 and closed (0: no "
       "per-client cap)",
       "0", Count(&ServerConfig::max_connections_per_client, "max-connections-per-client", 0, 1'000'000)},
      {"rate-limit-tenant-rps", "Requests per second per tenant (0 disables)", "1000", Rate(&ServerConfig::tenant_rate)},
      {"rate-limit-tenant-burst", "Burst size per tenant", "2000", Rate(&ServerConfig::tenant_burst)},
      {"rate-limit-token-rps", "Requests per second per token (0 disables)", "20000", Rate(&ServerConfig::token_rate)},
      {"rate-limit-token-burst", "Burst size per token", "40000", Rate(&ServerConfig::token_burst)},
      {"decision-audit",
       "How residency decisions are audited: sync answers once the decision's audit entry is durable; async "
       "answers at once and queues the entry (bounded by --decision-audit-queue; 503 when full)",
       "sync",
       [](ServerConfig& c, const std::string& v) -> Status {
         if (v != "sync" && v != "async") return InvalidArgument("decision-audit: expected sync or async, got '" + v + "'");
         c.decision_audit = v;
         return Status::Ok();
       }},
      {"decision-audit-queue",
       "Decision audit events accepted and not yet durable before decisions get 503 + Retry-After (at least 1000, "
       "the largest batch, which would otherwise never fit); the audit log's queue holds this many plus 100,000 "
       "for other audit writes",
       "100000", Count(&ServerConfig::decision_audit_queue, "decision-audit-queue", 1000, 10000000)},
      {"decision-audit-async-linger-ms",
       "With --decision-audit=async: how long a decision's entry may wait to share a write with others, and "
       "again to share a sync (0: each is written and synced at once). Bounds how much of the latest answered "
       "decisions' audit a crash can lose",
       "2", Count(&ServerConfig::decision_audit_async_linger_ms, "decision-audit-async-linger-ms", 0, 100)},
      {"policy-trusted-keys",
       "File of Ed25519 public keys (one per line, base64 of the raw 32 bytes; # comments) trusted to sign "
       "imported policy bundles, in addition to this instance's own policy-signing key. It must be a regular file "
       "that only its owner (the service user or root) may write; otherwise the start stops",
       "", Text(&ServerConfig::policy_trusted_keys)},
  };
  return specs;
}

std::string EnvName(const std::string& opt) {
  std::string out = "GEOLEDGER_";
  for (char c : opt) out += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string YamlKey(const std::string& opt) {
  std::string out = opt;
  std::replace(out.begin(), out.end(), '-', '_');
  return out;
}

StatusOr<std::map<std::string, std::string>> LoadYaml(const std::string& path) {
  std::map<std::string, std::string> out;
  try {
    YAML::Node root = YAML::LoadFile(path);
    if (root.IsNull()) return out;
    if (!root.IsMap()) return InvalidArgument("config " + path + ": top level must be a mapping");
    for (const auto& kv : root) {
      std::string key = kv.first.as<std::string>();
      if (!kv.second.IsScalar())
        return InvalidArgument("config " + path + ": '" + key + "' must be a scalar");
      out[key] = kv.second.as<std::string>();
    }
  } catch (const YAML::Exception& e) {
    return InvalidArgument("config " + path + ": " + e.what());
  }
  for (const auto& entry : out) {
    const std::string& key = entry.first;
    bool known = std::any_of(Specs().begin(), Specs().end(),
                             [&key](const OptionSpec& s) { return YamlKey(s.name) == key; });
    if (!known) return InvalidArgument("config " + path + ": unknown key '" + key + "'");
  }
  return out;
}

}  // namespace

StatusOr<ServerConfig> ParseConfig(int argc, const char* const* argv, char** env) {
  CLI::App app{"geoledgerd — GDPR data-residency and audit-logging service"};
  app.set_version_flag("--version", "geoledgerd 0.1.0");
  std::map<std::string, std::string> cli_values;
  std::map<std::string, bool> flag_values;
  std::string config_file;
  app.add_option("--config", config_file, "YAML file with any of the options below (keys use '_')");
  for (const auto& s : Specs()) {
    if (s.is_flag) {
      flag_values[s.name] = false;
      app.add_flag("--" + s.name, flag_values[s.name], s.help);
    } else {
      app.add_option("--" + s.name, cli_values[s.name], s.help + (s.default_text.empty() ? "" : " [" + s.default_text + "]"));
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    return FailedPrecondition(app.help());
  } catch (const CLI::CallForVersion&) {
    return FailedPrecondition("geoledgerd 0.1.0");
  } catch (const CLI::ParseError& e) {
    return InvalidArgument(e.what());
  }

  std::map<std::string, std::string> envmap;
  for (char** e = env; e != nullptr && *e != nullptr; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string::npos && kv.rfind("GEOLEDGER_", 0) == 0) envmap[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  if (config_file.empty() && envmap.count("GEOLEDGER_CONFIG")) config_file = envmap["GEOLEDGER_CONFIG"];
  std::map<std::string, std::string> file_values;
  if (!config_file.empty()) {
    GL_ASSIGN_OR_RETURN(file_values, LoadYaml(config_file));
  }

  ServerConfig cfg;
  cfg.config_file = config_file;
  for (const auto& s : Specs()) {
    std::optional<std::string> value;
    if (s.is_flag && flag_values[s.name]) value = "true";
    else if (!s.is_flag && app.count("--" + s.name) > 0) value = cli_values[s.name];
    else if (envmap.count(EnvName(s.name))) value = envmap[EnvName(s.name)];
    else if (file_values.count(YamlKey(s.name))) value = file_values[YamlKey(s.name)];
    if (value) {
      Status st = s.set(cfg, *value);
      if (!st.ok()) return st;
    }
  }
  if (cfg.data_dir.empty()) return InvalidArgument("--data-dir is required");
  if (cfg.region.empty()) return InvalidArgument("--region is required");
  if (cfg.region.size() > 64 ||
      !std::all_of(cfg.region.begin(), cfg.region.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
      }))
    return InvalidArgument("--region must be 1-64 characters of [a-z0-9-]");
  if (cfg.tls_cert.empty() != cfg.tls_key.empty())
    return InvalidArgument("--tls-cert and --tls-key go together");
  if (!cfg.tls_client_ca.empty() && cfg.tls_cert.empty())
    return InvalidArgument("--tls-client-ca needs --tls-cert and --tls-key");
  if (cfg.tenant_rate > 0 && cfg.tenant_burst < 1) return InvalidArgument("rate-limit-tenant-burst must be >= 1");
  if (cfg.token_rate > 0 && cfg.token_burst < 1) return InvalidArgument("rate-limit-token-burst must be >= 1");
  if (cfg.threads == 0) cfg.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return cfg;
}

std::string ConfigReferenceMarkdown() {
  std::string out = "| flag | YAML key | environment | default | meaning |\n|---|---|---|---|---|\n";
  out += "| `--config FILE` | — | `GEOLEDGER_CONFIG` | — | YAML file with any of the keys below |\n";
  for (const auto& s : Specs()) {
    out += "| `--" + s.name + "` | `" + YamlKey(s.name) + "` | `" + EnvName(s.name) + "` | " +
           (s.default_text.empty() ? "—" : "`" + s.default_text + "`") + " | " + s.help + " |\n";
  }
  return out;
}

size_t EffectiveMaxConnections(size_t configured, uint64_t nofile) {
  if (configured > 0) return configured;
  constexpr uint64_t kReserved = 256;
  uint64_t fit = nofile > kReserved ? (nofile - kReserved) / 2 : 0;
  return static_cast<size_t>(std::max<uint64_t>(16, std::min<uint64_t>(fit, 1'000'000)));
}

}  // namespace geoledger::server
