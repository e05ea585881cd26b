// Bus::Open (the URL factory) and the transport-independent parts of the
// public API.

#include "junction/bus.h"

#include <charconv>
#include <string>
#include <string_view>
#include <system_error>

#include <boost/url/parse.hpp>

#include "transport/embedded_bus.h"
#include "transport/junction_bus.h"

namespace junction {

Delivery::Delivery(std::string topic, PartitionId partition, Offset offset, DeliveryCount attempt,
                   Message&& message, std::shared_ptr<DeliveryControl> control)
    : topic_(std::move(topic)),
      partition_(partition),
      offset_(offset),
      attempt_(attempt),
      message_(std::move(message)),
      control_(std::move(control)) {}

Delivery::Delivery(std::string topic, PartitionId partition, Offset offset, DeliveryCount attempt,
                   const Message& message, std::shared_ptr<DeliveryControl> control)
    : topic_(std::move(topic)),
      partition_(partition),
      offset_(offset),
      attempt_(attempt),
      message_(message),
      control_(std::move(control)) {}

namespace {
Awaitable<Status> Failed(Status status) { co_return status; }
}  // namespace

// Not coroutines: the control's awaitable is returned as is, one frame fewer
// per call (DeliveryControl's awaitables do not refer to the control).
Awaitable<Status> Delivery::Ack() const {
  if (!control_) return Failed(FailedPreconditionError("empty Delivery"));
  return control_->Ack();
}

Awaitable<Status> Delivery::AckSync() const {
  if (!control_) return Failed(FailedPreconditionError("empty Delivery"));
  return control_->AckSync();
}

Awaitable<Status> Delivery::Nack(std::optional<Duration> delay, std::string error) const {
  if (!control_) return Failed(FailedPreconditionError("empty Delivery"));
  return control_->Nack(delay, std::move(error));
}

Awaitable<Status> Delivery::InProgress() const {
  if (!control_) return Failed(FailedPreconditionError("empty Delivery"));
  return control_->InProgress();
}

Awaitable<Result<Delivery>> Subscription::Next(Deadline deadline) {
  Result<std::vector<Delivery>> batch = co_await NextBatch(1, deadline);
  if (!batch.ok()) co_return batch.status();
  co_return std::move(batch->front());
}

bool IsNoResponders(const Status& status) {
  return status.code() == StatusCode::kUnavailable && status.message().starts_with("no responders");
}

namespace {

Result<std::uint64_t> ParseCount(std::string_view key, const std::string& value) {
  std::uint64_t n = 0;
  const char* end = value.data() + value.size();
  auto [ptr, ec] = std::from_chars(value.data(), end, n);
  if (value.empty() || ec != std::errc() || ptr != end) {
    return InvalidArgumentError(std::string(key) + ": not a number: '" + value + "'");
  }
  return n;
}

Status ApplyQuery(const boost::urls::url_view& url, transport::EmbeddedConfig& config) {
  for (const auto& param : url.params()) {
    if (param.key == "fsync") {
      JUNCTION_ASSIGN_OR_RETURN(config.log.fsync, storage::FsyncPolicy::Parse(param.value));
    } else if (param.key == "segment_bytes") {
      JUNCTION_ASSIGN_OR_RETURN(config.log.segment_bytes, ParseCount(param.key, param.value));
    } else if (param.key == "max_group_entries") {
      JUNCTION_ASSIGN_OR_RETURN(config.max_group_entries, ParseCount(param.key, param.value));
      if (config.max_group_entries < 1 || config.max_group_entries > 10'000'000) {
        return InvalidArgumentError("max_group_entries: between 1 and 10000000, not " +
                                    param.value);
      }
    } else if (param.key == "blocking_threads") {
      JUNCTION_ASSIGN_OR_RETURN(config.blocking_threads, ParseCount(param.key, param.value));
      if (config.blocking_threads < 1 || config.blocking_threads > 256) {
        return InvalidArgumentError("blocking_threads: between 1 and 256, not " + param.value);
      }
    } else {
      return InvalidArgumentError(
          "unknown URL option '" + param.key +
          "' (known: fsync, segment_bytes, max_group_entries, blocking_threads)");
    }
  }
  return config.log.Validate();
}

}  // namespace

Result<std::unique_ptr<Bus>> Bus::Open(std::string_view url_text, const BusOptions& options) {
  auto parsed = boost::urls::parse_uri(url_text);
  if (!parsed) {
    return InvalidArgumentError("bad bus URL '" + std::string(url_text) +
                                "': " + parsed.error().message());
  }
  const boost::urls::url_view& url = *parsed;
  std::string scheme(url.scheme());
  transport::EmbeddedConfig config;
  if (scheme == "mem") {
    config.durable = false;
    config.log.fsync = storage::FsyncPolicy::Never();
    JUNCTION_RETURN_IF_ERROR(ApplyQuery(url, config));
    return transport::OpenEmbeddedBus(std::move(config), options);
  }
  if (scheme == "file") {
    if (!url.host().empty() && url.host() != "localhost") {
      return InvalidArgumentError("file:// URLs name a local directory: file:///path");
    }
    std::string path = url.path();
    if (path.empty() || path.front() != '/') {
      return InvalidArgumentError("file:// needs an absolute directory: file:///var/lib/junction");
    }
    config.dir = path;
    JUNCTION_RETURN_IF_ERROR(ApplyQuery(url, config));
    return transport::OpenEmbeddedBus(std::move(config), options);
  }
  if (scheme == "junction") {
    transport::JunctionConfig jc;
    if (url.host().empty()) {
      return InvalidArgumentError("junction:// needs a host: junction://127.0.0.1:7522");
    }
    jc.host = url.host_address();
    if (jc.host.size() >= 2 && jc.host.front() == '[')
      jc.host = jc.host.substr(1, jc.host.size() - 2);
    if (url.has_port()) {
      JUNCTION_ASSIGN_OR_RETURN(std::uint64_t port, ParseCount("port", std::string(url.port())));
      if (port == 0 || port > 65535) return InvalidArgumentError("junction://: bad port");
      jc.port = static_cast<std::uint16_t>(port);
    }
    for (const auto& param : url.params()) {
      if (param.key == "connect_timeout_ms") {
        JUNCTION_ASSIGN_OR_RETURN(std::uint64_t ms, ParseCount(param.key, param.value));
        jc.connect_timeout = std::chrono::milliseconds(ms);
      } else if (param.key == "heartbeat_ms") {
        JUNCTION_ASSIGN_OR_RETURN(std::uint64_t ms, ParseCount(param.key, param.value));
        jc.heartbeat = std::chrono::milliseconds(ms);
      } else if (param.key == "prefetch") {
        if (param.value == "none") {
          jc.prefetch = transport::Prefetch::kNone;
        } else if (param.value == "ephemeral") {
          jc.prefetch = transport::Prefetch::kEphemeral;
        } else if (param.value == "all") {
          jc.prefetch = transport::Prefetch::kAll;
        } else {
          return InvalidArgumentError(
              "junction://: prefetch must be none, ephemeral or all, not '" +
              std::string(param.value) + "'");
        }
      } else {
        return InvalidArgumentError("unknown junction:// option '" + param.key +
                                    "' (known: connect_timeout_ms, heartbeat_ms, prefetch)");
      }
    }
    return transport::OpenJunctionBus(std::move(jc), options);
  }
  if (scheme == "nats" || scheme == "amqp" || scheme == "kafka") {
    return UnimplementedError("the " + scheme +
                              ":// transport is not built yet; this build has mem://, file:// "
                              "and junction://");
  }
  return InvalidArgumentError("unknown bus URL scheme '" + scheme +
                              "' (known: mem://, file:///path, junction://host:port)");
}

}  // namespace junction
