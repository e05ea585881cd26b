#include "transport/junction_bus.h"

#include <pthread.h>

#include <algorithm>
#include <map>
#include <optional>
#include <random>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>

#include "broker/message_codec.h"
#include "codec/wire.h"
#include "junction/log.h"
#include "transport/junction_conn.h"
#include "transport/junction_streams.h"

namespace junction::transport {
namespace {

using namespace junction_client;  // NOLINT(google-build-using-namespace)

// ---- Calls, each run on the connection's thread ----

awaitable<Status> CreateTopicOn(Conn* conn, std::string topic, TopicOptions options) {
  co_return co_await ExpectOk(SendFrame(conn, OnLoss::kResend, [&](c::FrameWriter& w, auto corr) {
    c::EncodeCreateTopic(w, corr, topic, options);
  }));
}

std::uint32_t MaxBatchBytes(const Conn* conn) {
  return std::min<std::uint32_t>(conn->peer_max_frame - 4096, c::kMaxBatchBytesLimit);
}

// Sends `batch` (of `count` messages) as one PUBLISH and waits for its
// results.
awaitable<Result<std::vector<PublishResult>>> SendPublish(Conn* conn, std::string topic,
                                                          Result<std::vector<std::byte>> batch,
                                                          std::size_t count, PublishOptions options,
                                                          Deadline deadline) {
  if (!batch.ok()) co_return batch.status();
  // Sent again after a reconnection: the ids make the daemon store it once.
  std::shared_ptr<Waiter> waiter =
      SendFrame(conn, OnLoss::kResend, [&](c::FrameWriter& w, auto corr) {
        c::BeginPublish(w, corr, topic, options);
        w.Raw(*batch);
        w.End();
      });
  std::optional<Result<Answer>> answer = co_await waiter->WaitUntil(deadline, conn->clock);
  if (!answer) co_return PublishDeadlineExceeded();
  Result<Answer>& a = *answer;
  if (!a.ok()) co_return a.status();
  if (a->type != c::FrameType::kPublished) co_return Unexpected(*a, c::FrameType::kPublished);
  std::vector<PublishResult> results;
  if (Status s = c::DecodePublished(a->payload, results); !s.ok()) {
    co_return UnavailableError("junctiond sent a malformed PUBLISHED: " + s.message());
  }
  if (results.size() != count) {
    co_return UnavailableError("junctiond answered a different number of publishes");
  }
  co_return results;
}

// Publishes gathered per topic are sent once the connection's thread has
// taken every call queued behind the first (a post), or at once when a
// buffer is full.
constexpr std::size_t kCoalesceMessages = 1024;
constexpr std::size_t kCoalesceBytes = 256 * 1024;

awaitable<void> SendBuffer(Conn* conn, std::shared_ptr<PublishBuffer> buffer) {
  Result<std::vector<PublishResult>> results =
      co_await SendPublish(conn, buffer->topic, buffer->builder.Build(), buffer->count, {},
                           Deadline::Infinite());  // each caller has its own deadline
  for (const PublishBuffer::Caller& caller : buffer->callers) {
    if (!results.ok()) {
      conn->Finish(*caller.call, results.status(), {});
      continue;
    }
    conn->Finish(*caller.call, OkStatus(), std::span(*results).subspan(caller.first, caller.count));
  }
}

// Sends `buffer` now: from a posted handler only, since a send that fails
// at once (a closed bus, a batch too large) completes its callers in place.
void SendBuffered(Conn* conn, std::shared_ptr<PublishBuffer> buffer) {
  conn->Spawn(SendBuffer(conn, std::move(buffer)));
}

// Sends `buffer` from a posted handler: Gather may run inside a caller's
// initiation, where no caller may be completed.
void PostSendBuffered(Conn* conn, std::shared_ptr<PublishBuffer> buffer) {
  conn->Post(
      [conn, buffer = std::move(buffer)]() mutable { SendBuffered(conn, std::move(buffer)); });
}

void FlushPublishes(Conn* conn) {
  conn->publishes_posted = false;
  auto buffers = std::move(conn->publishes);
  conn->publishes.clear();
  for (auto& [topic, buffer] : buffers) SendBuffered(conn, std::move(buffer));
}

// The size of `messages` for the coalescing limit, or the error of the
// first that this bus's own limit (BusOptions::max_message_bytes) or the
// message rules refuse: checked per message, so that one bad message never
// fails the publishes gathered with it; the daemon checks again.
Result<std::size_t> CheckedBytes(const Conn* conn, std::span<const Message> messages) {
  std::size_t bytes = 0;
  for (const Message& m : messages) {
    std::size_t size = broker::MessageSize(m);
    if (size > conn->options.max_message_bytes) {
      return ResourceExhaustedError("message of " + std::to_string(size) +
                                    " bytes exceeds max_message_bytes (" +
                                    std::to_string(conn->options.max_message_bytes) + ")");
    }
    JUNCTION_RETURN_IF_ERROR(m.Validate());
    bytes += size;
  }
  return bytes;
}

// Adds checked `messages` of `bytes` to the topic's gathered publish (its
// records encoded now: the messages are not kept), for `call` (finished by
// the answer or its deadline, which has not passed yet); posts the send
// when the buffer is full, else one flush per turn. Completes no caller
// itself: it may run inside a caller's initiation.
void Gather(Conn* conn, std::string topic, std::span<const Message> messages, std::size_t bytes,
            const std::shared_ptr<PublishCall>& call, Deadline deadline) {
  auto it = conn->publishes.find(topic);
  if (it != conn->publishes.end() && it->second->bytes + bytes > kCoalesceBytes) {
    PostSendBuffered(conn, std::move(it->second));  // full: it goes first, in order
    conn->publishes.erase(it);
    it = conn->publishes.end();
  }
  if (it == conn->publishes.end()) {
    auto buffer = std::make_shared<PublishBuffer>(MaxBatchBytes(conn), WallMs(conn->clock));
    it = conn->publishes.emplace(topic, std::move(buffer)).first;
    it->second->topic = std::move(topic);
  }
  PublishBuffer& buffer = *it->second;
  for (const Message& m : messages) {
    broker::AddMessage(buffer.builder, m, buffer.timestamp_ms, std::nullopt);
  }
  buffer.callers.push_back({buffer.count, messages.size(), call});
  buffer.bytes += bytes;
  buffer.count += messages.size();
  conn->ExpireAt(call, deadline);
  if (buffer.count >= kCoalesceMessages) {
    PostSendBuffered(conn, std::move(it->second));
    conn->publishes.erase(it);
  } else if (!conn->publishes_posted) {
    conn->publishes_posted = true;
    conn->Post([conn] { FlushPublishes(conn); });
  }
}

// A publish whose deadline passed before it could be sent: nothing was.
Status DeadlineNotSent() {
  return DeadlineExceededError("the deadline passed before the publish was sent; nothing was sent");
}

bool Plain(const PublishOptions& options) {
  return !options.partition && !options.deliver_at && !options.delay;
}

awaitable<Result<std::vector<PublishResult>>> PublishOn(Conn* conn, std::string topic,
                                                        std::vector<Message> messages,
                                                        PublishOptions options, Deadline deadline) {
  Result<std::size_t> bytes = CheckedBytes(conn, messages);
  if (!bytes.ok()) co_return bytes.status();
  // While reconnecting, a publish with a deadline waits for the connection
  // first, so that one that gives up is never sent later.
  if (!conn->ready && !deadline.is_infinite()) {
    bool connected = co_await conn->WaitConnected(deadline);
    if (!connected && conn->broken.ok()) {
      co_return DeadlineExceededError(
          "junctiond is not reachable (reconnecting); nothing was sent");
    }
  }
  if (deadline.Expired(conn->clock)) co_return DeadlineNotSent();
  if (!Plain(options) || *bytes >= kCoalesceBytes) {
    co_return co_await SendPublish(
        conn, std::move(topic),
        broker::EncodeMessageBatch(messages, WallMs(conn->clock), MaxBatchBytes(conn)),
        messages.size(), options, deadline);
  }
  co_return co_await asio::async_initiate<decltype(use_awaitable),
                                          void(Result<std::vector<PublishResult>>)>(
      [&](auto handler) {
        // (This coroutine runs on the connection's executor.)
        auto call = std::make_shared<PublishCall>(PublishCall::Many(std::move(handler)), true);
        Gather(conn, std::move(topic), messages, *bytes, call, deadline);
      },
      use_awaitable);
}

// A single Publish on the connection's executor: gathered straight from the
// caller's initiation (no coroutine of its own) when it can be, else run
// by PublishOn. `here`: the caller runs on that executor.
template <typename Handler>
void StartPublish(Conn* conn, std::string topic, std::unique_ptr<Message> message,
                  PublishOptions options, Deadline deadline, Handler handler, bool here) {
  Result<std::size_t> bytes = CheckedBytes(conn, std::span(message.get(), 1));
  if (bytes.ok() && conn->ready && conn->broken.ok() && Plain(options) && *bytes < kCoalesceBytes &&
      !deadline.Expired(conn->clock)) {
    auto call = std::make_shared<PublishCall>(PublishCall::One(std::move(handler)), here);
    Gather(conn, std::move(topic), std::span(message.get(), 1), *bytes, call, deadline);
    return;
  }
  std::vector<Message> one;
  one.push_back(std::move(*message));
  // Posted: a spawn runs PublishOn at once, and one that ends without
  // waiting (a bad message, a deadline already past) would complete the
  // caller inside its initiation.
  conn->Post([conn, topic = std::move(topic), one = std::move(one), options, deadline,
              handler = std::move(handler)]() mutable {
    asio::co_spawn(conn->executor,
                   PublishOn(conn, std::move(topic), std::move(one), options, deadline),
                   [hold = conn->Hold(), conn, handler = std::move(handler)](
                       const std::exception_ptr& e, Result<std::vector<PublishResult>> r) mutable {
                     Result<PublishResult> out = InternalError("the publish failed");
                     if (e == nullptr && r.ok()) out = r->front();
                     if (e == nullptr && !r.ok()) out = r.status();
                     Complete(conn->executor, handler, /*here=*/false, std::move(out));
                   });
  });
}

awaitable<Status> SeekOn(Conn* conn, std::string topic, std::string group, StartPosition p) {
  co_return co_await ExpectOk(SendFrame(conn, OnLoss::kResend, [&](c::FrameWriter& w, auto corr) {
    c::EncodeSeek(w, corr, {topic, group, p});
  }));
}

awaitable<Result<GroupInfo>> DescribeOn(Conn* conn, std::string topic, std::string group) {
  Result<Answer> a = co_await SendFrame(conn, OnLoss::kResend, [&](c::FrameWriter& w, auto corr) {
                       c::EncodeDescribeGroup(w, corr, {topic, group});
                     })->Wait();
  if (!a.ok()) co_return a.status();
  if (a->type != c::FrameType::kGroupInfo) co_return Unexpected(*a, c::FrameType::kGroupInfo);
  Result<GroupInfo> info = c::DecodeGroupInfo(a->payload);
  if (!info.ok()) co_return UnavailableError("junctiond: " + info.status().message());
  co_return std::move(*info);
}

// ---- Administration ----

// The answer of an administrative call, or DeadlineExceeded once `deadline`
// passed (the call may still run on the daemon).
awaitable<Result<Answer>> AdminAnswer(Conn* conn, std::shared_ptr<Waiter> waiter, Deadline deadline,
                                      c::FrameType expected) {
  std::optional<Result<Answer>> answer = co_await waiter->WaitUntil(deadline, conn->clock);
  if (!answer) co_return DeadlineExceededError("no answer from junctiond by the deadline");
  if (!answer->ok()) co_return answer->status();
  if ((*answer)->type != expected) co_return Unexpected(**answer, expected);
  co_return std::move(**answer);
}

awaitable<Result<std::vector<TopicInfo>>> TopicsOn(Conn* conn, std::optional<std::string> topic,
                                                   Deadline deadline) {
  std::shared_ptr<Waiter> waiter =
      SendFrame(conn, OnLoss::kResend, [&](c::FrameWriter& w, auto corr) {
        if (topic) {
          c::EncodeTopicOnly(w, c::FrameType::kDescribeTopic, corr, *topic);
        } else {
          w.Begin(c::FrameType::kListTopics, corr);
          w.End();
        }
      });
  Result<Answer> a = co_await AdminAnswer(conn, std::move(waiter), deadline, c::FrameType::kTopics);
  if (!a.ok()) co_return a.status();
  Result<std::vector<TopicInfo>> topics = c::DecodeTopics(a->payload);
  if (!topics.ok()) co_return UnavailableError("junctiond: " + topics.status().message());
  co_return std::move(*topics);
}

awaitable<Result<std::vector<GroupInfo>>> GroupsOn(Conn* conn, std::string topic,
                                                   Deadline deadline) {
  std::shared_ptr<Waiter> waiter =
      SendFrame(conn, OnLoss::kResend, [&](c::FrameWriter& w, auto corr) {
        c::EncodeTopicOnly(w, c::FrameType::kListGroups, corr, topic);
      });
  Result<Answer> a = co_await AdminAnswer(conn, std::move(waiter), deadline, c::FrameType::kGroups);
  if (!a.ok()) co_return a.status();
  Result<std::vector<GroupInfo>> groups = c::DecodeGroups(a->payload);
  if (!groups.ok()) co_return UnavailableError("junctiond: " + groups.status().message());
  co_return std::move(*groups);
}

awaitable<Result<std::vector<TopicRecord>>> ReadTopicOn(Conn* conn, std::string topic,
                                                        PartitionId partition, Offset from,
                                                        std::size_t max, Deadline deadline) {
  std::shared_ptr<Waiter> waiter =
      SendFrame(conn, OnLoss::kResend, [&](c::FrameWriter& w, auto corr) {
        c::EncodeReadTopic(w, corr, {topic, partition, from, max});
      });
  Result<Answer> a =
      co_await AdminAnswer(conn, std::move(waiter), deadline, c::FrameType::kRecords);
  if (!a.ok()) co_return a.status();
  std::vector<Offset> offsets;
  Result<c::RecordsFrame> f = c::DecodeRecords(a->payload, offsets);
  if (!f.ok()) co_return UnavailableError("junctiond: " + f.status().message());
  std::vector<Message> messages;
  if (!offsets.empty()) {
    Status s =
        broker::DecodeMessageBatch(f->batch, c::kMaxBatchBytesLimit, offsets.size(), messages);
    if (!s.ok()) co_return UnavailableError("junctiond sent a malformed RECORDS: " + s.message());
  }
  if (messages.size() != offsets.size() || f->partition != partition) {
    co_return UnavailableError("junctiond sent RECORDS that do not match the read");
  }
  std::vector<TopicRecord> records;
  records.reserve(messages.size());
  for (std::size_t i = 0; i < messages.size(); ++i) {
    records.push_back(TopicRecord{partition, offsets[i], std::move(messages[i])});
  }
  co_return records;
}

// Deleting or purging: not sent again after a lost connection (a purge
// repeated later would delete what was stored in between).
awaitable<Status> RemovalOn(Conn* conn, c::FrameType type, std::string topic, Deadline deadline) {
  std::shared_ptr<Waiter> waiter =
      SendFrame(conn, OnLoss::kFail,
                [&](c::FrameWriter& w, auto corr) { c::EncodeTopicOnly(w, type, corr, topic); });
  co_return (co_await AdminAnswer(conn, std::move(waiter), deadline, c::FrameType::kOk)).status();
}

awaitable<Result<Message>> RequestOn(Conn* conn, std::string topic, Message request,
                                     Deadline deadline) {
  Result<std::vector<std::byte>> batch = broker::EncodeMessageBatch(
      std::span(&request, 1), WallMs(conn->clock), c::kMaxBatchBytesLimit);
  if (!batch.ok()) co_return batch.status();
  Duration timeout{};
  if (!deadline.is_infinite()) {
    timeout = deadline.Remaining(conn->clock);
    if (timeout.count() == 0) {
      co_return DeadlineExceededError("the deadline passed before the call");
    }
  }
  // Not repeated on a new connection: a responder may have seen it.
  Result<Answer> a = co_await SendFrame(conn, OnLoss::kFail, [&](c::FrameWriter& w, auto corr) {
                       c::BeginRequest(w, corr, topic, timeout);
                       w.Raw(*batch);
                       w.End();
                     })->Wait();
  if (!a.ok()) co_return a.status();
  if (a->type != c::FrameType::kReply) co_return Unexpected(*a, c::FrameType::kReply);
  Result<std::span<const std::byte>> reply = c::DecodeBatchOnly(a->payload, "REPLY");
  if (!reply.ok()) co_return UnavailableError("junctiond: " + reply.status().message());
  std::vector<Message> messages;
  Status s = broker::DecodeMessageBatch(*reply, c::kMaxBatchBytesLimit, 1, messages);
  if (s.ok() && messages.size() != 1) s = InvalidArgumentError("not one message");
  if (!s.ok()) co_return UnavailableError("junctiond sent a malformed REPLY: " + s.message());
  co_return std::move(messages.front());
}

awaitable<Status> CloseOn(Conn* conn) {
  if (conn->closed) co_return FailedPreconditionError("the bus is closed");
  conn->closed = true;
  // Leave every group first, so that what this bus held goes back to the
  // other members before Close returns.
  std::vector<std::uint64_t> ids;
  for (const auto& [id, info] : conn->streams) ids.push_back(id);
  for (std::uint64_t id : ids) (void)co_await CloseStreamOn(conn, id);
  // Then wait (a while) for the answers still due: publishes in flight.
  asio::steady_timer pause(conn->executor);
  MonoTime give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!conn->pending.empty() && conn->connected && std::chrono::steady_clock::now() < give_up) {
    pause.expires_after(std::chrono::milliseconds(1));
    boost::system::error_code ec;
    co_await pause.async_wait(asio::redirect_error(use_awaitable, ec));
  }
  conn->Fail(FailedPreconditionError("the bus is closed"));
  co_return OkStatus();
}

class JunctionBus final : public Bus {
 public:
  explicit JunctionBus(std::shared_ptr<Conn> conn) : conn_(std::move(conn)) {}
  ~JunctionBus() override {
    Conn* conn = conn_.get();
    conn->Spawn(CloseOn(conn));  // FailedPrecondition, ignored, when closed already
  }

