#include "model_runner.h"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <sstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "broker_model.h"
#include "junction/bus.h"
#include "junction/clock.h"
#include "junction/deadline.h"

namespace junction::model_test {
namespace {

std::vector<GroupSpec> GroupSpecs() {
  return {
      {"o", /*ordered=*/true, /*max_deliveries=*/3, /*max_in_flight=*/3, 10s, {1s, 4s}},
      {"u", /*ordered=*/false, /*max_deliveries=*/4, /*max_in_flight=*/4, 15s, {2s, 3s, 5s}},
  };
}

}  // namespace

int EnvInt(const char* name, int fallback) {
  const char* text = std::getenv(name);
  return text == nullptr ? fallback : std::atoi(text);
}

std::string Time(Duration t) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t).count();
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%lld.%03llds", static_cast<long long>(ms / 1000),
                static_cast<long long>(ms % 1000));
  return buffer;
}

Runner::Runner(std::uint64_t seed, const Suite& suite, bool trace)
    : seed_(seed),
      suite_(suite),
      durable_(suite.where != Where::kMem),
      trace_(trace),
      rng_(seed),
      model_(std::string(kTopic), GroupSpecs()) {}

Runner::~Runner() {
  members_.clear();
  orphans_.clear();
  bus_.reset();
  ctx_.poll();
  if (!dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
}

// Empty when the bus matched the model, else the divergence.
std::string Runner::Run() {
  if (suite_.where == Where::kFileOnMemEnv) {
    env_ = NewMemEnv();
    url_ = "file:///model?fsync=never";
  } else if (suite_.where == Where::kFileOnDisk) {
    std::string pattern = (std::filesystem::temp_directory_path() / "junction-model-XXXXXX");
    if (mkdtemp(pattern.data()) == nullptr) return "mkdtemp failed";
    dir_ = pattern;
    url_ = "file://" + dir_.string() + "?fsync=never";
  } else {
    url_ = "mem://";
  }
  const int steps = EnvInt("JUNCTION_MODEL_STEPS", suite_.steps);
  bool ok = Open() && (Random(2) == 0 || Join(0)) && (Random(2) == 0 || Join(1));
  for (op_ = 0; ok && op_ < steps; ++op_) ok = Step();
  // The last reopen costs a Bus::Open (~30 ms in the debug build): every
  // fourth seed (mid-sequence restarts check the same at every seed).
  const bool reopen = durable_ && (seed_ % 4 == 0 || trace_);
  if (ok) ok = Drain() && CheckDeadLetters() && (!reopen || CheckNothingAfterRestart());
  if (ok && bus_) {
    Status closed = Await(bus_->Close());
    Trace("close bus -> " + closed.ToString());
    ok = Expect(closed, StatusCode::kOk, "final Close");
  }
  members_.clear();
  orphans_.clear();
  bus_.reset();
  Trace("bus destroyed");
  return failure_;
}

bool Runner::Diverge(const std::string& what) {
  if (!failure_.empty()) return false;
  std::ostringstream out;
  out << "seed " << seed_ << " (" << url_ << ") op " << op_ << " at t=" << Time(model_.now())
      << ": " << what << "\n  last ops:\n";
  for (const std::string& line : tail_) out << "    " << line << "\n";
  out << "  replay: JUNCTION_MODEL_SEED=" << seed_
      << " build/debug/tests/conformance/broker_model_test --gtest_filter=BrokerModel."
      << suite_.test_name;
  failure_ = out.str();
  return false;
}

bool Runner::Check(const std::string& error) { return error.empty() || Diverge(error); }

bool Runner::Expect(const Status& status, StatusCode code, const std::string& what) {
  if (status.code() == code) return true;
  std::ostringstream out;
  out << what << " returned " << status << ", expected " << code;
  return Diverge(out.str());
}

// `changes`: the op may have changed the bus's state (all but a Next()
// that found nothing).
void Runner::Trace(const std::string& line, bool changes) {
  if (changes) ++change_;
  std::string entry = "#" + std::to_string(op_) + " t=" + Time(model_.now()) + " " + line;
  if (trace_) {
    // Real time since the previous line: where a slow or stuck call is.
    const auto now = std::chrono::steady_clock::now();
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - traced_).count();
    traced_ = now;
    std::fprintf(stderr, "%s  [+%lld ms]\n", entry.c_str(), static_cast<long long>(ms));
  }
  tail_.push_back(std::move(entry));
  if (tail_.size() > kTail) tail_.pop_front();
}

