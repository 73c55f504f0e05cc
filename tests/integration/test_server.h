// Starts the real geoledgerd as a child process on a free loopback port with a
// temporary data dir, and talks HTTP to it over raw sockets.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace geoledger::testing {

struct RawResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

// A TCP connection to 127.0.0.1:port with bounded reads, from `source` (an
// IPv4 loopback address such as "127.0.0.2", to be another client) when given.
class RawConnection {
 public:
  explicit RawConnection(uint16_t port, const char* source = nullptr);
  ~RawConnection();
  bool connected() const { return fd_ >= 0; }
  bool Send(const std::string& bytes);
  // Reads one response framed by Content-Length. False on EOF or timeout.
  bool ReadResponse(RawResponse* out, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // True when the peer closes the connection within `timeout` (reads and
  // discards anything that arrives first).
  bool WaitForClose(std::chrono::milliseconds timeout);
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
  std::string buffer_;
};

class TestServer {
 public:
  // Starts geoledgerd with --dev and `extra_args`, waits until it is ready.
  // Reuses `data_dir` when given (for restart tests); otherwise makes one.
  // Gives up waiting for readiness after `wait` (started() is then false,
  // though the process may still be running: see pid()).
  static std::unique_ptr<TestServer> Start(const std::vector<std::string>& extra_args = {},
                                           const std::string& data_dir = "", bool dev = true,
                                           std::chrono::milliseconds wait = std::chrono::seconds(30));
  ~TestServer();

  uint16_t port() const { return port_; }
  const std::string& data_dir() const { return data_dir_; }
  const std::string& admin_token() const { return admin_token_; }
  pid_t pid() const { return pid_; }
  bool started() const { return port_ != 0; }
  std::string log() const;
  // For a server that started but never became ready (so wrote no
  // listen.addr): waits, bounded, until its log says it serves health and
  // readiness only, and returns the port of its latest "listening" line
  // (0 on timeout).
  uint16_t WaitForUnreadyPort(std::chrono::milliseconds timeout = std::chrono::seconds(20)) const;

  // Sends SIGTERM and returns the exit status (or -1 if it had to be killed).
  int Terminate(std::chrono::milliseconds grace = std::chrono::seconds(15));

  // One request on a fresh connection.
  RawResponse Request(const std::string& method, const std::string& path,
                      const std::map<std::string, std::string>& headers = {},
                      const std::string& body = "");
  // Same, with "Authorization: Bearer <token>".
  RawResponse Authed(const std::string& token, const std::string& method, const std::string& path,
                     const std::string& body = "", std::map<std::string, std::string> headers = {});
  // Creates a token through the API and returns it (empty on failure).
  std::string CreateToken(const std::string& name, const std::vector<std::string>& scopes,
                          const std::string& tenant = "");

 private:
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  std::string data_dir_;
  bool own_dir_ = false;
  std::string admin_token_;
};

// A TCP connection to 127.0.0.1:port whose receive window stays at about
// `receive_buffer` bytes (set before connect): a slow reader. -1 on failure.
int ConnectSlowReader(uint16_t port, int receive_buffer);

// Reads from `fd` until the peer closes the connection or `timeout` passes,
// at most `chunk` bytes per read (small reads make a slow reader). `closed`,
// when given, tells whether the peer closed it (false on timeout or error).
std::string ReadUntilClosed(int fd, std::chrono::milliseconds timeout, size_t chunk = 65536,
                            bool* closed = nullptr);

// How many times `needle` occurs in `text` (overlaps included).
size_t CountOccurrences(std::string_view text, std::string_view needle);

// Runs `argv` to completion with a timeout; returns its exit status (-1 on
// timeout or failure to start). stdout+stderr go to `output` when non-null.
int RunCommand(const std::vector<std::string>& argv, std::string* output = nullptr,
               std::chrono::milliseconds timeout = std::chrono::seconds(60));

// The value of the unlabelled sample `name` in a Prometheus text exposition
// (a /metrics body); -1 when it is absent.
int64_t MetricSample(const std::string& exposition, const std::string& name);

// Names of the regular files under `dir` (recursively) whose bytes contain
// `needle`: checks that no key, token or personal data reaches the disk.
std::vector<std::string> FilesContaining(const std::string& dir, const std::string& needle);

// Writes a throwaway PKI into `dir` with the openssl CLI (P-256): ca.pem/ca.key,
// server.pem/server.key for IP 127.0.0.1 signed by the CA, client.pem/client.key
// signed by the CA, and an unrelated other-ca.pem/other-ca.key. Returns false
// and fills `error` when a command fails.
bool MakeTestPki(const std::string& dir, std::string* error);

std::string MakeTempDir();
void RemoveTree(const std::string& dir);

// Removes a temporary tree on every exit path (declare it before the servers
// that use the tree, so it runs after they are gone).
struct DirGuard {
  std::string dir;
  ~DirGuard() {
    if (!dir.empty()) RemoveTree(dir);
  }
};

// The bytes of one HTTP/1.1 request with a bearer token, `headers` and, for a
// non-empty body, a JSON content type (for RawConnection::Send on a kept
// connection).
std::string RequestBytes(const std::string& method, const std::string& path, const std::string& token,
                         const std::string& body = "", const std::map<std::string, std::string>& headers = {});

// In a child between fork and exec: have the kernel send `signal` to it when
// the process that forked it (`parent`, its pid read before the fork) ends,
// however it ends (a crash, a ctest timeout, a closed pipe), so no server or
// gateway a test started outlives the test. Exits at once if the parent is
// already gone. Fork from the thread that lives as long as the child should:
// the signal comes when that thread ends.
void DieWithParent(pid_t parent, int signal);

// SIGKILL, then waits for the death without reaping it: the zombie keeps the
// pid, so TestServer's own Terminate() (run by its destructor) reaps exactly
// this process and cannot hit a recycled pid. Returns "SIGKILL", or how the
// process ended otherwise.
std::string KillNine(pid_t pid);

}  // namespace geoledger::testing
