#include "server/admin.h"

#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include "junction/log.h"
#include "server/endpoint.h"

namespace junction::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;

constexpr std::size_t kHeaderLimit = 8 * 1024;
constexpr auto kRequestTimeout = std::chrono::seconds(5);
constexpr int kMaxConnections = 16;
constexpr auto kBrokerFiguresTimeout = std::chrono::seconds(2);

prometheus::MetricFamily Family(std::string name, std::string help, prometheus::MetricType type,
                                double value) {
  prometheus::MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = type;
  prometheus::ClientMetric metric;
  if (type == prometheus::MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  family.metric.push_back(std::move(metric));
  return family;
}

// One family of labelled samples.
struct Labelled {
  prometheus::MetricFamily family;

  Labelled(std::string name, std::string help, prometheus::MetricType type) {
    family.name = std::move(name);
    family.help = std::move(help);
    family.type = type;
  }
  void Add(std::vector<prometheus::ClientMetric::Label> labels, double value) {
    prometheus::ClientMetric metric;
    metric.label = std::move(labels);
    if (family.type == prometheus::MetricType::Counter) {
      metric.counter.value = value;
    } else {
      metric.gauge.value = value;
    }
    family.metric.push_back(std::move(metric));
  }
};

void AddBrokerFamilies(const BrokerFigures& f, std::vector<prometheus::MetricFamily>& families) {
  using prometheus::MetricType;
  Labelled stored("junctiond_topic_messages_stored_total",
                  "Messages stored in a partition since the topic was created (its next offset)",
                  MetricType::Counter);
  Labelled retained("junctiond_topic_messages", "Messages a topic retains now", MetricType::Gauge);
  Labelled bytes("junctiond_topic_bytes", "Bytes a topic's log holds now", MetricType::Gauge);
  Labelled subscribers("junctiond_topic_subscribers",
                       "Open subscriptions: group members and ephemeral ones", MetricType::Gauge);
  for (const TopicInfo& t : f.topics) {
    for (const PartitionInfo& p : t.partitions) {
      stored.Add({{"topic", t.name}, {"partition", std::to_string(p.partition.value())}},
                 static_cast<double>(p.next_offset.value()));
    }
    retained.Add({{"topic", t.name}}, static_cast<double>(t.messages()));
    bytes.Add({{"topic", t.name}}, static_cast<double>(t.bytes()));
    subscribers.Add({{"topic", t.name}}, static_cast<double>(t.subscribers));
  }
  Labelled members("junctiond_group_members", "Members of a durable group", MetricType::Gauge);
  Labelled backlog("junctiond_group_backlog_messages",
                   "Messages stored and not yet acked by a group (all partitions)",
                   MetricType::Gauge);
  Labelled in_flight("junctiond_group_in_flight_messages",
                     "Messages delivered to a group and not yet acked", MetricType::Gauge);
  Labelled dead("junctiond_group_dead_lettered_total",
                "Messages a group dead-lettered since the daemon started", MetricType::Counter);
  Labelled dropped("junctiond_group_dropped_by_retention_total",
                   "Messages retention deleted before a group acked them", MetricType::Counter);
  for (const GroupInfo& g : f.groups) {
    std::vector<prometheus::ClientMetric::Label> labels = {{"topic", g.topic}, {"group", g.group}};
    members.Add(labels, g.members);
    backlog.Add(labels, static_cast<double>(g.backlog));
    in_flight.Add(labels, static_cast<double>(g.in_flight));
    dead.Add(labels, static_cast<double>(g.dead_lettered));
    dropped.Add(labels, static_cast<double>(g.dropped_by_retention));
  }
  for (Labelled* l : {&stored, &retained, &bytes, &subscribers, &members, &backlog, &in_flight,
                      &dead, &dropped}) {
    families.push_back(std::move(l->family));
  }
}

double ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  double pages = 0;
  double resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<double>(::sysconf(_SC_PAGESIZE));
}

}  // namespace

