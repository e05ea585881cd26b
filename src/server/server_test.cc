// junctiond against hostile and broken clients, in-process on loopback:
// each gets a clear error or a close, and the daemon keeps serving others.

#include "server/server.h"

#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>

#include "broker/message_codec.h"
#include "codec/byte_order.h"
#include "codec/record_batch.h"
#include "codec/wire.h"
#include "core/run_sync.h"
#include "junction/bus.h"
#include "server/loopback_server_test.h"
#include "transport/junction_deliver.h"

namespace junction::server {
namespace {

using namespace std::chrono_literals;  // NOLINT(google-build-using-namespace)
namespace asio = boost::asio;
using asio::ip::tcp;
namespace c = codec;

// A blocking client socket; reads give up after 10 s.
class RawClient {
 public:
  explicit RawClient(std::uint16_t port) : socket_(ctx_) {
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    timeval tv{10, 0};
    setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  void Send(std::span<const std::byte> bytes) {
    boost::system::error_code ec;
    asio::write(socket_, asio::buffer(bytes.data(), bytes.size()), ec);
  }
  void Send(std::string_view text) {
    Send({reinterpret_cast<const std::byte*>(text.data()), text.size()});
  }
  // Preamble and HELLO (of wire versions up to `version`), then the WELCOME frame.
  c::Frame Handshake(std::uint16_t version = c::kWireVersion) {
    std::vector<std::byte> out(std::begin(c::kPreamble), std::end(c::kPreamble));
    c::FrameWriter w(out);
    c::EncodeHello(
        w, {.min_version = c::kMinWireVersion, .max_version = version, .client = "server_test"});
    Send(out);
    std::optional<c::Frame> welcome = NextFrame();
    EXPECT_TRUE(welcome && welcome->type() == c::FrameType::kWelcome);
    return welcome.value_or(c::Frame{});
  }
  // Everything until the server closes (or 10 s pass).
  std::string ReadUntilClosed() {
    std::string all;
    char buf[4096];
    while (true) {
      ssize_t n = ::read(socket_.native_handle(), buf, sizeof buf);
      if (n <= 0) {
        closed_ = n == 0 || errno == ECONNRESET;
        break;
      }
      all.append(buf, static_cast<std::size_t>(n));
    }
    return all;
  }
  // The next frame the server sends; nullopt on close.
  std::optional<c::Frame> NextFrame() {
    while (true) {
      if (std::optional<c::Frame> f = decoder_.Next()) return f;
      std::span<std::byte> room = decoder_.Prepare(4096);
      ssize_t n = ::read(socket_.native_handle(), room.data(), room.size());
      if (n <= 0) {
        closed_ = true;
        return std::nullopt;
      }
      decoder_.Commit(static_cast<std::size_t>(n));
    }
  }
  // The code of the next ERROR frame (skipping PINGs), or 0 when none came.
  std::uint16_t NextErrorCode() {
    while (std::optional<c::Frame> f = NextFrame()) {
      if (f->type() == c::FrameType::kPing) continue;
      if (f->type() != c::FrameType::kError) return 0;
      Result<c::ErrorFrame> e = c::DecodeError(f->payload);
      return e.ok() ? e->code : 0;
    }
    return 0;
  }
  bool closed() const { return closed_; }

 private:
  asio::io_context ctx_;
  tcp::socket socket_;
  c::FrameDecoder decoder_{c::kMaxMaxFrameBytes};
  bool closed_ = false;
};

std::uint16_t Code(c::ConnectionError e) { return static_cast<std::uint16_t>(e); }

Awaitable<Result<PublishResult>> PublishProbe(Bus* bus) {
  Message m;
  m.id = "probe";
  m.source = "/server_test";
  m.type = "probe";
  Result<PublishResult> r = co_await bus->Publish("probes", m);
  (void)co_await bus->Close();
  co_return r;
}

class ServerTest : public LoopbackServerTest {
 protected:
  void SetUp() override { Start({}); }

  // The fixture's daemon, with short handshake and frame timeouts unless
  // `options` sets them.
  void Start(ServerOptions options) {
    if (options.handshake_timeout == std::chrono::seconds(10)) options.handshake_timeout = 500ms;
    if (options.frame_timeout == std::chrono::seconds(30)) options.frame_timeout = 500ms;
    StartServer(options);
  }

