// The completion-queue serving mechanism (common/rpc/serving.h) and the health service built on it
// (common/rpc/health.h), in process: a server on a loopback port the OS chooses, served by one
// CallQueue, called through gRPC's generated health stub and a generic stub for raw bytes.
#include "common/rpc/serving.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <pthread.h>

#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "common/rpc/health.h"
#include "common/storage/storage.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "sarloop/v1/racu.pb.h"
#include "tests/testutil/testutil.h"

namespace sarloop {
namespace {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

TEST(RawService, CheckNamesAMethodWithoutAHandler) {
  v1::AcceptHandoverRequest::descriptor();  // links racu.proto's descriptors in
  RawService raw("sarloop.v1.Racu");
  raw.Unary<grpc::health::v1::HealthCheckRequest, grpc::health::v1::HealthCheckResponse>(
      "ListHandovers", [](UnaryCall* call, const HealthCheckRequest*, HealthCheckResponse*) {
        call->Finish(grpc::Status::OK);
      });
  absl::Status s = raw.Check();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("/sarloop.v1.Racu/"), std::string::npos) << s;

  RawService unknown("sarloop.v1.NoSuchService");
  EXPECT_EQ(unknown.Check().code(), absl::StatusCode::kFailedPrecondition);
}

// A server with the health service only, and a channel to it.
class HealthServer : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    calls_ = std::make_unique<CallQueue>(builder);
    service_ = health_.Service();
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_NE(port, 0);
    calls_->Start({service_.get()});
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                   grpc::InsecureChannelCredentials());
    stub_ = grpc::health::v1::Health::NewStub(channel_);
  }

  void TearDown() override {
    health_.Stop();
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    calls_->Stop();
  }

  // Check's status code and serving status.
  std::pair<grpc::StatusCode, int> Check(const std::string& service) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    HealthCheckRequest req;
    req.set_service(service);
    HealthCheckResponse resp;
    grpc::Status s = stub_->Check(&ctx, req, &resp);
    return {s.error_code(), resp.status()};
  }

  Health health_;
  std::unique_ptr<CallQueue> calls_;
  std::shared_ptr<RawService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<grpc::health::v1::Health::Stub> stub_;
};

TEST_F(HealthServer, CheckAnswersWhatWasSetAndNotFoundOtherwise) {
  EXPECT_EQ(Check("").first, grpc::StatusCode::NOT_FOUND);
  health_.SetServingStatus("", true);
  health_.SetServingStatus("sarloop.v1.Racu", false);
  EXPECT_EQ(Check(""), std::make_pair(grpc::StatusCode::OK, int{HealthCheckResponse::SERVING}));
  EXPECT_EQ(Check("sarloop.v1.Racu"),
            std::make_pair(grpc::StatusCode::OK, int{HealthCheckResponse::NOT_SERVING}));
  health_.SetServingStatus(true);  // every name set so far
  EXPECT_EQ(Check("sarloop.v1.Racu").second, HealthCheckResponse::SERVING);
}

TEST_F(HealthServer, WatchSendsTheStatusThenEachChangeAndEndsWhenStopped) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  HealthCheckRequest req;
  req.set_service("sarloop.v1.Force");
  auto reader = stub_->Watch(&ctx, req);
  HealthCheckResponse resp;
  ASSERT_TRUE(reader->Read(&resp));
  EXPECT_EQ(resp.status(), HealthCheckResponse::SERVICE_UNKNOWN);
  health_.SetServingStatus("sarloop.v1.Force", true);
  ASSERT_TRUE(reader->Read(&resp));
  EXPECT_EQ(resp.status(), HealthCheckResponse::SERVING);
  health_.SetServingStatus("sarloop.v1.Other", false);  // another name: nothing sent
  health_.SetServingStatus("sarloop.v1.Force", false);
  ASSERT_TRUE(reader->Read(&resp));
  EXPECT_EQ(resp.status(), HealthCheckResponse::NOT_SERVING);
  health_.Stop();
  EXPECT_FALSE(reader->Read(&resp));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(HealthServer, MalformedBytesAreInvalidArgumentNamingTheTypeAndTheServerGoesOn) {
  const std::string garbage = "\xff\xff\xff\xff";
  grpc::Slice slice(garbage);
  grpc::ByteBuffer req(&slice, 1), resp;
  grpc::GenericStub stub(channel_);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  std::promise<grpc::Status> done;
  stub.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &req, &resp,
                 [&](grpc::Status s) { done.set_value(s); });
  const grpc::Status s = done.get_future().get();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("grpc.health.v1.HealthCheckRequest"), std::string::npos)
      << s.error_message();
  health_.SetServingStatus("", true);
  EXPECT_EQ(Check("").second, HealthCheckResponse::SERVING);
}

