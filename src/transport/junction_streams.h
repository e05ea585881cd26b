#pragma once

// The streams of a junction:// bus (internal to src/transport): opening and
// closing them on the connection, and the Subscription and Responder the
// bus hands out. junction_streams.cc holds them; junction_bus.cc calls them.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "junction/bus.h"
#include "transport/junction_conn.h"

namespace junction::transport::junction_client {

// Opens a subscription (`options`) or a responder (nullopt) on the
// connection, waiting for it; the client's id of the stream, which is
// opened again on every new connection.
awaitable<Result<std::uint64_t>> OpenStreamOn(Conn* conn, std::string topic,
                                              std::optional<SubscribeOptions> options);
// Closes it on the daemon (its group takes back what it held).
awaitable<Status> CloseStreamOn(Conn* conn, std::uint64_t stream);

// `prefetch`: whether it fetches the next batch ahead (JunctionConfig::prefetch).
std::unique_ptr<Subscription> MakeSubscription(std::shared_ptr<Conn> conn, std::string topic,
                                               std::uint64_t stream, bool prefetch);
std::unique_ptr<Responder> MakeResponder(std::shared_ptr<Conn> conn, std::uint64_t stream);

}  // namespace junction::transport::junction_client
