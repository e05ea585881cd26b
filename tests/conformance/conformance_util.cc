#include "conformance_util.h"

#include <cstdlib>
#include <system_error>

#include <boost/asio/executor_work_guard.hpp>

namespace junction::conformance {

void Conformance::ReportException(const std::exception_ptr& e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const TestFailure& failure) {
    ADD_FAILURE_AT(failure.where().file, static_cast<int>(failure.where().line))
        << "unexpected error: " << failure.what();
  } catch (const std::exception& other) {
    ADD_FAILURE() << "exception: " << other.what();
  }
}

void Conformance::SetUp() {
  world_ = std::make_unique<World>();
  url_ = GetParam();
  if (url_.ends_with(kOnTestExecutor)) {
    url_.resize(url_.size() - kOnTestExecutor.size());
    on_test_executor_ = true;
  }
  if (url_ == "file://" || url_ == "junction://") {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "junction-conformance-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  if (url_ == "file://") url_ += dir_.string();
  if (url_ == "junction://") {
    server::ServerOptions server_options;
    server_options.bus_url = "file://" + dir_.string();
    server_options.listen = "127.0.0.1:0";
    server_options.shards = 2;
    server_options.clock = &world_->clock;
    Result<std::unique_ptr<server::Server>> server = server::Server::Start(server_options);
    ASSERT_TRUE(server.ok()) << server.status();
    world_->server = std::move(*server);
    url_ += world_->server->address();
  }
  BusOptions options;
  options.clock = &world_->clock;
  if (on_test_executor_) options.executor = world_->ctx.get_executor();
  Result<std::unique_ptr<Bus>> bus = Bus::Open(url_, options);
  ASSERT_TRUE(bus.ok()) << url_ << ": " << bus.status();
  world_->bus = std::move(bus).value();
}

void Conformance::TearDown() {
  if (hung_) {
    // A call is still running on the bus: destroying it is not allowed, and
    // its threads may still use the clock and post to the io_context.
    static_cast<void>(world_.release());
    return;
  }
  if (world_ && world_->bus) {
    Run([this]() -> Awaitable<void> {
      StatusOf(co_await bus().Close()).IgnoreError();  // FailedPrecondition if closed already
    });
    if (hung_) {
      static_cast<void>(world_.release());
      return;
    }
  }
  if (world_ && on_test_executor_) {
    // The broker closes, and its threads stop, on the test's io_context once
    // the last reference to it is gone.
    world_->bus.reset();
    world_->ctx.restart();
    world_->ctx.run_for(std::chrono::seconds(30));
    EXPECT_TRUE(world_->ctx.stopped()) << "the bus did not finish closing within 30 s";
  }
  if (world_ && world_->server) {
    world_->bus.reset();
    EXPECT_TRUE(world_->server->Stop().ok());
  }
  world_.reset();
  if (!dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
}

void Conformance::Run(const std::function<Awaitable<void>()>& body) {
  boost::asio::io_context& ctx = world_->ctx;
  ctx.restart();
  // Keeps run_for() running while the body waits for the bus's own threads.
  auto work = boost::asio::make_work_guard(ctx);
  bool done = false;
  boost::asio::co_spawn(ctx, body(), [&](const std::exception_ptr& e) {
    done = true;
    ReportException(e);
    ctx.stop();  // calls the test spawned and left pending must not keep us here
  });
  ctx.run_for(std::chrono::seconds(30));
  if (!done) {
    hung_ = true;
    ADD_FAILURE() << "the test did not finish within 30 s of real time (a call on " << url_
                  << " hangs)";
  }
}

Awaitable<void> Conformance::Reopen(std::optional<BusOptions> options, Where where) {
  Must(co_await bus().Close(), where);
  world_->bus.reset();
  BusOptions opened = options.value_or(BusOptions{});
  opened.clock = &world_->clock;
  if (on_test_executor_) opened.executor = world_->ctx.get_executor();
  world_->bus = Must(Bus::Open(url_, opened), where);
}

Awaitable<PublishResult> Conformance::Publish(std::string topic, Message message,
                                              PublishOptions options, Where where) {
  co_return Must(co_await bus().Publish(topic, std::move(message), options, kForever), where);
}

Awaitable<std::vector<PublishResult>> Conformance::PublishN(std::string topic, int n,
                                                            std::string prefix, Where where) {
  std::vector<PublishResult> results;
  for (int i = 0; i < n; ++i) {
    results.push_back(co_await Publish(topic, Msg(prefix + std::to_string(i)), {}, where));
  }
  co_return results;
}

Awaitable<std::unique_ptr<Subscription>> Conformance::Join(std::string topic,
                                                           SubscribeOptions options, Where where) {
  co_return Must(co_await bus().Subscribe(topic, std::move(options), kForever), where);
}

Awaitable<GroupInfo> Conformance::Describe(std::string topic, std::string group, Where where) {
  co_return Must(co_await bus().DescribeGroup(topic, group, kForever), where);
}

Awaitable<std::vector<Delivery>> Conformance::Drain(Subscription& sub, Where where) {
  std::vector<Delivery> deliveries;
  for (int i = 0; i < 10'000; ++i) {
    Result<Delivery> next = co_await sub.Next(kNow);
    if (!next.ok()) {
      if (next.status().code() != StatusCode::kDeadlineExceeded) {
        throw TestFailure("Next(Deadline::Past()): " + next.status().ToString(), where);
      }
      co_return deliveries;
    }
    deliveries.push_back(std::move(next).value());
  }
  throw TestFailure("Next(Deadline::Past()) never ran dry", where);
}

Awaitable<Delivery> Conformance::TakeOne(Subscription& sub, Where where) {
  std::vector<Delivery> deliveries = co_await Drain(sub, where);
  if (deliveries.size() != 1) {
    std::string ids;
    for (const Delivery& d : deliveries) ids += " " + d.message().id;
    throw TestFailure(
        "expected exactly one delivery, got " + std::to_string(deliveries.size()) + ":" + ids,
        where);
  }
  co_return deliveries.front();
}

}  // namespace junction::conformance