TEST_F(HealthServer, AWatcherThatLeavesIsForgotten) {
  {
    grpc::ClientContext ctx;
    HealthCheckRequest req;
    auto reader = stub_->Watch(&ctx, req);
    HealthCheckResponse resp;
    ASSERT_TRUE(reader->Read(&resp));
    ctx.TryCancel();
    while (reader->Read(&resp)) {
    }
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  // Changes after it left reach nobody and break nothing.
  for (int i = 0; i < 10; ++i) health_.SetServingStatus("", i % 2 == 0);
  EXPECT_EQ(Check("").first, grpc::StatusCode::OK);
}

// The queue's thread hosts a database's writer (as every sarloop server does): a write call is
// taken, run, committed and answered on that one thread, and answered only once its row is
// durable; a Transact from another thread wakes the queue and runs there too; after Stop the
// writer is released and the database's own thread writes.
TEST(CallQueueHosting, AWriteCallIsRunCommittedAndAnsweredOnTheServingThread) {
  const Migration schema[] = {{"items", "CREATE TABLE items (name TEXT PRIMARY KEY)"}};
  testing::TempDir dir;
  absl::StatusOr<std::unique_ptr<Database>> opened = Database::Open(dir.File("a.db"), schema);
  ASSERT_TRUE(opened.ok()) << opened.status();
  std::unique_ptr<Database> db = std::move(*opened);
  absl::StatusOr<std::unique_ptr<Database>> other = Database::OpenReadOnly(dir.File("a.db"));
  ASSERT_TRUE(other.ok()) << other.status();
  auto stored = [&](const std::string& name) {
    int64_t n = -1;
    EXPECT_TRUE((*other)
                    ->Read([&](Txn& t) -> absl::Status {
                      auto rows = t.Query("SELECT COUNT(*) FROM items WHERE name = ?", {name});
                      if (!rows.ok()) return rows.status();
                      n = (*rows)[0].Int(0);
                      return absl::OkStatus();
                    })
                    .ok());
    return n;
  };

  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  CallQueue calls(builder);
  std::mutex mu;
  std::set<std::thread::id> handler_threads, job_threads, answer_threads;
  std::atomic<int> on_the_calls_arena{0};
  RawService raw("grpc.health.v1.Health");
  raw.Unary<HealthCheckRequest, HealthCheckResponse>(
      "Check", [&](UnaryCall* call, const HealthCheckRequest* req, HealthCheckResponse* resp) {
        {
          std::lock_guard lock(mu);
          handler_threads.insert(std::this_thread::get_id());
        }
        // The call's messages are on its arena, freed with it in a few blocks.
        if (req->GetArena() != nullptr && resp->GetArena() == req->GetArena()) ++on_the_calls_arena;
        const std::string name = req->service();
        db->Submit([&, call, resp, name]() -> Database::Completion {
          {
            std::lock_guard lock(mu);
            job_threads.insert(std::this_thread::get_id());
          }
          absl::Status s = db->Transact(
              [&](Txn& t) { return t.Exec("INSERT INTO items (name) VALUES (?)", {name}); });
          return [&, call, resp, s, name](const absl::Status& commit) {
            {
              std::lock_guard lock(mu);
              answer_threads.insert(std::this_thread::get_id());
            }
            // SERVING when the row was already durable as the answer went out.
            resp->set_status(stored(name) == 1 ? HealthCheckResponse::SERVING
                                               : HealthCheckResponse::NOT_SERVING);
            call->Finish(s.ok() && commit.ok() ? grpc::Status::OK
                                               : grpc::Status(grpc::StatusCode::INTERNAL, ""));
          };
        });
      });
  builder.RegisterService(&raw);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  ASSERT_THAT(db->HostWriter([&calls] { calls.Wake(); }), testing::IsOk());
  calls.Host([&db] { return db->RunWriter(); }, [&db] { db->ReleaseWriter(); });
  calls.Start({&raw});

  auto stub = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  constexpr int kCalls = 24;
  std::vector<std::thread> callers;
  std::atomic<int> answered_durable{0};
  for (int i = 0; i < kCalls; ++i) {
    callers.emplace_back([&, i] {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
      HealthCheckRequest req;
      req.set_service("call-" + std::to_string(i));
      HealthCheckResponse resp;
      grpc::Status s = stub->Check(&ctx, req, &resp);
      EXPECT_TRUE(s.ok()) << s.error_message();
      if (resp.status() == HealthCheckResponse::SERVING) ++answered_durable;
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(answered_durable.load(), kCalls);
  EXPECT_EQ(on_the_calls_arena.load(), kCalls);
  {
    std::lock_guard lock(mu);
    ASSERT_EQ(handler_threads.size(), 1u);
    EXPECT_EQ(job_threads, handler_threads);
    EXPECT_EQ(answer_threads, handler_threads);
  }
  const std::thread::id serving = *handler_threads.begin();

  // From another thread: woken, run on the serving thread.
  std::thread::id ran_on;
  ASSERT_THAT(db->Transact([&](Txn& t) {
    ran_on = std::this_thread::get_id();
    return t.Exec("INSERT INTO items (name) VALUES ('from a thread')");
  }),
              testing::IsOk());
  EXPECT_EQ(ran_on, serving);
  EXPECT_EQ(stored("from a thread"), 1);

  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  calls.Stop();
  calls.Wake();  // after Stop: nothing (an alarm on a queue shut down would abort)
  // (By name: the writer's new thread may take the serving thread's id, which is free again.)
  char thread_name[16] = {};
  ASSERT_THAT(db->Transact([&](Txn& t) {
    pthread_getname_np(pthread_self(), thread_name, sizeof thread_name);
    return t.Exec("INSERT INTO items (name) VALUES ('after stop')");
  }),
              testing::IsOk());
  EXPECT_STREQ(thread_name, "sarloop-writer");
  EXPECT_EQ(stored("after stop"), 1);
}

}  // namespace
}  // namespace sarloop