  // A real client can still publish and read back: the daemon is responsive.
  void ExpectServing() {
    Result<std::unique_ptr<Bus>> bus = Bus::Open("junction://" + server_->address());
    ASSERT_TRUE(bus.ok()) << bus.status();
    asio::io_context ctx;
    std::future<Result<PublishResult>> published =
        asio::co_spawn(ctx, PublishProbe(bus->get()), asio::use_future);
    ctx.run();
    Result<PublishResult> r = published.get();
    EXPECT_TRUE(r.ok()) << r.status();
  }
};

TEST_F(ServerTest, TlsClientHelloGetsAnAlertAndAClose) {
  RawClient client(server_->port());
  const unsigned char hello[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03};
  client.Send({reinterpret_cast<const std::byte*>(hello), sizeof hello});
  std::string answer = client.ReadUntilClosed();
  std::span<const std::byte> alert = c::TlsRefusal();
  EXPECT_EQ(answer, std::string(reinterpret_cast<const char*>(alert.data()), alert.size()));
  EXPECT_TRUE(client.closed());
  ExpectServing();
}

TEST_F(ServerTest, HttpGetsA400SayingWhatThePortIs) {
  RawClient client(server_->port());
  client.Send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string answer = client.ReadUntilClosed();
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 400 Bad Request\r\n")) << answer;
  EXPECT_NE(answer.find("Junction wire protocol"), std::string::npos);
  EXPECT_TRUE(client.closed());
  ExpectServing();
}

TEST_F(ServerTest, BytesWithoutThePreambleGetNotJunction) {
  RawClient client(server_->port());
  client.Send("hello, is this redis?\r\n");
  EXPECT_EQ(client.NextErrorCode(), Code(c::ConnectionError::kNotJunction));
  EXPECT_FALSE(client.NextFrame());
  ExpectServing();
}

TEST_F(ServerTest, OversizedLengthsAreRefusedAndClosed) {
  for (std::uint32_t length : {0xFFFFFFFFu, c::kDefaultMaxFrameBytes + 1}) {
    RawClient client(server_->port());
    client.Handshake();
    std::byte header[c::kFrameHeaderSize] = {};
    c::StoreLE<std::uint32_t>(header, length);
    client.Send(header);
    EXPECT_EQ(client.NextErrorCode(), Code(c::ConnectionError::kFrameTooLarge)) << length;
    EXPECT_FALSE(client.NextFrame());
  }
  EXPECT_GE(server_->stats().protocol_errors, 2u);
  ExpectServing();
}

TEST_F(ServerTest, GarbageAfterAValidFrameIsAnErrorAfterItsAnswer) {
  RawClient client(server_->port());
  client.Handshake();
  std::vector<std::byte> out;
  c::FrameWriter w(out);
  c::EncodePing(w, c::FrameType::kPing, 7);
  for (char ch : std::string_view("\x09\x00\x00\x00\x7f\x00\x00\x00\x00\x00\x00\x00\x00", 13)) {
    out.push_back(std::byte(ch));
  }
  client.Send(out);
  std::optional<c::Frame> pong = client.NextFrame();
  ASSERT_TRUE(pong);
  EXPECT_EQ(pong->type(), c::FrameType::kPong);
  EXPECT_EQ(c::DecodePing(pong->payload).value(), 7u);
  EXPECT_EQ(client.NextErrorCode(), Code(c::ConnectionError::kUnknownFrameType));
  EXPECT_FALSE(client.NextFrame());
  ExpectServing();
}

TEST_F(ServerTest, ReservedAdminTypesAreRefusedWithoutAClose) {
  RawClient client(server_->port());
  client.Handshake();
  std::vector<std::byte> out;
  c::FrameWriter w(out);
  w.Begin(static_cast<c::FrameType>(0x5f), 5);  // reserved, not defined
  w.End();
  c::EncodePing(w, c::FrameType::kPing, 9);
  client.Send(out);
  std::optional<c::Frame> error = client.NextFrame();
  ASSERT_TRUE(error);
  ASSERT_EQ(error->type(), c::FrameType::kError);
  EXPECT_EQ(error->header.correlation, 5u);
  EXPECT_EQ(c::DecodeError(error->payload)->code,
            static_cast<std::uint16_t>(StatusCode::kUnimplemented));
  std::optional<c::Frame> pong = client.NextFrame();
  ASSERT_TRUE(pong);
  EXPECT_EQ(pong->type(), c::FrameType::kPong);
}

TEST_F(ServerTest, ASlowFrameIsCutOff) {
  RawClient client(server_->port());
  client.Handshake();
  // A PING sent a byte at a time, slower than the frame timeout allows.
  std::vector<std::byte> out;
  c::FrameWriter w(out);
  c::EncodePing(w, c::FrameType::kPing, 1);
  std::thread trickle([&] {
    for (std::size_t i = 0; i + 1 < out.size(); ++i) {
      client.Send(std::span(out).subspan(i, 1));
      std::this_thread::sleep_for(100ms);
    }
  });
  std::uint16_t code = client.NextErrorCode();
  trickle.join();
  EXPECT_EQ(code, Code(c::ConnectionError::kFrameTimeout));
  ExpectServing();
}

TEST_F(ServerTest, SilenceAfterConnectingEndsTheHandshake) {
  RawClient client(server_->port());
  EXPECT_EQ(client.NextErrorCode(), Code(c::ConnectionError::kHandshakeTimeout));
  EXPECT_FALSE(client.NextFrame());
}

TEST_F(ServerTest, AClientOfAnotherVersionIsToldSo) {
  RawClient client(server_->port());
  std::vector<std::byte> out(std::begin(c::kPreamble), std::end(c::kPreamble));
  c::FrameWriter w(out);
  c::EncodeHello(w, {.min_version = 3, .max_version = 4, .client = "future"});
  client.Send(out);
  EXPECT_EQ(client.NextErrorCode(), Code(c::ConnectionError::kUnsupportedVersion));
}

// A raw client's subscription to "stored" (group `group`, from the earliest).
std::uint64_t SubscribeRaw(RawClient& client, const std::string& group = "g") {
  std::vector<std::byte> out;
  c::FrameWriter w(out);
  SubscribeOptions options;
  options.group = group;
  c::EncodeSubscribe(w, 1, "stored", options);
  client.Send(out);
  std::optional<c::Frame> f = client.NextFrame();
  EXPECT_TRUE(f && f->type() == c::FrameType::kSubscribed);
  if (!f || f->type() != c::FrameType::kSubscribed) return 0;
  return c::DecodeSubscribed(f->payload).value_or(0);
}

// Publishes `batch` to "stored" as a raw PUBLISH, and waits for PUBLISHED.
void PublishRaw(RawClient& client, std::span<const std::byte> batch) {
  std::vector<std::byte> out;
  c::FrameWriter w(out);
  c::BeginPublish(w, 2, "stored", {});
  w.Raw(batch);
  w.End();
  client.Send(out);
  std::optional<c::Frame> f = client.NextFrame();
  EXPECT_TRUE(f && f->type() == c::FrameType::kPublished);
}

// FETCHes up to `max` and decodes the DELIVER (wire version `version`).
struct Delivered {
  std::vector<c::DeliveryHeader> headers;
  std::vector<std::optional<PartitionId>> sources;  // per batch
  std::vector<std::vector<std::byte>> batches;
  std::vector<std::string> ids;
};
Delivered FetchRaw(RawClient& client, std::uint64_t stream, std::size_t max,
                   std::uint16_t version) {
  std::vector<std::byte> out;
  c::FrameWriter w(out);
  c::EncodeFetch(w, 3, {stream, max, std::nullopt});
  client.Send(out);
  Delivered d;
  std::optional<c::Frame> f = client.NextFrame();
  EXPECT_TRUE(f && f->type() == c::FrameType::kDeliver);
  if (!f || f->type() != c::FrameType::kDeliver) return d;
  std::vector<c::DeliverBatch> batches;
  Result<c::DeliverFrame> frame = c::DecodeDeliver(f->payload, version, d.headers, batches);
  EXPECT_TRUE(frame.ok()) << frame.status();
  std::vector<Message> messages;
  Status s =
      transport::DecodeDeliveredMessages(d.headers, batches, c::kMaxBatchBytesLimit, messages);
  EXPECT_TRUE(s.ok()) << s;
  for (const c::DeliverBatch& b : batches) {
    d.sources.push_back(b.stored);
    d.batches.emplace_back(b.batch.begin(), b.batch.end());
  }
  for (const Message& m : messages) d.ids.push_back(m.id);
  return d;
}

std::vector<std::byte> BatchOf(const std::vector<std::string>& ids) {
  std::vector<Message> messages;
  for (const std::string& id : ids) {
    Message m;
    m.id = id;
    m.source = "/server_test";
    m.type = "stored";
    m.data = "data of " + id;
    messages.push_back(std::move(m));
  }
  return *broker::EncodeMessageBatch(messages, 1'000);
}

TEST_F(ServerTest, DeliverCarriesTheBatchAsStored) {
  RawClient client(server_->port());
  client.Handshake();
  std::uint64_t stream = SubscribeRaw(client);
  std::vector<std::byte> sent = BatchOf({"a", "b", "c"});
  PublishRaw(client, sent);
  Delivered d = FetchRaw(client, stream, 10, c::kWireVersion);
  EXPECT_EQ(d.ids, (std::vector<std::string>{"a", "b", "c"}));
  ASSERT_EQ(d.batches.size(), 1u);
  EXPECT_TRUE(d.sources[0]);
  // The broker wrote only base_offset, the batch times and the checksum:
  // every record is byte for byte what the publisher sent.
  ASSERT_EQ(d.batches[0].size(), sent.size());
  EXPECT_TRUE(std::equal(sent.begin() + c::kBatchHeaderSize, sent.end(),
                         d.batches[0].begin() + c::kBatchHeaderSize));
}

TEST_F(ServerTest, DeliverCarriesABatchReadBackFromTheLogAsStored) {
  RawClient client(server_->port());
  client.Handshake();
  // Stored before any group exists: the group reads it back from the log.
  std::vector<std::byte> sent = BatchOf({"a", "b"});
  PublishRaw(client, sent);
  std::uint64_t stream = SubscribeRaw(client);
  Delivered d = FetchRaw(client, stream, 10, c::kWireVersion);
  EXPECT_EQ(d.ids, (std::vector<std::string>{"a", "b"}));
  ASSERT_EQ(d.batches.size(), 1u);
  EXPECT_TRUE(d.sources[0]);
  ASSERT_EQ(d.batches[0].size(), sent.size());
  EXPECT_TRUE(std::equal(sent.begin() + c::kBatchHeaderSize, sent.end(),
                         d.batches[0].begin() + c::kBatchHeaderSize));
}

TEST_F(ServerTest, ARedeliveryInTheRangeOfAStoredBatchIsServedFromIt) {
  RawClient client(server_->port());
  client.Handshake();
  std::uint64_t stream = SubscribeRaw(client);
  PublishRaw(client, BatchOf({"a", "b", "c", "d"}));
  // One of four (a run of one record). Then nacked: it comes again without
  // a batch of its own.
  Delivered first = FetchRaw(client, stream, 1, c::kWireVersion);
  ASSERT_EQ(first.ids, (std::vector<std::string>{"a"}));
  std::vector<std::byte> out;
  c::FrameWriter w(out);
  c::BeginAck(w, 4, 1);
  c::EncodeAckEntry(w, {.kind = c::AckKind::kNack,
                        .stream = stream,
                        .delivery_id = first.headers[0].delivery_id,
                        .delay = Duration::zero(),
                        .error = "again"});
  w.End();
  client.Send(out);
  std::optional<c::Frame> acked = client.NextFrame();
  ASSERT_TRUE(acked && acked->type() == c::FrameType::kAcked);
  // b, c and d (first deliveries, holding the batch) and the redelivery of
  // a, in the batch's range: one stored batch serves all four.
  Delivered rest = FetchRaw(client, stream, 10, c::kWireVersion);
  std::vector<std::string> ids = rest.ids;
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<std::string>{"a", "b", "c", "d"}));
  ASSERT_EQ(rest.sources.size(), 1u);
  EXPECT_TRUE(rest.sources[0]);
  for (const c::DeliveryHeader& h : rest.headers) {
    EXPECT_EQ(h.attempt, DeliveryCount(h.offset == first.headers[0].offset ? 2 : 1));
  }
}

// The records of `batch` (as stored: no header), from the `first`th on.
std::vector<std::byte> RecordBytes(std::span<const std::byte> batch, std::size_t first,
                                   std::size_t count) {
  std::span<const std::byte> body = batch.subspan(c::kBatchHeaderSize);
  std::size_t pos = 0;
  std::size_t begin = 0;
  for (std::size_t i = 0; i < first + count; ++i) {
    if (i == first) begin = pos;
    std::optional<std::uint64_t> length = c::GetVarint(body, pos);
    if (!length) return {};
    pos += *length;
  }
  return {body.begin() + static_cast<std::ptrdiff_t>(begin),
          body.begin() + static_cast<std::ptrdiff_t>(pos)};
}

TEST_F(ServerTest, DeliverSendsPartOfAStoredBatchAsARunOfItsRecords) {
  RawClient client(server_->port());
  client.Handshake();
  std::uint64_t stream = SubscribeRaw(client);
  std::vector<std::byte> sent = BatchOf({"a", "b", "c"});
  PublishRaw(client, sent);
  // One of three records: the stored batch's first record, not encoded
  // again, under a header of its own.
  Delivered first = FetchRaw(client, stream, 1, c::kWireVersion);
  EXPECT_EQ(first.ids, (std::vector<std::string>{"a"}));
  ASSERT_EQ(first.sources.size(), 1u);
  EXPECT_TRUE(first.sources[0]);
  Result<c::BatchHeader> h = c::VerifyBatch(first.batches[0], c::kMaxBatchBytesLimit);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->record_count, 1u);
  EXPECT_EQ(RecordBytes(first.batches[0], 0, 1), RecordBytes(sent, 0, 1));
  // The other two: the run of the last two records.
  Delivered rest = FetchRaw(client, stream, 10, c::kWireVersion);
  EXPECT_EQ(rest.ids, (std::vector<std::string>{"b", "c"}));
  ASSERT_EQ(rest.sources.size(), 1u);
  EXPECT_TRUE(rest.sources[0]);
  EXPECT_EQ(RecordBytes(rest.batches[0], 0, 2), RecordBytes(sent, 1, 2));
  EXPECT_FALSE(RecordBytes(sent, 1, 2).empty());
}

// A batch larger than a fetch goes out as its runs of records, window
// after window, each window's slice starting where the last one ended
// (Stream::last_slice): from the tail cache (subscribed before the
// publish) and read back from the log (subscribed after), where the group
// knows each record's position.
TEST_F(ServerTest, ABatchFetchedInWindowsGoesOutAsItsRunsOfRecordsInOrder) {
  std::vector<std::string> ids;
  for (int i = 0; i < 200; ++i) ids.push_back("m" + std::to_string(i));
  const std::vector<std::byte> sent = BatchOf(ids);
  RawClient before(server_->port());
  before.Handshake();
  std::uint64_t early = SubscribeRaw(before);
  PublishRaw(before, sent);
  for (bool from_log : {false, true}) {
    RawClient after(server_->port());
    RawClient& client = from_log ? after : before;
    std::uint64_t stream = early;
    if (from_log) {
      after.Handshake();
      stream = SubscribeRaw(after, "late");
    }
    for (std::size_t first = 0; first < ids.size(); first += 30) {
      const std::size_t count = std::min<std::size_t>(30, ids.size() - first);
      Delivered d = FetchRaw(client, stream, 30, c::kWireVersion);
      EXPECT_EQ(d.ids,
                std::vector<std::string>(ids.begin() + static_cast<std::ptrdiff_t>(first),
                                         ids.begin() + static_cast<std::ptrdiff_t>(first + count)))
          << (from_log ? "log" : "tail") << ", from " << first;
      ASSERT_EQ(d.batches.size(), 1u) << first;
      EXPECT_TRUE(d.sources[0]) << first;
      EXPECT_EQ(RecordBytes(d.batches[0], 0, count), RecordBytes(sent, first, count)) << first;
      // The deliveries are acked, so that the next window is the next run.
      std::vector<std::byte> out;
      c::FrameWriter w(out);
      c::BeginAck(w, 4, static_cast<std::uint32_t>(d.headers.size()));
      for (const c::DeliveryHeader& h : d.headers) {
        c::AckEntry ack;
        ack.stream = stream;
        ack.delivery_id = h.delivery_id;
        c::EncodeAckEntry(w, ack);
      }
      w.End();
      client.Send(out);
      std::optional<c::Frame> acked = client.NextFrame();
      ASSERT_TRUE(acked && acked->type() == c::FrameType::kAcked);
    }
  }
}

TEST_F(ServerTest, ACompressedStoredBatchGoesWholeOrItsMessagesAreEncoded) {
  RawClient client(server_->port());
  client.Handshake();
  std::uint64_t stream = SubscribeRaw(client);
  c::RecordBatchBuilder builder({.compression = c::Compression::kLz4});
  for (const char* id : {"a", "b", "c"}) {
    Message m;
    m.id = id;
    m.source = "/server_test";
    m.type = "stored";
    m.data = std::string(200, 'z');
    broker::AddMessage(builder, m, 1'000, std::nullopt);
  }
  Result<std::vector<std::byte>> sent = builder.Build();
  ASSERT_TRUE(sent.ok()) << sent.status();
  PublishRaw(client, *sent);
  // One of three cannot be cut out of a compressed batch: encoded.
  Delivered first = FetchRaw(client, stream, 1, c::kWireVersion);
  EXPECT_EQ(first.ids, (std::vector<std::string>{"a"}));
  ASSERT_EQ(first.sources.size(), 1u);
  EXPECT_FALSE(first.sources[0]);
  // Two of three: the whole batch, compressed as it was stored.
  Delivered rest = FetchRaw(client, stream, 10, c::kWireVersion);
  EXPECT_EQ(rest.ids, (std::vector<std::string>{"b", "c"}));
  ASSERT_EQ(rest.sources.size(), 1u);
  EXPECT_TRUE(rest.sources[0]);
  EXPECT_EQ(rest.batches[0].size(), sent->size());
}

TEST_F(ServerTest, AVersionOneClientGetsItsDeliveriesEncoded) {
  RawClient client(server_->port());
  c::Frame welcome = client.Handshake(1);
  Result<c::Welcome> w = c::DecodeWelcome(welcome.payload);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->version, 1);
  std::uint64_t stream = SubscribeRaw(client);
  PublishRaw(client, BatchOf({"a", "b"}));
  Delivered d = FetchRaw(client, stream, 10, 1);
  EXPECT_EQ(d.ids, (std::vector<std::string>{"a", "b"}));
  ASSERT_EQ(d.sources.size(), 1u);
  EXPECT_FALSE(d.sources[0]);
}

TEST_F(ServerTest, ConnectionsPastTheLimitAreRefused) {
  ServerOptions options;
  options.max_connections = 2;
  Start(options);
  RawClient a(server_->port());
  a.Handshake();
  RawClient b(server_->port());
  b.Handshake();
  RawClient refused(server_->port());
  EXPECT_EQ(refused.NextErrorCode(), Code(c::ConnectionError::kTooManyConnections));
  EXPECT_GE(server_->stats().connections_refused, 1u);
}

TEST_F(ServerTest, ManyIdleConnectionsDoNotStopOthers) {
  std::vector<std::unique_ptr<RawClient>> idle;
  for (int i = 0; i < 300; ++i) {
    idle.push_back(std::make_unique<RawClient>(server_->port()));
    idle.back()->Handshake();
  }
  ExpectServing();
  EXPECT_GE(server_->stats().connections_open, 300u);
}

TEST_F(ServerTest, StopSendsGoawayToConnectedClients) {
  RawClient client(server_->port());
  client.Handshake();
  std::thread stopper([&] { EXPECT_TRUE(server_->Stop().ok()); });
  std::optional<c::Frame> f = client.NextFrame();
  while (f && f->type() == c::FrameType::kPing) f = client.NextFrame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->type(), c::FrameType::kGoaway);
  EXPECT_FALSE(client.NextFrame());
  stopper.join();
  server_.reset();
}