std::string MetricsText(const ServerStats& stats, const Result<BrokerFigures>& broker) {
  using prometheus::MetricType;
  std::vector<prometheus::MetricFamily> families;
  families.push_back(Family("junctiond_connections_open", "Client connections open now",
                            MetricType::Gauge, static_cast<double>(stats.connections_open)));
  families.push_back(Family("junctiond_connections_accepted_total",
                            "Client connections accepted since start", MetricType::Counter,
                            static_cast<double>(stats.connections_accepted)));
  families.push_back(Family("junctiond_connections_refused_total",
                            "Connections refused: not Junction, over the limit, bad handshake",
                            MetricType::Counter, static_cast<double>(stats.connections_refused)));
  families.push_back(Family("junctiond_frames_received_total", "Wire frames received",
                            MetricType::Counter, static_cast<double>(stats.frames_received)));
  families.push_back(Family("junctiond_protocol_errors_total",
                            "Connections closed for breaking the wire protocol",
                            MetricType::Counter, static_cast<double>(stats.protocol_errors)));
  families.push_back(Family("junctiond_connections_moved_total",
                            "Connections moved to the shard of their first topic's broker",
                            MetricType::Counter, static_cast<double>(stats.connections_moved)));
  families.push_back(Family("junctiond_accepting", "1 while the daemon accepts connections",
                            MetricType::Gauge, stats.accepting ? 1 : 0));
  families.push_back(Family("process_resident_memory_bytes", "Resident memory size in bytes",
                            MetricType::Gauge, ResidentBytes()));
  // 1 when every topic and group below is there; 0 when the broker did not
  // answer in time (none are) or some were past the caps.
  families.push_back(Family("junctiond_broker_figures_complete",
                            "1 when the junctiond_topic_* and junctiond_group_* families are whole",
                            MetricType::Gauge, broker.ok() && broker->complete ? 1 : 0));
  if (broker.ok()) AddBrokerFamilies(*broker, families);
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

struct AdminServer::Impl {
  const Server& server;
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  std::atomic<int> connections{0};
  std::string bound;  // the address, read before the thread starts
  std::thread thread;

  explicit Impl(const Server& s) : server(s) {}

  http::response<http::string_body> Answer(const http::request<http::empty_body>& request) {
    http::response<http::string_body> response;
    response.version(request.version());
    response.keep_alive(request.keep_alive());
    response.set(http::field::server, "junctiond");
    response.set(http::field::content_type, "text/plain; charset=utf-8");
    std::string_view target(request.target().data(), request.target().size());
    target = target.substr(0, target.find('?'));
    if (request.method() != http::verb::get && request.method() != http::verb::head) {
      response.result(http::status::method_not_allowed);
      response.set(http::field::allow, "GET, HEAD");
      response.body() = "only GET and HEAD\n";
    } else if (target == "/metrics") {
      response.result(http::status::ok);
      response.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
      // Blocks this thread (the admin port's only one) for at most the
      // scrape timeout: a busy broker shard answers late, not never.
      response.body() = MetricsText(server.stats(), server.broker_figures(kBrokerFiguresTimeout));
    } else if (target == "/livez") {
      response.result(http::status::ok);
      response.body() = "ok\n";
    } else if (target == "/readyz") {
      bool ready = server.stats().accepting;
      response.result(ready ? http::status::ok : http::status::service_unavailable);
      response.body() = ready ? "ready\n" : "stopping\n";
    } else {
      response.result(http::status::not_found);
      response.body() = "not found: /metrics, /livez, /readyz\n";
    }
    if (request.method() == http::verb::head) {
      response.content_length(response.body().size());
      response.body().clear();
    } else {
      response.prepare_payload();
    }
    return response;
  }

  static asio::awaitable<void> Serve(Impl* self, tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer(kHeaderLimit + 1024);
    while (true) {
      http::request_parser<http::empty_body> parser;
      parser.header_limit(kHeaderLimit);
      parser.body_limit(0);
      stream.expires_after(kRequestTimeout);  // slowloris: the whole head within 5 s
      boost::system::error_code ec;
      co_await http::async_read(stream, buffer, parser,
                                asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        if (ec != http::error::end_of_stream && ec != beast::error::timeout &&
            ec != asio::error::eof && ec != asio::error::connection_reset) {
          http::response<http::string_body> bad{http::status::bad_request, 11};
          bad.set(http::field::content_type, "text/plain; charset=utf-8");
          bad.keep_alive(false);
          bad.body() = "bad request: " + ec.message() + "\n";
          bad.prepare_payload();
          stream.expires_after(kRequestTimeout);
          co_await http::async_write(stream, bad, asio::redirect_error(asio::use_awaitable, ec));
        }
        break;
      }
      http::response<http::string_body> response = self->Answer(parser.get());
      bool keep = response.keep_alive();
      stream.expires_after(kRequestTimeout);
      co_await http::async_write(stream, response, asio::redirect_error(asio::use_awaitable, ec));
      if (ec || !keep) break;
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    --self->connections;
  }

  static asio::awaitable<void> Accept(Impl* self) {
    while (self->acceptor.is_open()) {
      boost::system::error_code ec;
      tcp::socket socket =
          co_await self->acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        if (!self->acceptor.is_open()) break;
        asio::steady_timer pause(self->io, std::chrono::milliseconds(50));  // EMFILE and such
        co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        continue;
      }
      if (self->connections.load() >= kMaxConnections) {
        socket.close(ec);  // the scraper retries; the daemon stays small
        continue;
      }
      ++self->connections;
      asio::co_spawn(self->io, Serve(self, std::move(socket)), asio::detached);
    }
  }
};

Result<std::unique_ptr<AdminServer>> AdminServer::Start(const std::string& listen,
                                                        const Server& server) {
  Result<tcp::endpoint> endpoint = ParseListen(listen);
  if (!endpoint.ok()) return InvalidArgumentError("admin " + endpoint.status().message());
  auto impl = std::make_unique<Impl>(server);
  boost::system::error_code ec;
  impl->acceptor.open(endpoint->protocol(), ec);
  if (!ec) impl->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(*endpoint, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return UnavailableError("admin address " + listen + ": " + ec.message());
  tcp::endpoint local = impl->acceptor.local_endpoint(ec);
  std::string host = local.address().to_string();
  if (local.address().is_v6()) host = "[" + host + "]";
  impl->bound = host + ":" + std::to_string(local.port());
  Impl* raw = impl.get();
  asio::co_spawn(raw->io, Impl::Accept(raw), asio::detached);
  raw->thread = std::thread([raw] {
    pthread_setname_np(pthread_self(), "jn-admin");
    raw->io.run();
  });
  return std::unique_ptr<AdminServer>(new AdminServer(std::move(impl)));
}

AdminServer::AdminServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

AdminServer::~AdminServer() {
  asio::post(impl_->io, [impl = impl_.get()] {
    boost::system::error_code ignored;
    impl->acceptor.close(ignored);
    impl->io.stop();  // open connections end with the io_context
  });
  impl_->thread.join();
}

std::string AdminServer::address() const { return impl_->bound; }

}  // namespace junction::server
