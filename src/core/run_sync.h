#pragma once

// RunSync: runs an Asio awaitable to completion on a private io_context on
// the calling thread and returns its result (an exception it throws is
// rethrown here). For tests and tools that drive the async API from plain
// code; never on a thread that runs an io_context already.

#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

namespace junction {

template <typename T>
T RunSync(boost::asio::awaitable<T> a) {
  boost::asio::io_context io;
  auto future = boost::asio::co_spawn(io, std::move(a), boost::asio::use_future);
  io.run();
  return future.get();
}

}  // namespace junction
