// Model-based randomized test of the embedded broker: seeded random sequences
// of publish (some delayed, some republished ids), join, leave, poll, ack,
// nack, in-progress, clock advances, seek, describe and restart run against a
// Bus on a ManualClock (file:// with restarts, mostly on an in-memory Env and
// a few seeds on a temporary directory; mem:// without restarts) and against
// the reference model in broker_model.h, which checks every step. Each
// sequence ends with a drain (time passes, everything is acked) and the final
// accounting: every message acked or in its group's dead-letter topic, and,
// for file://, nothing comes back after one more restart.
//
// A divergence names the seed and the op and shows the last ops. Replay one
// seed with a step-by-step trace (and real time per op) on stderr:
//   JUNCTION_MODEL_SEED=1234 build/debug/tests/conformance/broker_model_test
//       --gtest_filter=BrokerModel.FileBusWithRestarts
// JUNCTION_MODEL_SEEDS=n, JUNCTION_MODEL_STEPS=n and JUNCTION_MODEL_SEED_BASE=n
// change the number of seeds, the length of each sequence and the seeds'
// offset (longer hunts).

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <exception>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "broker_model.h"
#include "core/env.h"
#include "junction/bus.h"
#include "junction/clock.h"
#include "junction/deadline.h"
#include "junction/log.h"

