#pragma once

// A junctiond for tests of clients against a real daemon: mem://, an
// ephemeral loopback port, two shards unless the test asks otherwise;
// started before each test, stopped (and the stop checked) after it.

#include <memory>

#include <gtest/gtest.h>

#include "server/server.h"

namespace junction::server {

class LoopbackServerTest : public ::testing::Test {
 protected:
  void SetUp() override { StartServer({}); }
  void TearDown() override { StopServer(); }

  // Stops the running daemon, if any, and starts one with `options` (its
  // bus and address are the fixture's; shards 0 means two).
  void StartServer(ServerOptions options) {
    StopServer();
    options.bus_url = "mem://";
    options.listen = "127.0.0.1:0";
    if (options.shards == 0) options.shards = 2;
    Result<std::unique_ptr<Server>> server = Server::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }
  void StopServer() {
    if (server_) {
      EXPECT_TRUE(server_->Stop().ok());
    }
    server_.reset();
  }

  std::unique_ptr<Server> server_;
};

}  // namespace junction::server