Message Event(std::string id) {
  Message m;
  m.id = std::move(id);
  m.source = "/server_test";
  m.type = "test.event";
  return m;
}

// Subscribes to "compat", publishes a, b and c in one batch, and takes them
// back (acking each) as "id@attempt".
Awaitable<Result<std::vector<std::string>>> RoundTripOverTheBus(Bus* bus) {
  SubscribeOptions options;
  options.group = "compat";
  Result<std::unique_ptr<Subscription>> sub =
      co_await bus->Subscribe("compat", options, Deadline::Infinite());
  if (!sub.ok()) co_return sub.status();
  std::vector<Message> batch;
  for (std::string id : {"a", "b", "c"}) batch.push_back(Event(id));
  Result<std::vector<PublishResult>> published =
      co_await bus->PublishBatch("compat", std::move(batch), {}, Deadline::Infinite());
  if (!published.ok()) co_return published.status();
  std::vector<std::string> ids;
  while (ids.size() < 3) {
    Result<std::vector<Delivery>> got = co_await (*sub)->NextBatch(10, Deadline::Infinite());
    if (!got.ok()) co_return got.status();
    for (Delivery& d : *got) {
      ids.push_back(d.message().id + "@" + d.message().headers.at(std::string(kHeaderAttempt)));
      (void)co_await d.Ack();
    }
  }
  (void)co_await (*sub)->Close();
  (void)co_await bus->Close();
  co_return ids;
}

