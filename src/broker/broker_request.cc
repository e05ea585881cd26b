// Request-reply of the embedded broker: requests go, in memory, round robin
// to the responders open on a topic; replies come back to the waiting
// requester. Requests are not stored: a request nobody serves fails at once.

#include <boost/asio/steady_timer.hpp>

#include "broker/broker.h"
#include "broker/topic.h"

namespace junction::broker {
namespace asio = boost::asio;

struct ResponderState {
  std::uint64_t id = 0;
  std::string topic;
  std::deque<RequestData> queue;
  asio::steady_timer* waiter = nullptr;
  bool closed = false;
  void Wake() {
    if (waiter != nullptr) waiter->cancel();
  }
};

struct Broker::PendingRequest {
  explicit PendingRequest(const asio::any_io_executor& ex) : timer(ex) {}
  asio::steady_timer timer;
  std::optional<Result<Message>> outcome;
};

namespace {

Status NoResponders(std::string_view topic, std::string_view why = {}) {
  std::string message = "no responders for topic '" + std::string(topic) + "'";
  if (!why.empty()) message += " (" + std::string(why) + ")";
  return UnavailableError(std::move(message));
}

}  // namespace

asio::awaitable<Result<Message>> Broker::Request(std::string topic, Message request,
                                                 Deadline deadline) {
  if (closed_) co_return FailedPreconditionError("the bus is closed");
  JUNCTION_CO_RETURN_IF_ERROR(ValidateName("topic", topic));
  JUNCTION_CO_RETURN_IF_ERROR(request.Validate().WithContext("request"));
  auto list = responders_.find(topic);
  if (list == responders_.end() || list->second.empty()) co_return NoResponders(topic);
  if (deadline.Expired(clock())) co_return DeadlineExceededError("the deadline passed already");
  std::size_t& next = next_responder_[topic];
  std::shared_ptr<ResponderState> responder = list->second[next++ % list->second.size()];
  PendingRequest pending(shard_);
  std::uint64_t id = next_request_id_++;
  requests_[id] = &pending;
  responder->queue.push_back(RequestData{id, std::move(request)});
  responder->Wake();
  while (!pending.outcome && !deadline.Expired(clock())) {
    co_await WaitSlice(pending.timer, deadline);
  }
  requests_.erase(id);
  if (!pending.outcome) {
    // Not yet taken by a responder: withdraw it.
    std::erase_if(responder->queue, [id](const RequestData& r) { return r.id == id; });
    co_return DeadlineExceededError("no reply on topic '" + topic + "' by the deadline");
  }
  co_return std::move(*pending.outcome);
}

Result<std::shared_ptr<ResponderState>> Broker::Respond(std::string topic) {
  if (closed_) return FailedPreconditionError("the bus is closed");
  JUNCTION_RETURN_IF_ERROR(ValidateName("topic", topic));
  auto responder = std::make_shared<ResponderState>();
  responder->id = next_id_++;
  responder->topic = std::move(topic);
  responders_[responder->topic].push_back(responder);
  return responder;
}

asio::awaitable<Result<RequestData>> Broker::NextRequest(std::shared_ptr<ResponderState> responder,
                                                         Deadline deadline) {
  if (responder->waiter != nullptr) {
    co_return FailedPreconditionError("another Next() of this responder is waiting");
  }
  asio::steady_timer timer(shard_);
  while (true) {
    if (!responder->queue.empty()) {
      RequestData request = std::move(responder->queue.front());
      responder->queue.pop_front();
      co_return request;
    }
    if (closed_ || responder->closed) co_return CancelledError("the responder is closed");
    if (deadline.Expired(clock())) co_return DeadlineExceededError("no request by the deadline");
    responder->waiter = &timer;
    co_await WaitSlice(timer, deadline);
    responder->waiter = nullptr;
  }
}

Status Broker::Reply(std::uint64_t request_id, Message reply) {
  if (closed_) return FailedPreconditionError("the bus is closed");
  auto it = requests_.find(request_id);
  if (it == requests_.end()) {
    return NotFoundError("the requester is gone (its deadline passed or it was cancelled)");
  }
  JUNCTION_RETURN_IF_ERROR(reply.Validate().WithContext("reply"));
  it->second->outcome = std::move(reply);
  it->second->timer.cancel();
  requests_.erase(it);
  return OkStatus();
}

void Broker::CloseResponder(ResponderState& responder) {
  if (responder.closed) return;
  responder.closed = true;
  responder.Wake();
  auto list = responders_.find(responder.topic);
  if (list == responders_.end()) return;
  std::erase_if(list->second, [&](const auto& r) { return r.get() == &responder; });
  // Requests it had not taken go to another responder, or fail now.
  for (RequestData& request : responder.queue) {
    if (!list->second.empty()) {
      auto& other = list->second[next_responder_[responder.topic]++ % list->second.size()];
      other->queue.push_back(std::move(request));
      other->Wake();
    } else if (auto pending = requests_.find(request.id); pending != requests_.end()) {
      pending->second->outcome = NoResponders(responder.topic, "the responder closed");
      pending->second->timer.cancel();
      requests_.erase(pending);
    }
  }
  responder.queue.clear();
  if (list->second.empty()) responders_.erase(list);
}

void Broker::CloseRequests() {
  for (auto& [id, pending] : requests_) {
    pending->outcome = CancelledError("the bus is closed");
    pending->timer.cancel();
  }
  requests_.clear();
  for (auto& [topic, list] : responders_) {
    for (auto& responder : list) responder->Wake();
  }
}

}  // namespace junction::broker
