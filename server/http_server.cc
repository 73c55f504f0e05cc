#include "server/http_server.h"

#include <pistache/endpoint.h>
#include <pistache/http.h>
#include <pistache/peer.h>
#include <sys/socket.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <sstream>

#include "server/router.h"

namespace geoledger::server {
namespace {

using namespace Pistache;

constexpr char kConnData[] = "geoledger.conn";

struct Outgoing {
  Http::ResponseWriter writer;
  HttpResponse response;
  bool keep_alive;
};
void Send(Outgoing out, const std::weak_ptr<Tcp::Peer>& peer);

// Per-connection state, kept in the peer's data map.
//
// Responses leave in request order (HTTP/1.1 pipelining) although a deferred
// response may complete on another thread after a later immediate one: each
// request takes a sequence number on the reactor thread, and a completed
// response is sent only when every earlier one has been. Sending happens
// under `mu`, so the transport's write queue sees responses in order.
struct ConnState {
  size_t bytes_this_request = 0;  // reactor thread only
  bool closing = false;           // reactor thread only; a fatal answer was sent, ignore further input
  uint64_t next_request = 0;      // reactor thread only

  // Queues response number `seq` and sends every response that is now next
  // in line. Thread-safe.
  void Complete(uint64_t seq, Outgoing out, const std::weak_ptr<Tcp::Peer>& peer) {
    std::lock_guard<std::mutex> lock(mu);
    ready.emplace(seq, std::move(out));
    for (auto it = ready.begin(); it != ready.end() && it->first == next_to_send; it = ready.begin()) {
      Send(std::move(it->second), peer);
      ready.erase(it);
      ++next_to_send;
    }
  }

  std::mutex mu;
  uint64_t next_to_send = 0;             // guarded by mu
  std::map<uint64_t, Outgoing> ready;    // guarded by mu
};

// A response header with a name chosen at run time. Pistache 0.0.5 writes
// only typed headers; Collection::addRaw entries are silently dropped.
class OutHeader final : public Http::Header::Header {
 public:
  OutHeader(std::string name, std::string value) : name_(std::move(name)), value_(std::move(value)) {
    // Never let a value split the header block.
    value_.erase(std::remove_if(value_.begin(), value_.end(), [](char c) { return c == '\r' || c == '\n'; }),
                 value_.end());
  }
  const char* name() const override { return name_.c_str(); }
  void write(std::ostream& os) const override { os << value_; }
  uint64_t hash() const override { return 0x676c6f75746864ull; }

 private:
  std::string name_, value_;
};

struct FrontendLimits {
  Dispatcher* dispatcher;
  size_t max_header_bytes;
  size_t max_body_bytes;
};

void CloseAfterSend(Async::Promise<ssize_t> sent, const std::shared_ptr<Tcp::Peer>& peer) {
  std::weak_ptr<Tcp::Peer> weak = peer;
  // shutdown(2) makes the transport see a hang-up and release the peer itself.
  auto close_it = [weak] {
    if (auto p = weak.lock()) ::shutdown(p->fd(), SHUT_RDWR);
  };
  sent.then([close_it](ssize_t) { close_it(); }, [close_it](std::exception_ptr) { close_it(); });
}

// May run on any thread (deferred answers complete on the audit writer).
// Pistache 0.0.5's ResponseWriter::send serialises into the writer's own
// buffer and pushes to the transport's lock-free MPSC write queue, which the
// reactor drains; the writer's response timer is never armed here, so send
// touches no reactor-only state except Peer::setIdle(true), a plain bool the
// reactor may read at the same time (a race on a flag, harmless here, that
// TSan would report).
void Send(Outgoing out, const std::weak_ptr<Tcp::Peer>& peer) {
  Http::ResponseWriter& writer = out.writer;
  const HttpResponse& r = out.response;
  auto& headers = writer.headers();
  // The library pre-sets "Connection: Close" on requests without the header.
  headers.remove<Http::Header::Connection>();
  headers.add<Http::Header::Connection>(out.keep_alive ? Http::ConnectionControl::KeepAlive
                                                       : Http::ConnectionControl::Close);
  for (const auto& [name, value] : r.headers) headers.add(std::make_shared<OutHeader>(name, value));
  if (!r.content_type.empty()) writer.setMime(Http::Mime::MediaType::fromString(r.content_type));
  // A peer that went away while a deferred answer was pending makes the
  // send fail (rejected promise); nothing is written then.
  auto sent = writer.send(static_cast<Http::Code>(r.status), r.body);
  if (!out.keep_alive)
    if (auto p = peer.lock()) CloseAfterSend(std::move(sent), p);
}

class Frontend final : public Http::Handler {
 public:
  HTTP_PROTOTYPE(Frontend)

