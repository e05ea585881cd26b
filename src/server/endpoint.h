#pragma once

// HOST:PORT of the daemon's listeners as an endpoint (server.cc, admin.cc).

#include <string_view>

#include <boost/asio/ip/tcp.hpp>

#include "junction/result.h"

namespace junction::server {

// "127.0.0.1:7522", "[::1]:7522", "localhost:7522"; InvalidArgument naming
// the text otherwise. Port 0 picks a free port when bound.
Result<boost::asio::ip::tcp::endpoint> ParseListen(std::string_view text);

}  // namespace junction::server
