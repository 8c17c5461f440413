// `force watch`, `racu watch`, `ukfiu watch`, `nca watch`: a service's watch stream
// (common/messaging/watch.h) printed as it arrives, one line (or one JSON object) per event,
// reconnecting from the last cursor when the service goes away. With --cursor-file the cursor is
// kept in a file after each event is printed, so a watch run again carries on where the last one
// stopped.
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/base/files.h"
#include "common/base/ids.h"
#include "common/base/text.h"
#include "common/referral/lifecycle.h"
#include "sarloop/v1/force.grpc.pb.h"
#include "sarloop/v1/nca.grpc.pb.h"
#include "sarloop/v1/racu.grpc.pb.h"
#include "sarloop/v1/ukfiu.grpc.pb.h"
#include "tools/ctl/commands.h"
#include "tools/ctl/table.h"
#include "tools/ctl/values.h"

namespace sarloop::ctl {
namespace {

struct WatchOptions {
  v1::WatchRequest request;
  std::string cursor_file;
  // Stop after this many events (0: run until interrupted).
  int64_t count = 0;
};

absl::StatusOr<WatchOptions> ReadWatchOptions(const Args& args) {
  WatchOptions o;
  if (auto file = args.Get("cursor-file")) o.cursor_file = *file;
  if (auto cursor = args.Get("cursor")) {
    if (!o.cursor_file.empty()) return UsageError("give --cursor or --cursor-file, not both");
    o.request.set_cursor(*cursor);
  } else if (!o.cursor_file.empty()) {
    // Only a file that does not exist yet means "no cursor kept": one that cannot be read, or is
    // empty, would start the watch afresh and the next cursor kept would skip what lay between.
    std::error_code ec;
    const bool exists = std::filesystem::exists(o.cursor_file, ec);
    if (ec) return UsageError(absl::StrCat("--cursor-file ", o.cursor_file, ": ", ec.message()));
    if (exists) {
      if (std::filesystem::is_directory(o.cursor_file, ec)) {
        return UsageError(absl::StrCat("--cursor-file ", o.cursor_file, " is a directory"));
      }
      std::ifstream in(o.cursor_file);
      std::string kept;
      if (!in || !std::getline(in, kept) || absl::StripAsciiWhitespace(kept).empty()) {
        return UsageError(absl::StrCat(
            "--cursor-file ", o.cursor_file,
            " cannot be read or holds no cursor; remove it to start afresh, knowingly"));
      }
      o.request.set_cursor(std::string(absl::StripAsciiWhitespace(kept)));
    }
  }
  if (args.Has("from-start") && o.request.cursor().empty()) {
    o.request.set_start(v1::WATCH_START_BEGINNING);
  }
  if (auto n = args.Get("count")) {
    ASSIGN_OR_RETURN(o.count, ParseInteger("count", *n, 1, 1000000000));
  }
  if (auto hb = args.Get("heartbeat")) {
    ASSIGN_OR_RETURN(int64_t seconds, ParseInteger("heartbeat", *hb, 1, 300));
    o.request.set_heartbeat_seconds(static_cast<int32_t>(seconds));
  }
  return o;
}

// Written beside, synced and renamed over, so a crash or a power loss leaves the old cursor or
// the new, never half or none.
absl::Status KeepCursor(const std::string& file, const std::string& cursor) {
  return ReplaceFileSynced(file, cursor + "\n", 0600);
}

void PrintEventLine(const v1::LifecycleEvent& e, const std::string& state,
                    const std::string& organisation) {
  // The service's text, shown and never obeyed (common/base/text.h).
  std::cout << FormatTime(e.occurred_at()) << "  " << Printable(e.referral_id()) << "  "
            << EventName(e.type()) << "  " << Printable(state) << "  " << Printable(organisation)
            << "  " << Printable(e.producer()) << std::endl;
}

template <typename Message>
void PrintMessage(const Session& session, const Message& m);

template <>
void PrintMessage(const Session& session, const v1::WatchEvent& m) {
  if (session.options().json) {
    std::string json;
    (void)google::protobuf::util::MessageToJsonString(m, &json);
    std::cout << json << std::endl;
    return;
  }
  PrintEventLine(m.event(), std::string(StateName(m.referral().state())),
                 m.referral().organisation());
}

template <>
void PrintMessage(const Session& session, const v1::RegisterChange& m) {
  if (session.options().json) {
    std::string json;
    (void)google::protobuf::util::MessageToJsonString(m, &json);
    std::cout << json << std::endl;
    return;
  }
  PrintEventLine(m.event(), std::string(StateName(m.entry().state())), m.entry().organisation());
}

// Watches through `method` until --count events, or an error that reconnecting cannot mend.
template <typename Stub, typename Message>
absl::Status Watch(const Input& in, Session& session,
                   std::unique_ptr<grpc::ClientReader<Message>> (Stub::*method)(
                       grpc::ClientContext*, const v1::WatchRequest&)) {
  ASSIGN_OR_RETURN(WatchOptions o, ReadWatchOptions(in.args));
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel, session.Channel());
  RETURN_IF_ERROR(session.RequirePerson());
  Stub stub(channel);
  int64_t events = 0;
  absl::Duration backoff = absl::Milliseconds(200);
  for (;;) {
    grpc::ClientContext context;
    // No deadline: a watch runs until it is stopped. The user still names who is watching.
    session.PrepareWatch(&context);
    std::unique_ptr<grpc::ClientReader<Message>> reader = (stub.*method)(&context, o.request);
    Message m;
    while (reader->Read(&m)) {
      backoff = absl::Milliseconds(200);
      if (!m.heartbeat()) {
        PrintMessage(session, m);
        ++events;
      }
      o.request.set_cursor(m.cursor());
      o.request.clear_start();
      if (!o.cursor_file.empty()) RETURN_IF_ERROR(KeepCursor(o.cursor_file, m.cursor()));
      if (o.count > 0 && events >= o.count) {
        context.TryCancel();
        (void)reader->Finish();
        return absl::OkStatus();
      }
    }
    const grpc::Status status = reader->Finish();
    // The service stopped or the connection dropped: resume from the cursor once it is back.
    if (status.error_code() != grpc::StatusCode::UNAVAILABLE) return FromGrpcStatus(status);
    std::cerr << "watch: " << Printable(status.error_message()) << "; reconnecting in "
              << absl::FormatDuration(backoff) << std::endl;
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, absl::Seconds(5));
  }
}