  explicit Frontend(std::shared_ptr<const FrontendLimits> limits) : limits_(std::move(limits)) {}

  void onConnection(const std::shared_ptr<Tcp::Peer>& peer) override {
    peer->putData(ParserData,
                  std::make_shared<Http::RequestParser>(limits_->max_header_bytes + limits_->max_body_bytes));
    peer->putData(kConnData, std::make_shared<ConnState>());
  }

  void onInput(const char* buffer, size_t len, const std::shared_ptr<Tcp::Peer>& peer) override {
    auto parser = getParser(peer);
    auto conn = std::static_pointer_cast<ConnState>(peer->getData(kConnData));
    if (conn->closing) return;
    if (conn->bytes_this_request == 0) {
      // First bytes of a new request: the header and body timeouts start now,
      // not when the previous response went out, and the keep-alive idle
      // timeout no longer applies. The parser holds nothing yet, so resetting
      // it only restarts its clock.
      parser->reset();
      peer->setIdle(false);
    }
    const auto step_id = [&] { return parser->step()->id(); };
    const bool in_head_before = step_id() != Http::Private::BodyStep::Id;
    if (!parser->feed(buffer, len)) {
      if (in_head_before) Fail(peer, parser, conn, 431, "request line and headers exceed the limit");
      else Fail(peer, parser, conn, 413, "request body exceeds the limit");
      return;
    }
    conn->bytes_this_request += len;
    Http::Private::State state;
    try {
      state = parser->parse();
    } catch (const Http::HttpError& e) {
      Fail(peer, parser, conn, 400, "malformed request");
      return;
    } catch (const std::exception& e) {
      Fail(peer, parser, conn, 400, "malformed request");
      return;
    }
    auto& request = parser->request;
    if (state != Http::Private::State::Done) {
      if (step_id() != Http::Private::BodyStep::Id) {
        if (conn->bytes_this_request > limits_->max_header_bytes)
          Fail(peer, parser, conn, 431, "request line and headers exceed the limit");
        return;
      }
      // Headers are complete: refuse an oversized body before it arrives.
      if (auto cl = request.headers().tryGet<Http::Header::ContentLength>()) {
        if (cl->value() > limits_->max_body_bytes) Fail(peer, parser, conn, 413, "request body exceeds the limit");
      }
      return;
    }
    if (conn->bytes_this_request - std::min(conn->bytes_this_request, request.body().size()) >
        limits_->max_header_bytes) {
      Fail(peer, parser, conn, 431, "request line and headers exceed the limit");
      return;
    }
    if (request.body().size() > limits_->max_body_bytes) {
      Fail(peer, parser, conn, 413, "request body exceeds the limit");
      return;
    }
    conn->bytes_this_request = 0;
    request.copyAddress(peer->address());
    Http::ResponseWriter writer(request.version(), transport(), this, peer);
    Serve(request, std::move(writer), peer, conn);
    parser->reset();
  }

  void onRequest(const Http::Request& request, Http::ResponseWriter writer) override {
    // Not reached: onInput serves requests itself. Kept for the interface.
    Send(Outgoing{std::move(writer), limits_->dispatcher->Reject(400, "unexpected request path", ""), false}, {});
  }

  void onTimeout(const Http::Request&, Http::ResponseWriter writer) override {
    Send(Outgoing{std::move(writer), limits_->dispatcher->Reject(408, "request not received in time", ""), false}, {});
  }

 private:
  void Fail(const std::shared_ptr<Tcp::Peer>& peer, const std::shared_ptr<Http::RequestParser>& parser,
            const std::shared_ptr<ConnState>& conn, int status, const std::string& detail) {
    conn->closing = true;
    Http::ResponseWriter writer(Http::Version::Http11, transport(), this, peer);
    HttpResponse r = limits_->dispatcher->Reject(status, detail, peer->address().host());
    conn->Complete(conn->next_request++, Outgoing{std::move(writer), std::move(r), /*keep_alive=*/false}, peer);
    parser->reset();
  }