  const Capabilities& capabilities() const override { return capabilities_; }

  Awaitable<Status> CreateTopic(std::string_view topic, TopicOptions options,
                                Deadline deadline) override {
    JUNCTION_CO_RETURN_IF_ERROR(CheckDeadline(deadline));
    co_return co_await conn_->On(CreateTopicOn(conn_.get(), std::string(topic), options));
  }

  // Not a coroutine: the awaitable async_initiate returns is the only frame
  // per publish (src/transport/README.md, "junction://").
  Awaitable<Result<PublishResult>> Publish(std::string_view topic, Message message,
                                           PublishOptions options, Deadline deadline) override {
    if (Status s = CheckDeadline(deadline); !s.ok()) return Failed(std::move(s));
    // Boxed: the awaitable's machinery then moves a pointer, not the Message.
    auto initiate = [owner = conn_, topic = std::string(topic),
                     message = std::make_unique<Message>(std::move(message)), options,
                     deadline](auto handler) mutable {
      Conn* conn = owner.get();
      if (asio::get_associated_executor(handler) == conn->executor) {
        StartPublish(conn, std::move(topic), std::move(message), options, deadline,
                     std::move(handler), /*here=*/true);
        return;
      }
      asio::post(conn->executor,
                 [conn, topic = std::move(topic), message = std::move(message), options, deadline,
                  handler = HoldingConn<decltype(handler)>{std::move(owner),
                                                           std::move(handler)}]() mutable {
                   StartPublish(conn, std::move(topic), std::move(message), options, deadline,
                                std::move(handler), /*here=*/false);
                 });
    };
    return asio::async_initiate<decltype(use_awaitable), void(Result<PublishResult>)>(
        std::move(initiate), use_awaitable);
  }

