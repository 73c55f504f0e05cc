#include "tests/integration/test_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#ifndef GEOLEDGERD_PATH
#error "GEOLEDGERD_PATH must point at the geoledgerd binary"
#endif

namespace geoledger::testing {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

}  // namespace

bool MakeTestPki(const std::string& d, std::string* error) {
  auto run = [&](std::vector<std::string> argv) {
    std::string out;
    if (RunCommand(argv, &out) == 0) return true;
    *error = argv[0] + " " + argv[1] + " failed: " + out;
    return false;
  };
  auto req = [&](std::vector<std::string> tail) {
    std::vector<std::string> argv = {"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"};
    argv.insert(argv.end(), tail.begin(), tail.end());
    return run(argv);
  };
  auto sign = [&](const std::string& name, std::vector<std::string> extra) {
    std::vector<std::string> argv = {"openssl", "x509", "-req", "-in", d + "/" + name + ".csr", "-CA", d + "/ca.pem",
                                     "-CAkey", d + "/ca.key", "-CAcreateserial", "-out", d + "/" + name + ".pem",
                                     "-days", "2"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return run(argv);
  };
  std::ofstream(d + "/server.ext") << "subjectAltName=IP:127.0.0.1\n";
  return req({"-x509", "-keyout", d + "/ca.key", "-out", d + "/ca.pem", "-days", "2", "-subj", "/CN=geoledger test CA"}) &&
         req({"-x509", "-keyout", d + "/other-ca.key", "-out", d + "/other-ca.pem", "-days", "2", "-subj", "/CN=other"}) &&
         req({"-keyout", d + "/server.key", "-out", d + "/server.csr", "-subj", "/CN=127.0.0.1"}) &&
         sign("server", {"-extfile", d + "/server.ext"}) &&
         req({"-keyout", d + "/client.key", "-out", d + "/client.csr", "-subj", "/CN=gateway"}) && sign("client", {});
}

std::string MakeTempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "geoledger-test-XXXXXX").string();
  char* d = ::mkdtemp(tmpl.data());
  return d ? std::string(d) : "";
}

void RemoveTree(const std::string& dir) {
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

std::string RequestBytes(const std::string& method, const std::string& path, const std::string& token,
                         const std::string& body, const std::map<std::string, std::string>& headers) {
  std::string req = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + token + "\r\n";
  for (const auto& [name, value] : headers) req += name + ": " + value + "\r\n";
  if (!body.empty()) req += "Content-Type: application/json\r\n";
  if (!body.empty() || method == "POST" || method == "PUT")
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  return req + "\r\n" + body;
}

void DieWithParent(pid_t parent, int signal) {
  if (::prctl(PR_SET_PDEATHSIG, signal) != 0 || ::getppid() != parent) ::_exit(126);
}

std::string KillNine(pid_t pid) {
  if (::kill(pid, SIGKILL) != 0) return std::string("kill failed: ") + std::strerror(errno);
  siginfo_t info{};
  if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT) != 0)
    return std::string("waitid failed: ") + std::strerror(errno);
  if (info.si_code == CLD_KILLED && info.si_status == SIGKILL) return "SIGKILL";
  return "ended otherwise (si_code " + std::to_string(info.si_code) + ", status " + std::to_string(info.si_status) +
         ")";
}

namespace {

// Connects `fd` to 127.0.0.1:port; closes it and returns false on failure.
bool ConnectLoopback(int fd, uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return true;
  ::close(fd);
  return false;
}

}  // namespace

RawConnection::RawConnection(uint16_t port, const char* source) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (source != nullptr) {
    sockaddr_in from{};
    from.sin_family = AF_INET;
    if (::inet_pton(AF_INET, source, &from.sin_addr) != 1 ||
        ::bind(fd_, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0) {
      ::close(fd_);
      fd_ = -1;
      return;
    }
  }
  if (!ConnectLoopback(fd_, port)) fd_ = -1;
}