  void Serve(const Http::Request& req, Http::ResponseWriter writer, const std::shared_ptr<Tcp::Peer>& peer,
             const std::shared_ptr<ConnState>& conn) {
    const uint64_t seq = conn->next_request++;
    HttpRequest in;
    in.method = Http::methodString(req.method());
    in.path = req.resource();
    in.body = req.body();
    in.peer = req.address().host();
    for (auto it = req.query().parameters_begin(); it != req.query().parameters_end(); ++it) {
      auto k = PercentDecode(it->first);
      auto v = PercentDecode(it->second);
      if (!k || !v) {
        conn->Complete(seq, Outgoing{std::move(writer), limits_->dispatcher->Reject(400, "malformed query string", in.peer), false}, peer);
        return;
      }
      in.query[*k] = *v;
    }
    for (const auto& h : req.headers().list()) {
      std::ostringstream os;
      h->write(os);
      std::string name = h->name();
      std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
      in.headers.emplace_back(std::move(name), os.str());
    }
    for (const auto& [name, raw] : req.headers().rawList()) {
      std::string lname = name;
      std::transform(lname.begin(), lname.end(), lname.begin(), [](unsigned char c) { return std::tolower(c); });
      in.headers.emplace_back(std::move(lname), raw.value());
    }

    bool keep_alive;
    auto conn_hdr = req.headers().tryGet<Http::Header::Connection>();
    if (req.version() == Http::Version::Http11)
      keep_alive = !(conn_hdr && conn_hdr->control() == Http::ConnectionControl::Close);
    else
      keep_alive = conn_hdr && conn_hdr->control() == Http::ConnectionControl::KeepAlive;

    // The writer may be completed on another thread (deferred routes); it
    // holds the peer only weakly, so a closed connection drops the answer.
    auto pending = std::make_shared<Http::ResponseWriter>(std::move(writer));
    std::weak_ptr<Tcp::Peer> weak = peer;
    limits_->dispatcher->HandleAsync(std::move(in), [conn, seq, pending, weak, keep_alive](HttpResponse out) {
      bool keep = keep_alive && !out.close_connection;
      conn->Complete(seq, Outgoing{std::move(*pending), std::move(out), keep}, weak);
    });
  }

  std::shared_ptr<const FrontendLimits> limits_;
};

}  // namespace

struct HttpServer::Impl {
  std::unique_ptr<Http::Endpoint> endpoint;
  bool stopped = false;
};

StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& o, Dispatcher* dispatcher) {
  auto limits = std::make_shared<FrontendLimits>(
      FrontendLimits{dispatcher, o.max_header_bytes, o.max_body_bytes});
  std::unique_ptr<HttpServer> server(new HttpServer());
  server->impl_ = std::make_unique<Impl>();
  try {
    Address addr(o.host, Port(o.port));
    auto endpoint = std::make_unique<Http::Endpoint>(addr);
    auto opts = Http::Endpoint::options()
                    .threads(o.threads)
                    .flags(Tcp::Options::ReuseAddr)
                    .maxRequestSize(o.max_header_bytes + o.max_body_bytes)
                    .headerTimeout(o.header_timeout)
                    .bodyTimeout(o.body_timeout)
                    .keepaliveTimeout(o.keepalive_timeout);
    endpoint->init(opts);
    endpoint->setHandler(std::make_shared<Frontend>(limits));
    if (!o.tls_cert.empty()) {
      endpoint->useSSL(o.tls_cert, o.tls_key);
      if (!o.tls_client_ca.empty()) endpoint->useSSLAuth(o.tls_client_ca);
    }
    // serveThreaded() binds the socket itself; an earlier bind() would leave a
    // second, never-accepted listening socket behind.
    endpoint->serveThreaded();
    server->port_ = static_cast<uint16_t>(endpoint->getPort());
    server->impl_->endpoint = std::move(endpoint);
  } catch (const std::exception& e) {
    std::string what = e.what();
    if (!o.tls_cert.empty() && what.find("SSL") != std::string::npos)
      return InvalidArgument("TLS setup failed: " + what);
    return Unavailable("cannot listen on " + o.host + ":" + std::to_string(o.port) + ": " + what);
  }
  return server;
}

void HttpServer::Stop() {
  if (!impl_ || impl_->stopped || !impl_->endpoint) return;
  impl_->stopped = true;
  impl_->endpoint->shutdown();
}

HttpServer::~HttpServer() { Stop(); }

}  // namespace geoledger::server
