// Conformance suite, part 4: request-reply.

#include <string>

#include "conformance_util.h"

namespace junction::conformance {
namespace {

Message Reply(const IncomingRequest& request) {
  return Msg("re-" + request.message().id, std::nullopt, "re:" + request.message().data);
}

TEST_P(Conformance, RequestGetsTheReplyOfTheResponder) {
  Run([&]() -> Awaitable<void> {
    if (!co_await Supported(caps().request_reply, bus().Respond("rpc", kForever))) co_return;
    auto responder = Must(co_await bus().Respond("rpc", kForever));
    auto reply = Spawn(bus().Request("rpc", Msg("q1", std::nullopt, "ping"), kForever));
    auto request = Must(co_await responder->Next(kForever));
    EXPECT_EQ(request->message().id, "q1");
    EXPECT_EQ(request->message().data, "ping");
    Must(co_await request->Reply(Reply(*request)));
    Message answer = Must(co_await reply->Wait());
    EXPECT_EQ(answer.id, "re-q1");
    EXPECT_EQ(answer.data, "re:ping");
  });
}

TEST_P(Conformance, RequestWithoutResponderFailsAtOnceWithNoResponders) {
  Run([&]() -> Awaitable<void> {
    if (!co_await Supported(caps().request_reply, bus().Request("rpc", Msg("q"), kForever))) {
      co_return;
    }
    Result<Message> nobody = co_await bus().Request("rpc", Msg("q1"), kForever);
    EXPECT_EQ(Code(nobody), StatusCode::kUnavailable);
    EXPECT_TRUE(IsNoResponders(nobody.status())) << nobody.status();
    auto responder = Must(co_await bus().Respond("rpc", kForever));
    Must(co_await responder->Close());
    Result<Message> closed = co_await bus().Request("rpc", Msg("q2"), kForever);
    EXPECT_TRUE(IsNoResponders(closed.status())) << closed.status();
    EXPECT_FALSE(IsNoResponders(DeadlineExceededError("deadline")));
  });
}

TEST_P(Conformance, RequestFailsWithDeadlineExceededWhenNobodyAnswers) {
  Run([&]() -> Awaitable<void> {
    if (!co_await Supported(caps().request_reply, bus().Respond("rpc", kForever))) co_return;
    auto responder = Must(co_await bus().Respond("rpc", kForever));
    // Answered 4 s into a 5 s deadline: not expired early.
    auto in_time = Spawn(bus().Request("rpc", Msg("q1"), Deadline::After(clock(), 5s)));
    auto first = Must(co_await responder->Next(kForever));
    clock().Advance(4s);
    EXPECT_EQ(Code(co_await responder->Next(kNow)), StatusCode::kDeadlineExceeded);
    Must(co_await first->Reply(Reply(*first)));
    EXPECT_EQ(Must(co_await in_time->Wait()).id, "re-q1");
    // Never answered.
    auto late = Spawn(bus().Request("rpc", Msg("q2"), Deadline::After(clock(), 5s)));
    auto second = Must(co_await responder->Next(kForever));
    clock().Advance(6s);
    // A Next after Advance processes the timers that are due.
    EXPECT_EQ(Code(co_await responder->Next(kNow)), StatusCode::kDeadlineExceeded);
    EXPECT_EQ(Code(co_await late->Wait()), StatusCode::kDeadlineExceeded);
    EXPECT_EQ(Code(co_await second->Reply(Reply(*second))), StatusCode::kNotFound);
  });
}

TEST_P(Conformance, ConcurrentRequestersEachGetTheirOwnReply) {
  Run([&]() -> Awaitable<void> {
    if (!co_await Supported(caps().request_reply, bus().Respond("rpc", kForever))) co_return;
    auto responder = Must(co_await bus().Respond("rpc", kForever));
    auto one = Spawn(bus().Request("rpc", Msg("q1", std::nullopt, "one"), kForever));
    auto two = Spawn(bus().Request("rpc", Msg("q2", std::nullopt, "two"), kForever));
    auto first = Must(co_await responder->Next(kForever));
    auto second = Must(co_await responder->Next(kForever));
    Must(co_await second->Reply(Reply(*second)));  // answered in the other order
    Must(co_await first->Reply(Reply(*first)));
    EXPECT_EQ(Must(co_await one->Wait()).data, "re:one");
    EXPECT_EQ(Must(co_await two->Wait()).data, "re:two");
  });
}

}  // namespace
}  // namespace junction::conformance
