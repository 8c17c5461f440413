// The HTTPS server the dashboard and every service's metrics use, over real TLS on loopback:
// connections held open and silent cannot keep a client out, and an answer gets its own time
// however long the handler took.
#include "common/server/https_server.h"

#include <sys/socket.h>
#include <sys/time.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/testutil/chain.h"
#include "tests/testutil/testutil.h"

namespace sarloop {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using ::sarloop::testing::RunPki;
using ::sarloop::testing::TempDir;

class HttpsServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pki_root_ = new TempDir;
    ASSERT_TRUE(RunPki(absl::StrCat("init ", Pki())).ok());
    ASSERT_TRUE(RunPki(absl::StrCat("issue ", Pki(), " nca spiffe://sarloop/nca --server")).ok());
    ASSERT_TRUE(
        RunPki(absl::StrCat("issue ", Pki(), " analyst-alice spiffe://sarloop/analyst/alice"))
            .ok());
  }
  static void TearDownTestSuite() {
    delete pki_root_;
    pki_root_ = nullptr;
  }
  static std::string Pki() { return pki_root_->File("pki"); }

  void Start(HttpsOptions options) {
    v1::TlsConfig tls;
    tls.set_cert_file(Pki() + "/nca/cert.pem");
    tls.set_key_file(Pki() + "/nca/key.pem");
    tls.set_ca_file(Pki() + "/nca/ca.pem");
    auto server = HttpsServer::Start(
        "127.0.0.1:0", tls,
        [this](const HttpRequest& request) {
          std::this_thread::sleep_for(handler_takes_.load());
          return HttpResponse{
              200, "text/plain", absl::StrCat(request.peer_uri, " ", request.fetch_site), {}};
        },
        options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }

  // One GET / with the analyst's certificate: the body, or what went wrong. Every read and write
  // gives up after 10 s, so a server that never answers fails the test rather than hanging it.
  std::string Get() {
    try {
      asio::io_context io;
      asio::ssl::context ctx(asio::ssl::context::tls_client);
      ctx.load_verify_file(Pki() + "/analyst-alice/ca.pem");
      ctx.use_certificate_chain_file(Pki() + "/analyst-alice/cert.pem");
      ctx.use_private_key_file(Pki() + "/analyst-alice/key.pem", asio::ssl::context::pem);
      ctx.set_verify_mode(asio::ssl::verify_peer);
      beast::ssl_stream<tcp::socket> stream(io, ctx);
      stream.next_layer().connect(
          tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->port()));
      timeval limit{10, 0};
      ::setsockopt(stream.next_layer().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &limit,
                   sizeof(limit));
      stream.handshake(asio::ssl::stream_base::client);
      http::request<http::empty_body> req{http::verb::get, "/", 11};
      req.set(http::field::host, "localhost");
      req.set("Sec-Fetch-Site", "none");
      http::write(stream, req);
      beast::flat_buffer buffer;
      http::response<http::string_body> res;
      http::read(stream, buffer, res);
      return res.body();
    } catch (const std::exception& e) {
      return absl::StrCat("failed: ", e.what());
    }
  }

  static TempDir* pki_root_;
  std::atomic<std::chrono::milliseconds> handler_takes_{std::chrono::milliseconds(0)};
  std::unique_ptr<HttpsServer> server_;
};

TempDir* HttpsServerTest::pki_root_ = nullptr;

// Every connection the server has room for, taken by someone who connects and says nothing: a
// client that comes next is still served, each time, and the server names the certificate and
// where the browser says the request came from.
TEST_F(HttpsServerTest, SilentConnectionsCannotKeepAClientOut) {
  HttpsOptions options;
  options.max_connections = 8;
  options.timeout = std::chrono::seconds(60);  // the silent ones would outlast the test
  Start(options);
  asio::io_context io;
  std::vector<std::unique_ptr<tcp::socket>> silent;
  for (int i = 0; i < 3 * options.max_connections; ++i) {
    silent.push_back(std::make_unique<tcp::socket>(io));
    silent.back()->connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->port()));
    if (i % options.max_connections == options.max_connections - 1) {
      EXPECT_EQ(Get(), "spiffe://sarloop/analyst/alice none") << "after " << i + 1 << " silent";
    }
  }
}

// The answer's time starts when it is sent: a handler that takes longer than the server's timeout
// still has its answer delivered (it used to inherit what was left of the request's deadline).
TEST_F(HttpsServerTest, AnAnswerIsSentHoweverLongTheHandlerTook) {
  HttpsOptions options;
  options.timeout = std::chrono::milliseconds(600);
  Start(options);
  handler_takes_ = std::chrono::milliseconds(900);
  EXPECT_EQ(Get(), "spiffe://sarloop/analyst/alice none");
}

}  // namespace
}  // namespace sarloop