TEST_F(ServerTest, AClientSpeaksVersionOneToADaemonPinnedThere) {
  ServerOptions options;
  options.max_wire_version = 1;
  Start(options);
  Result<std::unique_ptr<Bus>> bus = Bus::Open("junction://" + server_->address());
  ASSERT_TRUE(bus.ok()) << bus.status();
  asio::io_context io;
  std::future<Result<std::vector<std::string>>> done =
      asio::co_spawn(io, RoundTripOverTheBus(bus->get()), asio::use_future);
  io.run();
  Result<std::vector<std::string>> ids = done.get();
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_EQ(*ids, (std::vector<std::string>{"a@1", "b@1", "c@1"}));

  ServerOptions newer;
  newer.max_wire_version = c::kWireVersion + 1;
  newer.listen = "127.0.0.1:0";
  newer.bus_url = "mem://";
  EXPECT_EQ(Server::Start(newer).status().code(), StatusCode::kInvalidArgument);
}

// The client reconnects to a restarted daemon by itself: publishes go on,
// the group subscription is opened again and gets what was not acked.
// Many single publishes at once: the client gathers them into shared
// PUBLISH frames, and each caller still gets its own, distinct result; an
// invalid message among them fails alone.
Awaitable<void> PublishOne(Bus& bus, int i, std::vector<Result<PublishResult>>& results) {
  Message m;
  m.id = "c" + std::to_string(i);
  m.source = i == 7 ? "" : "/server-test";  // 7 is invalid: no source
  m.type = "test.event";
  m.data = std::to_string(i);
  results[i] = co_await bus.Publish("gathered", std::move(m), {}, Deadline::Infinite());
}

