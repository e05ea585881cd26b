#include "server/server.h"

#include "server/endpoint.h"

#include <pthread.h>

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>

#include "codec/wire.h"
#include "core/affinity.h"
#include "junction/log.h"
#include "server/session.h"
#include "transport/embedded_bus.h"

namespace junction::server {
namespace asio = boost::asio;
using asio::ip::tcp;

// "127.0.0.1:7522", "[::1]:7522", "localhost:7522" as an endpoint.
Result<tcp::endpoint> ParseListen(std::string_view text) {
  std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == text.size()) {
    return InvalidArgumentError("listen address '" + std::string(text) +
                                "' is not HOST:PORT (e.g. 127.0.0.1:7522)");
  }
  std::string host(text.substr(0, colon));
  std::string_view port_text = text.substr(colon + 1);
  unsigned port = 0;
  for (char ch : port_text) {
    if (ch < '0' || ch > '9' || port > 65535) {
      return InvalidArgumentError("listen address '" + std::string(text) + "': bad port");
    }
    port = port * 10 + static_cast<unsigned>(ch - '0');
  }
  if (port > 65535) {
    return InvalidArgumentError("listen address '" + std::string(text) + "': bad port");
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host == "localhost") host = "127.0.0.1";
  boost::system::error_code ec;
  asio::ip::address address = asio::ip::make_address(host, ec);
  if (ec) {
    return InvalidArgumentError("listen address '" + std::string(text) + "': '" + host +
                                "' is not an IP address");
  }
  return tcp::endpoint(address, static_cast<std::uint16_t>(port));
}

struct Server::Impl {
  std::vector<std::unique_ptr<asio::io_context>> shards;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::vector<std::thread> threads;
  std::shared_ptr<ServerContext> context;
  std::optional<tcp::acceptor> acceptor;
  tcp::endpoint bound;
  std::size_t next_shard = 0;
  bool stopped = false;
  Status stop_status;
  // broker_figures reads in flight on shard 0; Stop waits for them before
  // it closes the bus, and none starts after.
  std::mutex figures_mu;
  std::condition_variable figures_done;
  int figures_in_flight = 0;    // guarded by figures_mu
  bool figures_closed = false;  // guarded by figures_mu

  asio::awaitable<void> Accept();
  void Refuse(tcp::socket socket);
};

void Server::Impl::Refuse(tcp::socket socket) {
  // One best-effort write of the error; the socket closes when it goes.
  auto bytes = std::make_shared<std::vector<std::byte>>();
  codec::FrameWriter w(*bytes);
  codec::EncodeError(w, 0, static_cast<std::uint16_t>(codec::ConnectionError::kTooManyConnections),
                     "junctiond has reached its connection limit");
  auto s = std::make_shared<tcp::socket>(std::move(socket));
  asio::async_write(*s, asio::buffer(*bytes), [s, bytes](boost::system::error_code, std::size_t) {
    boost::system::error_code ec;
    s->shutdown(tcp::socket::shutdown_both, ec);
  });
}