  Awaitable<Result<std::vector<PublishResult>>> PublishBatch(std::string_view topic,
                                                             std::vector<Message> messages,
                                                             PublishOptions options,
                                                             Deadline deadline) override {
    JUNCTION_CO_RETURN_IF_ERROR(CheckDeadline(deadline));
    if (messages.empty()) co_return std::vector<PublishResult>{};
    co_return co_await conn_->On(
        PublishOn(conn_.get(), std::string(topic), std::move(messages), options, deadline));
  }

  Awaitable<Result<std::unique_ptr<Subscription>>> Subscribe(std::string_view topic,
                                                             SubscribeOptions options,
                                                             Deadline deadline) override {
    JUNCTION_CO_RETURN_IF_ERROR(CheckDeadline(deadline));
    bool prefetch = conn_->config.prefetch == Prefetch::kAll ||
                    (conn_->config.prefetch == Prefetch::kEphemeral && options.group.empty());
    Result<std::uint64_t> stream =
        co_await conn_->On(OpenStreamOn(conn_.get(), std::string(topic), std::move(options)));
    if (!stream.ok()) co_return stream.status();
    co_return MakeSubscription(conn_, std::string(topic), *stream, prefetch);
  }

  Awaitable<Status> Seek(std::string_view topic, std::string_view group, StartPosition position,
                         Deadline deadline) override {
    JUNCTION_CO_RETURN_IF_ERROR(CheckDeadline(deadline));
    co_return co_await conn_->On(
        SeekOn(conn_.get(), std::string(topic), std::string(group), position));
  }

