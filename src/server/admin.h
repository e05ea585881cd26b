#pragma once

// The daemon's admin HTTP endpoint, meant for loopback: GET /metrics
// (Prometheus text format 0.0.4, serialized by prometheus-cpp core: the
// server's counters and the broker's topics and groups, README.md),
// /livez (the process answers) and /readyz (the server accepts connections;
// 503 while it stops). Everything else is 404, other methods 405. Runs on a
// thread of its own ("jn-admin"), never on a shard; Beast stays inside
// admin.cc.
//
// Limits: 8 KiB of request head, no body, 5 s to send a request, 16
// connections at once (more wait in the listen backlog).

#include <cstdint>
#include <memory>
#include <string>

#include "junction/result.h"
#include "server/server.h"

namespace junction::server {

class AdminServer {
 public:
  // Binds `listen` ("127.0.0.1:7523"; port 0 picks one) and serves
  // `server`'s figures, which must outlive this. Unavailable when the
  // address is taken, InvalidArgument when it is malformed.
  static Result<std::unique_ptr<AdminServer>> Start(const std::string& listen,
                                                    const Server& server);
  ~AdminServer();  // stops: closes the listener and every connection, joins the thread
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  std::string address() const;  // "127.0.0.1:41235"

  struct Impl;

 private:
  explicit AdminServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The /metrics text for `stats` and `broker` (an error leaves the broker's
// families out and sets junctiond_broker_figures_complete to 0):
// junctiond_* families and process_resident_memory_bytes.
std::string MetricsText(const ServerStats& stats, const Result<BrokerFigures>& broker);

}  // namespace junction::server
