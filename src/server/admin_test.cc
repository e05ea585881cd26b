// The admin endpoint over real loopback HTTP: /metrics in the Prometheus
// text format with the server's figures, /livez, /readyz (503 once the
// server stops), 404, 405, and a request head over the limit refused.

#include "server/admin.h"

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>

#include "junction/bus.h"
#include "server/loopback_server_test.h"

namespace junction::server {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

// Sends `request` on a fresh connection and returns everything until the
// server closes it.
std::string Exchange(const std::string& address, const std::string& request) {
  asio::io_context io;
  tcp::socket socket(io);
  std::size_t colon = address.rfind(':');
  socket.connect(tcp::endpoint(asio::ip::make_address(address.substr(0, colon)),
                               static_cast<unsigned short>(std::stoi(address.substr(colon + 1)))));
  asio::write(socket, asio::buffer(request));
  std::string response;
  boost::system::error_code ec;
  asio::read(socket, asio::dynamic_buffer(response), ec);  // until EOF
  return response;
}

std::string Get(const std::string& address, const std::string& target) {
  return Exchange(address,
                  "GET " + target + " HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
}

class AdminTest : public LoopbackServerTest {
 protected:
  void SetUp() override {
    ServerOptions options;
    options.shards = 1;
    ASSERT_NO_FATAL_FAILURE(StartServer(options));
    Result<std::unique_ptr<AdminServer>> admin = AdminServer::Start("127.0.0.1:0", *server_);
    ASSERT_TRUE(admin.ok()) << admin.status();
    admin_ = std::move(*admin);
  }
  void TearDown() override {
    admin_.reset();
    StopServer();
  }

  std::unique_ptr<AdminServer> admin_;
};

TEST_F(AdminTest, MetricsAreThePrometheusTextOfTheServersFigures) {
  std::string response = Get(admin_->address(), "/metrics");
  EXPECT_TRUE(response.starts_with("HTTP/1.1 200")) << response;
  EXPECT_NE(response.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
  EXPECT_NE(response.find("# TYPE junctiond_connections_open gauge\njunctiond_connections_open 0"),
            std::string::npos)
      << response;
  EXPECT_NE(response.find("# TYPE junctiond_frames_received_total counter"), std::string::npos);
  EXPECT_NE(response.find("junctiond_accepting 1"), std::string::npos);
  EXPECT_NE(response.find("process_resident_memory_bytes "), std::string::npos);
}

TEST(MetricsTextTest, ConnectionsMovedAreACounter) {
  ServerStats stats;
  stats.connections_moved = 7;
  std::string text = MetricsText(stats, BrokerFigures{});
  EXPECT_NE(text.find("# TYPE junctiond_connections_moved_total counter\n"
                      "junctiond_connections_moved_total 7\n"),
            std::string::npos)
      << text;
}

// Through a client of the daemon: topic "orders" (2 partitions), group
// "billing" subscribed, 3 messages published, one of them delivered and not
// acked. Returns once all that is done (the subscription stays open).
Awaitable<Status> Populate(Bus& bus, std::unique_ptr<Subscription>& sub) {
  TopicOptions two;
  two.partitions = 2;
  JUNCTION_CO_RETURN_IF_ERROR(co_await bus.CreateTopic("orders", two, Deadline::Infinite()));
  SubscribeOptions options;
  options.group = "billing";
  Result<std::unique_ptr<Subscription>> s =
      co_await bus.Subscribe("orders", options, Deadline::Infinite());
  if (!s.ok()) co_return s.status();
  sub = std::move(*s);
  for (int i = 0; i < 3; ++i) {
    Message m;
    m.id = "order-" + std::to_string(i);
    m.source = "/admin_test";
    m.type = "order.placed";
    Result<PublishResult> r = co_await bus.Publish("orders", std::move(m));
    if (!r.ok()) co_return r.status();
  }
  Result<Delivery> d = co_await sub->Next(Deadline::Infinite());
  co_return d.status();
}

Awaitable<Status> CloseBoth(Subscription* sub, Bus* bus) {
  (void)co_await sub->Close();
  co_return co_await bus->Close();
}

TEST_F(AdminTest, MetricsCarryEveryTopicAndGroupOfTheBroker) {
  Result<std::unique_ptr<Bus>> bus = Bus::Open("junction://" + server_->address());
  ASSERT_TRUE(bus.ok()) << bus.status();
  std::unique_ptr<Subscription> sub;
  asio::io_context io;
  std::future<Status> done = asio::co_spawn(io, Populate(**bus, sub), asio::use_future);
  io.run();
  Status populated = done.get();
  ASSERT_TRUE(populated.ok()) << populated;

  std::string metrics = Get(admin_->address(), "/metrics");
  EXPECT_NE(metrics.find("junctiond_broker_figures_complete 1"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("junctiond_topic_messages{topic=\"orders\"} 3"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("junctiond_topic_messages_stored_total{topic=\"orders\",partition=\"1\"}"),
            std::string::npos);
  EXPECT_NE(metrics.find("junctiond_topic_subscribers{topic=\"orders\"} 1"), std::string::npos);
  const std::string group = "{topic=\"orders\",group=\"billing\"} ";
  EXPECT_NE(metrics.find("junctiond_group_members" + group + "1"), std::string::npos);
  EXPECT_NE(metrics.find("junctiond_group_backlog_messages" + group + "3"), std::string::npos);
  EXPECT_NE(metrics.find("junctiond_group_in_flight_messages" + group + "1"), std::string::npos);
  EXPECT_NE(metrics.find("# TYPE junctiond_group_dead_lettered_total counter"), std::string::npos);

  // Closing the subscription (its delivery goes back) and the bus.
  std::future<Status> closed =
      asio::co_spawn(io, CloseBoth(sub.get(), bus->get()), asio::use_future);
  io.restart();
  io.run();
  EXPECT_TRUE(closed.get().ok());
}

TEST_F(AdminTest, ScrapesDuringTheStopNeverReachAClosedBroker) {
  std::atomic<bool> stopped{false};
  std::atomic<int> scrapes{0};
  std::thread scraper([&] {
    while (!stopped.load()) {
      std::string metrics = Get(admin_->address(), "/metrics");
      EXPECT_TRUE(metrics.starts_with("HTTP/1.1 200")) << metrics;
      ++scrapes;
    }
  });
  while (scrapes.load() < 3) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_TRUE(server_->Stop().ok());
  stopped.store(true);
  scraper.join();
  EXPECT_NE(Get(admin_->address(), "/metrics").find("junctiond_broker_figures_complete 0"),
            std::string::npos);
}

TEST(AdminMetricsTest, BrokerFamiliesAreLeftOutWhenTheBrokerDidNotAnswer) {
  std::string text = MetricsText(ServerStats{}, UnavailableError("late"));
  EXPECT_NE(text.find("junctiond_broker_figures_complete 0"), std::string::npos) << text;
  EXPECT_EQ(text.find("# TYPE junctiond_topic_"), std::string::npos) << text;
  BrokerFigures partial;
  partial.complete = false;
  partial.topics.push_back(TopicInfo{.name = "t"});
  std::string capped = MetricsText(ServerStats{}, partial);
  EXPECT_NE(capped.find("junctiond_broker_figures_complete 0"), std::string::npos) << capped;
  EXPECT_NE(capped.find("junctiond_topic_messages{topic=\"t\"} 0"), std::string::npos) << capped;
}

TEST_F(AdminTest, LivenessAndReadinessFollowTheServer) {
  EXPECT_TRUE(Get(admin_->address(), "/livez").starts_with("HTTP/1.1 200"));
  EXPECT_TRUE(Get(admin_->address(), "/readyz").starts_with("HTTP/1.1 200"));
  ASSERT_TRUE(server_->Stop().ok());
  std::string stopping = Get(admin_->address(), "/readyz");
  EXPECT_TRUE(stopping.starts_with("HTTP/1.1 503")) << stopping;
  EXPECT_NE(stopping.find("stopping"), std::string::npos);
  EXPECT_TRUE(Get(admin_->address(), "/livez").starts_with("HTTP/1.1 200"));
  std::string stopped = Get(admin_->address(), "/metrics");
  EXPECT_NE(stopped.find("junctiond_accepting 0"), std::string::npos);
  EXPECT_NE(stopped.find("junctiond_broker_figures_complete 0"), std::string::npos);
}

TEST_F(AdminTest, UnknownPathsMethodsAndOversizedHeadsAreRefused) {
  EXPECT_TRUE(Get(admin_->address(), "/nope").starts_with("HTTP/1.1 404"));
  std::string post =
      Exchange(admin_->address(), "POST /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  EXPECT_TRUE(post.starts_with("HTTP/1.1 405")) << post;
  std::string huge = Exchange(admin_->address(), "GET /metrics HTTP/1.1\r\nHost: t\r\nX-Big: " +
                                                     std::string(16 * 1024, 'a') + "\r\n\r\n");
  EXPECT_TRUE(huge.starts_with("HTTP/1.1 400")) << huge.substr(0, 200);
  // Still serving.
  EXPECT_TRUE(Get(admin_->address(), "/livez").starts_with("HTTP/1.1 200"));
}

TEST(AdminStartTest, BadAddressesAreClearErrors) {
  ServerOptions options;
  options.bus_url = "mem://";
  options.listen = "127.0.0.1:0";
  options.shards = 1;
  Result<std::unique_ptr<Server>> server = Server::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  Result<std::unique_ptr<AdminServer>> bad = AdminServer::Start("nonsense", **server);
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  Result<std::unique_ptr<AdminServer>> taken = AdminServer::Start((*server)->address(), **server);
  EXPECT_EQ(taken.status().code(), StatusCode::kUnavailable) << taken.status();
  EXPECT_TRUE((*server)->Stop().ok());
}

}  // namespace
}  // namespace junction::server