std::uint64_t Runner::Random(std::uint64_t n) { return rng_() % n; }

SubscribeOptions Runner::Options(int group) const {
  const GroupSpec& spec = model_.spec(group);
  SubscribeOptions options;
  options.group = spec.name;
  options.ordered = spec.ordered;
  options.ack_deadline = spec.ack_deadline;
  options.max_deliveries = spec.max_deliveries;
  options.backoff = spec.backoff;
  options.max_in_flight = spec.max_in_flight;
  return options;
}

int Runner::MembersOf(int group) const {
  int n = 0;
  for (const Member& m : members_) n += m.group == group;
  return n;
}

std::string Runner::Name(const Member& m) const {
  return "m" + std::to_string(m.id) + "(" + model_.spec(m.group).name + ")";
}

// ---- the end ----

// Lets time pass and acks everything until nothing more comes.
bool Runner::Drain() {
  Trace("drain");
  for (int group = 0; group < 2; ++group) {
    if (MembersOf(group) == 0 && !Join(group)) return false;
  }
  for (Member& member : members_) {
    for (const Held& held : member.held) {
      if (model_.IsCurrent(member.group, held.index, held.token) &&
          !SettleHeld(member.group, held, Settle::kAck, std::nullopt)) {
        return false;
      }
    }
    member.held.clear();
  }
  for (int round = 0; round < 30; ++round, ++op_) {
    bool any = false;
    for (int group = 0; group < 2; ++group) {
      if (!Sweep(group, /*ack=*/true, &any)) return false;
    }
    // Past every delay, backoff and deadline, and nothing came: done.
    if (round > 0 && !any) break;
    Advance(61s + kTick);
  }
  if (std::string open = model_.Unsettled(); !open.empty()) {
    return Diverge("after the drain, not acked nor dead-lettered: " + open);
  }
  model_.FinishDrain();
  for (int group = 0; group < 2; ++group) {
    Result<GroupInfo> info =
        Await(bus_->DescribeGroup(kTopic, model_.spec(group).name, Deadline::Infinite()));
    if (!info.ok()) return Expect(info.status(), StatusCode::kOk, "DescribeGroup");
    if (!Check(model_.CheckDescribe(group, *info, static_cast<std::uint32_t>(MembersOf(group))))) {
      return false;
    }
  }
  return true;
}

// Reads each group's dead-letter topic with a group of its own.
bool Runner::CheckDeadLetters() {
  for (int group = 0; group < 2; ++group) {
    const std::string topic = std::string(kTopic) + "." + model_.spec(group).name + ".dlq";
    SubscribeOptions options;
    options.group = "reader";
    options.max_in_flight = 100000;
    Result<std::unique_ptr<Subscription>> sub =
        Await(bus_->Subscribe(topic, options, Deadline::Infinite()));
    if (!sub.ok()) return Expect(sub.status(), StatusCode::kOk, "Subscribe " + topic);
    std::vector<DeadLetterRecord> records;
    while (true) {
      Result<Delivery> next = Await((*sub)->Next(Deadline::Past()));
      if (!next.ok()) {
        if (!Expect(next.status(), StatusCode::kDeadlineExceeded, "Next on " + topic)) {
          return false;
        }
        break;
      }
      std::optional<DeadLetterRecord> record = ParseDeadLetter(next->message());
      Trace("dead letter in " + topic + ": " + next->message().id +
            (record ? " attempts " + std::to_string(record->attempts) + " error '" +
                          record->last_error + "'"
                    : std::string(" without junction-dlq-* headers")));
      if (!record) return Diverge("a dead letter in " + topic + " lacks junction-dlq-* headers");
      records.push_back(std::move(*record));
      if (!Expect(Await(next->Ack()), StatusCode::kOk, "Ack on " + topic)) return false;
    }
    if (!Check(model_.CheckDeadLetters(group, records))) return false;
    if (!Expect(Await((*sub)->Close()), StatusCode::kOk, "Close reader")) return false;
  }
  return true;
}

// One more restart: nothing acked or dead-lettered may come back.
bool Runner::CheckNothingAfterRestart() {
  ++op_;
  members_.clear();
  orphans_.clear();
  if (!Expect(Await(bus_->Close()), StatusCode::kOk, "Bus::Close")) return false;
  bus_.reset();
  model_.Restarted();
  if (!Open() || !Join(0) || !Join(1)) return false;
  for (Member& member : members_) {
    if (!Poll(member, nullptr)) return false;
  }
  return true;
}

}  // namespace junction::model_test