  Awaitable<Result<GroupInfo>> DescribeGroup(std::string_view topic, std::string_view group,
                                             Deadline deadline) override {
    JUNCTION_CO_RETURN_IF_ERROR(CheckDeadline(deadline));
    co_return co_await conn_->On(DescribeOn(conn_.get(), std::string(topic), std::string(group)));
  }

  Awaitable<Result<std::vector<TopicInfo>>> ListTopics(Deadline deadline) override {
    JUNCTION_CO_RETURN_IF_ERROR(CheckDeadline(deadline));
    co_return co_await conn_->On(TopicsOn(conn_.get(), std::nullopt, deadline));
  }

  Awaitable<Result<TopicInfo>> DescribeTopic(std::string_view topic, Deadline deadline) override {
    JUNCTION_CO_RETURN_IF_ERROR(CheckDeadline(deadline));
    Result<std::vector<TopicInfo>> topics =
        co_await conn_->On(TopicsOn(conn_.get(), std::string(topic), deadline));
    if (!topics.ok()) co_return topics.status();
    if (topics->size() != 1) co_return UnavailableError("junctiond described not one topic");
    co_return std::move(topics->front());
  }

  Awaitable<Result<std::vector<GroupInfo>>> ListGroups(std::string_view topic,
                                                       Deadline deadline) override {
    JUNCTION_CO_RETURN_IF_ERROR(CheckDeadline(deadline));
    co_return co_await conn_->On(GroupsOn(conn_.get(), std::string(topic), deadline));
  }