asio::awaitable<void> Server::Impl::Accept() {
  while (acceptor && acceptor->is_open()) {
    std::size_t index = next_shard;
    asio::io_context& shard = *shards[index];
    next_shard = (next_shard + 1) % shards.size();
    boost::system::error_code ec;
    tcp::socket socket = co_await acceptor->async_accept(
        shard.get_executor(), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor->is_open()) break;
      // EMFILE and friends: log, breathe, go on.
      log::Warn("accept failed", {{"error", ec.message()}});
      asio::steady_timer pause(acceptor->get_executor(), std::chrono::milliseconds(50));
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    context->accepted.fetch_add(1);
    if (context->stopping.load() || context->open.load() >= context->options.max_connections) {
      context->refused.fetch_add(1);
      Refuse(std::move(socket));
      continue;
    }
    context->open.fetch_add(1);
    auto session = std::make_shared<Session>(std::move(socket), context, index);
    {
      std::lock_guard lock(context->mu);
      context->sessions.emplace(session.get(), session);
    }
    asio::co_spawn(shard.get_executor(), Session::Run(session), asio::detached);
  }
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() { (void)Stop(std::chrono::seconds(2)); }

Result<std::unique_ptr<Server>> Server::Start(ServerOptions options) {
  JUNCTION_ASSIGN_OR_RETURN(tcp::endpoint endpoint, ParseListen(options.listen));
  if (options.max_frame_bytes < codec::kMinMaxFrameBytes ||
      options.max_frame_bytes > codec::kMaxMaxFrameBytes) {
    return InvalidArgumentError("max_frame_bytes must be between 64 KiB and 64 MiB");
  }
  if (options.max_wire_version < codec::kMinWireVersion ||
      options.max_wire_version > codec::kWireVersion) {
    return InvalidArgumentError("max_wire_version must be between " +
                                std::to_string(codec::kMinWireVersion) + " and " +
                                std::to_string(codec::kWireVersion));
  }
  std::string url = options.bus_url;
  if (url.empty()) {
    if (options.data_dir.empty()) {
      return InvalidArgumentError("junctiond needs a data directory (--data-dir)");
    }
    std::error_code fs_ec;
    std::filesystem::path dir = std::filesystem::absolute(options.data_dir, fs_ec);
    if (fs_ec) return InvalidArgumentError("data directory: " + fs_ec.message());
    url = "file://" + dir.lexically_normal().string() + "?fsync=" + options.fsync;
    if (options.blocking_threads != 0) {
      url += "&blocking_threads=" + std::to_string(options.blocking_threads);
    }
  }
  std::size_t shards = options.shards;
  if (shards == 0) {
    Result<std::vector<int>> cpus = ThreadCpus();
    shards = cpus.ok() && !cpus->empty() ? cpus->size()
                                         : std::max(1u, std::thread::hardware_concurrency());
  }
  auto impl = std::make_unique<Impl>();
  for (std::size_t i = 0; i < shards; ++i) {
    impl->shards.push_back(std::make_unique<asio::io_context>(1));
  }
  auto context = std::make_shared<ServerContext>();
  context->clock = options.clock != nullptr ? options.clock : &RealClock();
  BusOptions bus_options = options.bus;
  bus_options.clock = context->clock;
  bus_options.env = options.env;
  bus_options.max_message_bytes = options.max_message_bytes;
  // Each connection creates missing topics if its client asks (HELLO).
  bus_options.auto_create_topics = false;
  std::size_t broker_count =
      options.brokers != 0 ? options.brokers : std::min(shards, Brokers::kMaxBrokers);
  Env* env = options.env;
  context->options = std::move(options);
  // Opened before any shard runs (BusOptions::executor allows that).
  std::vector<asio::io_context*> shard_list;
  for (auto& shard : impl->shards) shard_list.push_back(shard.get());
  JUNCTION_ASSIGN_OR_RETURN(context->brokers,
                            Brokers::Open(url, broker_count, bus_options, env, shard_list));
  // Deliveries then carry the batches as stored, which sessions send on.
  for (std::size_t b = 0; b < context->brokers->size(); ++b) {
    transport::KeepStoredBatches(context->brokers->at(b));
  }
  for (auto& shard : impl->shards) context->shards.push_back(shard.get());
  impl->context = context;

  impl->acceptor.emplace(*impl->shards[0]);
  boost::system::error_code ec;
  impl->acceptor->open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) impl->acceptor->bind(endpoint, ec);
  if (!ec) impl->acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (!ec) impl->bound = impl->acceptor->local_endpoint(ec);
  auto server = std::unique_ptr<Server>(new Server(std::move(impl)));
  if (ec) {
    Status s = UnavailableError("junctiond: cannot listen on " +
                                server->impl_->context->options.listen + ": " + ec.message());
    server->impl_->acceptor.reset();
    (void)server->Stop(Duration::zero());
    return s;
  }
  Impl& i = *server->impl_;
  for (auto& shard : i.shards) i.work.push_back(asio::make_work_guard(*shard));
  asio::co_spawn(*i.shards[0], i.Accept(), asio::detached);
  for (std::size_t n = 0; n < i.shards.size(); ++n) {
    i.threads.emplace_back([shard = i.shards[n].get(), n] {
      // "jn-shard-0": tells the shards apart in top and perf.
      std::string name = "jn-shard-" + std::to_string(n);
      ::pthread_setname_np(::pthread_self(), name.c_str());
      shard->run();
    });
  }
  log::Info("junctiond listening",
            {{"address", server->address()},
             {"shards", static_cast<std::uint64_t>(i.shards.size())},
             {"brokers", static_cast<std::uint64_t>(i.context->brokers->size())},
             {"bus", url}});
  return server;
}

std::string Server::address() const {
  const tcp::endpoint& e = impl_->bound;
  std::string host = e.address().to_string();
  if (e.address().is_v6()) host = "[" + host + "]";
  return host + ":" + std::to_string(e.port());
}

std::uint16_t Server::port() const { return impl_->bound.port(); }

ServerStats Server::stats() const {
  const ServerContext& c = *impl_->context;
  return {c.accepted.load(),        c.open.load(),      c.refused.load(), c.frames.load(),
          c.protocol_errors.load(), !c.stopping.load(), c.moved.load()};
}

namespace {

asio::awaitable<Result<BrokerFigures>> CollectFigures(Brokers& brokers) {
  BrokerFigures f;
  Result<std::vector<TopicInfo>> topics = co_await brokers.ListTopics(Deadline::Infinite());
  if (!topics.ok()) co_return topics.status();
  Result<std::vector<GroupInfo>> groups = co_await brokers.ListGroups("", Deadline::Infinite());
  if (!groups.ok()) co_return groups.status();
  f.topics = std::move(*topics);
  f.groups = std::move(*groups);
  if (f.topics.size() > BrokerFigures::kMaxTopics || f.groups.size() > BrokerFigures::kMaxGroups) {
    f.complete = false;
    f.topics.resize(std::min(f.topics.size(), BrokerFigures::kMaxTopics));
    f.groups.resize(std::min(f.groups.size(), BrokerFigures::kMaxGroups));
  }
  co_return f;
}

}  // namespace

