#pragma once

// One client connection of junctiond (internal to src/server). Everything a
// session does runs on its shard's executor, one handler at a time, so its
// state takes no locks; calls into the bus hop to the broker's shard and
// resume here.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "codec/wire.h"
#include "junction/bus.h"
#include "server/brokers.h"
#include "server/server.h"
#include "transport/embedded_bus.h"

namespace junction::server {

class Session;

// Milliseconds since the Unix epoch on `clock`: the stamp of batches a
// session encodes.
inline std::int64_t WallMs(const Clock& clock) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock.WallNow().time_since_epoch())
      .count();
}

// What every session shares: the brokers, the options, the counters, and the
// list of open sessions (for Stop). Thread-safe.
struct ServerContext {
  ServerOptions options;
  std::unique_ptr<Brokers> brokers;
  std::vector<boost::asio::io_context*> shards;  // fixed once sessions run
  const Clock* clock = nullptr;
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> open{0};
  std::atomic<std::uint64_t> refused{0};
  std::atomic<std::uint64_t> frames{0};
  std::atomic<std::uint64_t> protocol_errors{0};
  std::atomic<std::uint64_t> moved{0};  // connections moved to their topic's shard
  std::atomic<bool> stopping{false};
  // Topics deleted so far: a session whose known_topics_ predate one
  // forgets them.
  std::atomic<std::uint64_t> topics_deleted{0};

  std::mutex mu;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;  // guarded by mu
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  // A subscription or responder of this connection.
  struct Stream {
    std::uint64_t id = 0;
    bool ephemeral = false;
    std::unique_ptr<Subscription> subscription;
    Bus* bus = nullptr;  // the subscription's (transport::ApplyAcks)
    std::unique_ptr<Responder> responder;
    bool fetching = false;
    bool closed = false;
    std::uint64_t next_delivery = 1;
    // Delivered and not yet acked or nacked (groups only), with the
    // broker's name for it when the bus is embedded (StoredRef::ref).
    struct Outstanding {
      Delivery delivery;
      std::optional<broker::DeliveryRef> ref;
    };
    std::unordered_map<std::uint64_t, Outstanding> deliveries;
    // Fetched from the bus but not yet sent: what did not fit a frame, with
    // the stored batch that holds each (transport::NextBatchStored), if any.
    struct Pending {
      Delivery delivery;
      transport::StoredRef stored;
    };
    std::deque<Pending> pending;
    // Where the last slice of a stored batch cut for this stream ended
    // (codec::SliceBatch's end_position): the next fetch, which goes on in
    // the same batch, slices from there instead of passing every record
    // before it again (a batch of thousands of records went out in
    // hundreds of slices, each walking from the batch's start).
    // The batch is watched, not held (it may be up to a frame's size):
    // `at` names it while `batch` has not expired.
    struct SliceEnd {
      std::weak_ptr<const broker::StoredBatch> batch;
      const broker::StoredBatch* at = nullptr;
      Offset next;
      std::uint32_t position = 0;
    };
    SliceEnd last_slice;
  };

  // `shard`: the index (in context->shards) of the socket's io_context.
  Session(boost::asio::ip::tcp::socket socket, std::shared_ptr<ServerContext> context,
          std::size_t shard);
  ~Session();

  // Serves the connection until it closes. co_spawn it on the socket's executor.
  static boost::asio::awaitable<void> Run(std::shared_ptr<Session> self);
  // Tells the client GOAWAY and closes once what was read is answered.
  // Callable from any thread (posted to the session's executor).
  void Shutdown();
  // Closes the connection now. Callable from any thread.
  void Abort();

 private:
  using Payload = std::span<const std::byte>;

  boost::asio::awaitable<bool> Handshake();
  boost::asio::awaitable<void> ReadLoop();
  boost::asio::awaitable<void> Watchdog();
  void StartWatchdog();
  // The end of a session: streams closed, answers written, socket closed.
  static boost::asio::awaitable<void> Finish(std::shared_ptr<Session> self);