TEST_F(ServerTest, ConcurrentPublishesEachGetTheirOwnResult) {
  Result<std::unique_ptr<Bus>> bus = Bus::Open("junction://" + server_->address());
  ASSERT_TRUE(bus.ok()) << bus.status();
  constexpr int kPublishes = 300;
  std::vector<Result<PublishResult>> results(kPublishes, InternalError("not run"));
  std::uint64_t frames_before = server_->stats().frames_received;
  asio::io_context ctx;
  for (int i = 0; i < kPublishes; ++i) {
    asio::co_spawn(ctx, PublishOne(**bus, i, results), asio::detached);
  }
  ctx.run();
  std::set<std::uint64_t> offsets;
  for (int i = 0; i < kPublishes; ++i) {
    if (i == 7) {
      EXPECT_EQ(results[i].status().code(), StatusCode::kInvalidArgument) << results[i].status();
      continue;
    }
    ASSERT_TRUE(results[i].ok()) << i << ": " << results[i].status();
    EXPECT_FALSE(results[i]->duplicate);
    offsets.insert(results[i]->offset.value());
  }
  EXPECT_EQ(offsets.size(), static_cast<std::size_t>(kPublishes - 1));       // distinct
  EXPECT_EQ(*offsets.rbegin(), static_cast<std::uint64_t>(kPublishes - 2));  // 0..298
  std::printf("%d publishes arrived in %llu frames\n", kPublishes - 1,
              static_cast<unsigned long long>(server_->stats().frames_received - frames_before));
  EXPECT_TRUE(RunSync((*bus)->Close()).ok());
}

