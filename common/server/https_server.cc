#include "common/server/https_server.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <optional>
#include <set>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/security/tls.h"

namespace sarloop {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr int kMaxRequestsPerConnection = 100;

// The single URI SAN of a verified peer certificate; empty otherwise.
std::string PeerUri(SSL* ssl) {
  if (SSL_get_verify_result(ssl) != X509_V_OK) return "";
  X509* cert = SSL_get0_peer_certificate(ssl);
  return cert == nullptr ? "" : CertificateUri(cert);
}

class Session;

// The open connections. Touched only on the server's one io thread (every session's handlers and
// the acceptor's run there), so it needs no lock.
struct Sessions {
  std::set<Session*> open;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, asio::ssl::context& tls, const HttpHandler& handler,
          Sessions& sessions, std::chrono::steady_clock::duration timeout)
      : stream_(std::move(socket), tls), handler_(handler), sessions_(sessions), timeout_(timeout) {
    sessions_.open.insert(this);
  }
  ~Session() { sessions_.open.erase(this); }

  void Run() {
    Wait();
    stream_.async_handshake(asio::ssl::stream_base::server,
                            [self = shared_from_this()](beast::error_code ec) {
                              if (!ec) self->Read();
                            });
  }

  // Since when this connection has waited for its peer (a handshake or a request), or nullopt
  // while it is answering.
  std::optional<std::chrono::steady_clock::time_point> waiting_since() const {
    return waiting_since_;
  }

  // Makes room for another: the connection's operations end at once, and so does it.
  void Evict() {
    waiting_since_.reset();
    sessions_.open.erase(this);  // its room is free now, though its handlers have yet to run
    beast::error_code ignored;
    beast::get_lowest_layer(stream_).socket().close(ignored);
  }

 private:
  void Wait() {
    waiting_since_ = std::chrono::steady_clock::now();
    beast::get_lowest_layer(stream_).expires_after(timeout_);
  }

  void Read() {
    parser_.emplace();
    parser_->header_limit(16 * 1024);
    parser_->body_limit(64 * 1024);
    Wait();
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (ec) return self->Close();
                       self->waiting_since_.reset();
                       self->Respond(self->parser_->release());
                     });
  }

  void Respond(http::request<http::string_body> req) {
    HttpRequest in;
    in.method = std::string(req.method_string());
    const std::string target(req.target());
    const size_t q = target.find('?');
    in.path = PercentDecode(target.substr(0, q));
    if (q != std::string::npos) in.query = ParseQuery(std::string_view(target).substr(q + 1));
    if (auto it = req.find(http::field::cookie); it != req.end())
      in.cookie = std::string(it->value());
    if (auto it = req.find("Sec-Fetch-Site"); it != req.end())
      in.fetch_site = std::string(it->value());
    in.peer_uri = PeerUri(stream_.native_handle());
    HttpResponse out;
    try {
      out = handler_(in);
    } catch (const std::exception& e) {
      spdlog::error("https handler threw: {}", e.what());
      out = {500, "text/plain; charset=utf-8", "internal error\n", {}};
    }
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(out.status), req.version());
    res->set(http::field::server, "sarloop");
    res->set(http::field::content_type, out.content_type);
    for (const auto& [name, value] : out.headers) res->set(name, value);
    res->keep_alive(req.keep_alive() && ++requests_ < kMaxRequestsPerConnection);
    res->body() = std::move(out.body);
    res->prepare_payload();
    // The answer has its own time: the read's deadline was spent in part by the handler.
    beast::get_lowest_layer(stream_).expires_after(timeout_);
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res](beast::error_code ec, size_t) {
                        if (ec || !res->keep_alive()) return self->Close();
                        self->Read();
                      });
  }

  void Close() {
    // Closing still waits for the peer: a silent one may be evicted meanwhile.
    Wait();
    stream_.async_shutdown([self = shared_from_this()](beast::error_code) {
      beast::get_lowest_layer(self->stream_).close();
    });
  }

  beast::ssl_stream<beast::tcp_stream> stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  const HttpHandler& handler_;
  Sessions& sessions_;
  const std::chrono::steady_clock::duration timeout_;
  std::optional<std::chrono::steady_clock::time_point> waiting_since_;
  int requests_ = 0;
};

}  // namespace

struct HttpsServer::Impl {
  // Declared before io so they outlive the sessions io still holds when it is destroyed.
  HttpHandler handler;
  HttpsOptions options;
  Sessions sessions;
  asio::ssl::context tls{asio::ssl::context::tls_server};
  // One thread: the sessions, the registry and the handler need no lock.
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  asio::steady_timer pause{io};
  std::thread thread;