namespace junction::model_test {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kTopic = "t";
constexpr std::uint32_t kPartitions = 2;
// Where a run's bus lives. The real disk costs ~0.35 s of syncs per seed, so
// most file:// seeds run the same durable code on an in-memory Env.
enum class Where { kFileOnMemEnv, kFileOnDisk, kMem };

struct Suite {
  Where where;
  std::uint64_t seed_base;
  int seeds;
  int steps;  // ops per sequence, before the drain
  const char* test_name;
};
constexpr Suite kFileSuite{Where::kFileOnMemEnv, 1, 1000, 24, "FileBusWithRestarts"};
constexpr Suite kDiskSuite{Where::kFileOnDisk, 2'000'001, 10, 40, "FileBusOnDisk"};
constexpr Suite kMemSuite{Where::kMem, 1'000'001, 200, 40, "MemBus"};
constexpr int kMaxMembersPerGroup = 3;
constexpr int kTail = 20;                 // ops shown with a divergence
constexpr auto kHangGuard = 20s;          // real time one bus call may take
constexpr Duration kDedupeWindow = 2min;  // TopicOptions' default
// Every clock advance is whole seconds plus 1 ms, every broker duration whole
// seconds: a timer never falls due exactly at the current time (unless it is
// zero), so no check depends on whether the broker compares with < or <=.
constexpr Duration kTick = 1ms;

std::vector<GroupSpec> GroupSpecs() {
  return {
      {"o", /*ordered=*/true, /*max_deliveries=*/3, /*max_in_flight=*/3, 10s, {1s, 4s}},
      {"u", /*ordered=*/false, /*max_deliveries=*/4, /*max_in_flight=*/4, 15s, {2s, 3s, 5s}},
  };
}

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

struct Held {
  Delivery delivery;
  std::size_t index = 0;
  std::uint64_t token = 0;
};

struct Member {
  int id = 0;
  int group = 0;
  std::unique_ptr<Subscription> subscription;
  std::vector<Held> held;
  // The last state (Runner::change_) at which its Next() found nothing after
  // an earlier Next() had already processed the timers due then.
  std::uint64_t empty_at = UINT64_MAX;
};

// One seed: a Bus, the model, and the random sequence between them.
class Runner {
 public:
  Runner(std::uint64_t seed, const Suite& suite, bool trace)
      : seed_(seed),
        suite_(suite),
        durable_(suite.where != Where::kMem),
        trace_(trace),
        rng_(seed),
        model_(std::string(kTopic), GroupSpecs()) {}
  ~Runner() {
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
  std::string Run() {
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

 private:
  // Runs `awaitable` on the test's io_context until it completes.
  template <typename T>
  T Await(Awaitable<T> awaitable) {
    std::optional<T> result;
    std::exception_ptr exception;
    bool done = false;
    boost::asio::co_spawn(
        ctx_, [&]() -> Awaitable<void> { result.emplace(co_await std::move(awaitable)); },
        [&](std::exception_ptr e) {
          exception = std::move(e);
          done = true;
        });
    const auto limit = std::chrono::steady_clock::now() + kHangGuard;
    while (!done) {
      ctx_.run_one_for(50ms);
      if (!done && std::chrono::steady_clock::now() > limit) {
        // The coroutine still references the bus: no way to unwind cleanly.
        Diverge("a bus call did not complete within " + std::to_string(kHangGuard.count()) +
                " s of real time");
        std::fprintf(stderr, "%s\n", failure_.c_str());
        std::abort();
      }
    }
    if (exception) {
      try {
        std::rethrow_exception(exception);
      } catch (const std::exception& e) {
        Diverge(std::string("a bus call threw: ") + e.what());
      } catch (...) {
        Diverge("a bus call threw");
      }
      std::fprintf(stderr, "%s\n", failure_.c_str());
      std::abort();
    }
    return std::move(*result);
  }

  bool Diverge(const std::string& what) {
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
  bool Check(const std::string& error) { return error.empty() || Diverge(error); }
  bool Expect(const Status& status, StatusCode code, const std::string& what) {
    if (status.code() == code) return true;
    std::ostringstream out;
    out << what << " returned " << status << ", expected " << code;
    return Diverge(out.str());
  }

  // `changes`: the op may have changed the bus's state (all but a Next()
  // that found nothing).
  void Trace(const std::string& line, bool changes = true) {
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

  std::uint64_t Random(std::uint64_t n) { return rng_() % n; }
  template <typename T>
  const T& Pick(const std::vector<T>& items) {
    return items[Random(items.size())];
  }

  SubscribeOptions Options(int group) const {
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
  int MembersOf(int group) const {
    int n = 0;
    for (const Member& m : members_) n += m.group == group;
    return n;
  }
  std::string Name(const Member& m) const {
    return "m" + std::to_string(m.id) + "(" + model_.spec(m.group).name + ")";
  }

  // ---- operations ----

  bool Open() {
    BusOptions options;
    options.clock = &clock_;
    options.env = env_.get();
    Result<std::unique_ptr<Bus>> bus = Bus::Open(url_, options);
    Trace("open " + url_ + " -> " + bus.status().ToString());
    if (!bus.ok()) return Expect(bus.status(), StatusCode::kOk, "Bus::Open");
    bus_ = std::move(bus).value();
    TopicOptions topic;
    topic.partitions = kPartitions;
    return Expect(Await(bus_->CreateTopic(kTopic, topic, Deadline::Infinite())), StatusCode::kOk,
                  "CreateTopic (new or identical)");
  }

  bool Step() {
    const std::uint64_t roll = Random(100);
    if (roll < 22) return Publish();
    if (roll < 24) return Republish();
    if (roll < 29) return JoinRandom();
    if (roll < 32) return Leave();
    if (roll < 53) return PollRandom();
    if (roll < 58) return Sweep(static_cast<int>(Random(2)));
    if (roll < 73) return SettleRandom(Settle::kAck);
    if (roll < 79) return SettleRandom(Settle::kNack);
    if (roll < 81) return SettleRandom(Settle::kInProgress);
    if (roll < 83) return SettleOrphan();
    if (roll < 93) return AdvanceRandom();
    if (roll < 95) return Seek();
    if (roll < 97) return Describe();
    return durable_ ? Restart() : Publish();
  }

  bool StoreResult(const Message& message, std::optional<PartitionId> forced,
                   const Result<PublishResult>& result, Duration deliver_at) {
    if (!result.ok()) return Expect(result.status(), StatusCode::kOk, "Publish " + message.id);
    const PartitionId p = result->partition;
    std::ostringstream what;
    what << "Publish " << message.id << " -> p" << p << "/" << result->offset << ": ";
    if (p.value() >= kPartitions || result->offset != Offset(next_offset_[p.value()])) {
      what << "expected the next offset " << next_offset_[p.value() % kPartitions];
      return Diverge(what.str());
    }
    if (forced && *forced != p) return Diverge(what.str() + "ignored options.partition");
    if (message.key) {
      auto [it, inserted] = key_partition_.emplace(*message.key, p);
      if (it->second != p) return Diverge(what.str() + "the key went to another partition");
    }
    ++next_offset_[p.value()];
    std::size_t index = model_.Publish({p, result->offset, message, deliver_at});
    copies_[message.id].push_back({index, model_.now()});
    return true;
  }

  bool Publish() {
    const int n = published_++;
    Message message;
    message.id = "m" + std::to_string(n);
    message.source = "/model";
    message.type = "model.event";
    if (Random(4) != 0) message.key = "k" + std::to_string(Random(3));
    message.headers["x-seq"] = std::to_string(n);
    message.data = "d" + std::to_string(n) + std::string(Random(24), 'x');
    PublishOptions options;
    Duration deliver_at = model_.now();
    std::string note;
    const std::uint64_t delay_roll = Random(10);
    if (delay_roll < 2) {
      static const std::vector<Duration> kDelays = {0s, 2s, 7s, 20s};
      options.delay = Pick(kDelays);
      deliver_at += *options.delay;
      note = " delay=" + Time(*options.delay);
    } else if (delay_roll < 3) {
      static const std::vector<Duration> kOffsets = {-5s, 3s, 11s};
      Duration offset = Pick(kOffsets);
      options.deliver_at = clock_.WallNow() + offset;
      deliver_at += offset;
      note = " deliver_at=" + Time(deliver_at);
    }
    if (!message.key && Random(5) == 0) options.partition = PartitionId(Random(kPartitions));
    Result<PublishResult> result =
        Await(bus_->Publish(kTopic, message, options, Deadline::Infinite()));
    std::ostringstream line;
    line << "publish " << message.id << " key=" << message.key.value_or("-") << note << " -> ";
    if (result.ok()) {
      line << "p" << result->partition << "/" << result->offset
           << (result->duplicate ? " duplicate" : "");
    } else {
      line << result.status();
    }
    Trace(line.str());
    if (result.ok() && result->duplicate) return Diverge("a fresh id was reported duplicate");
    return StoreResult(message, options.partition, result, deliver_at);
  }

  // Publishes an id again: within the dedupe window it must not be stored.
  bool Republish() {
    if (copies_.empty()) return Publish();
    auto it = std::next(copies_.begin(), static_cast<long>(Random(copies_.size())));
    const std::vector<Copy> copies = it->second;  // a copy: StoreResult appends to it
    const Message message =
        model_.messages()[copies.front().index].message;  // a copy: Publish grows the vector
    const Duration age = model_.now() - copies.back().stored_at;
    Result<PublishResult> result = Await(bus_->Publish(kTopic, message, {}, Deadline::Infinite()));
    std::ostringstream line;
    line << "republish " << message.id << " (age " << Time(age) << ") -> ";
    if (result.ok()) {
      line << "p" << result->partition << "/" << result->offset
           << (result->duplicate ? " duplicate" : "");
    } else {
      line << result.status();
    }
    Trace(line.str());
    if (!result.ok() || !result->duplicate) {
      if (result.ok() && age < kDedupeWindow - 1s) {
        return Diverge("republished " + message.id + " within the dedupe window: stored again");
      }
      return StoreResult(message, std::nullopt, result, model_.now());
    }
    // The copy within the window is the newest one.
    for (const Copy& copy : copies) {
      const ModelMessage& stored = model_.messages()[copy.index];
      if (stored.partition != result->partition || stored.offset != result->offset) continue;
      if (age < kDedupeWindow - 1s && copy.index != copies.back().index) break;
      return true;
    }
    return Diverge("duplicate of " + message.id + " names a position that is not its copy");
  }

  bool Join(int group) {
    Result<std::unique_ptr<Subscription>> sub =
        Await(bus_->Subscribe(kTopic, Options(group), Deadline::Infinite()));
    Member member{next_member_++, group, nullptr, {}};
    Trace("join " + Name(member) + " -> " + sub.status().ToString());
    if (!sub.ok()) return Expect(sub.status(), StatusCode::kOk, "Subscribe");
    member.subscription = std::move(sub).value();
    model_.Join(group);
    members_.push_back(std::move(member));
    return true;
  }
  bool JoinRandom() {
    const int group = static_cast<int>(Random(2));
    if (MembersOf(group) >= kMaxMembersPerGroup) return PollRandom();
    return Join(group);
  }

  bool Leave(std::size_t which) {
    Member& member = members_[which];
    Status status = Await(member.subscription->Close());
    Trace("leave " + Name(member) + " -> " + status.ToString());
    if (!Expect(status, StatusCode::kOk, "Subscription::Close")) return false;
    model_.Left(member.group, member.id);
    Result<Delivery> next = Await(member.subscription->Next(Deadline::Past()));
    if (!Expect(next.status(), StatusCode::kCancelled, "Next after Close")) return false;
    for (Held& held : member.held) {
      if (orphans_.size() < 6) orphans_.push_back({member.group, std::move(held)});
    }
    members_.erase(members_.begin() + static_cast<long>(which));
    return true;
  }
  bool Leave() {
    if (members_.empty()) return JoinRandom();
    return Leave(Random(members_.size()));
  }

  // Next(Deadline::Past()) on `member`; `delivered` says whether it got one.
  bool Poll(Member& member, Held* delivered) {
    model_.BeginPoll(member.group);
    Result<Delivery> next = Await(member.subscription->Next(Deadline::Past()));
    if (!next.ok()) {
      Trace("poll " + Name(member) + " -> " + next.status().ToString(), /*changes=*/false);
      if (!Expect(next.status(), StatusCode::kDeadlineExceeded, "Next(Past)")) return false;
      if (delivered != nullptr) delivered->token = 0;
      // Members compete: what is ready may sit with another member. Once
      // every member of the group found nothing, after one Next() had run the
      // timers due at this state, nothing may be deliverable.
      if (first_empty_at_ != change_) {
        first_empty_at_ = change_;
        return true;
      }
      member.empty_at = change_;
      std::vector<int> ids;
      for (const Member& m : members_) {
        if (m.group != member.group) continue;
        if (m.empty_at != change_) return true;
        ids.push_back(m.id);
      }
      return Check(model_.NothingDeliverable(member.group, ids));
    }
    Held held{*next, 0, 0};
    std::ostringstream line;
    line << "poll " << Name(member) << " -> " << next->topic() << "@p" << next->partition() << "/"
         << next->offset() << " " << next->message().id << " attempt " << next->attempt();
    Trace(line.str());
    if (!Check(model_.Delivered(member.group, member.id, *next, held.index, held.token))) {
      return false;
    }
    if (delivered != nullptr) *delivered = held;
    member.held.push_back(std::move(held));
    return true;
  }
  bool PollRandom() {
    if (members_.empty()) return JoinRandom();
    return Poll(members_[Random(members_.size())], nullptr);
  }

  // Polls every member of `group` until two passes in a row got nothing;
  // with `ack`, acks each delivery at once. `any` says whether one came.
  bool Sweep(int group, bool ack = false, bool* any = nullptr) {
    int quiet = 0;
    for (int pass = 0; pass < 100 && quiet < 2; ++pass) {
      bool got_one = false;
      for (std::size_t i = 0; i < members_.size(); ++i) {
        if (members_[i].group != group) continue;
        for (int polls = 0; polls < 1000; ++polls) {
          Held got;
          if (!Poll(members_[i], &got)) return false;
          if (got.token == 0) break;
          got_one = true;
          if (ack) {
            if (!SettleHeld(group, got, Settle::kAck, std::nullopt)) return false;
            members_[i].held.pop_back();
          }
        }
      }
      quiet = got_one ? 0 : quiet + 1;
      if (got_one && any != nullptr) *any = true;
    }
    return true;
  }

  bool SettleHeld(int group, const Held& held, Settle kind, std::optional<Duration> delay) {
    const std::string error = "e" + std::to_string(op_);
    Status status;
    std::string what;
    switch (kind) {
      case Settle::kAck:
        status = Await(held.delivery.Ack());
        what = "ack";
        break;
      case Settle::kNack:
        status = Await(held.delivery.Nack(delay, error));
        what = "nack" + (delay ? "(" + Time(*delay) + ")" : std::string("()"));
        break;
      case Settle::kInProgress:
        status = Await(held.delivery.InProgress());
        what = "in-progress";
        break;
    }
    Trace(what + " " + held.delivery.message().id + " attempt " +
          std::to_string(held.delivery.attempt().value()) +
          (model_.IsCurrent(group, held.index, held.token) ? "" : " (stale)") + " -> " +
          status.ToString());
    return Check(model_.Settled(group, held.index, held.token, kind, delay, error, status));
  }

  bool SettleRandom(Settle kind) {
    std::vector<std::size_t> holders;
    for (std::size_t i = 0; i < members_.size(); ++i) {
      if (!members_[i].held.empty()) holders.push_back(i);
    }
    if (holders.empty()) return PollRandom();
    Member& member = members_[Pick(holders)];
    // Mostly the current attempts; sometimes one already settled or redelivered.
    std::vector<std::size_t> current;
    for (std::size_t i = 0; i < member.held.size(); ++i) {
      if (model_.IsCurrent(member.group, member.held[i].index, member.held[i].token)) {
        current.push_back(i);
      }
    }
    const std::size_t which =
        !current.empty() && Random(5) != 0 ? Pick(current) : Random(member.held.size());
    std::optional<Duration> delay;
    if (kind == Settle::kNack && Random(2) == 0) {
      static const std::vector<Duration> kNackDelays = {0s, 1s, 6s};
      delay = Pick(kNackDelays);
    }
    const Held held = member.held[which];
    if (!SettleHeld(member.group, held, kind, delay)) return false;
    // Keep some settled ones to try again (stale), drop the rest.
    if (!model_.IsCurrent(member.group, held.index, held.token) &&
        (Random(3) != 0 || member.held.size() > 8)) {
      member.held.erase(member.held.begin() + static_cast<long>(which));
    }
    return true;
  }

  // Settles a delivery of a member that left: always stale.
  bool SettleOrphan() {
    if (orphans_.empty()) return SettleRandom(Settle::kAck);
    const std::size_t which = Random(orphans_.size());
    auto [group, held] = orphans_[which];
    orphans_.erase(orphans_.begin() + static_cast<long>(which));
    const Settle kind = static_cast<Settle>(Random(3));
    return SettleHeld(group, held, kind, std::nullopt);
  }

  void Advance(Duration delta) {
    clock_.Advance(delta);
    model_.Advance(delta);
    Trace("advance " + Time(delta));
  }
  bool AdvanceRandom() {
    static const std::vector<Duration> kAdvances = {0s, 1s, 2s, 3s, 5s, 8s, 13s, 30s};
    Advance(Pick(kAdvances) + kTick);
    return true;
  }

  bool Seek() {
    const int group = static_cast<int>(Random(2));
    const std::string& name = model_.spec(group).name;
    std::uint64_t lowest_end = next_offset_[0];
    for (std::uint64_t end : next_offset_) lowest_end = std::min(lowest_end, end);
    StartPosition position;
    const std::uint64_t roll = Random(5);
    if (roll < 2) {
      position = StartPosition::Earliest();
    } else if (roll < 4) {
      position = StartPosition::AtOffset(Offset(Random(lowest_end + 1)));
    } else {
      position = StartPosition::Latest();
    }
    Status status = Await(bus_->Seek(kTopic, name, position, Deadline::Infinite()));
    std::ostringstream line;
    line << "seek " << name << " to " << (roll < 2 ? "earliest" : roll < 4 ? "offset " : "latest");
    if (position.kind == StartPosition::Kind::kOffset) line << position.offset;
    Trace(line.str() + " -> " + status.ToString());
    if (!model_.created(group)) return Expect(status, StatusCode::kNotFound, "Seek (no group)");
    if (!Expect(status, StatusCode::kOk, "Seek")) return false;
    model_.Sought(group, position);
    return true;
  }

  bool Describe() {
    const int group = static_cast<int>(Random(2));
    if (!model_.created(group)) return PollRandom();
    Result<GroupInfo> info =
        Await(bus_->DescribeGroup(kTopic, model_.spec(group).name, Deadline::Infinite()));
    if (!info.ok()) return Expect(info.status(), StatusCode::kOk, "DescribeGroup");
    Trace("describe " + model_.spec(group).name + " -> members " + std::to_string(info->members) +
          " in_flight " + std::to_string(info->in_flight) + " backlog " +
          std::to_string(info->backlog) + " dead_lettered " + std::to_string(info->dead_lettered));
    return Check(model_.CheckDescribe(group, *info, static_cast<std::uint32_t>(MembersOf(group))));
  }

  // Close the bus (sometimes after every member left), open it again, rejoin.
  bool Restart() {
    if (Random(2) == 0) {
      while (!members_.empty()) {
        if (!Leave(members_.size() - 1)) return false;
      }
    }
    std::vector<int> rejoin;
    for (const Member& m : members_) rejoin.push_back(m.group);
    Status closed = Await(bus_->Close());
    Trace("close bus -> " + closed.ToString());
    if (!Expect(closed, StatusCode::kOk, "Bus::Close")) return false;
    if (!members_.empty()) {
      Result<Delivery> next = Await(members_.front().subscription->Next(Deadline::Past()));
      if (!Expect(next.status(), StatusCode::kCancelled, "Next after Bus::Close")) return false;
      if (!members_.front().held.empty()) {
        Status late = Await(members_.front().held.front().delivery.Ack());
        if (!Expect(late, StatusCode::kFailedPrecondition, "Ack after Bus::Close")) return false;
      }
    }
    Message message;
    message.id = "late";
    message.source = "/model";
    message.type = "model.event";
    Result<PublishResult> late = Await(bus_->Publish(kTopic, message, {}, Deadline::Infinite()));
    if (!Expect(late.status(), StatusCode::kFailedPrecondition, "Publish after Bus::Close")) {
      return false;
    }
    members_.clear();
    orphans_.clear();
    bus_.reset();
    model_.Restarted();
    if (!Open()) return false;
    for (int group : rejoin) {
      if (!Join(group)) return false;
    }
    return true;
  }

  // ---- the end ----

  // Lets time pass and acks everything until nothing more comes.
  bool Drain() {
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
      if (!Check(
              model_.CheckDescribe(group, *info, static_cast<std::uint32_t>(MembersOf(group))))) {
        return false;
      }
    }
    return true;
  }

  // Reads each group's dead-letter topic with a group of its own.
  bool CheckDeadLetters() {
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
  bool CheckNothingAfterRestart() {
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

  struct Copy {
    std::size_t index;
    Duration stored_at;
  };

  const std::uint64_t seed_;
  const Suite suite_;
  const bool durable_;
  const bool trace_;
  std::mt19937_64 rng_;
  ManualClock clock_;
  boost::asio::io_context ctx_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{
      ctx_.get_executor()};
  std::filesystem::path dir_;
  std::string url_;
  std::unique_ptr<Env> env_;  // file:// on an in-memory Env (else the real disk)
  Model model_;
  std::unique_ptr<Bus> bus_;  // outlives the subscriptions below
  std::vector<Member> members_;
  std::vector<std::pair<int, Held>> orphans_;  // deliveries of members that left
  std::uint64_t change_ = 0;                   // counts ops that may have changed the bus's state
  std::uint64_t first_empty_at_ = UINT64_MAX;  // change_ of the last Next() that found nothing
  int next_member_ = 0;
  int published_ = 0;
  int op_ = 0;
  std::vector<std::uint64_t> next_offset_ = std::vector<std::uint64_t>(kPartitions, 0);
  std::map<std::string, PartitionId> key_partition_;
  std::map<std::string, std::vector<Copy>> copies_;  // by message id
  std::deque<std::string> tail_;
  std::chrono::steady_clock::time_point traced_ = std::chrono::steady_clock::now();
  std::string failure_;
};

// Runs `count` seeds from `base`, or only JUNCTION_MODEL_SEED with a trace.
void RunSeeds(const Suite& suite) {
  const char* replay = std::getenv("JUNCTION_MODEL_SEED");
  const log::Level previous = log::GetLevel();
  log::SetLevel(log::Level::kError);  // every Open logs (fsync=never warns)
  std::vector<std::uint64_t> seeds;
  if (replay != nullptr) {
    seeds.push_back(std::strtoull(replay, nullptr, 10));
  } else {
    for (int i = 0; i < EnvInt("JUNCTION_MODEL_SEEDS", suite.seeds); ++i) {
      seeds.push_back(EnvInt("JUNCTION_MODEL_SEED_BASE", 0) + suite.seed_base + i);
    }
  }
  int failures = 0;
  for (std::uint64_t seed : seeds) {
    std::string failure = Runner(seed, suite, replay != nullptr).Run();
    if (failure.empty()) continue;
    ADD_FAILURE() << failure;
    if (++failures == 3) {
      ADD_FAILURE() << "stopped after 3 diverging seeds";
      break;
    }
  }
  log::SetLevel(previous);
}

TEST(BrokerModel, FileBusWithRestarts) { RunSeeds(kFileSuite); }

TEST(BrokerModel, FileBusOnDisk) { RunSeeds(kDiskSuite); }

TEST(BrokerModel, MemBus) { RunSeeds(kMemSuite); }

}  // namespace
}  // namespace junction::model_test