RawConnection::~RawConnection() {
  if (fd_ >= 0) ::close(fd_);
}

bool RawConnection::Send(const std::string& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

bool RawConnection::ReadResponse(RawResponse* out, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto fill = [&]() -> bool {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char buf[65536];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return false;
    buffer_.append(buf, static_cast<size_t>(n));
    return true;
  };
  size_t head_end;
  while ((head_end = buffer_.find("\r\n\r\n")) == std::string::npos)
    if (!fill()) return false;
  std::istringstream head(buffer_.substr(0, head_end));
  std::string line;
  std::getline(head, line);
  *out = RawResponse();
  if (line.size() < 12) return false;
  out->status = std::atoi(line.substr(9, 3).c_str());
  while (std::getline(head, line)) {
    line = Trim(line);
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
    out->headers[Lower(line.substr(0, colon))] = value;
  }
  size_t length = std::strtoul(out->Header("content-length").c_str(), nullptr, 10);
  while (buffer_.size() < head_end + 4 + length)
    if (!fill()) return false;
  out->body = buffer_.substr(head_end + 4, length);
  buffer_.erase(0, head_end + 4 + length);
  return true;
}

bool RawConnection::WaitForClose(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{fd_, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(std::max<int64_t>(1, left.count())));
    if (r <= 0) continue;
    char buf[4096];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n == 0) return true;
    if (n < 0) return errno == ECONNRESET;
    buffer_.append(buf, static_cast<size_t>(n));
  }
  return false;
}

int ConnectSlowReader(uint16_t port, int receive_buffer) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
  return ConnectLoopback(fd, port) ? fd : -1;
}

size_t CountOccurrences(std::string_view text, std::string_view needle) {
  size_t n = 0;
  for (size_t pos = text.find(needle); pos != std::string_view::npos; pos = text.find(needle, pos + 1)) ++n;
  return n;
}

std::string ReadUntilClosed(int fd, std::chrono::milliseconds timeout, size_t chunk, bool* closed) {
  std::string received;
  std::vector<char> buf(chunk);
  if (closed) *closed = false;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 1000) <= 0) continue;
    const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n <= 0) {
      if (closed) *closed = n == 0;
      break;
    }
    received.append(buf.data(), static_cast<size_t>(n));
  }
  return received;
}

std::unique_ptr<TestServer> TestServer::Start(const std::vector<std::string>& extra_args,
                                              const std::string& data_dir, bool dev,
                                              std::chrono::milliseconds wait) {
  auto s = std::unique_ptr<TestServer>(new TestServer());
  s->own_dir_ = data_dir.empty();
  s->data_dir_ = data_dir.empty() ? MakeTempDir() + "/data" : data_dir;
  std::filesystem::create_directories(std::filesystem::path(s->data_dir_).parent_path());
  std::vector<std::string> args = {GEOLEDGERD_PATH, "--data-dir", s->data_dir_, "--listen",
                                   "127.0.0.1:0",    "--region",   "eu-west-1",  "--threads", "2"};
  if (dev) args.push_back("--dev");
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  std::string log_path = s->data_dir_ + ".log";
  ::unlink((s->data_dir_ + "/listen.addr").c_str());
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) {
    DieWithParent(parent, SIGKILL);
    int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(fd, STDERR_FILENO);
    ::dup2(fd, STDOUT_FILENO);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  s->pid_ = pid;
  auto deadline = std::chrono::steady_clock::now() + wait;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      s->pid_ = -1;
      return s;  // exited during startup: started() is false
    }
    std::string addr = Trim(ReadFile(s->data_dir_ + "/listen.addr"));
    if (!addr.empty()) {
      s->port_ = static_cast<uint16_t>(std::atoi(addr.substr(addr.rfind(':') + 1).c_str()));
      s->admin_token_ = Trim(ReadFile(s->data_dir_ + "/admin.token"));
      return s;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return s;
}