  // Connection placement (ServerOptions::place_connections). ReadLoop
  // stops at the first frame about a topic whose broker runs on another
  // shard (held_, move_to_); Move takes the session there when it is quiet
  // (nothing unanswered, no streams, nothing to write) and Resume goes on
  // there, starting with the held frame. A session moves at most once.
  bool WantsToMove(const codec::Frame& frame);
  boost::asio::awaitable<bool> Move();
  static boost::asio::awaitable<void> Resume(std::shared_ptr<Session> self);
  // Dispatches held_, if any; false when the connection must close.
  bool DispatchHeld();
  // Runs `f` on the session's executor, following the session if it moved
  // (Shutdown and Abort come from other threads).
  void PostHere(std::function<void()> f);
  // Reads at least one more byte into the decoder; false on EOF or error.
  boost::asio::awaitable<bool> ReadMore();
  // Handles one frame; false when the connection must close.
  bool Dispatch(const codec::Frame& frame);

  // Writing: frames are appended to out_ (through writer()) and Flush
  // starts the write loop if it is not running.
  codec::FrameWriter writer() { return codec::FrameWriter(out_); }
  void Flush();
  static boost::asio::awaitable<void> WriteLoop(std::shared_ptr<Session> self);
  void SendError(std::uint32_t correlation, const Status& status);
  // OK for an OK status, else ERROR (requests whose answer has no payload).
  void AnswerStatus(std::uint32_t correlation, const Status& status);
  // Sends ERROR with a connection code and closes after it is written.
  void CloseWith(codec::ConnectionError code, std::string message);
  void CloseSocket();
  boost::asio::awaitable<void> WaitForRoom();
  void Wake();

  // Requests answered later: each runs as its own coroutine here.
  template <typename Awaitable>
  void Spawn(Awaitable a);
  void Begin() { ++outstanding_; }
  void Done();

  // `batch`: the record batch the messages came in, when the broker may
  // store it as it came (broker::DecodeStoredBatch); else empty.
  boost::asio::awaitable<void> HandlePublish(
      std::uint32_t correlation, std::string topic,
      std::vector<std::shared_ptr<broker::StoredMessage>> messages, std::vector<std::byte> batch,
      PublishOptions options);
  boost::asio::awaitable<void> HandleCreateTopic(std::uint32_t correlation, std::string topic,
                                                 TopicOptions options);
  boost::asio::awaitable<void> HandleSubscribe(std::uint32_t correlation, std::string topic,
                                               SubscribeOptions options);
  boost::asio::awaitable<void> HandleFetch(std::uint32_t correlation,
                                           std::shared_ptr<Stream> stream, std::size_t max_messages,
                                           Deadline deadline);
  // Sends DELIVER with as many of `deliveries` as fit the client's frame
  // limit (the rest wait in stream.pending). `stored[i]`: where
  // deliveries[i]'s message is when the Delivery's is empty
  // (transport::NextBatchStored); of a stored batch, the run of records
  // from this frame's lowest offset in it to its highest goes as stored
  // (whole, or sliced: codec::SliceBatch) when the frame takes at least
  // half of that run, else its messages are encoded. False, sending
  // nothing, when every delivery was left out (a record the broker never
  // decoded that is not a message): the caller fetches again.
  bool SendDeliveries(std::uint32_t correlation, Stream& stream, std::vector<Delivery> deliveries,
                      std::vector<transport::StoredRef> stored);
  // An ACK frame's acks, answered in order: `results` holds the answers
  // known already (nullopt for the others); `batches` go to their buses at
  // once each (transport::ApplyAcks), `one_by_one` (AckSync, a bus that is
  // not embedded) as Delivery calls, each to the slot beside it.
  struct AckBatch {
    Bus* bus = nullptr;
    std::vector<transport::AckOp> ops;
    std::vector<std::size_t> slots;
  };
  struct SlotAck {
    std::size_t slot = 0;
    Awaitable<Status> ack;
  };
  boost::asio::awaitable<void> HandleAck(std::uint32_t correlation, std::vector<SlotAck> one_by_one,
                                         std::vector<AckBatch> batches,
                                         std::vector<std::optional<Status>> results);
  boost::asio::awaitable<void> HandleCloseStream(std::uint32_t correlation,
                                                 std::shared_ptr<Stream> stream);
  boost::asio::awaitable<void> HandleSeek(std::uint32_t correlation, std::string topic,
                                          std::string group, StartPosition position);
  boost::asio::awaitable<void> HandleDescribe(std::uint32_t correlation, std::string topic,
                                              std::string group);
  boost::asio::awaitable<void> HandleRequest(std::uint32_t correlation, std::string topic,
                                             Message request, Deadline deadline);
  boost::asio::awaitable<void> HandleRespond(std::uint32_t correlation, std::string topic);
  boost::asio::awaitable<void> HandleReplyTo(std::uint32_t correlation,
                                             std::unique_ptr<IncomingRequest> request,
                                             Message reply);
  boost::asio::awaitable<void> CloseStreams();
  // After NotFound from a publish or subscribe: creates the topic when this
  // client asked for that; true when the call should be tried again.
  boost::asio::awaitable<bool> CreateMissing(const Status& status, const std::string& topic);

