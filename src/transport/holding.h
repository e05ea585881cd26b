#pragma once

// Holding: a completion handler that keeps its transport's state alive
// until it is called (or destroyed) where the caller runs. Both transports
// hand callers' handlers to threads of their own; the last reference to
// that state must be dropped on the caller's side, never on those threads.

#include <memory>
#include <utility>

#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_executor.hpp>

namespace junction::transport {

template <typename Owner, typename Handler>
struct Holding {
  std::shared_ptr<Owner> owner;
  Handler handler;

  // The caller's executor and allocator, forwarded: invoked there.
  using executor_type = boost::asio::associated_executor_t<Handler>;
  executor_type get_executor() const noexcept {
    return boost::asio::get_associated_executor(handler);
  }
  using allocator_type = boost::asio::associated_allocator_t<Handler>;
  allocator_type get_allocator() const noexcept {
    return boost::asio::get_associated_allocator(handler);
  }

  template <typename Value>
  void operator()(Value value) {
    std::shared_ptr<Owner> keep = std::move(owner);
    std::move(handler)(std::move(value));
  }
};

}  // namespace junction::transport