absl::Status ForceWatch(const Input& in, Session& session) {
  return Watch<v1::Force::Stub, v1::WatchEvent>(in, session, &v1::Force::Stub::WatchInbox);
}
absl::Status RacuWatch(const Input& in, Session& session) {
  return Watch<v1::Racu::Stub, v1::WatchEvent>(in, session, &v1::Racu::Stub::WatchHandovers);
}
absl::Status UkfiuWatch(const Input& in, Session& session) {
  return Watch<v1::Ukfiu::Stub, v1::WatchEvent>(in, session, &v1::Ukfiu::Stub::WatchReferrals);
}
absl::Status NcaWatch(const Input& in, Session& session) {
  return Watch<v1::Nca::Stub, v1::RegisterChange>(in, session, &v1::Nca::Stub::WatchRegister);
}

Command WatchCommand(const std::string& group, const std::string& what, Handler run) {
  return {.group = group,
          .verb = "watch",
          .synopsis =
              "[--from-start] [--cursor C | --cursor-file FILE] [--count N] "
              "[--heartbeat SECONDS]",
          .summary = absl::StrCat(
              "print ", what,
              " as each is committed (TIME REFERRAL EVENT STATE ORG PRODUCER; JSON lines with "
              "--json), from now, from the start (--from-start) or after a cursor; reconnects "
              "when the service restarts; --cursor-file keeps the cursor after each event and "
              "resumes from it; --count stops after N events"),
          .options = {"from-start", "cursor", "cursor-file", "count", "heartbeat"},
          .run = run};
}

}  // namespace

std::vector<Command> WatchCommands(const std::string& group) {
  if (group == "force")
    return {WatchCommand("force", "every event on this force's referrals", ForceWatch)};
  if (group == "racu")
    return {WatchCommand("racu", "every event on this unit's handovers", RacuWatch)};
  if (group == "ukfiu")
    return {WatchCommand("ukfiu", "every event on UKFIU's referrals", UkfiuWatch)};
  return {WatchCommand("nca", "every event the register applies", NcaWatch)};
}

}  // namespace sarloop::ctl