  // The administrative frames (session_admin.cc).
  bool OnAdmin(const codec::Frame& frame);
  void SpawnTask(boost::asio::awaitable<void> task);
  boost::asio::awaitable<void> HandleListTopics(std::uint32_t correlation,
                                                std::optional<std::string> topic);
  boost::asio::awaitable<void> HandleListGroups(std::uint32_t correlation, std::string topic);
  boost::asio::awaitable<void> HandleRemoval(std::uint32_t correlation, codec::FrameType type,
                                             std::string topic);
  boost::asio::awaitable<void> HandleReadTopic(std::uint32_t correlation, std::string topic,
                                               PartitionId partition, Offset from,
                                               std::uint64_t max_messages);

  bool OnAck(const codec::Frame& frame);
  bool OnFetch(const codec::Frame& frame);

  boost::asio::ip::tcp::socket socket_;
  // Written only by Move, on the session's executor, under executor_mu_;
  // read there without it, elsewhere (PostHere) with it.
  boost::asio::any_io_executor executor_;
  std::mutex executor_mu_;
  std::uint64_t moves_ = 0;  // guarded by executor_mu_ (written like executor_)
  std::size_t shard_ = 0;
  bool placed_ = false;  // a frame about a topic was seen: no move after it
  std::optional<std::size_t> move_to_;
  std::optional<codec::Frame> held_;
  bool watchdog_running_ = false;
  bool stopping_watchdog_ = false;
  std::shared_ptr<ServerContext> context_;
  std::string peer_;
  codec::FrameDecoder decoder_;
  std::vector<std::byte> out_;
  std::vector<std::byte> sending_;
  bool writing_ = false;
  bool close_after_write_ = false;
  bool closed_ = false;
  bool handshaken_ = false;
  bool going_away_ = false;
  std::size_t outstanding_ = 0;
  // Woken (cancelled) whenever a request is answered or a write finishes.
  boost::asio::steady_timer room_;
  boost::asio::steady_timer watchdog_;
  MonoTime last_received_;
  MonoTime last_sent_;
  std::optional<MonoTime> frame_started_;
  Duration heartbeat_{};

  std::uint64_t next_stream_ = 1;
  std::unordered_map<std::uint64_t, std::shared_ptr<Stream>> streams_;
  std::uint64_t next_request_ = 1;
  std::unordered_map<std::uint64_t, std::unique_ptr<IncomingRequest>> requests_;
  std::uint32_t peer_max_frame_ = codec::kDefaultMaxFrameBytes;
  std::uint16_t version_ = codec::kWireVersion;  // agreed in the handshake
  // The client's BusOptions::auto_create_topics and default_topic.
  bool auto_create_ = true;
  TopicOptions default_topic_{};
  // Topics this connection stored to: no copy is kept for a retry there.
  std::unordered_set<std::string> known_topics_;
  // The bus of `topic`'s broker. Remembers the placements the directory
  // has fixed (up to 10,000), so most calls skip its lock.
  Bus& BusFor(std::string_view topic);
  struct NameHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view name) const {
      return std::hash<std::string_view>{}(name);
    }
  };
  std::unordered_map<std::string, std::size_t, NameHash, std::equal_to<>> placements_;
  std::uint64_t known_as_of_ = 0;  // context_->topics_deleted when known_topics_ was valid
  MonoTime started_;
  std::optional<MonoTime> close_requested_;
};

}  // namespace junction::server