TEST(ServerRestartTest, TheClientReconnectsAndResubscribes) {
  std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) / "server_restart_test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  ServerOptions options;
  options.bus_url = "file://" + dir.string();
  options.listen = "127.0.0.1:0";
  options.shards = 2;
  Result<std::unique_ptr<Server>> first = Server::Start(options);
  ASSERT_TRUE(first.ok()) << first.status();
  options.listen = (*first)->address();  // the restarted daemon takes the same port

  Result<std::unique_ptr<Bus>> bus = Bus::Open("junction://" + (*first)->address());
  ASSERT_TRUE(bus.ok()) << bus.status();
  asio::io_context ctx;
  auto run = [&ctx](auto awaitable) {
    auto f = asio::co_spawn(ctx, std::move(awaitable), asio::use_future);
    ctx.restart();
    ctx.run();
    return f.get();
  };
  SubscribeOptions group;
  group.group = "g";
  std::unique_ptr<Subscription> sub =
      std::move(run((*bus)->Subscribe("orders", group, Deadline::Infinite())).value());
  ASSERT_TRUE(run((*bus)->Publish("orders", Event("m0"))).ok());
  Result<Delivery> m0 = run(sub->Next(Deadline::Infinite()));
  ASSERT_TRUE(m0.ok()) << m0.status();
  EXPECT_EQ(m0->message().id, "m0");

  ASSERT_TRUE((*first)->Stop().ok());
  first->reset();
  Result<std::unique_ptr<Server>> second = Server::Start(options);
  ASSERT_TRUE(second.ok()) << second.status();

  // The old connection's delivery cannot be acked any more...
  // (FailedPrecondition once the client saw the connection go; Unavailable
  // when the ack went out on it just before.)
  Status stale = run(m0->Ack());
  EXPECT_TRUE(stale.code() == StatusCode::kFailedPrecondition ||
              stale.code() == StatusCode::kUnavailable)
      << stale;
  // ...publishing waits for the new connection...
  Result<PublishResult> m1 = run((*bus)->Publish("orders", Event("m1")));
  ASSERT_TRUE(m1.ok()) << m1.status();
  EXPECT_EQ(m1->offset, Offset(1));
  // ...and the subscription, opened again, gets m0 again, then m1.
  std::vector<std::string> ids;
  while (ids.size() < 2) {
    Result<Delivery> d = run(sub->Next(Deadline::After(RealClock(), std::chrono::seconds(20))));
    ASSERT_TRUE(d.ok()) << d.status();
    ids.push_back(d->message().id);
    EXPECT_TRUE(run(d->Ack()).ok());
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"m0", "m1"}));
  sub.reset();
  EXPECT_TRUE(run((*bus)->Close()).ok());
  bus->reset();
  EXPECT_TRUE((*second)->Stop().ok());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace junction::server