  Awaitable<Result<std::vector<TopicRecord>>> ReadTopic(std::string_view topic,
                                                        PartitionId partition, Offset from,
                                                        std::size_t max,
                                                        Deadline deadline) override {
    JUNCTION_CO_RETURN_IF_ERROR(CheckDeadline(deadline));
    if (max == 0) co_return std::vector<TopicRecord>{};
    co_return co_await conn_->On(
        ReadTopicOn(conn_.get(), std::string(topic), partition, from, max, deadline));
  }

  Awaitable<Status> DeleteTopic(std::string_view topic, Deadline deadline) override {
    JUNCTION_CO_RETURN_IF_ERROR(CheckDeadline(deadline));
    co_return co_await conn_->On(
        RemovalOn(conn_.get(), c::FrameType::kDeleteTopic, std::string(topic), deadline));
  }

  Awaitable<Status> PurgeTopic(std::string_view topic, Deadline deadline) override {
    JUNCTION_CO_RETURN_IF_ERROR(CheckDeadline(deadline));
    co_return co_await conn_->On(
        RemovalOn(conn_.get(), c::FrameType::kPurgeTopic, std::string(topic), deadline));
  }

  Awaitable<Result<Message>> Request(std::string_view topic, Message request,
                                     Deadline deadline) override {
    co_return co_await conn_->On(
        RequestOn(conn_.get(), std::string(topic), std::move(request), deadline));
  }

