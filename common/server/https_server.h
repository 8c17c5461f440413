// A small HTTPS server (Boost.Beast over OpenSSL) for what people open in a browser: the NCA
// dashboard. TLS 1.3 only, with the service's own certificate; a client certificate from the
// sarloop CA is asked for but optional, and when one is presented and verifies, its URI SAN is
// handed to the handler. There is no plaintext listener.
//
// Bounds: request headers 16 KiB, body 64 KiB, 10 s to handshake, to send a request and to take
// the answer, 100 requests a connection, at most 64 connections at once. A connection past the
// 64th closes the one that has waited longest for its peer (a handshake or a request not sent),
// so connections held open and silent cannot keep anyone else out.
#ifndef SARLOOP_COMMON_SERVER_HTTPS_SERVER_H_
#define SARLOOP_COMMON_SERVER_HTTPS_SERVER_H_

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "sarloop/v1/config.pb.h"

namespace sarloop {

struct HttpRequest {
  std::string method;
  // The path without the query, percent-decoded.
  std::string path;
  // Query parameters, percent-decoded; the first of a repeated name wins.
  std::map<std::string, std::string> query;
  // The Cookie header.
  std::string cookie;
  // The Sec-Fetch-Site header a browser sends ("same-origin", "same-site", "cross-site", "none"),
  // or empty.
  std::string fetch_site;
  // The URI SAN of a client certificate that verified against the CA, or empty.
  std::string peer_uri;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/html; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpsOptions {
  // To handshake, to send a request, and to take an answer.
  std::chrono::steady_clock::duration timeout = std::chrono::seconds(10);
  int max_connections = 64;
};

class HttpsServer {
 public:
  // Listens on `listen` (host:port; port 0 picks one) and serves on its own thread until
  // destroyed. The handler runs on that thread, one request at a time.
  static absl::StatusOr<std::unique_ptr<HttpsServer>> Start(const std::string& listen,
                                                            const v1::TlsConfig& tls,
                                                            HttpHandler handler,
                                                            HttpsOptions options = {});
  ~HttpsServer();
  int port() const;

 private:
  struct Impl;
  explicit HttpsServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// "a%20b" -> "a b"; '+' is a space. Invalid escapes are kept as they are.
std::string PercentDecode(std::string_view text);
std::map<std::string, std::string> ParseQuery(std::string_view query);

}  // namespace sarloop

#endif  // SARLOOP_COMMON_SERVER_HTTPS_SERVER_H_