namespace junction::server {
namespace {

TEST(ServerRestartTest, APublishWhileDisconnectedHonoursItsDeadlineAndIsNeverSentLater) {
  std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) / "server_publish_deadline_test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  ServerOptions options;
  options.bus_url = "file://" + dir.string();
  options.listen = "127.0.0.1:0";
  options.shards = 1;
  Result<std::unique_ptr<Server>> first = Server::Start(options);
  ASSERT_TRUE(first.ok()) << first.status();
  options.listen = (*first)->address();
  Result<std::unique_ptr<Bus>> bus = Bus::Open("junction://" + (*first)->address());
  ASSERT_TRUE(bus.ok()) << bus.status();
  ASSERT_TRUE(RunSync((*bus)->Publish("orders", Event("before"))).ok());
  ASSERT_TRUE((*first)->Stop().ok());
  first->reset();

  // Nobody listens: the publish gives up at its deadline, having sent nothing.
  Result<PublishResult> lost =
      RunSync((*bus)->Publish("orders", Event("while-down"), {},
                              Deadline::After(RealClock(), std::chrono::milliseconds(300))));
  EXPECT_EQ(lost.status().code(), StatusCode::kDeadlineExceeded) << lost.status();

  Result<std::unique_ptr<Server>> second = Server::Start(options);
  ASSERT_TRUE(second.ok()) << second.status();
  Result<PublishResult> after = RunSync((*bus)->Publish(
      "orders", Event("after"), {}, Deadline::After(RealClock(), std::chrono::seconds(20))));
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->offset, Offset(1));  // "while-down" was never stored

  EXPECT_TRUE(RunSync((*bus)->Close()).ok());
  bus->reset();
  EXPECT_TRUE((*second)->Stop().ok());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace junction::server