  void Accept() {
    acceptor.async_accept(io, [this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (ec) {
        // Out of descriptors, say: accepting again at once would spin.
        spdlog::warn("https: accept failed: {}", ec.message());
        pause.expires_after(std::chrono::milliseconds(100));
        pause.async_wait([this](beast::error_code wait) {
          if (!wait) Accept();
        });
        return;
      }
      if (static_cast<int>(sessions.open.size()) >= options.max_connections) EvictOne();
      if (static_cast<int>(sessions.open.size()) >= options.max_connections) {
        socket.close();  // every connection is being answered: this one waits its turn
      } else {
        std::make_shared<Session>(std::move(socket), tls, handler, sessions, options.timeout)
            ->Run();
      }
      Accept();
    });
  }

  // Closes the connection that has waited longest for its peer, if any waits.
  void EvictOne() {
    Session* oldest = nullptr;
    for (Session* s : sessions.open) {
      const auto since = s->waiting_since();
      if (since && (oldest == nullptr || *since < *oldest->waiting_since())) oldest = s;
    }
    if (oldest != nullptr) oldest->Evict();
  }
};

HttpsServer::HttpsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpsServer::~HttpsServer() {
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

int HttpsServer::port() const { return impl_->acceptor.local_endpoint().port(); }

absl::StatusOr<std::unique_ptr<HttpsServer>> HttpsServer::Start(const std::string& listen,
                                                                const v1::TlsConfig& tls,
                                                                HttpHandler handler,
                                                                HttpsOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->handler = std::move(handler);
  impl->options = options;
  SSL_CTX* ctx = impl->tls.native_handle();
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  boost::system::error_code ec;
  impl->tls.use_certificate_chain_file(tls.cert_file(), ec);
  if (!ec) impl->tls.use_private_key_file(tls.key_file(), asio::ssl::context::pem, ec);
  if (!ec) impl->tls.load_verify_file(tls.ca_file(), ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("tls: cannot load the certificate, key or CA: ", ec.message()));
  }
  if (!tls.crl_dir().empty()) {
    X509_STORE* store = SSL_CTX_get_cert_store(ctx);
    X509_LOOKUP* lookup = X509_STORE_add_lookup(store, X509_LOOKUP_hash_dir());
    if (lookup == nullptr ||
        X509_LOOKUP_add_dir(lookup, tls.crl_dir().c_str(), X509_FILETYPE_PEM) != 1) {
      return absl::InvalidArgumentError(absl::StrCat("tls.crl_dir: cannot use ", tls.crl_dir()));
    }
    X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
  }
  // Ask for a client certificate; a browser without one still connects (and must then sign in),
  // but one that presents a certificate that does not verify is refused at the handshake.
  impl->tls.set_verify_mode(asio::ssl::verify_peer);

  const size_t colon = listen.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(listen.substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("listen: '", listen, "' is not host:port"));
  }
  std::string host = listen.substr(0, colon);
  if (host == "localhost") host = "127.0.0.1";
  const auto address = asio::ip::make_address(host.empty() ? "0.0.0.0" : host, ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("listen: bad address '", host, "'"));
  const tcp::endpoint endpoint(address, static_cast<uint16_t>(port));
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return absl::UnavailableError(absl::StrCat("cannot listen on ", listen, ": ", ec.message()));
  impl->Accept();
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->io.run(); });
  return std::unique_ptr<HttpsServer>(new HttpsServer(std::move(impl)));
}

std::string PercentDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out += ' ';
    } else if (text[i] == '%' && i + 2 < text.size() && hex(text[i + 1]) >= 0 &&
               hex(text[i + 2]) >= 0) {
      out += static_cast<char>(hex(text[i + 1]) * 16 + hex(text[i + 2]));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

std::map<std::string, std::string> ParseQuery(std::string_view query) {
  std::map<std::string, std::string> out;
  for (absl::string_view part :
       absl::StrSplit(absl::string_view(query.data(), query.size()), '&', absl::SkipEmpty())) {
    const size_t eq = part.find('=');
    const std::string_view p(part.data(), part.size());
    std::string name = PercentDecode(p.substr(0, eq));
    std::string value = eq == std::string_view::npos ? "" : PercentDecode(p.substr(eq + 1));
    out.emplace(std::move(name), std::move(value));
  }
  return out;
}

}  // namespace sarloop