Result<BrokerFigures> Server::broker_figures(Duration timeout) const {
  Impl& i = *impl_;
  {
    std::lock_guard lock(i.figures_mu);
    if (i.figures_closed || i.context->stopping.load()) {
      return UnavailableError("junctiond is stopping");
    }
    // A read that outlived its scrape still runs: reads do not pile up
    // behind a slow shard.
    if (i.figures_in_flight > 0) {
      return UnavailableError("the broker's shard has not answered the last scrape yet");
    }
    ++i.figures_in_flight;
  }
  // On shard 0, where broker 0 runs its calls in place (the others hop to
  // their shards). The promise outlives a caller that gave up waiting; Stop
  // waits for the read itself.
  auto promise = std::make_shared<std::promise<Result<BrokerFigures>>>();
  std::future<Result<BrokerFigures>> figures = promise->get_future();
  asio::co_spawn(*i.shards[0], CollectFigures(*i.context->brokers),
                 [&i, promise](const std::exception_ptr& e, Result<BrokerFigures> r) {
                   if (e) r = InternalError("reading the broker's figures threw");
                   {
                     // First: the next scrape may start as soon as this one
                     // has its answer. Nothing touches `i` after the unlock
                     // (Stop may free it then).
                     std::lock_guard lock(i.figures_mu);
                     --i.figures_in_flight;
                     i.figures_done.notify_all();
                   }
                   promise->set_value(std::move(r));
                 });
  if (figures.wait_for(timeout) != std::future_status::ready) {
    return UnavailableError("the broker's shard did not answer within the scrape timeout");
  }
  return figures.get();
}

Status Server::Stop(Duration drain) {
  Impl& i = *impl_;
  if (i.stopped) return i.stop_status;
  i.stopped = true;
  ServerContext& c = *i.context;
  c.stopping.store(true);
  bool running = !i.threads.empty();
  if (running) {
    // Stop accepting, then GOAWAY to every connection.
    asio::co_spawn(
        *i.shards[0],
        [](Impl* impl) -> asio::awaitable<void> {
          boost::system::error_code ec;
          if (impl->acceptor) impl->acceptor->close(ec);
          co_return;
        }(&i),
        asio::use_future)
        .get();
    std::vector<std::shared_ptr<Session>> sessions;
    {
      std::lock_guard lock(c.mu);
      for (auto& [p, weak] : c.sessions) {
        if (auto s = weak.lock()) sessions.push_back(std::move(s));
      }
    }
    for (auto& s : sessions) s->Shutdown();
    sessions.clear();
    MonoTime until = std::chrono::steady_clock::now() + drain;
    while (c.open.load() > 0 && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (c.open.load() > 0) {
      log::Warn("junctiond: connections still open after the drain; closing them",
                {{"open", c.open.load()}});
      std::lock_guard lock(c.mu);
      for (auto& [p, weak] : c.sessions) {
        if (auto s = weak.lock()) s->Abort();
      }
    }
    while (c.open.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  {
    // No figure read starts now; those running end on the shard.
    std::unique_lock lock(i.figures_mu);
    i.figures_closed = true;
    i.figures_done.wait(lock, [&i] { return i.figures_in_flight == 0; });
  }
  // Close each bus on its shard: stores in flight finish, group state is
  // persisted, the clean-shutdown marker is written. All at once: each
  // waits for its own disk.
  if (c.brokers) {
    std::vector<std::future<Status>> closing;
    for (std::size_t b = 0; b < c.brokers->size(); ++b) {
      closing.push_back(asio::co_spawn(*i.shards[c.brokers->shard(b)], c.brokers->at(b).Close(),
                                       asio::use_future));
    }
    if (!running) {
      for (auto& shard : i.shards) {
        shard->run();
        shard->restart();
      }
    }
    for (std::future<Status>& closed : closing) {
      Status s = closed.get();
      if (i.stop_status.ok()) i.stop_status = s;
    }
  }
  // The buses' last references go here; each broker is released on its
  // shard (posted there), which then runs until nothing is left to do: the
  // work guards go after the release is posted, or a shard that found
  // itself idle could return before it.
  c.brokers.reset();
  i.work.clear();
  if (!running) {
    for (auto& shard : i.shards) {
      shard->restart();
      shard->run();
    }
  }
  for (std::thread& t : i.threads) t.join();
  i.threads.clear();
  i.acceptor.reset();
  return i.stop_status;
}

}  // namespace junction::server