std::string TestServer::log() const { return ReadFile(data_dir_ + ".log"); }

uint16_t TestServer::WaitForUnreadyPort(std::chrono::milliseconds timeout) const {
  const std::string kServing = "serving health and readiness only";
  const std::string kAddress = "\"address\":\"127.0.0.1:";
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string text = log();
  while (text.rfind(kServing) == std::string::npos || text.rfind(kServing) < text.rfind("\"listening\"")) {
    if (std::chrono::steady_clock::now() > deadline) return 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    text = log();
  }
  size_t at = text.rfind(kAddress);  // the log spans every run on this data dir
  if (at == std::string::npos) return 0;
  return static_cast<uint16_t>(std::atoi(text.c_str() + at + kAddress.size()));
}

int TestServer::Terminate(std::chrono::milliseconds grace) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + grace;
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      port_ = 0;
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  port_ = 0;
  return -1;
}

TestServer::~TestServer() {
  Terminate();
  if (own_dir_) RemoveTree(std::filesystem::path(data_dir_).parent_path().string());
}

RawResponse TestServer::Request(const std::string& method, const std::string& path,
                                const std::map<std::string, std::string>& headers,
                                const std::string& body) {
  RawConnection c(port_);
  std::string req = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
  if (!body.empty() || method == "POST" || method == "PUT")
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n" + body;
  RawResponse r;
  if (!c.connected() || !c.Send(req) || !c.ReadResponse(&r)) r.status = -1;
  return r;
}

RawResponse TestServer::Authed(const std::string& token, const std::string& method,
                               const std::string& path, const std::string& body,
                               std::map<std::string, std::string> headers) {
  headers["Authorization"] = "Bearer " + token;
  if (!body.empty() && headers.count("Content-Type") == 0) headers["Content-Type"] = "application/json";
  return Request(method, path, headers, body);
}

std::string TestServer::CreateToken(const std::string& name, const std::vector<std::string>& scopes,
                                    const std::string& tenant) {
  nlohmann::json body = {{"name", name}, {"scopes", scopes}};
  if (!tenant.empty()) body["tenant"] = tenant;
  RawResponse r = Authed(admin_token_, "POST", "/v1/admin/tokens", body.dump());
  if (r.status != 201) return "";
  return nlohmann::json::parse(r.body).value("token", "");
}

int64_t MetricSample(const std::string& exposition, const std::string& name) {
  const std::string key = "\n" + name + " ";
  size_t at = exposition.find(key);
  if (at == std::string::npos) return -1;
  return std::stoll(exposition.substr(at + key.size()));
}

std::vector<std::string> FilesContaining(const std::string& dir, const std::string& needle) {
  std::vector<std::string> hits;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::string bytes = ReadFile(entry.path().string());
    if (bytes.find(needle) != std::string::npos) hits.push_back(entry.path().filename().string());
  }
  return hits;
}

int RunCommand(const std::vector<std::string>& argv_in, std::string* output,
               std::chrono::milliseconds timeout) {
  int pipefd[2];
  if (::pipe(pipefd) != 0) return -1;
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) {
    DieWithParent(parent, SIGKILL);
    ::dup2(pipefd[1], STDOUT_FILENO);
    ::dup2(pipefd[1], STDERR_FILENO);
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    std::vector<std::string> copy = argv_in;
    std::vector<char*> argv;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(pipefd[1]);
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  bool done = false;
  while (!done) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      ::close(pipefd[0]);
      if (output) *output = out;
      return -1;
    }
    pollfd p{pipefd[0], POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 100))) > 0) {
      char buf[4096];
      ssize_t n = ::read(pipefd[0], buf, sizeof buf);
      if (n > 0) out.append(buf, static_cast<size_t>(n));
      else done = true;
    }
  }
  ::close(pipefd[0]);
  ::waitpid(pid, &status, 0);
  if (output) *output = out;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace geoledger::testing