  Awaitable<Result<std::unique_ptr<Responder>>> Respond(std::string_view topic,
                                                        Deadline deadline) override {
    JUNCTION_CO_RETURN_IF_ERROR(CheckDeadline(deadline));
    Result<std::uint64_t> stream =
        co_await conn_->On(OpenStreamOn(conn_.get(), std::string(topic), std::nullopt));
    if (!stream.ok()) co_return stream.status();
    co_return MakeResponder(conn_, *stream);
  }

  Awaitable<Status> Close() override { co_return co_await conn_->On(CloseOn(conn_.get())); }

 private:
  Status CheckDeadline(Deadline deadline) const {
    if (deadline.Expired(conn_->clock)) {
      return DeadlineExceededError("the deadline passed before the call");
    }
    return OkStatus();
  }
  static Awaitable<Result<PublishResult>> Failed(Status status) { co_return status; }

  std::shared_ptr<Conn> conn_;
  // Read from the user's threads: copied once, at open.
  Capabilities capabilities_ = conn_->capabilities;
};

}  // namespace

Result<std::unique_ptr<Bus>> OpenJunctionBus(JunctionConfig config, const BusOptions& options) {
  if (!options.shard_cpus.empty() || !options.blocking_cpus.empty()) {
    return InvalidArgumentError(
        "BusOptions::shard_cpus and blocking_cpus are for mem:// and file://");
  }
  const Clock& clock = options.clock != nullptr ? *options.clock : RealClock();
  auto conn = std::make_shared<Conn>(std::move(config), options, clock);
  if (conn->own_ctx) {
    Status connected = conn->RunBlocking(conn->Connect(conn->executor));
    if (!connected.ok()) return connected;
    conn->RunBlocking([](Conn* c) -> awaitable<bool> {
      c->Start();
      c->ready = true;  // nothing to reopen on the first connection
      co_return true;
    }(conn.get()));
  } else {
    // On the caller's executor, which nothing may run now but this thread
    // (BusOptions::executor): the first connection is made on an
    // io_context of the opening thread, then handed over.
    asio::io_context opening(1);
    std::optional<Status> connected;
    asio::co_spawn(opening, conn->Connect(opening.get_executor()),
                   [&connected](const std::exception_ptr& e, Status s) {
                     connected = e ? InternalError("junction://: the connection attempt threw")
                                   : std::move(s);
                   });
    opening.run();
    if (!connected) connected = InternalError("junction://: the connection attempt did not end");
    if (!connected->ok()) return *connected;
    // Every field is set before the first coroutine is posted there.
    conn->ready = true;
    conn->Start();
  }
  return std::unique_ptr<Bus>(std::make_unique<JunctionBus>(std::move(conn)));
}

}  // namespace junction::transport
